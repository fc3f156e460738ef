package sensor

import (
	"context"
	"io"
	"os"
	"testing"

	"github.com/rasentry/rasentry/alert"
	"github.com/rasentry/rasentry/capture"
)

// BenchmarkReplay measures whole-file replay (classification and flow
// records encoded to a discarding sink). RASENTRY_BENCH_PCAP selects the
// capture (bench/make-capture.sh builds the 3 M-packet one); by default the
// bundled pcaps/basic.pcap.
func BenchmarkReplay(b *testing.B) {
	path := os.Getenv("RASENTRY_BENCH_PCAP")
	if path == "" {
		path = "../pcaps/basic.pcap"
	}
	var packets uint64
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		src, err := capture.OpenFile(path)
		if err != nil {
			b.Fatal(err)
		}
		s := New(Config{Sink: alert.NewWriterSink("discard", io.Discard)})
		if err := s.Replay(context.Background(), src); err != nil {
			b.Fatal(err)
		}
		src.Close()
		packets = s.Summary().Packets
	}
	b.ReportMetric(float64(packets)*float64(b.N)/b.Elapsed().Seconds(), "packets/s")
}
