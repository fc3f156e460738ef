package classify

// Corpus tests of the Teredo and PNRP detectors: the shared real captures
// replayed through the classifier (corpus_harness_test.go), which
// decapsulates GTP-U and 6in4 by header and Teredo once the detector marks a
// flow, so inner IPv6 flows reach the detectors too.

import (
	"os"
	"strings"
	"testing"

	"github.com/rasentry/rasentry/internal/corpus"
)

// TestTeredoCorpus replays every shared real capture: each Teredo flow the
// oracles list must be labelled teredo (and teredo-qualification exactly
// where tshark saw RS/RA), and no other flow anywhere may carry a Teredo or
// PNRP label (negatives include 6in4, QUIC, DNS, SSDP, RDP-UDP and more).
func TestTeredoCorpus(t *testing.T) {
	matched := 0
	corpusEach(t, nil, func(t *testing.T, e corpus.Entry, r *corpusReplay) {
		if n := r.Stats.UnsupportedLink + r.Stats.NotIP; n > 0 {
			t.Logf("%d packets not decodable to IP (link type, or not IP)", n)
		}
		want := corpusOracleFamily(t, e, "teredo")
		for _, o := range want {
			fs := r.Pair(o.Proto, o.Client, o.Server)
			if len(fs) == 0 {
				t.Errorf("oracle flow %s > %s not seen", o.Client, o.Server)
				continue
			}
			f := corpusWith(fs, LabelTeredo)
			if f == nil {
				t.Errorf("%s > %s (%s): labels %v, want teredo", o.Client, o.Server, o.TsharkLabel, corpusLabels(fs).Strings())
				continue
			}
			matched++
			qual := strings.Contains(o.TsharkLabel, "qualification(RS/RA)")
			if got := corpusLabels(fs).Has(LabelTeredoQualification); got != qual {
				t.Errorf("%s > %s (%s): teredo-qualification %v, want %v", o.Client, o.Server, o.TsharkLabel, got, qual)
			}
			t.Log(f.describe("teredo"))
		}
		for _, f := range r.Flows {
			if f.Has(LabelPNRP) || f.Has(LabelPNRPRAEasyConnect) {
				t.Errorf("PNRP label on a capture without PNRP: %s", f)
			}
			if _, ok := want[f.Pair()]; !ok && (f.Has(LabelTeredo) || f.Has(LabelTeredoQualification)) {
				t.Errorf("not a Teredo flow of the oracle: %s", f)
			}
			if f.Depth > 0 {
				t.Logf("inner flow %s", f)
			}
		}
	})
	t.Logf("%d oracle Teredo flows labelled", matched)
}

// TestTeredoLabCapture replays a capture recorded from real Teredo peers
// (miredo-server and two miredo clients in network namespaces, testlab.md
// §2c, with PNRP messages from internal/testutil sent between the clients'
// Teredo addresses) named by $TEREDO_LAB_PCAP. Every outer UDP flow of it is
// Teredo; the qualification flows, the direct client-to-client flow and the
// PNRP flows inside must be found.
func TestTeredoLabCapture(t *testing.T) {
	path := os.Getenv("TEREDO_LAB_PCAP")
	if path == "" {
		t.Skip("TEREDO_LAB_PCAP not set (a capture from the miredo lab)")
	}
	r, err := replayCapture(path)
	if r == nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Logf("%s: %v", path, err)
	}
	var qual, direct, pnrp, ra int
	for _, f := range r.Flows {
		if f.Proto != ProtoUDP {
			continue
		}
		t.Log(f)
		switch {
		case f.Depth > 0:
			if f.Has(LabelPNRP) {
				pnrp++
			}
			if f.Has(LabelPNRPRAEasyConnect) {
				ra++
			}
		case !f.Has(LabelTeredo):
			t.Errorf("%s > %s not labelled teredo", f.Client, f.Server)
		case f.Has(LabelTeredoQualification):
			qual++
		case f.Client.Port() != TeredoPort && f.Server.Port() != TeredoPort:
			direct++
		}
	}
	if qual == 0 || direct == 0 || pnrp == 0 || ra == 0 {
		t.Errorf("qualification flows %d, direct flows %d, inner PNRP flows %d, Easy Connect %d: want each > 0", qual, direct, pnrp, ra)
	}
}
