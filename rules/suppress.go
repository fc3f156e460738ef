package rules

import (
	"net/netip"
	"sync"
	"time"

	"github.com/rasentry/rasentry/classify"
)

// DefaultSuppressEntries bounds the suppression table of an Engine.
const DefaultSuppressEntries = 1 << 16

// suppressKey identifies one suppression window: the rule id (so windows
// survive a reload that keeps the rule) and the identifier fields the rule
// names; fields it does not name stay zero.
type suppressKey struct {
	rule         string
	client       netip.Addr
	server       netip.Addr
	cport, sport uint16
	proto        uint8
	mode         classify.SessionMode
}

func makeSuppressKey(r *compiledRule, s *Subject) suppressKey {
	k := suppressKey{rule: r.decision.RuleID}
	f := r.idFields
	if f&idClientIP != 0 {
		k.client = s.Client.Addr().Unmap()
	}
	if f&idServerIP != 0 {
		k.server = s.Server.Addr().Unmap()
	}
	if f&idClientPort != 0 {
		k.cport = s.Client.Port()
	}
	if f&idServerPort != 0 {
		k.sport = s.Server.Port()
	}
	if f&idProto != 0 {
		k.proto = s.Proto
	}
	if f&idMode != 0 {
		k.mode = s.Mode
	}
	return k
}

// window is an open suppression window, in packet time (Unix nanoseconds).
type window struct {
	from, until int64
}

// suppressor remembers open suppression windows. Like Zeek's notice
// suppression, a window opens at the first alert and is not extended by the
// alerts it suppresses, so a steady stream of matches alerts once per
// window. The table is bounded: when it is full, expired windows are swept;
// if none has expired, the new window is not recorded (the alert goes out,
// and the overflow is counted), so a flood can cost alerts but never memory.
type suppressor struct {
	mu        sync.Mutex
	m         map[suppressKey]window
	max       int
	nextSweep int64 // no window ends before this; sweeping earlier frees nothing
	overflow  uint64
}

func newSuppressor(max int) *suppressor {
	if max <= 0 {
		max = DefaultSuppressEntries
	}
	return &suppressor{m: make(map[suppressKey]window), max: max}
}

// check reports whether an alert for k at time now falls inside an open
// window; if not, it opens one of length d.
func (s *suppressor) check(k suppressKey, now time.Time, d time.Duration) bool {
	t := now.UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.m[k]
	if ok && t >= w.from && t < w.until {
		return true
	}
	if !ok && len(s.m) >= s.max {
		s.sweep(t)
		if len(s.m) >= s.max {
			s.overflow++
			return false
		}
	}
	w = window{from: t, until: t + int64(d)}
	s.m[k] = w
	s.nextSweep = min(s.nextSweep, w.until)
	return false
}

func (s *suppressor) sweep(t int64) {
	if t < s.nextSweep {
		return
	}
	next := int64(1<<63 - 1)
	for k, w := range s.m {
		if w.until <= t {
			delete(s.m, k)
		} else if w.until < next {
			next = w.until
		}
	}
	s.nextSweep = next
}

func (s *suppressor) stats() (entries int, overflow uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m), s.overflow
}
