package capture

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rasentry/rasentry/internal/netlab"
)

// tcpDport returns the TCP destination port of a raw IPv4/IPv6 packet.
func tcpDport(b []byte) (uint16, bool) {
	if len(b) < 1 {
		return 0, false
	}
	switch b[0] >> 4 {
	case 4:
		ihl := int(b[0]&0x0f) * 4
		if len(b) < ihl+4 || b[9] != 6 {
			return 0, false
		}
		return binary.BigEndian.Uint16(b[ihl+2:]), true
	case 6:
		if len(b) < 44 || b[6] != 6 {
			return 0, false
		}
		return binary.BigEndian.Uint16(b[42:]), true
	}
	return 0, false
}

// queueLab is a lab with listeners on the server and, unless rules is
// nil, the queue rules on the gateway.
func queueLab(t *testing.T, rules *QueueRules, ports ...int) *netlab.Lab {
	t.Helper()
	l := netlab.New(t)
	netlab.RequireTools(t, "nft")
	for _, port := range ports {
		ln, err := l.Server.Listen("tcp", ":"+strconv.Itoa(port))
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
					buf := make([]byte, 512)
					for {
						n, err := c.Read(buf)
						if err != nil {
							break
						}
						c.Write(buf[:n])
					}
					c.Close()
				}()
			}
		}()
	}
	if rules != nil {
		rules.NetNS = l.Gateway.Fd()
		if err := InstallQueueRules(*rules); err != nil {
			t.Fatal(err)
		}
	}
	return l
}

// runQueue reads src until it is closed, giving each packet decide's verdict.
func runQueue(src Source, decide func(Packet) error) (done chan struct{}) {
	done = make(chan struct{})
	go func() {
		defer close(done)
		for {
			p, err := src.Next()
			if errors.Is(err, ErrTimeout) {
				continue
			}
			if err != nil {
				return
			}
			decide(p)
		}
	}()
	return done
}

func openQueueIn(t *testing.T, l *netlab.Lab, o QueueOptions) Source {
	t.Helper()
	o.NetNS = l.Gateway.Fd()
	src, err := OpenQueue(o)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func TestQueueRulesRoundTrip(t *testing.T) {
	l := netlab.New(t)
	netlab.RequireTools(t, "nft")
	r := QueueRules{Queue: 3, Count: 2, Hooks: []string{"forward", "input"}, NetNS: l.Gateway.Fd()}
	if err := InstallQueueRules(r); err != nil {
		t.Fatal(err)
	}
	// Installing again replaces the tables.
	if err := InstallQueueRules(r); err != nil {
		t.Fatalf("second install: %v", err)
	}
	for _, fam := range []string{"ip", "ip6"} {
		out := l.Gateway.MustRun(t, "nft", "list", "table", fam, DefaultQueueTable)
		for _, want := range []string{"hook forward priority mangle", "hook input priority mangle", "queue", "3-4", "bypass", "ct mark set", `iifname "lo" accept`} {
			if !strings.Contains(out, want) {
				t.Errorf("%s table lacks %q:\n%s", fam, want, out)
			}
		}
		if n := strings.Count(out, " queue num "); n != 2 {
			t.Errorf("%s: %d queue rules, want 2 (one per hook):\n%s", fam, n, out)
		}
	}
	if err := RemoveQueueRules(r); err != nil {
		t.Fatal(err)
	}
	for _, fam := range []string{"ip", "ip6"} {
		if out, err := l.Gateway.Run(5*time.Second, "nft", "list", "table", fam, DefaultQueueTable); err == nil {
			t.Errorf("%s table still there after remove:\n%s", fam, out)
		}
	}
	if err := RemoveQueueRules(r); err != nil {
		t.Errorf("removing absent tables: %v", err)
	}
}

func TestIPTablesCommands(t *testing.T) {
	in, rm, err := IPTablesCommands(QueueRules{Queue: 0, Count: 4, CPUFanout: true})
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(in, "\n")
	for _, want := range []string{
		"iptables -t mangle -A RASENTRY -j NFQUEUE --queue-balance 0:3 --queue-cpu-fanout --queue-bypass",
		"ip6tables -t mangle -I FORWARD -j RASENTRY",
		"-m mark --mark 0x40000000/0x40000000 -j CONNMARK --or-mark 0x40000000",
		"-m connmark --mark 0x40000000/0x40000000 -j ACCEPT",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("install lines lack %q:\n%s", want, all)
		}
	}
	if len(rm) != 6 || !strings.Contains(strings.Join(rm, "\n"), "iptables -t mangle -X RASENTRY") {
		t.Errorf("remove lines: %q", rm)
	}
	if _, _, err := IPTablesCommands(QueueRules{Hooks: []string{"prerouting"}}); err == nil {
		t.Error("unknown hook accepted")
	}
}

// TestQueueBlocksPort: a decision that drops TCP to 3389 blocks RDP-port
// connections (v4 and v6) while 3390 and ping pass; with no reader bound
// (before, and after Close) the bypass lets everything through.
func TestQueueBlocksPort(t *testing.T) {
	l := queueLab(t, &QueueRules{Queue: 7}, 3389, 3390)
	v4 := func(port uint16) string { return netip.AddrPortFrom(netlab.ServerV4, port).String() }
	v6 := func(port uint16) string { return netip.AddrPortFrom(netlab.ServerV6, port).String() }

	// Rules in place, nothing bound: bypass.
	if !l.Client.CanConnect(v4(3389), 2*time.Second) || !l.Client.Ping(netlab.ServerV4, 1) {
		t.Fatal("with no reader, traffic does not pass (bypass)")
	}

	src := openQueueIn(t, l, QueueOptions{Queue: 7})
	if qs := src.(*queueSource); qs.proc == nil {
		t.Error("the kernel's queue statistics could not be opened")
	} else if q, u := qs.kernelCounters(); q != 0 || u != 0 {
		t.Errorf("kernel drops %d/%d on a new queue", q, u)
	}
	var dropped, accepted atomic.Int64
	done := runQueue(src, func(p Packet) error {
		if port, ok := tcpDport(p.Data); ok && port == 3389 {
			dropped.Add(1)
			return p.Verdict.Drop()
		}
		accepted.Add(1)
		return p.Verdict.Accept()
	})
	if l.Client.CanConnect(v4(3389), time.Second) {
		t.Error("IPv4 3389 connects through a queue that drops it")
	}
	if l.Client.CanConnect(v6(3389), time.Second) {
		t.Error("IPv6 3389 connects through a queue that drops it")
	}
	if !l.Client.CanConnect(v4(3390), 2*time.Second) || !l.Client.CanConnect(v6(3390), 2*time.Second) {
		t.Error("3390 blocked")
	}
	if !l.Client.Ping(netlab.ServerV4, 1) || !l.Client.Ping(netlab.ServerV6, 1) {
		t.Error("ping blocked")
	}
	qs := src.(QueueStatsReporter).QueueStats()
	if qs.Dropped == 0 || qs.Accepted == 0 || qs.VerdictErrors != 0 || qs.VerdictTimeouts != 0 {
		t.Errorf("queue stats %+v", qs)
	}
	if st := src.Stats(); st.Packets == 0 || st.Errors != 0 || st.KernelDrops != 0 {
		t.Errorf("stats %+v", st)
	}
	t.Logf("verdicts: %d dropped, %d accepted; %+v", dropped.Load(), accepted.Load(), qs)
	src.Close()
	<-done
	if !l.Client.CanConnect(v4(3389), 2*time.Second) {
		t.Error("after Close, 3389 does not pass (bypass)")
	}
}

// TestQueueOffload: once a connection's first packet is offloaded, the
// kernel accepts the rest of it without queueing; with the rules installed
// from Go, and with the iptables lines of IPTablesCommands.
func TestQueueOffload(t *testing.T) {
	for _, how := range []string{"nftables", "iptables"} {
		t.Run(how, func(t *testing.T) {
			var l *netlab.Lab
			if how == "nftables" {
				l = queueLab(t, &QueueRules{Queue: 9}, 3390)
			} else {
				netlab.RequireTools(t, "iptables", "ip6tables")
				l = queueLab(t, nil, 3390)
				in, rm, err := IPTablesCommands(QueueRules{Queue: 9})
				if err != nil {
					t.Fatal(err)
				}
				for _, line := range in {
					l.Gateway.MustRun(t, strings.Fields(line)...)
				}
				defer func() {
					for _, line := range rm {
						l.Gateway.MustRun(t, strings.Fields(line)...)
					}
				}()
			}
			src := openQueueIn(t, l, QueueOptions{Queue: 9})
			defer src.Close()
			var mu sync.Mutex
			queued := 0
			runQueue(src, func(p Packet) error {
				if port, ok := tcpDport(p.Data); ok && port == 3390 {
					mu.Lock()
					queued++
					mu.Unlock()
				}
				return p.Verdict.(InlineVerdict).Offload()
			})
			for _, a := range []netip.Addr{netlab.ServerV4, netlab.ServerV6} {
				c, err := l.Client.Dial("tcp", netip.AddrPortFrom(a, 3390).String(), 2*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 64)
				for i := 0; i < 20; i++ {
					c.SetDeadline(time.Now().Add(2 * time.Second))
					if _, err := c.Write([]byte("ping")); err != nil {
						t.Fatal(err)
					}
					if _, err := c.Read(buf); err != nil {
						t.Fatal(err)
					}
				}
				c.Close()
			}
			mu.Lock()
			defer mu.Unlock()
			if queued < 2 || queued > 4 {
				t.Errorf("%d packets of two offloaded 40-segment exchanges reached the queue, want 1 or 2 each", queued)
			}
			qs := src.(QueueStatsReporter).QueueStats()
			if qs.Offloaded == 0 || qs.OffloadLoops != 0 {
				t.Errorf("queue stats %+v", qs)
			}
		})
	}
}

// TestQueueVerdictTimeout: packets the sensor never decides are accepted
// by the source after the verdict timeout, so the queue never stalls.
func TestQueueVerdictTimeout(t *testing.T) {
	l := queueLab(t, &QueueRules{Queue: 11}, 3390)
	src := openQueueIn(t, l, QueueOptions{Queue: 11, VerdictTimeout: 200 * time.Millisecond})
	var held []Packet
	var mu sync.Mutex
	done := runQueue(src, func(p Packet) error {
		mu.Lock()
		held = append(held, p) // never decided
		mu.Unlock()
		return nil
	})
	if !l.Client.CanConnect(netip.AddrPortFrom(netlab.ServerV4, 3390).String(), 5*time.Second) {
		t.Error("connection did not complete though undecided packets time out")
	}
	qs := src.(QueueStatsReporter).QueueStats()
	if qs.VerdictTimeouts == 0 {
		t.Errorf("no verdict timeouts counted: %+v", qs)
	}
	mu.Lock()
	if len(held) > 0 {
		if err := held[0].Verdict.Accept(); !errors.Is(err, ErrVerdictGiven) {
			t.Errorf("late verdict: %v, want ErrVerdictGiven", err)
		}
	}
	mu.Unlock()
	src.Close()
	<-done
}

// TestQueueRange: with a range of two queues the kernel balances over both
// readers by a symmetric hash of the address pair and protocol (not the
// ports: all of a host pair's flows meet in one queue, as the sensor shards
// them); Packet.Interface says which queue. The client uses 16 addresses.
func TestQueueRange(t *testing.T) {
	l := queueLab(t, &QueueRules{Queue: 20, Count: 2}, 3390)
	src := openQueueIn(t, l, QueueOptions{Queue: 20, Count: 2})
	defer src.Close()
	if src.Name() != "queues 20:21" {
		t.Errorf("name %q", src.Name())
	}
	var mu sync.Mutex
	per := [2]int{}
	runQueue(src, func(p Packet) error {
		mu.Lock()
		per[p.Interface]++
		mu.Unlock()
		return p.Verdict.Accept()
	})
	for i := 0; i < 16; i++ {
		local := netip.AddrFrom4([4]byte{10, 99, 1, byte(100 + i)})
		l.Client.MustRun(t, "ip", "addr", "add", local.String()+"/24", "dev", netlab.ClientIf)
		err := l.Client.Do(func() error {
			d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0))}
			c, err := d.Dial("tcp", netip.AddrPortFrom(netlab.ServerV4, 3390).String())
			if err == nil {
				c.Close()
			}
			return err
		})
		if err != nil {
			t.Fatalf("connect from %v: %v", local, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if per[0] == 0 || per[1] == 0 {
		t.Errorf("packets per queue %v: want both used", per)
	}
}
