package classify

import (
	"encoding/binary"
	"net/netip"
	"unicode/utf16"
)

// PNRP (Peer Name Resolution Protocol v4, [MS-PNRP]; protocols.md §5) is how
// Remote Assistance Easy Connect publishes and finds a novice: the novice
// registers a peer name whose classifier is derived from the Easy Connect
// password (or "RAContact" for returning contacts) with the encrypted
// connection string as extended payload ([MS-RAIOP] §3.1–3.3).

// PNRPPort is the IANA port of PNRP (MS-PNRP §2.1). Nodes may use others.
const PNRPPort = 3540

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

// PNRP field IDs (MS-PNRP §2.2; protocols.md §5.2).
const (
	pnrpFieldHeader            uint16 = 0x0010
	pnrpFieldHeaderAcked       uint16 = 0x0018
	pnrpFieldID                uint16 = 0x0030
	pnrpFieldTargetID          uint16 = 0x0038
	pnrpFieldValidateID        uint16 = 0x0039
	pnrpFieldFlags             uint16 = 0x0040
	pnrpFieldFloodControls     uint16 = 0x0043
	pnrpFieldSolicitControls   uint16 = 0x0044
	pnrpFieldLookupControls    uint16 = 0x0045
	pnrpFieldExtendedPayload   uint16 = 0x005A
	pnrpFieldIDArray           uint16 = 0x0060
	pnrpFieldCertChain         uint16 = 0x0080
	pnrpFieldWChar             uint16 = 0x0084
	pnrpFieldClassifier        uint16 = 0x0085
	pnrpFieldHashedNonce       uint16 = 0x0092
	pnrpFieldNonce             uint16 = 0x0093
	pnrpFieldSplitControls     uint16 = 0x0098
	pnrpFieldRoutingEntry      uint16 = 0x009A
	pnrpFieldValidateCPA       uint16 = 0x009B
	pnrpFieldRevokeCPA         uint16 = 0x009C
	pnrpFieldIPv6Endpoint      uint16 = 0x009D
	pnrpFieldIPv6EndpointArray uint16 = 0x009E
)

const (
	pnrpIdentifier    = 0x51
	pnrpVersionMajor  = 0x04
	pnrpHeaderLen     = 12
	pnrpMinMessage    = 20  // an ACK: header + PNRP_HEADER_ACKED (Wireshark's floor)
	pnrpMaxFields     = 64  // bound on the field walk of one message
	pnrpMaxClassifier = 150 // UTF-16 code units (MS-PNRP §1.3.1.1)
	pnrpMaxAuthBuffer = 0x91E4
	pnrpCarryMax      = 12 + 2*pnrpMaxClassifier + 8

	// Encoded CPA flags (MS-PNRP §2.2.3.1).
	pnrpCPARevoke          = 0x01
	pnrpCPABinaryAuthority = 0x04
	pnrpCPAExtendedPayload = 0x20
)

// PNRPMessage is one PNRP message taken apart (MS-PNRP §2.2). Its slices
// point into the payload it was parsed from.
type PNRPMessage struct {
	Type         uint8  // message type (PNRPSolicit ...)
	VersionMinor uint8  // header VersionMinor
	ID           uint32 // header Message ID
	Fields       int    // fields walked after the header

	HasAcked bool   // a PNRP_HEADER_ACKED field was present
	AckedID  uint32 // the acknowledged message ID

	HasFlags bool   // a FLAGS_FIELD was present
	Flags    uint16 // its flags (meaning depends on the message type)

	HasLookupControls bool  // a LOOKUP_CONTROLS field was present
	ResolveCriteria   uint8 // LOOKUP_CONTROLS ResolveCriteria
	ReasonCode        uint8 // LOOKUP_CONTROLS ReasonCode (0 app request, 1 registration, 2 cache maintenance, 3 split detection)

	// Split is true for an AUTHORITY carrying SPLIT_CONTROLS: SplitSize is
	// the size of the whole AUTHORITY_BUFFER, SplitOffset the offset of
	// Fragment in it (a multiple of 1188).
	Split       bool
	SplitSize   uint16
	SplitOffset uint16
	Fragment    []byte

	// Classifier holds the CLASSIFIER's UTF-16 code units (2 bytes each, in
	// the byte order the sender used; see ClassifierString), nil if absent.
	Classifier []byte
	// ExtendedPayload is true when an EXTENDED_PAYLOAD field was present;
	// ExtendedPayloadLen is its value's length.
	ExtendedPayload    bool
	ExtendedPayloadLen int

	// CPA is true when a VALIDATE_CPA or REVOKE_CPA field held an encoded
	// CPA whose fixed part could be read; CPAFlags are its flags and
	// BinaryAuthority its 20-byte authority (secure names only).
	CPA             bool
	CPAFlags        uint8
	BinaryAuthority []byte

	// Cut is true when the message is an AUTHORITY fragment that more
	// fragments follow and its last field continues in the next one: CutField
	// holds the bytes of that field present here, CutAt its offset in the
	// AUTHORITY_BUFFER.
	Cut      bool
	CutField []byte
	CutAt    int
}

// ParsePNRP takes a UDP payload apart as a PNRP message: it validates the
// header (field ID 0x0010, length 12, identifier 0x51, major version 4, a
// known message type; MS-PNRP §2.2.1, protocols.md §5.6) and walks the fields
// that follow, each on a 4-byte boundary, checking the lengths of the fields
// whose size the specification fixes. The walk is bounded (64 fields). For an
// AUTHORITY the AUTHORITY_BUFFER fragment is walked only when it is the first
// one (offset 0); a field cut by the fragment end is reported in Cut.
//
// ParsePNRP does not allocate.
func ParsePNRP(payload []byte) (PNRPMessage, bool) {
	var m PNRPMessage
	if !pnrpHeader(payload) {
		return m, false
	}
	m.Type = payload[7]
	m.VersionMinor = payload[6]
	m.ID = binary.BigEndian.Uint32(payload[8:])
	if !pnrpWalk(payload, pnrpHeaderLen, 0, true, false, &m) {
		return m, false
	}
	switch m.Type {
	case PNRPAck:
		return m, m.HasAcked
	case PNRPAuthority:
		return m, m.HasAcked && m.Split
	case PNRPLookup:
		return m, m.HasLookupControls
	}
	return m, true
}

// pnrpHeader checks the fixed 12-byte header.
func pnrpHeader(b []byte) bool {
	if len(b) < pnrpMinMessage || binary.BigEndian.Uint16(b) != pnrpFieldHeader ||
		binary.BigEndian.Uint16(b[2:]) != pnrpHeaderLen || b[4] != pnrpIdentifier || b[5] != pnrpVersionMajor {
		return false
	}
	return pnrpTypeName(b[7]) != ""
}

// pnrpWalk walks the fields of b from off. top is true for a message's own
// fields (where SPLIT_CONTROLS may start an AUTHORITY_BUFFER fragment);
// bufOff is b's offset in the AUTHORITY_BUFFER when b is a fragment; more
// says further fragments follow, so the last field may be cut.
func pnrpWalk(b []byte, off, bufOff int, top, more bool, m *PNRPMessage) bool {
	for off < len(b) {
		if m.Fields >= pnrpMaxFields {
			return false
		}
		if len(b)-off < 4 {
			if more {
				m.cut(b[off:], bufOff+off)
				return true
			}
			return allZero(b[off:]) // padding after the last field
		}
		id := binary.BigEndian.Uint16(b[off:])
		l := int(binary.BigEndian.Uint16(b[off+2:]))
		if l < 4 {
			return false
		}
		if off+l > len(b) {
			if more {
				m.cut(b[off:], bufOff+off)
				return true
			}
			return false
		}
		m.Fields++
		if id == pnrpFieldSplitControls {
			// MS-PNRP §2.2.2.6: Size, Offset, then the buffer fragment.
			if !top || m.Type != PNRPAuthority || l != 8 || m.Split {
				return false
			}
			m.Split = true
			m.SplitSize = binary.BigEndian.Uint16(b[off+4:])
			m.SplitOffset = binary.BigEndian.Uint16(b[off+6:])
			m.Fragment = b[off+8:]
			end := int(m.SplitOffset) + len(m.Fragment)
			if m.SplitSize > pnrpMaxAuthBuffer || m.SplitOffset%1188 != 0 || end > int(m.SplitSize) {
				return false
			}
			if m.SplitOffset != 0 {
				return true // a later fragment: its fields cannot be found from here
			}
			return pnrpWalk(m.Fragment, 0, 0, false, end < int(m.SplitSize), m)
		}
		if !m.field(id, b[off+4:off+l]) {
			return false
		}
		off += (l + 3) &^ 3
	}
	return true
}

func (m *PNRPMessage) cut(field []byte, at int) {
	m.Cut, m.CutField, m.CutAt = true, field, at
}

// field checks and records one field's value (MS-PNRP §2.2.2, §2.2.3).
func (m *PNRPMessage) field(id uint16, v []byte) bool {
	u16 := func(i int) int { return int(binary.BigEndian.Uint16(v[i:])) }
	switch id {
	case pnrpFieldHeader, pnrpFieldWChar, pnrpFieldSplitControls:
		return false // only at the start, inside arrays, or at the top
	case pnrpFieldHeaderAcked:
		if len(v) != 4 {
			return false
		}
		m.HasAcked, m.AckedID = true, binary.BigEndian.Uint32(v)
	case pnrpFieldID, pnrpFieldTargetID, pnrpFieldValidateID:
		return len(v) > 0 && len(v)%32 == 0
	case pnrpFieldFlags:
		if len(v) != 2 {
			return false
		}
		m.HasFlags, m.Flags = true, uint16(u16(0))
	case pnrpFieldFloodControls:
		return len(v) == 3
	case pnrpFieldSolicitControls:
		return len(v) == 2
	case pnrpFieldLookupControls:
		if len(v) != 8 {
			return false
		}
		m.HasLookupControls = true
		m.ResolveCriteria, m.ReasonCode = v[4], v[5]
	case pnrpFieldExtendedPayload:
		m.ExtendedPayload, m.ExtendedPayloadLen = true, len(v)
	case pnrpFieldIDArray:
		// NumEntries, ArrayLength, ElementFieldType 0x0030, EntryLength 32.
		return len(v) >= 8 && u16(4) == int(pnrpFieldID) && u16(6) == 32 && len(v) == 8+32*u16(0)
	case pnrpFieldClassifier:
		// NumEntries n, ArrayLength 8+2n, 0x0084, 0x0002, n code units.
		if len(v) < 8 || u16(4) != int(pnrpFieldWChar) || u16(6) != 2 {
			return false
		}
		n := u16(0)
		if n == 0 || n > pnrpMaxClassifier || u16(2) != 8+2*n || len(v) != 8+2*n {
			return false
		}
		m.Classifier = v[8:]
	case pnrpFieldHashedNonce:
		return len(v) == 20
	case pnrpFieldNonce:
		return len(v) == 16
	case pnrpFieldRoutingEntry:
		// PNRP ID (32), version (2), port (2), flags (1), address count (1),
		// addresses (16 each).
		return len(v) >= 38 && len(v) == 38+16*int(v[37])
	case pnrpFieldValidateCPA, pnrpFieldRevokeCPA:
		m.cpa(v)
	case pnrpFieldIPv6Endpoint:
		return len(v) == 18
	case pnrpFieldIPv6EndpointArray:
		return len(v) >= 8 && u16(4) == int(pnrpFieldIPv6Endpoint) && u16(6) == 18 && len(v) == 8+18*u16(0)
	}
	return true // certificate chains and unknown fields are skipped
}

// cpa reads the fixed start of an encoded CPA: length, versions, flags,
// reserved, NotAfter (8), service location (16), nonce (16, absent in a
// revocation), binary authority (20, when flag A) (MS-PNRP §2.2.3.1).
func (m *PNRPMessage) cpa(v []byte) {
	if len(v) < 32 {
		return
	}
	m.CPA, m.CPAFlags = true, v[6]
	off := 32
	if m.CPAFlags&pnrpCPARevoke == 0 {
		off += 16
	}
	if m.CPAFlags&pnrpCPABinaryAuthority != 0 && len(v) >= off+20 {
		m.BinaryAuthority = v[off : off+20]
	}
}

// ClassifierString decodes the classifier (it allocates). PNRP code units
// are big-endian as Wireshark reads them, but the specification's default
// Unicode is little-endian (protocols.md §7 item 9): the order in which more
// code units have a zero high byte wins, big-endian on a tie.
func (m *PNRPMessage) ClassifierString() string { return pnrpString(m.Classifier) }

func pnrpString(b []byte) string {
	bo := pnrpOrder(b)
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = bo.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

func pnrpOrder(b []byte) binary.ByteOrder {
	be, le := 0, 0
	for i := 0; i+1 < len(b); i += 2 {
		if b[i] == 0 {
			be++
		}
		if b[i+1] == 0 {
			le++
		}
	}
	if le > be {
		return binary.LittleEndian
	}
	return binary.BigEndian
}

// pnrpEachUnit calls fn with each code unit of b; it stops when fn returns false.
func pnrpEachUnit(b []byte, fn func(uint16) bool) bool {
	bo := pnrpOrder(b)
	for i := 0; i+1 < len(b); i += 2 {
		if !fn(bo.Uint16(b[i:])) {
			return false
		}
	}
	return true
}

// pnrpClassifierIs compares a classifier with an ASCII string, ignoring case.
func pnrpClassifierIs(b []byte, s string) bool {
	if len(b) != 2*len(s) {
		return false
	}
	i := 0
	return pnrpEachUnit(b, func(u uint16) bool {
		c := s[i]
		i++
		return u < 0x80 && lowerASCII(byte(u)) == lowerASCII(c)
	})
}

// pnrpClassifierHex32 reports a classifier of exactly 32 uppercase hex
// digits: the unsecured Easy Connect name's HexConvertedUnicodeString
// ([MS-RAIOP] §3.1; protocols.md §5.5).
func pnrpClassifierHex32(b []byte) bool {
	if len(b) != 64 {
		return false
	}
	return pnrpEachUnit(b, func(u uint16) bool {
		return (u >= '0' && u <= '9') || (u >= 'A' && u <= 'F')
	})
}

func lowerASCII(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// pnrpTypeName returns the specification's name of a message type, or "".
func pnrpTypeName(t uint8) string {
	switch t {
	case PNRPSolicit:
		return "SOLICIT"
	case PNRPAdvertise:
		return "ADVERTISE"
	case PNRPRequest:
		return "REQUEST"
	case PNRPFlood:
		return "FLOOD"
	case PNRPInquire:
		return "INQUIRE"
	case PNRPAuthority:
		return "AUTHORITY"
	case PNRPAck:
		return "ACK"
	case PNRPLookup:
		return "LOOKUP"
	}
	return ""
}

func pnrpReasonName(r uint8) string {
	switch r {
	case 0:
		return "app-request"
	case 1:
		return "registration"
	case 2:
		return "cache-maintenance"
	case 3:
		return "split-detection"
	}
	return "other"
}

// PNRPEvidence is what the PNRP detector learnt about a flow; it is written
// under rasentry.pnrp.
type PNRPEvidence struct {
	// MessageTypes lists the message types seen (SOLICIT, LOOKUP, ...), in
	// first-seen order.
	MessageTypes []string `json:"message_types"`
	// Classifier is the peer name's classifier from an AUTHORITY, preferring
	// one that marks Remote Assistance.
	Classifier string `json:"classifier,omitempty"`
	// PeerName is authority.classifier, when the AUTHORITY's CPA says the
	// authority: "0" for unsecured names, the hex binary authority for
	// secure ones (MS-PNRP §1.3.1.1).
	PeerName string `json:"peer_name,omitempty"`
	// Cloud is the scope of the PNRP cloud the flow belongs to, from its
	// addresses: global, site-local or link-local. (Cloud names never
	// appear on the wire; Windows calls these Global_, SiteLocal_... .)
	Cloud string `json:"cloud,omitempty"`
	// ExtendedPayload is true when an AUTHORITY carried an extended payload.
	ExtendedPayload bool `json:"extended_payload"`
	// ReasonCode is the first LOOKUP's reason: app-request, registration,
	// cache-maintenance, split-detection, other.
	ReasonCode string `json:"reason_code,omitempty"`
}

// PNRPOptions configures a PNRPDetector.
type PNRPOptions struct {
	// Budget is the number of UDP payload bytes per direction the detector
	// looks at (default DefaultPNRPBudget).
	Budget int
}

// DefaultPNRPBudget is the default per-direction byte budget. Two PNRP nodes
// talk over one flow (port 3540 to port 3540) for cache synchronisation,
// lookups and resolutions alike, and the AUTHORITY that names a Remote
// Assistance peer may come after several of them.
const DefaultPNRPBudget = 32 << 10

// PNRPDetector recognises PNRP on any UDP port over IPv6 (PNRP is IPv6 only,
// MS-PNRP §3.1.4.1; at an IPv4 edge it runs inside Teredo). A message with a
// valid header and field walk labels the flow pnrp (high). An AUTHORITY whose
// classifier is "RAContact" (secure RA contact) labels it
// pnrp-ra-easyconnect (high); a classifier of 32 uppercase hex digits with an
// extended payload in the same AUTHORITY_BUFFER, unless its CPA names a
// secure authority, labels it pnrp-ra-easyconnect (medium): other
// applications may pick such classifiers ([MS-RAIOP] §3.1–3.3; protocols.md
// §5.5).
//
// AUTHORITY_BUFFERs split over several AUTHORITY messages are followed
// without reassembly: the detector remembers where the next field starts and
// carries at most one cut classifier field across a fragment boundary.
type PNRPDetector struct {
	budget int
}

// NewPNRPDetector returns a PNRP detector.
func NewPNRPDetector(o PNRPOptions) *PNRPDetector {
	if o.Budget <= 0 {
		o.Budget = DefaultPNRPBudget
	}
	return &PNRPDetector{budget: o.Budget}
}

// Name implements Detector.
func (d *PNRPDetector) Name() string { return "pnrp" }

// Budget implements Detector.
func (d *PNRPDetector) Budget() int { return d.budget }

// pnrpState is the detector's per-flow memory.
type pnrpState struct {
	ev    PNRPEvidence
	types uint16 // bit per message type seen

	// The AUTHORITY_BUFFER being followed, per direction.
	auth [2]pnrpAuthBuffer
}

// pnrpAuthBuffer follows one fragmented AUTHORITY_BUFFER.
type pnrpAuthBuffer struct {
	active   bool
	id       uint32 // Message ID shared by the fragments (MS-PNRP §3.1.5.6)
	next     int    // offset of the next fragment expected
	field    int    // offset of the next field to read, when carry is empty
	carry    [pnrpCarryMax]byte
	carryLen int
	carryAt  int // offset of the carried field

	hex32, ext, cpa, secure bool
}

// Inspect implements Detector.
func (d *PNRPDetector) Inspect(ctx *Context, f *Flow, seg *Segment) Status {
	if f.Proto != ProtoUDP || !f.Client.Addr().Is6() || f.Client.Addr().Is4In6() {
		return Done
	}
	st, _ := ctx.State(f).(*pnrpState)
	if seg.Src.Port() <= 1024 {
		// Receivers drop PNRP from ports up to 1024 (MS-PNRP §3.1.5.2).
		if st == nil {
			return Done
		}
		return Continue
	}
	m, ok := ParsePNRP(seg.Payload)
	if !ok {
		switch {
		case pnrpHeader(seg.Payload):
			ctx.Counters.CountMalformed(d.Name())
			return Continue // a PNRP header with broken fields: look at the next one
		case st == nil:
			return Done
		}
		return Continue
	}
	if st == nil {
		st = &pnrpState{}
		st.ev.Cloud = pnrpCloud(f.Client.Addr(), f.Server.Addr())
		ctx.SetState(f, st)
		f.AddLabel(LabelPNRP, ConfidenceHigh)
		if f.AppProto == AppNone {
			f.AppProto = AppPNRP
		}
		f.SetEvidence(d.Name(), &st.ev)
	}
	if bit := uint16(1) << (m.Type & 15); st.types&bit == 0 {
		st.types |= bit
		st.ev.MessageTypes = append(st.ev.MessageTypes, pnrpTypeName(m.Type))
	}
	if m.HasLookupControls && st.ev.ReasonCode == "" {
		st.ev.ReasonCode = pnrpReasonName(m.ReasonCode)
	}
	if m.Type == PNRPAuthority {
		st.authority(ctx, f, seg.Dir&1, &m)
	}
	return Continue
}

// authority follows an AUTHORITY's buffer fragment.
func (st *pnrpState) authority(ctx *Context, f *Flow, dir Direction, m *PNRPMessage) {
	a := &st.auth[dir]
	off := int(m.SplitOffset)
	end := off + len(m.Fragment)
	more := end < int(m.SplitSize)
	w := m
	if off == 0 {
		// ParsePNRP has walked the first fragment already.
		*a = pnrpAuthBuffer{active: true, id: m.ID, field: end}
	} else {
		if !a.active || a.id != m.ID || a.next != off {
			a.active = false // a fragment we cannot place: give the buffer up
			return
		}
		w = &PNRPMessage{Type: PNRPAuthority}
		start, ok := a.resume(w, m.Fragment, off, more)
		if ok && start >= 0 {
			a.carryLen, a.field = 0, end
			ok = pnrpWalk(m.Fragment, start, off, false, more, w)
		}
		if !ok {
			ctx.Counters.CountMalformed("pnrp")
			a.active = false
			return
		}
	}
	st.absorb(f, a, w, !more)
	a.next = end
	if !more {
		a.active = false
	}
}

// resume finishes the field that the previous fragment cut, and returns where
// the walk continues in frag (at buffer offset off), or -1 when the next
// field starts beyond this fragment.
func (a *pnrpAuthBuffer) resume(w *PNRPMessage, frag []byte, off int, more bool) (int, bool) {
	if a.carryLen == 0 {
		return a.startIn(frag, off)
	}
	var tmp [pnrpCarryMax]byte
	n := copy(tmp[:], a.carry[:a.carryLen])
	n += copy(tmp[n:], frag)
	if n < 4 {
		if !more {
			return 0, false
		}
		a.carryLen = copy(a.carry[:], tmp[:n])
		return -1, true
	}
	id := binary.BigEndian.Uint16(tmp[:])
	l := int(binary.BigEndian.Uint16(tmp[2:]))
	if l < 4 {
		return 0, false
	}
	a.carryLen = 0
	a.field = a.carryAt + (l+3)&^3
	if id != pnrpFieldClassifier {
		return a.startIn(frag, off) // only its header was carried: skip it
	}
	if l > n {
		if !more || n >= pnrpCarryMax {
			return 0, false
		}
		a.carryLen = copy(a.carry[:], tmp[:n])
		return -1, true
	}
	w.Fields++
	if !w.field(id, tmp[4:l]) {
		return 0, false
	}
	// tmp is about to go: keep the classifier in the carry buffer, which
	// absorb reads before it reuses the buffer.
	k := copy(a.carry[:], w.Classifier)
	w.Classifier = a.carry[:k]
	return a.startIn(frag, off)
}

// startIn returns where the next field starts in frag (at buffer offset off),
// or -1 when it starts beyond it.
func (a *pnrpAuthBuffer) startIn(frag []byte, off int) (int, bool) {
	start := a.field - off
	if start >= len(frag) {
		return -1, true
	}
	return start, start >= 0
}

// absorb folds the fields of one fragment into the buffer state and the
// evidence, and labels Remote Assistance Easy Connect.
func (st *pnrpState) absorb(f *Flow, a *pnrpAuthBuffer, m *PNRPMessage, complete bool) {
	if m.ExtendedPayload || (m.CPA && m.CPAFlags&pnrpCPAExtendedPayload != 0) {
		a.ext = true
		st.ev.ExtendedPayload = true
	}
	if m.CPA {
		a.cpa = true
		a.secure = m.CPAFlags&pnrpCPABinaryAuthority != 0
	}
	if m.Classifier != nil {
		ra := pnrpClassifierIs(m.Classifier, "RAContact")
		a.hex32 = pnrpClassifierHex32(m.Classifier)
		if st.ev.Classifier == "" || ra || a.hex32 {
			st.ev.Classifier = pnrpString(m.Classifier)
			st.ev.PeerName = ""
		}
		if ra {
			f.AddLabel(LabelPNRPRAEasyConnect, ConfidenceHigh)
		}
	}
	if m.CPA && st.ev.Classifier != "" && st.ev.PeerName == "" {
		if m.BinaryAuthority != nil {
			st.ev.PeerName = hexString(m.BinaryAuthority) + "." + st.ev.Classifier
		} else if m.CPAFlags&pnrpCPABinaryAuthority == 0 {
			st.ev.PeerName = "0." + st.ev.Classifier
		}
	}
	// The CPA, which says whether the name is secure, ends the buffer: wait
	// for it, or for the last fragment.
	if a.hex32 && a.ext && !a.secure && (a.cpa || complete) {
		f.AddLabel(LabelPNRPRAEasyConnect, ConfidenceMedium)
	}
	if m.Cut {
		// Remember where the cut field continues: carry it when it is the
		// classifier (or its header is incomplete), else skip it.
		a.carryLen, a.carryAt = 0, m.CutAt
		if len(m.CutField) < 4 || binary.BigEndian.Uint16(m.CutField) == pnrpFieldClassifier {
			a.carryLen = copy(a.carry[:], m.CutField)
		} else {
			a.field = m.CutAt + (int(binary.BigEndian.Uint16(m.CutField[2:]))+3)&^3
		}
	}
}

// pnrpCloud names the scope of the cloud a flow's addresses belong to
// (MS-PNRP §1.3.3).
func pnrpCloud(a, b netip.Addr) string {
	switch {
	case a.IsLinkLocalUnicast() || b.IsLinkLocalUnicast():
		return "link-local"
	case isSiteLocal(a) || isSiteLocal(b):
		return "site-local"
	case a.IsGlobalUnicast() && b.IsGlobalUnicast():
		return "global"
	}
	return ""
}

func isSiteLocal(a netip.Addr) bool {
	b := a.As16()
	return a.Is6() && b[0] == 0xfe && b[1]&0xc0 == 0xc0
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}
