package alert

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// Multi writes every record to several sinks. The set can be swapped while
// records are written (a reload): a Write sees either the old set or the
// new one, whole.
type Multi struct {
	sinks atomic.Pointer[[]Sink]
}

// NewMulti returns a fan-out to sinks.
func NewMulti(sinks ...Sink) *Multi {
	m := &Multi{}
	m.Set(sinks)
	return m
}

// Sinks returns the current set.
func (m *Multi) Sinks() []Sink { return *m.sinks.Load() }

// Set replaces the set and returns the old one (not closed).
func (m *Multi) Set(sinks []Sink) []Sink {
	s := append([]Sink(nil), sinks...)
	if old := m.sinks.Swap(&s); old != nil {
		return *old
	}
	return nil
}

// Write writes r to every sink; each sink's error is returned, joined.
func (m *Multi) Write(r Record) error {
	sinks := *m.sinks.Load()
	if len(sinks) == 1 {
		return sinks[0].Write(r)
	}
	var errs []error
	for _, s := range sinks {
		if err := s.Write(r); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Flush flushes the sinks that buffer.
func (m *Multi) Flush() error {
	var errs []error
	for _, s := range m.Sinks() {
		if f, ok := s.(Flusher); ok {
			errs = append(errs, f.Flush())
		}
	}
	return errors.Join(errs...)
}

// Reopen reopens the sinks that write files (SIGHUP, after logrotate).
func (m *Multi) Reopen() error {
	var errs []error
	for _, s := range m.Sinks() {
		if r, ok := s.(Reopener); ok {
			errs = append(errs, r.Reopen())
		}
	}
	return errors.Join(errs...)
}

// Close closes every sink, each within 10 seconds, all at once.
func (m *Multi) Close() error { return closeAll(context.Background(), m.Sinks(), true) }

// CloseContext closes every sink at once, all within ctx.
func (m *Multi) CloseContext(ctx context.Context) error { return closeAll(ctx, m.Sinks(), false) }

// closeAll closes sinks in parallel, so one slow sink does not eat the
// others' share of the deadline.
func closeAll(ctx context.Context, sinks []Sink, plain bool) error {
	errs := make([]error, len(sinks))
	var wg sync.WaitGroup
	for i, s := range sinks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if cc, ok := s.(ContextCloser); ok && !plain {
				errs[i] = cc.CloseContext(ctx)
			} else {
				errs[i] = s.Close()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// SinkStats returns the counters of every sink that reports them.
func (m *Multi) SinkStats() []SinkStats {
	var out []SinkStats
	for _, s := range m.Sinks() {
		if r, ok := s.(StatsReporter); ok {
			out = append(out, r.SinkStats()...)
		}
	}
	return out
}
