package classify

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/rasentry/rasentry/internal/testutil"
)

var (
	t0   = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	cli  = netip.MustParseAddrPort("10.0.0.1:50000")
	srv  = netip.MustParseAddrPort("10.0.0.2:443")
	cli6 = netip.MustParseAddrPort("[fd00:1::1]:50000")
	srv6 = netip.MustParseAddrPort("[fd00:2::2]:443")
)

const linkEthernet = 1

// ipOnly strips the 14-byte Ethernet header of an untagged frame.
func ipOnly(frame []byte) []byte { return frame[14:] }

// collect runs frames through a classifier and returns the flows that ended
// (after a final flush), as copies.
func collect(t *testing.T, c *Classifier, link int, frames ...[]byte) []Flow {
	t.Helper()
	var out []Flow
	keep := func(evs []Event) {
		for _, e := range evs {
			if e.Kind == EventFlowEnded {
				out = append(out, *e.Flow)
			}
		}
	}
	for i, fr := range frames {
		_, evs := c.Packet(fr, link, len(fr), t0.Add(time.Duration(i)*time.Millisecond))
		keep(evs)
	}
	c.Flush(c.Now(), keep)
	return out
}

func TestLinkTypes(t *testing.T) {
	eth := testutil.TCPPacket(cli, srv, 0, TCPSyn, 1, 0, nil)
	ip := ipOnly(eth)
	sll := append([]byte{0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x00}, ip...)
	sll2 := append([]byte{0x08, 0x00, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0}, ip...)
	null := append([]byte{2, 0, 0, 0}, ip...) // AF_INET, little-endian host
	nullBE := append([]byte{0, 0, 0, 2}, ip...)
	vlan := testutil.TCPPacket(cli, srv, 42, TCPSyn, 1, 0, nil)
	qinq := append(append([]byte{}, vlan[:12]...), 0x88, 0xa8, 0x00, 0x07)
	qinq = append(qinq, vlan[12:]...)
	v6 := testutil.TCPPacket(cli6, srv6, 0, TCPSyn, 1, 0, nil)
	tests := []struct {
		name string
		link int
		data []byte
		want netip.AddrPort
		vlan uint16
	}{
		{"ethernet", linkEthernet, eth, srv, 0},
		{"802.1Q", linkEthernet, vlan, srv, 42},
		{"QinQ", linkEthernet, qinq, srv, 7},
		{"linux SLL", 113, sll, srv, 0},
		{"linux SLL2", 276, sll2, srv, 0},
		{"raw (101)", 101, ip, srv, 0},
		{"raw (12)", 12, ip, srv, 0},
		{"ipv4 (228)", 228, ip, srv, 0},
		{"ipv6 (229)", 229, ipOnly(v6), srv6, 0},
		{"null LE", 0, null, srv, 0},
		{"null BE", 0, nullBE, srv, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(Config{Detectors: []Detector{}})
			f, _ := c.Packet(tt.data, tt.link, len(tt.data), t0)
			if f == nil {
				t.Fatalf("no flow; stats %+v", c.Stats())
			}
			if f.Server != tt.want || f.VLAN != tt.vlan {
				t.Errorf("server %v vlan %d, want %v vlan %d", f.Server, f.VLAN, tt.want, tt.vlan)
			}
		})
	}
}

func TestUnsupportedAndBrokenPackets(t *testing.T) {
	c := New(Config{Detectors: []Detector{}})
	eth := testutil.TCPPacket(cli, srv, 0, TCPSyn, 1, 0, nil)
	c.Packet(eth, 147, len(eth), t0) // USER0
	c.Packet(eth[:20], 1, 20, t0)    // cut inside the IP header
	c.Packet(eth[:40], 1, 40, t0)    // cut inside the TCP header
	arp := append(append([]byte{}, eth[:12]...), 0x08, 0x06, 0, 1)
	c.Packet(arp, 1, len(arp), t0)
	bad := append([]byte{}, eth...)
	bad[14] = 0x45 ^ 0x30 // version 7
	c.Packet(bad, 1, len(bad), t0)
	s := c.Stats()
	if s.UnsupportedLink != 1 || s.Truncated != 1 || s.NotIP != 1 || s.MalformedIP != 2 || s.FlowsCreated != 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestOrientation(t *testing.T) {
	tests := []struct {
		name  string
		first []byte
		want  netip.AddrPort // the client
	}{
		{"SYN from client", testutil.TCPPacket(cli, srv, 0, TCPSyn, 1, 0, nil), cli},
		{"SYN+ACK seen first", testutil.TCPPacket(srv, cli, 0, TCPSyn|TCPAck, 1, 2, nil), cli},
		{"mid-stream: first sender", testutil.TCPPacket(srv, cli, 0, TCPAck, 1, 2, []byte("x")), srv},
		{"UDP: first sender", testutil.UDPPacket(cli, srv, 0, []byte("q")), cli},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := New(Config{Detectors: []Detector{}})
			f, _ := c.Packet(tt.first, 1, len(tt.first), t0)
			if f.Client != tt.want {
				t.Errorf("client %v, want %v", f.Client, tt.want)
			}
		})
	}
}

func TestCountersAndClose(t *testing.T) {
	conv := testutil.TCPConversation{Endpoints: testutil.Endpoints{Client: cli, Server: srv}}
	var frames [][]byte
	for _, fr := range conv.Frames(t0, []byte("hello"), []byte("world!")) {
		frames = append(frames, fr.Data)
	}
	c := New(Config{Detectors: []Detector{}})
	flows := collect(t, c, 1, frames...)
	if len(flows) != 1 {
		t.Fatalf("%d flows, want 1", len(flows))
	}
	f := flows[0]
	// SYN, ACK, data, ACK of reply, FIN, last ACK from the client; SYN+ACK,
	// ACK of data, data, FIN from the server.
	if f.Pkts[ToServer] != 6 || f.Pkts[ToClient] != 4 {
		t.Errorf("pkts %v, want [6 4]", f.Pkts)
	}
	var bytesTS uint64
	for i, fr := range frames {
		_ = i
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte(fr[26:30])), binary.BigEndian.Uint16(fr[34:36]))
		if src == cli {
			bytesTS += uint64(len(fr))
		}
	}
	if f.Bytes[ToServer] != bytesTS {
		t.Errorf("bytes toserver %d, want %d", f.Bytes[ToServer], bytesTS)
	}
	if f.State != StateClosed || f.Reason != EndClosed {
		t.Errorf("state %v reason %v, want closed/closed", f.State, f.Reason)
	}
}

func TestIdleTimeoutAndLinger(t *testing.T) {
	c := New(Config{Detectors: []Detector{}, Timeouts: Timeouts{UDP: 10 * time.Second, TCPClosed: time.Second}})
	udp := testutil.UDPPacket(cli, srv, 0, []byte("a"))
	c.Packet(udp, 1, len(udp), t0)
	rst := testutil.TCPPacket(cli6, srv6, 0, TCPRst, 1, 0, nil)
	c.Packet(rst, 1, len(rst), t0)
	// 5 s later: the reset TCP flow lingered past 1 s, the UDP flow is alive.
	other := testutil.UDPPacket(netip.MustParseAddrPort("10.9.9.9:1"), srv, 0, []byte("b"))
	_, evs := c.Packet(other, 1, len(other), t0.Add(5*time.Second))
	if len(evs) != 1 || evs[0].Kind != EventFlowEnded || evs[0].Flow.Reason != EndClosed {
		t.Fatalf("at +5s: events %+v, want the reset flow closed", evs)
	}
	evs = c.Advance(t0.Add(11 * time.Second))
	if len(evs) != 1 || evs[0].Flow.Client != cli || evs[0].Flow.Reason != EndTimeout {
		t.Fatalf("at +11s: events %+v, want the first UDP flow timed out", evs)
	}
	if s := c.Stats(); s.FlowsActive != 1 || s.FlowsTimedOut != 1 || s.FlowsClosed != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestEvictionKeepsBound(t *testing.T) {
	c := New(Config{Detectors: []Detector{}, MaxFlows: 100})
	ended := 0
	for i := 0; i < 1000; i++ {
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), uint16(1024+i))
		p := testutil.UDPPacket(src, srv, 0, []byte("x"))
		_, evs := c.Packet(p, 1, len(p), t0.Add(time.Duration(i)*time.Microsecond))
		for _, e := range evs {
			if e.Kind == EventFlowEnded && e.Flow.Reason == EndEvicted {
				ended++
			}
		}
		if c.Stats().FlowsActive > 100 {
			t.Fatalf("table grew to %d", c.Stats().FlowsActive)
		}
	}
	if ended != 900 || c.Stats().FlowsEvicted != 900 {
		t.Errorf("evicted %d (stats %d), want 900", ended, c.Stats().FlowsEvicted)
	}
}

func TestIPv6ExtensionHeaders(t *testing.T) {
	udp := testutil.UDPPacket(cli6, srv6, 0, []byte("payload"))
	ip := ipOnly(udp)
	// Insert a hop-by-hop (8 bytes, PadN) and a destination-options header.
	ext := []byte{60, 0, 1, 4, 0, 0, 0, 0, 17, 0, 1, 4, 0, 0, 0, 0}
	pkt := append(append(append([]byte{}, ip[:40]...), ext...), ip[40:]...)
	pkt[6] = 0 // hop-by-hop first
	binary.BigEndian.PutUint16(pkt[4:6], uint16(len(pkt)-40))
	c := New(Config{Detectors: []Detector{}})
	f, _ := c.Packet(pkt, 229, len(pkt), t0)
	if f == nil || f.Proto != ProtoUDP || f.Server != srv6 {
		t.Fatalf("flow %+v, stats %+v", f, c.Stats())
	}
}

// fragments4 cuts an Ethernet IPv4 frame's payload into fragments of size n.
func fragments4(frame []byte, n int, id uint16) [][]byte {
	ip := ipOnly(frame)
	hl := int(ip[0]&0x0f) * 4
	data := ip[hl:]
	var out [][]byte
	for off := 0; off < len(data); off += n {
		end := min(off+n, len(data))
		h := append([]byte{}, ip[:hl]...)
		binary.BigEndian.PutUint16(h[2:4], uint16(hl+end-off))
		binary.BigEndian.PutUint16(h[4:6], id)
		fo := uint16(off / 8)
		if end < len(data) {
			fo |= 0x2000
		}
		binary.BigEndian.PutUint16(h[6:8], fo)
		out = append(out, append(append(append([]byte{}, frame[:14]...), h...), data[off:end]...))
	}
	return out
}

func TestIPv4Fragments(t *testing.T) {
	big := make([]byte, 2000)
	frame := testutil.UDPPacket(cli, srv, 0, big)
	frags := fragments4(frame, 800, 7)
	t.Run("in order", func(t *testing.T) {
		c := New(Config{Detectors: []Detector{}})
		flows := collect(t, c, 1, frags...)
		if len(flows) != 1 || flows[0].Server != srv || flows[0].Pkts[ToServer] != 3 {
			t.Fatalf("flows %+v", flows)
		}
	})
	t.Run("last first", func(t *testing.T) {
		c := New(Config{Detectors: []Detector{}})
		flows := collect(t, c, 1, frags[2], frags[1], frags[0])
		if len(flows) != 1 || flows[0].Server != srv {
			t.Fatalf("flows %+v", flows)
		}
	})
	t.Run("never complete", func(t *testing.T) {
		c := New(Config{Detectors: []Detector{}, MaxFragments: 4, FragTimeout: time.Second})
		for i := 0; i < 50; i++ {
			fr := fragments4(frame, 800, uint16(i))
			c.Packet(fr[0], 1, len(fr[0]), t0.Add(time.Duration(i)*100*time.Millisecond))
		}
		s := c.Stats()
		if s.FlowsCreated != 0 || s.FragPending > 4 || s.FragDropped == 0 {
			t.Errorf("stats %+v", s)
		}
	})
}

func TestProtoNames(t *testing.T) {
	for p, want := range map[uint8]string{6: "TCP", 17: "UDP", 1: "ICMP", 58: "IPv6-ICMP", 132: "SCTP", 47: "GRE", 46: "46", 0: "0", 255: "255"} {
		if got := ProtoName(p); got != want {
			t.Errorf("ProtoName(%d) = %q, want %q", p, got, want)
		}
	}
}

// The steady-state path (decode plus lookup of a live flow) allocates nothing.
func TestHotPathAllocatesNothing(t *testing.T) {
	frames := map[string][]byte{
		"tcp":  testutil.TCPPacket(cli, srv, 0, TCPAck|TCPPsh, 100, 1, []byte("some payload bytes")),
		"udp":  testutil.UDPPacket(cli, srv, 0, []byte("datagram")),
		"v6":   testutil.TCPPacket(cli6, srv6, 0, TCPAck, 100, 1, nil),
		"vlan": testutil.TCPPacket(cli, srv, 9, TCPAck, 100, 1, nil),
		"icmp": testutil.ICMPEcho(cli.Addr(), srv.Addr(), false, 1, 1),
	}
	for name, fr := range frames {
		t.Run(name, func(t *testing.T) {
			c := New(Config{})
			c.Packet(fr, 1, len(fr), t0) // create the flow
			n := 0
			allocs := testing.AllocsPerRun(1000, func() {
				n++
				c.Packet(fr, 1, len(fr), t0.Add(time.Duration(n)*time.Microsecond))
			})
			if allocs != 0 {
				t.Errorf("%v allocations per packet, want 0", allocs)
			}
		})
	}
}

func BenchmarkClassifierHotPath(b *testing.B) {
	fr := testutil.TCPPacket(cli, srv, 0, TCPAck|TCPPsh, 100, 1, make([]byte, 200))
	c := New(Config{})
	c.Packet(fr, 1, len(fr), t0)
	b.ReportAllocs()
	b.SetBytes(int64(len(fr)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Packet(fr, 1, len(fr), t0.Add(time.Duration(i)))
	}
}

func BenchmarkClassifierNewFlows(b *testing.B) {
	frames := make([][]byte, 4096)
	for i := range frames {
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 2, byte(i >> 8), byte(i)}), uint16(2000+i))
		frames[i] = testutil.UDPPacket(src, srv, 0, []byte("x"))
	}
	c := New(Config{MaxFlows: 1024})
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		fr := frames[i%len(frames)]
		c.Packet(fr, 1, len(fr), t0.Add(time.Duration(i)))
	}
}

var _ = layers.LinkTypeEthernet
