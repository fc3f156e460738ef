// Package metrics exposes rasentry's counters to Prometheus on
// --metrics-addr. Every metric is declared in this file. Names follow
// rasentry_<subsystem>_<name>, with _total on counters.
//
// The values come from one snapshot function (the sensor's alert.Stats,
// the same snapshot the periodic stats record is written from), read at
// each scrape: the packet path keeps its own counters and pays nothing for
// metrics, and the metrics and the stats records always agree.
package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rasentry/rasentry/alert"
)

const namespace = "rasentry"

func desc(subsystem, name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, subsystem, name), help, labels, nil)
}

// The metrics. Counters end in _total; the rest are gauges.
var (
	capturePackets     = desc("capture", "packets_total", "Packets read from the capture.")
	captureBytes       = desc("capture", "bytes_total", "Bytes (frame lengths) read from the capture.")
	captureKernelDrops = desc("capture", "kernel_drops_total", "Packets the kernel dropped before rasentry read them (AF_PACKET, NFQUEUE).")
	captureUserDrops   = desc("capture", "user_drops_total", "Packets read but dropped inside rasentry (a worker queue was full).")

	flowActive  = desc("flow", "active", "Flows tracked now.")
	flowEnded   = desc("flow", "ended_total", "Flows ended (their record written).")
	flowEvicted = desc("flow", "evicted_total", "Flows ended early because the flow table was full.")

	classifyLabels = desc("classify", "labels_total", "Flows that ended with a label, by label.", "label")

	sessionFormed = desc("session", "formed_total", "Remote Assistance sessions assembled, by mode.", "mode")
	sessionActive = desc("session", "active", "Remote Assistance sessions open now.")

	rulesAlerts     = desc("rules", "alerts_total", "Alerts by policy rule and action (log, alert, block).", "rule", "action")
	rulesSuppressed = desc("rules", "suppressed_total", "Alerts held back by a rule's suppression window, by rule.", "rule")

	enforceVerdicts = desc("enforce", "verdicts_total", "Inline verdicts by verdict (accept, drop).", "verdict")

	configReloads = desc("config", "reloads_total", "Configuration reloads (SIGHUP) by result (ok, failed).", "result")

	sinkQueueDepth    = desc("sink", "queue_depth", "Records waiting in a sink's memory queue.", "sink", "type")
	sinkQueueCapacity = desc("sink", "queue_capacity", "The bound of a sink's memory queue, in records.", "sink", "type")
	sinkSpoolBytes    = desc("sink", "spool_bytes", "Bytes in a sink's on-disk spool.", "sink", "type")
	sinkSpoolRecords  = desc("sink", "spool_records", "Records waiting in a sink's on-disk spool.", "sink", "type")
	sinkSpoolCapacity = desc("sink", "spool_capacity_bytes", "The bound of a sink's spool in bytes (0: no spool).", "sink", "type")
	sinkWritten       = desc("sink", "written_total", "Records handed to a sink.", "sink", "type")
	sinkDelivered     = desc("sink", "delivered_total", "Records a sink's destination accepted.", "sink", "type")
	sinkSpooled       = desc("sink", "spooled_total", "Records that went through a sink's spool.", "sink", "type")
	sinkDropped       = desc("sink", "dropped_total", "Records a sink lost past every bound, by reason.", "sink", "type", "reason")
	sinkErrors        = desc("sink", "errors_total", "Failed delivery attempts of a sink (each is retried).", "sink", "type")

	buildInfo = desc("build", "info", "Build information; the value is 1.", "version", "revision", "goversion")
	uptime    = desc("sensor", "uptime_seconds", "Seconds since the sensor started.")
)

// BuildInfo is what `rasentry version` prints.
type BuildInfo struct {
	Version   string
	Revision  string
	GoVersion string
}

// Metrics is rasentry's Prometheus registry.
type Metrics struct {
	reg    *prometheus.Registry
	build  BuildInfo
	mu     sync.RWMutex
	source func() alert.Stats
	health func() error
}

// New returns a registry with rasentry's metrics, Go's runtime metrics
// and the process's. Until SetSource is called, only the build, Go and
// process metrics have values.
func New(b BuildInfo) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), build: b}
	m.reg.MustRegister(collector{m}, collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// SetSource sets the snapshot the metrics are read from at each scrape.
// The sensor passes the function it writes its stats records from; after
// a reload it may pass a new one.
func (m *Metrics) SetSource(fn func() alert.Stats) {
	m.mu.Lock()
	m.source = fn
	m.mu.Unlock()
}

// SetHealth sets the check behind /healthz: nil, or a function returning
// nil, is healthy.
func (m *Metrics) SetHealth(fn func() error) {
	m.mu.Lock()
	m.health = fn
	m.mu.Unlock()
}

// Registry returns the registry (tests, extra collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves /metrics and /healthz.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		m.mu.RLock()
		health := m.health
		m.mu.RUnlock()
		if health != nil {
			if err := health(); err != nil {
				http.Error(w, "unhealthy: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// Serve listens on addr (host:port) and serves Handler until ctx is done.
// The returned channel carries the error that ended serving (nil after a
// clean stop); the listener is open when Serve returns, so a bad address
// fails at once.
func (m *Metrics) Serve(ctx context.Context, addr string) (net.Addr, <-chan error, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics: listening on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second}
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(l)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	return l.Addr(), done, nil
}

// CheckHealth asks a running rasentry's /healthz at addr (host:port) and
// returns nil when it answers ok: the container health check.
func CheckHealth(ctx context.Context, addr string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	if err != nil {
		return fmt.Errorf("metrics: health %s: %w", addr, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("metrics: health %s: %w", addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("metrics: health %s: %s", addr, resp.Status)
	}
	return nil
}

// collector turns one snapshot into every rasentry metric.
type collector struct{ m *Metrics }

var allDescs = []*prometheus.Desc{
	capturePackets, captureBytes, captureKernelDrops, captureUserDrops,
	flowActive, flowEnded, flowEvicted, classifyLabels, sessionFormed, sessionActive,
	rulesAlerts, rulesSuppressed, enforceVerdicts, configReloads,
	sinkQueueDepth, sinkQueueCapacity, sinkSpoolBytes, sinkSpoolRecords, sinkSpoolCapacity,
	sinkWritten, sinkDelivered, sinkSpooled, sinkDropped, sinkErrors, buildInfo, uptime,
}

// Describe sends every rasentry metric's description.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect reads one snapshot and sends every metric of it.
func (c collector) Collect(ch chan<- prometheus.Metric) {
	b := c.m.build
	ch <- prometheus.MustNewConstMetric(buildInfo, prometheus.GaugeValue, 1, b.Version, b.Revision, b.GoVersion)
	c.m.mu.RLock()
	source := c.m.source
	c.m.mu.RUnlock()
	if source == nil {
		return
	}
	s := source()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	gauge(uptime, float64(s.Uptime))
	counter(capturePackets, s.Capture.Packets)
	counter(captureBytes, s.Capture.Bytes)
	counter(captureKernelDrops, s.Capture.KernelDrops)
	counter(captureUserDrops, s.Capture.UserDrops)
	gauge(flowActive, float64(s.Flow.Active))
	counter(flowEnded, s.Flow.Ended)
	counter(flowEvicted, s.Flow.Evicted)
	for l, n := range s.Labels {
		counter(classifyLabels, n, l)
	}
	for mode, n := range s.Sessions.ByMode {
		counter(sessionFormed, n, mode)
	}
	gauge(sessionActive, float64(s.Sessions.Active))
	// Summed first: a rule listed twice must not make the scrape fail.
	type ruleAction struct{ rule, action string }
	alerts := map[ruleAction]uint64{}
	suppressed := map[string]uint64{}
	for _, r := range s.Alerts.ByRule {
		alerts[ruleAction{r.Rule, r.Action}] += r.Alerts
		suppressed[r.Rule] += r.Suppressed
	}
	for k, n := range alerts {
		counter(rulesAlerts, n, k.rule, k.action)
	}
	for rule, n := range suppressed {
		counter(rulesSuppressed, n, rule)
	}
	for v, n := range s.Verdicts {
		counter(enforceVerdicts, n, v)
	}
	counter(configReloads, s.Reloads.OK, "ok")
	counter(configReloads, s.Reloads.Failed, "failed")
	for _, k := range s.Sinks {
		gauge(sinkQueueDepth, float64(k.QueueDepth), k.Name, k.Type)
		gauge(sinkQueueCapacity, float64(k.QueueCapacity), k.Name, k.Type)
		gauge(sinkSpoolBytes, float64(k.SpoolBytes), k.Name, k.Type)
		gauge(sinkSpoolRecords, float64(k.SpoolRecords), k.Name, k.Type)
		gauge(sinkSpoolCapacity, float64(k.SpoolCapacity), k.Name, k.Type)
		counter(sinkWritten, k.Written, k.Name, k.Type)
		counter(sinkDelivered, k.Delivered, k.Name, k.Type)
		counter(sinkSpooled, k.Spooled, k.Name, k.Type)
		counter(sinkErrors, k.Errors, k.Name, k.Type)
		k.Dropped.Each(func(reason string, n uint64) { counter(sinkDropped, n, k.Name, k.Type, reason) })
	}
}
