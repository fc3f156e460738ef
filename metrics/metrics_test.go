package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/rasentry/rasentry/alert"
)

func sample() alert.Stats {
	return alert.Stats{Uptime: 60,
		Capture:  alert.CaptureStats{Packets: 1000, Bytes: 640000, KernelDrops: 2, UserDrops: 1},
		Flow:     alert.FlowStats{Active: 12, Ended: 400, Evicted: 3},
		Labels:   map[string]uint64{"rdp": 4, "teredo": 1},
		Sessions: alert.SessionStats{Formed: 2, Active: 1, ByMode: map[string]uint64{"offer": 1, "invitation": 1}},
		Alerts: alert.AlertStats{Total: 5, Suppressed: 7, ByRule: []alert.RuleStats{
			{Rule: "offer-helpers-only", Action: "alert", Alerts: 3, Suppressed: 7}, {Rule: "no-teredo", Action: "block", Alerts: 2}}},
		Verdicts: map[string]uint64{"accept": 990, "drop": 10},
		Reloads:  alert.ReloadStats{OK: 2, Failed: 1},
		Sinks: []alert.SinkStats{{Name: "siem", Type: "kafka", QueueDepth: 5, QueueCapacity: 10000, SpoolBytes: 2048, SpoolRecords: 20,
			SpoolCapacity: 1 << 28, Written: 410, Delivered: 385, Spooled: 20, Errors: 4, Dropped: alert.DropCounts{SpoolFull: 5}}}}
}

// Every metric the issue asks for is there, named rasentry_<subsystem>_<name>
// with _total on counters, and passes Prometheus's lint.
func TestMetricsExposition(t *testing.T) {
	m := New(BuildInfo{Version: "1.2.3", Revision: "abc", GoVersion: "go1.26"})
	m.SetSource(sample)
	srv := m.Handler()
	req, _ := http.NewRequest("GET", "/metrics", nil)
	rec := &responseRecorder{header: http.Header{}}
	srv.ServeHTTP(rec, req)
	body := rec.body.String()
	for _, want := range []string{
		`rasentry_capture_packets_total 1000`,
		`rasentry_capture_bytes_total 640000`,
		`rasentry_capture_kernel_drops_total 2`,
		`rasentry_capture_user_drops_total 1`,
		`rasentry_flow_active 12`,
		`rasentry_flow_evicted_total 3`,
		`rasentry_flow_ended_total 400`,
		`rasentry_classify_labels_total{label="rdp"} 4`,
		`rasentry_session_formed_total{mode="offer"} 1`,
		`rasentry_session_active 1`,
		`rasentry_rules_alerts_total{action="alert",rule="offer-helpers-only"} 3`,
		`rasentry_rules_alerts_total{action="block",rule="no-teredo"} 2`,
		`rasentry_rules_suppressed_total{rule="offer-helpers-only"} 7`,
		`rasentry_enforce_verdicts_total{verdict="drop"} 10`,
		`rasentry_config_reloads_total{result="failed"} 1`,
		`rasentry_sink_queue_depth{sink="siem",type="kafka"} 5`,
		`rasentry_sink_spool_bytes{sink="siem",type="kafka"} 2048`,
		`rasentry_sink_spool_records{sink="siem",type="kafka"} 20`,
		`rasentry_sink_errors_total{sink="siem",type="kafka"} 4`,
		`rasentry_sink_dropped_total{reason="spool_full",sink="siem",type="kafka"} 5`,
		`rasentry_sink_delivered_total{sink="siem",type="kafka"} 385`,
		`rasentry_build_info{goversion="go1.26",revision="abc",version="1.2.3"} 1`,
		`go_goroutines `,
		`process_start_time_seconds `,
	} {
		if !strings.Contains(body, want+"") {
			t.Errorf("missing %s", want)
		}
	}
	name := regexp.MustCompile(`^rasentry_[a-z]+_[a-z_]+$`)
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, "# TYPE rasentry_") {
			continue
		}
		f := strings.Fields(line)
		if !name.MatchString(f[2]) {
			t.Errorf("%s: not rasentry_<subsystem>_<name>", f[2])
		}
		if (f[3] == "counter") != strings.HasSuffix(f[2], "_total") {
			t.Errorf("%s is a %s: counters, and only counters, end in _total", f[2], f[3])
		}
	}
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "rasentry_") {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
}

// The metrics of real sinks: a Buffered sink's stats flow through.
func TestMetricsFromSinks(t *testing.T) {
	b, err := alert.Buffered(&alert.MemorySink{}, alert.BufferOptions{Name: "mem", Type: "stdout", QueueSize: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	m := New(BuildInfo{})
	m.SetSource(func() alert.Stats { return alert.Stats{Sinks: b.SinkStats()} })
	n, err := testutil.GatherAndCount(m.Registry(), "rasentry_sink_queue_capacity", "rasentry_sink_dropped_total")
	if err != nil || n != 1+7 {
		t.Errorf("%d series, %v; want 1 capacity and 7 drop reasons", n, err)
	}
}

// Serve on loopback: /metrics answers, /healthz follows the health check,
// CheckHealth (the container's health check) sees both states, and
// cancelling the context stops the server.
func TestServeAndHealth(t *testing.T) {
	m := New(BuildInfo{Version: "dev"})
	var unhealthy error
	m.SetHealth(func() error { return unhealthy })
	ctx, cancel := context.WithCancel(context.Background())
	addr, done, err := m.Serve(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `rasentry_build_info{goversion="",revision="",version="dev"} 1`) {
		t.Errorf("metrics: %.300s", b)
	}
	hctx, hcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer hcancel()
	if err := CheckHealth(hctx, addr.String()); err != nil {
		t.Errorf("healthy: %v", err)
	}
	unhealthy = errors.New("no packets for 5m")
	if err := CheckHealth(hctx, addr.String()); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("unhealthy: %v", err)
	}
	if _, _, err := m.Serve(ctx, addr.String()); err == nil || !strings.HasPrefix(err.Error(), "metrics: listening on "+addr.String()) {
		t.Errorf("a second listener on the same address: %v", err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the server did not stop")
	}
}

type responseRecorder struct {
	header http.Header
	body   strings.Builder
	code   int
}

func (r *responseRecorder) Header() http.Header         { return r.header }
func (r *responseRecorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *responseRecorder) WriteHeader(code int)        { r.code = code }
