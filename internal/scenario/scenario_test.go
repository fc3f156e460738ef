package scenario

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/rasentry/rasentry/internal/testutil"
)

// TestCommittedCapturesAreCurrent rebuilds every scenario with seed 1 and
// checks it matches the capture committed in pcaps/, so the captures are
// always what the generator makes (rasentry-pcapgen NAME -o pcaps/NAME.pcap).
func TestCommittedCapturesAreCurrent(t *testing.T) {
	for _, s := range List() {
		t.Run(s.Name, func(t *testing.T) {
			frames, err := Build(s.Name, Options{Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			tmp := filepath.Join(t.TempDir(), s.Name+".pcap")
			if err := testutil.WritePcap(tmp, frames); err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(tmp)
			want, err := os.ReadFile(filepath.Join("..", "..", "pcaps", s.Name+".pcap"))
			if err != nil {
				t.Fatalf("%v: run go run ./cmd/rasentry-pcapgen %s -o pcaps/%s.pcap", err, s.Name, s.Name)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("pcaps/%s.pcap is stale: run go run ./cmd/rasentry-pcapgen %s -o pcaps/%s.pcap", s.Name, s.Name, s.Name)
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	a, _ := Build("basic", Options{Seed: 7})
	b, _ := Build("basic", Options{Seed: 7})
	c, _ := Build("basic", Options{Seed: 8})
	if len(a) != len(b) {
		t.Fatal("same seed, different frame counts")
	}
	for i := range a {
		if !bytes.Equal(a[i].Data, b[i].Data) || !a[i].Time.Equal(b[i].Time) {
			t.Fatalf("frame %d differs for the same seed", i)
		}
	}
	same := true
	for i := range a {
		if !bytes.Equal(a[i].Data, c[i].Data) {
			same = false
		}
	}
	if same {
		t.Error("different seeds gave identical captures")
	}
}
