package classify

import "net/netip"

func addrPort(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }

// teredoInner returns the IPv6 packet inside a Teredo UDP payload
// (RFC 4380 §5.1.1), without any trailer, or nil.
func teredoInner(p []byte) []byte {
	if t, ok := ParseTeredo(p); ok {
		return t.IPv6
	}
	return nil
}
