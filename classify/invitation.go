package classify

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/http/httputil"
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
	buf     [2][]byte // per direction: bytes kept for the message being read
	dir     [2]streamState
	found   bool
}

// streamState follows one direction of a carrier stream incrementally, so
// each byte is looked at a bounded number of times.
type streamState struct {
	scanned  int  // bytes of buf already searched for the current delimiter
	skip     int  // body bytes still to pass over without keeping them
	inBody   bool // HTTP: the head is parsed, buf holds the body
	bodyLen  int  // HTTP: Content-Length, or -1 for chunked, -2 until close
	chunked  bool
	gzipped  bool
	name     string
	messages int
	done     bool // nothing more to read in this direction
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
	ds := &st.dir[seg.Dir]
	p := seg.Payload
	if ds.done {
		if st.dir[1-seg.Dir].done {
			d.release(st)
			return Done
		}
		return Continue
	}
	if ds.skip > 0 { // an uninteresting HTTP body: pass over it unkept
		n := min(ds.skip, len(p))
		ds.skip -= n
		p = p[n:]
		if len(p) == 0 {
			return Continue
		}
	}
	if d.held.Add(int64(len(p))) > d.opt.MaxTotalBytes {
		d.held.Add(-int64(len(p)))
		d.gaveUp.Add(1)
		d.release(st)
		return Done
	}
	st.buf[seg.Dir] = append(st.buf[seg.Dir], p...)
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
		ds := &st.dir[dir]
		b := st.buf[dir]
		from := max(0, ds.scanned-len(endUTF16))
		ds.scanned = len(b)
		if bytes.Contains(b[from:], endUTF16) || bytes.Contains(b[from:], endUTF8) {
			d.found(ctx, f, st, b, "")
			return true
		}
	}
	return false
}

var (
	endUTF8  = []byte("</UPLOADINFO>")
	endUTF16 = utf16le("</UPLOADINFO>")
)

// scanSMTP follows the client's commands until DATA, keeps the message
// until its terminating dot line, and walks its MIME parts once.
func (d *InvitationDetector) scanSMTP(ctx *Context, f *Flow, st *invitationState) bool {
	ds := &st.dir[ToServer]
	for {
		b := st.buf[ToServer]
		if !ds.inBody {
			// Command phase: consume whole lines; keep at most one partial line.
			i := bytes.LastIndexByte(b, '\n')
			if i < 0 {
				if len(b) > 4096 {
					return true // not SMTP after all
				}
				return false
			}
			lines := b[:i+1]
			rest := b[i+1:]
			if j := dataCommand(lines); j >= 0 {
				ds.inBody, ds.scanned = true, 0
				d.keep(st, ToServer, append(append([]byte(nil), lines[j:]...), rest...))
				continue
			}
			d.keep(st, ToServer, rest)
			return false
		}
		from := max(0, ds.scanned-4)
		ds.scanned = len(b)
		end := bytes.Index(b[from:], []byte("\r\n.\r\n"))
		if end < 0 {
			return false
		}
		end += from
		if msg, err := mail.ReadMessage(bytes.NewReader(b[:end+2])); err == nil {
			d.walkMIME(ctx, f, st, msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), "", msg.Body, 0)
		} else {
			ctx.Counters.CountMalformed(d.Name())
		}
		ds.inBody, ds.scanned = false, 0
		ds.messages++
		d.keep(st, ToServer, b[end+5:])
		if ds.messages >= 8 {
			return true
		}
	}
}

// dataCommand returns the offset just past a "DATA" command line in lines,
// or -1.
func dataCommand(lines []byte) int {
	off := 0
	for off < len(lines) {
		n := bytes.IndexByte(lines[off:], '\n')
		if n < 0 {
			break
		}
		line := bytes.TrimRight(lines[off:off+n], "\r")
		off += n + 1
		if len(line) == 4 && strings.EqualFold(string(line), "DATA") {
			return off
		}
	}
	return -1
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

// scanHTTP follows the HTTP messages of one direction: it reads each head
// once, passes over bodies that cannot hold an invitation without keeping
// them, and parses a candidate body once it is complete.
func (d *InvitationDetector) scanHTTP(ctx *Context, f *Flow, st *invitationState, dir Direction) bool {
	ds := &st.dir[dir]
	for ds.messages < 8 {
		b := st.buf[dir]
		if !ds.inBody {
			from := max(0, ds.scanned-3)
			ds.scanned = len(b)
			i := bytes.Index(b[from:], []byte("\r\n\r\n"))
			if i < 0 {
				if len(b) > 16<<10 {
					ds.done = true // no end of head: not HTTP we can follow
				}
				return false
			}
			i += from
			interesting := d.readHead(ds, b[:i+2], dir)
			rest := b[i+4:]
			ds.inBody, ds.scanned = true, 0
			if !interesting {
				switch {
				case ds.bodyLen >= 0:
					n := min(ds.bodyLen, len(rest))
					ds.skip = ds.bodyLen - n
					rest = rest[n:]
					ds.inBody = false
					ds.messages++
				default: // chunked or close-delimited and not a candidate: stop here
					ds.done = true
					d.keep(st, dir, nil)
					return false
				}
			}
			d.keep(st, dir, rest)
			continue
		}
		body, complete := httpBodyComplete(ds, b)
		if !complete {
			if ds.bodyLen == -2 && len(b) >= d.opt.MaxFlowBytes/2 {
				complete = true // close-delimited: look at what we have
			} else {
				return false
			}
		}
		d.inspectBody(ctx, f, st, ds, b[:body])
		ds.inBody, ds.scanned = false, 0
		ds.messages++
		d.keep(st, dir, b[body:])
	}
	ds.done = true
	return false
}

// readHead parses an HTTP request or response head (up to its final CRLF)
// and reports whether its body could be an invitation file.
func (d *InvitationDetector) readHead(ds *streamState, head []byte, dir Direction) bool {
	ds.bodyLen, ds.chunked, ds.gzipped, ds.name = -2, false, false, ""
	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	isRequest := dir == ToServer
	if isRequest {
		ds.bodyLen = 0 // a request without Content-Length or chunking has no body
		if parts := bytes.Fields(line); len(parts) >= 2 {
			ds.name = string(parts[1])
		}
	} else if parts := bytes.Fields(line); len(parts) >= 2 {
		if c := string(parts[1]); c == "204" || c == "304" || c[0] == '1' {
			ds.bodyLen = 0
		}
	}
	ctype := ""
	for len(rest) > 0 {
		var h []byte
		h, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		k, v, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			continue
		}
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if n, err := strconv.Atoi(string(v)); err == nil && n >= 0 {
				ds.bodyLen = n
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			if bytes.Contains(bytes.ToLower(v), []byte("chunked")) {
				ds.chunked, ds.bodyLen = true, -1
			}
		case bytes.EqualFold(k, []byte("Content-Encoding")):
			ds.gzipped = bytes.Contains(bytes.ToLower(v), []byte("gzip"))
		case bytes.EqualFold(k, []byte("Content-Type")):
			ctype = strings.ToLower(string(v))
		case bytes.EqualFold(k, []byte("Content-Disposition")):
			if _, params, err := mime.ParseMediaType(string(v)); err == nil && params["filename"] != "" {
				ds.name = params["filename"]
			}
		}
	}
	if ds.bodyLen == 0 {
		return false
	}
	if strings.HasSuffix(strings.ToLower(ds.name), ".msrcincident") {
		return true
	}
	// What an invitation could be served or uploaded as; pages, scripts,
	// images and media are passed over.
	switch {
	case ctype == "", strings.HasPrefix(ctype, "application/octet-stream"), strings.Contains(ctype, "xml"),
		strings.HasPrefix(ctype, "multipart/"), strings.HasPrefix(ctype, "application/x-msrcincident"),
		strings.HasPrefix(ctype, "text/plain"), strings.HasPrefix(ctype, "application/x-www-form-urlencoded"):
		return ds.bodyLen < 0 || ds.bodyLen <= d.opt.MaxFlowBytes
	}
	return false
}

// httpBodyComplete reports whether b holds the whole body and how long it is.
func httpBodyComplete(ds *streamState, b []byte) (int, bool) {
	switch {
	case ds.bodyLen >= 0:
		return ds.bodyLen, len(b) >= ds.bodyLen
	case ds.chunked:
		from := max(0, ds.scanned-5)
		ds.scanned = len(b)
		if i := bytes.Index(b[from:], []byte("0\r\n\r\n")); i >= 0 && (from+i == 0 || b[from+i-1] == '\n') {
			return from + i + 5, true
		}
	}
	return 0, false
}

// inspectBody decodes a complete candidate body and looks for an invitation.
func (d *InvitationDetector) inspectBody(ctx *Context, f *Flow, st *invitationState, ds *streamState, body []byte) {
	var r io.Reader = bytes.NewReader(body)
	if ds.chunked {
		r = httputil.NewChunkedReader(r)
	}
	if ds.gzipped {
		zr, err := gzip.NewReader(r)
		if err != nil {
			ctx.Counters.CountMalformed(d.Name())
			return
		}
		r = zr
	}
	data, err := io.ReadAll(io.LimitReader(r, int64(d.opt.MaxFlowBytes)))
	if err != nil && len(data) == 0 {
		ctx.Counters.CountMalformed(d.Name())
		return
	}
	if looksLikeIncident(data) {
		d.found(ctx, f, st, data, ds.name)
		return
	}
	if bytes.HasPrefix(data, []byte("--")) || bytes.Contains(data[:min(len(data), 256)], []byte("Content-Disposition")) {
		// A multipart upload: find its boundary from the first line.
		line, _, _ := bytes.Cut(data, []byte("\r\n"))
		if bytes.HasPrefix(line, []byte("--")) {
			d.walkMIME(ctx, f, st, "multipart/form-data; boundary="+string(line[2:]), "", ds.name, bytes.NewReader(data), 1)
		}
	}
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
			Service: "remote-assistance", FromFlow: f.ID, FromClient: f.Client, FromServer: f.Server, Created: ctx.Now, Expires: exp})
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
