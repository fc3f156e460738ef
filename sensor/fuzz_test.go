package sensor

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/rasentry/rasentry/alert"
	"github.com/rasentry/rasentry/capture"
)

// FuzzReplayFile feeds arbitrary bytes as a capture file through the whole
// pipeline (reader, classifier, every detector, the monitor policy,
// records): it must return an error or records, never panic.
func FuzzReplayFile(f *testing.F) {
	for _, name := range []string{"basic", "offer", "easy-connect"} {
		b, err := os.ReadFile(filepath.Join("..", "pcaps", name+".pcap"))
		if err == nil {
			f.Add(b[:min(len(b), 4096)])
		}
	}
	f.Add([]byte{0x0a, 0x0d, 0x0d, 0x0a, 0x1c, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a})
	dir := f.TempDir()
	engine := presetEngine(f, "monitor")
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "in.pcap")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		src, err := capture.OpenFile(path)
		if err != nil {
			return
		}
		defer src.Close()
		s := New(Config{Sink: &alert.MemorySink{}, Policy: engine})
		_ = s.Replay(context.Background(), src)
		if s.Summary().Panics != 0 {
			t.Fatalf("%d packets panicked", s.Summary().Panics)
		}
	})
}
