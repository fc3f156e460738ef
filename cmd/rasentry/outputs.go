package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/rasentry/rasentry/alert"
	"github.com/rasentry/rasentry/metrics"
	"github.com/rasentry/rasentry/sensor"
)

// addOutputFlags adds the output flags every pipeline command has.
func addOutputFlags(f *pflag.FlagSet) {
	f.String("eve", "", "write records to this file (appending) instead of the configured sinks")
	f.String("format", "eve", "record format: eve (Suricata EVE JSON) or ecs (Elastic Common Schema)")
	for key, flag := range map[string]string{"output.eve": "eve", "output.format": "format"} {
		bind(nil, f, key, flag)
	}
}

// addOperationFlags adds the flags of long-running commands.
func addOperationFlags(f *pflag.FlagSet) {
	f.String("metrics-addr", "", "serve Prometheus metrics and /healthz on this address (e.g. 127.0.0.1:9477)")
	f.Duration("stats-interval", time.Minute, "how often a stats record is written (0: never)")
	bind(nil, f, "metrics.addr", "metrics-addr")
	bind(nil, f, "stats.interval", "stats-interval")
}

// openOutputs opens the configured sinks (output.sinks in rasentry.yaml;
// EVE to stdout when none), or the single file --eve names. Replay blocks
// on a slow sink instead of spooling: it has no packets to lose.
func (a *app) openOutputs(replay bool) (*alert.Outputs, error) {
	raw := a.v.GetStringMap("output")
	cfg, err := alert.DecodeOutputConfig(raw)
	if err != nil {
		return nil, err
	}
	if eve := a.v.GetString("output.eve"); eve != "" {
		cfg.Sinks = []alert.SinkConfig{{Name: "eve", Type: alert.SinkFile, File: &alert.FileConfig{Path: eve}}}
	}
	if cfg.Format, err = alert.ParseFormat(a.v.GetString("output.format")); err != nil {
		return nil, err
	}
	if replay {
		cfg.SpoolDir = ""
	}
	host, _ := os.Hostname()
	return alert.Open(cfg, alert.OpenOptions{Logger: a.log, Block: replay,
		Encoder: alert.EncoderOptions{ObserverHostname: host, ObserverVersion: version}})
}

// reloadOutputsOnHUP re-reads the configuration file on SIGHUP and swaps
// the sinks (reopening files, so logrotate works); a configuration that
// fails to decode keeps the sinks and only reopens them.
func (a *app) reloadOutputsOnHUP(ctx context.Context, out *alert.Outputs, reloads *sensor.ReloadCounter) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
			}
			err := a.v.ReadInConfig()
			var cfg alert.OutputConfig
			if err == nil {
				cfg, err = alert.DecodeOutputConfig(a.v.GetStringMap("output"))
			}
			if err == nil {
				err = out.Reload(cfg)
			}
			if err != nil {
				_ = out.Reopen()
				reloads.Failed.Add(1)
				a.log.Error("output reload failed; the sinks stay as they were (files reopened)", zap.Error(err))
				continue
			}
			reloads.OK.Add(1)
			a.log.Info("outputs reloaded")
		}
	}()
}

// serveMetrics starts the Prometheus endpoint when --metrics-addr is set.
func (a *app) serveMetrics(ctx context.Context, s *sensor.Sensor) {
	addr := a.v.GetString("metrics.addr")
	if addr == "" {
		return
	}
	m := metrics.New(metrics.BuildInfo{Version: version})
	m.SetSource(s.StatsSnapshot)
	bound, errc, err := m.Serve(ctx, addr)
	if err != nil {
		a.log.Error("metrics endpoint", zap.Error(err))
		return
	}
	a.log.Info("metrics", zap.String("addr", bound.String()))
	go func() {
		if err := <-errc; err != nil {
			a.log.Error("metrics endpoint stopped", zap.Error(err))
		}
	}()
}

func newHealthCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Check a running sensor through its metrics endpoint (exit 0 when healthy)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := metrics.CheckHealth(ctx, a.v.GetString("metrics.addr")); err != nil {
				fmt.Fprintln(os.Stderr, "rasentry: unhealthy:", err)
				return exitError{1}
			}
			return nil
		},
	}
	cmd.Flags().String("metrics-addr", "127.0.0.1:9477", "the sensor's metrics address")
	bind(nil, cmd.Flags(), "metrics.addr", "metrics-addr")
	return cmd
}
