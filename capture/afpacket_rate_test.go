package capture

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/rasentry/rasentry/internal/netlab"
	"github.com/rasentry/rasentry/internal/testutil"
)

// writeLoadCapture writes a capture of n frames (TCP and UDP, 60 to about
// 1000 bytes, 250 bytes on average) for tcpreplay.
func writeLoadCapture(t *testing.T, path string, n int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65536, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	sizes := []int{0, 0, 0, 40, 100, 200, 500, 1000}
	for i := 0; i < n; i++ {
		c := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 98, byte(i >> 8), byte(i)}), uint16(40000+i%1000))
		s := netip.MustParseAddrPort("10.98.255.1:3389")
		payload := make([]byte, sizes[i%len(sizes)])
		var data []byte
		if i%4 == 3 {
			data = testutil.UDPPacket(c, netip.MustParseAddrPort("10.98.255.2:3544"), 0, payload)
		} else {
			data = testutil.TCPPacket(c, s, 0, 0x18, uint32(i), 1, payload)
		}
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1700000000, int64(i)*1000), CaptureLength: len(data), Length: len(data)}
		if err := w.WritePacket(ci, data); err != nil {
			t.Fatal(err)
		}
	}
}

var ratedRE = regexp.MustCompile(`Actual: (\d+) packets`)

// TestLiveNoDropsUnderLoad replays a capture with tcpreplay at fixed rates
// into a veth and reads the other end with an AF_PACKET source: every packet
// must arrive and the kernel must report no drops. Rates come from
// RASENTRY_LOAD_PPS (comma-separated, default 50000), each for
// RASENTRY_LOAD_SECONDS (default 2).
func TestLiveNoDropsUnderLoad(t *testing.T) {
	l := netlab.NewEmpty(t)
	netlab.RequireTools(t, "tcpreplay")
	a, b := l.AddNS("load-a"), l.AddNS("load-b")
	l.Link(a, "rp0", b, "rp1")
	file := l.Dir() + "/load.pcap"
	const filePackets = 1000
	writeLoadCapture(t, file, filePackets)
	rates := []int{50000}
	if v := os.Getenv("RASENTRY_LOAD_PPS"); v != "" {
		rates = nil
		for _, f := range strings.Split(v, ",") {
			r, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || r <= 0 {
				t.Fatalf("RASENTRY_LOAD_PPS: %q", f)
			}
			rates = append(rates, r)
		}
	}
	seconds := 2
	if v := os.Getenv("RASENTRY_LOAD_SECONDS"); v != "" {
		seconds, _ = strconv.Atoi(v)
		if seconds <= 0 || seconds > 30 {
			t.Fatalf("RASENTRY_LOAD_SECONDS %q: want 1 to 30", v)
		}
	}
	for _, rate := range rates {
		t.Run(fmt.Sprintf("%dpps", rate), func(t *testing.T) {
			src := openIn(t, b, LiveOptions{Interface: "rp1"})
			var got, bytes atomic.Uint64
			done := make(chan struct{})
			stop := make(chan struct{})
			go func() {
				defer close(done)
				for {
					p, err := src.Next()
					if errors.Is(err, ErrTimeout) {
						select {
						case <-stop:
							return
						default:
							continue
						}
					}
					if err != nil {
						return
					}
					// Count only the replayed frames (to 10.98.255.x), not
					// what the kernel sends on a new link by itself.
					if d := p.Data; len(d) >= 34 && d[30] == 10 && d[31] == 98 && d[32] == 255 {
						got.Add(1)
						bytes.Add(uint64(len(d)))
					}
				}
			}()
			loops := rate * seconds / filePackets
			if loops < 1 {
				loops = 1
			}
			out, err := a.Run(time.Duration(seconds)*time.Second+20*time.Second,
				"tcpreplay", "-q", "-K", "-i", "rp0", "--pps="+strconv.Itoa(rate), "--loop="+strconv.Itoa(loops), file)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			m := ratedRE.FindStringSubmatch(out)
			if m == nil {
				t.Fatalf("no packet count in tcpreplay's output:\n%s", out)
			}
			sent, _ := strconv.ParseUint(m[1], 10, 64)
			deadline := time.Now().Add(3 * time.Second)
			for got.Load() < sent && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			close(stop)
			<-done
			st := src.Stats()
			rated := ""
			if i := strings.Index(out, "Rated:"); i >= 0 {
				rated = strings.TrimSpace(strings.SplitN(out[i:], "\n", 2)[0])
			}
			t.Logf("rate %d pps: sent %d, read %d (%d bytes), kernel drops %d, freezes %d; tcpreplay %s",
				rate, sent, got.Load(), bytes.Load(), st.KernelDrops, st.KernelFreezes, rated)
			if st.KernelDrops != 0 || got.Load() != sent {
				t.Errorf("at %d pps: sent %d, read %d, kernel drops %d", rate, sent, got.Load(), st.KernelDrops)
			}
		})
	}
}
