package classify

import "encoding/binary"

// RDP over UDP (MS-RDPEUDP, protocols.md §2.5). Every datagram begins with
// an RDPUDP_FEC_HEADER in network byte order: snSourceAck u32,
// uReceiveWindowSize u16, uFlags u16. A connection opens with a SYN
// (snSourceAck 0xFFFFFFFF, zero-padded to the MTU) answered by a SYN+ACK
// whose snSourceAck is the client's initial sequence number. Flows caught
// mid-stream are recognised from their data datagrams (ACK vector, source
// payload header, then TLS or DTLS records), confirmed by the other side
// acknowledging the sequence numbers it was sent.

// RDPUDP_FEC_HEADER uFlags (MS-RDPEUDP 2.2.2.1).
const (
	eudpSYN        uint16 = 0x0001
	eudpFIN        uint16 = 0x0002
	eudpACK        uint16 = 0x0004
	eudpDATA       uint16 = 0x0008
	eudpFEC        uint16 = 0x0010
	eudpCN         uint16 = 0x0020
	eudpCWR        uint16 = 0x0040
	eudpSACK       uint16 = 0x0080
	eudpAOA        uint16 = 0x0100
	eudpSYNLOSSY   uint16 = 0x0200
	eudpACKDELAYED uint16 = 0x0400
	eudpCORRID     uint16 = 0x0800
	eudpSYNEX      uint16 = 0x1000
	eudpKnown      uint16 = 0x1FFF
	// Flags that only a SYN or SYN+ACK carries, and flags a SYN never does.
	eudpSYNOnly  = eudpSYNLOSSY | eudpCORRID | eudpSYNEX
	eudpNotInSYN = eudpFIN | eudpDATA | eudpFEC | eudpCN | eudpCWR | eudpSACK | eudpAOA | eudpACKDELAYED
)

// Limits from MS-RDPEUDP.
const (
	eudpMinMTU       = 1132 // 2.2.2.5: uUpStreamMtu / uDownStreamMtu range
	eudpMaxMTU       = 1232
	eudpMaxAckVector = 2048 // 2.2.2.7: uAckVectorSize
	eudpSeqWindow    = 256  // how far an acknowledgement may trail or lead what was sent
	eudpWaitDgrams   = 4    // datagrams per direction to look at before giving up
)

// eudpSYNInfo is a parsed SYN or SYN+ACK datagram.
type eudpSYNInfo struct {
	ack     uint32 // snSourceAck
	flags   uint16
	isn     uint32 // snInitialSequenceNumber
	version uint8  // from RDPUDP_SYNDATAEX_PAYLOAD: 1, 2, 3; 0 when absent or unknown
}

// parseEUDPSYN reads RDPUDP_FEC_HEADER + RDPUDP_SYNDATA_PAYLOAD (2.2.2.5)
// + the optional CORRELATION_ID (2.2.2.8) and SYNDATAEX (2.2.2.9)
// payloads. It checks flags and MTUs; the caller checks snSourceAck.
func parseEUDPSYN(p []byte) (s eudpSYNInfo, ok bool) {
	if len(p) < 16 {
		return s, false
	}
	s.ack = binary.BigEndian.Uint32(p[0:4])
	s.flags = binary.BigEndian.Uint16(p[6:8])
	if s.flags&eudpSYN == 0 || s.flags&^eudpKnown != 0 || s.flags&eudpNotInSYN != 0 {
		return s, false
	}
	s.isn = binary.BigEndian.Uint32(p[8:12])
	up, down := binary.BigEndian.Uint16(p[12:14]), binary.BigEndian.Uint16(p[14:16])
	if up < eudpMinMTU || up > eudpMaxMTU || down < eudpMinMTU || down > eudpMaxMTU {
		return s, false
	}
	q := p[16:]
	if s.flags&eudpCORRID != 0 {
		// uCorrelationId (16) + uReserved (16).
		if len(q) < 32 {
			return s, false
		}
		q = q[32:]
	}
	s.version = 1
	if s.flags&eudpSYNEX != 0 {
		if len(q) < 4 {
			return s, false
		}
		if binary.BigEndian.Uint16(q[0:2])&0x0001 != 0 { // RDPUDP_VERSION_INFO_VALID
			switch binary.BigEndian.Uint16(q[2:4]) {
			case 0x0001:
				s.version = 1
			case 0x0002:
				s.version = 2
			case 0x0101: // RDPUDP_PROTOCOL_VERSION_3: MS-RDPEUDP2 follows
				s.version = 3
			default:
				s.version = 0
			}
		}
	}
	return s, true
}

// eudpData is a parsed non-SYN datagram header.
type eudpData struct {
	ack     uint32 // snSourceAck
	flags   uint16
	coded   uint32 // snCoded of a source or FEC payload
	hasData bool
	records bool // the source payload begins with a TLS or DTLS record
}

// parseEUDPData reads RDPUDP_FEC_HEADER, RDPUDP_ACK_VECTOR_HEADER (2.2.2.7,
// padded to 4 bytes), the optional RDPUDP_ACK_OF_ACKVECTOR_HEADER (2.2.2.6)
// and, for data, RDPUDP_SOURCE_PAYLOAD_HEADER (2.2.2.4) or
// RDPUDP_FEC_PAYLOAD_HEADER (2.2.2.2). It does not allocate.
func parseEUDPData(p []byte) (h eudpData, ok bool) {
	if len(p) < 12 {
		return h, false
	}
	h.ack = binary.BigEndian.Uint32(p[0:4])
	h.flags = binary.BigEndian.Uint16(p[6:8])
	if h.flags&eudpACK == 0 || h.flags&(eudpSYN|eudpSYNOnly) != 0 || h.flags&^eudpKnown != 0 {
		return h, false
	}
	q := p[8:]
	n := int(binary.BigEndian.Uint16(q[0:2]))
	if n > eudpMaxAckVector {
		return h, false
	}
	hl := (2 + n + 3) &^ 3
	if len(q) < hl {
		return h, false
	}
	q = q[hl:]
	if h.flags&eudpAOA != 0 {
		if len(q) < 4 {
			return h, false
		}
		q = q[4:]
	}
	if h.flags&eudpDATA == 0 {
		return h, len(q) == 0
	}
	h.hasData = true
	if h.flags&eudpFEC != 0 {
		// snCoded, snSourceStart, uRange, uPadding; the payload is an XOR of
		// source packets and says nothing.
		if len(q) < 10 {
			return h, false
		}
		h.coded = binary.BigEndian.Uint32(q[0:4])
		return h, true
	}
	if len(q) < 8 {
		return h, false
	}
	h.coded = binary.BigEndian.Uint32(q[0:4])
	h.records = tlsRecordStart(q[8:])
	return h, true
}

// tlsRecordStart reports whether b begins with a TLS (RFC 8446 §5.1) or
// DTLS (RFC 6347 §4.1) record header: content type 20..23 and version
// 3.x or DTLS 1.0/1.2.
func tlsRecordStart(b []byte) bool {
	if len(b) < 5 || b[0] < 20 || b[0] > 23 {
		return false
	}
	switch {
	case b[1] == 3 && b[2] <= 4:
		return true
	case b[1] == 0xFE && (b[2] == 0xFF || b[2] == 0xFD):
		return len(b) >= 13
	}
	return false
}

// rdpUDPState is the per-flow state of an RDP-over-UDP candidate.
type rdpUDPState struct {
	ev        *RDPEvidence
	synDir    Direction
	isn       uint32 // the SYN's initial sequence number
	haveSYN   bool
	coded     [2]uint32 // highest snCoded sent per direction (mid-stream)
	haveCoded [2]bool
	conf      Confidence
	published bool
}

func (d *RDPDetector) inspectUDP(ctx *Context, f *Flow, seg *Segment) Status {
	p := seg.Payload
	st, _ := ctx.State(f).(*rdpUDPState)
	if st == nil {
		return d.startUDP(ctx, f, seg)
	}
	if st.haveSYN {
		if seg.Dir == st.synDir {
			// SYN retransmissions, or data after an unseen SYN+ACK.
			if seg.Index >= eudpWaitDgrams {
				return Done
			}
			return Continue
		}
		// MS-RDPEUDP 3.1.5.1.3: SYN+ACK acknowledges the SYN's ISN.
		if s, ok := parseEUDPSYN(p); ok && s.flags&eudpACK != 0 && s.ack == st.isn {
			st.ev.UDPState = "syn-ack"
			if s.version != 0 {
				st.ev.UDPVersion = s.version
			}
			st.label(f, ConfidenceHigh)
		}
		return Done
	}
	// Mid-stream: data from one side, acknowledged by the other.
	h, ok := parseEUDPData(p)
	if !ok {
		if seg.Index >= eudpWaitDgrams {
			return Done
		}
		return Continue
	}
	other := 1 - seg.Dir
	if st.haveCoded[other] && seqNear(h.ack, st.coded[other]) {
		st.ev.UDPState = "mid-stream"
		st.label(f, ConfidenceHigh)
		return Done
	}
	if h.hasData && (!st.haveCoded[seg.Dir] || int32(h.coded-st.coded[seg.Dir]) > 0) {
		st.coded[seg.Dir], st.haveCoded[seg.Dir] = h.coded, true
	}
	if seg.Index >= 2*eudpWaitDgrams {
		return Done
	}
	return Continue
}

// startUDP handles the first datagrams of a flow without state. Nothing is
// allocated unless a datagram has the RDPEUDP structure.
func (d *RDPDetector) startUDP(ctx *Context, f *Flow, seg *Segment) Status {
	p := seg.Payload
	if s, ok := parseEUDPSYN(p); ok {
		st := &rdpUDPState{ev: &RDPEvidence{Transport: "udp"}}
		st.ev.UDPVersion = s.version
		st.ev.UDPLossy = s.flags&eudpSYNLOSSY != 0
		switch {
		case s.ack == 0xFFFFFFFF && s.flags&eudpACK == 0:
			// A SYN is zero-padded to the MTU (MS-RDPEUDP 3.1.5.1.1): a
			// full-size one stands alone; a short one needs the SYN+ACK.
			st.ev.UDPState = "syn"
			st.haveSYN, st.isn, st.synDir = true, s.isn, seg.Dir
			ctx.SetState(f, st)
			if len(p) >= eudpMinMTU {
				st.label(f, ConfidenceHigh)
			}
			return Continue
		case s.flags&eudpACK != 0 && len(p) >= eudpMinMTU:
			// A SYN+ACK whose SYN was not captured.
			st.ev.UDPState = "syn-ack"
			st.label(f, ConfidenceMedium)
			return Done
		}
		return Done
	}
	h, ok := parseEUDPData(p)
	if !ok {
		return Done
	}
	if !h.hasData || !h.records {
		// A bare acknowledgement (or FEC data) says too little to keep
		// state for; look at a few more datagrams.
		if seg.Index < eudpWaitDgrams {
			return Continue
		}
		return Done
	}
	st := &rdpUDPState{ev: &RDPEvidence{Transport: "udp"}}
	st.coded[seg.Dir], st.haveCoded[seg.Dir] = h.coded, true
	ctx.SetState(f, st)
	return Continue
}

// seqNear reports whether acknowledgement a is within the window of sequence
// number s (with wrap-around).
func seqNear(a, s uint32) bool {
	d := int32(a - s)
	return d >= -eudpSeqWindow && d <= eudpSeqWindow
}

func (st *rdpUDPState) label(f *Flow, c Confidence) {
	if c > st.conf {
		st.conf = c
	}
	if !st.published {
		st.published = true
		f.SetEvidence(rdpEvidenceName, st.ev)
		if f.AppProto == AppNone {
			f.AppProto = AppRDP
		}
	}
	f.AddLabel(LabelRDPUDP, st.conf)
}
