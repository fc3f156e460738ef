package sensor

import (
	"context"
	"encoding/json"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/rasentry/rasentry/alert"
	"github.com/rasentry/rasentry/capture"
	"github.com/rasentry/rasentry/classify"
	"github.com/rasentry/rasentry/internal/corpus"
)

// flowRecord is what the corpus tests read of a flow record.
type flowRecord struct {
	SrcIP    string  `json:"src_ip"`
	SrcPort  *uint16 `json:"src_port"`
	DestIP   string  `json:"dest_ip"`
	DestPort *uint16 `json:"dest_port"`
	Proto    string  `json:"proto"`
	Rasentry struct {
		Labels []string `json:"labels"`
	} `json:"rasentry"`
}

// flowRecords decodes the flow records among recs (written by the sensor as
// encoded JSON).
func flowRecords(t testing.TB, recs []alert.Record) []*flowRecord {
	t.Helper()
	var out []*flowRecord
	for _, r := range recs {
		if r.EventType() != "flow" {
			continue
		}
		raw, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		fr := &flowRecord{}
		if err := json.Unmarshal(raw, fr); err != nil {
			t.Fatal(err)
		}
		out = append(out, fr)
	}
	return out
}

// replayFile runs one capture through a fresh sensor and returns its records.
func replayFile(t testing.TB, path string) ([]alert.Record, error) {
	t.Helper()
	src, err := capture.OpenFile(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	sink := &alert.MemorySink{}
	s := New(Config{Sink: sink})
	err = s.Replay(context.Background(), src)
	return sink.Records, err
}

// Conversations that tshark lists but that are, by design, not flows of
// their own, keyed "FILE PAIR" with the reason. Each must still be missing,
// so the list cannot go stale silently. (Empty since Teredo decapsulation
// landed.)
var knownMissing = map[string]string{}

// TestCorpusConversations replays every capture of the shared corpus and
// checks that every TCP and UDP conversation tshark lists is a flow record
// with the same endpoint pair.
func TestCorpusConversations(t *testing.T) {
	root := corpus.Root()
	if root == "" {
		t.Skip("../shared/pcaps/real is absent (a plain clone): corpus test skipped")
	}
	entries, err := corpus.Manifest(root)
	if err != nil {
		t.Fatal(err)
	}
	var files, clean, convs, matched int
	for _, e := range entries {
		t.Run(e.Path, func(t *testing.T) {
			files++
			recs, err := replayFile(t, filepath.Join(root, e.Path))
			if err != nil {
				t.Errorf("replay: %v", err)
			} else {
				clean++
			}
			have := map[string]bool{}
			for _, fr := range flowRecords(t, recs) {
				if fr.SrcPort == nil {
					continue
				}
				a := netip.AddrPortFrom(netip.MustParseAddr(fr.SrcIP), *fr.SrcPort)
				b := netip.AddrPortFrom(netip.MustParseAddr(fr.DestIP), *fr.DestPort)
				have[corpus.PairKey(fr.Proto, a, b)] = true
			}
			cs, err := corpus.Conversations(root, e)
			if err != nil {
				t.Fatalf("oracle: %v", err)
			}
			for _, c := range cs {
				convs++
				k := corpus.PairKey(c.Proto, c.A, c.B)
				known := e.Path + " " + k
				_, isKnown := knownMissing[known]
				switch {
				case have[k] && isKnown:
					t.Errorf("%s is now found: remove it from knownMissing", k)
				case have[k]:
					matched++
				case isKnown:
				default:
					t.Errorf("conversation %s (tshark) has no flow record", k)
				}
			}
		})
	}
	t.Logf("corpus: %d/%d files replayed cleanly; %d/%d tshark conversations matched (%d known exceptions)",
		clean, files, matched, convs, len(knownMissing))
}

var _ = classify.LabelRDP
