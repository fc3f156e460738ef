package classify

import (
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rasentry/rasentry/internal/testutil"
)

// tpHex decodes whitespace-separated hex (protocols.md vector layout).
func tpHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Teredo vectors from protocols.md §3.10.
const (
	teredoVecRS = `00 01 00 00 01 23 45 67 89 ab cd ef 00
		60 00 00 00 00 08 3a ff
		fe 80 00 00 00 00 00 00 00 00 ff ff ff ff ff ff
		ff 02 00 00 00 00 00 00 00 00 00 00 00 00 00 02
		85 00 7d 37 00 00 00 00`
	teredoVecRSCone = `00 01 00 00 01 23 45 67 89 ab cd ef 00
		60 00 00 00 00 08 3a ff
		fe 80 00 00 00 00 00 00 80 00 54 45 52 45 44 4f
		ff 02 00 00 00 00 00 00 00 00 00 00 00 00 00 02
		85 00 12 5d 00 00 00 00`
	teredoVecRA = `00 01 00 00 01 23 45 67 89 ab cd ef 00
		00 00 63 bf 34 ff 8e fa
		60 00 00 00 00 30 3a ff
		fe 80 00 00 00 00 00 00 80 00 f2 27 be c9 1c 1b
		fe 80 00 00 00 00 00 00 00 00 ff ff ff ff ff ff
		86 00 58 39 40 00 07 08 00 00 00 00 00 00 07 d0
		03 04 40 c0 ff ff ff ff ff ff ff ff 00 00 00 00
		20 01 00 00 41 36 e3 78 00 00 00 00 00 00 00 00`
	teredoVecBubble = `60 00 00 00 00 00 3b 15
		20 01 00 00 41 36 e3 78 80 00 63 bf 34 ff 8e fa
		20 01 00 00 41 36 e3 78 80 00 63 bf 3f ff fd d2`
)

// teredoVecRACone is the RA vector sent to the cone link-local address
// fe80::8000:5445:5245:444f (checksum not recomputed: nothing checks it).
func teredoVecRACone(t testing.TB) []byte {
	b := tpHex(t, teredoVecRA)
	copy(b[21+24:21+40], tpHex(t, "fe 80 00 00 00 00 00 00 80 00 54 45 52 45 44 4f"))
	return b
}

var (
	teredoA      = netip.MustParseAddr("2001:0:4136:e378:8000:63bf:34ff:8efa") // 203.0.113.5:40000 via 65.54.227.120
	teredoB      = netip.MustParseAddr("2001:0:4136:e378:8000:63bf:3fff:fdd2") // 192.0.2.45:40000
	teredoServer = netip.MustParseAddr("65.54.227.120")
	tpNativeV6   = netip.MustParseAddr("2001:4860:0:2001::68")
)

func TestParseTeredoVectors(t *testing.T) {
	rs, ok := ParseTeredo(tpHex(t, teredoVecRS))
	if !ok || !rs.Auth || rs.Origin || !rs.RouterSolicitation || rs.RouterAdvertisement || rs.Bubble {
		t.Fatalf("RS: ok=%v %+v", ok, rs)
	}
	if rs.Nonce != [8]byte{1, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef} || rs.Confirmation != 0 ||
		rs.AuthIDLen != 0 || rs.AuthValueLen != 0 {
		t.Errorf("RS auth: %+v", rs)
	}
	if rs.Src != netip.MustParseAddr("fe80::ffff:ffff:ffff") || rs.Dst != netip.MustParseAddr("ff02::2") ||
		rs.NextHeader != 58 || rs.HopLimit != 255 || rs.PayloadLength != 8 || rs.ICMPv6Type != 133 ||
		len(rs.IPv6) != 48 || len(rs.Trailer) != 0 {
		t.Errorf("RS inner: %+v", rs)
	}
	if _, ok := ParseTeredo(tpHex(t, teredoVecRSCone)); !ok {
		t.Error("cone RS rejected")
	}

	ra, ok := ParseTeredo(tpHex(t, teredoVecRA))
	if !ok || !ra.Auth || !ra.Origin || !ra.RouterAdvertisement || ra.RouterSolicitation {
		t.Fatalf("RA: ok=%v %+v", ok, ra)
	}
	if ra.OriginPort != 40000 || ra.OriginAddr != netip.MustParseAddr("203.0.113.5") {
		t.Errorf("RA origin %v:%d, want 203.0.113.5:40000", ra.OriginAddr, ra.OriginPort)
	}
	if len(ra.IPv6) != 88 || ra.ICMPv6Type != 134 {
		t.Errorf("RA inner: %+v", ra)
	}
	// The prefix names the server; with the cone link-local the client's
	// address is the §3.4 worked example.
	if a, ok := teredoAddrFromRA(&ra); !ok || a != netip.MustParseAddr("2001:0:4136:e378:0:63bf:34ff:8efa") {
		t.Errorf("restricted RA address %v %v", a, ok)
	}
	raCone, _ := ParseTeredo(teredoVecRACone(t))
	if a, ok := teredoAddrFromRA(&raCone); !ok || a != teredoA {
		t.Errorf("cone RA address %v %v, want %v", a, ok, teredoA)
	}

	bub, ok := ParseTeredo(tpHex(t, teredoVecBubble))
	if !ok || !bub.Bubble || bub.Auth || bub.Origin || bub.NextHeader != 59 || bub.PayloadLength != 0 ||
		bub.Src != teredoA || bub.Dst != teredoB {
		t.Fatalf("bubble: ok=%v %+v", ok, bub)
	}
	peer, ok := DecodeTeredoAddress(bub.Dst)
	if !ok || peer.MappedAddr != netip.MustParseAddr("192.0.2.45") || peer.MappedPort != 40000 {
		t.Errorf("peer B %+v", peer)
	}
}

func TestParseTeredoForms(t *testing.T) {
	bubble := tpHex(t, teredoVecBubble)
	cases := []struct {
		name    string
		payload []byte
		ok      bool
		trailer int
	}{
		{"bubble", bubble, true, 0},
		{"bubble with trailer (zeek teredo_bubble_with_payload)", append(slices.Clone(bubble), "1234"...), true, 4},
		{"origin + bubble", append(tpHex(t, "00 00 7f 7b ac 55 fe d9"), bubble...), true, 0},
		{"unknown indicator 00 02", append(tpHex(t, "00 02 00 00"), bubble...), false, 0},
		{"payload length beyond the datagram", tpHex(t, strings.Replace(teredoVecBubble, "60 00 00 00 00 00 3b", "60 00 00 00 00 08 3b", 1)), false, 0},
		{"version 4", tpHex(t, strings.Replace(teredoVecBubble, "60 00", "40 00", 1)), false, 0},
		{"hop limit 0 on a bubble (Windows, zeek Teredo.pcap)", tpHex(t, strings.Replace(teredoVecBubble, "3b 15", "3b 00", 1)), true, 0},
		{"hop limit 0 on an RS", tpHex(t, strings.Replace(teredoVecRS, "3a ff", "3a 00", 1)), false, 0},
		{"hop-by-hop without room", tpHex(t, strings.Replace(teredoVecBubble, "3b 15", "00 15", 1)), false, 0},
		{"truncated IPv6 header", bubble[:39], false, 0},
		{"auth indicator cut", tpHex(t, "00 01 00 00 01 23"), false, 0},
		{"auth lengths beyond the datagram", append(tpHex(t, "00 01 ff ff"), bubble...), false, 0},
		{"origin cut", tpHex(t, "00 00 12 34"), false, 0},
		{"origin twice", append(tpHex(t, "00 00 7f 7b ac 55 fe d9 00 00 7f 7b ac 55 fe d9"), bubble...), false, 0},
		{"auth after origin", append(tpHex(t, "00 00 7f 7b ac 55 fe d9 00 01 00 00 01 23 45 67 89 ab cd ef 00"), bubble...), false, 0},
		{"empty", nil, false, 0},
	}
	for _, c := range cases {
		p, ok := ParseTeredo(c.payload)
		if ok != c.ok {
			t.Errorf("%s: ok=%v, want %v", c.name, ok, c.ok)
			continue
		}
		if ok && len(p.Trailer) != c.trailer {
			t.Errorf("%s: trailer %d bytes, want %d", c.name, len(p.Trailer), c.trailer)
		}
	}
}

func TestDecodeTeredoAddress(t *testing.T) {
	a, ok := DecodeTeredoAddress(teredoA)
	if !ok {
		t.Fatal("not decoded")
	}
	want := TeredoAddress{Server: teredoServer, Flags: 0x8000, Cone: true,
		MappedAddr: netip.MustParseAddr("203.0.113.5"), MappedPort: 40000}
	if a != want {
		t.Errorf("got %+v, want %+v", a, want)
	}
	for _, s := range []string{"2001:db8::1", "3ffe:831f::1", "::ffff:1.2.3.4", "1.2.3.4", "2002:c288:1c4c::c288:1c4c"} {
		if _, ok := DecodeTeredoAddress(netip.MustParseAddr(s)); ok {
			t.Errorf("%s decoded as Teredo", s)
		}
	}
	if _, ok := DecodeTeredoAddress(netip.Addr{}); ok {
		t.Error("zero address decoded")
	}
}

// tpPkt is one datagram of a detector test: its direction and payload.
type tpPkt struct {
	dir     Direction
	payload []byte
}

func tpContext() *Context {
	c := &Counters{}
	return &Context{Now: time.Unix(1700000000, 0), Expect: NewExpectTable(0, c), Names: NewNameCache(0, c),
		Sessions: NewSessionTable(c), Counters: c}
}

// tpFeed runs a detector over the packets of a flow as the classifier would,
// stopping when it answers Done or its budget is spent.
func tpFeed(ctx *Context, d Detector, f *Flow, pkts []tpPkt) (done bool) {
	var fed [2]int
	var idx [2]int
	for _, p := range pkts {
		if fed[p.dir] >= d.Budget() {
			return true
		}
		seg := &Segment{Dir: p.dir, Payload: p.payload, Time: ctx.Now, Src: f.Client, Dst: f.Server, Index: idx[p.dir]}
		if p.dir == ToClient {
			seg.Src, seg.Dst = f.Server, f.Client
		}
		idx[p.dir]++
		fed[p.dir] += len(p.payload)
		if d.Inspect(ctx, f, seg) == Done {
			return true
		}
	}
	return false
}

func tpUDPFlow(client, server string) *Flow {
	return &Flow{Proto: ProtoUDP, Client: netip.MustParseAddrPort(client), Server: netip.MustParseAddrPort(server)}
}

func TestTeredoDetector(t *testing.T) {
	rs := tpHex(t, teredoVecRS)
	ra := tpHex(t, teredoVecRA)
	bubble := tpHex(t, teredoVecBubble)
	// Relay traffic as in zeek's Teredo.pcap: the client's direct bubble
	// and an ICMPv6 echo reply from a native host through the relay.
	relayBubble := testutil.TeredoBubble(testutil.TeredoEncap{Src: teredoA, Dst: tpNativeV6})
	echoReply := testutil.TeredoPayload(testutil.TeredoEncap{Src: tpNativeV6, Dst: teredoA}, 58, tpHex(t, "81 00 00 00 00 01 00 01"))
	tcpSyn := testutil.TeredoPayload(testutil.TeredoEncap{Src: teredoA, Dst: tpNativeV6}, 6, make([]byte, 20))
	originBubble := testutil.TeredoBubble(testutil.TeredoEncap{Origin: netip.MustParseAddrPort("83.170.1.38:32900"),
		Src: netip.MustParseAddr("fe80::708d:fe83:4114:a512"), Dst: teredoA})
	unrelatedBubble := testutil.TeredoBubble(testutil.TeredoEncap{Src: netip.MustParseAddr("2001:0:102:304:8000:1111:2222:3333"), Dst: teredoB})
	plainV6 := testutil.TeredoPayload(testutil.TeredoEncap{Src: netip.MustParseAddr("2001:db8::1"), Dst: netip.MustParseAddr("2001:db8::2")}, 17, make([]byte, 8))

	type want struct {
		teredo, qual bool
		decap        bool
		server       string
		client       string
		mapped       string
		origin       bool
		bubbles      uint32
		inner        []string
		malformed    uint64
	}
	cases := []struct {
		name           string
		client, server string
		pkts           []tpPkt
		want           want
	}{
		{"qualification RS to 3544", "192.0.2.45:40000", "65.54.227.120:3544", []tpPkt{{ToServer, rs}},
			want{teredo: true, qual: true, decap: true, server: "65.54.227.120", inner: []string{"icmpv6"}}},
		{"qualification RS/RA", "10.0.0.5:40000", "65.54.227.120:3544", []tpPkt{{ToServer, rs}, {ToClient, ra}},
			want{teredo: true, qual: true, decap: true, server: "65.54.227.120", client: "2001:0:4136:e378:0:63bf:34ff:8efa",
				mapped: "203.0.113.5:40000", origin: true, inner: []string{"icmpv6"}}},
		{"lone RA from a secondary server (flow starts at the server)", "65.54.227.121:3544", "10.0.0.5:40000", []tpPkt{{ToServer, teredoVecRACone(t)}},
			want{teredo: true, qual: true, decap: true, server: "65.54.227.121", client: teredoA.String(),
				mapped: "203.0.113.5:40000", origin: true, inner: []string{"icmpv6"}}},
		{"lone direct bubble to the peer's mapping (NAT refuses it)", "10.0.0.5:40000", "192.0.2.45:40000", []tpPkt{{ToServer, bubble}},
			want{teredo: true, decap: true, server: "65.54.227.120", client: teredoA.String(), mapped: "203.0.113.5:40000",
				bubbles: 1, inner: []string{"no-next-header"}}},
		{"relay flow off 3544, both directions", "192.168.2.16:3797", "83.170.1.38:32900",
			[]tpPkt{{ToServer, relayBubble}, {ToClient, echoReply}, {ToServer, tcpSyn}},
			want{teredo: true, decap: true, server: "65.54.227.120", client: teredoA.String(), mapped: "203.0.113.5:40000",
				bubbles: 1, inner: []string{"no-next-header", "icmpv6", "tcp"}}},
		{"relay flow with odd packets before the proof", "192.168.2.16:3797", "83.170.1.38:32900",
			[]tpPkt{{ToServer, relayBubble}, {ToServer, []byte("odd")}, {ToServer, []byte("odd")}, {ToClient, echoReply}},
			want{teredo: true, decap: true, server: "65.54.227.120", client: teredoA.String(), mapped: "203.0.113.5:40000",
				bubbles: 1, inner: []string{"no-next-header", "icmpv6"}}},
		{"relay-like flow that turns out not to be Teredo", "192.168.2.16:3797", "83.170.1.38:32900",
			[]tpPkt{{ToServer, relayBubble}, {ToServer, []byte("odd")}, {ToServer, []byte("odd")}, {ToServer, []byte("odd")}, {ToClient, echoReply}},
			want{}},
		{"relay flow, one direction only", "192.168.2.16:3797", "83.170.1.38:32900",
			[]tpPkt{{ToServer, relayBubble}, {ToServer, tcpSyn}}, want{}},
		{"origin indication off 3544", "83.170.1.38:32900", "192.168.2.16:3797", []tpPkt{{ToServer, originBubble}},
			want{teredo: true, decap: true, server: "65.54.227.120", client: teredoA.String(), mapped: "203.0.113.5:40000",
				origin: true, bubbles: 1, inner: []string{"no-next-header"}}},
		{"bubble between unrelated Teredo peers off 3544", "10.0.0.5:5000", "10.0.0.6:6000", []tpPkt{{ToServer, unrelatedBubble}}, want{}},
		{"bubble to 3544 (indirect, via the peer's server)", "10.0.0.5:5000", "65.54.227.120:3544", []tpPkt{{ToServer, unrelatedBubble}},
			want{teredo: true, decap: true, server: "65.54.227.120", client: "2001:0:102:304:8000:1111:2222:3333",
				mapped: "221.221.204.204:61166", bubbles: 1, inner: []string{"no-next-header"}}},
		{"valid IPv6 but no Teredo address on 3544", "10.0.0.5:5000", "65.54.227.120:3544", []tpPkt{{ToServer, plainV6}},
			want{malformed: 1}},
		{"unknown indicator on 3544", "10.0.0.5:5000", "65.54.227.120:3544", []tpPkt{{ToServer, append(tpHex(t, "00 02 00 00"), bubble...)}}, want{}},
		{"DNS query", "10.0.0.5:5353", "10.0.0.1:53", []tpPkt{{ToServer, tpHex(t, "12 34 01 00 00 01 00 00 00 00 00 00 03 77 77 77 00 00 01 00 01")}}, want{}},
		{"QUIC initial", "10.0.0.5:50000", "10.0.0.1:443", []tpPkt{{ToServer, append(tpHex(t, "c3 00 00 00 01 08"), make([]byte, 1200)...)}}, want{}},
		{"random UDP with a 6 nibble", "10.0.0.5:50000", "10.0.0.1:5000", []tpPkt{{ToServer, append(tpHex(t, "6f 3a 99 01 00 10 06 40"), make([]byte, 60)...)}}, want{}},
		{"Teredo bytes over IPv6 UDP", "[2001:db8::1]:40000", "[2001:db8::2]:3544", []tpPkt{{ToServer, rs}}, want{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := tpContext()
			d := NewTeredoDetector(TeredoOptions{})
			f := tpUDPFlow(c.client, c.server)
			tpFeed(ctx, d, f, c.pkts)
			if got := f.Labels.Has(LabelTeredo); got != c.want.teredo {
				t.Fatalf("teredo label %v, want %v (labels %v)", got, c.want.teredo, f.Labels.Strings())
			}
			if got := f.Labels.Has(LabelTeredoQualification); got != c.want.qual {
				t.Errorf("qualification label %v, want %v", got, c.want.qual)
			}
			if got := f.Decapsulation() == DecapTeredo; got != c.want.decap {
				t.Errorf("decap %v, want %v", got, c.want.decap)
			}
			if got := ctx.Counters.Malformed()["teredo"]; got != c.want.malformed {
				t.Errorf("malformed %d, want %d", got, c.want.malformed)
			}
			if !c.want.teredo {
				if f.Labels != 0 || f.AppProto != AppNone || f.GetEvidence("teredo") != nil {
					t.Errorf("near miss labelled: %v %q", f.Labels.Strings(), f.AppProto)
				}
				return
			}
			if f.AppProto != AppTeredo || f.LabelConfidence(LabelTeredo) != ConfidenceHigh {
				t.Errorf("app_proto %q confidence %v", f.AppProto, f.LabelConfidence(LabelTeredo))
			}
			ev, _ := f.GetEvidence("teredo").(*TeredoEvidence)
			if ev == nil {
				t.Fatal("no evidence")
			}
			if s := tpAddrString(ev.Server); s != c.want.server {
				t.Errorf("server %q, want %q", s, c.want.server)
			}
			if s := tpAddrString(ev.ClientTeredoAddr); s != c.want.client {
				t.Errorf("client_teredo_addr %q, want %q", s, c.want.client)
			}
			mapped := ""
			if ev.MappedAddr.IsValid() {
				mapped = netip.AddrPortFrom(ev.MappedAddr, ev.MappedPort).String()
			}
			if mapped != c.want.mapped {
				t.Errorf("mapped %q, want %q", mapped, c.want.mapped)
			}
			if ev.OriginIndication != c.want.origin || ev.Qualification != c.want.qual || ev.Bubbles != c.want.bubbles {
				t.Errorf("origin %v qualification %v bubbles %d", ev.OriginIndication, ev.Qualification, ev.Bubbles)
			}
			if !slices.Equal(ev.InnerProtocols, c.want.inner) {
				t.Errorf("inner %v, want %v", ev.InnerProtocols, c.want.inner)
			}
			if _, err := json.Marshal(ev); err != nil {
				t.Error(err)
			}
		})
	}
}

func tpAddrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func TestTeredoEvidenceJSON(t *testing.T) {
	ctx := tpContext()
	ctx.Names.Add(teredoServer, "teredo.ipv6.microsoft.com", ctx.Now, time.Hour)
	f := tpUDPFlow("10.0.0.5:40000", "65.54.227.120:3544")
	tpFeed(ctx, NewTeredoDetector(TeredoOptions{}), f, []tpPkt{{ToServer, tpHex(t, teredoVecRSCone)}, {ToClient, teredoVecRACone(t)},
		{ToServer, tpHex(t, teredoVecBubble)}})
	b, err := json.Marshal(f.GetEvidence("teredo"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"server":"65.54.227.120","server_name":"teredo.ipv6.microsoft.com",` +
		`"client_teredo_addr":"2001:0:4136:e378:8000:63bf:34ff:8efa","mapped_addr":"203.0.113.5","mapped_port":40000,` +
		`"cone":true,"bubbles":1,"qualification":true,"origin_indication":true,"inner_protocols":["icmpv6","no-next-header"]}`
	if string(b) != want {
		t.Errorf("evidence\n got %s\nwant %s", b, want)
	}
	// An empty record keeps the counters and drops unknown addresses.
	b, _ = json.Marshal(&TeredoEvidence{})
	if string(b) != `{"bubbles":0,"qualification":false,"origin_indication":false}` {
		t.Errorf("empty evidence %s", b)
	}
}

// TestTeredoDetectorKeepsCounting checks a labelled flow keeps being
// inspected (bubbles counted) until the budget, and counts broken packets.
func TestTeredoDetectorKeepsCounting(t *testing.T) {
	ctx := tpContext()
	d := NewTeredoDetector(TeredoOptions{Budget: 400})
	f := tpUDPFlow("10.0.0.5:40000", "65.54.227.120:3544")
	bubble := tpHex(t, teredoVecBubble)
	var pkts []tpPkt
	for range 20 {
		pkts = append(pkts, tpPkt{ToServer, bubble})
	}
	pkts = append(pkts[:3], append([]tpPkt{{ToServer, []byte("junk")}}, pkts[3:]...)...)
	if !tpFeed(ctx, d, f, pkts) {
		t.Error("budget did not end inspection")
	}
	ev := f.GetEvidence("teredo").(*TeredoEvidence)
	if ev.Bubbles != 10 { // inspected while under 400 bytes: 10 bubbles and the junk
		t.Errorf("bubbles %d, want 10", ev.Bubbles)
	}
	if ctx.Counters.Malformed()["teredo"] != 1 {
		t.Errorf("malformed %v", ctx.Counters.Malformed())
	}
}

func TestTeredoNoMatchAllocs(t *testing.T) {
	ctx := tpContext()
	d := NewTeredoDetector(TeredoOptions{})
	payloads := [][]byte{
		tpHex(t, "12 34 01 00 00 01 00 00 00 00 00 00 03 77 77 77 00 00 01 00 01"),
		append(tpHex(t, "6f 3a 99 01 00 10 06 40"), make([]byte, 60)...),
		append(tpHex(t, "c3 00 00 00 01 08"), make([]byte, 1200)...),
		testutil.TeredoPayload(testutil.TeredoEncap{Src: netip.MustParseAddr("2001:db8::1"), Dst: netip.MustParseAddr("2001:db8::2")}, 17, make([]byte, 8)),
	}
	for i, p := range payloads {
		f := tpUDPFlow("10.0.0.5:5000", "10.0.0.1:3544")
		seg := &Segment{Dir: ToServer, Payload: p, Src: f.Client, Dst: f.Server}
		if n := testing.AllocsPerRun(100, func() {
			if d.Inspect(ctx, f, seg) != Done {
				t.Fatal("not done")
			}
		}); n != 0 {
			t.Errorf("payload %d: %v allocs on the no-match path", i, n)
		}
	}
	for _, v := range []string{teredoVecRA, teredoVecBubble, teredoVecRS} {
		b := tpHex(t, v)
		if n := testing.AllocsPerRun(100, func() { ParseTeredo(b) }); n != 0 {
			t.Errorf("ParseTeredo: %v allocs", n)
		}
	}
}

func FuzzTeredo(f *testing.F) {
	for _, v := range []string{teredoVecRS, teredoVecRSCone, teredoVecRA, teredoVecBubble} {
		f.Add(tpHex(f, v))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, ok := ParseTeredo(b)
		if ok {
			if len(p.IPv6) < 40 || len(p.IPv6) != 40+int(p.PayloadLength) || p.IPv6[0]>>4 != 6 {
				t.Fatalf("bad inner packet %+v", p)
			}
			if len(p.IPv6)+len(p.Trailer) > len(b) {
				t.Fatal("inner packet beyond the payload")
			}
			if p.Bubble && (p.NextHeader != 59 || p.PayloadLength != 0) {
				t.Fatal("bubble with a payload")
			}
			if p.RouterAdvertisement {
				teredoAddrFromRA(&p)
			}
		}
		// The detector in both directions, on and off port 3544.
		ctx := tpContext()
		d := NewTeredoDetector(TeredoOptions{})
		for _, fl := range []*Flow{tpUDPFlow("10.0.0.5:40000", "65.54.227.120:3544"), tpUDPFlow("203.0.113.5:40000", "192.0.2.45:40000")} {
			tpFeed(ctx, d, fl, []tpPkt{{ToServer, b}, {ToClient, b}, {ToServer, b}})
			if fl.Labels.Has(LabelTeredo) && !ok {
				t.Fatal("labelled a flow whose packets do not parse")
			}
		}
	})
}

func BenchmarkParseTeredo(b *testing.B) {
	p := tpHex(b, teredoVecRA)
	b.ReportAllocs()
	for b.Loop() {
		ParseTeredo(p)
	}
}

func BenchmarkTeredoDetector(b *testing.B) {
	bubble := tpHex(b, teredoVecBubble)
	ra := tpHex(b, teredoVecRA)
	dns := tpHex(b, "12 34 01 00 00 01 00 00 00 00 00 00 03 77 77 77 00 00 01 00 01")
	d := NewTeredoDetector(TeredoOptions{})
	b.Run("match", func(b *testing.B) {
		ctx := tpContext()
		b.ReportAllocs()
		for b.Loop() {
			f := tpUDPFlow("10.0.0.5:40000", "65.54.227.120:3544")
			tpFeed(ctx, d, f, []tpPkt{{ToServer, bubble}, {ToClient, ra}, {ToServer, bubble}})
		}
	})
	b.Run("no-match", func(b *testing.B) {
		ctx := tpContext()
		f := tpUDPFlow("10.0.0.5:5353", "10.0.0.1:53")
		seg := &Segment{Dir: ToServer, Payload: dns, Src: f.Client, Dst: f.Server}
		b.ReportAllocs()
		for b.Loop() {
			d.Inspect(ctx, f, seg)
		}
	})
	b.Run("no-match-ipv6-nibble", func(b *testing.B) {
		ctx := tpContext()
		f := tpUDPFlow("10.0.0.5:5353", "10.0.0.1:3544")
		p := testutil.TeredoPayload(testutil.TeredoEncap{Src: netip.MustParseAddr("2001:db8::1"), Dst: netip.MustParseAddr("2001:db8::2")}, 17, make([]byte, 8))
		seg := &Segment{Dir: ToServer, Payload: p, Src: f.Client, Dst: f.Server}
		b.ReportAllocs()
		for b.Loop() {
			d.Inspect(ctx, f, seg)
		}
	})
}
