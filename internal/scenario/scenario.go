// Package scenario writes the project's own capture scenarios: multi-flow
// traffic built from the specifications with correct handshakes, checksums
// and timing, deterministic for a seed. cmd/rasentry-pcapgen exposes them.
package scenario

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sort"
	"time"

	"github.com/rasentry/rasentry/internal/testutil"
)

// Options adjust a scenario.
type Options struct {
	Seed  uint64
	Start time.Time // time of the first packet (default 2026-01-05 09:00:00 UTC)
	// Client and Server override the scenario's main endpoints' addresses.
	Client, Server netip.Addr
}

// Scenario is one named capture recipe.
type Scenario struct {
	Name        string
	Description string
	Build       func(o Options, r *rand.Rand) []testutil.Frame
}

var registry = map[string]Scenario{}

func register(s Scenario) { registry[s.Name] = s }

// List returns the scenarios sorted by name.
func List() []Scenario {
	out := make([]Scenario, 0, len(registry))
	for _, s := range registry {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Build returns the frames of the named scenario.
func Build(name string, o Options) ([]testutil.Frame, error) {
	s, ok := registry[name]
	if !ok {
		return nil, fmt.Errorf("scenario %q does not exist (rasentry-pcapgen list names them)", name)
	}
	if o.Start.IsZero() {
		o.Start = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	}
	r := rand.New(rand.NewPCG(o.Seed, 0x5261_5365_6e74_7279))
	return s.Build(o, r), nil
}

// ephemeral returns a client port in the Windows dynamic range.
func ephemeral(r *rand.Rand) uint16 { return uint16(49152 + r.IntN(16000)) }

func orDefault(a netip.Addr, def string) netip.Addr {
	if a.IsValid() {
		return a
	}
	return netip.MustParseAddr(def)
}
