package classify

import (
	"net/netip"
	"time"
)

// Direction says which way a packet travels within its flow.
type Direction uint8

// Directions, relative to the flow's orientation.
const (
	ToServer Direction = 0
	ToClient Direction = 1
)

// String returns "toserver" or "toclient".
func (d Direction) String() string {
	if d == ToClient {
		return "toclient"
	}
	return "toserver"
}

// IP protocol numbers the flow table distinguishes.
const (
	ProtoICMP   uint8 = 1
	ProtoTCP    uint8 = 6
	ProtoUDP    uint8 = 17
	ProtoSCTP   uint8 = 132
	ProtoICMPv6 uint8 = 58
)

// TCP flag bits as they appear in the TCP header's flags byte.
const (
	TCPFin uint8 = 0x01
	TCPSyn uint8 = 0x02
	TCPRst uint8 = 0x04
	TCPPsh uint8 = 0x08
	TCPAck uint8 = 0x10
)

// FlowState is the life-cycle state of a flow.
type FlowState uint8

// Flow states, named as Suricata's EVE flow records name them.
const (
	StateNew FlowState = iota
	StateEstablished
	StateClosed
)

// String returns the state as written in records.
func (s FlowState) String() string {
	switch s {
	case StateEstablished:
		return "established"
	case StateClosed:
		return "closed"
	}
	return "new"
}

// EndReason says why a flow record was written.
type EndReason uint8

// End reasons.
const (
	EndNone     EndReason = iota
	EndTimeout            // idle longer than its transport's timeout
	EndClosed             // TCP FIN from both sides, or RST, then the closed linger passed
	EndEvicted            // pushed out because the table was full
	EndShutdown           // end of input, or the sensor stopped
)

// String returns the reason as written in records.
func (r EndReason) String() string {
	switch r {
	case EndTimeout:
		return "timeout"
	case EndClosed:
		return "closed"
	case EndEvicted:
		return "evicted"
	case EndShutdown:
		return "shutdown"
	}
	return ""
}

// AppProto is an application protocol a detector recognised, kept in a
// byte so that a million flows stay small (it is written as a name).
type AppProto uint8

// Application protocols, as EVE's app_proto names them.
const (
	AppNone AppProto = iota
	AppRDP
	AppDCERPC
	AppTeredo
	AppPNRP
	AppSSDP
	AppHTTP
	AppDNS
	AppSMB
	appProtoCount
)

var appProtoNames = [appProtoCount]string{"", "rdp", "dcerpc", "teredo", "pnrp", "ssdp", "http", "dns", "smb"}

// String returns the protocol's name ("" for AppNone).
func (a AppProto) String() string {
	if a < appProtoCount {
		return appProtoNames[a]
	}
	return ""
}

// Flow is one bidirectional conversation. The client is the side that sent
// the first SYN (a SYN+ACK makes its sender the server); without a handshake
// the sender of the first packet seen is the client.
//
// A Flow belongs to the classifier: fields may be read while handling the
// event or packet that returned it, and must not be kept beyond that.
type Flow struct {
	// Fields are ordered by size so that a million flows stay small.
	ID     uint64 // 51-bit flow id, stable for a given input
	Client netip.AddrPort
	Server netip.AddrPort

	start, last int64     // unix nanoseconds of the first and last packet (see Start, Last)
	Pkts        [2]uint64 // indexed by Direction
	Bytes       [2]uint64 // frame bytes, indexed by Direction

	ext        *FlowExt // lazily allocated, only for flows that a detector cares about
	hnext      *Flow    // next flow in the same table slot
	prev, next *Flow    // idle list links

	Labels   LabelSet
	doneMask uint32    // detectors that need no more of this flow
	fed      [2]uint32 // payload bytes fed to detectors per direction
	nextSeq  [2]uint32 // next expected TCP sequence number per direction
	tunnel   uint32    // low bits of the outer flow's id, for inner flows

	segs [2]uint16 // payload segments fed to detectors per direction (saturating)
	VLAN uint16    // outermost VLAN id, 0 when untagged

	Proto uint8
	Depth uint8 // tunnel depth: 0 for the outermost flow
	// ICMP type and code of the first packet, for Community ID.
	ICMPType, ICMPCode uint8
	TCPFlags           [2]uint8 // every flag seen, per direction
	State              FlowState
	Reason             EndReason
	AppProto           AppProto // the application protocol a detector recognised (AppNone when unknown)

	inspecting bool
	seqKnown   [2]bool
	finSeen    [2]bool
	decap      Decap // how packets of this flow are decapsulated
	list       uint8 // which idle list the flow is on
}

// FlowExt holds what only interesting flows carry. It is allocated the first
// time a detector stores something in the flow.
type FlowExt struct {
	Evidence    Evidence
	Confidence  [labelCount]Confidence
	Tunnel      *Tunnel      // the outer flow, for flows found inside a tunnel
	Expected    *Expectation // the expectation this flow fulfilled, if any
	Session     *Session     // the Remote Assistance session this flow belongs to
	detectState []any        // per-detector state, indexed by detector position

	// Verdict is the pipeline's note of what the policy decided for this flow
	// (classify never reads it): the strongest decision, the rule that made
	// it, the alerts already written, and whether an enforcer blocks it.
	Verdict Verdict
}

// Verdict is what the sensor's policy engine decided about a flow.
type Verdict struct {
	Decision         string   // allow, log, alert, block ("" before any decision)
	Rank             uint8    // orders decisions: the strongest is kept
	PolicyRule       string   // the deciding rule's id
	NetworkDirection string   // inbound, outbound, internal, external
	Alerted          []uint32 // signature ids already alerted on this flow
	Blocked          bool     // an enforcer blocks this flow
}

// Tunnel names the outer flow that carried an inner flow (EVE "tunnel").
type Tunnel struct {
	SrcIP    netip.Addr `json:"src_ip"`
	SrcPort  uint16     `json:"src_port,omitempty"`
	DestIP   netip.Addr `json:"dest_ip"`
	DestPort uint16     `json:"dest_port,omitempty"`
	Proto    string     `json:"proto"`
	Depth    uint8      `json:"depth"`
	Type     string     `json:"type"`    // teredo, gre, 6in4, 4in6, vxlan, gtpu
	FlowID   uint64     `json:"flow_id"` // the outer flow's id
}

// Ext returns the flow's extension, allocating it on first use.
func (f *Flow) Ext() *FlowExt {
	if f.ext == nil {
		f.ext = &FlowExt{}
	}
	return f.ext
}

// Extension returns the flow's extension, or nil when none was needed.
func (f *Flow) Extension() *FlowExt { return f.ext }

// Detached returns a copy of f that is not linked into the classifier's
// table, so that its record can be written on another goroutine after the
// classifier reuses f. The copy shares f's extension, which the classifier
// may still change (sessions outlive flows): detach only flows without one.
func (f *Flow) Detached() Flow {
	c := *f
	c.hnext, c.prev, c.next = nil, nil, nil
	return c
}

// AddLabel puts l on the flow with confidence c (the highest confidence seen
// for a label is kept).
func (f *Flow) AddLabel(l Label, c Confidence) {
	f.Labels = f.Labels.With(l)
	x := f.Ext()
	if c > x.Confidence[l] {
		x.Confidence[l] = c
	}
}

// LabelConfidence returns the confidence of label l, or 0 when absent.
func (f *Flow) LabelConfidence(l Label) Confidence {
	if f.ext == nil || !f.Labels.Has(l) {
		return 0
	}
	return f.ext.Confidence[l]
}

// SetEvidence stores the evidence a detector gathered, under its name
// (the key in the record's rasentry object: "rdp", "dcerpc", ...).
func (f *Flow) SetEvidence(name string, v any) { f.Ext().Evidence.Set(name, v) }

// GetEvidence returns the evidence stored under name, or nil.
func (f *Flow) GetEvidence(name string) any {
	if f.ext == nil {
		return nil
	}
	return f.ext.Evidence.Get(name)
}

// SetDecap asks the classifier to decapsulate this flow's payloads from now on
// and classify the inner packets as flows of their own.
func (f *Flow) SetDecap(d Decap) { f.decap = d }

// Decapsulation returns how the flow's payloads are decapsulated.
func (f *Flow) Decapsulation() Decap { return f.decap }

// Direction returns the direction of a packet from src to dst within the flow.
func (f *Flow) Direction(src netip.AddrPort) Direction {
	if src == f.Client {
		return ToServer
	}
	return ToClient
}

// Start returns the time of the flow's first packet.
func (f *Flow) Start() time.Time { return time.Unix(0, f.start).UTC() }

// Last returns the time of the flow's latest packet.
func (f *Flow) Last() time.Time { return time.Unix(0, f.last).UTC() }

// SetTimes sets the first and last packet times (for tools and tests that
// build flows without the classifier).
func (f *Flow) SetTimes(start, last time.Time) { f.start, f.last = start.UnixNano(), last.UnixNano() }

// NextSeq returns the TCP sequence number the side sending in direction dir
// will use next, as last seen (what a reset toward the other side must
// acknowledge), and whether it is known.
func (f *Flow) NextSeq(dir Direction) (uint32, bool) { return f.nextSeq[dir], f.seqKnown[dir] }

// Offloadable reports whether the flow needs no more of its packets for
// classification: every detector is done and nothing is decapsulated from
// it. An inline sensor may then let the kernel pass the rest.
func (f *Flow) Offloadable() bool { return !f.inspecting && f.decap == DecapNone }

// Age returns the flow's duration.
func (f *Flow) Age() time.Duration { return time.Duration(f.last - f.start) }

// Decap is a kind of payload tunnel that the classifier looks inside.
type Decap uint8

// Decapsulations driven by a detector's decision (header-typed tunnels such as
// GRE or 6in4 are decoded directly by the decoder).
const (
	DecapNone Decap = iota
	DecapTeredo
)

// Evidence is what detectors found in a flow, keyed by detector name, kept in
// insertion order so records are deterministic.
type Evidence struct {
	items []evidenceItem
}

type evidenceItem struct {
	name  string
	value any
}

// Set stores v under name, replacing an earlier value.
func (e *Evidence) Set(name string, v any) {
	for i := range e.items {
		if e.items[i].name == name {
			e.items[i].value = v
			return
		}
	}
	e.items = append(e.items, evidenceItem{name, v})
}

// Get returns the value stored under name, or nil.
func (e *Evidence) Get(name string) any {
	for i := range e.items {
		if e.items[i].name == name {
			return e.items[i].value
		}
	}
	return nil
}

// Len returns the number of items.
func (e *Evidence) Len() int { return len(e.items) }

// Each calls fn for every item in insertion order.
func (e *Evidence) Each(fn func(name string, v any)) {
	for _, it := range e.items {
		fn(it.name, it.value)
	}
}
