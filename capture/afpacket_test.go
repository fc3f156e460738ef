package capture

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/rasentry/rasentry/internal/netlab"
)

// openIn opens a live source from inside a lab namespace.
func openIn(t *testing.T, ns *netlab.NS, o LiveOptions) Source {
	t.Helper()
	var src Source
	if err := ns.Do(func() error {
		var err error
		src, err = OpenLive(o)
		return err
	}); err != nil {
		t.Fatalf("OpenLive(%+v): %v", o, err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// seen is what a test learnt from one captured frame.
type seen struct {
	icmp4, icmp6, syn bool
	flow              string // normalised TCP 4-tuple, "" for others
	dport             uint16
}

func inspect(p Packet) seen {
	var s seen
	pkt := gopacket.NewPacket(p.Data, layers.LayerTypeEthernet, gopacket.NoCopy)
	if l, ok := pkt.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); ok && l.TypeCode.Type() == layers.ICMPv4TypeEchoRequest {
		s.icmp4 = true
	}
	if l, ok := pkt.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6); ok && l.TypeCode.Type() == layers.ICMPv6TypeEchoRequest {
		s.icmp6 = true
	}
	if tcp, ok := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP); ok {
		src, dst := pkt.NetworkLayer().NetworkFlow().Endpoints()
		a := fmt.Sprintf("%v:%d", src, tcp.SrcPort)
		b := fmt.Sprintf("%v:%d", dst, tcp.DstPort)
		if a > b {
			a, b = b, a
		}
		s.flow = a + "-" + b
		s.syn = tcp.SYN && !tcp.ACK
		s.dport = uint16(tcp.DstPort)
	}
	return s
}

// collect reads from src until stop is closed, then 300 ms more.
func collect(t *testing.T, src Source, stop <-chan struct{}, fn func(Packet)) {
	t.Helper()
	var until time.Time
	for {
		if until.IsZero() {
			select {
			case <-stop:
				until = time.Now().Add(300 * time.Millisecond)
			default:
			}
		} else if time.Now().After(until) {
			return
		}
		p, err := src.Next()
		if errors.Is(err, ErrTimeout) {
			if p.Time.IsZero() {
				t.Error("ErrTimeout without a time")
			}
			continue
		}
		if err != nil {
			t.Errorf("Next: %v", err)
			return
		}
		fn(p)
	}
}

func promiscuity(t *testing.T, ns *netlab.NS, ifname string) string {
	out := ns.MustRun(t, "ip", "-d", "link", "show", ifname)
	i := strings.Index(out, "promiscuity ")
	if i < 0 {
		t.Fatalf("no promiscuity in %q", out)
	}
	return strings.Fields(out[i:])[1]
}

func TestLiveSeesPingAndTCP(t *testing.T) {
	l := netlab.New(t)
	if got := promiscuity(t, l.Gateway, netlab.GatewayClientIf); got != "0" {
		t.Fatalf("promiscuity before open: %s", got)
	}
	src := openIn(t, l.Gateway, LiveOptions{Interface: netlab.GatewayClientIf, Promisc: true})
	if got := promiscuity(t, l.Gateway, netlab.GatewayClientIf); got != "1" {
		t.Errorf("promiscuity while open: %s, want 1", got)
	}
	ln, err := l.Server.Listen("tcp", ":8081")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	start := time.Now()
	stop := make(chan struct{})
	go func() {
		defer close(stop)
		l.Client.Ping(netlab.ServerV4, 1)
		l.Client.Ping(netlab.ServerV6, 1)
		if !l.Client.CanConnect(netip.AddrPortFrom(netlab.ServerV4, 8081).String(), 2*time.Second) {
			t.Error("TCP connect failed")
		}
	}()
	var got seen
	var n int
	collect(t, src, stop, func(p Packet) {
		n++
		if p.LinkType != 1 {
			t.Errorf("link type %d, want 1 (Ethernet)", p.LinkType)
		}
		if p.Time.Before(start.Add(-time.Second)) || p.Time.After(time.Now().Add(time.Second)) {
			t.Errorf("packet time %v outside the test's run (%v ...)", p.Time, start)
		}
		if p.Length < len(p.Data) || len(p.Data) < 14 {
			t.Errorf("length %d, data %d", p.Length, len(p.Data))
		}
		s := inspect(p)
		got.icmp4 = got.icmp4 || s.icmp4
		got.icmp6 = got.icmp6 || s.icmp6
		got.syn = got.syn || (s.syn && s.dport == 8081)
	})
	if !got.icmp4 || !got.icmp6 || !got.syn {
		t.Errorf("saw echo v4 %v, echo v6 %v, SYN to 8081 %v (of %d packets)", got.icmp4, got.icmp6, got.syn, n)
	}
	st := src.Stats()
	if st.Packets != uint64(n) || st.KernelDrops != 0 || st.Errors != 0 {
		t.Errorf("stats %+v after %d packets", st, n)
	}
	src.Close()
	if got := promiscuity(t, l.Gateway, netlab.GatewayClientIf); got != "0" {
		t.Errorf("promiscuity after close: %s, want 0", got)
	}
	if _, err := src.Next(); err == nil {
		t.Error("Next after Close gave no error")
	}
}

func TestLiveFanoutSplitsFlows(t *testing.T) {
	l := netlab.New(t)
	group := uint16(os.Getpid()%60000 + 1000)
	var srcs [2]Source
	for i := range srcs {
		srcs[i] = openIn(t, l.Gateway, LiveOptions{Interface: netlab.GatewayClientIf, FanoutGroup: group})
	}
	ln, err := l.Server.Listen("tcp", ":8082")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("x"))
			c.Close()
		}
	}()
	const conns = 24
	stop := make(chan struct{})
	go func() {
		defer close(stop)
		for i := 0; i < conns; i++ {
			if !l.Client.CanConnect(netip.AddrPortFrom(netlab.ServerV4, 8082).String(), 2*time.Second) {
				t.Error("connect failed")
			}
		}
	}()
	var mu sync.Mutex
	flows := map[string]map[int]int{} // flow -> socket -> packets
	var wg sync.WaitGroup
	for i, src := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			collect(t, src, stop, func(p Packet) {
				s := inspect(p)
				if s.flow == "" {
					return
				}
				mu.Lock()
				if flows[s.flow] == nil {
					flows[s.flow] = map[int]int{}
				}
				flows[s.flow][i]++
				mu.Unlock()
			})
		}()
	}
	wg.Wait()
	if len(flows) < conns {
		t.Fatalf("saw %d TCP flows, want %d", len(flows), conns)
	}
	per := [2]int{}
	for f, socks := range flows {
		if len(socks) != 1 {
			t.Errorf("flow %s split over sockets: %v", f, socks)
		}
		for i := range socks {
			per[i]++
		}
	}
	if per[0] == 0 || per[1] == 0 {
		t.Errorf("flows per socket %v: the group did not share the load", per)
	}
	t.Logf("flows per socket: %v", per)
}

func TestLiveBPF(t *testing.T) {
	l := netlab.New(t)
	netlab.RequireTools(t, "tcpdump")
	// The raw form is what `tcpdump -ddd -s 96 'tcp'` prints for Ethernet.
	raw := strings.Join([]string{"12", "40 0 0 12", "21 0 2 2048", "48 0 0 23", "21 6 7 6", "21 0 6 34525",
		"48 0 0 20", "21 3 0 6", "21 0 3 44", "48 0 0 54", "21 0 1 6", "6 0 0 96", "6 0 0 0"}, "\n")
	ln, err := l.Server.Listen("tcp", ":8083")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write(make([]byte, 1000))
			c.Close()
		}
	}()
	for _, filter := range []string{"tcp port 8083", raw} {
		t.Run(strings.Fields(filter)[0], func(t *testing.T) {
			src := openIn(t, l.Gateway, LiveOptions{Interface: netlab.GatewayClientIf, BPF: filter, Snaplen: 96})
			stop := make(chan struct{})
			go func() {
				defer close(stop)
				l.Client.Ping(netlab.ServerV4, 1)
				c, err := l.Client.Dial("tcp", "10.99.2.2:8083", 2*time.Second)
				if err == nil {
					buf := make([]byte, 2000)
					c.SetReadDeadline(time.Now().Add(time.Second))
					for {
						if _, err := c.Read(buf); err != nil {
							break
						}
					}
					c.Close()
				}
			}()
			var tcp, other int
			collect(t, src, stop, func(p Packet) {
				if len(p.Data) > 96 {
					t.Errorf("captured %d bytes with snaplen 96", len(p.Data))
				}
				if s := inspect(p); s.flow != "" {
					tcp++
				} else {
					other++
				}
			})
			if tcp == 0 || other != 0 {
				t.Errorf("filter %q let through %d TCP and %d other packets", filter, tcp, other)
			}
		})
	}
}

func TestParseRawBPF(t *testing.T) {
	for _, c := range []struct {
		in     string
		ok     bool
		errs   bool
		length int
	}{
		{"1\n6 0 0 65535\n", true, false, 1},
		{"tcp port 80", false, false, 0},
		{"2 6 0 0 1", false, false, 0}, // the count does not match: not raw BPF
		{"1\n6 0 0 x\n", true, true, 0},
		{"1\n70000 0 0 1\n", true, true, 0},
	} {
		prog, ok, err := parseRawBPF(c.in)
		if ok != c.ok || (err != nil) != c.errs || len(prog) != c.length {
			t.Errorf("parseRawBPF(%q) = %d instructions, %v, %v", c.in, len(prog), ok, err)
		}
	}
}

func TestLiveMulti(t *testing.T) {
	l := netlab.New(t)
	var src Source
	if err := l.Gateway.Do(func() error {
		var err error
		src, err = OpenLiveMulti(LiveOptions{Interface: netlab.GatewayClientIf}, LiveOptions{Interface: netlab.GatewayServerIf})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if src.Name() != "interfaces g0,g1" {
		t.Errorf("name %q", src.Name())
	}
	stop := make(chan struct{})
	go func() {
		defer close(stop)
		l.Client.Ping(netlab.ServerV4, 2)
	}()
	var echoes [2]int
	collect(t, src, stop, func(p Packet) {
		if inspect(p).icmp4 {
			echoes[p.Interface]++
		}
	})
	if echoes[0] == 0 || echoes[1] == 0 {
		t.Errorf("echo requests per interface %v: want them on both", echoes)
	}
	if st := src.Stats(); st.Packets == 0 || st.KernelDrops != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestOpenLiveErrors(t *testing.T) {
	if _, err := OpenLive(LiveOptions{}); err == nil {
		t.Error("no interface: no error")
	}
	if _, err := OpenLive(LiveOptions{Interface: "any"}); err == nil {
		t.Error(`"any": no error`)
	}
	if os.Geteuid() == 0 {
		_, err := OpenLive(LiveOptions{Interface: "nosuchif0"})
		if err == nil || !strings.Contains(err.Error(), "nosuchif0") {
			t.Errorf("missing interface: %v", err)
		}
	}
}
