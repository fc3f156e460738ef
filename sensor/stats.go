package sensor

import (
	"sort"
	"sync/atomic"
	"time"

	"github.com/rasentry/rasentry/alert"
	"github.com/rasentry/rasentry/capture"
)

// ReloadCounter counts configuration reloads (SIGHUP), shared between the
// goroutines that reload and the stats that report them.
type ReloadCounter struct {
	OK, Failed atomic.Uint64
}

// Outputs is what the sensor needs of its sinks besides writing: the
// encoder of the configured format, and their delivery counters.
type Outputs interface {
	Encoder() *alert.Encoder
	SinkStats() []alert.SinkStats
}

// ruleAction keys the per-rule alert counts.
type ruleAction struct{ rule, action string }

type ruleCount struct{ alerts, suppressed uint64 }

// StatsSnapshot returns the latest counters, published by the sensor's
// loop about once a second, so readers on other goroutines (the metrics
// endpoint) never race with it.
func (s *Sensor) StatsSnapshot() alert.Stats {
	if p := s.snapshot.Load(); p != nil {
		return *p
	}
	return alert.Stats{}
}

// publish builds a snapshot of the counters; it runs on the sensor's own
// goroutine. src, when not nil, gives the kernel's counters.
func (s *Sensor) publish(src capture.Source) *alert.Stats {
	sum := s.Summary()
	st := &alert.Stats{Uptime: int64(time.Since(s.started) / time.Second)}
	c := sum.Classifier
	st.Capture = alert.CaptureStats{Packets: c.Packets, Bytes: c.Bytes}
	if src != nil {
		cs := src.Stats()
		st.Capture.KernelDrops = cs.KernelDrops
	}
	st.Flow = alert.FlowStats{Active: uint64(c.FlowsActive), Ended: sum.Flows, Evicted: sum.FlowsEvicted}
	st.Labels = sum.Labels
	n, _ := s.shared.Sessions.Len()
	st.Sessions = alert.SessionStats{Formed: sum.Sessions, Active: uint64(n), ByMode: sum.SessionModes}
	st.Alerts = alert.AlertStats{Total: sum.Alerts, Suppressed: sum.Suppressed}
	keys := make([]ruleAction, 0, len(sum.byRule))
	for k := range sum.byRule {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].rule != keys[j].rule {
			return keys[i].rule < keys[j].rule
		}
		return keys[i].action < keys[j].action
	})
	for _, k := range keys {
		v := sum.byRule[k]
		st.Alerts.ByRule = append(st.Alerts.ByRule, alert.RuleStats{Rule: k.rule, Action: k.action, Alerts: v.alerts, Suppressed: v.suppressed})
	}
	if sum.Dropped+sum.Offloaded+sum.VerdictErrors > 0 {
		st.Verdicts = map[string]uint64{"drop": sum.Dropped, "offload": sum.Offloaded, "error": sum.VerdictErrors}
	}
	if r := s.cfg.Reloads; r != nil {
		st.Reloads = alert.ReloadStats{OK: r.OK.Load(), Failed: r.Failed.Load()}
	}
	if o := s.cfg.Outputs; o != nil {
		st.Sinks = o.SinkStats()
	}
	s.snapshot.Store(st)
	return st
}

// statsTick publishes a snapshot every second and writes a stats record
// every StatsInterval (live and inline loops).
type statsTick struct {
	lastPublish, lastRecord time.Time
}

func (s *Sensor) tickStats(t *statsTick, src capture.Source, w *worker) {
	now := time.Now()
	if now.Sub(t.lastPublish) < time.Second {
		return
	}
	t.lastPublish = now
	st := s.publish(src)
	if s.cfg.StatsInterval > 0 && now.Sub(t.lastRecord) >= s.cfg.StatsInterval {
		t.lastRecord = now
		w.write(alert.NewStatsRecord(now, *st))
	}
}
