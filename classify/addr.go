package classify

import "net/netip"

type (
	netipAddr     = netip.Addr
	netipAddrPort = netip.AddrPort
)

func addrPort(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }

// teredoInner returns the IPv6 packet inside a Teredo UDP payload
// (RFC 4380 §5.1.1: optional authentication then origin indication
// headers), or nil.
func teredoInner(p []byte) []byte {
	for i := 0; i < 2 && len(p) >= 2; i++ {
		switch {
		case p[0] == 0 && p[1] == 1: // authentication indicator
			if len(p) < 13 {
				return nil
			}
			n := 13 + int(p[2]) + int(p[3])
			if n > len(p) {
				return nil
			}
			p = p[n:]
		case p[0] == 0 && p[1] == 0: // origin indication
			if len(p) < 8 {
				return nil
			}
			p = p[8:]
		}
	}
	if len(p) < 40 || p[0]>>4 != 6 {
		return nil
	}
	return p
}
