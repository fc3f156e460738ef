package classify

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/http"
	"net/mail"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf16"
)

// Remote Assistance invitation files (.MSRCIncident, MS-RAI §6;
// protocols.md §2.8) carried in cleartext: HTTP bodies (chunked and
// gzip-encoded too), SMTP messages (MIME attachments in base64 or
// quoted-printable) and FTP data connections. The file's RCTICKET keeps the
// novice's listener addresses in plain text, which feed the expected-
// listener table so the helper's RDP connection completes a session.

// InvitationOptions bound the invitation detector.
type InvitationOptions struct {
	// MaxFlowBytes is how much of one flow's stream is kept (default 256 KiB).
	MaxFlowBytes int
	// MaxTotalBytes bounds the streams held across all flows (default 32 MiB);
	// a flow that would exceed it is given up and counted.
	MaxTotalBytes int64
	// DefaultLifetime is how long a listener is expected when the ticket has
	// no usable DtStart/DtLength (default 6 h, the Windows default lifetime).
	DefaultLifetime time.Duration
	// MaxLifetime caps a ticket's own lifetime (default 30 days).
	MaxLifetime time.Duration
}

// InvitationDetector finds invitation files in HTTP, SMTP and FTP data.
type InvitationDetector struct {
	opt    InvitationOptions
	held   atomic.Int64 // bytes buffered across flows
	gaveUp atomic.Uint64
}

// NewInvitationDetector returns the detector.
func NewInvitationDetector(opt InvitationOptions) *InvitationDetector {
	if opt.MaxFlowBytes <= 0 {
		opt.MaxFlowBytes = 256 << 10
	}
	if opt.MaxTotalBytes <= 0 {
		opt.MaxTotalBytes = 32 << 20
	}
	if opt.DefaultLifetime <= 0 {
		opt.DefaultLifetime = 6 * time.Hour
	}
	if opt.MaxLifetime <= 0 {
		opt.MaxLifetime = 30 * 24 * time.Hour
	}
	return &InvitationDetector{opt: opt}
}

// Name returns "invitation".
func (d *InvitationDetector) Name() string { return "invitation" }

// Budget is the per-flow stream bound.
func (d *InvitationDetector) Budget() int { return d.opt.MaxFlowBytes }

// GaveUp returns how many flows were abandoned because the global bound was reached.
func (d *InvitationDetector) GaveUp() uint64 { return d.gaveUp.Load() }

// InvitationEvidence is what an invitation file revealed (rasentry.invitation).
type InvitationEvidence struct {
	Carrier        string          `json:"carrier"` // smtp, http, ftp-data
	FileName       string          `json:"file_name,omitempty"`
	UserName       string          `json:"user_name,omitempty"`
	Listeners      []InviteAddress `json:"listeners,omitempty"`
	RCTicketPlain  bool            `json:"rcticket_plain"`  // RCTICKET lists addresses in clear
	EncryptedOnly  bool            `json:"encrypted_only"`  // only LHTICKET: CreateEncryptedOnlyTickets
	LHTicket       bool            `json:"lhticket"`        // the encrypted Vista+ ticket is present
	PassStub       bool            `json:"pass_stub"`       // a PassStub attribute is present (its value is not logged)
	Start          *time.Time      `json:"start,omitempty"` // DtStart
	LifetimeMin    int             `json:"lifetime_minutes,omitempty"`
	Expires        *time.Time      `json:"expires,omitempty"`
	ListenersAdded int             `json:"expected_listeners"` // addresses added to the expected-listener table
}

// InviteAddress is one listener named in RCTICKET.
type InviteAddress struct {
	Host string `json:"host"`
	Port uint16 `json:"port"`
}

type invitationState struct {
	carrier string
	buf     [2][]byte // per direction
	found   bool
}

// Carrier recognition from the first payload bytes.
func invitationCarrier(seg *Segment) string {
	p := seg.Payload
	switch {
	case seg.Dir == ToServer && (hasPrefixFold(p, "EHLO ") || hasPrefixFold(p, "HELO ")):
		return "smtp"
	case seg.Dir == ToClient && bytes.HasPrefix(p, []byte("220")) && bytes.Contains(p[:min(len(p), 200)], []byte("SMTP")):
		return "smtp"
	case seg.Dir == ToServer && (bytes.HasPrefix(p, []byte("GET ")) || bytes.HasPrefix(p, []byte("POST ")) || bytes.HasPrefix(p, []byte("PUT "))):
		return "http"
	case seg.Dir == ToClient && bytes.HasPrefix(p, []byte("HTTP/1.")):
		return "http"
	case looksLikeIncident(p) || bytes.HasPrefix(p, []byte{0xff, 0xfe, '<', 0}) || bytes.HasPrefix(p, []byte("<?xml")):
		return "ftp-data" // a bare (XML) file at the start of a connection: FTP data
	}
	return ""
}

func hasPrefixFold(p []byte, s string) bool {
	return len(p) >= len(s) && strings.EqualFold(string(p[:len(s)]), s)
}

var (
	markUTF8  = []byte("<UPLOADINFO")
	markUTF16 = utf16le("<UPLOADINFO")
)

func utf16le(s string) []byte {
	var b []byte
	for _, c := range utf16.Encode([]rune(s)) {
		b = append(b, byte(c), byte(c>>8))
	}
	return b
}

func looksLikeIncident(p []byte) bool {
	head := p[:min(len(p), 512)]
	return bytes.Contains(head, markUTF16) || bytes.Contains(head, markUTF8)
}

// Inspect buffers the carrier flows (bounded) and parses them once a
// message or body is complete.
func (d *InvitationDetector) Inspect(ctx *Context, f *Flow, seg *Segment) Status {
	if f.Proto != ProtoTCP {
		return Done
	}
	st, _ := ctx.State(f).(*invitationState)
	if st == nil {
		if seg.Index > 2 {
			return Done
		}
		c := invitationCarrier(seg)
		if c == "" {
			return Done
		}
		st = &invitationState{carrier: c}
		ctx.SetState(f, st)
	}
	if seg.Gap {
		d.release(st)
		return Done // a hole in the stream: a file cannot be rebuilt
	}
	if d.held.Add(int64(len(seg.Payload))) > d.opt.MaxTotalBytes {
		d.held.Add(-int64(len(seg.Payload)))
		d.gaveUp.Add(1)
		d.release(st)
		return Done
	}
	st.buf[seg.Dir] = append(st.buf[seg.Dir], seg.Payload...)
	if st.carrier == "ftp-data" && len(st.buf[seg.Dir]) >= 4096 && !looksLikeIncident(st.buf[seg.Dir][:4096]) {
		d.release(st)
		return Done // some other XML file
	}
	if d.scan(ctx, f, st, seg.Dir) {
		d.release(st)
		return Done
	}
	if len(st.buf[0])+len(st.buf[1]) >= d.opt.MaxFlowBytes {
		d.release(st)
		return Done
	}
	return Continue
}

func (d *InvitationDetector) release(st *invitationState) {
	d.held.Add(-int64(len(st.buf[0]) + len(st.buf[1])))
	st.buf[0], st.buf[1] = nil, nil
}

// keep replaces a direction's buffer with its unparsed rest, keeping the
// global count right.
func (d *InvitationDetector) keep(st *invitationState, dir Direction, rest []byte) {
	d.held.Add(int64(len(rest) - len(st.buf[dir])))
	st.buf[dir] = append(st.buf[dir][:0], rest...)
}

// FlowEnded releases what a flow still held when it ended mid-message.
func (d *InvitationDetector) FlowEnded(ctx *Context, f *Flow) {
	if st, _ := ctx.State(f).(*invitationState); st != nil {
		d.release(st)
	}
}

// scan parses what is buffered; it reports true when the flow needs no more.
func (d *InvitationDetector) scan(ctx *Context, f *Flow, st *invitationState, dir Direction) bool {
	switch st.carrier {
	case "smtp":
		return d.scanSMTP(ctx, f, st)
	case "http":
		return d.scanHTTP(ctx, f, st, dir)
	case "ftp-data":
		b := st.buf[dir]
		if bytes.Contains(b, utf16le("</UPLOADINFO>")) || bytes.Contains(b, []byte("</UPLOADINFO>")) || bytes.Contains(b, utf16le("/>")) && looksComplete(b) {
			d.found(ctx, f, st, b, "")
			return true
		}
	}
	return false
}

func looksComplete(b []byte) bool {
	return bytes.Contains(b, utf16le("</UPLOADINFO>")) || bytes.Contains(b, []byte("</UPLOADINFO>"))
}

// scanSMTP waits for the DATA section's end, then walks the MIME parts.
func (d *InvitationDetector) scanSMTP(ctx *Context, f *Flow, st *invitationState) bool {
	b := st.buf[ToServer]
	i := indexFold(b, "\r\nDATA\r\n")
	if i < 0 {
		if !hasPrefixFold(b, "DATA\r\n") {
			return false
		}
		i = -2
	}
	body := b[i+8:]
	end := bytes.Index(body, []byte("\r\n.\r\n"))
	if end < 0 {
		return false
	}
	msg, err := mail.ReadMessage(bytes.NewReader(body[:end+2]))
	if err != nil {
		ctx.Counters.CountMalformed(d.Name())
		return true
	}
	d.walkMIME(ctx, f, st, msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), "", msg.Body, 0)
	// Another message may follow on the same connection.
	d.keep(st, ToServer, body[end+5:])
	return false
}

func indexFold(b []byte, s string) int {
	return bytes.Index(bytes.ToUpper(b[:min(len(b), 1<<20)]), []byte(strings.ToUpper(s)))
}

// walkMIME visits a MIME entity, recursing into multiparts (bounded depth).
func (d *InvitationDetector) walkMIME(ctx *Context, f *Flow, st *invitationState, ctype, cte, name string, r io.Reader, depth int) {
	if depth > 4 {
		return
	}
	mt, params, _ := mime.ParseMediaType(ctype)
	if strings.HasPrefix(mt, "multipart/") && params["boundary"] != "" {
		mr := multipart.NewReader(r, params["boundary"])
		for i := 0; i < 32; i++ {
			p, err := mr.NextRawPart()
			if err != nil {
				return
			}
			fn := p.FileName()
			d.walkMIME(ctx, f, st, p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), fn, p, depth+1)
		}
		return
	}
	if name == "" {
		name = params["name"]
	}
	var body io.Reader = io.LimitReader(r, int64(d.opt.MaxFlowBytes))
	switch strings.ToLower(strings.TrimSpace(cte)) {
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, newlineStripper{body})
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	}
	data, _ := io.ReadAll(io.LimitReader(body, int64(d.opt.MaxFlowBytes)))
	if looksLikeIncident(data) || strings.HasSuffix(strings.ToLower(name), ".msrcincident") {
		d.found(ctx, f, st, data, name)
	}
}

// newlineStripper drops CR and LF so base64 decoding sees one line.
type newlineStripper struct{ r io.Reader }

func (n newlineStripper) Read(p []byte) (int, error) {
	for {
		k, err := n.r.Read(p)
		j := 0
		for _, c := range p[:k] {
			if c != '\r' && c != '\n' {
				p[j] = c
				j++
			}
		}
		if j > 0 || err != nil {
			return j, err
		}
	}
}

// scanHTTP parses complete requests or responses in the direction just fed.
func (d *InvitationDetector) scanHTTP(ctx *Context, f *Flow, st *invitationState, dir Direction) bool {
	b := st.buf[dir]
	for n := 0; n < 16; n++ {
		if bytes.Index(b, []byte("\r\n\r\n")) < 0 {
			return false
		}
		br := bufio.NewReader(bytes.NewReader(b))
		var hdr http.Header
		var body io.ReadCloser
		var name string
		if dir == ToServer {
			req, err := http.ReadRequest(br)
			if err != nil {
				ctx.Counters.CountMalformed(d.Name())
				return true
			}
			hdr, body, name = req.Header, req.Body, req.URL.Path
		} else {
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				ctx.Counters.CountMalformed(d.Name())
				return true
			}
			hdr, body = resp.Header, resp.Body
		}
		data, err := io.ReadAll(io.LimitReader(body, int64(d.opt.MaxFlowBytes)))
		if err != nil {
			return false // the body is not complete yet
		}
		consumed := len(b) - br.Buffered()
		if strings.EqualFold(hdr.Get("Content-Encoding"), "gzip") {
			if zr, err := gzip.NewReader(bytes.NewReader(data)); err == nil {
				data, _ = io.ReadAll(io.LimitReader(zr, int64(d.opt.MaxFlowBytes)))
			}
		}
		if _, params, err := mime.ParseMediaType(hdr.Get("Content-Disposition")); err == nil && params["filename"] != "" {
			name = params["filename"]
		}
		if ct := hdr.Get("Content-Type"); strings.HasPrefix(ct, "multipart/") {
			d.walkMIME(ctx, f, st, ct, "", name, bytes.NewReader(data), 1)
		} else if looksLikeIncident(data) {
			d.found(ctx, f, st, data, name)
		}
		b = b[consumed:]
		d.keep(st, dir, b)
		b = st.buf[dir]
		if len(b) == 0 {
			return false
		}
	}
	return false
}

var attrRe = regexp.MustCompile(`([A-Za-z]+)="([^"]*)"`)

// found parses an invitation file and records it on the flow.
func (d *InvitationDetector) found(ctx *Context, f *Flow, st *invitationState, data []byte, name string) {
	if st.found && f.GetEvidence(d.Name()) != nil {
		return
	}
	text := decodeIncident(data)
	i := strings.Index(text, "<UPLOADDATA")
	if i < 0 {
		ctx.Counters.CountMalformed(d.Name())
		return
	}
	el := text[i:]
	if j := strings.Index(el, ">"); j >= 0 {
		el = el[:j]
	}
	attrs := map[string]string{}
	for _, m := range attrRe.FindAllStringSubmatch(el, 32) {
		attrs[strings.ToUpper(m[1])] = m[2]
	}
	ev := &InvitationEvidence{Carrier: st.carrier, FileName: name, UserName: attrs["USERNAME"]}
	_, ev.LHTicket = attrs["LHTICKET"]
	_, ev.PassStub = attrs["PASSSTUB"]
	if rc, ok := attrs["RCTICKET"]; ok {
		ev.Listeners = parseRCTicket(rc)
		ev.RCTicketPlain = len(ev.Listeners) > 0
	}
	ev.EncryptedOnly = ev.LHTicket && !ev.RCTicketPlain
	start := ctx.Now
	if s, err := strconv.ParseInt(attrs["DTSTART"], 10, 64); err == nil && s > 0 {
		t := time.Unix(s, 0).UTC()
		ev.Start = &t
		start = t
	}
	life := d.opt.DefaultLifetime
	if m, err := strconv.Atoi(attrs["DTLENGTH"]); err == nil && m > 0 {
		ev.LifetimeMin = m
		life = min(time.Duration(m)*time.Minute, d.opt.MaxLifetime)
	}
	exp := start.Add(life)
	if exp.Before(ctx.Now) {
		exp = ctx.Now.Add(time.Minute) // clocks disagree: still expect a prompt connection
	}
	ev.Expires = &exp
	for _, l := range ev.Listeners {
		a, err := netip.ParseAddr(l.Host)
		if err != nil || ctx.Expect == nil {
			continue
		}
		ctx.Expect.Add(Expectation{Addr: a, Port: l.Port, Proto: ProtoTCP, Reason: "invitation",
			Service: "remote-assistance", FromFlow: f.ID, Created: ctx.Now, Expires: exp})
		ev.ListenersAdded++
	}
	st.found = true
	f.AddLabel(LabelRAInvitationFile, ConfidenceHigh)
	f.SetEvidence(d.Name(), ev)
}

// decodeIncident returns the file as text: UTF-16 (with or without BOM)
// or UTF-8.
func decodeIncident(b []byte) string {
	if len(b) >= 2 && (b[0] == 0xff && b[1] == 0xfe || bytes.Contains(b[:min(len(b), 512)], markUTF16)) {
		if b[0] == 0xff && b[1] == 0xfe {
			b = b[2:]
		}
		u := make([]uint16, len(b)/2)
		for i := range u {
			u[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
		}
		return string(utf16.Decode(u))
	}
	return string(b)
}

// parseRCTicket reads Connection String 1 (MS-RAI §2.2.1):
// "65538,1,<addr:port;addr:port;...>,*,...".
func parseRCTicket(s string) []InviteAddress {
	parts := strings.Split(s, ",")
	if len(parts) < 3 {
		return nil
	}
	var out []InviteAddress
	for _, hp := range strings.Split(parts[2], ";") {
		i := strings.LastIndexByte(hp, ':')
		if i <= 0 {
			continue
		}
		port, err := strconv.ParseUint(hp[i+1:], 10, 16)
		if err != nil || port == 0 {
			continue
		}
		host := strings.Trim(hp[:i], "[]")
		out = append(out, InviteAddress{Host: host, Port: uint16(port)})
		if len(out) == 16 {
			break
		}
	}
	return out
}
