package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/pflag"
	"go.uber.org/zap"

	"github.com/rasentry/rasentry/rules"
)

// addPolicyFlags adds --policy and --preset to a command that runs the pipeline.
func addPolicyFlags(f *pflag.FlagSet) {
	f.String("policy", "", "policy file (YAML); see `rasentry policy check`")
	f.String("preset", rules.DefaultPreset, "built-in policy when no --policy is given: "+strings.Join(rules.PresetNames(), ", "))
}

// policyEngine loads, validates and compiles the configured policy. A
// policy with problems stops the command with every problem printed as
// FILE:LINE:COL (exit status 2).
func (a *app) policyEngine() (*rules.Engine, error) {
	p, err := rules.LoadConfigured(a.v)
	if err == nil {
		var c *rules.Compiled
		if c, err = rules.Compile(p); err == nil {
			for _, n := range c.Notes() {
				a.log.Info("policy note", zap.String("note", fmt.Sprint(n)))
			}
			return rules.NewEngine(c), nil
		}
	}
	fmt.Fprintf(os.Stderr, "rasentry: the policy cannot be used:\n%v\n", err)
	return nil, exitError{2}
}

// reloadPolicyOnHUP re-reads the policy on SIGHUP; a policy that fails
// validation leaves the running one in place, and the reason is logged.
func (a *app) reloadPolicyOnHUP(ctx context.Context, e *rules.Engine) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		e.ReloadOn(ctx, hup, func() (*rules.Policy, error) { return rules.LoadConfigured(a.v) }, func(err error) {
			if err != nil {
				a.log.Error("policy reload failed; the previous policy stays in force", zap.Error(err))
				return
			}
			a.log.Info("policy reloaded", zap.String("source", e.Current().Source()))
		})
	}()
}
