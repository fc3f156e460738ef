package testutil

import (
	"crypto/sha1"
	"encoding/binary"
	"net/netip"
	"unicode/utf16"
)

// PNRP message builders ([MS-PNRP] §2.2; protocols.md §5.2). No public PNRP
// capture exists, so the project makes its own test traffic with these; a
// test checks Wireshark's PNRP dissector reads what they build.
//
// All integers are big-endian unless a comment says otherwise. Every field
// starts on a 4-byte boundary: the builders pad each field to 4 bytes, and
// the last one of a message only when Wireshark expects it (Wireshark 4.0
// does not skip padding after an IPV6_ENDPOINT_ARRAY, EXTENDED_PAYLOAD or
// VALIDATE_CPA, so a message must not end in padding after those; keep an
// extended payload a multiple of 4 bytes long when a field follows it and
// tshark must read the result).

// PNRP message types (MS-PNRP §2.2.1).
const (
	PNRPSolicit   uint8 = 0x01
	PNRPAdvertise uint8 = 0x02
	PNRPRequest   uint8 = 0x03
	PNRPFlood     uint8 = 0x04
	PNRPInquire   uint8 = 0x07
	PNRPAuthority uint8 = 0x08
	PNRPAck       uint8 = 0x09
	PNRPLookup    uint8 = 0x0B
)

// PNRP field IDs (MS-PNRP §2.2).
const (
	PNRPFieldHeader            uint16 = 0x0010
	PNRPFieldHeaderAcked       uint16 = 0x0018
	PNRPFieldID                uint16 = 0x0030
	PNRPFieldTargetID          uint16 = 0x0038
	PNRPFieldValidateID        uint16 = 0x0039
	PNRPFieldFlags             uint16 = 0x0040
	PNRPFieldFloodControls     uint16 = 0x0043
	PNRPFieldSolicitControls   uint16 = 0x0044
	PNRPFieldLookupControls    uint16 = 0x0045
	PNRPFieldExtendedPayload   uint16 = 0x005A
	PNRPFieldIDArray           uint16 = 0x0060
	PNRPFieldCertChain         uint16 = 0x0080
	PNRPFieldWChar             uint16 = 0x0084
	PNRPFieldClassifier        uint16 = 0x0085
	PNRPFieldHashedNonce       uint16 = 0x0092
	PNRPFieldNonce             uint16 = 0x0093
	PNRPFieldSplitControls     uint16 = 0x0098
	PNRPFieldRoutingEntry      uint16 = 0x009A
	PNRPFieldValidateCPA       uint16 = 0x009B
	PNRPFieldRevokeCPA         uint16 = 0x009C
	PNRPFieldIPv6Endpoint      uint16 = 0x009D
	PNRPFieldIPv6EndpointArray uint16 = 0x009E
)

// Flag bits (MS-PNRP §2.2.2).
const (
	PNRPInquireWantCPA       uint16 = 0x0010 // A: send the CPA
	PNRPInquireWantPayload   uint16 = 0x0008 // X: send the extended payload
	PNRPInquireWantCertChain uint16 = 0x0004 // C: send the certificate chain
	PNRPAuthorityNotFound    uint16 = 0x0001 // N
	PNRPAuthorityLeafSet     uint16 = 0x0200 // L
	PNRPLookupAck            uint16 = 0x0002 // A bit of LOOKUP_CONTROLS

	PNRPCPARevoke          uint8 = 0x01 // R
	PNRPCPAFriendlyUTF8    uint8 = 0x02 // U
	PNRPCPABinaryAuthority uint8 = 0x04 // A
	PNRPCPAClassifierHash  uint8 = 0x08 // C
	PNRPCPAFriendlyName    uint8 = 0x10 // F
	PNRPCPAPayload         uint8 = 0x20 // X
)

// PNRPAuthorityFragment is the largest AUTHORITY_BUFFER piece one AUTHORITY
// carries; fragment offsets are multiples of it (MS-PNRP §2.2.2.6).
const PNRPAuthorityFragment = 1188

// PNRPField returns one field: FieldID, Length (4 + len(value)), value; no
// padding.
func PNRPField(id uint16, value []byte) []byte {
	b := make([]byte, 4, 4+len(value))
	binary.BigEndian.PutUint16(b, id)
	binary.BigEndian.PutUint16(b[2:], uint16(4+len(value)))
	return append(b, value...)
}

// PNRPMessage returns a message: the 12-byte PNRP_HEADER (identifier 0x51,
// version 4.0) and the fields, each padded to 4 bytes (see appendFields).
func PNRPMessage(typ uint8, id uint32, fields ...[]byte) []byte {
	b := []byte{0x00, 0x10, 0x00, 0x0c, 0x51, 0x04, 0x00, typ, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[8:], id)
	return appendFields(b, fields)
}

// appendFields appends the fields, padding each to 4 bytes. The last one is
// padded only when Wireshark expects it (CLASSIFIER, CERT_CHAIN,
// ROUTING_ENTRY: its dissector skips padding after those alone).
func appendFields(b []byte, fields [][]byte) []byte {
	for i, f := range fields {
		b = append(b, f...)
		last := i == len(fields)-1
		if id := binary.BigEndian.Uint16(f); last && id != PNRPFieldClassifier && id != PNRPFieldCertChain && id != PNRPFieldRoutingEntry {
			break
		}
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
	}
	return b
}

// PNRPAckedField returns PNRP_HEADER_ACKED for message id.
func PNRPAckedField(id uint32) []byte { return PNRPField(PNRPFieldHeaderAcked, pnBE32(id)) }

// PNRPFlagsField returns a FLAGS_FIELD.
func PNRPFlagsField(flags uint16) []byte { return PNRPField(PNRPFieldFlags, pnBE16(flags)) }

// PNRPIDField returns a PNRP_ID, TARGET_PNRP_ID or VALIDATE_PNRP_ID field.
func PNRPIDField(fieldID uint16, id [32]byte) []byte { return PNRPField(fieldID, id[:]) }

// PNRPIDArray returns a PNRP_ID_ARRAY (NumEntries, ArrayLength,
// ElementFieldType 0x0030, EntryLength 32, IDs).
func PNRPIDArray(ids ...[32]byte) []byte {
	v := append(pnBE16(uint16(len(ids))), pnBE16(uint16(8+32*len(ids)))...)
	v = append(v, pnBE16(PNRPFieldID)...)
	v = append(v, pnBE16(32)...)
	for _, id := range ids {
		v = append(v, id[:]...)
	}
	return PNRPField(PNRPFieldIDArray, v)
}

// PNRPEndpointArray returns an IPV6_ENDPOINT_ARRAY (entries of port and
// IPv6 address, 18 bytes each).
func PNRPEndpointArray(eps ...netip.AddrPort) []byte {
	v := append(pnBE16(uint16(len(eps))), pnBE16(uint16(8+18*len(eps)))...)
	v = append(v, pnBE16(PNRPFieldIPv6Endpoint)...)
	v = append(v, pnBE16(18)...)
	for _, ep := range eps {
		a := ep.Addr().As16()
		v = append(v, pnBE16(ep.Port())...)
		v = append(v, a[:]...)
	}
	return PNRPField(PNRPFieldIPv6EndpointArray, v)
}

// PNRPRoutingEntry returns a ROUTING_ENTRY: the node's PNRP ID, version 4.0,
// port, flags 0 and its addresses.
func PNRPRoutingEntry(id [32]byte, port uint16, addrs ...netip.Addr) []byte {
	v := append([]byte{}, id[:]...)
	v = append(v, 0x04, 0x00)
	v = append(v, pnBE16(port)...)
	v = append(v, 0, byte(len(addrs)))
	for _, a := range addrs {
		b := a.As16()
		v = append(v, b[:]...)
	}
	return PNRPField(PNRPFieldRoutingEntry, v)
}

// PNRPClassifierField returns a CLASSIFIER: NumEntries n, ArrayLength 8+2n,
// WCHAR 0x0084, EntryLength 2, then the UTF-16 code units, big-endian as
// Wireshark reads them, or little-endian when le is set (the byte order is
// unconfirmed, protocols.md §7 item 9).
func PNRPClassifierField(classifier string, le bool) []byte {
	u := utf16.Encode([]rune(classifier))
	v := append(pnBE16(uint16(len(u))), pnBE16(uint16(8+2*len(u)))...)
	v = append(v, pnBE16(PNRPFieldWChar)...)
	v = append(v, pnBE16(2)...)
	for _, c := range u {
		if le {
			v = binary.LittleEndian.AppendUint16(v, c)
		} else {
			v = binary.BigEndian.AppendUint16(v, c)
		}
	}
	return PNRPField(PNRPFieldClassifier, v)
}

// PNRPSolicitMessage returns a SOLICIT: SOLICIT_CONTROLS (SolicitType any)
// and HASHED_NONCE, the SHA-1 of nonce (MS-PNRP §2.2.2.1).
func PNRPSolicitMessage(id uint32, nonce [16]byte) []byte {
	h := sha1.Sum(nonce[:])
	return PNRPMessage(PNRPSolicit, id,
		PNRPField(PNRPFieldSolicitControls, []byte{0, 0}),
		PNRPField(PNRPFieldHashedNonce, h[:]))
}

// PNRPAdvertiseMessage returns an ADVERTISE answering SOLICIT acked: the
// cached IDs and the solicitor's hashed nonce (MS-PNRP §2.2.2.2).
func PNRPAdvertiseMessage(id, acked uint32, nonce [16]byte, ids ...[32]byte) []byte {
	h := sha1.Sum(nonce[:])
	return PNRPMessage(PNRPAdvertise, id, PNRPAckedField(acked), PNRPIDArray(ids...),
		PNRPField(PNRPFieldHashedNonce, h[:]))
}

// PNRPRequestMessage returns a REQUEST for the listed IDs with the nonce
// whose hash the SOLICIT carried (MS-PNRP §2.2.2.3).
func PNRPRequestMessage(id uint32, nonce [16]byte, ids ...[32]byte) []byte {
	return PNRPMessage(PNRPRequest, id, PNRPField(PNRPFieldNonce, nonce[:]), PNRPIDArray(ids...))
}

// PNRPFloodMessage returns a FLOOD of one cache entry: FLOOD_CONTROLS,
// VALIDATE_PNRP_ID, the entry's ROUTING_ENTRY and the flagged path
// (MS-PNRP §2.2.2.4).
func PNRPFloodMessage(id uint32, entry [32]byte, port uint16, addr netip.Addr, path ...netip.AddrPort) []byte {
	return PNRPMessage(PNRPFlood, id,
		PNRPField(PNRPFieldFloodControls, []byte{0, 0, 0}),
		PNRPIDField(PNRPFieldValidateID, entry),
		PNRPRoutingEntry(entry, port, addr),
		PNRPEndpointArray(path...))
}

// PNRPLookupSpec describes a LOOKUP (MS-PNRP §2.2.2.8).
type PNRPLookupSpec struct {
	Classifier      string           // the peer name's classifier; the target ID derives from it
	Authority       string           // "0" (unsecured, the default) or 40 hex digits
	ResolveCriteria uint8            // 0 none, 1 any peer name, 2 nearest, 4 nearest64, 8 upper bits
	ReasonCode      uint8            // 0 app request, 1 registration, 2 cache maintenance, 3 split detection
	Validate        [32]byte         // VALIDATE_PNRP_ID: the best match so far
	Path            []netip.AddrPort // the flagged path, at least the sender
}

// PNRPLookupMessage returns a LOOKUP: LOOKUP_CONTROLS, TARGET_PNRP_ID,
// VALIDATE_PNRP_ID, IPV6_ENDPOINT_ARRAY.
func PNRPLookupMessage(id uint32, l PNRPLookupSpec) []byte {
	ctl := []byte{0, 0, 0, 0, l.ResolveCriteria, l.ReasonCode, 0, 0}
	binary.BigEndian.PutUint16(ctl[2:], 0x0100) // precision: a few bits
	return PNRPMessage(PNRPLookup, id,
		PNRPField(PNRPFieldLookupControls, ctl),
		PNRPIDField(PNRPFieldTargetID, PNRPIDFor(l.Authority, l.Classifier, [16]byte{})),
		PNRPIDField(PNRPFieldValidateID, l.Validate),
		PNRPEndpointArray(l.Path...))
}

// PNRPInquireMessage returns an INQUIRE asking the owner of target for the
// items in flags (PNRPInquireWant...; an RA expert asks for all three).
func PNRPInquireMessage(id uint32, flags uint16, target [32]byte) []byte {
	return PNRPMessage(PNRPInquire, id, PNRPFlagsField(flags), PNRPIDField(PNRPFieldValidateID, target))
}

// PNRPAckMessage returns an ACK of message acked.
func PNRPAckMessage(id, acked uint32) []byte {
	return PNRPMessage(PNRPAck, id, PNRPAckedField(acked))
}

// PNRPCPA describes an encoded CPA (MS-PNRP §2.2.3.1). Several of its
// integers are little-endian.
type PNRPCPA struct {
	Flags           uint8    // PNRPCPA... bits; A and F are set from the fields below
	NotAfter        uint64   // FILETIME
	ServiceLocation [16]byte // the ID's low 128 bits
	Nonce           [16]byte
	BinaryAuthority []byte // 20 bytes for secure names, nil for unsecured
	FriendlyName    string // e.g. the decimal key length in RA secure contacts
	Endpoints       []netip.AddrPort
}

// Encode returns the encoded CPA.
func (c PNRPCPA) Encode() []byte {
	flags := c.Flags
	if c.BinaryAuthority != nil {
		flags |= PNRPCPABinaryAuthority
	}
	if c.FriendlyName != "" {
		flags |= PNRPCPAFriendlyName | PNRPCPAFriendlyUTF8
	}
	b := []byte{0, 0, 0x00, 0x02, 0x00, 0x04, flags, 0}
	b = binary.LittleEndian.AppendUint64(b, c.NotAfter)
	b = append(b, c.ServiceLocation[:]...)
	if flags&PNRPCPARevoke == 0 {
		b = append(b, c.Nonce[:]...)
	}
	if flags&PNRPCPABinaryAuthority != 0 {
		var a [20]byte
		copy(a[:], c.BinaryAuthority)
		b = append(b, a[:]...)
	}
	if flags&PNRPCPAFriendlyName != 0 {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(c.FriendlyName)))
		b = append(b, c.FriendlyName...)
	}
	// Service address list: count, entry length (LE), then port + address.
	b = binary.LittleEndian.AppendUint16(b, uint16(len(c.Endpoints)))
	b = binary.LittleEndian.AppendUint16(b, 18)
	for _, ep := range c.Endpoints {
		a := ep.Addr().As16()
		b = append(b, pnBE16(ep.Port())...)
		b = append(b, a[:]...)
	}
	// No payload structures: count 0, total bytes 4 (the two counters).
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint16(b, 4)
	// Public key (length, OID length, reserved, key length, unused bits,
	// OID, key) and signature (length, signature length, hash algorithm,
	// signature): fixed fake values of the right shape.
	oid := []byte("1.2.840.113549.1.1.1\x00")
	key := make([]byte, 16)
	pk := binary.LittleEndian.AppendUint16(nil, uint16(9+len(oid)+len(key)))
	pk = binary.LittleEndian.AppendUint16(pk, uint16(len(oid)))
	pk = append(pk, 0, 0)
	pk = binary.LittleEndian.AppendUint16(pk, uint16(len(key)))
	pk = append(pk, 0)
	pk = append(append(pk, oid...), key...)
	b = append(b, pk...)
	sig := make([]byte, 16)
	sg := binary.LittleEndian.AppendUint16(nil, uint16(8+len(sig)))
	sg = binary.LittleEndian.AppendUint16(sg, uint16(len(sig)))
	sg = binary.LittleEndian.AppendUint32(sg, 0x8004) // CALG_SHA1
	b = append(b, append(sg, sig...)...)
	binary.LittleEndian.PutUint16(b, uint16(len(b)))
	return b
}

// PNRPAuthorityBuffer describes an AUTHORITY_BUFFER (MS-PNRP §2.2.2.6.1).
type PNRPAuthorityBuffer struct {
	Flags           uint16 // FLAGS_FIELD (PNRPAuthority...)
	CertChain       []byte // CERT_CHAIN value, omitted when nil
	Classifier      string // CLASSIFIER, omitted when ""
	ClassifierLE    bool   // write the classifier little-endian
	ExtendedPayload []byte // EXTENDED_PAYLOAD value, omitted when nil
	CPA             *PNRPCPA
}

// Encode returns the AUTHORITY_BUFFER: FLAGS_FIELD, [CERT_CHAIN],
// [CLASSIFIER], [EXTENDED_PAYLOAD], [VALIDATE_CPA].
func (a PNRPAuthorityBuffer) Encode() []byte {
	fields := [][]byte{PNRPFlagsField(a.Flags)}
	if a.CertChain != nil {
		fields = append(fields, PNRPField(PNRPFieldCertChain, a.CertChain))
	}
	if a.Classifier != "" {
		fields = append(fields, PNRPClassifierField(a.Classifier, a.ClassifierLE))
	}
	if a.ExtendedPayload != nil {
		fields = append(fields, PNRPField(PNRPFieldExtendedPayload, a.ExtendedPayload))
	}
	if a.CPA != nil {
		fields = append(fields, PNRPField(PNRPFieldValidateCPA, a.CPA.Encode()))
	}
	return appendFields(nil, fields)
}

// PNRPAuthorityMessages returns the AUTHORITY messages that carry buf in
// answer to message acked: one per 1188-byte fragment, all with message ID
// id (MS-PNRP §2.2.2.6, §3.1.5.6).
func PNRPAuthorityMessages(id, acked uint32, buf []byte) [][]byte {
	var out [][]byte
	for off := 0; off == 0 || off < len(buf); off += PNRPAuthorityFragment {
		end := min(off+PNRPAuthorityFragment, len(buf))
		split := append(pnBE16(uint16(len(buf))), pnBE16(uint16(off))...)
		m := PNRPMessage(PNRPAuthority, id, PNRPAckedField(acked), PNRPField(PNRPFieldSplitControls, split))
		out = append(out, append(m, buf[off:end]...))
	}
	return out
}

// PNRPRAContactAuthority returns the single AUTHORITY a Remote Assistance
// novice's PNRP stack sends for its secure "RAContact" name: flags,
// CLASSIFIER RAContact, an extended payload (the wrapped connection string;
// here pnFiller of the given length) and a CPA with a binary authority
// ([MS-RAIOP] §3.3.5; protocols.md §5.5).
func PNRPRAContactAuthority(id, acked uint32, payloadLen int) []byte {
	auth := make([]byte, 20)
	for i := range auth {
		auth[i] = byte(0xa0 + i)
	}
	buf := PNRPAuthorityBuffer{
		Classifier:      "RAContact",
		ExtendedPayload: pnFiller(payloadLen),
		CPA:             &PNRPCPA{Flags: PNRPCPAPayload, BinaryAuthority: auth, FriendlyName: "324"},
	}.Encode()
	return PNRPAuthorityMessages(id, acked, buf)[0]
}

// PNRPIDFor returns a PNRP ID for authority.classifier with the given
// service location: the P2P ID is the first 128 bits of
// SHA1(SHA1(classifier) | authority hash | SHA1(classifier) | "PNRP"), the
// authority hash being 20 zero bytes for unsecured names (authority "0" or
// ""), else the authority's 40 hex digits decoded (MS-PNRP §1.3.1.2,
// §3.1.4.4.1). The string encodings hashed are unconfirmed (protocols.md
// §5.3): this uses UTF-16LE, so the IDs are realistic in shape only.
func PNRPIDFor(authority, classifier string, serviceLocation [16]byte) [32]byte {
	var ah [20]byte
	if authority != "" && authority != "0" {
		for i := 0; i < 20 && 2*i+1 < len(authority); i++ {
			ah[i] = pnUnhex(authority[2*i])<<4 | pnUnhex(authority[2*i+1])
		}
	}
	ch := sha1.Sum(pnUTF16LE(classifier))
	h := sha1.New()
	h.Write(ch[:])
	h.Write(ah[:])
	h.Write(ch[:])
	h.Write(pnUTF16LE("PNRP"))
	var id [32]byte
	copy(id[:16], h.Sum(nil))
	copy(id[16:], serviceLocation[:])
	return id
}

// TeredoAuth is a Teredo authentication indicator (RFC 4380 §5.1.1).
type TeredoAuth struct {
	ClientID, AuthValue []byte
	Nonce               [8]byte
	Confirmation        uint8
}

// TeredoEncap describes the Teredo and IPv6 headers around an inner packet.
type TeredoEncap struct {
	Auth     *TeredoAuth    // authentication indicator, omitted when nil
	Origin   netip.AddrPort // origin indication, omitted when zero
	Src, Dst netip.Addr     // inner IPv6 addresses
	HopLimit uint8          // default 128 (Windows)
}

// TeredoPayload returns a Teredo UDP payload: [authentication indicator]
// [origin indication] IPv6 header (next header nh) and ipv6Payload
// (RFC 4380 §5.1.1; protocols.md §3.2).
func TeredoPayload(e TeredoEncap, nh uint8, ipv6Payload []byte) []byte {
	var b []byte
	if a := e.Auth; a != nil {
		b = append(b, 0x00, 0x01, byte(len(a.ClientID)), byte(len(a.AuthValue)))
		b = append(b, a.ClientID...)
		b = append(b, a.AuthValue...)
		b = append(b, a.Nonce[:]...)
		b = append(b, a.Confirmation)
	}
	if e.Origin.IsValid() {
		o := e.Origin.Addr().As4()
		b = append(b, 0x00, 0x00)
		b = append(b, pnBE16(^e.Origin.Port())...)
		b = append(b, ^o[0], ^o[1], ^o[2], ^o[3])
	}
	return append(b, InnerIPv6Packet(e.Src, e.Dst, nh, e.HopLimit, ipv6Payload)...)
}

// TeredoUDP returns a Teredo UDP payload carrying an IPv6/UDP datagram from
// e.Src:sport to e.Dst:dport, with a correct UDP checksum; with PNRP
// messages as payload this is PNRP over Teredo.
func TeredoUDP(e TeredoEncap, sport, dport uint16, payload []byte) []byte {
	return TeredoPayload(e, 17, InnerUDP6(e.Src, e.Dst, sport, dport, payload))
}

// TeredoBubble returns a bubble: an IPv6 header with no next header (59)
// and no payload (RFC 4380 §2.8).
func TeredoBubble(e TeredoEncap) []byte { return TeredoPayload(e, 59, nil) }

// InnerIPv6Packet returns an IPv6 header followed by payload (hop limit 0 means
// 128).
func InnerIPv6Packet(src, dst netip.Addr, nh, hopLimit uint8, payload []byte) []byte {
	if hopLimit == 0 {
		hopLimit = 128
	}
	b := make([]byte, 40, 40+len(payload))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(len(payload)))
	b[6], b[7] = nh, hopLimit
	s, d := src.As16(), dst.As16()
	copy(b[8:], s[:])
	copy(b[24:], d[:])
	return append(b, payload...)
}

// InnerUDP6 returns a UDP header and payload with the checksum over the IPv6
// pseudo-header (RFC 8200 §8.1).
func InnerUDP6(src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	b := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(b, sport)
	binary.BigEndian.PutUint16(b[2:], dport)
	binary.BigEndian.PutUint16(b[4:], uint16(8+len(payload)))
	b = append(b, payload...)
	s, d := src.As16(), dst.As16()
	var sum uint32
	add := func(p []byte) {
		for i := 0; i+1 < len(p); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(p[i:]))
		}
		if len(p)%2 == 1 {
			sum += uint32(p[len(p)-1]) << 8
		}
	}
	add(s[:])
	add(d[:])
	sum += uint32(len(b)) + 17
	add(b)
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	c := ^uint16(sum)
	if c == 0 {
		c = 0xffff
	}
	binary.BigEndian.PutUint16(b[6:], c)
	return b
}

func pnBE16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
func pnBE32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func pnUTF16LE(s string) []byte {
	var b []byte
	for _, c := range utf16.Encode([]rune(s)) {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return b
}

func pnUnhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10
	}
	return 0
}

// pnFiller returns n bytes of a fixed pattern.
func pnFiller(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}
