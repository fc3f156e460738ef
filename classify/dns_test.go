package classify

import (
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func dnsTestQuery(t testing.TB, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.Id = 0x1234
	return m
}

func dnsTestPack(t testing.TB, m *dns.Msg) []byte {
	t.Helper()
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func dnsRR(t testing.TB, s string) dns.RR {
	t.Helper()
	rr, err := dns.NewRR(s)
	if err != nil {
		t.Fatal(err)
	}
	return rr
}

// dnsTestAnswer answers q with rrs.
func dnsTestAnswer(t testing.TB, q *dns.Msg, rrs ...string) *dns.Msg {
	t.Helper()
	r := new(dns.Msg)
	r.SetReply(q)
	r.Compress = true
	for _, s := range rrs {
		r.Answer = append(r.Answer, dnsRR(t, s))
	}
	return r
}

func TestDNSDetector(t *testing.T) {
	teredoQ := dnsTestQuery(t, "teredo.ipv6.microsoft.com", dns.TypeA)
	teredoA := dnsTestAnswer(t, teredoQ,
		"teredo.ipv6.microsoft.com. 300 IN CNAME teredo.ipv6.microsoft.com.nsatc.net.",
		"teredo.ipv6.microsoft.com.nsatc.net. 60 IN A 65.55.158.118",
		"teredo.ipv6.microsoft.com.nsatc.net. 60 IN A 65.55.158.119")
	pnrpQ := dnsTestQuery(t, "PNRPV2.IPV6.MICROSOFT.COM", dns.TypeAAAA)
	pnrpA := dnsTestAnswer(t, pnrpQ, "PNRPV2.IPV6.MICROSOFT.COM. 3600 IN AAAA 2001:db8::53")
	winQ := dnsTestQuery(t, "win1910.ipv6.microsoft.com", dns.TypeA)
	winA := dnsTestAnswer(t, winQ, "win1910.ipv6.microsoft.com. 0 IN A 20.36.1.2")
	aliasQ := dnsTestQuery(t, "helper.example.com", dns.TypeA)
	aliasA := dnsTestAnswer(t, aliasQ,
		"helper.example.com. 30 IN CNAME teredo.remlab.net.",
		"teredo.remlab.net. 30 IN A 83.170.6.76")
	nx := new(dns.Msg)
	nx.SetRcode(dnsTestQuery(t, "pnrpv21.ipv6.microsoft.com", dns.TypeAAAA), dns.RcodeNameError)
	otherQ := dnsTestQuery(t, "www.example.com", dns.TypeA)
	otherA := dnsTestAnswer(t, otherQ, "www.example.com. 60 IN A 192.0.2.80")
	mdns := new(dns.Msg)
	mdns.Response, mdns.Authoritative = true, true
	mdns.Answer = []dns.RR{dnsRR(t, "printer.local. 120 IN A 192.168.1.50")}
	deeperQ := dnsTestQuery(t, "a.win10.ipv6.microsoft.com", dns.TypeA)

	tests := []struct {
		name       string
		server     string
		msgs       []*dns.Msg // alternating query / answer
		want       Label
		queries    []DNSQuery
		answers    int
		rcode      string
		names      map[string]string // address -> cached name
		noCache    []string
		app        string
		cacheAll   bool
		nameTTLMin time.Duration
	}{
		{name: "teredo A through a CNAME", server: "10.0.0.1:53", msgs: []*dns.Msg{teredoQ, teredoA}, want: LabelDNSTeredoServer,
			queries: []DNSQuery{{"teredo.ipv6.microsoft.com", "A"}}, answers: 3, rcode: "NOERROR", app: "dns",
			names: map[string]string{"65.55.158.118": "teredo.ipv6.microsoft.com", "65.55.158.119": "teredo.ipv6.microsoft.com"}},
		{name: "PNRP seed AAAA, upper case", server: "[2001:db8::1]:53", msgs: []*dns.Msg{pnrpQ, pnrpA}, want: LabelDNSPNRPSeed,
			queries: []DNSQuery{{"PNRPV2.IPV6.MICROSOFT.COM", "AAAA"}}, answers: 1, rcode: "NOERROR", app: "dns",
			names: map[string]string{"2001:db8::53": "pnrpv2.ipv6.microsoft.com"}},
		{name: "win* glob, TTL 0 kept a minute", server: "10.0.0.1:53", msgs: []*dns.Msg{winQ, winA}, want: LabelDNSTeredoServer,
			queries: []DNSQuery{{"win1910.ipv6.microsoft.com", "A"}}, answers: 1, rcode: "NOERROR", app: "dns",
			names: map[string]string{"20.36.1.2": "win1910.ipv6.microsoft.com"}, nameTTLMin: time.Minute},
		{name: "alias of a listed name", server: "10.0.0.1:53", msgs: []*dns.Msg{aliasQ, aliasA}, want: LabelDNSTeredoServer,
			queries: []DNSQuery{{"helper.example.com", "A"}}, answers: 2, rcode: "NOERROR", app: "dns",
			names: map[string]string{"83.170.6.76": "teredo.remlab.net"}},
		{name: "NXDOMAIN", server: "10.0.0.1:53", msgs: []*dns.Msg{nx}, want: LabelDNSPNRPSeed,
			queries: []DNSQuery{{"pnrpv21.ipv6.microsoft.com", "AAAA"}}, rcode: "NXDOMAIN", app: "dns"},
		{name: "on a non-DNS port: structure decides", server: "10.0.0.1:5300", msgs: []*dns.Msg{teredoQ, teredoA}, want: LabelDNSTeredoServer,
			queries: []DNSQuery{{"teredo.ipv6.microsoft.com", "A"}}, answers: 3, rcode: "NOERROR", app: "dns"},
		// Near misses.
		{name: "other name", server: "10.0.0.1:53", msgs: []*dns.Msg{otherQ, otherA}, app: "dns", noCache: []string{"192.0.2.80"}},
		{name: "other name cached when asked", server: "10.0.0.1:53", msgs: []*dns.Msg{otherQ, otherA}, app: "dns", cacheAll: true,
			names: map[string]string{"192.0.2.80": "www.example.com"}},
		{name: "mDNS for another name", server: "224.0.0.251:5353", msgs: []*dns.Msg{mdns}, app: "dns", noCache: []string{"192.168.1.50"}},
		{name: "wildcard stays in its label", server: "10.0.0.1:53", msgs: []*dns.Msg{deeperQ}, app: "dns"},
		{name: "other name off the DNS ports", server: "10.0.0.1:5300", msgs: []*dns.Msg{otherQ}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := newUPnPTestContext()
			d := NewDNSDetector(DNSOptions{CacheAllNames: tt.cacheAll})
			f := upnpUDPFlow("10.0.0.2:40000", tt.server)
			var steps []upnpStep
			for i, m := range tt.msgs {
				dir := ToServer
				if m.Response && i > 0 {
					dir = ToClient
				}
				steps = append(steps, upnpStep{dir: dir, data: string(dnsTestPack(t, m))})
			}
			upnpRun(ctx, d, f, steps)
			var want LabelSet
			if tt.want != LabelNone {
				want = want.With(tt.want)
			}
			if f.Labels != want || f.AppProto.String() != tt.app {
				t.Fatalf("labels %v app %q, want %v %q", f.Labels.Strings(), f.AppProto, want.Strings(), tt.app)
			}
			ev, _ := f.GetEvidence("dns").(*DNSEvidence)
			if want == 0 {
				if ev != nil {
					t.Errorf("near miss has evidence %+v", ev)
				}
			} else {
				if f.LabelConfidence(tt.want) != ConfidenceMedium {
					t.Errorf("confidence %v", f.LabelConfidence(tt.want))
				}
				if ev == nil || len(ev.Queries) != len(tt.queries) || len(ev.Answers) != tt.answers || ev.Rcode != tt.rcode {
					t.Fatalf("evidence %+v", ev)
				}
				for i := range tt.queries {
					if ev.Queries[i] != tt.queries[i] {
						t.Errorf("query %d = %+v, want %+v", i, ev.Queries[i], tt.queries[i])
					}
				}
			}
			for a, name := range tt.names {
				got, ok := ctx.Names.Lookup(netip.MustParseAddr(a), upnpT0)
				if !ok || got != name {
					t.Errorf("name of %s = %q %v, want %q", a, got, ok, name)
				}
				if tt.nameTTLMin > 0 {
					if _, ok := ctx.Names.Lookup(netip.MustParseAddr(a), upnpT0.Add(tt.nameTTLMin-time.Second)); !ok {
						t.Errorf("name of %s gone before %v", a, tt.nameTTLMin)
					}
				}
			}
			for _, a := range tt.noCache {
				if _, ok := ctx.Names.Lookup(netip.MustParseAddr(a), upnpT0); ok {
					t.Errorf("%s cached", a)
				}
			}
			if len(ctx.Counters.Malformed()) != 0 {
				t.Errorf("malformed %v", ctx.Counters.Malformed())
			}
		})
	}
}

func TestDNSEvidenceShape(t *testing.T) {
	ctx := newUPnPTestContext()
	q := dnsTestQuery(t, "teredo.ipv6.microsoft.com", dns.TypeA)
	a := dnsTestAnswer(t, q, "teredo.ipv6.microsoft.com. 300 IN CNAME teredo.ipv6.microsoft.com.nsatc.net.",
		"teredo.ipv6.microsoft.com.nsatc.net. 60 IN A 65.55.158.118")
	f := upnpUDPFlow("10.0.0.2:40000", "10.0.0.1:53")
	upnpRun(ctx, NewDNSDetector(DNSOptions{}), f, []upnpStep{{data: string(dnsTestPack(t, q))}, {dir: ToClient, data: string(dnsTestPack(t, a))}, {data: string(dnsTestPack(t, q))}})
	ev := f.GetEvidence("dns").(*DNSEvidence)
	want := []DNSAnswer{
		{RRName: "teredo.ipv6.microsoft.com", RRType: "CNAME", RData: "teredo.ipv6.microsoft.com.nsatc.net", TTL: 300},
		{RRName: "teredo.ipv6.microsoft.com.nsatc.net", RRType: "A", RData: "65.55.158.118", TTL: 60},
	}
	if len(ev.Queries) != 1 || len(ev.Answers) != 2 || ev.Answers[0] != want[0] || ev.Answers[1] != want[1] {
		t.Errorf("evidence %+v", ev)
	}
}

// dnsTCP frames messages as DNS over TCP (RFC 1035 §4.2.2).
func dnsTCP(msgs ...[]byte) string {
	var b strings.Builder
	for _, m := range msgs {
		b.WriteByte(byte(len(m) >> 8))
		b.WriteByte(byte(len(m)))
		b.Write(m)
	}
	return b.String()
}

func TestDNSOverTCP(t *testing.T) {
	q := dnsTestQuery(t, "pnrpv21.ipv6.microsoft.com", dns.TypeAAAA)
	a := dnsTestAnswer(t, q, "pnrpv21.ipv6.microsoft.com. 600 IN AAAA 2001:db8::21")
	qb, ab := dnsTestPack(t, q), dnsTestPack(t, a)
	other := dnsTestPack(t, dnsTestQuery(t, "www.example.com", dns.TypeA))
	stream := dnsTCP(other, qb)
	for split := 1; split < len(stream); split++ {
		ctx := newUPnPTestContext()
		f := upnpTCPFlow("10.0.0.2:40000", "10.0.0.1:53")
		resp := dnsTCP(ab)
		upnpRun(ctx, NewDNSDetector(DNSOptions{}), f, []upnpStep{
			{data: stream[:split]}, {data: stream[split:]},
			{dir: ToClient, data: resp[:1]}, {dir: ToClient, data: resp[1:]},
		})
		if f.Labels != LabelSet(0).With(LabelDNSPNRPSeed) || f.AppProto != AppDNS {
			t.Fatalf("split %d: labels %v app %q", split, f.Labels.Strings(), f.AppProto)
		}
		if name, ok := ctx.Names.Lookup(netip.MustParseAddr("2001:db8::21"), upnpT0); !ok || name != "pnrpv21.ipv6.microsoft.com" {
			t.Fatalf("split %d: name %q", split, name)
		}
	}
	// Near misses over TCP: an HTTP request, a banner, an over-long length.
	for _, p := range []string{"GET / HTTP/1.1\r\n\r\n", "220 smtp ready\r\n", "\xff\xff" + string(qb)} {
		ctx := newUPnPTestContext()
		f := upnpTCPFlow("10.0.0.2:40000", "10.0.0.1:53")
		if n := upnpRun(ctx, NewDNSDetector(DNSOptions{}), f, []upnpStep{{data: p}, {data: dnsTCP(qb)}}); n != 1 || f.Labels != 0 {
			t.Errorf("%q: labels %v after %d segments", p, f.Labels.Strings(), n)
		}
	}
}

// TestDNSMalformed checks that broken messages are counted, never fatal:
// a compression-pointer loop in the question (caught by the walk) and one
// inside an answer's RDATA (caught by miekg/dns on the match path).
func TestDNSMalformed(t *testing.T) {
	hdr := func(flags string, qd, an byte) string {
		return "\xab\xcd" + flags + "\x00" + string(rune(qd)) + "\x00" + string(rune(an)) + "\x00\x00\x00\x00"
	}
	// Question name: "teredo" then a pointer to itself.
	loopQ := hdr("\x01\x00", 1, 0) + "\x06teredo\xc0\x0c" + "\x00\x01\x00\x01"
	// A valid question, then a CNAME whose target points at itself.
	q := "\x06teredo\x04ipv6\x09microsoft\x03com\x00\x00\x01\x00\x01"
	loopRData := hdr("\x81\x80", 1, 1) + q + "\xc0\x0c\x00\x05\x00\x01\x00\x00\x00\x3c\x00\x02\xc0\x37"
	// Truncated answer.
	short := hdr("\x81\x80", 1, 1) + q + "\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x01\x02"

	for _, c := range []struct {
		name      string
		msg       string
		server    string
		want      LabelSet
		malformed uint64
	}{
		{"question pointer loop", loopQ, "10.0.0.1:53", 0, 1},
		{"RDATA pointer loop", loopRData, "10.0.0.1:53", LabelSet(0).With(LabelDNSTeredoServer), 1},
		{"truncated answer", short, "10.0.0.1:53", 0, 1},
		{"loop off the DNS ports is not counted", loopQ, "10.0.0.1:4000", 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			// miekg/dns must refuse the loop itself (not spin).
			if c.name == "RDATA pointer loop" {
				if err := new(dns.Msg).Unpack([]byte(c.msg)); err == nil {
					t.Fatalf("miekg/dns accepted a compression loop")
				}
			}
			ctx := newUPnPTestContext()
			f := upnpUDPFlow("10.0.0.2:40000", c.server)
			upnpRun(ctx, NewDNSDetector(DNSOptions{}), f, []upnpStep{{data: c.msg}})
			if f.Labels != c.want {
				t.Errorf("labels %v", f.Labels.Strings())
			}
			if got := ctx.Counters.Malformed()["dns"]; got != c.malformed {
				t.Errorf("malformed %d, want %d", got, c.malformed)
			}
		})
	}
}

func TestDNSOptions(t *testing.T) {
	if err := (DNSOptions{}).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	if err := (DNSOptions{TeredoNames: DefaultTeredoServerNames, PNRPNames: DefaultPNRPSeedNames}).Validate(); err != nil {
		t.Errorf("default lists: %v", err)
	}
	for _, bad := range []DNSOptions{
		{TeredoNames: []string{""}},
		{TeredoNames: []string{"a..b"}},
		{PNRPNames: []string{"bad name.com"}},
		{PNRPNames: []string{strings.Repeat("a", 64) + ".com"}},
		{MinTTL: time.Hour, MaxTTL: time.Minute},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v: no error", bad)
		} else if !strings.HasPrefix(err.Error(), "dns: ") {
			t.Errorf("error %q does not name its subsystem", err)
		}
	}
	// A custom list replaces the defaults; an empty list disables.
	d := NewDNSDetector(DNSOptions{TeredoNames: []string{"teredo.corp.example.", "ts-??.corp.example"}, PNRPNames: []string{}})
	for name, want := range map[string]dnsMatch{
		"teredo.corp.example":       dnsMatchTeredo,
		"TS-01.corp.example":        dnsMatchTeredo,
		"ts-001.corp.example":       dnsMatchNone,
		"teredo.ipv6.microsoft.com": dnsMatchNone,
		"pnrpv2.ipv6.microsoft.com": dnsMatchNone,
	} {
		if got := d.lookup([]byte(strings.ToLower(name))); got != want {
			t.Errorf("lookup %s = %v, want %v", name, got, want)
		}
	}
	for _, c := range []struct {
		pat, name string
		want      bool
	}{
		{"win*.ipv6.microsoft.com", "win10.ipv6.microsoft.com", true},
		{"win*.ipv6.microsoft.com", "win.ipv6.microsoft.com", true},
		{"win*.ipv6.microsoft.com", "win10.x.ipv6.microsoft.com", false},
		{"win*.ipv6.microsoft.com", "ipv6.microsoft.com", false},
		{"*.ipv6.microsoft.com", "teredo.ipv6.microsoft.com", true},
		{"*", "com", true},
		{"*", "a.com", false},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
		{"teredo.ipv6.microsoft.com", "teredo.ipv6.microsoft.co", false},
		{"teredo.ipv6.microsoft.com", "teredo.ipv6.microsoft.com.evil", false},
	} {
		if got := dnsGlobName([]byte(c.pat), []byte(c.name)); got != c.want {
			t.Errorf("glob %q %q = %v", c.pat, c.name, got)
		}
	}
}

func TestDNSNoMatchAllocs(t *testing.T) {
	ctx := newUPnPTestContext()
	d := NewDNSDetector(DNSOptions{})
	otherQ := dnsTestQuery(t, "www.example.com", dns.TypeA)
	otherA := dnsTestAnswer(t, otherQ, "www.example.com. 60 IN CNAME web.example.net.", "web.example.net. 60 IN A 192.0.2.80")
	mdns := new(dns.Msg)
	mdns.Response = true
	mdns.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: "printer.local.", Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 120}, A: net.IPv4(192, 168, 1, 50)}}
	udp := map[string][]byte{
		"query other":  dnsTestPack(t, otherQ),
		"answer other": dnsTestPack(t, otherA),
		"mDNS other":   dnsTestPack(t, mdns),
		"QUIC":         []byte(upnpQUICInitial),
		"SSDP":         []byte(ssdpIGDSearch),
		"NAT-PMP":      []byte(upnpNATPMP),
		"short":        []byte("\x00\x01"),
	}
	for name, p := range udp {
		f := upnpUDPFlow("10.0.0.2:40000", "10.0.0.1:53")
		seg := &Segment{Dir: ToServer, Payload: p}
		if n := testing.AllocsPerRun(100, func() { d.Inspect(ctx, f, seg) }); n != 0 {
			t.Errorf("UDP %s: %v allocs", name, n)
		}
		if f.Labels != 0 {
			t.Errorf("UDP %s labelled", name)
		}
	}
	tcp := map[string][]byte{
		"query other": []byte(dnsTCP(dnsTestPack(t, otherQ))),
		"HTTP":        []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"TLS":         []byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
	}
	for name, p := range tcp {
		f := upnpTCPFlow("10.0.0.2:40000", "10.0.0.1:53")
		seg := &Segment{Dir: ToServer, Payload: p}
		if n := testing.AllocsPerRun(100, func() { d.Inspect(ctx, f, seg) }); n != 0 {
			t.Errorf("TCP %s: %v allocs", name, n)
		}
	}
}

func BenchmarkDNSDetector(b *testing.B) {
	d := NewDNSDetector(DNSOptions{})
	q := dnsTestQuery(b, "teredo.ipv6.microsoft.com", dns.TypeA)
	a := dnsTestAnswer(b, q, "teredo.ipv6.microsoft.com. 300 IN CNAME teredo.ipv6.microsoft.com.nsatc.net.",
		"teredo.ipv6.microsoft.com.nsatc.net. 60 IN A 65.55.158.118")
	other := dnsTestQuery(b, "www.example.com", dns.TypeA)
	otherA := dnsTestAnswer(b, other, "www.example.com. 60 IN A 192.0.2.80")
	run := func(name string, p []byte, fresh bool) {
		b.Run(name, func(b *testing.B) {
			ctx := newUPnPTestContext()
			f := upnpUDPFlow("10.0.0.2:40000", "10.0.0.1:53")
			seg := &Segment{Dir: ToClient, Payload: p, Index: 1}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if fresh {
					f = upnpUDPFlow("10.0.0.2:40000", "10.0.0.1:53")
				}
				d.Inspect(ctx, f, seg)
			}
		})
	}
	run("match-teredo-answer", dnsTestPack(b, a), true)
	run("nomatch-other-answer", dnsTestPack(b, otherA), false)
	run("nomatch-other-query", dnsTestPack(b, other), false)
	run("nomatch-quic", []byte(upnpQUICInitial), false)
}

// FuzzDNS feeds arbitrary bytes as UDP messages and as a TCP stream split
// where the input says, with and without caching every name.
func FuzzDNS(f *testing.F) {
	q := dnsTestQuery(f, "teredo.ipv6.microsoft.com", dns.TypeA)
	f.Add(dnsTestPack(f, q))
	f.Add(dnsTestPack(f, dnsTestAnswer(f, q, "teredo.ipv6.microsoft.com. 300 IN CNAME x.nsatc.net.", "x.nsatc.net. 60 IN A 65.55.158.118")))
	f.Add([]byte(dnsTCP(dnsTestPack(f, dnsTestQuery(f, "pnrpv2.ipv6.microsoft.com", dns.TypeAAAA)))))
	f.Add([]byte("\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x06teredo\xc0\x0c\x00\x01\x00\x01"))
	dets := []*DNSDetector{NewDNSDetector(DNSOptions{}), NewDNSDetector(DNSOptions{CacheAllNames: true})}
	f.Fuzz(func(t *testing.T, data []byte) {
		split := 0
		if len(data) > 0 {
			split = int(data[len(data)-1]) * len(data) / 256
		}
		for _, d := range dets {
			ctx := newUPnPTestContext()
			u := upnpUDPFlow("10.0.0.2:40000", "10.0.0.1:53")
			upnpRun(ctx, d, u, []upnpStep{{data: string(data)}, {dir: ToClient, data: string(data)}})
			tf := upnpTCPFlow("10.0.0.2:40000", "10.0.0.1:53")
			upnpRun(ctx, d, tf, []upnpStep{{data: string(data[:split])}, {data: string(data[split:])}, {dir: ToClient, data: string(data)}})
			if ev, ok := u.GetEvidence("dns").(*DNSEvidence); ok && (len(ev.Queries) > dnsMaxQueries || len(ev.Answers) > dnsMaxAnswers) {
				t.Fatalf("evidence unbounded: %d queries %d answers", len(ev.Queries), len(ev.Answers))
			}
		}
	})
}
