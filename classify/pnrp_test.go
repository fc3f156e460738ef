package classify

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/rasentry/rasentry/internal/testutil"
)

// PNRP vectors from protocols.md §5.7.
const (
	vecPNRPAck     = `00 10 00 0c 51 04 00 09 11 22 33 44 00 18 00 08 aa bb cc dd`
	vecPNRPSolicit = `00 10 00 0c 51 04 00 01 01 02 03 04
		00 44 00 06 00 00 00 00
		00 92 00 18 56 17 8b 86 a5 7f ac 22 89 9a 99 64 18 5c 2c c9 6e 7d a5 89`
	vecPNRPAuthority = `00 10 00 0c 51 04 00 08 55 66 77 88
		00 18 00 08 01 02 03 04
		00 98 00 08 00 28 00 00
		00 40 00 06 00 00 00 00
		00 85 00 1e 00 09 00 1a 00 84 00 02
		00 52 00 41 00 43 00 6f 00 6e 00 74 00 61 00 63 00 74 00 00`
	vecPNRPAuthorityLE = `00 10 00 0c 51 04 00 08 55 66 77 88
		00 18 00 08 01 02 03 04
		00 98 00 08 00 28 00 00
		00 40 00 06 00 00 00 00
		00 85 00 1e 00 09 00 1a 00 84 00 02
		52 00 41 00 43 00 6f 00 6e 00 74 00 61 00 63 00 74 00 00 00`
)

var (
	pnrpNodeA = netip.MustParseAddr("2001:db8:1::a")
	pnrpNodeB = netip.MustParseAddr("2001:db8:2::b")
)

func TestParsePNRPVectors(t *testing.T) {
	ack, ok := ParsePNRP(tpHex(t, vecPNRPAck))
	if !ok || ack.Type != PNRPAck || ack.ID != 0x11223344 || !ack.HasAcked || ack.AckedID != 0xaabbccdd || ack.Fields != 1 {
		t.Errorf("ACK: ok=%v %+v", ok, ack)
	}
	sol, ok := ParsePNRP(tpHex(t, vecPNRPSolicit))
	if !ok || sol.Type != PNRPSolicit || sol.Fields != 2 {
		t.Errorf("SOLICIT: ok=%v %+v", ok, sol)
	}
	for _, v := range []string{vecPNRPAuthority, vecPNRPAuthorityLE} {
		m, ok := ParsePNRP(tpHex(t, v))
		if !ok || m.Type != PNRPAuthority || !m.Split || m.SplitSize != 40 || m.SplitOffset != 0 || m.AckedID != 0x01020304 ||
			!m.HasFlags || m.Cut || m.ExtendedPayload {
			t.Fatalf("AUTHORITY: ok=%v %+v", ok, m)
		}
		if s := m.ClassifierString(); s != "RAContact" {
			t.Errorf("classifier %q", s)
		}
		if !pnrpClassifierIs(m.Classifier, "RAContact") || !pnrpClassifierIs(m.Classifier, "racontact") || pnrpClassifierHex32(m.Classifier) {
			t.Error("classifier comparisons")
		}
	}
}

func TestParsePNRPBuilders(t *testing.T) {
	var nonce [16]byte
	id := testutil.PNRPIDFor("0", "x", [16]byte{})
	ep := netip.AddrPortFrom(pnrpNodeA, 3540)
	msgs := map[string][]byte{
		"solicit":   testutil.PNRPSolicitMessage(1, nonce),
		"advertise": testutil.PNRPAdvertiseMessage(2, 1, nonce, id, id, id),
		"request":   testutil.PNRPRequestMessage(3, nonce, id),
		"flood":     testutil.PNRPFloodMessage(4, id, 3540, pnrpNodeB, ep),
		"lookup":    testutil.PNRPLookupMessage(5, testutil.PNRPLookupSpec{Classifier: "c", ReasonCode: 2, Path: []netip.AddrPort{ep}}),
		"inquire":   testutil.PNRPInquireMessage(6, 0x1c, id),
		"authority": testutil.PNRPRAContactAuthority(7, 6, 100),
		"ack":       testutil.PNRPAckMessage(8, 7),
	}
	for name, b := range msgs {
		m, ok := ParsePNRP(b)
		if !ok {
			t.Errorf("%s: rejected % x", name, b)
			continue
		}
		if pnrpTypeName(m.Type) != strings.ToUpper(name) {
			t.Errorf("%s: type %s", name, pnrpTypeName(m.Type))
		}
	}
	m, _ := ParsePNRP(msgs["lookup"])
	if !m.HasLookupControls || m.ReasonCode != 2 {
		t.Errorf("lookup controls %+v", m)
	}
	m, _ = ParsePNRP(msgs["authority"])
	if m.ClassifierString() != "RAContact" || !m.ExtendedPayload || m.ExtendedPayloadLen != 100 || !m.CPA ||
		len(m.BinaryAuthority) != 20 || m.CPAFlags&pnrpCPABinaryAuthority == 0 {
		t.Errorf("authority %+v", m)
	}
}

func TestParsePNRPRejects(t *testing.T) {
	good := tpHex(t, vecPNRPSolicit)
	mod := func(i int, v byte) []byte { b := slices.Clone(good); b[i] = v; return b }
	cases := map[string][]byte{
		"short":                   good[:19],
		"field id":                mod(1, 0x11),
		"header length":           mod(3, 0x0d),
		"identifier":              mod(4, 0x52),
		"version 3":               mod(5, 0x03),
		"unknown type":            mod(7, 0x05),
		"field length < 4":        mod(15, 0x02),
		"field beyond the end":    mod(23, 0x30),
		"solicit controls size":   mod(15, 0x07),
		"hashed nonce size":       mod(23, 0x14),
		"header inside":           mod(21, 0x10),
		"non-zero trailing bytes": append(slices.Clone(good), 1, 2),
		"ack without acked field": tpHex(t, "00 10 00 0c 51 04 00 09 11 22 33 44 00 92 00 08 aa bb cc dd"),
		"authority without split": tpHex(t, "00 10 00 0c 51 04 00 08 11 22 33 44 00 18 00 08 aa bb cc dd"),
		"split offset not 1188k":  tpHex(t, "00 10 00 0c 51 04 00 08 11 22 33 44 00 18 00 08 aa bb cc dd 00 98 00 08 08 00 00 10 00 40 00 06"),
		"classifier count":        tpHex(t, strings.Replace(vecPNRPAuthority, "00 09 00 1a", "00 0a 00 1a", 1)),
		"classifier entry size":   tpHex(t, strings.Replace(vecPNRPAuthority, "00 84 00 02", "00 84 00 04", 1)),
		"dns":                     tpHex(t, "12 34 01 00 00 01 00 00 00 00 00 00 03 77 77 77 00 00 01 00 01"),
	}
	for name, b := range cases {
		if m, ok := ParsePNRP(b); ok {
			t.Errorf("%s: accepted %+v", name, m)
		}
	}
	// Zero padding after the last field is fine.
	if _, ok := ParsePNRP(append(slices.Clone(good), 0, 0)); !ok {
		t.Error("zero padding rejected")
	}
}

func TestPNRPDetector(t *testing.T) {
	var nonce [16]byte
	id := testutil.PNRPIDFor("0", "x", [16]byte{})
	ep := netip.AddrPortFrom(pnrpNodeA, 3540)
	hex32 := "0123456789ABCDEF0123456789ABCDEF"
	lookup := testutil.PNRPLookupMessage(5, testutil.PNRPLookupSpec{Classifier: hex32, ReasonCode: 0, Path: []netip.AddrPort{ep}})
	inquire := testutil.PNRPInquireMessage(6, 0x1c, id)
	authority := func(b testutil.PNRPAuthorityBuffer) [][]byte { return testutil.PNRPAuthorityMessages(7, 6, b.Encode()) }
	secureAuth := make([]byte, 20)
	unsecuredCPA := &testutil.PNRPCPA{Flags: testutil.PNRPCPAPayload}
	secureCPA := &testutil.PNRPCPA{Flags: testutil.PNRPCPAPayload, BinaryAuthority: secureAuth}
	bigCert := make([]byte, 1170) // pushes the classifier across the 1188-byte fragment boundary
	type want struct {
		pnrp       bool
		ra         Confidence
		types      []string
		classifier string
		peer       string
		ext        bool
		reason     string
		cloud      string
	}
	cases := []struct {
		name           string
		client, server string
		pkts           []tpPkt
		want           want
	}{
		{"sync conversation", "[2001:db8:1::a]:3540", "[2001:db8:2::b]:3540", []tpPkt{
			{ToServer, testutil.PNRPSolicitMessage(1, nonce)},
			{ToClient, testutil.PNRPAdvertiseMessage(2, 1, nonce, id)},
			{ToServer, testutil.PNRPRequestMessage(3, nonce, id)},
			{ToClient, testutil.PNRPFloodMessage(4, id, 3540, pnrpNodeB, ep)},
			{ToServer, testutil.PNRPAckMessage(5, 4)},
		}, want{pnrp: true, types: []string{"SOLICIT", "ADVERTISE", "REQUEST", "FLOOD", "ACK"}, cloud: "global"}},
		{"lookup, link-local", "[fe80::1]:3540", "[fe80::2]:3540", []tpPkt{{ToServer, lookup}},
			want{pnrp: true, types: []string{"LOOKUP"}, reason: "app-request", cloud: "link-local"}},
		{"RAContact (secure contact)", "[2001:0:4136:e378:8000:63bf:34ff:8efa]:3540", "[2001:db8:2::b]:3540", []tpPkt{
			{ToServer, inquire}, {ToClient, testutil.PNRPRAContactAuthority(7, 6, 64)},
		}, want{pnrp: true, ra: ConfidenceHigh, types: []string{"INQUIRE", "AUTHORITY"}, classifier: "RAContact",
			peer: "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3.RAContact", ext: true, cloud: "global"}},
		{"RAContact, little-endian", "[2001:db8:1::a]:3540", "[2001:db8:2::b]:3540", []tpPkt{
			{ToClient, authority(testutil.PNRPAuthorityBuffer{Classifier: "RAContact", ClassifierLE: true})[0]},
		}, want{pnrp: true, ra: ConfidenceHigh, types: []string{"AUTHORITY"}, classifier: "RAContact", cloud: "global"}},
		{"unsecured 32-hex with payload", "[2001:db8:1::a]:3540", "[2001:db8:2::b]:3540", []tpPkt{
			{ToClient, authority(testutil.PNRPAuthorityBuffer{Classifier: hex32, ExtendedPayload: make([]byte, 64), CPA: unsecuredCPA})[0]},
		}, want{pnrp: true, ra: ConfidenceMedium, types: []string{"AUTHORITY"}, classifier: hex32, peer: "0." + hex32, ext: true, cloud: "global"}},
		{"32-hex without CPA: the last fragment decides", "[2001:db8:1::a]:3540", "[2001:db8:2::b]:3540", []tpPkt{
			{ToClient, authority(testutil.PNRPAuthorityBuffer{Classifier: hex32, ExtendedPayload: make([]byte, 64)})[0]},
		}, want{pnrp: true, ra: ConfidenceMedium, types: []string{"AUTHORITY"}, classifier: hex32, ext: true, cloud: "global"}},
		{"32-hex without payload", "[2001:db8:1::a]:3540", "[2001:db8:2::b]:3540", []tpPkt{
			{ToClient, authority(testutil.PNRPAuthorityBuffer{Classifier: hex32, CPA: &testutil.PNRPCPA{}})[0]},
		}, want{pnrp: true, types: []string{"AUTHORITY"}, classifier: hex32, peer: "0." + hex32, cloud: "global"}},
		{"32-hex, secure name", "[2001:db8:1::a]:3540", "[2001:db8:2::b]:3540", []tpPkt{
			{ToClient, authority(testutil.PNRPAuthorityBuffer{Classifier: hex32, ExtendedPayload: make([]byte, 64), CPA: secureCPA})[0]},
		}, want{pnrp: true, types: []string{"AUTHORITY"}, classifier: hex32, peer: strings.Repeat("00", 20) + "." + hex32, ext: true, cloud: "global"}},
		{"lowercase hex is another application", "[2001:db8:1::a]:3540", "[2001:db8:2::b]:3540", []tpPkt{
			{ToClient, authority(testutil.PNRPAuthorityBuffer{Classifier: strings.ToLower(hex32), ExtendedPayload: make([]byte, 64), CPA: unsecuredCPA})[0]},
		}, want{pnrp: true, types: []string{"AUTHORITY"}, classifier: strings.ToLower(hex32), peer: "0." + strings.ToLower(hex32), ext: true, cloud: "global"}},
		{"other classifier", "[2001:db8:1::a]:3540", "[2001:db8:2::b]:3540", []tpPkt{
			{ToClient, authority(testutil.PNRPAuthorityBuffer{Classifier: "HomeGroup", ExtendedPayload: make([]byte, 8)})[0]},
		}, want{pnrp: true, types: []string{"AUTHORITY"}, classifier: "HomeGroup", ext: true, cloud: "global"}},
		{"RAContact in the second fragment", "[2001:db8:1::a]:3540", "[2001:db8:2::b]:3540",
			tpPktsOf(ToClient, authority(testutil.PNRPAuthorityBuffer{CertChain: make([]byte, 1500), Classifier: "RAContact", ExtendedPayload: make([]byte, 400), CPA: secureCPA})),
			want{pnrp: true, ra: ConfidenceHigh, types: []string{"AUTHORITY"}, classifier: "RAContact", peer: strings.Repeat("00", 20) + ".RAContact", ext: true, cloud: "global"}},
		{"RAContact cut by the fragment boundary", "[2001:db8:1::a]:3540", "[2001:db8:2::b]:3540",
			tpPktsOf(ToClient, authority(testutil.PNRPAuthorityBuffer{CertChain: bigCert, Classifier: "RAContact", ExtendedPayload: make([]byte, 400)})),
			want{pnrp: true, ra: ConfidenceHigh, types: []string{"AUTHORITY"}, classifier: "RAContact", ext: true, cloud: "global"}},
		{"32-hex cut by the boundary, CPA in the third fragment", "[2001:db8:1::a]:3540", "[2001:db8:2::b]:3540",
			tpPktsOf(ToClient, authority(testutil.PNRPAuthorityBuffer{CertChain: make([]byte, 1160), Classifier: hex32, ExtendedPayload: make([]byte, 1400), CPA: unsecuredCPA})),
			want{pnrp: true, ra: ConfidenceMedium, types: []string{"AUTHORITY"}, classifier: hex32, peer: "0." + hex32, ext: true, cloud: "global"}},
		{"fragments out of order are given up", "[2001:db8:1::a]:3540", "[2001:db8:2::b]:3540",
			tpReversed(tpPktsOf(ToClient, authority(testutil.PNRPAuthorityBuffer{CertChain: make([]byte, 1500), Classifier: "RAContact"}))),
			want{pnrp: true, types: []string{"AUTHORITY"}, cloud: "global"}},
		{"IPv4 flow", "10.0.0.1:3540", "10.0.0.2:3540", []tpPkt{{ToServer, lookup}}, want{}},
		{"source port 1024", "[2001:db8:1::a]:1024", "[2001:db8:2::b]:3540", []tpPkt{{ToServer, lookup}}, want{}},
		{"DNS over IPv6", "[2001:db8:1::a]:5353", "[2001:db8:2::b]:53", []tpPkt{{ToServer, tpHex(t, "12 34 01 00 00 01 00 00 00 00 00 00 03 77 77 77 00 00 01 00 01")}}, want{}},
		{"SSDP M-SEARCH", "[fe80::1]:50000", "[ff02::c]:1900", []tpPkt{{ToServer, []byte("M-SEARCH * HTTP/1.1\r\nHOST: [FF02::C]:1900\r\n\r\n")}}, want{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := tpContext()
			f := tpUDPFlow(c.client, c.server)
			tpFeed(ctx, NewPNRPDetector(PNRPOptions{}), f, c.pkts)
			if f.Labels.Has(LabelPNRP) != c.want.pnrp {
				t.Fatalf("pnrp label %v, want %v", f.Labels.Has(LabelPNRP), c.want.pnrp)
			}
			if got := f.LabelConfidence(LabelPNRPRAEasyConnect); got != c.want.ra {
				t.Errorf("easy connect confidence %v, want %v", got, c.want.ra)
			}
			if !c.want.pnrp {
				if f.Labels != 0 || f.AppProto != AppNone {
					t.Errorf("near miss labelled %v %q", f.Labels.Strings(), f.AppProto)
				}
				return
			}
			if f.AppProto != AppPNRP {
				t.Errorf("app_proto %q", f.AppProto)
			}
			ev, _ := f.GetEvidence("pnrp").(*PNRPEvidence)
			if ev == nil {
				t.Fatal("no evidence")
			}
			if !slices.Equal(ev.MessageTypes, c.want.types) || ev.Classifier != c.want.classifier || ev.PeerName != c.want.peer ||
				ev.ExtendedPayload != c.want.ext || ev.ReasonCode != c.want.reason || ev.Cloud != c.want.cloud {
				t.Errorf("evidence %+v\nwant %+v", *ev, c.want)
			}
			if n := ctx.Counters.Malformed()["pnrp"]; n != 0 {
				t.Errorf("malformed %d", n)
			}
		})
	}
}

func tpPktsOf(dir Direction, msgs [][]byte) []tpPkt {
	var out []tpPkt
	for _, m := range msgs {
		out = append(out, tpPkt{dir, m})
	}
	return out
}

func tpReversed(p []tpPkt) []tpPkt { slices.Reverse(p); return p }

func TestPNRPEvidenceJSON(t *testing.T) {
	ctx := tpContext()
	f := tpUDPFlow("[2001:db8:1::a]:3540", "[2001:db8:2::b]:3540")
	tpFeed(ctx, NewPNRPDetector(PNRPOptions{}), f, []tpPkt{
		{ToServer, testutil.PNRPLookupMessage(5, testutil.PNRPLookupSpec{Classifier: "RAContact", ReasonCode: 1})},
		{ToClient, testutil.PNRPRAContactAuthority(7, 6, 64)},
	})
	b, err := json.Marshal(f.GetEvidence("pnrp"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"message_types":["LOOKUP","AUTHORITY"],"classifier":"RAContact",` +
		`"peer_name":"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3.RAContact","cloud":"global","extended_payload":true,"reason_code":"registration"}`
	if string(b) != want {
		t.Errorf("evidence\n got %s\nwant %s", b, want)
	}
}

// TestPNRPInsideTeredo decapsulates a Teredo datagram as the classifier will
// and runs the PNRP detector on the inner flow.
func TestPNRPInsideTeredo(t *testing.T) {
	enc := testutil.TeredoEncap{Src: teredoA, Dst: pnrpNodeB}
	outer := testutil.TeredoUDP(enc, 3540, 3540, testutil.PNRPRAContactAuthority(7, 6, 64))
	ctx := tpContext()
	of := tpUDPFlow("192.0.2.45:40000", "65.54.227.120:3544")
	tpFeed(ctx, NewTeredoDetector(TeredoOptions{}), of, []tpPkt{{ToServer, outer}})
	if of.Decapsulation() != DecapTeredo {
		t.Fatal("outer flow not decapsulated")
	}
	p, ok := ParseTeredo(outer)
	if !ok || p.NextHeader != ProtoUDP {
		t.Fatalf("inner %+v", p)
	}
	udp := p.IPv6[40:]
	inner := &Flow{Proto: ProtoUDP, Depth: 1,
		Client: netip.AddrPortFrom(p.Src, uint16(udp[0])<<8|uint16(udp[1])),
		Server: netip.AddrPortFrom(p.Dst, uint16(udp[2])<<8|uint16(udp[3]))}
	tpFeed(ctx, NewPNRPDetector(PNRPOptions{}), inner, []tpPkt{{ToServer, udp[8:]}})
	if !inner.Labels.Has(LabelPNRPRAEasyConnect) || inner.LabelConfidence(LabelPNRPRAEasyConnect) != ConfidenceHigh {
		t.Errorf("inner labels %v", inner.Labels.Strings())
	}
	if of.Labels.Has(LabelPNRP) || !of.Labels.Has(LabelTeredo) {
		t.Errorf("outer labels %v", of.Labels.Strings())
	}
	if ev := of.GetEvidence("teredo").(*TeredoEvidence); !slices.Equal(ev.InnerProtocols, []string{"udp"}) {
		t.Errorf("outer inner protocols %v", ev.InnerProtocols)
	}
}

func TestPNRPMalformedCounted(t *testing.T) {
	ctx := tpContext()
	f := tpUDPFlow("[2001:db8:1::a]:3540", "[2001:db8:2::b]:3540")
	bad := tpHex(t, strings.Replace(vecPNRPSolicit, "00 92 00 18", "00 92 00 19", 1))
	if done := tpFeed(ctx, NewPNRPDetector(PNRPOptions{}), f, []tpPkt{{ToServer, bad}, {ToServer, tpHex(t, vecPNRPAck)}}); done {
		t.Error("gave up on a PNRP header")
	}
	if ctx.Counters.Malformed()["pnrp"] != 1 || !f.Labels.Has(LabelPNRP) {
		t.Errorf("malformed %v labels %v", ctx.Counters.Malformed(), f.Labels.Strings())
	}
}

func TestPNRPNoMatchAllocs(t *testing.T) {
	ctx := tpContext()
	d := NewPNRPDetector(PNRPOptions{})
	payloads := [][]byte{
		tpHex(t, "12 34 01 00 00 01 00 00 00 00 00 00 03 77 77 77 00 00 01 00 01"),
		[]byte("M-SEARCH * HTTP/1.1\r\nHOST: [FF02::C]:1900\r\n\r\n"),
		tpHex(t, strings.Replace(vecPNRPAck, "51 04", "51 03", 1)),
	}
	for i, p := range payloads {
		f := tpUDPFlow("[2001:db8:1::a]:3540", "[2001:db8:2::b]:3540")
		seg := &Segment{Dir: ToServer, Payload: p, Src: f.Client, Dst: f.Server}
		if n := testing.AllocsPerRun(100, func() {
			if d.Inspect(ctx, f, seg) != Done {
				t.Fatal("not done")
			}
		}); n != 0 {
			t.Errorf("payload %d: %v allocs", i, n)
		}
	}
	for _, v := range []string{vecPNRPAck, vecPNRPSolicit, vecPNRPAuthority} {
		b := tpHex(t, v)
		if n := testing.AllocsPerRun(100, func() { ParsePNRP(b) }); n != 0 {
			t.Errorf("ParsePNRP: %v allocs", n)
		}
	}
	m, _ := ParsePNRP(tpHex(t, vecPNRPAuthority))
	if n := testing.AllocsPerRun(100, func() {
		pnrpClassifierIs(m.Classifier, "RAContact")
		pnrpClassifierHex32(m.Classifier)
	}); n != 0 {
		t.Errorf("classifier checks: %v allocs", n)
	}
}

var pnrpFuzzFirstFragment []byte

func FuzzPNRP(f *testing.F) {
	for _, v := range []string{vecPNRPAck, vecPNRPSolicit, vecPNRPAuthority, vecPNRPAuthorityLE} {
		f.Add(tpHex(f, v))
	}
	f.Add(testutil.PNRPRAContactAuthority(7, 6, 64))
	f.Add(testutil.PNRPLookupMessage(5, testutil.PNRPLookupSpec{Classifier: "x", Path: []netip.AddrPort{netip.AddrPortFrom(pnrpNodeA, 3540)}}))
	// The fuzzer's inputs follow the first fragment of this buffer (the
	// committed seeds include its second fragment, which continues it).
	frags := testutil.PNRPAuthorityMessages(10, 6, testutil.PNRPAuthorityBuffer{CertChain: make([]byte, 1170),
		Classifier: "RAContact", ExtendedPayload: make([]byte, 400)}.Encode())
	pnrpFuzzFirstFragment = frags[0]
	f.Add(frags[1])
	f.Fuzz(func(t *testing.T, b []byte) {
		m, ok := ParsePNRP(b)
		if ok {
			if pnrpTypeName(m.Type) == "" || m.Fields > pnrpMaxFields {
				t.Fatalf("accepted %+v", m)
			}
			if m.Classifier != nil {
				if len(m.Classifier)%2 != 0 || len(m.Classifier) > 2*pnrpMaxClassifier {
					t.Fatalf("classifier %d bytes", len(m.Classifier))
				}
				_ = m.ClassifierString()
			}
		}
		// Feed it as every fragment of a conversation, so the fragment
		// follower sees odd continuations too.
		ctx := tpContext()
		fl := tpUDPFlow("[2001:db8:1::a]:3540", "[2001:db8:2::b]:3540")
		d := NewPNRPDetector(PNRPOptions{})
		first := pnrpFuzzFirstFragment
		tpFeed(ctx, d, fl, []tpPkt{{ToClient, first}, {ToClient, b}, {ToServer, b}, {ToClient, b}})
		if fl.Labels.Has(LabelPNRPRAEasyConnect) && !fl.Labels.Has(LabelPNRP) {
			t.Fatal("easy connect without pnrp")
		}
	})
}

func BenchmarkParsePNRP(b *testing.B) {
	p := testutil.PNRPRAContactAuthority(7, 6, 64)
	b.ReportAllocs()
	for b.Loop() {
		ParsePNRP(p)
	}
}

func BenchmarkPNRPDetector(b *testing.B) {
	d := NewPNRPDetector(PNRPOptions{})
	lookup := testutil.PNRPLookupMessage(5, testutil.PNRPLookupSpec{Classifier: "x", Path: []netip.AddrPort{netip.AddrPortFrom(pnrpNodeA, 3540)}})
	auth := testutil.PNRPRAContactAuthority(7, 6, 64)
	dns := tpHex(b, "12 34 01 00 00 01 00 00 00 00 00 00 03 77 77 77 00 00 01 00 01")
	b.Run("match", func(b *testing.B) {
		ctx := tpContext()
		b.ReportAllocs()
		for b.Loop() {
			f := tpUDPFlow("[2001:db8:1::a]:3540", "[2001:db8:2::b]:3540")
			tpFeed(ctx, d, f, []tpPkt{{ToServer, lookup}, {ToClient, auth}})
		}
	})
	b.Run("no-match", func(b *testing.B) {
		ctx := tpContext()
		f := tpUDPFlow("[2001:db8:1::a]:5353", "[2001:db8:2::b]:53")
		seg := &Segment{Dir: ToServer, Payload: dns, Src: f.Client, Dst: f.Server}
		b.ReportAllocs()
		for b.Loop() {
			d.Inspect(ctx, f, seg)
		}
	})
}
