package classify

// The harness the corpus tests share: it replays a capture of the shared
// corpus (../shared/pcaps/real beside the checkout, read through
// internal/corpus) through the real pipeline — capture.OpenFile, a
// Classifier with the default detectors, Flush at the end — and keeps a copy
// of every flow that ended, since the classifier recycles its flows.

import (
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/rasentry/rasentry/capture"
	"github.com/rasentry/rasentry/internal/corpus"
)

// corpusFlow is what the corpus tests check of one ended flow: copies of
// its fields, valid after the classifier has reused the Flow.
type corpusFlow struct {
	Proto          uint8
	Client, Server netip.AddrPort
	Depth          uint8 // tunnel depth: 0 for the outermost flow
	Labels         LabelSet
	Confidence     [labelCount]Confidence
	Evidence       Evidence
	AppProto       AppProto
	Tunnel         *Tunnel      // the outer flow, for a flow found inside a tunnel
	Expected       *Expectation // the expectation the flow met, as it stood when the flow ended
}

func copyCorpusFlow(f *Flow) *corpusFlow {
	c := &corpusFlow{Proto: f.Proto, Client: f.Client, Server: f.Server, Depth: f.Depth, Labels: f.Labels, AppProto: f.AppProto}
	if x := f.Extension(); x != nil {
		c.Confidence = x.Confidence
		c.Evidence = Evidence{items: slices.Clone(x.Evidence.items)}
		if x.Tunnel != nil {
			t := *x.Tunnel
			c.Tunnel = &t
		}
		if x.Expected != nil {
			e := *x.Expected
			c.Expected = &e
		}
	}
	return c
}

// Has reports whether the flow carries l.
func (f *corpusFlow) Has(l Label) bool { return f.Labels.Has(l) }

// LabelConfidence returns the confidence of l, or 0 when absent.
func (f *corpusFlow) LabelConfidence(l Label) Confidence {
	if !f.Labels.Has(l) {
		return 0
	}
	return f.Confidence[l]
}

// GetEvidence returns the evidence a detector stored under name, or nil.
func (f *corpusFlow) GetEvidence(name string) any { return f.Evidence.Get(name) }

// Pair is the flow's key: transport and unordered endpoint pair.
func (f *corpusFlow) Pair() string { return corpusPair(corpusProto(f.Proto), f.Client, f.Server) }

// String describes the flow for messages, with all its evidence.
func (f *corpusFlow) String() string { return f.describe() }

// describe describes the flow for messages: endpoints, labels with their
// confidence, and the evidence of the detectors named (all when none is).
func (f *corpusFlow) describe(detectors ...string) string {
	var b strings.Builder
	b.WriteString(corpusProto(f.Proto) + " " + f.Client.String() + " > " + f.Server.String())
	if f.Tunnel != nil {
		b.WriteString(" (depth " + itoa(int(f.Depth)) + " in " + f.Tunnel.Type + ")")
	}
	sep := " "
	for _, l := range f.Labels.Labels() {
		b.WriteString(sep + l.String() + "/" + f.LabelConfidence(l).String())
		sep = ","
	}
	if f.AppProto != AppNone {
		b.WriteString(" app=" + f.AppProto.String())
	}
	f.Evidence.Each(func(name string, v any) {
		if len(detectors) == 0 || slices.Contains(detectors, name) {
			j, _ := json.Marshal(v)
			b.WriteString(" " + name + "=" + string(j))
		}
	})
	return b.String()
}

// corpusProto names a transport as the oracles do ("tcp", "udp", ...).
func corpusProto(p uint8) string { return strings.ToLower(ProtoName(p)) }

// corpusPair keys a flow by transport and unordered endpoint pair.
func corpusPair(proto string, a, b netip.AddrPort) string { return corpus.PairKey(proto, a, b) }

// corpusReplay is what one capture gave.
type corpusReplay struct {
	Flows  []*corpusFlow // every ended flow, in the order of its first packet
	pairs  map[string][]*corpusFlow
	Expect []Expectation // the expectation table after the last packet
	Stats  Stats         // the classifier's counters
	Err    error         // what stopped reading before the end of the file, if anything
}

// Pair returns the flows between a and b over proto ("tcp", "udp"), in the
// order they started: more than one when the pair's flow timed out or closed
// and started again.
func (r *corpusReplay) Pair(proto string, a, b netip.AddrPort) []*corpusFlow {
	return r.pairs[corpusPair(proto, a, b)]
}

// corpusLabels returns the labels of the flows together.
func corpusLabels(fs []*corpusFlow) LabelSet {
	var s LabelSet
	for _, f := range fs {
		s |= f.Labels
	}
	return s
}

// corpusWith returns the first of the flows that carries l, or nil.
func corpusWith(fs []*corpusFlow, l Label) *corpusFlow {
	for _, f := range fs {
		if f.Has(l) {
			return f
		}
	}
	return nil
}

// corpusDescribe describes the flows of a pair for messages.
func corpusDescribe(fs []*corpusFlow, detectors ...string) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = f.describe(detectors...)
	}
	return strings.Join(s, "; ")
}

// replayCapture runs the capture at path through a classifier of its own.
// It returns what it got before a read error, and the error; a file that
// cannot be opened gives nil.
func replayCapture(path string) (*corpusReplay, error) {
	src, err := capture.OpenFile(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	c := New(Config{})
	r := &corpusReplay{pairs: map[string][]*corpusFlow{}}
	first := map[uint64]int{} // live flow id -> rank of its first packet
	type ranked struct {
		rank int
		f    *corpusFlow
	}
	var ended []ranked
	keep := func(evs []Event) {
		for _, ev := range evs {
			if ev.Kind == EventFlowEnded {
				ended = append(ended, ranked{first[ev.Flow.ID], copyCorpusFlow(ev.Flow)})
				delete(first, ev.Flow.ID)
			}
		}
	}
	n := 0
	for {
		p, err := src.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				r.Err = err
			}
			break
		}
		_, evs := c.Packet(p.Data, int(p.LinkType), p.Length, p.Time)
		for _, f := range c.Touched() {
			if _, ok := first[f.ID]; !ok {
				first[f.ID] = n
				n++
			}
		}
		keep(evs)
	}
	c.Flush(c.Now(), keep)
	slices.SortStableFunc(ended, func(a, b ranked) int { return a.rank - b.rank })
	for _, e := range ended {
		r.Flows = append(r.Flows, e.f)
		k := e.f.Pair()
		r.pairs[k] = append(r.pairs[k], e.f)
	}
	c.Expectations().Each(func(e *Expectation) { r.Expect = append(r.Expect, *e) })
	r.Stats = c.Stats()
	return r, r.Err
}

// corpusReplays holds the replay of each corpus capture: the classifier is
// deterministic and the tests only read, so each file is replayed once per
// test binary however many tests check it.
var corpusReplays struct {
	sync.Mutex
	m map[string]*corpusReplay
}

// corpusRun returns the replay of a corpus capture. A file that cannot be
// opened, or whose reading stops at an error, fails the test.
func corpusRun(t testing.TB, e corpus.Entry) *corpusReplay {
	t.Helper()
	corpusReplays.Lock()
	defer corpusReplays.Unlock()
	r := corpusReplays.m[e.Path]
	if r == nil {
		var err error
		r, err = replayCapture(filepath.Join(corpus.Root(), e.Path))
		if r == nil {
			t.Fatalf("replay: %v", err)
		}
		if corpusReplays.m == nil {
			corpusReplays.m = map[string]*corpusReplay{}
		}
		corpusReplays.m[e.Path] = r
	}
	if r.Err != nil {
		t.Errorf("replay stopped early: %v", r.Err)
	}
	return r
}

// corpusEntries returns the corpus's MANIFEST rows, skipping the test when
// the corpus is absent (a plain clone has no ../shared).
func corpusEntries(t testing.TB) []corpus.Entry {
	t.Helper()
	root := corpus.Root()
	if root == "" {
		t.Skip("shared captures (../shared/pcaps/real) not found: a plain clone has none")
	}
	entries, err := corpus.Manifest(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		t.Fatal("MANIFEST.tsv lists no capture")
	}
	return entries
}

// corpusEach runs check, as a subtest named by the capture's path, on the
// replay of every corpus capture that keep accepts (nil keeps them all).
func corpusEach(t *testing.T, keep func(corpus.Entry) bool, check func(t *testing.T, e corpus.Entry, r *corpusReplay)) {
	t.Helper()
	for _, e := range corpusEntries(t) {
		if keep == nil || keep(e) {
			t.Run(e.Path, func(t *testing.T) { check(t, e, corpusRun(t, e)) })
		}
	}
}

// corpusEntry returns the MANIFEST row of one capture, skipping the test
// when the corpus is absent.
func corpusEntry(t testing.TB, path string) corpus.Entry {
	t.Helper()
	for _, e := range corpusEntries(t) {
		if e.Path == path {
			return e
		}
	}
	t.Fatalf("%s is not in MANIFEST.tsv", path)
	return corpus.Entry{}
}

// corpusOracle returns the flows of interest tshark listed for a capture.
func corpusOracle(t testing.TB, e corpus.Entry) []corpus.OracleFlow {
	t.Helper()
	rows, err := corpus.Flows(corpus.Root(), e)
	if err != nil {
		t.Fatalf("oracle: %v", err)
	}
	return rows
}

// corpusOracleFamily returns the oracle rows of one family, keyed by pair.
func corpusOracleFamily(t testing.TB, e corpus.Entry, family string) map[string]corpus.OracleFlow {
	t.Helper()
	m := map[string]corpus.OracleFlow{}
	for _, o := range corpusOracle(t, e) {
		if o.Family == family {
			m[corpusPair(o.Proto, o.Client, o.Server)] = o
		}
	}
	return m
}
