package sensor

import (
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/rasentry/rasentry/classify"
	"github.com/rasentry/rasentry/rules"
)

// Summary counts what a run did, for the end-of-run report.
type Summary struct {
	Files        int
	Errors       int // sources that ended in an error
	Packets      uint64
	Bytes        uint64
	Flows        uint64 // flow records written
	FlowsEvicted uint64
	Labels       map[string]uint64 // flows per label
	Alerts       uint64
	Suppressed   uint64
	Panics       uint64            // packets whose handling panicked (skipped, logged)
	Sessions     uint64            // Remote Assistance sessions formed
	SessionModes map[string]uint64 // sessions per mode
	Blocked      uint64            // flows an enforcer blocked
	// inline and live counters
	Dropped       uint64 // packets given a drop verdict
	Offloaded     uint64 // packets whose connection was offloaded to the kernel
	VerdictErrors uint64 // verdicts the kernel did not take
	KernelDrops   uint64 // packets the kernel dropped before rasentry read them
	KernelFreezes uint64 // TPACKET_V3 queue freezes
	BlockErrors   uint64 // blocks the enforcer failed to apply
	Policy        *rules.EngineStats
	byRule        map[ruleAction]*ruleCount
	Elapsed       time.Duration
	Classifier    classify.Stats
}

// countRule counts one alert (or suppressed alert) of a rule.
func (s *Summary) countRule(rule, action string, suppressed bool) {
	if s.byRule == nil {
		s.byRule = map[ruleAction]*ruleCount{}
	}
	k := ruleAction{rule, action}
	c := s.byRule[k]
	if c == nil {
		c = &ruleCount{}
		s.byRule[k] = c
	}
	if suppressed {
		c.suppressed++
	} else {
		c.alerts++
	}
}

// add merges a worker's counts into s.
func (s *Summary) add(o *Summary) {
	s.Flows += o.Flows
	s.FlowsEvicted += o.FlowsEvicted
	s.Alerts += o.Alerts
	s.Suppressed += o.Suppressed
	s.Sessions += o.Sessions
	s.Panics += o.Panics
	for k, v := range o.SessionModes {
		if s.SessionModes == nil {
			s.SessionModes = map[string]uint64{}
		}
		s.SessionModes[k] += v
	}
	for k, v := range o.byRule {
		if s.byRule == nil {
			s.byRule = map[ruleAction]*ruleCount{}
		}
		c := s.byRule[k]
		if c == nil {
			c = &ruleCount{}
			s.byRule[k] = c
		}
		c.alerts += v.alerts
		c.suppressed += v.suppressed
	}
	s.Blocked += o.Blocked
	s.Dropped += o.Dropped
	s.Offloaded += o.Offloaded
	s.VerdictErrors += o.VerdictErrors
	s.BlockErrors += o.BlockErrors
	for k, v := range o.Labels {
		if s.Labels == nil {
			s.Labels = make(map[string]uint64)
		}
		s.Labels[k] += v
	}
}

func (s *Summary) countLabel(l classify.Label) {
	if s.Labels == nil {
		s.Labels = make(map[string]uint64)
	}
	s.Labels[l.String()]++
}

// PacketsPerSecond is the replay rate.
func (s Summary) PacketsPerSecond() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Packets) / s.Elapsed.Seconds()
}

// WriteText prints the summary on one screen.
func (s Summary) WriteText(w io.Writer) {
	c := s.Classifier
	fmt.Fprintf(w, "rasentry summary\n")
	fmt.Fprintf(w, "  files      %d (%d with errors)\n", s.Files, s.Errors)
	fmt.Fprintf(w, "  packets    %d (%s), %.0f packets/s over %s\n", s.Packets, humanBytes(s.Bytes), s.PacketsPerSecond(), s.Elapsed.Round(time.Millisecond))
	if s.KernelDrops+s.KernelFreezes+s.Dropped+s.Offloaded+s.VerdictErrors > 0 {
		fmt.Fprintf(w, "  kernel     %d drops, %d freezes; verdicts: %d dropped, %d offloaded, %d errors\n",
			s.KernelDrops, s.KernelFreezes, s.Dropped, s.Offloaded, s.VerdictErrors)
	}
	fmt.Fprintf(w, "  not IP     %d, truncated %d, malformed IP %d, unsupported link %d\n", c.NotIP, c.Truncated, c.MalformedIP, c.UnsupportedLink)
	fmt.Fprintf(w, "  fragments  %d datagrams reassembled, %d dropped\n", c.FragReassembled, c.FragDropped)
	fmt.Fprintf(w, "  tunnels    %d inner packets, %d too deep\n", c.TunnelPackets, c.TunnelTooDeep)
	fmt.Fprintf(w, "  flows      %d (timed out %d, closed %d, evicted %d, at end of input %d)\n",
		s.Flows, c.FlowsTimedOut, c.FlowsClosed, s.FlowsEvicted, c.FlowsEnded-c.FlowsTimedOut-c.FlowsClosed-c.FlowsEvicted)
	if s.Panics > 0 {
		fmt.Fprintf(w, "  PANICS     %d packets skipped after a panic (see the log)\n", s.Panics)
	}
	fmt.Fprintf(w, "  sessions   %d Remote Assistance sessions\n", s.Sessions)
	fmt.Fprintf(w, "  alerts     %d (%d suppressed); %d flows blocked, %d blocks failed\n", s.Alerts, s.Suppressed, s.Blocked, s.BlockErrors)
	if p := s.Policy; p != nil {
		fmt.Fprintf(w, "  policy     %s (%d rules): decisions allow %d, log %d, alert %d, block %d\n",
			p.Source, p.Rules, p.Allow, p.Log, p.Alert, p.Block)
	}
	if len(s.Labels) == 0 {
		fmt.Fprintf(w, "  labels     none\n")
		return
	}
	names := make([]string, 0, len(s.Labels))
	for n := range s.Labels {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "  labels     (flows)\n")
	for _, n := range names {
		fmt.Fprintf(w, "    %-22s %d\n", n, s.Labels[n])
	}
}

func humanBytes(b uint64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(b)/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10))
	}
	return fmt.Sprintf("%d B", b)
}
