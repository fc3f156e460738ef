package classify

// Corpus tests of the RDP detector: the shared real captures replayed
// through the classifier (corpus_harness_test.go) and checked against
// tshark's oracle.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rasentry/rasentry/internal/corpus"
)

func rdpLabelled(f *corpusFlow) bool {
	return f.Has(LabelRDP) || f.Has(LabelRDPUDP) || f.Has(LabelRDPRACandidate)
}

// rdpOracleRows returns the RDP flows tshark decoded in a capture
// ("(port-only)" rows are mid-stream and left out).
func rdpOracleRows(t testing.TB, e corpus.Entry) []corpus.OracleFlow {
	var rows []corpus.OracleFlow
	for _, o := range corpusOracle(t, e) {
		if o.Family == "rdp" && !o.PortOnly() {
			rows = append(rows, o)
		}
	}
	return rows
}

// TestRDPCorpusOracles: every RDP flow that tshark decodes in the shared
// captures (all families) gets rdp or rdp-udp, and app_proto rdp.
func TestRDPCorpusOracles(t *testing.T) {
	checked := 0
	keep := func(e corpus.Entry) bool { return len(rdpOracleRows(t, e)) > 0 }
	corpusEach(t, keep, func(t *testing.T, e corpus.Entry, r *corpusReplay) {
		for _, o := range rdpOracleRows(t, e) {
			fs := r.Pair(o.Proto, o.Client, o.Server)
			if len(fs) == 0 {
				t.Errorf("%s %s > %s: flow not found", o.Proto, o.Client, o.Server)
				continue
			}
			checked++
			want := LabelRDP
			if o.Proto == "udp" {
				want = LabelRDPUDP
			}
			f := corpusWith(fs, want)
			if f == nil {
				t.Errorf("%s %s > %s (%s): no %s label; got %s", o.Proto, o.Client, o.Server, o.TsharkLabel, want, corpusDescribe(fs, rdpEvidenceName))
				continue
			}
			if f.AppProto != AppRDP {
				t.Errorf("%s %s > %s: app_proto %q", o.Proto, o.Client, o.Server, f.AppProto)
			}
			t.Log(f.describe(rdpEvidenceName))
		}
	})
	if checked == 0 {
		t.Fatal("no oracle flows checked")
	}
}

// TestRDPCorpusNoStrayLabels: in every capture, a flow labelled rdp,
// rdp-udp or rdp-ra-candidate must be one the oracle lists as RDP
// (including mid-stream "(port-only)" rows); the negative captures must get
// no RDP label at all.
func TestRDPCorpusNoStrayLabels(t *testing.T) {
	corpusEach(t, nil, func(t *testing.T, e corpus.Entry, r *corpusReplay) {
		allowed := corpusOracleFamily(t, e, "rdp")
		if e.Family == "negative" {
			clear(allowed)
		}
		n := 0
		for _, f := range r.Flows {
			if !rdpLabelled(f) {
				continue
			}
			n++
			if _, ok := allowed[f.Pair()]; !ok {
				t.Errorf("%s: unexpected %s", e.Family, f.describe(rdpEvidenceName))
			}
		}
		t.Logf("%s: %d flows, %d labelled RDP", filepath.Base(e.Path), len(r.Flows), n)
	})
}

// TestRDPLabCapture prints what the classifier makes of captures named in
// RDP_LAB_PCAP (colon-separated), e.g. recordings of real peers made per
// docs/testlab.md. It checks nothing and is skipped without the variable.
func TestRDPLabCapture(t *testing.T) {
	paths := os.Getenv("RDP_LAB_PCAP")
	if paths == "" {
		t.Skip("RDP_LAB_PCAP not set")
	}
	for _, p := range strings.Split(paths, ":") {
		r, err := replayCapture(p)
		if r == nil {
			t.Fatalf("%s: %v", p, err)
		}
		if err != nil {
			t.Logf("%s: stop reading: %v", p, err)
		}
		for _, f := range r.Flows {
			t.Logf("%s: %s", filepath.Base(p), f.describe(rdpEvidenceName))
		}
	}
}
