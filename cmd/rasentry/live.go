package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/rasentry/rasentry/capture"
	"github.com/rasentry/rasentry/enforce"
	"github.com/rasentry/rasentry/internal/privs"
	"github.com/rasentry/rasentry/sensor"
)

func newLiveCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "live --iface IF[,IF...] [flags]",
		Short: "Watch interfaces passively (gateway mirror or SPAN port) with AF_PACKET",
		Long: `live captures with AF_PACKET (TPACKET_V3) on one or more interfaces and
classifies as replay does, with the kernel's packet time. Blocking is chosen
with --enforcer: dry-run (the default: decisions are alerts with action
"allowed"), nftables (named sets with per-element timeouts on the gateway
rasentry runs on) or reset (TCP resets to both ends, through --inject-iface
on a SPAN deployment, else routed). Needs CAP_NET_RAW (and CAP_NET_ADMIN for
nftables); every other capability is dropped once the sockets are open.
SIGHUP re-reads the policy; SIGINT or SIGTERM stop after flushing every flow.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runLive(cmd) },
	}
	f := cmd.Flags()
	f.StringSlice("iface", nil, "interfaces to capture on (comma-separated)")
	f.String("bpf", "", "kernel filter: a pcap-filter expression or `tcpdump -ddd` output")
	f.Bool("promisc", true, "promiscuous mode while capturing (undone by the kernel on exit)")
	f.String("enforcer", "dry-run", "how blocks are enforced: dry-run, nftables or reset")
	f.String("inject-iface", "", "reset enforcer: interface that sends the resets (SPAN inject port)")
	f.Duration("block-duration", 0, "how long a block lasts (default: the enforcer's, 10m for nftables)")
	addPolicyFlags(f)
	addOutputFlags(f)
	addOperationFlags(f)
	addFlowFlags(f)
	for key, flag := range map[string]string{
		"live.iface": "iface", "live.bpf": "bpf", "live.promisc": "promisc", "enforce.mode": "enforcer",
		"enforce.inject_iface": "inject-iface", "enforce.duration": "block-duration",
		"policy.file": "policy", "policy.preset": "preset",
	} {
		bind(a.v, f, key, flag)
	}
	return cmd
}

func newInlineCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "inline --queue N[:M] [flags]",
		Short: "Decide every packet inline on a Linux gateway (NFQUEUE)",
		Long: `inline reads packets from NFQUEUE queues N to M and gives each a verdict
from its flow's decision: a blocked flow is dropped from its deciding packet
on; a flow that is decided and allowed is offloaded with a connection mark so
the kernel passes the rest. It fails open both ways: the queue rule's bypass
flag passes traffic when rasentry is not running, and the kernel's fail-open
flag when the queue is full. "rasentry inline rules install|remove" writes
the rules (IPv4 and IPv6). Needs CAP_NET_ADMIN.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runInline(cmd) },
	}
	f := cmd.PersistentFlags()
	f.String("queue", "0", "queue number or range N:M")
	f.StringSlice("hooks", []string{"forward"}, "rules: netfilter hooks to queue from (forward, input, output)")
	cmd.Flags().Bool("fail-closed", false, "drop packets when the queue is full instead of passing them")
	addPolicyFlags(cmd.Flags())
	addOutputFlags(cmd.Flags())
	addOperationFlags(cmd.Flags())
	addFlowFlags(cmd.Flags())
	for key, flag := range map[string]string{"policy.file": "policy", "policy.preset": "preset"} {
		bind(a.v, cmd.Flags(), key, flag)
	}
	rulesCmd := &cobra.Command{Use: "rules", Short: "Install or remove the NFQUEUE rules (IPv4 and IPv6)"}
	for _, verb := range []string{"install", "remove", "show"} {
		verb := verb
		rulesCmd.AddCommand(&cobra.Command{
			Use:   verb,
			Short: map[string]string{"install": "Add the queue rules (idempotent)", "remove": "Delete the queue rules", "show": "Print the equivalent iptables commands"}[verb],
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				r, err := queueRules(cmd)
				if err != nil {
					return err
				}
				switch verb {
				case "install":
					err = capture.InstallQueueRules(r)
				case "remove":
					err = capture.RemoveQueueRules(r)
				default:
					install, remove, e := capture.IPTablesCommands(r)
					if e != nil {
						return e
					}
					fmt.Fprintln(cmd.OutOrStdout(), "# install\n"+strings.Join(install, "\n")+"\n# remove\n"+strings.Join(remove, "\n"))
				}
				return err
			},
		})
	}
	cmd.AddCommand(rulesCmd)
	return cmd
}

// parseQueues reads "N" or "N:M".
func parseQueues(s string) (first, count uint16, err error) {
	lo, hi, ranged := strings.Cut(s, ":")
	a, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return 0, 0, usageError{fmt.Errorf("--queue %q: want N or N:M", s)}
	}
	b := a
	if ranged {
		if b, err = strconv.ParseUint(hi, 10, 16); err != nil || b < a {
			return 0, 0, usageError{fmt.Errorf("--queue %q: want N or N:M with M >= N", s)}
		}
	}
	return uint16(a), uint16(b-a) + 1, nil
}

func queueRules(cmd *cobra.Command) (capture.QueueRules, error) {
	q, _ := cmd.Flags().GetString("queue")
	hooks, _ := cmd.Flags().GetStringSlice("hooks")
	first, count, err := parseQueues(q)
	return capture.QueueRules{Queue: first, Count: count, Hooks: hooks}, err
}

// runSensor runs a live source to the end with the configured policy and
// sink, then prints the summary.
func (a *app) runSensor(src capture.Source, blocker sensor.Blocker) error {
	engine, err := a.policyEngine()
	if err != nil {
		return err
	}
	sink, err := a.openOutputs(false)
	if err != nil {
		a.log.Error("cannot open output", zap.Error(err))
		return exitError{2}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	reloads := &sensor.ReloadCounter{}
	a.reloadPolicyOnHUP(ctx, engine)
	a.reloadOutputsOnHUP(ctx, sink, reloads)
	s := sensor.New(sensor.Config{Classify: a.classifyConfig(), Records: a.recordOptions(src.Name()), Sink: sink,
		Logger: a.log, Policy: engine, Blocker: blocker, Outputs: sink, Reloads: reloads,
		StatsInterval: a.v.GetDuration("stats.interval")})
	a.serveMetrics(ctx, s)
	a.log.Info("sensor running", zap.String("source", src.Name()), zap.String("policy", engine.Current().Source()))
	runErr := s.Live(ctx, src)
	src.Close()
	if err := sink.Close(); err != nil {
		a.log.Error("closing output", zap.Error(err))
		runErr = err
	}
	s.Summary().WriteText(os.Stderr)
	if runErr != nil {
		a.log.Error("sensor stopped", zap.Error(runErr))
		return exitError{1}
	}
	return nil
}

func (a *app) runLive(cmd *cobra.Command) error {
	ifaces := a.v.GetStringSlice("live.iface")
	if len(ifaces) == 0 {
		return fmt.Errorf("live: --iface is required")
	}
	need := []privs.Cap{privs.CapNetRaw}
	mode := a.v.GetString("enforce.mode")
	if mode == "nftables" || mode == "reset" {
		need = append(need, privs.CapNetAdmin)
	}
	if err := privs.CheckCapabilities(need...); err != nil {
		fmt.Fprintln(os.Stderr, "rasentry:", err)
		return exitError{2}
	}
	var opts []capture.LiveOptions
	for _, ifc := range ifaces {
		opts = append(opts, capture.LiveOptions{Interface: ifc, BPF: a.v.GetString("live.bpf"), Promisc: a.v.GetBool("live.promisc")})
	}
	src, err := capture.OpenLiveMulti(opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rasentry:", err)
		return exitError{2}
	}
	var enf enforce.Enforcer
	switch mode {
	case "dry-run", "":
		enf = enforce.NewDryRun()
	case "nftables":
		enf, err = enforce.NewNFTables(enforce.NFTablesOptions{DefaultDuration: a.v.GetDuration("enforce.duration")})
	case "reset":
		enf, err = enforce.NewReset(enforce.ResetOptions{Interface: a.v.GetString("enforce.inject_iface")})
	default:
		err = fmt.Errorf("--enforcer %q: want dry-run, nftables or reset", mode)
	}
	if err != nil {
		src.Close()
		fmt.Fprintln(os.Stderr, "rasentry:", err)
		return exitError{2}
	}
	defer enf.Close()
	if err := privs.DropPrivileges(); err != nil {
		a.log.Warn("could not drop capabilities", zap.Error(err))
	}
	return a.runSensor(src, sensor.EnforcerBlocker{Enforcer: enf, Duration: a.v.GetDuration("enforce.duration")})
}

func (a *app) runInline(cmd *cobra.Command) error {
	if err := privs.CheckCapabilities(privs.CapNetAdmin); err != nil {
		fmt.Fprintln(os.Stderr, "rasentry:", err)
		return exitError{2}
	}
	q, _ := cmd.Flags().GetString("queue")
	first, count, err := parseQueues(q)
	if err != nil {
		return err
	}
	failClosed, _ := cmd.Flags().GetBool("fail-closed")
	src, err := capture.OpenQueue(capture.QueueOptions{Queue: first, Count: count, FailClosed: failClosed})
	if err != nil {
		fmt.Fprintln(os.Stderr, "rasentry:", err)
		return exitError{2}
	}
	if err := privs.DropPrivileges(); err != nil {
		a.log.Warn("could not drop capabilities", zap.Error(err))
	}
	return a.runSensor(src, sensor.InlineBlocker{})
}
