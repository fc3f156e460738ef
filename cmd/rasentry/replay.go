package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/rasentry/rasentry/alert"
	"github.com/rasentry/rasentry/capture"
	"github.com/rasentry/rasentry/classify"
	"github.com/rasentry/rasentry/rules"
	"github.com/rasentry/rasentry/sensor"
)

func newReplayCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "replay [flags] FILE...",
		Short: "Classify capture files (pcap, pcapng, gzip-compressed) and write records",
		Long: `replay reads each capture file as fast as possible (or at capture speed with
--realtime); packet time drives every timeout. The format is chosen by the
file's magic: pcap (microsecond or nanosecond, either byte order), pcapng, and
either of them gzip-compressed. Records go to stdout as JSON lines (--eve PATH
writes a file); logs and the summary go to stderr. The exit status is 1 when
any file could not be read to its end (the packets before the problem are
still reported), 2 for a usage or configuration error.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.runReplay(cmd, args)
		},
	}
	f := cmd.Flags()
	addOutputFlags(f)
	f.Bool("realtime", false, "replay at the pace of the capture's timestamps")
	f.Bool("summary", true, "print a summary on stderr at the end")
	addFlowFlags(f)
	f.Int("workers", 1, "classifier goroutines; packets are sharded by host pair (1 keeps output order deterministic)")
	addPolicyFlags(f)
	f.String("cpuprofile", "", "write a CPU profile (pprof) of the replay to this file")
	for key, flag := range map[string]string{
		"replay.realtime": "realtime", "replay.summary": "summary",
		"sensor.workers": "workers",
		rules.ConfigFile: "policy", rules.ConfigPreset: "preset",
	} {
		bind(a.v, f, key, flag)
	}
	return cmd
}

// addFlowFlags adds the flow table's settings to a pipeline command.
func addFlowFlags(f *pflag.FlagSet) {
	f.Int("max-flows", 1_000_000, "live flows tracked at once; the longest idle is evicted beyond it")
	f.Duration("timeout-tcp", classify.DefaultTimeouts.TCP, "idle timeout of TCP flows")
	f.Duration("timeout-tcp-closed", classify.DefaultTimeouts.TCPClosed, "linger of TCP flows after FIN from both sides or RST")
	f.Duration("timeout-udp", classify.DefaultTimeouts.UDP, "idle timeout of UDP flows")
	f.Duration("timeout-icmp", classify.DefaultTimeouts.ICMP, "idle timeout of ICMP flows")
	f.Duration("timeout-other", classify.DefaultTimeouts.Other, "idle timeout of other IP flows")
	f.Uint16("community-id-seed", 0, "Community ID seed")
	for key, flag := range map[string]string{
		"flow.max": "max-flows", "flow.timeout.tcp": "timeout-tcp", "flow.timeout.tcp_closed": "timeout-tcp-closed",
		"flow.timeout.udp": "timeout-udp", "flow.timeout.icmp": "timeout-icmp", "flow.timeout.other": "timeout-other",
		"output.community_id_seed": "community-id-seed",
	} {
		bind(nil, f, key, flag)
	}
}

// recordOptions shapes the records: the Community ID seed and in_iface.
func (a *app) recordOptions(iface string) alert.Options {
	return alert.Options{CommunityIDSeed: uint16(a.v.GetUint("output.community_id_seed")), Interface: iface}
}

// classifyConfig builds the classifier's configuration from the merged settings.
func (a *app) classifyConfig() classify.Config {
	v := a.v
	return classify.Config{
		MaxFlows: v.GetInt("flow.max"),
		Timeouts: classify.Timeouts{
			TCP:       v.GetDuration("flow.timeout.tcp"),
			TCPClosed: v.GetDuration("flow.timeout.tcp_closed"),
			UDP:       v.GetDuration("flow.timeout.udp"),
			ICMP:      v.GetDuration("flow.timeout.icmp"),
			Other:     v.GetDuration("flow.timeout.other"),
		},
	}
}

func (a *app) runReplay(cmd *cobra.Command, files []string) error {
	if path, _ := cmd.Flags().GetString("cpuprofile"); path != "" {
		stopProfile, err := startCPUProfile(path)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	if n := a.v.GetInt("sensor.workers"); n < 1 || n > sensor.MaxWorkers {
		return usageError{fmt.Errorf("--workers %d: want 1 to %d", n, sensor.MaxWorkers)}
	}
	engine, err := a.policyEngine()
	if err != nil {
		return err
	}
	sink, err := a.openOutputs(true)
	if err != nil {
		a.log.Error("cannot open output", zap.Error(err))
		return exitError{2}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a.reloadPolicyOnHUP(ctx, engine)

	var progress func(uint64, uint64)
	var current string
	if isTerminal(os.Stderr) {
		progress = func(pkts, bytes uint64) {
			fmt.Fprintf(os.Stderr, "\r\033[K%s: %d packets, %.1f MiB", current, pkts, float64(bytes)/(1<<20))
		}
	}
	s := sensor.New(sensor.Config{
		Classify: a.classifyConfig(),
		Workers:  a.v.GetInt("sensor.workers"),
		Pipeline: true,
		Records:  a.recordOptions(""),
		Sink:     sink,
		Logger:   a.log,
		Progress: progress,
		Policy:   engine,
		Outputs:  sink,
	})
	failed := 0
	for _, path := range files {
		if ctx.Err() != nil {
			break
		}
		current = path
		src, err := capture.OpenFile(path)
		if err != nil {
			a.log.Error("cannot read capture", zap.String("file", path), zap.Error(err))
			failed++
			continue
		}
		if a.v.GetBool("replay.realtime") {
			src = capture.Realtime(ctx, src)
		}
		err = s.Replay(ctx, src)
		src.Close()
		if progress != nil {
			fmt.Fprint(os.Stderr, "\r\033[K")
		}
		switch {
		case errors.Is(err, context.Canceled):
			a.log.Warn("interrupted; flows flushed", zap.String("file", path))
		case err != nil:
			a.log.Error("capture ended early", zap.String("file", path), zap.Error(err))
			failed++
		}
	}
	if err := sink.Close(); err != nil {
		a.log.Error("closing output", zap.Error(err))
		failed++
	}
	if a.v.GetBool("replay.summary") {
		sum := s.Summary()
		sum.Errors = failed
		sum.WriteText(os.Stderr)
	}
	if failed > 0 {
		return exitError{1}
	}
	return nil
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
