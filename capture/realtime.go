package capture

import (
	"context"
	"time"
)

// Realtime wraps a file source so packets come out at the pace of their
// timestamps (replay --realtime).
func Realtime(ctx context.Context, src Source) Source {
	return &realtime{Source: src, ctx: ctx}
}

type realtime struct {
	Source
	ctx       context.Context
	first     time.Time
	wallStart time.Time
	started   bool
}

func (r *realtime) Next() (Packet, error) {
	p, err := r.Source.Next()
	if err != nil {
		return p, err
	}
	if !r.started {
		r.first, r.wallStart, r.started = p.Time, time.Now(), true
		return p, nil
	}
	due := r.wallStart.Add(p.Time.Sub(r.first))
	if d := time.Until(due); d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.ctx.Done():
			t.Stop()
			return p, r.ctx.Err()
		}
	}
	return p, nil
}
