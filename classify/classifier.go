package classify

import (
	"net/netip"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Config sets the classifier's bounds and timeouts. The zero value of each
// field means its default.
type Config struct {
	MaxFlows       int           // live flows tracked at once (default 1,000,000)
	Timeouts       Timeouts      // idle timeouts per transport (default DefaultTimeouts)
	MaxTunnelDepth int           // how many tunnels deep packets are decapsulated (default 3)
	MaxFragments   int           // incomplete IP datagrams held at once (default 4096)
	FragTimeout    time.Duration // how long an incomplete datagram is held (default 30s)
	MaxExpected    int           // expected listeners held (default DefaultExpectations)
	MaxNames       int           // DNS names cached (default DefaultNames)
	Sessions       SessionConfig // session assembly windows and bounds
	// Detectors run on every flow in this order; nil means DefaultDetectors().
	Detectors []Detector
	// Shared, when set, holds the tables this classifier shares with the
	// other workers of a sensor; nil gives the classifier tables of its own.
	Shared *Shared
}

// Shared holds the tables that tie flows together (expected listeners, DNS
// names, sessions) and the counters. The workers of a sensor share one, so
// related flows meet even when they are sharded to different workers.
type Shared struct {
	Expect   *ExpectTable
	Names    *NameCache
	Sessions *SessionTable
	Counters *Counters
}

// NewShared returns tables sized by cfg (MaxExpected, MaxNames).
func NewShared(cfg Config) *Shared {
	ctrs := &Counters{}
	return &Shared{
		Expect:   NewExpectTable(cfg.MaxExpected, ctrs),
		Names:    NewNameCache(cfg.MaxNames, ctrs),
		Sessions: NewSessionTableConfig(cfg.Sessions, ctrs),
		Counters: ctrs,
	}
}

func (c *Config) setDefaults() {
	if c.MaxFlows <= 0 {
		c.MaxFlows = 1_000_000
	}
	d := DefaultTimeouts
	if c.Timeouts.TCP <= 0 {
		c.Timeouts.TCP = d.TCP
	}
	if c.Timeouts.TCPClosed <= 0 {
		c.Timeouts.TCPClosed = d.TCPClosed
	}
	if c.Timeouts.UDP <= 0 {
		c.Timeouts.UDP = d.UDP
	}
	if c.Timeouts.ICMP <= 0 {
		c.Timeouts.ICMP = d.ICMP
	}
	if c.Timeouts.Other <= 0 {
		c.Timeouts.Other = d.Other
	}
	if c.MaxTunnelDepth <= 0 {
		c.MaxTunnelDepth = 3
	}
	if c.MaxFragments <= 0 {
		c.MaxFragments = 4096
	}
	if c.FragTimeout <= 0 {
		c.FragTimeout = 30 * time.Second
	}
	if c.Detectors == nil {
		c.Detectors = DefaultDetectors()
	}
}

// EventKind says what happened to a flow.
type EventKind uint8

// Event kinds.
const (
	// EventLabelled: the packet gave the flow one or more new labels.
	EventLabelled EventKind = iota + 1
	// EventFlowEnded: the flow ended (Flow.Reason says why); its record is due.
	EventFlowEnded
	// EventSession: a Remote Assistance session formed or grew.
	EventSession
)

// Event is something the sensor acts on. Flow is valid until the next call
// into the classifier.
type Event struct {
	Kind    EventKind
	Flow    *Flow
	New     LabelSet  // for EventLabelled: the labels this packet added
	Session *Session  // for EventSession
	Dir     Direction // for EventLabelled and EventSession: the deciding packet's direction
	Time    time.Time // the deciding packet's time (the flow's end for EventFlowEnded)
}

// Stats are the classifier's counters since it started.
type Stats struct {
	Packets         uint64 // packets handed in
	Bytes           uint64 // their captured bytes
	UnsupportedLink uint64 // packets of a link type the decoder does not know
	NotIP           uint64 // packets without an IP layer (ARP, STP, ...)
	Truncated       uint64 // packets cut short inside a header
	MalformedIP     uint64 // packets whose IP header is invalid
	FlowsCreated    uint64
	FlowsEnded      uint64
	FlowsTimedOut   uint64
	FlowsClosed     uint64
	FlowsEvicted    uint64
	FlowsActive     int
	TunnelPackets   uint64 // inner packets decapsulated
	TunnelTooDeep   uint64 // tunnels beyond MaxTunnelDepth
	FragReassembled uint64 // datagrams rebuilt from fragments
	FragDropped     uint64 // datagrams given up (timeout, bounds, inconsistency)
	FragPending     int
}

// Classifier decodes packets, tracks flows and runs the detectors. It is
// not safe for concurrent use: the sensor gives each worker its own, and
// shards flows so both directions reach the same worker.
type Classifier struct {
	cfg     Config
	table   *flowTable
	dec     decoder
	d       []decoded // one per tunnel depth
	frag    *reassembler
	dets    []Detector
	allDone uint32
	ctx     Context
	seg     Segment
	events  []Event
	ended   []*Flow // flows reported ended, recycled on the next call
	now     time.Time
	nowNs   int64 // now in unix nanoseconds
	// pktNs is the current packet's own time: flows record it, while the
	// clock (now) only moves forward, so a late packet (several live
	// interfaces merged) neither moves the clock back nor gets a wrong time.
	pktNs   int64
	sweptNs int64 // nowNs at the last sweep that found nothing more to expire
	stats   Stats
	shared  *Shared
	touched []*Flow // flows the current packet belongs to, outermost first
}

// New returns a classifier.
func New(cfg Config) *Classifier {
	cfg.setDefaults()
	c := &Classifier{
		cfg:     cfg,
		table:   newFlowTable(cfg.MaxFlows, cfg.Timeouts),
		d:       make([]decoded, cfg.MaxTunnelDepth+1),
		touched: make([]*Flow, 0, cfg.MaxTunnelDepth+1),
		frag:    newReassembler(cfg.MaxFragments, cfg.FragTimeout),
		dets:    cfg.Detectors,
	}
	if len(c.dets) > 32 {
		c.dets = c.dets[:32]
	}
	c.allDone = uint32(1)<<len(c.dets) - 1
	c.shared = cfg.Shared
	if c.shared == nil {
		c.shared = NewShared(cfg)
	}
	c.ctx = Context{
		Expect:   c.shared.Expect,
		Names:    c.shared.Names,
		Sessions: c.shared.Sessions,
		Counters: c.shared.Counters,
	}
	c.events = make([]Event, 0, 64)
	return c
}

// Touched returns the flows the last packet belonged to: its outermost
// flow, then the flows inside its tunnels. Valid until the next call.
func (c *Classifier) Touched() []*Flow { return c.touched }

// Detectors returns the detectors in the order they run.
func (c *Classifier) Detectors() []Detector { return c.dets }

// Now returns the classifier's packet clock.
func (c *Classifier) Now() time.Time { return c.now }

// Stats returns the classifier's counters.
func (c *Classifier) Stats() Stats {
	s := c.stats
	s.FlowsActive = c.table.len()
	s.FragReassembled = c.frag.complete
	s.FragDropped = c.frag.dropped
	s.FragPending = c.frag.pending()
	return s
}

// Counters returns the detectors' and tables' event counters.
func (c *Classifier) Counters() *Counters { return c.shared.Counters }

// Shared returns the tables the classifier uses.
func (c *Classifier) Shared() *Shared { return c.shared }

// Expectations returns the expected-listener table.
func (c *Classifier) Expectations() *ExpectTable { return c.ctx.Expect }

// Packet classifies one captured frame: data starts with a header of the
// capture's link type (LINKTYPE_* number), wireLen is its length on the
// wire and ts its capture time, which drives every timeout. It returns the
// frame's outermost flow (nil when the frame has no IP flow) and the events
// it caused; both are valid until the next call.
func (c *Classifier) Packet(data []byte, linkType int, wireLen int, ts time.Time) (*Flow, []Event) {
	c.begin(ts)
	c.stats.Packets++
	c.stats.Bytes += uint64(len(data))
	first, ok := linkStart(linkType)
	if !ok {
		c.stats.UnsupportedLink++
		return nil, c.events
	}
	d := &c.d[0]
	if err := c.dec.safeDecode(data, first, d); err != nil {
		c.countDecodeError(err)
		return nil, c.events
	}
	if wireLen < len(data) {
		wireLen = len(data)
	}
	outer := c.handleIP(d, 0, uint64(wireLen), nil)
	c.decapsulate(outer, d, 0)
	c.maybeExpire()
	return outer, c.events
}

// begin starts a call: recycles the flows ended by the previous one.
func (c *Classifier) begin(ts time.Time) {
	for _, f := range c.ended {
		c.table.release(f)
	}
	c.ended = c.ended[:0]
	c.events = c.events[:0]
	c.touched = c.touched[:0]
	c.pktNs = ts.UnixNano()
	if ts.After(c.now) {
		c.now = ts
		c.nowNs = c.pktNs
	}
	c.ctx.Now = c.now
}

func (c *Classifier) countDecodeError(err error) {
	switch err {
	case errTruncated:
		c.stats.Truncated++
	case errBadIP, errPanic:
		c.stats.MalformedIP++
	default:
		c.stats.NotIP++
	}
}

// decapsulate classifies the packets inside a tunnel, depth by depth.
func (c *Classifier) decapsulate(parent *Flow, d *decoded, depth int) {
	for parent != nil {
		var inner []byte
		var t gopacket.LayerType
		name := d.tunnel
		switch {
		case d.inner != nil:
			inner, t = d.inner, d.innerType
		case parent.decap == DecapTeredo:
			inner = teredoInner(d.payload)
			t, name = layers.LayerTypeIPv6, "teredo"
		}
		if inner == nil {
			return
		}
		if depth+1 >= len(c.d) {
			c.stats.TunnelTooDeep++
			return
		}
		depth++
		nd := &c.d[depth]
		if err := c.dec.safeDecode(inner, t, nd); err != nil {
			c.countDecodeError(err)
			return
		}
		c.stats.TunnelPackets++
		tun := tunnelOf(parent, d, name, depth)
		parent = c.handleIP(nd, depth, uint64(nd.ipLen), &tun)
		d = nd
	}
}

func tunnelOf(parent *Flow, d *decoded, name string, depth int) tunnelRef {
	return tunnelRef{parent: parent, src: d.src, dst: d.dst, sport: d.sport, dport: d.dport, proto: d.proto, depth: uint8(depth), kind: name}
}

// handleIP runs one decoded IP packet through the flow table and detectors.
func (c *Classifier) handleIP(d *decoded, depth int, wire uint64, tun *tunnelRef) *Flow {
	pkts := uint64(1)
	if d.frag.is {
		data, frames, wireBytes, ok := c.frag.add(d, int(wire), c.now)
		if !ok {
			return nil
		}
		d.frag = fragment{}
		if err := c.dec.safeTransport(data, d); err != nil {
			c.countDecodeError(err)
			return nil
		}
		pkts, wire = uint64(frames), wireBytes
	}
	sport, dport := d.sport, d.dport
	if !d.hasPorts {
		sport, dport = 0, 0
		if d.proto == ProtoICMP || d.proto == ProtoICMPv6 {
			if isICMPEcho(d.proto, d.icmpType) {
				sport, dport = d.icmpID, d.icmpID
			} else {
				sport, dport = uint16(d.icmpType), uint16(d.icmpCode)
			}
		}
	}
	src, dst := addrPort(d.src, sport), addrPort(d.dst, dport)
	var tunnelID uint32
	if tun != nil {
		tunnelID = uint32(tun.parent.ID)
	}
	h := flowHash(src, dst, d.proto, d.vlan, tunnelID)
	f := c.table.get(h, src, dst, d.proto, d.vlan, tunnelID)
	if f != nil && c.nowNs-f.last > int64(c.table.timeouts[f.list]) {
		// Idle past its timeout but not swept yet: end it here, so the result
		// does not depend on when sweeps happen (or on sharding).
		c.expire(f)
		f = nil
	}
	if f == nil {
		k, _ := makeKey(src, dst, d.proto, d.vlan, tunnelID) // only new flows need the canonical key (for the flow id)
		f = c.newFlow(&k, h, d, src, dst, depth, tun)
	} else {
		c.table.touch(f)
	}
	dir := f.Direction(src)
	f.Pkts[dir] += pkts
	f.Bytes[dir] += wire
	if c.pktNs > f.last {
		f.last = c.pktNs
	} else if c.pktNs < f.start {
		f.start = c.pktNs // a packet that arrived late from another interface
	}
	before := f.Labels
	if d.proto == ProtoTCP {
		c.trackTCP(f, d, dir)
	}
	if f.inspecting && len(d.payload) > 0 {
		c.inspect(f, d, dir, src, dst)
	}
	if d.proto == ProtoTCP && f.State == StateClosed && f.list != listTCPClosed {
		c.table.touch(f)
	}
	c.touched = append(c.touched, f)
	if f.Labels != before {
		if s := c.ctx.Sessions.Observe(f, c.now); s != nil {
			c.events = append(c.events, Event{Kind: EventSession, Flow: f, Session: s, Dir: dir, Time: c.now})
		}
		c.events = append(c.events, Event{Kind: EventLabelled, Flow: f, New: f.Labels &^ before, Dir: dir, Time: c.now})
	}
	return f
}

type tunnelRef struct {
	parent       *Flow
	src, dst     netip.Addr
	sport, dport uint16
	proto        uint8
	depth        uint8
	kind         string
}

func (c *Classifier) newFlow(k *flowKey, h uint64, d *decoded, src, dst netip.AddrPort, depth int, tun *tunnelRef) *Flow {
	if c.table.full() {
		if o := c.table.oldest(); o != nil {
			c.end(o, EndEvicted)
			c.stats.FlowsEvicted++
		}
	}
	f := c.table.insert(h)
	f.tunnel = k.tunnel
	f.Proto = d.proto
	f.VLAN = d.vlan
	f.Depth = uint8(depth)
	f.start, f.last = c.pktNs, c.pktNs
	f.ICMPType, f.ICMPCode = d.icmpType, d.icmpCode
	f.Client, f.Server = src, dst
	if d.proto == ProtoTCP && d.tcpFlags&(TCPSyn|TCPAck) == TCPSyn|TCPAck {
		f.Client, f.Server = dst, src // a SYN+ACK comes from the server
	}
	f.ID = c.table.flowID(k, time.Unix(0, c.pktNs))
	f.inspecting = len(c.dets) > 0 && (d.proto == ProtoTCP || d.proto == ProtoUDP)
	if tun != nil {
		x := f.Ext()
		x.Tunnel = &Tunnel{SrcIP: tun.src, SrcPort: tun.sport, DestIP: tun.dst, DestPort: tun.dport,
			Proto: ProtoName(tun.proto), Depth: tun.depth, Type: tun.kind, FlowID: tun.parent.ID}
	}
	if f.inspecting {
		if e := c.ctx.Expect.Match(f.Server.Addr(), f.Server.Port(), f.Proto, c.now); e != nil {
			f.Ext().Expected = e
		}
	}
	c.table.link(f)
	c.stats.FlowsCreated++
	return f
}

// trackTCP follows the TCP state: established after the handshake, closed
// after a FIN from each side or a RST.
func (c *Classifier) trackTCP(f *Flow, d *decoded, dir Direction) {
	fl := d.tcpFlags
	f.TCPFlags[dir] |= fl
	if f.State == StateNew && f.TCPFlags[ToServer]&TCPSyn != 0 && f.TCPFlags[ToClient]&(TCPSyn|TCPAck) == TCPSyn|TCPAck {
		f.State = StateEstablished
	}
	if fl&TCPRst != 0 {
		f.State = StateClosed
	}
	if fl&TCPFin != 0 {
		f.finSeen[dir] = true
		if f.finSeen[ToServer] && f.finSeen[ToClient] {
			f.State = StateClosed
		}
	}
}

// inspect hands a payload to the detectors that still want the flow. TCP
// payloads are delivered in sequence order: retransmitted bytes are cut,
// and a jump forward is flagged as a gap.
func (c *Classifier) inspect(f *Flow, d *decoded, dir Direction, src, dst netip.AddrPort) {
	payload := d.payload
	gap := false
	if f.Proto == ProtoTCP {
		seq := d.seq
		if d.tcpFlags&TCPSyn != 0 {
			seq++
		}
		if !f.seqKnown[dir] {
			f.seqKnown[dir] = true
			f.nextSeq[dir] = seq
		}
		diff := int32(seq - f.nextSeq[dir])
		switch {
		case diff < 0:
			if int(-diff) >= len(payload) {
				return // all of it seen before
			}
			payload = payload[-diff:]
			f.nextSeq[dir] += uint32(len(payload))
		case diff > 0:
			gap = true
			f.nextSeq[dir] = seq + uint32(len(payload))
		default:
			f.nextSeq[dir] = seq + uint32(len(payload))
		}
	}
	s := &c.seg
	*s = Segment{Dir: dir, Payload: payload, Time: c.now, TCPFlags: d.tcpFlags, Gap: gap, Src: src, Dst: dst,
		Index: int(f.segs[dir])}
	if f.segs[dir] < 0xffff {
		f.segs[dir]++
	}
	for i, det := range c.dets {
		bit := uint32(1) << i
		if f.doneMask&bit != 0 {
			continue
		}
		if int(f.fed[dir]) >= det.Budget() {
			f.doneMask |= bit
			continue
		}
		c.ctx.Detector = i
		if det.Inspect(&c.ctx, f, s) == Done {
			f.doneMask |= bit
			if f.ext != nil && i < len(f.ext.detectState) {
				f.ext.detectState[i] = nil
			}
		}
	}
	f.fed[dir] += uint32(len(payload))
	if f.doneMask == c.allDone {
		f.inspecting = false
		if f.ext != nil {
			f.ext.detectState = nil
		}
	}
}

// maybeExpire ends flows idle past their timeout, a bounded number per
// packet so one packet never stalls on a mass expiry.
func (c *Classifier) maybeExpire() {
	if c.nowNs-c.sweptNs < int64(100*time.Millisecond) {
		return
	}
	for i := 0; i < 256; i++ {
		f := c.table.expired(c.nowNs)
		if f == nil {
			c.sweptNs = c.nowNs
			break
		}
		c.expire(f)
	}
	if c.frag.pending() > 0 {
		c.frag.expire(c.now)
	}
}

// expire ends a flow that was idle past its timeout.
func (c *Classifier) expire(f *Flow) {
	if f.State == StateClosed {
		c.end(f, EndClosed)
		c.stats.FlowsClosed++
	} else {
		c.end(f, EndTimeout)
		c.stats.FlowsTimedOut++
	}
}

// end removes f from the table and reports it.
func (c *Classifier) end(f *Flow, why EndReason) {
	c.table.remove(f)
	if f.inspecting && f.ext != nil && f.ext.detectState != nil {
		for i, det := range c.dets {
			if fe, ok := det.(FlowEnder); ok && f.doneMask&(1<<i) == 0 && i < len(f.ext.detectState) && f.ext.detectState[i] != nil {
				c.ctx.Detector = i
				fe.FlowEnded(&c.ctx, f)
			}
		}
	}
	if s := c.ctx.Sessions.SessionOf(f.ID); s != nil {
		f.Ext().Session = s // a member that outlived the session's forming
	}
	f.Reason = why
	c.stats.FlowsEnded++
	c.events = append(c.events, Event{Kind: EventFlowEnded, Flow: f, Time: f.Last()})
	c.ended = append(c.ended, f)
}

// Advance moves the packet clock to ts without a packet (live capture's
// idle ticks) and returns the flows that expired.
func (c *Classifier) Advance(ts time.Time) []Event {
	c.begin(ts)
	c.maybeExpire()
	return c.events
}

// Flush ends every live flow (end of input, shutdown), calling fn for each
// batch of events. Flows end in order of their last packet. ts is the time
// of the end (the sensor passes the last packet time it saw on any worker);
// flows already idle past their timeout then end as timed out.
func (c *Classifier) Flush(ts time.Time, fn func([]Event)) {
	for {
		c.begin(ts)
		for i := 0; i < 256; i++ {
			f := c.table.oldest()
			if f == nil {
				break
			}
			if c.nowNs-f.last > int64(c.table.timeouts[f.list]) {
				c.expire(f)
				continue
			}
			if f.State == StateClosed {
				c.end(f, EndClosed) // its FIN or RST was seen; only the linger was cut short
				c.stats.FlowsClosed++
			} else {
				c.end(f, EndShutdown)
			}
		}
		if len(c.events) == 0 {
			return
		}
		fn(c.events)
	}
}

// ProtoName returns the EVE name of an IP protocol ("TCP", "UDP", "ICMP",
// "IPv6-ICMP", else the number).
func ProtoName(p uint8) string {
	switch p {
	case ProtoTCP:
		return "TCP"
	case ProtoUDP:
		return "UDP"
	case ProtoICMP:
		return "ICMP"
	case ProtoICMPv6:
		return "IPv6-ICMP"
	case ProtoSCTP:
		return "SCTP"
	case 47:
		return "GRE"
	}
	return protoNumbers[p]
}

var protoNumbers = func() (t [256]string) {
	for i := range t {
		t[i] = itoa(i)
	}
	return
}()

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b [3]byte
	n := len(b)
	for i > 0 {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
	}
	return string(b[n:])
}

// Add sums o into s (the sensor merges its workers' stats).
func (s *Stats) Add(o Stats) {
	s.Packets += o.Packets
	s.Bytes += o.Bytes
	s.UnsupportedLink += o.UnsupportedLink
	s.NotIP += o.NotIP
	s.Truncated += o.Truncated
	s.MalformedIP += o.MalformedIP
	s.FlowsCreated += o.FlowsCreated
	s.FlowsEnded += o.FlowsEnded
	s.FlowsTimedOut += o.FlowsTimedOut
	s.FlowsClosed += o.FlowsClosed
	s.FlowsEvicted += o.FlowsEvicted
	s.FlowsActive += o.FlowsActive
	s.TunnelPackets += o.TunnelPackets
	s.TunnelTooDeep += o.TunnelTooDeep
	s.FragReassembled += o.FragReassembled
	s.FragDropped += o.FragDropped
	s.FragPending += o.FragPending
}
