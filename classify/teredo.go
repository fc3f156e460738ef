package classify

import (
	"encoding/binary"
	"net/netip"
)

// Teredo (RFC 4380, RFC 6081; protocols.md §3) carries IPv6 packets in UDP
// over IPv4. Remote Assistance relies on it to reach novices behind NAT, so
// a Teredo flow is both a finding of its own and a tunnel whose inner IPv6
// flows (RDP, PNRP) the classifier decapsulates and classifies.

// TeredoPort is the UDP port of Teredo servers and relays (RFC 4380 §2.2;
// protocols.md §3.1). Clients use any port, so it is a hint only.
const TeredoPort = 3544

// teredoPrefix is the Teredo service prefix 2001:0000::/32 (RFC 4380 §2.6).
var teredoPrefix = [4]byte{0x20, 0x01, 0x00, 0x00}

// IPv6 next-header values the Teredo code looks at.
const (
	ipv6HopByHop uint8 = 0
	ipv6NoNext   uint8 = 59

	icmpv6RouterSolicitation  uint8 = 133
	icmpv6RouterAdvertisement uint8 = 134
)

// TeredoPacket is one Teredo UDP payload taken apart (protocols.md §3.2).
// Its slices point into the payload it was parsed from.
type TeredoPacket struct {
	// Auth is true when an authentication indicator precedes the packet
	// (client/server qualification, RFC 4380 §5.1.1).
	Auth bool
	// AuthIDLen and AuthValueLen are the lengths of the client identifier
	// and authentication value (usually zero).
	AuthIDLen, AuthValueLen uint8
	// Nonce is the authentication indicator's 8-byte nonce.
	Nonce [8]byte
	// Confirmation is the authentication indicator's confirmation byte.
	Confirmation uint8

	// Origin is true when an origin indication precedes the packet (sent by
	// Teredo servers, RFC 4380 §5.1.1).
	Origin bool
	// OriginAddr and OriginPort are the origin indication's IPv4 address and
	// UDP port, de-obfuscated (XOR all ones).
	OriginAddr netip.Addr
	OriginPort uint16

	// IPv6 is the encapsulated IPv6 packet: its 40-byte header and exactly
	// PayloadLength bytes after it.
	IPv6 []byte
	// Trailer holds the bytes after the IPv6 packet in the UDP payload:
	// RFC 6081 trailers, or the odd bytes zeek's "bubble with payload"
	// capture carries (protocols.md §3.3, §3.7). Usually empty.
	Trailer []byte

	// Src and Dst are the inner IPv6 addresses.
	Src, Dst netip.Addr
	// NextHeader is the IPv6 header's next-header field.
	NextHeader uint8
	// HopLimit is the IPv6 hop limit (never 0 in a valid packet).
	HopLimit uint8
	// PayloadLength is the IPv6 payload length.
	PayloadLength uint16

	// Bubble is true for a Teredo bubble: no next header (59) and an empty
	// IPv6 payload (RFC 4380 §2.8; protocols.md §3.5).
	Bubble bool
	// ICMPv6Type is the ICMPv6 type when NextHeader is 58 (ICMPv6) and the
	// payload holds an ICMPv6 header; 0 otherwise.
	ICMPv6Type uint8
	// RouterSolicitation and RouterAdvertisement are true for ICMPv6 types
	// 133 and 134, which Teredo uses for qualification (protocols.md §3.6).
	RouterSolicitation, RouterAdvertisement bool
}

// ParseTeredo takes a UDP payload apart as Teredo: an optional
// authentication indicator, an optional origin indication, then an IPv6
// packet (RFC 4380 §5.1.1; protocols.md §3.2–3.3). It reports false unless
// the headers are complete and the inner IPv6 header is valid: version 6,
// hop limit not 0 (except on bubbles), a hop-by-hop header only with room
// for it, and an IPv6 payload length that fits in the UDP payload.
//
// Bytes after the IPv6 packet are accepted and returned as Trailer rather
// than rejected: RFC 6081 appends trailers to bubbles, and zeek's
// teredo_bubble_with_payload capture (a relay flow that must be Teredo) has
// UDP payloads 4 bytes longer than their IPv6 packet. Zeek treats that as a
// weird, not a violation; Suricata and Wireshark require an exact length and
// miss those packets. A payload shorter than the IPv6 payload length claims
// is always rejected.
//
// ParseTeredo does not allocate.
func ParseTeredo(payload []byte) (TeredoPacket, bool) {
	var p TeredoPacket
	b := payload
	if len(b) >= 2 && b[0] == 0 && b[1] == 1 {
		// Authentication indicator: 00 01, ID-len, AU-len, client id,
		// authentication value, nonce (8), confirmation (1).
		if len(b) < 4 {
			return p, false
		}
		idl, aul := int(b[2]), int(b[3])
		n := 13 + idl + aul
		if len(b) < n {
			return p, false
		}
		p.Auth = true
		p.AuthIDLen, p.AuthValueLen = b[2], b[3]
		copy(p.Nonce[:], b[4+idl+aul:])
		p.Confirmation = b[n-1]
		b = b[n:]
	}
	if len(b) >= 2 && b[0] == 0 && b[1] == 0 {
		// Origin indication: 00 00, port ^ 0xffff, IPv4 ^ 0xffffffff. Zeek
		// refuses a second one and an authentication indicator after it,
		// which the IPv6 version check below does as well.
		if len(b) < 8 {
			return p, false
		}
		p.Origin = true
		p.OriginPort = binary.BigEndian.Uint16(b[2:]) ^ 0xffff
		p.OriginAddr = netip.AddrFrom4([4]byte{^b[4], ^b[5], ^b[6], ^b[7]})
		b = b[8:]
	}
	if len(b) < 40 || b[0]>>4 != 6 {
		return p, false
	}
	plen := int(binary.BigEndian.Uint16(b[4:]))
	if 40+plen > len(b) {
		return p, false
	}
	nh, hlim := b[6], b[7]
	if hlim == 0 && (nh != ipv6NoNext || plen != 0) {
		// Suricata refuses hop limit 0. Windows sends bubbles with hop limit
		// 0 (zeek's Teredo.pcap: the client's bubble to the relay's
		// link-local address); a bubble is never forwarded, so allow it
		// there only.
		return p, false
	}
	if nh == ipv6HopByHop && plen < 8 {
		return p, false
	}
	p.IPv6 = b[:40+plen]
	p.Trailer = b[40+plen:]
	p.NextHeader, p.HopLimit, p.PayloadLength = nh, hlim, uint16(plen)
	p.Src = netip.AddrFrom16([16]byte(b[8:24]))
	p.Dst = netip.AddrFrom16([16]byte(b[24:40]))
	p.Bubble = nh == ipv6NoNext && plen == 0
	if nh == ProtoICMPv6 && plen >= 4 {
		p.ICMPv6Type = b[40]
		// RS carries 4 reserved bytes, RA 12 bytes of header (RFC 4861 §4.1-4.2).
		p.RouterSolicitation = p.ICMPv6Type == icmpv6RouterSolicitation && plen >= 8
		p.RouterAdvertisement = p.ICMPv6Type == icmpv6RouterAdvertisement && plen >= 16
	}
	return p, true
}

// TeredoAddress is what a Teredo IPv6 address says about its owner
// (RFC 4380 §4; protocols.md §3.4).
type TeredoAddress struct {
	// Server is the IPv4 address of the client's Teredo server.
	Server netip.Addr
	// Flags is the 16-bit flags field; Cone is its 0x8000 bit.
	Flags uint16
	Cone  bool
	// MappedAddr and MappedPort are the client's public (NAT-mapped) IPv4
	// address and UDP port, de-obfuscated.
	MappedAddr netip.Addr
	MappedPort uint16
}

// DecodeTeredoAddress decodes a 2001:0::/32 Teredo address. It reports false
// for any other address. It does not allocate.
func DecodeTeredoAddress(a netip.Addr) (TeredoAddress, bool) {
	var t TeredoAddress
	if !isTeredoAddr(a) {
		return t, false
	}
	b := a.As16()
	t.Server = netip.AddrFrom4([4]byte(b[4:8]))
	t.Flags = binary.BigEndian.Uint16(b[8:])
	t.Cone = t.Flags&0x8000 != 0
	t.MappedPort = binary.BigEndian.Uint16(b[10:]) ^ 0xffff
	t.MappedAddr = netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})
	return t, true
}

// isTeredoAddr reports whether a is in the Teredo prefix 2001:0::/32.
func isTeredoAddr(a netip.Addr) bool {
	if !a.Is6() || a.Is4In6() {
		return false
	}
	b := a.As16()
	return [4]byte(b[:4]) == teredoPrefix
}

// TeredoEvidence is what the Teredo detector learnt about a flow; it is
// written under rasentry.teredo.
type TeredoEvidence struct {
	// Server is the Teredo server's IPv4 address: the flow's port-3544
	// endpoint when it has one, else the server encoded in the client's
	// Teredo address.
	Server netip.Addr `json:"server,omitzero"`
	// ServerName is the DNS name last resolved to Server, if known.
	ServerName string `json:"server_name,omitempty"`
	// ClientTeredoAddr is the Teredo client's IPv6 address. The client is
	// the flow's side that is not port 3544 (between two other ports, the
	// flow's client). Best: seen as an inner address on the client's side;
	// else derived from a qualification Router Advertisement (prefix +
	// origin indication; only the cone bit of its flags is then known, RFC
	// 5991 randomises the rest); else, when the client's side is a relay or
	// native host, the Teredo address on the other side.
	ClientTeredoAddr netip.Addr `json:"client_teredo_addr,omitzero"`
	// MappedAddr and MappedPort are the client's NAT mapping, from a Router
	// Advertisement's origin indication or the client's Teredo address.
	MappedAddr netip.Addr `json:"mapped_addr,omitzero"`
	MappedPort uint16     `json:"mapped_port,omitempty"`
	// Cone is the cone flag of the client's Teredo address (nil when no
	// client address is known).
	Cone *bool `json:"cone,omitempty"`
	// Bubbles counts the bubbles seen while the detector looked at the flow.
	Bubbles uint32 `json:"bubbles"`
	// Qualification is true when the flow carried a qualification Router
	// Solicitation (with authentication) or Advertisement (with origin).
	Qualification bool `json:"qualification"`
	// OriginIndication is true when a server's origin indication was seen.
	OriginIndication bool `json:"origin_indication"`
	// InnerProtocols names the inner IPv6 next headers seen, in first-seen
	// order: tcp, udp, icmpv6, no-next-header, ext-header, other.
	InnerProtocols []string `json:"inner_protocols,omitempty"`
}

// Inner protocol bits for TeredoEvidence.InnerProtocols.
const (
	teredoInnerTCP uint8 = 1 << iota
	teredoInnerUDP
	teredoInnerICMPv6
	teredoInnerNone
	teredoInnerExt
	teredoInnerOther
)

func teredoInnerBit(nh uint8) (uint8, string) {
	switch nh {
	case ProtoTCP:
		return teredoInnerTCP, "tcp"
	case ProtoUDP:
		return teredoInnerUDP, "udp"
	case ProtoICMPv6:
		return teredoInnerICMPv6, "icmpv6"
	case ipv6NoNext:
		return teredoInnerNone, "no-next-header"
	case 0, 43, 44, 60: // hop-by-hop, routing, fragment, destination options
		return teredoInnerExt, "ext-header"
	}
	return teredoInnerOther, "other"
}

// TeredoOptions configures a TeredoDetector.
type TeredoOptions struct {
	// Budget is the number of UDP payload bytes per direction the detector
	// looks at (default DefaultTeredoBudget). After the flow is labelled it
	// keeps looking, to count bubbles, until the budget is spent.
	Budget int
}

// DefaultTeredoBudget is the default per-direction byte budget: room for a
// few hundred bubbles or qualification refreshes, or a dozen full-size
// tunnelled packets.
const DefaultTeredoBudget = 16 << 10

// TeredoDetector recognises Teredo on any UDP port over IPv4 (protocols.md
// §3). A flow is labelled teredo (high) when one valid Teredo packet — the
// §3.2 headers, a valid inner IPv6 header (§3.3), and inner addresses that
// look like Teredo (a 2001:0::/32 address on either side, or the link-local
// ↔ link-local/multicast addresses of qualification and local discovery) —
// comes with one of these proofs:
//
//   - either endpoint is UDP port 3544 (servers and relays listen there);
//   - it carries an origin indication, which only Teredo servers send;
//   - it is a qualification packet: a Router Solicitation after an
//     authentication indicator, or a Router Advertisement after an origin
//     indication (also labelled teredo-qualification);
//   - an inner Teredo address encodes the outer endpoints: its server IPv4
//     is one of the outer addresses (traffic to or from a Teredo server), or
//     its mapped IPv4:port is the outer endpoint on the same side (a direct
//     bubble to a peer's NAT mapping that the peer's NAT may refuse, so
//     that the flow never has a second direction);
//   - valid Teredo packets went both ways and their inner addresses mirror
//     each other (zeek's rule, plus the mirror check). Relay flows such as
//     zeek's UDP 3797 ↔ 32900 pass here.
//
// A lone valid-looking packet between two ports other than 3544 is not
// enough: the detector waits for one of the proofs (tolerating up to two
// packets that are not Teredo meanwhile). Teredo runs over IPv4 only, so
// IPv6 flows are passed at once. When it labels a flow it sets DecapTeredo,
// so later packets of the flow are decapsulated (the classifier calls
// ParseTeredo) and their inner IPv6 packets classified as flows of their own;
// it keeps looking at the flow, counting bubbles and noting inner protocols,
// until its budget is spent.
type TeredoDetector struct {
	budget int
}

// NewTeredoDetector returns a Teredo detector.
func NewTeredoDetector(o TeredoOptions) *TeredoDetector {
	if o.Budget <= 0 {
		o.Budget = DefaultTeredoBudget
	}
	return &TeredoDetector{budget: o.Budget}
}

// Name implements Detector.
func (d *TeredoDetector) Name() string { return "teredo" }

// Budget implements Detector.
func (d *TeredoDetector) Budget() int { return d.budget }

// teredoState is the detector's per-flow memory.
type teredoState struct {
	ev       TeredoEvidence
	cone     bool
	labelled bool
	addrQ    uint8 // how sure ev.ClientTeredoAddr is (addrNone...)
	seen     [2]bool
	first    [2][2]netip.Addr // inner src and dst of the first valid packet per direction
	inner    uint8
	bad      uint8 // packets that were not valid Teredo, before the label
}

// teredoMaxBad is how many packets that are not Teredo an unproven flow may
// carry before the detector gives up on it.
const teredoMaxBad = 3

// Inspect implements Detector.
func (d *TeredoDetector) Inspect(ctx *Context, f *Flow, seg *Segment) Status {
	if f.Proto != ProtoUDP || !f.Client.Addr().Unmap().Is4() {
		return Done // RFC 4380: Teredo is IPv6 in UDP over IPv4
	}
	st, _ := ctx.State(f).(*teredoState)
	p, ok := ParseTeredo(seg.Payload)
	if !ok || !teredoPlausible(&p) {
		switch {
		case st == nil:
			if onTeredoPort(f) && teredoLooksLike(seg.Payload) {
				ctx.Counters.CountMalformed(d.Name())
			}
			return Done
		case st.labelled:
			ctx.Counters.CountMalformed(d.Name())
			return Continue
		}
		// A flow that began like Teredo may carry an odd packet before it
		// proves itself; a few of them and it is not Teredo.
		if st.bad++; st.bad >= teredoMaxBad {
			return Done
		}
		return Continue
	}
	if st == nil {
		st = &teredoState{}
		ctx.SetState(f, st)
	}
	dir := seg.Dir & 1
	if !st.seen[dir] {
		st.seen[dir] = true
		st.first[dir] = [2]netip.Addr{p.Src, p.Dst}
	}
	st.note(f, seg, &p)
	if !st.labelled && teredoProven(f, seg, &p, st) {
		st.labelled = true
		f.AddLabel(LabelTeredo, ConfidenceHigh)
		if f.AppProto == AppNone {
			f.AppProto = AppTeredo
		}
		f.SetDecap(DecapTeredo)
		f.SetEvidence(d.Name(), &st.ev)
	}
	if st.labelled {
		if st.ev.Qualification {
			f.AddLabel(LabelTeredoQualification, ConfidenceHigh)
		}
		if st.ev.ServerName == "" && st.ev.Server.IsValid() && ctx.Names != nil {
			st.ev.ServerName, _ = ctx.Names.Lookup(st.ev.Server, ctx.Now)
		}
	}
	return Continue
}

// teredoProven applies the labelling rules listed on TeredoDetector.
func teredoProven(f *Flow, seg *Segment, p *TeredoPacket, st *teredoState) bool {
	if onTeredoPort(f) || p.Origin || teredoQualification(p) {
		return true
	}
	if teredoEncodesEndpoint(p, seg.Src, seg.Dst) {
		return true
	}
	other := st.first[(seg.Dir&1)^1]
	return st.seen[0] && st.seen[1] && (other[0] == p.Dst || other[1] == p.Src)
}

// note folds one valid packet into the evidence.
func (st *teredoState) note(f *Flow, seg *Segment, p *TeredoPacket) {
	ev := &st.ev
	if p.Bubble {
		ev.Bubbles++
	}
	if p.Origin {
		ev.OriginIndication = true
	}
	if teredoQualification(p) {
		ev.Qualification = true
	}
	if bit, name := teredoInnerBit(p.NextHeader); st.inner&bit == 0 && len(ev.InnerProtocols) < 6 {
		st.inner |= bit
		ev.InnerProtocols = append(ev.InnerProtocols, name)
	}

	// The server this flow talks to is its port-3544 side, if any.
	if !ev.Server.IsValid() {
		switch {
		case f.Server.Port() == TeredoPort:
			ev.Server = f.Server.Addr().Unmap()
		case f.Client.Port() == TeredoPort:
			ev.Server = f.Client.Addr().Unmap()
		}
	}

	// The Teredo client is the side that is not a server (port 3544);
	// between two other ports, the flow's client.
	client := f.Client
	if f.Client.Port() == TeredoPort && f.Server.Port() != TeredoPort {
		client = f.Server
	}
	fromClient := seg.Src == client
	if st.addrQ < addrOwn {
		own, peer := p.Dst, p.Src
		if fromClient {
			own, peer = p.Src, p.Dst
		}
		switch {
		case isTeredoAddr(own):
			st.setClient(own, addrOwn)
		case p.RouterAdvertisement && p.Origin && st.addrQ < addrDerived:
			if a, ok := teredoAddrFromRA(p); ok {
				st.setClient(a, addrDerived)
			}
		case isTeredoAddr(peer) && st.addrQ < addrPeer:
			st.setClient(peer, addrPeer)
		}
	}
	if p.RouterAdvertisement && p.Origin && !fromClient {
		// The server tells the client its mapping (RFC 4380 §5.2.1).
		ev.MappedAddr, ev.MappedPort = p.OriginAddr, p.OriginPort
	}
}

// How sure the detector is of ev.ClientTeredoAddr, worst to best: seen as
// the other side's address (between two ports other than 3544, when the
// flow's client is a relay or a native host), derived from a qualification
// Router Advertisement, seen on the client's own side.
const (
	addrNone uint8 = iota
	addrPeer
	addrDerived
	addrOwn
)

// setClient records the client's Teredo address and what it encodes.
func (st *teredoState) setClient(a netip.Addr, q uint8) {
	t, ok := DecodeTeredoAddress(a)
	if !ok {
		return
	}
	ev := &st.ev
	ev.ClientTeredoAddr, st.addrQ = a, q
	st.cone = t.Cone
	ev.Cone = &st.cone
	if q != addrDerived || !ev.MappedAddr.IsValid() {
		ev.MappedAddr, ev.MappedPort = t.MappedAddr, t.MappedPort
	}
	if !ev.Server.IsValid() {
		ev.Server = t.Server
	}
}

// teredoAddrFromRA builds the client's Teredo address from a qualification
// Router Advertisement: the 2001:0:<server>::/64 prefix of its Prefix
// Information option, the flags of the client's link-local address (the
// destination, whose interface identifier carries the cone bit), and the
// origin indication's mapped port and address (RFC 4380 §5.2.1, §4;
// protocols.md §3.6).
func teredoAddrFromRA(p *TeredoPacket) (netip.Addr, bool) {
	if !p.RouterAdvertisement || !p.Origin {
		return netip.Addr{}, false
	}
	opts := p.IPv6[40+16:]
	for i := 0; i < 8 && len(opts) >= 8; i++ {
		typ, n := opts[0], int(opts[1])*8
		if n == 0 || n > len(opts) {
			return netip.Addr{}, false
		}
		if typ == 3 && n == 32 && opts[2] == 64 { // Prefix Information, /64
			var a [16]byte
			copy(a[:8], opts[16:24])
			if [4]byte(a[:4]) != teredoPrefix {
				return netip.Addr{}, false
			}
			ll := p.Dst.As16()
			a[8], a[9] = ll[8]&0x80, 0
			binary.BigEndian.PutUint16(a[10:], p.OriginPort^0xffff)
			o := p.OriginAddr.As4()
			a[12], a[13], a[14], a[15] = ^o[0], ^o[1], ^o[2], ^o[3]
			return netip.AddrFrom16(a), true
		}
		opts = opts[n:]
	}
	return netip.Addr{}, false
}

// teredoQualification reports a qualification packet (protocols.md §3.6).
func teredoQualification(p *TeredoPacket) bool {
	return (p.RouterSolicitation && p.Auth) || (p.RouterAdvertisement && p.Origin)
}

// teredoPlausible reports whether the inner addresses fit Teredo: a Teredo
// address on either side (zeek's test), or link-local source with link-local
// or link-scope multicast destination (qualification RS/RA, local discovery
// bubbles; miredo packets.c).
func teredoPlausible(p *TeredoPacket) bool {
	if isTeredoAddr(p.Src) || isTeredoAddr(p.Dst) {
		return true
	}
	return p.Src.IsLinkLocalUnicast() && (p.Dst.IsLinkLocalUnicast() || p.Dst.IsLinkLocalMulticast())
}

// teredoEncodesEndpoint reports whether an inner Teredo address names the
// outer packet's endpoints: its server is one of the outer IPv4 addresses,
// or its mapped address and port are the outer endpoint on its own side.
func teredoEncodesEndpoint(p *TeredoPacket, src, dst netip.AddrPort) bool {
	s, d := src.Addr().Unmap(), dst.Addr().Unmap()
	if t, ok := DecodeTeredoAddress(p.Src); ok {
		if t.Server == s || t.Server == d || (t.MappedAddr == s && t.MappedPort == src.Port()) {
			return true
		}
	}
	if t, ok := DecodeTeredoAddress(p.Dst); ok {
		if t.Server == s || t.Server == d || (t.MappedAddr == d && t.MappedPort == dst.Port()) {
			return true
		}
	}
	return false
}

func onTeredoPort(f *Flow) bool {
	return f.Client.Port() == TeredoPort || f.Server.Port() == TeredoPort
}

// teredoLooksLike reports a payload that starts like Teredo (zeek's fast
// pre-check: an indicator or an IPv6 version nibble), so that a failure to
// parse it on port 3544 counts as malformed.
func teredoLooksLike(b []byte) bool {
	return len(b) >= 2 && ((b[0] == 0 && b[1] <= 1) || b[0]>>4 == 6)
}
