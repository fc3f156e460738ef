package classify

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Detector recognises one protocol family from the first payload bytes of a
// flow, by structure rather than by port. A detector keeps no per-flow state
// of its own: what it must remember between segments lives in the flow (see
// Flow.DetectorState), so one Detector value serves every flow.
type Detector interface {
	// Name is the detector's short name; it is also the key of its evidence
	// in records ("rdp", "dcerpc", ...).
	Name() string
	// Budget is how many payload bytes per direction the detector may look at.
	// Once a flow has fed that many bytes in a direction, the detector is done
	// with that flow.
	Budget() int
	// Inspect looks at the next in-order payload segment of f. It returns Done
	// when it needs nothing more from the flow (it matched and has all it
	// wants, or the flow is not its protocol). The no-match path must not
	// allocate.
	Inspect(ctx *Context, f *Flow, seg *Segment) Status
}

// FlowEnder is implemented by detectors that hold resources in a flow's
// state beyond memory the collector frees (a shared byte budget, say): the
// classifier calls FlowEnded when a flow ends while the detector still
// follows it.
type FlowEnder interface {
	FlowEnded(ctx *Context, f *Flow)
}

// Status is a detector's answer to one segment.
type Status uint8

// Detector answers.
const (
	Continue Status = iota // show me more of this flow
	Done                   // I need nothing more of this flow
)

// Segment is one payload handed to a detector: a TCP segment in sequence
// order (retransmissions removed), or a UDP datagram.
type Segment struct {
	Dir      Direction
	Payload  []byte // valid only during the call
	Time     time.Time
	TCPFlags uint8
	// Gap is true when bytes are missing before this TCP segment (a lost or
	// out-of-order segment); stream-parsing detectors should resynchronise or
	// give up.
	Gap bool
	// Src and Dst are the packet's endpoints (for UDP to multicast, the
	// server side of the flow is the group address).
	Src, Dst netip.AddrPort
	// Index counts the payload segments of this flow in this direction,
	// starting at 0.
	Index int
}

// DetectorState returns what detector number idx stored in the flow, or nil.
// idx is the detector's position in the classifier's list, passed as
// Context.Detector.
func (f *Flow) DetectorState(idx int) any {
	if f.ext == nil || idx >= len(f.ext.detectState) {
		return nil
	}
	return f.ext.detectState[idx]
}

// SetDetectorState stores per-flow state for detector number idx. It is freed
// when the flow ends or when the detector returns Done.
func (f *Flow) SetDetectorState(idx int, v any) {
	x := f.Ext()
	if idx >= len(x.detectState) {
		n := make([]any, idx+1)
		copy(n, x.detectState)
		x.detectState = n
	}
	x.detectState[idx] = v
}

// Context is what a detector may use besides the flow: the packet clock,
// its own position (for DetectorState) and the shared tables that tie flows
// together.
type Context struct {
	// Now is the current packet's time.
	Now time.Time
	// Detector is the position of the detector being called.
	Detector int
	// Expect holds listeners announced by one flow that a later flow will
	// connect to.
	Expect *ExpectTable
	// Names maps addresses to DNS names learnt from answers.
	Names *NameCache
	// Sessions ties flows into Remote Assistance sessions.
	Sessions *SessionTable
	// Log receives notes about malformed input (counted, never fatal).
	Counters *Counters
}

// State returns this detector's state in f.
func (c *Context) State(f *Flow) any { return f.DetectorState(c.Detector) }

// SetState stores this detector's state in f.
func (c *Context) SetState(f *Flow, v any) { f.SetDetectorState(c.Detector, v) }

// Counters are the classifier's event counts (malformed input, table
// expiries). They are shared by the workers of a sensor, so every field is
// atomic and the per-detector map has its own lock.
type Counters struct {
	mu                  sync.Mutex
	malformed           map[string]uint64 // per detector: payloads that looked like the protocol but were broken
	ExpectationsAdded   atomic.Uint64
	ExpectationsMet     atomic.Uint64
	ExpectationsExpired atomic.Uint64
	ExpectationsDropped atomic.Uint64 // dropped because the table was full
	NamesCached         atomic.Uint64
	NamesEvicted        atomic.Uint64
	SessionsFormed      atomic.Uint64
	SessionsExpired     atomic.Uint64
	SessionsDropped     atomic.Uint64
}

// CountMalformed counts one malformed payload for the named detector.
func (c *Counters) CountMalformed(detector string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	if c.malformed == nil {
		c.malformed = map[string]uint64{}
	}
	c.malformed[detector]++
	c.mu.Unlock()
}

// Malformed returns a copy of the malformed-payload counts per detector.
func (c *Counters) Malformed() map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]uint64, len(c.malformed))
	for k, v := range c.malformed {
		out[k] = v
	}
	return out
}
