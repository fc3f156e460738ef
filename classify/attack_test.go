package classify

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/rasentry/rasentry/internal/testutil"
)

// Hostile traffic must not grow the classifier past its bounds: these
// tests drive the attacks issue 10 lists and check tables, counters and
// the heap. Throughput under attack is measured by the benchmarks below,
// not asserted here.

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// synFlood returns a SYN from a random source to a random port of dst.
func synFrame(r *rand.Rand, buf []byte) []byte {
	// Patch a template SYN in place: source address and both ports.
	binary.BigEndian.PutUint32(buf[26:30], r.Uint32()|0x0a000000)
	binary.BigEndian.PutUint16(buf[34:36], uint16(r.Uint32()))
	binary.BigEndian.PutUint16(buf[36:38], uint16(r.Uint32()))
	return buf
}

func TestSYNFloodStaysBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const maxFlows = 50_000
	const packets = 1_000_000
	c := New(Config{MaxFlows: maxFlows})
	tmpl := testutil.TCPPacket(netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.9.9.9:80"), 0, TCPSyn, 1, 0, nil)
	r := rand.New(rand.NewPCG(1, 2))
	before := heapInUse()
	for i := 0; i < packets; i++ {
		fr := synFrame(r, tmpl)
		c.Packet(fr, 1, len(fr), t0.Add(time.Duration(i)*time.Microsecond))
		if i%100_000 == 0 && c.Stats().FlowsActive > maxFlows {
			t.Fatalf("table at %d flows, bound %d", c.Stats().FlowsActive, maxFlows)
		}
	}
	st := c.Stats()
	grown := int64(heapInUse()) - int64(before)
	runtime.KeepAlive(c) // measured with the table alive
	t.Logf("SYN flood: %d packets, %d flows created, %d evicted, %d active; heap grew %d MiB (%.0f B/flow)",
		packets, st.FlowsCreated, st.FlowsEvicted, st.FlowsActive, grown>>20, float64(grown)/maxFlows)
	sessions, pending := c.Shared().Sessions.Len()
	t.Logf("session tables under the flood: %d sessions, %d precursors, %d expectations, %d names",
		sessions, pending, c.Expectations().Len(), c.Shared().Names.Len())
	if sessions+pending != 0 || c.Expectations().Len() != 0 {
		t.Errorf("unrelated flows entered the session tables")
	}
	if st.FlowsEvicted < packets-maxFlows-1000 {
		t.Errorf("evictions %d: the bound did not act", st.FlowsEvicted)
	}
	// 50k flows must fit well within 64 MiB (flow, map entry, idle links).
	if grown > 64<<20 {
		t.Errorf("heap grew %d MiB for %d flows", grown>>20, maxFlows)
	}
}

func TestFragmentsThatNeverCompleteStayBounded(t *testing.T) {
	c := New(Config{MaxFragments: 256, FragTimeout: 2 * time.Second})
	big := testutil.UDPPacket(netip.MustParseAddrPort("10.0.0.1:5000"), netip.MustParseAddrPort("10.0.0.2:5000"), 0, make([]byte, 3000))
	before := heapInUse()
	for i := 0; i < 100_000; i++ {
		frs := fragments4(big, 1000, uint16(i))
		fr := frs[i%2] // never the full set
		c.Packet(fr, 1, len(fr), t0.Add(time.Duration(i)*time.Millisecond))
	}
	st := c.Stats()
	grown := int64(heapInUse()) - int64(before)
	runtime.KeepAlive(c)
	t.Logf("fragments: %d pending, %d dropped, heap grew %d MiB", st.FragPending, st.FragDropped, grown>>20)
	if st.FragPending > 256 || st.FragDropped == 0 || st.FlowsCreated != 0 {
		t.Errorf("stats %+v", st)
	}
	if grown > 32<<20 { // 256 datagrams of 64 KiB at most
		t.Errorf("heap grew %d MiB", grown>>20)
	}
}

func TestHugeDCERPCLengthsStayBounded(t *testing.T) {
	c := New(Config{})
	conv := testutil.TCPConversation{Endpoints: testutil.Endpoints{Client: netip.MustParseAddrPort("10.0.0.1:50000"), Server: netip.MustParseAddrPort("10.0.0.2:135")}}
	// A bind header claiming 65535 bytes, then endless filler.
	hdr := []byte{5, 0, 0x0b, 3, 0x10, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0}
	turns := [][]byte{hdr}
	for i := 0; i < 400; i++ {
		turns = append(turns, nil, make([]byte, 1400))
	}
	before := heapInUse()
	for _, fr := range conv.Frames(t0, turns...) {
		c.Packet(fr.Data, 1, len(fr.Data), fr.Time)
	}
	grown := int64(heapInUse()) - int64(before)
	runtime.KeepAlive(c)
	if grown > 4<<20 {
		t.Errorf("heap grew %d KiB for one hostile DCE/RPC flow", grown>>10)
	}
}

func TestDeepTunnelNestingIsCut(t *testing.T) {
	// IPv4-in-IPv4 ten levels deep.
	inner := ipOnly(testutil.UDPPacket(netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.0.0.2:2"), 0, []byte("x")))
	for i := 0; i < 10; i++ {
		h := make([]byte, 20)
		h[0], h[8], h[9] = 0x45, 64, 4
		binary.BigEndian.PutUint16(h[2:], uint16(20+len(inner)))
		copy(h[12:], []byte{10, 1, 0, byte(i)})
		copy(h[16:], []byte{10, 2, 0, byte(i)})
		inner = append(h, inner...)
	}
	c := New(Config{MaxTunnelDepth: 3})
	c.Packet(inner, 101, len(inner), t0)
	st := c.Stats()
	if st.TunnelTooDeep != 1 || st.TunnelPackets != 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestEndlessSSDPStaysBounded(t *testing.T) {
	c := New(Config{MaxFlows: 1000})
	group := netip.MustParseAddrPort("239.255.255.250:1900")
	msg := []byte("NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nNT: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nNTS: ssdp:alive\r\nUSN: uuid:x\r\nLOCATION: http://10.0.0.1:5000/d.xml\r\n\r\n")
	before := heapInUse()
	for i := 0; i < 200_000; i++ {
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 1900)
		fr := testutil.UDPPacket(src, group, 0, msg)
		c.Packet(fr, 1, len(fr), t0.Add(time.Duration(i)*time.Millisecond))
	}
	if c.Stats().FlowsActive > 1000 || c.Expectations().Len() > DefaultExpectations {
		t.Errorf("flows %d expectations %d", c.Stats().FlowsActive, c.Expectations().Len())
	}
	grown := int64(heapInUse()) - int64(before)
	runtime.KeepAlive(c)
	if grown > 32<<20 {
		t.Errorf("heap grew %d MiB", grown>>20)
	}
}

// BenchmarkSYNFlood measures the cost of a packet that creates a new flow
// and evicts an old one, against BenchmarkClassifierHotPath (a packet of a
// known flow).
func BenchmarkSYNFlood(b *testing.B) {
	c := New(Config{MaxFlows: 50_000})
	tmpl := testutil.TCPPacket(netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.9.9.9:80"), 0, TCPSyn, 1, 0, nil)
	r := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		fr := synFrame(r, tmpl)
		c.Packet(fr, 1, len(fr), t0.Add(time.Duration(i)*time.Microsecond))
	}
}

// FuzzClassifierPacket feeds arbitrary frames of any link type through the
// whole classifier with every detector: nothing may panic.
func FuzzClassifierPacket(f *testing.F) {
	f.Add(testutil.TCPPacket(netip.MustParseAddrPort("10.0.0.1:50000"), netip.MustParseAddrPort("10.0.0.2:3389"), 0, TCPPsh|TCPAck, 1, 1,
		[]byte{3, 0, 0, 19, 14, 0xe0, 0, 0, 0, 0, 0, 1, 0, 8, 0, 0, 0, 0, 0}), uint16(1))
	f.Add(testutil.UDPPacket(netip.MustParseAddrPort("10.0.0.1:3544"), netip.MustParseAddrPort("10.0.0.2:3544"), 0,
		append([]byte{0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x60, 0, 0, 0, 0, 0, 59, 64}, make([]byte, 32)...)), uint16(1))
	f.Add([]byte{0x45, 0, 0, 20, 0, 0, 0x20, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2}, uint16(101))
	f.Add([]byte{0x60, 0, 0, 0, 0, 8, 44, 64}, uint16(229))
	f.Fuzz(func(t *testing.T, frame []byte, link uint16) {
		c := New(Config{MaxFlows: 64, MaxFragments: 8})
		for i := 0; i < 3; i++ { // the same frame thrice: new flow, then known flow
			c.Packet(frame, int(link%300), len(frame), t0.Add(time.Duration(i)*time.Second))
		}
		c.Flush(t0.Add(time.Hour), func([]Event) {})
	})
}

// TestMemoryPerFlow tracks a million live flows and checks the heap they
// take stays at most 256 bytes each (issue 9's bound), measured with every
// flow alive.
func TestMemoryPerFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	const n = 1_000_000
	c := New(Config{MaxFlows: n + 1})
	tmpl := testutil.UDPPacket(netip.MustParseAddrPort("10.0.0.1:1"), netip.MustParseAddrPort("10.9.9.9:53"), 0, []byte("q"))
	before := heapInUse()
	for i := 0; i < n; i++ {
		binary.BigEndian.PutUint32(tmpl[26:30], uint32(0x0a000000|i))
		c.Packet(tmpl, 1, len(tmpl), t0.Add(time.Duration(i)*time.Microsecond))
	}
	grown := int64(heapInUse()) - int64(before)
	if c.Stats().FlowsActive != n {
		t.Fatalf("%d flows live, want %d", c.Stats().FlowsActive, n)
	}
	runtime.KeepAlive(c)
	per := float64(grown) / n
	t.Logf("%d live flows: heap grew %d MiB, %.0f bytes per flow", n, grown>>20, per)
	if per > 256 {
		t.Errorf("%.0f bytes per flow, want at most 256", per)
	}
}
