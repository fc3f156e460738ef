package scenario

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/miekg/dns"

	"github.com/rasentry/rasentry/internal/testutil"
)

func init() {
	register(Scenario{Name: "easy-connect", Build: buildEasyConnect, Description: "Easy Connect seen inside the " +
		"user's NAT: DNS for the Teredo server, Teredo qualification (RS/RA with authentication and origin " +
		"indication), DNS for the PNRP seed, bubbles, PNRP inside Teredo (the helper's LOOKUP and INQUIRE, the " +
		"user's AUTHORITY for RAContact with its extended payload), then the helper's RDP over IPv6 inside Teredo"})
}

// teredoAddr builds a Teredo address (RFC 4380 §4; protocols.md §3.4).
func teredoAddr(server netip.Addr, cone bool, mapped netip.AddrPort) netip.Addr {
	var a [16]byte
	a[0], a[1] = 0x20, 0x01
	s := server.As4()
	copy(a[4:8], s[:])
	if cone {
		a[8] = 0x80
	}
	binary.BigEndian.PutUint16(a[10:], ^mapped.Port())
	m := mapped.Addr().As4()
	for i := range m {
		a[12+i] = ^m[i]
	}
	return netip.AddrFrom16(a)
}

// icmp6 returns an ICMPv6 message with its checksum over the IPv6 pseudo
// header (RFC 4443 §2.3).
func icmp6(src, dst netip.Addr, typ, code uint8, body []byte) []byte {
	m := append([]byte{typ, code, 0, 0}, body...)
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	s, d := src.As16(), dst.As16()
	add(s[:])
	add(d[:])
	add([]byte{0, 0, byte(len(m) >> 8), byte(len(m)), 0, 0, 0, 58})
	add(m)
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(m[2:], ^uint16(sum))
	return m
}

// dnsExchange returns a query and its answer as UDP frames.
func dnsExchange(r *rand.Rand, client, server netip.AddrPort, t time.Time, name string, qtype uint16, answer netip.Addr) []testutil.Frame {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	q.Id = uint16(r.Uint32())
	qb, _ := q.Pack()
	a := new(dns.Msg)
	a.SetReply(q)
	hdr := dns.RR_Header{Name: dns.Fqdn(name), Rrtype: qtype, Class: dns.ClassINET, Ttl: 300}
	if qtype == dns.TypeA {
		a.Answer = append(a.Answer, &dns.A{Hdr: hdr, A: answer.AsSlice()})
	} else {
		a.Answer = append(a.Answer, &dns.AAAA{Hdr: hdr, AAAA: answer.AsSlice()})
	}
	ab, _ := a.Pack()
	return []testutil.Frame{
		{Time: t, Data: testutil.UDPPacket(client, server, 0, qb)},
		{Time: t.Add(8 * time.Millisecond), Data: testutil.UDPPacket(server, client, 0, ab)},
	}
}

func buildEasyConnect(o Options, r *rand.Rand) []testutil.Frame {
	t := o.Start
	novice := orDefault(o.Client, "192.168.1.20")
	resolver := netip.AddrPortFrom(orDefault(o.Server, "192.168.1.1"), 53)
	server := netip.MustParseAddr("198.51.100.10")
	noviceSvc := netip.AddrPortFrom(novice, 51000)                // the Teredo service port inside the NAT
	noviceMapped := netip.MustParseAddrPort("203.0.113.10:40000") // as the server sees it
	expertMapped := netip.MustParseAddrPort("203.0.113.80:41000")
	tN := teredoAddr(server, true, noviceMapped)
	tE := teredoAddr(server, true, expertMapped)
	srv := netip.AddrPortFrom(server, 3544)
	var out []testutil.Frame
	add := func(at time.Duration, src, dst netip.AddrPort, payload []byte) {
		out = append(out, testutil.Frame{Time: t.Add(at), Data: testutil.UDPPacket(src, dst, 0, payload)})
	}

	out = append(out, dnsExchange(r, netip.AddrPortFrom(novice, ephemeral(r)), resolver, t, "teredo.ipv6.microsoft.com", dns.TypeA, server)...)

	// Qualification: RS with an authentication indicator from the cone
	// link-local address; RA echoing the nonce with the origin indication
	// and the prefix 2001:0:<server>::/64 (RFC 4380 §5.2.1).
	var nonce [8]byte
	copy(nonce[:], randBytes(r, 8))
	ll := netip.MustParseAddr("fe80::8000:5445:5245:444f")
	srvLL := netip.MustParseAddr("fe80::8000:f227:bec9:1c1b")
	allRouters := netip.MustParseAddr("ff02::2")
	rs := testutil.TeredoPayload(testutil.TeredoEncap{Auth: &testutil.TeredoAuth{Nonce: nonce}, Src: ll, Dst: allRouters, HopLimit: 255},
		58, icmp6(ll, allRouters, 133, 0, make([]byte, 4)))
	prefix := tN.As16()
	clear(prefix[8:])
	pio := append([]byte{3, 4, 64, 0xc0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, prefix[:]...)
	raBody := append([]byte{64, 0, 0x07, 0x08, 0, 0, 0, 0, 0, 0, 0x07, 0xd0}, pio...)
	ra := testutil.TeredoPayload(testutil.TeredoEncap{Auth: &testutil.TeredoAuth{Nonce: nonce}, Origin: noviceMapped, Src: srvLL, Dst: ll, HopLimit: 255},
		58, icmp6(srvLL, ll, 134, 0, raBody))
	add(200*time.Millisecond, noviceSvc, srv, rs)
	add(260*time.Millisecond, srv, noviceSvc, ra)

	out = append(out, dnsExchange(r, netip.AddrPortFrom(novice, ephemeral(r)), resolver, t.Add(500*time.Millisecond),
		"pnrpv21.ipv6.microsoft.com", dns.TypeAAAA, netip.MustParseAddr("2001:db8:5eed::21"))...)

	// The helper reaches the user: an indirect bubble relayed by the server
	// with the helper's origin, then direct bubbles both ways (§3.5).
	add(2*time.Second, srv, noviceSvc, testutil.TeredoBubble(testutil.TeredoEncap{Origin: expertMapped, Src: tE, Dst: tN}))
	add(2*time.Second+30*time.Millisecond, noviceSvc, expertMapped, testutil.TeredoBubble(testutil.TeredoEncap{Src: tN, Dst: tE}))
	add(2*time.Second+90*time.Millisecond, expertMapped, noviceSvc, testutil.TeredoBubble(testutil.TeredoEncap{Src: tE, Dst: tN}))

	// PNRP between the Teredo addresses (UDP 3540 inside Teredo): the
	// helper's LOOKUP for the RA name and INQUIRE, the user's ACKs and its
	// AUTHORITY with the RAContact classifier and extended payload.
	pn := func(at time.Duration, fromExpert bool, msg []byte) {
		if fromExpert {
			add(at, expertMapped, noviceSvc, testutil.TeredoUDP(testutil.TeredoEncap{Src: tE, Dst: tN}, 3540, 3540, msg))
		} else {
			add(at, noviceSvc, expertMapped, testutil.TeredoUDP(testutil.TeredoEncap{Src: tN, Dst: tE}, 3540, 3540, msg))
		}
	}
	target := testutil.PNRPIDFor("0", "RAContact", [16]byte{})
	pn(2200*time.Millisecond, true, testutil.PNRPLookupMessage(101, testutil.PNRPLookupSpec{Classifier: "RAContact",
		ResolveCriteria: 1, Path: []netip.AddrPort{netip.AddrPortFrom(tE, 3540)}}))
	pn(2230*time.Millisecond, false, testutil.PNRPAckMessage(201, 101))
	pn(2300*time.Millisecond, true, testutil.PNRPInquireMessage(102, 0x0007, target))
	pn(2330*time.Millisecond, false, testutil.PNRPRAContactAuthority(202, 102, 600))
	pn(2360*time.Millisecond, true, testutil.PNRPAckMessage(103, 202))

	// RDP over IPv6 inside Teredo, from the helper to the user's listener.
	for _, fr := range raRDP(r, netip.AddrPortFrom(tE, ephemeral(r)), netip.AddrPortFrom(tN, 49800), t.Add(5*time.Second), "HELPER") {
		inner := fr.Data[14:] // drop the Ethernet header: an IPv6 packet
		src := netip.AddrFrom16([16]byte(inner[8:24]))
		if src == tE {
			out = append(out, testutil.Frame{Time: fr.Time, Data: testutil.UDPPacket(expertMapped, noviceSvc, 0, inner)})
		} else {
			out = append(out, testutil.Frame{Time: fr.Time, Data: testutil.UDPPacket(noviceSvc, expertMapped, 0, inner)})
		}
	}
	return out
}
