package sensor

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/rasentry/rasentry/capture"
	"github.com/rasentry/rasentry/classify"
	"github.com/rasentry/rasentry/enforce"
	"github.com/rasentry/rasentry/rules"
)

// Live reads a live source (AF_PACKET or NFQUEUE) until ctx is cancelled:
// the kernel's packet time drives the clock, idle ticks advance it, and
// every packet of an inline source gets its verdict from its flows'
// decisions (a blocked flow is dropped from its deciding packet on; a flow
// that is decided, allowed and needs no more inspection is offloaded to
// the kernel). On return every live flow has been ended and reported.
func (s *Sensor) Live(ctx context.Context, src capture.Source) error {
	start := time.Now()
	s.files++
	w := s.workers[0]
	tick := newTicker(s.cfg.Progress, src)
	var stats statsTick
	var err error
	for {
		if err = ctx.Err(); err != nil {
			break
		}
		tick.maybe()
		s.tickStats(&stats, src, w)
		var p capture.Packet
		p, err = src.Next()
		if errors.Is(err, capture.ErrTimeout) {
			if ev := w.cls.Advance(p.Time); len(ev) > 0 {
				w.handle(ev)
			}
			continue
		}
		if err != nil {
			break
		}
		w.packet(p.Data, int(p.LinkType), p.Length, p.Time)
		if p.Verdict != nil {
			w.verdict(p.Verdict)
		}
	}
	w.cls.Flush(w.cls.Now(), w.handle)
	s.publish(src)
	st := src.Stats()
	s.packets += st.Packets
	s.bytes += st.Bytes
	s.kernelDrops += st.KernelDrops
	s.kernelFreezes += st.KernelFreezes
	s.elapsed += time.Since(start)
	if errors.Is(err, context.Canceled) || errors.Is(err, io.EOF) {
		err = nil
	}
	if s.sinkErr != nil {
		return s.sinkErr
	}
	return err
}

// verdict gives an inline packet its verdict. The packet's flows (the
// outer one and any inside its tunnels) were classified just before.
func (w *worker) verdict(v capture.Verdict) {
	flows := w.cls.Touched()
	offload := len(flows) > 0
	for _, f := range flows {
		x := f.Extension()
		if x != nil && x.Verdict.Blocked {
			if err := v.Drop(); err != nil {
				w.sum.VerdictErrors++
			}
			w.sum.Dropped++
			return
		}
		undecided := f.Labels != 0 && (x == nil || x.Verdict.Decision == "")
		if !f.Offloadable() || undecided {
			offload = false
		}
	}
	var err error
	if iv, ok := v.(capture.InlineVerdict); ok && offload {
		err = iv.Offload()
		w.sum.Offloaded++
	} else {
		err = v.Accept()
	}
	if err != nil {
		w.sum.VerdictErrors++
	}
}

// InlineBlocker blocks by verdict: the flow is marked blocked and the
// sensor drops its packets from the deciding one on (inline mode).
type InlineBlocker struct{}

// Block always succeeds: the verdicts do the blocking.
func (InlineBlocker) Block(*classify.Flow, *rules.Decision) (bool, error) { return true, nil }

// EnforcerBlocker blocks through an enforce.Enforcer (nftables sets, TCP
// resets, dry run) in passive deployments.
type EnforcerBlocker struct {
	Enforcer enforce.Enforcer
	Scope    enforce.Scope // what one block covers (default: the flow)
	Duration time.Duration // how long (default: the enforcer's)
}

// Block turns a block decision on f into an enforcer block.
func (b EnforcerBlocker) Block(f *classify.Flow, d *rules.Decision) (bool, error) {
	blk := enforce.Block{Scope: b.Scope, Proto: f.Proto, Client: f.Client, Server: f.Server,
		Duration: b.Duration, Reason: d.RuleID}
	if blk.Scope == 0 {
		blk.Scope = enforce.ScopeFlow
	}
	cs, ok1 := f.NextSeq(classify.ToServer)
	ss, ok2 := f.NextSeq(classify.ToClient)
	blk.ClientNextSeq, blk.ServerNextSeq, blk.SeqKnown = cs, ss, ok1 && ok2
	ok, err := b.Enforcer.Block(blk)
	if err == nil && !ok {
		err = ErrNotEnforced
	}
	return ok, err
}
