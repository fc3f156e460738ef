// Command rasentry-pcapgen writes the project's scenario captures: realistic
// multi-flow traffic built from the protocol specifications, deterministic
// for a seed.
//
//	rasentry-pcapgen list
//	rasentry-pcapgen [--seed N] [--client IP] [--server IP] SCENARIO -o FILE
package main

import (
	"flag"
	"fmt"
	"net/netip"
	"os"

	"github.com/rasentry/rasentry/internal/scenario"
	"github.com/rasentry/rasentry/internal/testutil"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "rasentry-pcapgen:", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("rasentry-pcapgen", flag.ContinueOnError)
	seed := fs.Uint64("seed", 1, "random seed (same seed, same bytes)")
	out := fs.String("o", "", "output pcap file")
	client := fs.String("client", "", "override the scenario's client address")
	server := fs.String("server", "", "override the scenario's server address")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: rasentry-pcapgen list\n       rasentry-pcapgen [--seed N] [--client IP] [--server IP] SCENARIO -o FILE\n")
		fs.PrintDefaults()
	}
	// Accept flags before and after the scenario name.
	var rest []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			return err
		}
		args = fs.Args()
		if len(args) > 0 {
			rest = append(rest, args[0])
			args = args[1:]
		}
	}
	if len(rest) == 1 && rest[0] == "list" {
		for _, s := range scenario.List() {
			fmt.Printf("%-16s %s\n", s.Name, s.Description)
		}
		return nil
	}
	if len(rest) != 1 || *out == "" {
		fs.Usage()
		return fmt.Errorf("want one SCENARIO and -o FILE")
	}
	o := scenario.Options{Seed: *seed}
	var err error
	if *client != "" {
		if o.Client, err = netip.ParseAddr(*client); err != nil {
			return fmt.Errorf("--client: %w", err)
		}
	}
	if *server != "" {
		if o.Server, err = netip.ParseAddr(*server); err != nil {
			return fmt.Errorf("--server: %w", err)
		}
	}
	frames, err := scenario.Build(rest[0], o)
	if err != nil {
		return err
	}
	return testutil.WritePcap(*out, frames)
}
