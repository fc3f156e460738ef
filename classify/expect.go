package classify

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Expectation is a listener that one flow announced and a later flow is
// expected to connect to: a dynamic RPC port from an endpoint-mapper or DCOM
// response, a UPnP port mapping, or an address in an invitation ticket.
type Expectation struct {
	Addr  netip.Addr // the listener's address
	Port  uint16
	Proto uint8 // ProtoTCP or ProtoUDP
	// Reason says what announced it: "epm-map", "dcom-activation",
	// "oxid-resolve", "upnp-portmap", "invitation".
	Reason string
	// Service names what the listener serves: an RPC interface name, or a
	// mapping description.
	Service string
	// ServiceUUID is the RPC interface UUID looked up, when known.
	ServiceUUID string
	// FromFlow is the flow id of the flow that announced it, FromClient and
	// FromServer its endpoints (a session names it as a member).
	FromFlow               uint64
	FromClient, FromServer netip.AddrPort
	// Peer, when valid, is the address expected to connect.
	Peer    netip.Addr
	Created time.Time
	Expires time.Time
	Met     uint32 // flows that matched it so far
}

type expectKey struct {
	addr  netip.Addr
	port  uint16
	proto uint8
}

// ExpectTable is a bounded, time-limited table of expected listeners. It is
// safe for concurrent use: the sensor's workers share one, since the flows a
// listener ties together may be sharded to different workers.
type ExpectTable struct {
	mu       sync.Mutex
	size     atomic.Int64 // len(entries), read without the lock on the hot path
	max      int
	entries  map[expectKey]*Expectation
	counters *Counters
}

// DefaultExpectations is the default bound on the expectation table.
const DefaultExpectations = 4096

// NewExpectTable returns a table holding at most max entries (a non-positive
// max means DefaultExpectations). Counters may be nil.
func NewExpectTable(max int, counters *Counters) *ExpectTable {
	if max <= 0 {
		max = DefaultExpectations
	}
	return &ExpectTable{max: max, entries: make(map[expectKey]*Expectation), counters: counters}
}

// Add records e (replacing an expectation for the same listener). When the
// table is full, the expectation closest to expiry is dropped and counted.
func (t *ExpectTable) Add(e Expectation) {
	if !e.Addr.IsValid() || e.Port == 0 {
		return
	}
	e.Addr = e.Addr.Unmap()
	k := expectKey{e.Addr, e.Port, e.Proto}
	t.mu.Lock()
	defer t.mu.Unlock()
	defer func() { t.size.Store(int64(len(t.entries))) }()
	if _, ok := t.entries[k]; !ok && len(t.entries) >= t.max {
		t.sweep(e.Created)
		if len(t.entries) >= t.max {
			t.dropSoonest()
		}
	}
	ne := e
	t.entries[k] = &ne
	if t.counters != nil {
		t.counters.ExpectationsAdded.Add(1)
	}
}

// Remove deletes the expectation for a listener (a DeletePortMapping, say).
func (t *ExpectTable) Remove(addr netip.Addr, port uint16, proto uint8) bool {
	k := expectKey{addr.Unmap(), port, proto}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.entries[k]; ok {
		delete(t.entries, k)
		t.size.Store(int64(len(t.entries)))
		return true
	}
	return false
}

// Match returns the live expectation for a connection to addr:port, counting
// it as met, or nil. An expired entry is removed and counted.
func (t *ExpectTable) Match(addr netip.Addr, port uint16, proto uint8, now time.Time) *Expectation {
	if t.size.Load() == 0 {
		return nil
	}
	k := expectKey{addr.Unmap(), port, proto}
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[k]
	if !ok {
		return nil
	}
	if now.After(e.Expires) {
		delete(t.entries, k)
		t.size.Store(int64(len(t.entries)))
		if t.counters != nil {
			t.counters.ExpectationsExpired.Add(1)
		}
		return nil
	}
	e.Met++
	if t.counters != nil {
		t.counters.ExpectationsMet.Add(1)
	}
	return e
}

// Sweep removes every expectation that expired before now.
func (t *ExpectTable) Sweep(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweep(now)
	t.size.Store(int64(len(t.entries)))
}

func (t *ExpectTable) sweep(now time.Time) {
	for k, e := range t.entries {
		if now.After(e.Expires) {
			delete(t.entries, k)
			if t.counters != nil {
				t.counters.ExpectationsExpired.Add(1)
			}
		}
	}
}

// Len returns the number of live entries.
func (t *ExpectTable) Len() int { return int(t.size.Load()) }

// Each calls fn for every entry (in no particular order), holding the
// table's lock: fn must not call the table.
func (t *ExpectTable) Each(fn func(*Expectation)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, e := range t.entries {
		fn(e)
	}
}

func (t *ExpectTable) dropSoonest() {
	var victim expectKey
	var soonest time.Time
	first := true
	for k, e := range t.entries {
		if first || e.Expires.Before(soonest) || (e.Expires.Equal(soonest) && lessKey(k, victim)) {
			victim, soonest, first = k, e.Expires, false
		}
	}
	if !first {
		delete(t.entries, victim)
		if t.counters != nil {
			t.counters.ExpectationsDropped.Add(1)
		}
	}
}

func lessKey(a, b expectKey) bool {
	if c := a.addr.Compare(b.addr); c != 0 {
		return c < 0
	}
	if a.port != b.port {
		return a.port < b.port
	}
	return a.proto < b.proto
}
