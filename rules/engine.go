package rules

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
)

// Engine decides subjects with the current compiled policy and applies
// suppression windows. The policy sits behind an atomic pointer: Decide
// never waits for a reload, and a reload that fails leaves the running
// policy untouched. An Engine is safe for concurrent use.
type Engine struct {
	cur           atomic.Pointer[Compiled]
	sup           *suppressor
	decisions     [ActionBlock + 1]atomic.Uint64
	suppressed    atomic.Uint64
	reloadsOK     atomic.Uint64
	reloadsFailed atomic.Uint64
}

// EngineStats are an Engine's counters since it was made.
type EngineStats struct {
	// Decisions counts decisions by action: Allow, Log, Alert, Block.
	Allow, Log, Alert, Block uint64
	// Suppressed counts alerts and blocks inside a suppression window.
	Suppressed uint64
	// SuppressWindows is the number of open suppression windows;
	// SuppressOverflow counts windows not opened because the table was full.
	SuppressWindows  int
	SuppressOverflow uint64
	// ReloadsOK and ReloadsFailed count Reload calls.
	ReloadsOK, ReloadsFailed uint64
	// Source and Rules describe the running policy.
	Source string
	Rules  int
}

// NewEngine returns an engine running c. A nil c runs an empty policy whose
// default logs every subject.
func NewEngine(c *Compiled) *Engine {
	e := &Engine{sup: newSuppressor(DefaultSuppressEntries)}
	if c == nil {
		c = emptyPolicy()
	}
	e.cur.Store(c)
	return e
}

func emptyPolicy() *Compiled {
	c, err := Compile(&Policy{Source: "empty policy"})
	if err != nil {
		panic(err) // an empty policy always compiles
	}
	return c
}

// Current returns the running compiled policy.
func (e *Engine) Current() *Compiled { return e.cur.Load() }

// Swap makes c the running policy. A nil c is ignored.
func (e *Engine) Swap(c *Compiled) {
	if c != nil {
		e.cur.Store(c)
	}
}

// Decide evaluates s with the running policy and applies the deciding rule's
// suppression window: an alert or block inside it is marked Suppressed
// (still enforced, not alerted again). Windows run on s.Time.
func (e *Engine) Decide(s *Subject) Decision {
	c := e.cur.Load()
	d, r := c.evaluate(s)
	if r.suppress != nil && d.Action >= ActionAlert && !s.Time.IsZero() {
		if e.sup.check(makeSuppressKey(r, s), s.Time, r.suppress.Window) {
			d.Suppressed = true
			e.suppressed.Add(1)
		}
	}
	if d.Action <= ActionBlock {
		e.decisions[d.Action].Add(1)
	}
	return d
}

// Reload loads, validates and compiles a policy with load, and swaps it in.
// On any failure the running policy stays and the error says why (for a
// policy with problems, every "FILE:LINE:COL: msg").
func (e *Engine) Reload(load func() (*Policy, error)) error {
	p, err := load()
	var c *Compiled
	if err == nil {
		c, err = Compile(p)
	}
	if err != nil {
		e.reloadsFailed.Add(1)
		return fmt.Errorf("policy reload failed; still running %s:\n%w", e.Current().Source(), err)
	}
	e.Swap(c)
	e.reloadsOK.Add(1)
	return nil
}

// ReloadOn reloads the policy with load each time a signal arrives (the
// sensor passes SIGHUP), and calls report with the outcome (nil: swapped),
// until ctx ends or signals is closed.
func (e *Engine) ReloadOn(ctx context.Context, signals <-chan os.Signal, load func() (*Policy, error), report func(error)) {
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-signals:
			if !ok {
				return
			}
			err := e.Reload(load)
			if report != nil {
				report(err)
			}
		}
	}
}

// Stats returns the engine's counters.
func (e *Engine) Stats() EngineStats {
	c := e.Current()
	windows, overflow := e.sup.stats()
	return EngineStats{
		Allow:            e.decisions[ActionAllow].Load(),
		Log:              e.decisions[ActionLog].Load(),
		Alert:            e.decisions[ActionAlert].Load(),
		Block:            e.decisions[ActionBlock].Load(),
		Suppressed:       e.suppressed.Load(),
		SuppressWindows:  windows,
		SuppressOverflow: overflow,
		ReloadsOK:        e.reloadsOK.Load(),
		ReloadsFailed:    e.reloadsFailed.Load(),
		Source:           c.Source(),
		Rules:            c.Len(),
	}
}
