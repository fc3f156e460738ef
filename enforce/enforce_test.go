package enforce

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/rasentry/rasentry/capture"
	"github.com/rasentry/rasentry/internal/netlab"
)

func TestDryRun(t *testing.T) {
	d := NewDryRun()
	for i := 0; i < dryRunKeep+5; i++ {
		ok, err := d.Block(Block{Scope: ScopePair, Reason: "r"})
		if ok || err != nil {
			t.Fatalf("dry run blocked: %v %v", ok, err)
		}
	}
	if n := len(d.Recent()); n != dryRunKeep {
		t.Errorf("kept %d blocks, want %d", n, dryRunKeep)
	}
	if st := d.Stats(); st.Blocks != dryRunKeep+5 {
		t.Errorf("stats %+v", st)
	}
	var _ Enforcer = d
	var _ Enforcer = (*NFTables)(nil)
	var _ Enforcer = (*Reset)(nil)
}

func TestNFTablesElementKeys(t *testing.T) {
	n := &NFTables{}
	c4 := netip.MustParseAddrPort("10.0.0.1:50000")
	s4 := netip.MustParseAddrPort("10.0.0.2:3389")
	c6 := netip.MustParseAddrPort("[fd00::1]:50000")
	s6 := netip.MustParseAddrPort("[fd00::2]:3389")
	for _, c := range []struct {
		b    Block
		set  string
		klen int
		err  bool
	}{
		{Block{Scope: ScopeFlow, Proto: ProtoTCP, Client: c4, Server: s4}, setFlow4, 16, false},
		{Block{Scope: ScopeFlow, Proto: ProtoUDP, Client: c6, Server: s6}, setFlow6, 40, false},
		{Block{Scope: ScopePair, Client: c4, Server: s4}, setPair4, 8, false},
		{Block{Scope: ScopePair, Client: c6, Server: s6}, setPair6, 32, false},
		{Block{Scope: ScopeHost, Client: c4}, setHost4, 4, false},
		{Block{Scope: ScopeHost, Host: s6.Addr()}, setHost6, 16, false},
		{Block{Scope: ScopeHost, Client: netip.MustParseAddrPort("[::ffff:10.0.0.1]:1")}, setHost4, 4, false},
		{Block{Scope: ScopeFlow, Proto: 1, Client: c4, Server: s4}, "", 0, true},
		{Block{Scope: ScopePair, Client: c4, Server: s6}, "", 0, true},
		{Block{Scope: ScopeHost}, "", 0, true},
	} {
		set, key, err := n.element(&c.b)
		if set != c.set || len(key) != c.klen || (err != nil) != c.err {
			t.Errorf("%s: set %q key %x err %v", c.b, set, key, err)
		}
	}
	_, key, _ := n.element(&Block{Scope: ScopeFlow, Proto: ProtoTCP, Client: c4, Server: s4})
	if want := "0a0000010a000002060000000d3d0000"; strings.TrimSpace(hexs(key)) != want {
		t.Errorf("flow4 key %s, want %s", hexs(key), want)
	}
}

func hexs(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// serve accepts connections on the server and echoes what they send.
func serve(t *testing.T, ns *netlab.NS, ports ...string) {
	t.Helper()
	for _, p := range ports {
		ln, err := ns.Listen("tcp", ":"+p)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					io.Copy(c, c)
					c.Close()
				}()
			}
		}()
	}
}

func TestNFTablesBlocksUntilExpiry(t *testing.T) {
	l := netlab.New(t)
	netlab.RequireTools(t, "nft")
	serve(t, l.Server, "3389", "3390")
	n, err := NewNFTables(NFTablesOptions{NetNS: l.Gateway.Fd(), RemoveOnClose: true})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	at := func(a netip.Addr, port uint16) string { return netip.AddrPortFrom(a, port).String() }
	const d = 3 * time.Second
	start := time.Now()
	for _, b := range []Block{
		// RDP from the client to the server, IPv4: the next connection from
		// a new port fails too.
		{Scope: ScopeFlow, Proto: ProtoTCP, Client: netip.AddrPortFrom(netlab.ClientV4, 50000), Server: netip.AddrPortFrom(netlab.ServerV4, 3389), Duration: d},
		// Everything between the two, IPv6.
		{Scope: ScopePair, Client: netip.AddrPortFrom(netlab.ClientV6, 50000), Server: netip.AddrPortFrom(netlab.ServerV6, 3389), Duration: d},
	} {
		if ok, err := n.Block(b); !ok || err != nil {
			t.Fatalf("Block(%s): %v %v", b, ok, err)
		}
	}
	out := l.Gateway.MustRun(t, "nft", "list", "table", "inet", DefaultBlockTable)
	for _, want := range []string{"10.99.1.2 . 10.99.2.2 . tcp . 3389 timeout 3s", "fd99:1::2 . fd99:2::2 timeout 3s", "th dport @flow4 counter"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if l.Client.CanConnect(at(netlab.ServerV4, 3389), 500*time.Millisecond) {
		t.Error("v4 3389 connects while its flow is blocked")
	}
	if !l.Client.CanConnect(at(netlab.ServerV4, 3390), 2*time.Second) || !l.Client.Ping(netlab.ServerV4, 1) {
		t.Error("v4 3390 or ping blocked by a flow block on 3389")
	}
	if l.Client.CanConnect(at(netlab.ServerV6, 3390), 500*time.Millisecond) || l.Client.Ping(netlab.ServerV6, 1) {
		t.Error("v6 traffic passes while the pair is blocked")
	}
	if elapsed := time.Since(start); elapsed > d-200*time.Millisecond {
		t.Fatalf("checks took %v, longer than the block; cannot tell expiry from blocking", elapsed)
	}
	time.Sleep(time.Until(start.Add(d + 700*time.Millisecond)))
	if !l.Client.CanConnect(at(netlab.ServerV4, 3389), 2*time.Second) {
		t.Error("v4 3389 still blocked after the element expired")
	}
	if !l.Client.CanConnect(at(netlab.ServerV6, 3390), 2*time.Second) || !l.Client.Ping(netlab.ServerV6, 1) {
		t.Error("v6 still blocked after the element expired")
	}
	if st := n.Stats(); st.Blocks != 2 || st.Errors != 0 {
		t.Errorf("stats %+v", st)
	}
	n.Close()
	if out, err := l.Gateway.Run(5*time.Second, "nft", "list", "table", "inet", DefaultBlockTable); err == nil {
		t.Errorf("table still there after Close with RemoveOnClose:\n%s", out)
	}
}

func TestNFTablesHostBlockSurvivesRestart(t *testing.T) {
	l := netlab.New(t)
	netlab.RequireTools(t, "nft")
	n, err := NewNFTables(NFTablesOptions{NetNS: l.Gateway.Fd()})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := n.Block(Block{Scope: ScopeHost, Client: netip.AddrPortFrom(netlab.ClientV4, 1), Duration: 20 * time.Second}); !ok || err != nil {
		t.Fatalf("Block: %v %v", ok, err)
	}
	n.Close() // keeps the table
	n2, err := NewNFTables(NFTablesOptions{NetNS: l.Gateway.Fd(), RemoveOnClose: true})
	if err != nil {
		t.Fatalf("reopening: %v", err)
	}
	if l.Client.Ping(netlab.ServerV4, 1) {
		t.Error("blocked host pings after the enforcer was reopened")
	}
	if !l.Client.Ping(netlab.ServerV6, 1) {
		t.Error("a v4 host block stops v6")
	}
	out := l.Gateway.MustRun(t, "nft", "list", "ruleset")
	if strings.Count(out, "@host4") != 2 {
		t.Errorf("rules duplicated after reopening:\n%s", out)
	}
	n2.Close()
	if !l.Client.Ping(netlab.ServerV4, 1) {
		t.Error("host still blocked after the table was removed")
	}
}

// seqTracker follows one TCP connection in a capture and keeps what a
// reset needs: the next sequence number of each side and the MACs.
type seqTracker struct {
	mu                   sync.Mutex
	client, server       netip.AddrPort
	cNext, sNext         uint32
	cSeen, sSeen         bool
	clientMAC, serverMAC net.HardwareAddr
}

func (s *seqTracker) packet(p capture.Packet) {
	pkt := gopacket.NewPacket(p.Data, layers.LayerTypeEthernet, gopacket.NoCopy)
	tcp, ok := pkt.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if !ok {
		return
	}
	eth := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	srcIP, dstIP := pkt.NetworkLayer().NetworkFlow().Endpoints()
	src := netip.AddrPortFrom(netip.MustParseAddr(srcIP.String()), uint16(tcp.SrcPort))
	dst := netip.AddrPortFrom(netip.MustParseAddr(dstIP.String()), uint16(tcp.DstPort))
	next := tcp.Seq + uint32(len(tcp.Payload))
	if tcp.SYN || tcp.FIN {
		next++
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case src == s.client && dst == s.server:
		s.cNext, s.cSeen = next, true
		s.clientMAC, s.serverMAC = append(net.HardwareAddr(nil), eth.SrcMAC...), append(net.HardwareAddr(nil), eth.DstMAC...)
	case src == s.server && dst == s.client:
		s.sNext, s.sSeen = next, true
	}
}

// resetScenario connects client to server, exchanges data while capturing
// on the gateway's capIf, then blocks with r and checks both ends see the
// reset.
func resetScenario(t *testing.T, l *netlab.Lab, capIf string, server netip.AddrPort, r *Reset) {
	t.Helper()
	var src capture.Source
	if err := l.Gateway.Do(func() error {
		var err error
		src, err = capture.OpenLive(capture.LiveOptions{Interface: capIf, PollTimeout: 50 * time.Millisecond})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ln, err := l.Server.Listen("tcp", ":"+itoa(int(server.Port())))
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	cc, err := l.Client.Dial("tcp", server.String(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	var sc net.Conn
	select {
	case sc = <-accepted:
	case <-time.After(2 * time.Second):
		t.Fatal("server did not accept")
	}
	defer sc.Close()
	tr := &seqTracker{client: netip.MustParseAddrPort(cc.LocalAddr().String()), server: server}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			p, err := src.Next()
			if errors.Is(err, capture.ErrTimeout) {
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
			tr.packet(p)
		}
	}()
	buf := make([]byte, 100)
	for i := 0; i < 3; i++ {
		cc.Write([]byte("hello from the client"))
		sc.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, _ := sc.Read(buf)
		sc.Write(buf[:n])
		cc.SetReadDeadline(time.Now().Add(2 * time.Second))
		cc.Read(buf)
	}
	time.Sleep(300 * time.Millisecond) // the last ACKs are captured
	close(stop)
	<-done
	tr.mu.Lock()
	b := Block{Scope: ScopeFlow, Proto: ProtoTCP, Client: tr.client, Server: server,
		ClientNextSeq: tr.cNext, ServerNextSeq: tr.sNext, SeqKnown: tr.cSeen && tr.sSeen,
		ClientMAC: tr.clientMAC, ServerMAC: tr.serverMAC}
	tr.mu.Unlock()
	if !b.SeqKnown {
		t.Fatal("capture did not see both directions")
	}
	if ok, err := r.Block(b); !ok || err != nil {
		t.Fatalf("Block: %v %v", ok, err)
	}
	for name, c := range map[string]net.Conn{"client": cc, "server": sc} {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, err := c.Read(buf)
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("%s read after the reset: %v, want ECONNRESET", name, err)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestResetRouted: rasentry on the gateway, resets as raw IP packets that
// the gateway routes to each end (IPv4 and IPv6).
func TestResetRouted(t *testing.T) {
	l := netlab.New(t)
	var r *Reset
	if err := l.Gateway.Do(func() error {
		var err error
		r, err = NewReset(ResetOptions{})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i, a := range []netip.Addr{netlab.ServerV4, netlab.ServerV6} {
		resetScenario(t, l, netlab.GatewayClientIf, netip.AddrPortFrom(a, uint16(7000+i)), r)
	}
	if ok, _ := r.Block(Block{Proto: ProtoUDP}); ok {
		t.Error("reset for UDP reported as blocked")
	}
	if st := r.Stats(); st.Blocks != 2 || st.Skipped != 1 || st.Errors != 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestResetSPAN: a sensor on a bridge (a SPAN or tap position) injects
// Ethernet frames with the MACs it saw (IPv4 and IPv6).
func TestResetSPAN(t *testing.T) {
	l := netlab.NewBridged(t)
	var r *Reset
	if err := l.Gateway.Do(func() error {
		var err error
		r, err = NewReset(ResetOptions{Interface: netlab.BridgeIf})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i, a := range []netip.Addr{netlab.BridgedServerV4, netlab.BridgedServerV6} {
		resetScenario(t, l, netlab.GatewayClientIf, netip.AddrPortFrom(a, uint16(7100+i)), r)
	}
	if st := r.Stats(); st.Blocks != 2 || st.Errors != 0 {
		t.Errorf("stats %+v", st)
	}
}
