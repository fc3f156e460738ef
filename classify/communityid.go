package classify

import (
	"crypto/sha1"
	"encoding/base64"
	"net/netip"
)

// Community ID v1 (https://github.com/corelight/community-id-spec): a hash of
// the flow tuple that other tools (Zeek, Suricata, Arkime) compute the same
// way, so a SOC can join rasentry's records with theirs.

// icmpCounterpart maps an ICMP request/reply type to its counterpart; types
// missing here are one-way and hash with their code as the "port".
var icmp4Counterpart = map[uint8]uint8{
	8: 0, 0: 8, // echo
	13: 14, 14: 13, // timestamp
	15: 16, 16: 15, // information
	10: 9, 9: 10, // router solicitation / advertisement
	17: 18, 18: 17, // address mask
}

var icmp6Counterpart = map[uint8]uint8{
	128: 129, 129: 128, // echo
	133: 134, 134: 133, // router solicitation / advertisement
	135: 136, 136: 135, // neighbour solicitation / advertisement
	130: 131, 131: 130, // multicast listener query / report
	144: 145, 145: 144, // home agent address discovery
	146: 147, 147: 146, // mobile prefix solicitation / advertisement
	139: 140, 140: 139, // node information query / reply
}

// CommunityID returns the Community ID v1 string of a flow tuple. For ICMP and
// ICMPv6, sport and dport carry the type and code of the packet.
func CommunityID(seed uint16, src, dst netip.Addr, sport, dport uint16, proto uint8) string {
	var buf [2 + 16 + 16 + 1 + 1 + 2 + 2]byte
	n := CommunityIDInput(buf[:], seed, src, dst, sport, dport, proto)
	sum := sha1.Sum(buf[:n])
	return "1:" + base64.StdEncoding.EncodeToString(sum[:])
}

// CommunityIDInput writes the bytes Community ID v1 hashes into buf (at
// least 38 bytes) and returns their length, for encoders that hash without
// allocating.
func CommunityIDInput(buf []byte, seed uint16, src, dst netip.Addr, sport, dport uint16, proto uint8) int {
	src, dst = src.Unmap(), dst.Unmap()
	hasPorts := true
	oneWay := false
	switch proto {
	case ProtoICMP, ProtoICMPv6:
		table := icmp4Counterpart
		if proto == ProtoICMPv6 {
			table = icmp6Counterpart
		}
		t := uint8(sport)
		if c, ok := table[t]; ok {
			sport, dport = uint16(t), uint16(c)
		} else {
			oneWay = true
		}
	case ProtoTCP, ProtoUDP, ProtoSCTP:
	default:
		hasPorts = false
	}
	if !oneWay {
		c := src.Compare(dst)
		if c > 0 || (c == 0 && hasPorts && sport > dport) {
			src, dst = dst, src
			sport, dport = dport, sport
		}
	}
	n := 0
	buf[0], buf[1] = byte(seed>>8), byte(seed)
	n = 2
	if src.Is4() && dst.Is4() {
		a, b := src.As4(), dst.As4()
		n += copy(buf[n:], a[:])
		n += copy(buf[n:], b[:])
	} else {
		a, b := src.As16(), dst.As16()
		n += copy(buf[n:], a[:])
		n += copy(buf[n:], b[:])
	}
	buf[n], buf[n+1] = proto, 0
	n += 2
	if hasPorts {
		buf[n], buf[n+1], buf[n+2], buf[n+3] = byte(sport>>8), byte(sport), byte(dport>>8), byte(dport)
		n += 4
	}
	return n
}

// CommunityID returns the flow's Community ID v1 with the given seed.
func (f *Flow) CommunityID(seed uint16) string {
	switch f.Proto {
	case ProtoICMP, ProtoICMPv6:
		return CommunityID(seed, f.Client.Addr(), f.Server.Addr(), uint16(f.ICMPType), uint16(f.ICMPCode), f.Proto)
	}
	return CommunityID(seed, f.Client.Addr(), f.Server.Addr(), f.Client.Port(), f.Server.Port(), f.Proto)
}
