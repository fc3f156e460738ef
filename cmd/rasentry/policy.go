package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rasentry/rasentry/rules"
)

// newPolicyCommand returns `rasentry policy` with its subcommands check and
// explain.
func newPolicyCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Check policy files and explain what they do",
		Long: `A policy file (YAML) mirrors the Remote Assistance Group Policy settings and
adds network context and explicit rules; rasentry enforces it at the network
edge. Built-in presets: ` + strings.Join(rules.PresetNames(), ", ") + ` (the default).
rules/presets/example.yaml in the source documents every key.`,
	}
	cmd.AddCommand(newPolicyCheckCommand(a), newPolicyExplainCommand(a))
	return cmd
}

func newPolicyCheckCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check [--preset NAME] [FILE...]",
		Short: "Validate policy files; print every problem as FILE:LINE:COL: what is wrong",
		Long: `check validates each policy file and prints every problem as
FILE:LINE:COL: what is wrong — unknown keys, bad CIDRs, unknown labels,
networks or groups, duplicate ids or signature ids, and rules that can never
match because an earlier rule matches everything they match. Settings that
are accepted but cannot be enforced on the wire are printed as notes and do
not fail the check. With no FILE, the configured policy (policy.file, else
policy.preset) is checked. The exit status is 1 when any file has a
problem.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			w := cmd.OutOrStdout()
			type target struct {
				name string
				load func() (*rules.Policy, error)
			}
			var targets []target
			presets, _ := cmd.Flags().GetStringSlice("preset")
			for _, name := range presets {
				targets = append(targets, target{"preset " + name, func() (*rules.Policy, error) { return rules.Preset(name) }})
			}
			for _, path := range args {
				targets = append(targets, target{path, func() (*rules.Policy, error) { return rules.Load(path) }})
			}
			if len(targets) == 0 {
				targets = append(targets, target{"configured policy", func() (*rules.Policy, error) { return rules.LoadConfigured(a.v) }})
			}
			failed := 0
			for _, t := range targets {
				p, err := t.load()
				if err != nil {
					failed++
					printLoadError(cmd, t.name, err)
					continue
				}
				for _, n := range p.Notes {
					fmt.Fprintln(w, n)
				}
				fmt.Fprintf(w, "%s: ok (%s, %s)\n", t.name, plural(len(p.Rules), "explicit rule"), plural(len(p.Notes), "note"))
			}
			if failed > 0 {
				return exitError{1}
			}
			return nil
		},
	}
	cmd.Flags().StringSlice("preset", nil, "check a built-in preset ("+strings.Join(rules.PresetNames(), ", ")+")")
	return cmd
}

func newPolicyExplainCommand(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "explain FILE | --preset NAME",
		Short: "Print a policy's compiled rules in evaluation order, in words",
		Long: `explain prints the rules a policy compiles into — its explicit rules, then
those compiled from the remote_assistance settings — in the order they are
evaluated (the first that matches decides), each with what it matches, its
action, severity and signature id, then the default and any settings that
cannot be enforced on the wire. With neither FILE nor --preset, the
configured policy (policy.file, else policy.preset, else monitor) is
explained.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			preset, _ := cmd.Flags().GetString("preset")
			var (
				p    *rules.Policy
				err  error
				name string
			)
			switch {
			case len(args) == 1 && preset != "":
				fmt.Fprintln(cmd.ErrOrStderr(), "rasentry: policy explain: give a FILE or --preset, not both")
				return exitError{2}
			case len(args) == 1:
				name = args[0]
				p, err = rules.Load(name)
			case preset != "":
				name = "preset " + preset
				p, err = rules.Preset(preset)
			default:
				name = "configured policy"
				p, err = rules.LoadConfigured(a.v)
			}
			if err == nil {
				var c *rules.Compiled
				if c, err = rules.Compile(p); err == nil {
					c.Explain(cmd.OutOrStdout())
					return nil
				}
			}
			printLoadError(cmd, name, err)
			return exitError{1}
		},
	}
	cmd.Flags().String("preset", "", "explain a built-in preset ("+strings.Join(rules.PresetNames(), ", ")+")")
	return cmd
}

// printLoadError prints a policy's problems, one FILE:LINE:COL line each, on
// stdout (they are what the command was asked for); other errors go to
// stderr.
func printLoadError(cmd *cobra.Command, name string, err error) {
	var ps rules.Problems
	if errors.As(err, &ps) {
		for _, p := range ps {
			fmt.Fprintln(cmd.OutOrStdout(), p)
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", name, plural(len(ps), "problem"))
		return
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "rasentry: %s: %v\n", name, err)
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
