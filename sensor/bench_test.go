package sensor

import (
	"context"
	"io"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/rasentry/rasentry/alert"
	"github.com/rasentry/rasentry/capture"
	"github.com/rasentry/rasentry/classify"
	"github.com/rasentry/rasentry/internal/testutil"
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

// TestReplayBatchAllocatesNothing: a batch of packets of known flows goes
// through the worker's batch loop (shard filter, panic fence, classifier)
// without an allocation, with one worker and with two.
func TestReplayBatchAllocatesNothing(t *testing.T) {
	for _, workers := range []int{1, 2} {
		s := New(Config{Workers: workers, Sink: alert.NewWriterSink("discard", io.Discard)})
		b := &batch{Batch: *capture.NewBatch(1 << 20)}
		start := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
		for i := 0; i < 512; i++ {
			src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i % 8), 1}), 40000)
			dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, 1}), 9999)
			data := testutil.UDPPacket(src, dst, 0, []byte("steady state"))
			b.Packets = append(b.Packets, capture.BatchPacket{Off: len(b.Data), Len: len(data), Length: len(data),
				Time: start.Add(time.Duration(i) * time.Millisecond), LinkType: capture.LinkTypeEthernet})
			b.Data = append(b.Data, data...)
			b.shards = append(b.shards, uint8(classify.ShardKey(data, int(capture.LinkTypeEthernet))%uint32(workers)))
		}
		for me, w := range s.workers {
			w.batchFrom(b, uint8(me), 0) // the flows now exist
			if n := testing.AllocsPerRun(20, func() { w.batchFrom(b, uint8(me), 0) }); n != 0 {
				t.Errorf("%d workers, worker %d: %.1f allocations per batch of %d packets", workers, me, n, len(b.Packets))
			}
		}
		// Each packet went to exactly one worker, 22 times (once, then
		// AllocsPerRun's warm-up and 20 runs).
		if got := s.Summary().Classifier.Packets; got != 22*uint64(len(b.Packets)) {
			t.Errorf("%d workers: classified %d packets, want %d", workers, got, 22*len(b.Packets))
		}
	}
}
