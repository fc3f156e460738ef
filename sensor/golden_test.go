package sensor

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/rasentry/rasentry/alert"
	"github.com/rasentry/rasentry/capture"
	"github.com/rasentry/rasentry/classify"
	"github.com/rasentry/rasentry/internal/corpus"
	"github.com/rasentry/rasentry/rules"
)

var update = flag.Bool("update", false, "rewrite the golden files from the current output")

// presetEngine returns a policy engine running a built-in preset.
func presetEngine(t testing.TB, name string) *rules.Engine {
	t.Helper()
	p, err := rules.Preset(name)
	if err != nil {
		t.Fatal(err)
	}
	c, err := rules.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	return rules.NewEngine(c)
}

// replayJSONL replays a capture with a fresh sensor running the default
// (monitor) preset and returns its records as JSON lines, exactly as
// `rasentry replay` writes them.
func replayJSONL(t *testing.T, path string) []byte {
	return replayPreset(t, path, rules.DefaultPreset)
}

func replayPreset(t *testing.T, path, preset string) []byte {
	t.Helper()
	src, err := capture.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var buf bytes.Buffer
	sink := alert.NewWriterSink("buffer", &buf)
	s := New(Config{Sink: sink, Policy: presetEngine(t, preset)})
	if err := s.Replay(context.Background(), src); err != nil {
		t.Fatalf("replay %s: %v", path, err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestGolden replays every capture in pcaps/ and compares the records with
// pcaps/<name>.golden.jsonl (go test ./sensor -run Golden -update rewrites them).
func TestGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "pcaps", "*.pcap"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no captures in pcaps/ (%v)", err)
	}
	for _, pcap := range files {
		name := strings.TrimSuffix(filepath.Base(pcap), ".pcap")
		t.Run(name, func(t *testing.T) {
			got := replayJSONL(t, pcap)
			golden := strings.TrimSuffix(pcap, ".pcap") + ".golden.jsonl"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./sensor -run Golden -update)", err)
			}
			if !bytes.Equal(got, want) {
				gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
				for i := 0; i < max(len(gl), len(wl)); i++ {
					var g, w string
					if i < len(gl) {
						g = gl[i]
					}
					if i < len(wl) {
						w = wl[i]
					}
					if g != w {
						t.Fatalf("%s differs from %s at line %d:\n got: %s\nwant: %s", pcap, golden, i+1, g, w)
					}
				}
			}
			// Same input, same bytes: a second run must match the first.
			if again := replayJSONL(t, pcap); !bytes.Equal(again, got) {
				t.Errorf("two replays of %s differ", pcap)
			}
		})
	}
}

// TestGoldenAlertsPerPreset replays every capture in pcaps/ under each
// built-in preset and compares its alert and session records with
// pcaps/golden/<name>.<preset>.jsonl (-update rewrites them).
func TestGoldenAlertsPerPreset(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "pcaps", "*.pcap"))
	for _, pcap := range files {
		name := strings.TrimSuffix(filepath.Base(pcap), ".pcap")
		for _, preset := range rules.PresetNames() {
			t.Run(name+"/"+preset, func(t *testing.T) {
				var got []byte
				for _, l := range bytes.SplitAfter(replayPreset(t, pcap, preset), []byte("\n")) {
					if bytes.Contains(l, []byte(`"event_type":"alert"`)) || bytes.Contains(l, []byte(`"event_type":"ra_session"`)) {
						got = append(got, l...)
					}
				}
				golden := filepath.Join("..", "pcaps", "golden", name+"."+preset+".jsonl")
				if *update {
					if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(golden, got, 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test ./sensor -run Golden -update)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("alerts of %s under %s differ from %s:\n got:\n%s\nwant:\n%s", pcap, preset, golden, got, want)
				}
			})
		}
	}
}

// TestWorkersGiveSameRecords checks that sharding over several workers
// yields the same flows, with the same counters and ends, as one worker.
// Labels that tie flows together (sessions, expected listeners) may differ:
// with several workers two related flows can be classified out of packet
// order when they are close in time (README, "Workers").
func TestWorkersGiveSameRecords(t *testing.T) {
	files := allCaptures()
	for _, pcap := range files {
		one := flowAccounting(t, replayWith(t, pcap, 1))
		three := flowAccounting(t, replayWith(t, pcap, 3))
		if one != three {
			t.Errorf("%s: 1 worker and 3 workers give different flows", pcap)
		}
	}
}

// flowAccounting reduces flow records to their identity and counters, sorted.
func flowAccounting(t *testing.T, jsonl []byte) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(jsonl)), "\n") {
		if l == "" {
			continue
		}
		var r struct {
			FlowID      uint64 `json:"flow_id"`
			CommunityID string `json:"community_id"`
			EventType   string `json:"event_type"`
			Flow        struct {
				PktsToServer, PktsToClient   uint64
				BytesToServer, BytesToClient uint64
				State, Reason                string
			} `json:"flow"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		if r.EventType != "flow" {
			continue
		}
		lines = append(lines, fmt.Sprint(r.FlowID, r.CommunityID, r.Flow))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func replayWith(t *testing.T, path string, workers int) []byte {
	t.Helper()
	src, err := capture.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var buf bytes.Buffer
	sink := alert.NewWriterSink("buffer", &buf)
	s := New(Config{Sink: sink, Workers: workers})
	_ = s.Replay(context.Background(), src)
	_ = sink.Close()
	return buf.Bytes()
}

// allCaptures lists the bundled captures and, when ../shared is there, the
// corpus.
func allCaptures() []string {
	files, _ := filepath.Glob(filepath.Join("..", "pcaps", "*.pcap"))
	if root := corpus.Root(); root != "" {
		more, _ := filepath.Glob(filepath.Join(root, "*", "*.pcap*"))
		files = append(files, more...)
	}
	return files
}

// TestHandEncodingMatchesEncodingJSON checks every record of the bundled
// captures and the corpus: the hand-written encoder writes what
// encoding/json would.
func TestHandEncodingMatchesEncodingJSON(t *testing.T) {
	files := allCaptures()
	n := 0
	for _, pcap := range files {
		recs, _ := replayFile(t, pcap)
		for _, r := range recs {
			a, ok := r.(interface{ AppendJSON([]byte) ([]byte, error) })
			if !ok {
				continue
			}
			got, err := a.AppendJSON(nil)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(r); err != nil {
				t.Fatal(err)
			}
			if want := bytes.TrimSuffix(buf.Bytes(), []byte("\n")); !bytes.Equal(got, want) {
				t.Fatalf("%s:\n got %s\nwant %s", pcap, got, want)
			}
			n++
		}
	}
	t.Logf("%d records compared", n)
}

// TestAppendFlowMatchesFlowRecord checks the direct flow encoder against the
// record path on every flow of the bundled captures and the corpus.
func TestAppendFlowMatchesFlowRecord(t *testing.T) {
	files := allCaptures()
	n := 0
	for _, pcap := range files {
		src, err := capture.OpenFile(pcap)
		if err != nil {
			t.Fatal(err)
		}
		c := classify.New(classify.Config{})
		check := func(evs []classify.Event) {
			for _, ev := range evs {
				if ev.Kind != classify.EventFlowEnded {
					continue
				}
				for _, o := range []alert.Options{{}, {Interface: "eth0", CommunityIDSeed: 7}} {
					want, err := alert.NewFlowRecord(ev.Flow, o).AppendJSON(nil)
					if err != nil {
						t.Fatal(err)
					}
					got, err := alert.AppendFlow(nil, ev.Flow, o)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("%s:\n got %s\nwant %s", pcap, got, want)
					}
					n++
				}
			}
		}
		for {
			p, err := src.Next()
			if err != nil {
				break
			}
			_, evs := c.Packet(p.Data, int(p.LinkType), p.Length, p.Time)
			check(evs)
		}
		c.Flush(c.Now(), check)
		src.Close()
	}
	t.Logf("%d flow encodings compared", n)
}

// testOutputs gives the sensor an encoder, as the configured outputs do;
// with one, a pipelined replay encodes and writes on an output goroutine.
type testOutputs struct{ enc *alert.Encoder }

func (o testOutputs) Encoder() *alert.Encoder      { return o.enc }
func (o testOutputs) SinkStats() []alert.SinkStats { return nil }

// TestPipelineGivesSameBytes: reading on a goroutine of its own (replay's
// default), and writing on another when there are outputs, must not change
// a single byte of the output, in either format.
func TestPipelineGivesSameBytes(t *testing.T) {
	files := allCaptures()
	run := func(path string, pipeline bool, outputs Outputs) []byte {
		src, err := capture.OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		var buf bytes.Buffer
		var sink alert.Sink = alert.NewWriterSink("buffer", &buf)
		if outputs != nil {
			// As configured outputs are: the sink encodes with the encoder.
			var err error
			sink, err = alert.Buffered(sink, alert.BufferOptions{Name: "buffer", Encoder: outputs.Encoder(), Block: true})
			if err != nil {
				t.Fatal(err)
			}
		}
		s := New(Config{Sink: sink, Pipeline: pipeline, Policy: presetEngine(t, "monitor"), Outputs: outputs})
		_ = s.Replay(context.Background(), src)
		_ = sink.Close()
		return buf.Bytes()
	}
	for _, pcap := range files {
		serial := run(pcap, false, nil)
		if !bytes.Equal(serial, run(pcap, true, nil)) {
			t.Errorf("%s: pipelined replay differs", pcap)
		}
		for _, f := range []alert.Format{alert.FormatEVE, alert.FormatECS} {
			out := testOutputs{alert.NewEncoder(f, alert.EncoderOptions{})}
			serial := run(pcap, false, out)
			if !bytes.Equal(serial, run(pcap, true, out)) {
				t.Errorf("%s: pipelined replay with an output goroutine differs (%s)", pcap, f)
			}
			if f == alert.FormatEVE && !bytes.Equal(serial, run(pcap, false, nil)) {
				t.Errorf("%s: EVE through the outputs' encoder differs from the sink's", pcap)
			}
		}
	}
}
