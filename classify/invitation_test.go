package classify

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func incidentFile(utf16 bool, rcticket bool) []byte {
	rc := ""
	if rcticket {
		rc = `RCTICKET="65538,1,192.0.2.44:49800;[2001:db8::44]:49801;NOVICE:49800,*,abc=,*,*,def=" RCTICKETENCRYPTED="1" `
	}
	x := `<?xml version="1.0" encoding="Unicode" ?><UPLOADINFO TYPE="Escalated"><UPLOADDATA USERNAME="jsmith" ` +
		`LHTICKET="A1B2C3" ` + rc + `DtStart="1767603600" DtLength="120" PassStub="secret" L="0" /></UPLOADINFO>`
	if !utf16 {
		return []byte(x)
	}
	return append([]byte{0xff, 0xfe}, utf16le(x)...)
}

// feed runs segments (alternating as given) through the detector.
func feedInvitation(t *testing.T, d *InvitationDetector, segs []struct {
	dir Direction
	b   []byte
}) (*Flow, *Context) {
	t.Helper()
	f := &Flow{ID: 77, Proto: ProtoTCP, Client: netip.MustParseAddrPort("192.0.2.44:50000"), Server: netip.MustParseAddrPort("198.51.100.5:80")}
	ctx := &Context{Now: time.Unix(1767603660, 0), Expect: NewExpectTable(0, nil), Counters: &Counters{}}
	idx := [2]int{}
	ctx.Detector = 0
	for _, s := range segs {
		// Deliver in small pieces to exercise reassembly.
		for off := 0; off < len(s.b); off += 97 {
			seg := &Segment{Dir: s.dir, Payload: s.b[off:min(off+97, len(s.b))], Index: idx[s.dir]}
			idx[s.dir]++
			if d.Inspect(ctx, f, seg) == Done {
				return f, ctx
			}
		}
	}
	return f, ctx
}

type dirBytes = struct {
	dir Direction
	b   []byte
}

func TestInvitationCarriers(t *testing.T) {
	file := incidentFile(true, true)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(file)
	zw.Close()
	chunked := func(b []byte) string {
		var s strings.Builder
		for off := 0; off < len(b); off += 100 {
			part := b[off:min(off+100, len(b))]
			fmt.Fprintf(&s, "%x\r\n%s\r\n", len(part), part)
		}
		return s.String() + "0\r\n\r\n"
	}
	mimeMsg := "From: a@b\r\nSubject: help\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"xx\"\r\n\r\n" +
		"--xx\r\nContent-Type: text/plain\r\n\r\nhello\r\n--xx\r\nContent-Type: application/octet-stream\r\n" +
		"Content-Transfer-Encoding: base64\r\nContent-Disposition: attachment; filename=\"Invitation.msrcincident\"\r\n\r\n" +
		base64.StdEncoding.EncodeToString(file) + "\r\n--xx--\r\n.\r\n"
	tests := []struct {
		name     string
		segs     []dirBytes
		carrier  string
		want     bool
		encOnly  bool
		expected int
	}{
		{"http chunked gzip download", []dirBytes{
			{ToServer, []byte("GET /inv.msrcincident HTTP/1.1\r\nHost: x\r\n\r\n")},
			{ToClient, []byte("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(gz.Bytes()))},
		}, "http", true, false, 2},
		{"http upload utf-8", []dirBytes{
			{ToServer, []byte(fmt.Sprintf("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(incidentFile(false, true)), incidentFile(false, true)))},
		}, "http", true, false, 2},
		{"smtp base64 attachment", []dirBytes{
			{ToClient, []byte("220 mx ESMTP\r\n")},
			{ToServer, []byte("EHLO me\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n" + mimeMsg)},
		}, "smtp", true, false, 2},
		{"ftp data", []dirBytes{{ToServer, file}}, "ftp-data", true, false, 2},
		{"encrypted-only ticket", []dirBytes{
			{ToServer, []byte(fmt.Sprintf("POST /u HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s", len(incidentFile(false, false)), incidentFile(false, false)))},
		}, "http", true, true, 0},
		{"ordinary http", []dirBytes{
			{ToServer, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
			{ToClient, []byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")},
		}, "", false, false, 0},
		{"not a carrier", []dirBytes{{ToServer, []byte("\x16\x03\x01\x00\x05hello")}}, "", false, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewInvitationDetector(InvitationOptions{})
			f, ctx := feedInvitation(t, d, tt.segs)
			if got := f.Labels.Has(LabelRAInvitationFile); got != tt.want {
				t.Fatalf("labelled %v, want %v (malformed %v)", got, tt.want, ctx.Counters.Malformed())
			}
			if !tt.want {
				return
			}
			ev := f.GetEvidence("invitation").(*InvitationEvidence)
			if ev.Carrier != tt.carrier || ev.EncryptedOnly != tt.encOnly || ev.ListenersAdded != tt.expected || !ev.PassStub || ev.UserName != "jsmith" {
				t.Errorf("evidence %+v", ev)
			}
			if tt.expected > 0 {
				if e := ctx.Expect.Match(netip.MustParseAddr("192.0.2.44"), 49800, ProtoTCP, ctx.Now); e == nil || e.Reason != "invitation" {
					t.Errorf("listener not expected: %+v", e)
				}
				if e := ctx.Expect.Match(netip.MustParseAddr("2001:db8::44"), 49801, ProtoTCP, ctx.Now); e == nil {
					t.Error("IPv6 listener not expected")
				}
			}
			d.FlowEnded(ctx, f)
			if d.held.Load() != 0 {
				t.Errorf("%d bytes still held after Done", d.held.Load())
			}
		})
	}
}

func TestParseRCTicket(t *testing.T) {
	got := parseRCTicket("65538,1,10.0.0.1:3389;host:49800;[fe80::1]:5;bad;x:0;y:99999,*,z")
	want := []InviteAddress{{"10.0.0.1", 3389}, {"host", 49800}, {"fe80::1", 5}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if parseRCTicket("65538") != nil {
		t.Error("short ticket parsed")
	}
}

func TestInvitationGlobalBound(t *testing.T) {
	d := NewInvitationDetector(InvitationOptions{MaxTotalBytes: 1000})
	ctx := &Context{Expect: NewExpectTable(0, nil), Counters: &Counters{}}
	for i := 0; i < 5; i++ {
		f := &Flow{ID: uint64(i), Proto: ProtoTCP}
		d.Inspect(ctx, f, &Segment{Dir: ToServer, Payload: []byte("POST / HTTP/1.1\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat("a", 300))})
	}
	if d.held.Load() > 1000 || d.GaveUp() == 0 {
		t.Errorf("held %d, gave up %d", d.held.Load(), d.GaveUp())
	}
}

func FuzzInvitation(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), []byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"))
	f.Add([]byte("EHLO x\r\nDATA\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\n//4=\r\n--b--\r\n.\r\n"), []byte("220 ESMTP\r\n"))
	f.Add(incidentFile(true, true), []byte{})
	f.Add(incidentFile(false, false), []byte("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 3\r\n\r\n\x1f\x8b\x08"))
	f.Fuzz(func(t *testing.T, toServer, toClient []byte) {
		d := NewInvitationDetector(InvitationOptions{MaxFlowBytes: 4096, MaxTotalBytes: 8192})
		fl := &Flow{Proto: ProtoTCP}
		ctx := &Context{Expect: NewExpectTable(8, nil), Counters: &Counters{}}
		for i := 0; i < 4; i++ {
			for dir, b := range [][]byte{toServer, toClient} {
				if d.Inspect(ctx, fl, &Segment{Dir: Direction(dir), Payload: b, Index: i}) == Done {
					return
				}
			}
		}
	})
}

func BenchmarkInvitationDetectorNoMatch(b *testing.B) {
	d := NewInvitationDetector(InvitationOptions{})
	ctx := &Context{Counters: &Counters{}}
	f := &Flow{Proto: ProtoTCP}
	seg := &Segment{Dir: ToServer, Payload: []byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 random tls client hello")}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		d.Inspect(ctx, f, seg)
	}
}

func TestInvitationNoMatchAllocatesNothing(t *testing.T) {
	d := NewInvitationDetector(InvitationOptions{})
	ctx := &Context{Counters: &Counters{}}
	f := &Flow{Proto: ProtoTCP}
	seg := &Segment{Dir: ToServer, Payload: []byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 random")}
	if a := testing.AllocsPerRun(100, func() { d.Inspect(ctx, f, seg) }); a != 0 {
		t.Errorf("%v allocations on the no-match path", a)
	}
}
