package classify

import (
	"bytes"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// UPnP control over HTTP/TCP (UPnP Device Architecture 1.x §2–§4,
// protocols.md §4.3): the description fetch (GET of the LOCATION URL,
// answered with urn:schemas-upnp-org XML), SOAP actions (POST with a
// SOAPAction header) and GENA eventing (SUBSCRIBE, UNSUBSCRIBE, NOTIFY with
// NT upnp:event). Devices listen on any port (miniupnpd picks one at
// random), so the request decides, not the port.

// UPnPOptions configures the UPnP control detector.
type UPnPOptions struct {
	// MaxMessage is how many bytes of one HTTP message (header and body)
	// are kept per direction while waiting for the rest of it (default
	// 8 KiB). Port-mapping requests are about 1 KiB.
	MaxMessage int
	// MappingTTL caps how long a port mapping stays expected: a lease of 0
	// ("until deleted", UPnP IGD WANIPConnection:1 §2.2.20) and longer
	// leases are cut to it (default 1 hour).
	MappingTTL time.Duration
}

// DefaultUPnPMappingTTL is the default cap on "upnp-portmap" expectations.
const DefaultUPnPMappingTTL = time.Hour

// UPnPDetector labels UPnP control flows ("upnp-control") and IGD port
// mapping requests ("upnp-portmap-add", "upnp-portmap-delete"). An
// AddPortMapping becomes expectations (reason "upnp-portmap") for the
// mapped external port on the router and for the internal client's port;
// a DeletePortMapping, or an error response, removes them.
type UPnPDetector struct {
	maxMsg     int
	mappingTTL time.Duration
}

// NewUPnPDetector returns a UPnP control detector.
func NewUPnPDetector(opts UPnPOptions) *UPnPDetector {
	d := &UPnPDetector{maxMsg: opts.MaxMessage, mappingTTL: opts.MappingTTL}
	if d.maxMsg <= 0 {
		d.maxMsg = 8 << 10
	}
	if d.mappingTTL <= 0 {
		d.mappingTTL = DefaultUPnPMappingTTL
	}
	return d
}

// Name returns "upnp".
func (d *UPnPDetector) Name() string { return "upnp" }

// Budget is two full messages per direction.
func (d *UPnPDetector) Budget() int { return 2 * d.maxMsg }

// UPnPEvidence is what the SSDP and UPnP control detectors record under
// "rasentry.upnp".
type UPnPEvidence struct {
	// Kind is "ssdp", "soap" (a control action), "description" (a device
	// or service description fetch) or "gena" (event subscription or
	// notification).
	Kind        string       `json:"kind"`
	Method      string       `json:"method,omitempty"`
	URI         string       `json:"uri,omitempty"`
	SOAPAction  string       `json:"soap_action,omitempty"`  // the action name, "AddPortMapping"
	ServiceType string       `json:"service_type,omitempty"` // "urn:schemas-upnp-org:service:WANIPConnection:1"
	DeviceType  string       `json:"device_type,omitempty"`  // first deviceType of a fetched description
	Mapping     *UPnPMapping `json:"mapping,omitempty"`
	ExternalIP  string       `json:"external_ip,omitempty"` // from a GetExternalIPAddress response
	Status      int          `json:"status,omitempty"`
	UPnPError   *UPnPError   `json:"upnp_error,omitempty"`
	// SSDP headers (and NT/NTS/SID of GENA).
	ST            string `json:"st,omitempty"`
	NT            string `json:"nt,omitempty"`
	NTS           string `json:"nts,omitempty"`
	USN           string `json:"usn,omitempty"`
	Location      string `json:"location,omitempty"`
	Server        string `json:"server,omitempty"`
	AL            string `json:"al,omitempty"` // PNRP discovery responses: "[ipv6]:port"
	SID           string `json:"sid,omitempty"`
	UserAgent     string `json:"user_agent,omitempty"`
	IGD           bool   `json:"igd,omitempty"`            // about an Internet Gateway Device
	PNRPDiscovery bool   `json:"pnrp_discovery,omitempty"` // PNRP cloud discovery search target
	Actions       int    `json:"actions,omitempty"`        // SOAP actions seen in the flow
	Truncated     bool   `json:"truncated,omitempty"`      // a message was longer than the detector keeps
}

// UPnPMapping is the port mapping of an AddPortMapping, AddAnyPortMapping
// or DeletePortMapping request (UPnP IGD WANIPConnection §2.4.16–2.4.18).
type UPnPMapping struct {
	RemoteHost     string  `json:"remote_host,omitempty"`
	ExternalPort   uint16  `json:"external_port"`
	Protocol       string  `json:"protocol"`
	InternalClient string  `json:"internal_client,omitempty"`
	InternalPort   uint16  `json:"internal_port,omitempty"`
	Description    string  `json:"description,omitempty"`
	LeaseDuration  *uint32 `json:"lease_duration,omitempty"` // seconds; 0 = until deleted
	Enabled        *bool   `json:"enabled,omitempty"`
	ReservedPort   uint16  `json:"reserved_port,omitempty"` // AddAnyPortMapping response
}

// UPnPError is the UPnPError detail of a SOAP fault (UDA 1.1 §3.2.2):
// 402 Invalid Args, 501 Action Failed, 718 ConflictInMappingEntry, ...
type UPnPError struct {
	Code        int    `json:"code"`
	Description string `json:"description,omitempty"`
}

// Expectation reasons announced by the UPnP detectors.
const (
	upnpReasonPortmap = "upnp-portmap"
)

type upnpKind uint8

const (
	upnpKindNone upnpKind = iota
	upnpKindSOAP
	upnpKindDesc
	upnpKindGENA
)

type upnpAction uint8

const (
	upnpActOther upnpAction = iota
	upnpActAdd
	upnpActAddAny
	upnpActDelete
	upnpActDeleteRange
	upnpActExternalIP
)

// upnpHead holds sub-slices of an HTTP request or response head.
type upnpHead struct {
	method, uri, status    []byte
	soapAction, ua, server []byte
	nt, nts, sid, callback []byte
	connection, length, te []byte
	complete               bool // the empty line ending the head was seen
	bodyOff                int
	http10                 bool
}

var upnpMethods = [...]string{"POST", "M-POST", "GET", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE"}

// upnpParseRequest parses a request line and the headers present in p
// (the head may be incomplete). It allocates nothing.
func upnpParseRequest(p []byte, h *upnpHead) bool {
	sp := -1
	for i := 0; i < len(p) && i < 12; i++ {
		if p[i] == ' ' {
			sp = i
			break
		}
	}
	if sp <= 0 {
		return false
	}
	method := p[:sp]
	known := false
	for _, m := range upnpMethods {
		if string(method) == m {
			known = true
			break
		}
	}
	if !known {
		return false
	}
	eol := bytes.IndexByte(p, '\n')
	if eol < 0 || eol > 2048 {
		return false
	}
	line := p[sp+1 : eol]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	sp2 := bytes.LastIndexByte(line, ' ')
	if sp2 <= 0 {
		return false
	}
	uri, version := line[:sp2], line[sp2+1:]
	switch string(version) {
	case "HTTP/1.1":
	case "HTTP/1.0":
		h.http10 = true
	default:
		return false
	}
	if len(uri) == 0 || (uri[0] != '/' && !upnpHasPrefixFold(uri, "http://") && string(uri) != "*") {
		return false
	}
	h.method, h.uri = method, uri
	upnpParseHeaders(p, eol+1, h)
	return true
}

// upnpParseResponse parses a status line "HTTP/1.1 200 OK" and the headers
// present in p.
func upnpParseResponse(p []byte, h *upnpHead) bool {
	if len(p) < 12 || !bytes.HasPrefix(p, []byte("HTTP/1.")) || p[8] != ' ' {
		return false
	}
	st := p[9:12]
	for _, c := range st {
		if c < '0' || c > '9' {
			return false
		}
	}
	eol := bytes.IndexByte(p, '\n')
	if eol < 0 {
		return false
	}
	h.status = st
	h.http10 = p[7] == '0'
	upnpParseHeaders(p, eol+1, h)
	return true
}

func upnpParseHeaders(p []byte, off int, h *upnpHead) {
	it := upnpHeaders{b: p, off: off}
	for {
		name, value, ok := it.next()
		if !ok {
			break
		}
		switch {
		// M-POST carries the action as "01-SOAPACTION" (UDA 1.0 §3.2.1).
		case upnpHasSuffixFold(name, "SOAPACTION"):
			h.soapAction = value
		case upnpEqualFold(name, "USER-AGENT"):
			h.ua = value
		case upnpEqualFold(name, "SERVER"):
			h.server = value
		case upnpEqualFold(name, "NT"):
			h.nt = value
		case upnpEqualFold(name, "NTS"):
			h.nts = value
		case upnpEqualFold(name, "SID"):
			h.sid = value
		case upnpEqualFold(name, "CALLBACK"):
			h.callback = value
		case upnpEqualFold(name, "CONNECTION"):
			h.connection = value
		case upnpEqualFold(name, "CONTENT-LENGTH"):
			h.length = value
		case upnpEqualFold(name, "TRANSFER-ENCODING"):
			h.te = value
		}
	}
	if it.end {
		h.complete = true
		h.bodyOff = upnpHeadEnd(p)
	}
}

// upnpHeadEnd returns the offset just past the empty line that ends the
// head, or -1.
func upnpHeadEnd(p []byte) int {
	if i := bytes.Index(p, []byte("\r\n\r\n")); i >= 0 {
		if j := bytes.Index(p, []byte("\n\n")); j >= 0 && j < i {
			return j + 2
		}
		return i + 4
	}
	if j := bytes.Index(p, []byte("\n\n")); j >= 0 {
		return j + 2
	}
	return -1
}

// upnpSOAPAction splits "urn:...:service:WANIPConnection:1#AddPortMapping"
// (quotes optional) into service type and action.
func upnpSOAPAction(v []byte) (service, action []byte, ok bool) {
	v = bytes.Trim(upnpTrimSpace(v), `"`)
	i := bytes.LastIndexByte(v, '#')
	if i <= 0 || i == len(v)-1 {
		return nil, nil, false
	}
	if !upnpHasPrefixFold(v, "urn:schemas-upnp-org:service:") {
		return nil, nil, false
	}
	return v[:i], v[i+1:], true
}

func upnpActionOf(a []byte) upnpAction {
	switch string(a) {
	case "AddPortMapping":
		return upnpActAdd
	case "AddAnyPortMapping":
		return upnpActAddAny
	case "DeletePortMapping":
		return upnpActDelete
	case "DeletePortMappingRange":
		return upnpActDeleteRange
	case "GetExternalIPAddress":
		return upnpActExternalIP
	}
	return upnpActOther
}

// upnpClassify decides from the first request of a flow whether it is UPnP
// control. It allocates nothing.
func upnpClassify(f *Flow, h *upnpHead) upnpKind {
	switch string(h.method) {
	case "POST", "M-POST":
		if _, _, ok := upnpSOAPAction(h.soapAction); ok {
			return upnpKindSOAP
		}
	case "GET":
		path := h.uri
		if i := bytes.IndexAny(path, "?#"); i >= 0 {
			path = path[:i]
		}
		if upnpHasSuffixFold(path, ".xml") || upnpContainsFold(h.ua, "UPnP/") || upnpExpectedDescription(f) {
			return upnpKindDesc
		}
	case "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE":
		if string(h.uri) == "*" {
			return upnpKindNone // SSDP syntax over TCP is not GENA (protocols.md §4.5)
		}
		if upnpEqualFold(h.nt, "upnp:event") || upnpEqualFold(h.nts, "upnp:propchange") ||
			upnpHasPrefixFold(h.sid, "uuid:") || (string(h.method) == "SUBSCRIBE" && len(h.callback) > 0) {
			return upnpKindGENA
		}
	}
	return upnpKindNone
}

// upnpKindPending marks a first request whose head is cut by the segment
// end before it shows whether it is UPnP; its head is classified once
// complete.
const upnpKindPending upnpKind = 255

// upnpFirstRequest classifies the first payload of a flow without
// allocating. A head cut by the segment end is followed only when the cut
// is early (no header line complete yet) or falls after a SOAPAction
// header name; an ordinary request with a long head (big cookies) is let
// go at once.
func upnpFirstRequest(f *Flow, p []byte) upnpKind {
	var h upnpHead
	if !upnpParseRequest(p, &h) {
		if bytes.IndexByte(p, '\n') < 0 && upnpMethodPrefix(p) {
			return upnpKindPending
		}
		return upnpKindNone
	}
	if kind := upnpClassify(f, &h); kind != upnpKindNone {
		return kind
	}
	if !h.complete && (bytes.Count(p, []byte("\n")) <= 1 || upnpContainsFold(p, "SOAPACTION")) {
		return upnpKindPending
	}
	return upnpKindNone
}

// upnpMethodPrefix reports whether p starts with a UPnP request method and
// a space, or is the start of one (the rest of the request line still to
// come).
func upnpMethodPrefix(p []byte) bool {
	for _, m := range upnpMethods {
		if len(p) > len(m) {
			if string(p[:len(m)]) == m && p[len(m)] == ' ' {
				return true
			}
		} else if len(p) > 0 && string(p) == m[:len(p)] {
			return true
		}
	}
	return false
}

// upnpExpectedDescription reports whether the flow went to a listener that
// an SSDP LOCATION announced (the classifier matches new flows against the
// expectation table and records the match in the flow).
func upnpExpectedDescription(f *Flow) bool {
	x := f.Extension()
	return x != nil && x.Expected != nil && x.Expected.Reason == "upnp-description"
}

// upnpMsg accumulates one HTTP message of one direction, bounded.
type upnpMsg struct {
	buf      []byte
	seen     int // bytes of this message fed, including those not kept
	headDone bool
	head     upnpHead
	total    int // head + Content-Length, -1 while unknown
	chunked  bool
	overflow bool
	scanned  int // body bytes already searched for a description marker
	headScan int // bytes of buf already searched for the end of the head
	chunkPos int // offset in buf of the next chunk-size line not yet passed
	chunkEnd bool
}

// upnpOp is a request waiting for its response.
type upnpOp struct {
	kind    upnpKind
	action  upnpAction
	proto   uint8
	ext     uint16
	client  netip.Addr
	port    uint16
	created time.Time
}

const (
	upnpMaxPending      = 4
	upnpMaxTransactions = 8
)

// upnpFlow is the detector's per-flow state (match path only).
type upnpFlow struct {
	ev           *UPnPEvidence
	dir          [2]upnpMsg
	stopped      [2]bool
	pending      [upnpMaxPending]upnpOp
	npending     int
	transactions int
	closing      bool // a side asked for Connection: close
	cur          int  // pending index of the request being read, -1 when not queued
}

// Inspect reads one TCP segment.
func (d *UPnPDetector) Inspect(ctx *Context, f *Flow, seg *Segment) Status {
	if f.Proto != ProtoTCP {
		return Done
	}
	st, _ := ctx.State(f).(*upnpFlow)
	if st == nil {
		// HTTP clients speak first: the first payload must be a UPnP
		// request, decided without allocating.
		if seg.Dir != ToServer || seg.Gap {
			return Done
		}
		if upnpFirstRequest(f, seg.Payload) == upnpKindNone {
			return Done
		}
		st = &upnpFlow{ev: &UPnPEvidence{}, cur: -1}
		ctx.SetState(f, st)
	}
	if seg.Gap {
		return Done
	}
	d.feed(ctx, f, st, seg.Dir, seg.Payload)
	if st.stopped[ToServer] && st.stopped[ToClient] {
		return Done
	}
	if st.transactions >= upnpMaxTransactions {
		return Done
	}
	if st.closing && st.npending == 0 && st.transactions > 0 && !st.dir[ToServer].partial() {
		return Done
	}
	return Continue
}

func (m *upnpMsg) partial() bool { return m.seen > 0 }

func (m *upnpMsg) reset() {
	buf := m.buf[:0]
	*m = upnpMsg{buf: buf}
}

// feed hands a segment to the message parser of its direction; one segment
// may finish a message and start the next (keep-alive).
func (d *UPnPDetector) feed(ctx *Context, f *Flow, st *upnpFlow, dir Direction, p []byte) {
	m := &st.dir[dir]
	for len(p) > 0 && !st.stopped[dir] {
		n := m.add(p, d.maxMsg)
		if !m.headDone {
			if !d.parseHead(ctx, f, st, dir) {
				if m.overflow {
					st.stopped[dir] = true
				}
				return
			}
			// The segment that completed the head may also hold the next
			// message (keep-alive): give the surplus back.
			if m.total >= 0 && m.seen > m.total {
				n -= m.seen - m.total
				m.seen = m.total
			}
		}
		p = p[n:]
		complete := m.complete()
		if !complete && !m.overflow {
			if dir == ToClient {
				if !d.responseProgress(ctx, f, st) {
					return
				}
				complete = true // a SOAP envelope closed before the connection did
			} else {
				return
			}
		}
		if m.overflow {
			st.ev.Truncated = true
		}
		if dir == ToServer {
			d.requestDone(ctx, f, st)
		} else {
			d.responseDone(ctx, f, st)
		}
		st.transactions++
		if !complete || st.transactions >= upnpMaxTransactions {
			// The rest of an over-long message cannot be framed.
			st.stopped[dir] = true
			return
		}
		m.reset()
	}
}

// add appends what of p belongs to the current message and returns how
// many bytes it took.
func (m *upnpMsg) add(p []byte, max int) int {
	n := len(p)
	if m.headDone && m.total >= 0 && m.seen+n > m.total {
		n = m.total - m.seen
	}
	keep := n
	if room := max - len(m.buf); keep > room {
		keep = room
		m.overflow = true
	}
	if keep > 0 {
		if m.buf == nil {
			m.buf = make([]byte, 0, min(max, 2048))
		}
		m.buf = append(m.buf, p[:keep]...)
	}
	m.seen += n
	return n
}

// complete reports whether the whole message has been fed.
func (m *upnpMsg) complete() bool {
	if !m.headDone {
		return false
	}
	if m.total >= 0 {
		return m.seen >= m.total
	}
	if m.chunked {
		return m.chunksDone()
	}
	return false
}

// chunksDone walks the chunk framing forward from where the last call
// stopped, so a body trickling in small segments costs linear time.
func (m *upnpMsg) chunksDone() bool {
	if m.chunkPos < m.head.bodyOff {
		m.chunkPos = m.head.bodyOff
	}
	for !m.chunkEnd {
		b := m.buf[m.chunkPos:]
		eol := bytes.IndexByte(b, '\n')
		if eol < 0 {
			return false
		}
		line := upnpTrimSpace(b[:eol])
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = upnpTrimSpace(line[:i])
		}
		size, ok := upnpParseHex(line)
		if !ok || size == 0 {
			m.chunkEnd = true // the last chunk, or broken framing: take what there is
			break
		}
		next := uint64(eol+1) + size
		if next > uint64(len(b)) {
			return false
		}
		rest := b[next:]
		switch {
		case len(rest) >= 2 && rest[0] == '\r' && rest[1] == '\n':
			next += 2
		case len(rest) >= 1 && rest[0] == '\n':
			next++
		case len(rest) == 0 || (len(rest) == 1 && rest[0] == '\r'):
			return false
		}
		m.chunkPos += int(next)
	}
	return true
}

// body returns the message body kept so far (de-chunked when needed; the
// de-chunked copy is only made on this match path).
func (m *upnpMsg) body() []byte {
	b := m.buf[m.head.bodyOff:]
	if m.chunked {
		out, _ := upnpDechunk(b, make([]byte, 0, len(b)))
		return out
	}
	return b
}

// upnpDechunk decodes HTTP/1.1 chunked coding (RFC 9112 §7.1). With out
// nil it only reports whether the last chunk was seen.
func upnpDechunk(b []byte, out []byte) ([]byte, bool) {
	for {
		eol := bytes.IndexByte(b, '\n')
		if eol < 0 {
			return out, false
		}
		line := upnpTrimSpace(b[:eol])
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = upnpTrimSpace(line[:i])
		}
		size, ok := upnpParseHex(line)
		if !ok {
			return out, true // broken framing: take what there is
		}
		b = b[eol+1:]
		if size == 0 {
			return out, true
		}
		if uint64(len(b)) < size {
			if out != nil {
				out = append(out, b...)
			}
			return out, false
		}
		if out != nil {
			out = append(out, b[:size]...)
		}
		b = b[size:]
		if len(b) > 0 && b[0] == '\r' {
			b = b[1:]
		}
		if len(b) > 0 && b[0] == '\n' {
			b = b[1:]
		}
	}
}

func upnpParseHex(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 8 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			n = n<<4 | uint64(c-'0')
		case 'a' <= c && c <= 'f':
			n = n<<4 | uint64(c-'a'+10)
		case 'A' <= c && c <= 'F':
			n = n<<4 | uint64(c-'A'+10)
		default:
			return 0, false
		}
	}
	return n, true
}

// parseHead parses the head of the current message once it is complete;
// it reports false while more bytes are needed or when the bytes are not
// HTTP (then the direction stops).
func (d *UPnPDetector) parseHead(ctx *Context, f *Flow, st *upnpFlow, dir Direction) bool {
	m := &st.dir[dir]
	// Search only the bytes added since the last look (and the three
	// before them, for a CRLFCRLF cut in two).
	from := max(m.headScan-3, 0)
	m.headScan = len(m.buf)
	if upnpHeadEnd(m.buf[from:]) < 0 {
		return false
	}
	var h upnpHead
	var ok bool
	if dir == ToServer {
		ok = upnpParseRequest(m.buf, &h)
	} else {
		ok = upnpParseResponse(m.buf, &h)
	}
	if !ok || !h.complete {
		st.stopped[dir] = true
		if f.Labels.Has(LabelUPnPControl) {
			ctx.Counters.CountMalformed(d.Name())
		}
		return false
	}
	m.head = h
	m.headDone = true
	m.total = -1
	switch {
	case upnpContainsFold(h.te, "chunked"):
		m.chunked = true
	case len(h.length) > 0:
		if n, ok := upnpParseUint(h.length, 1<<30); ok {
			m.total = h.bodyOff + int(n)
		}
	case dir == ToServer:
		// A request without Content-Length has no body (RFC 9112 §6.3).
		m.total = h.bodyOff
	default:
		// 1xx, 204 and 304 responses have no body.
		if s := string(h.status); s[0] == '1' || s == "204" || s == "304" {
			m.total = h.bodyOff
		}
	}
	if dir == ToServer {
		d.requestHead(ctx, f, st)
	} else {
		d.responseHead(ctx, f, st)
	}
	// The head may hold more bytes than the message (keep-alive); give the
	// surplus back by trimming what was kept.
	if m.total >= 0 && len(m.buf) > m.total {
		m.buf = m.buf[:m.total]
	}
	return true
}

// requestHead labels a request as soon as its head is known, so an inline
// sensor can act before the body arrives.
func (d *UPnPDetector) requestHead(ctx *Context, f *Flow, st *upnpFlow) {
	h := &st.dir[ToServer].head
	if upnpEqualFold(h.connection, "close") || (h.http10 && !upnpEqualFold(h.connection, "keep-alive")) {
		st.closing = true
	}
	ev := st.ev
	if st.transactions == 0 {
		ev.Method = string(h.method)
		ev.URI = string(h.uri)
		ev.UserAgent = string(h.ua)
	}
	kind := upnpClassify(f, h)
	if kind == upnpKindNone && st.transactions == 0 {
		// A first request that was cut early turned out not to be UPnP.
		st.stopped = [2]bool{true, true}
		return
	}
	op := upnpOp{kind: kind}
	switch kind {
	case upnpKindSOAP:
		service, action, _ := upnpSOAPAction(h.soapAction)
		op.action = upnpActionOf(action)
		ev.Actions++
		// Keep the first action, unless a port-mapping one comes later.
		if ev.SOAPAction == "" || (op.action != upnpActOther && op.action != upnpActExternalIP) {
			ev.Kind = "soap"
			ev.Method = string(h.method)
			ev.URI = string(h.uri)
			ev.SOAPAction = string(action)
			ev.ServiceType = string(service)
			ev.IGD = ev.IGD || ssdpIsIGD(service)
		}
		d.label(f, st, LabelUPnPControl)
		switch op.action {
		case upnpActAdd, upnpActAddAny:
			f.AddLabel(LabelUPnPPortmapAdd, ConfidenceHigh)
		case upnpActDelete, upnpActDeleteRange:
			f.AddLabel(LabelUPnPPortmapDelete, ConfidenceHigh)
		}
	case upnpKindGENA:
		if ev.Kind == "" {
			ev.Kind = "gena"
			ev.NT = string(h.nt)
			ev.NTS = string(h.nts)
			ev.SID = string(h.sid)
		}
		d.label(f, st, LabelUPnPControl)
	case upnpKindDesc:
		// Labelled when the response shows a UPnP description.
	}
	st.cur = -1
	if st.npending < upnpMaxPending {
		st.cur = st.npending
		st.pending[st.npending] = op
		st.npending++
	}
}

// label puts l on the flow and publishes the evidence the first time.
func (d *UPnPDetector) label(f *Flow, st *upnpFlow, l Label) {
	if f.GetEvidence(UPnPEvidenceKey) == nil {
		f.SetEvidence(UPnPEvidenceKey, st.ev)
	}
	f.AddLabel(l, ConfidenceHigh)
	if f.AppProto == AppNone {
		f.AppProto = AppHTTP
	}
}

// requestDone reads the complete body of a port-mapping request.
func (d *UPnPDetector) requestDone(ctx *Context, f *Flow, st *upnpFlow) {
	if st.cur < 0 || st.cur >= st.npending {
		return
	}
	op := &st.pending[st.cur]
	if op.kind != upnpKindSOAP {
		return
	}
	switch op.action {
	case upnpActAdd, upnpActAddAny, upnpActDelete, upnpActDeleteRange:
	default:
		return
	}
	m := &st.dir[ToServer]
	args := upnpParseArgs(m.body())
	if op.action == upnpActDeleteRange {
		d.removeRange(ctx, f, &args)
		return
	}
	mp := args.mapping()
	if op.action == upnpActAdd || op.action == upnpActAddAny || st.ev.Mapping == nil {
		st.ev.Mapping = mp
	}
	op.proto = upnpProto(mp.Protocol)
	op.ext = mp.ExternalPort
	op.created = ctx.Now
	switch op.action {
	case upnpActAdd, upnpActAddAny:
		op.client = args.internalClient
		if !op.client.IsValid() {
			op.client = f.Client.Addr()
		}
		op.port = mp.InternalPort
		d.expectMapping(ctx, f, op, &args)
	case upnpActDelete:
		d.removeMapping(ctx, f.Server.Addr(), op.ext, op.proto)
	}
}

// responseHead records the status of a response.
func (d *UPnPDetector) responseHead(ctx *Context, f *Flow, st *upnpFlow) {
	h := &st.dir[ToClient].head
	if upnpEqualFold(h.connection, "close") {
		st.closing = true
	}
	status, _ := strconv.Atoi(string(h.status))
	if st.npending == 0 {
		return
	}
	op := &st.pending[0]
	if op.kind == upnpKindDesc {
		if status != 200 {
			return
		}
		if st.ev.Server == "" {
			st.ev.Server = string(h.server)
		}
		return
	}
	if op.kind == upnpKindSOAP && op.action != upnpActOther && op.action != upnpActExternalIP {
		st.ev.Status = status // the port-mapping answer outranks others
	} else if st.ev.Status == 0 {
		st.ev.Status = status
	}
	if st.ev.Server == "" {
		st.ev.Server = string(h.server)
	}
}

// responseProgress handles a response whose end is not framed (no
// Content-Length, not chunked: the body runs to the connection's close).
// It labels a description as soon as the UPnP namespace shows, and reports
// true when a SOAP body is complete (its Envelope closed).
func (d *UPnPDetector) responseProgress(ctx *Context, f *Flow, st *upnpFlow) bool {
	if st.npending == 0 {
		return false
	}
	m := &st.dir[ToClient]
	switch st.pending[0].kind {
	case upnpKindDesc:
		if d.checkDescription(f, st) {
			st.describe()
		}
	case upnpKindSOAP:
		return m.total < 0 && !m.chunked && upnpEnvelopeClosed(m.buf[m.head.bodyOff:])
	}
	return false
}

// upnpEnvelopeClosed reports whether a SOAP body ends its Envelope
// ("</s:Envelope>", "</SOAP-ENV:Envelope>").
func upnpEnvelopeClosed(b []byte) bool {
	i := bytes.LastIndex(b, []byte("Envelope>"))
	if i < 0 {
		return false
	}
	j := bytes.LastIndexByte(b[:i], '<')
	return j >= 0 && j+1 < len(b) && b[j+1] == '/'
}

// describe records the first deviceType (or serviceType) of a fetched
// description.
func (st *upnpFlow) describe() {
	if st.ev.DeviceType != "" {
		return
	}
	m := &st.dir[ToClient]
	upnpXMLScan(m.buf[m.head.bodyOff:], func(local, text []byte) bool {
		if string(local) == "deviceType" || string(local) == "serviceType" {
			if t := upnpTrimSpace(text); len(t) > 0 {
				st.ev.DeviceType = string(t)
				st.ev.IGD = st.ev.IGD || ssdpIsIGD(t)
				return false
			}
		}
		return true
	})
}

const upnpNamespace = "urn:schemas-upnp-org:"

func (d *UPnPDetector) checkDescription(f *Flow, st *upnpFlow) bool {
	m := &st.dir[ToClient]
	if f.Labels.Has(LabelUPnPControl) && st.ev.Kind == "description" {
		return true
	}
	if string(m.head.status) != "200" {
		return false
	}
	body := m.buf[m.head.bodyOff:]
	from := m.scanned - len(upnpNamespace)
	if from < 0 {
		from = 0
	}
	if from > len(body) {
		from = len(body)
	}
	m.scanned = len(body)
	if !bytes.Contains(body[from:], []byte(upnpNamespace)) {
		return false
	}
	ev := st.ev
	if ev.Kind == "" {
		ev.Kind = "description"
	}
	if ev.Status == 0 {
		ev.Status = 200
	}
	d.label(f, st, LabelUPnPControl)
	return true
}

// responseDone pairs a complete response with its request.
func (d *UPnPDetector) responseDone(ctx *Context, f *Flow, st *upnpFlow) {
	if st.npending == 0 {
		return
	}
	op := st.pending[0]
	copy(st.pending[:], st.pending[1:st.npending])
	st.npending--
	st.cur--
	m := &st.dir[ToClient]
	status := string(m.head.status)
	switch op.kind {
	case upnpKindDesc:
		if d.checkDescription(f, st) {
			st.describe()
		}
		return
	case upnpKindSOAP:
	default:
		return
	}
	args := upnpParseArgs(m.body())
	if status != "200" {
		if args.errorCode > 0 && (st.ev.UPnPError == nil || op.action != upnpActOther) {
			st.ev.UPnPError = &UPnPError{Code: args.errorCode, Description: args.errorDescription}
		}
		if op.action == upnpActAdd || op.action == upnpActAddAny {
			// The router refused: the mapping does not exist.
			d.removeGroup(ctx, f.ID, op.created, op.proto)
		}
		return
	}
	switch op.action {
	case upnpActAddAny:
		if args.reservedPort != 0 && st.ev.Mapping != nil {
			st.ev.Mapping.ReservedPort = args.reservedPort
			if args.reservedPort != op.ext {
				d.moveExternalPort(ctx, f, &op, args.reservedPort)
			}
		}
	case upnpActExternalIP:
		if args.externalIP.IsValid() {
			st.ev.ExternalIP = args.externalIP.String()
			d.expectExternal(ctx, f.Server.Addr(), args.externalIP)
		}
	}
}

// upnpArgs are the SOAP arguments the detector reads.
type upnpArgs struct {
	remoteHost, protocol, internalClientText, description []byte
	externalPort, internalPort, reservedPort              uint16
	lease                                                 uint32
	leaseSet, enabled, enabledSet                         bool
	startPort, endPort                                    uint16
	internalClient, externalIP                            netip.Addr
	errorCode                                             int
	errorDescription                                      string
}

// upnpParseArgs reads the arguments of a SOAP body whatever namespace
// prefixes it uses ("<m:AddPortMapping>", "<u:...>", none).
func upnpParseArgs(body []byte) upnpArgs {
	var a upnpArgs
	upnpXMLScan(body, func(local, text []byte) bool {
		text = upnpTrimSpace(text)
		switch string(local) {
		case "NewRemoteHost":
			a.remoteHost = text
		case "NewExternalPort":
			a.externalPort = upnpPort(text)
		case "NewProtocol":
			a.protocol = text
		case "NewInternalPort":
			a.internalPort = upnpPort(text)
		case "NewInternalClient":
			a.internalClientText = text
			a.internalClient, _ = netip.ParseAddr(string(text))
		case "NewEnabled":
			a.enabledSet = true
			a.enabled = string(text) == "1" || upnpEqualFold(text, "true") || upnpEqualFold(text, "yes")
		case "NewPortMappingDescription":
			a.description = text
		case "NewLeaseDuration":
			if n, ok := upnpParseUint(text, 1<<32-1); ok {
				a.lease, a.leaseSet = uint32(n), true
			}
		case "NewReservedPort":
			a.reservedPort = upnpPort(text)
		case "NewStartPort":
			a.startPort = upnpPort(text)
		case "NewEndPort":
			a.endPort = upnpPort(text)
		case "NewExternalIPAddress":
			a.externalIP, _ = netip.ParseAddr(string(text))
		case "errorCode":
			if n, ok := upnpParseUint(text, 9999); ok {
				a.errorCode = int(n)
			}
		case "errorDescription":
			a.errorDescription = upnpUnescape(text)
		}
		return true
	})
	return a
}

func upnpPort(b []byte) uint16 {
	n, ok := upnpParseUint(b, 65535)
	if !ok {
		return 0
	}
	return uint16(n)
}

func upnpProto(p string) uint8 {
	switch {
	case strings.EqualFold(p, "TCP"):
		return ProtoTCP
	case strings.EqualFold(p, "UDP"):
		return ProtoUDP
	}
	return 0
}

func (a *upnpArgs) mapping() *UPnPMapping {
	mp := &UPnPMapping{
		RemoteHost:     upnpUnescape(a.remoteHost),
		ExternalPort:   a.externalPort,
		Protocol:       upnpUnescape(a.protocol),
		InternalClient: upnpUnescape(a.internalClientText),
		InternalPort:   a.internalPort,
		Description:    upnpUnescape(a.description),
	}
	if a.leaseSet {
		l := a.lease
		mp.LeaseDuration = &l
	}
	if a.enabledSet {
		e := a.enabled
		mp.Enabled = &e
	}
	return mp
}

// expectMapping announces the listeners an AddPortMapping opens: the
// external port, on the router address the request went to (the WAN
// address is not visible from the LAN; a GetExternalIPAddress answer adds
// it later), and the internal client's port that the router forwards to.
// NewRemoteHost, when set, is the only peer allowed to connect.
func (d *UPnPDetector) expectMapping(ctx *Context, f *Flow, op *upnpOp, a *upnpArgs) {
	if ctx.Expect == nil || op.proto == 0 {
		return
	}
	ttl := d.mappingTTL
	if a.lease > 0 && time.Duration(a.lease)*time.Second < ttl {
		ttl = time.Duration(a.lease) * time.Second
	}
	peer, _ := netip.ParseAddr(string(a.remoteHost))
	desc := upnpUnescape(a.description)
	e := Expectation{
		Port:     op.ext,
		Proto:    op.proto,
		Reason:   upnpReasonPortmap,
		Service:  desc,
		FromFlow: f.ID, FromClient: f.Client, FromServer: f.Server,
		Peer:    peer,
		Created: op.created,
		Expires: op.created.Add(ttl),
	}
	e.Addr = f.Server.Addr()
	ctx.Expect.Add(e)
	e.Addr, e.Port = op.client, op.port
	ctx.Expect.Add(e)
}

// upnpMaxMoves bounds how many expectations one response rewrites.
const upnpMaxMoves = 16

// expectExternal copies the router's mappings to its WAN address, learnt
// from a GetExternalIPAddress response.
func (d *UPnPDetector) expectExternal(ctx *Context, router, external netip.Addr) {
	if ctx.Expect == nil {
		return
	}
	router, external = router.Unmap(), external.Unmap()
	if router == external {
		return
	}
	var add [upnpMaxMoves]Expectation
	n := 0
	ctx.Expect.Each(func(e *Expectation) {
		if n < len(add) && e.Reason == upnpReasonPortmap && e.Addr == router {
			add[n] = *e
			add[n].Addr = external
			add[n].Met = 0
			n++
		}
	})
	for i := 0; i < n; i++ {
		ctx.Expect.Add(add[i])
	}
}

// moveExternalPort rewrites the router-side expectations of an
// AddAnyPortMapping whose router reserved another external port.
func (d *UPnPDetector) moveExternalPort(ctx *Context, f *Flow, op *upnpOp, reserved uint16) {
	if ctx.Expect == nil {
		return
	}
	var moved [upnpMaxMoves]Expectation
	n := 0
	ctx.Expect.Each(func(e *Expectation) {
		if n < len(moved) && e.Reason == upnpReasonPortmap && e.FromFlow == f.ID &&
			e.Created.Equal(op.created) && e.Proto == op.proto && e.Port == op.ext && e.Addr != op.client {
			moved[n] = *e
			n++
		}
	})
	for i := 0; i < n; i++ {
		ctx.Expect.Remove(moved[i].Addr, moved[i].Port, moved[i].Proto)
		moved[i].Port = reserved
		ctx.Expect.Add(moved[i])
	}
}

// removeMapping removes the mapping of external port ext on router and
// every expectation announced with it (its internal client, its WAN copy).
func (d *UPnPDetector) removeMapping(ctx *Context, router netip.Addr, ext uint16, proto uint8) {
	if ctx.Expect == nil || proto == 0 {
		return
	}
	router = router.Unmap()
	var from uint64
	var created time.Time
	found := false
	ctx.Expect.Each(func(e *Expectation) {
		if !found && e.Reason == upnpReasonPortmap && e.Addr == router && e.Port == ext && e.Proto == proto {
			from, created, found = e.FromFlow, e.Created, true
		}
	})
	ctx.Expect.Remove(router, ext, proto)
	if found {
		d.removeGroup(ctx, from, created, proto)
	}
}

// removeRange handles DeletePortMappingRange (IGD:2): every mapping of the
// router in [NewStartPort, NewEndPort].
func (d *UPnPDetector) removeRange(ctx *Context, f *Flow, a *upnpArgs) {
	if ctx.Expect == nil {
		return
	}
	proto := upnpProto(string(a.protocol))
	router := f.Server.Addr().Unmap()
	var ports [upnpMaxMoves]uint16
	n := 0
	ctx.Expect.Each(func(e *Expectation) {
		if n < len(ports) && e.Reason == upnpReasonPortmap && e.Addr == router && e.Proto == proto &&
			e.Port >= a.startPort && e.Port <= a.endPort {
			ports[n] = e.Port
			n++
		}
	})
	for i := 0; i < n; i++ {
		d.removeMapping(ctx, router, ports[i], proto)
	}
}

// removeGroup removes the expectations one AddPortMapping announced: they
// share the announcing flow and creation time.
func (d *UPnPDetector) removeGroup(ctx *Context, from uint64, created time.Time, proto uint8) {
	if ctx.Expect == nil {
		return
	}
	var del [upnpMaxMoves]Expectation
	n := 0
	ctx.Expect.Each(func(e *Expectation) {
		if n < len(del) && e.Reason == upnpReasonPortmap && e.FromFlow == from && e.Created.Equal(created) && e.Proto == proto {
			del[n] = *e
			n++
		}
	})
	for i := 0; i < n; i++ {
		ctx.Expect.Remove(del[i].Addr, del[i].Port, del[i].Proto)
	}
}

// upnpXMLScan calls fn with the local name (namespace prefix removed) of
// every start tag in b and the character data that follows it up to the
// next tag. It is a bounded, forgiving scanner, not a validating parser:
// UPnP stacks emit sloppy XML, and only leaf values are needed. fn returns
// false to stop.
func upnpXMLScan(b []byte, fn func(local, text []byte) bool) {
	i := 0
	for i < len(b) {
		lt := bytes.IndexByte(b[i:], '<')
		if lt < 0 {
			return
		}
		i += lt + 1
		if i >= len(b) {
			return
		}
		switch b[i] {
		case '!', '?', '/':
			end := []byte(">")
			if bytes.HasPrefix(b[i:], []byte("!--")) {
				end = []byte("-->")
			} else if bytes.HasPrefix(b[i:], []byte("![CDATA[")) {
				end = []byte("]]>")
			}
			e := bytes.Index(b[i:], end)
			if e < 0 {
				return
			}
			i += e + len(end)
			continue
		}
		j := i
		for j < len(b) && b[j] != ' ' && b[j] != '\t' && b[j] != '\r' && b[j] != '\n' && b[j] != '>' && b[j] != '/' {
			j++
		}
		name := b[i:j]
		k := j
		var quote byte
		for k < len(b) {
			c := b[k]
			if quote != 0 {
				if c == quote {
					quote = 0
				}
			} else if c == '"' || c == '\'' {
				quote = c
			} else if c == '>' {
				break
			}
			k++
		}
		if k >= len(b) {
			return
		}
		selfClosing := b[k-1] == '/'
		i = k + 1
		if c := bytes.LastIndexByte(name, ':'); c >= 0 {
			name = name[c+1:]
		}
		var text []byte
		if !selfClosing {
			rest := b[i:]
			if bytes.HasPrefix(rest, []byte("<![CDATA[")) {
				if e := bytes.Index(rest, []byte("]]>")); e >= 0 {
					text = rest[len("<![CDATA["):e]
				}
			} else if e := bytes.IndexByte(rest, '<'); e >= 0 {
				text = rest[:e]
			} else {
				text = rest
			}
		}
		if !fn(name, text) {
			return
		}
	}
}

// upnpUnescape decodes the predefined XML entities and character
// references of a text value.
func upnpUnescape(b []byte) string {
	if bytes.IndexByte(b, '&') < 0 {
		return string(b)
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '&' {
			out = append(out, b[i])
			continue
		}
		semi := bytes.IndexByte(b[i:], ';')
		if semi < 0 || semi > 10 {
			out = append(out, b[i])
			continue
		}
		ent := b[i+1 : i+semi]
		var r rune = -1
		switch string(ent) {
		case "amp":
			r = '&'
		case "lt":
			r = '<'
		case "gt":
			r = '>'
		case "quot":
			r = '"'
		case "apos":
			r = '\''
		default:
			if len(ent) > 1 && ent[0] == '#' {
				var n uint64
				var ok bool
				if ent[1] == 'x' || ent[1] == 'X' {
					n, ok = upnpParseHex(ent[2:])
				} else {
					n, ok = upnpParseUint(ent[1:], 0x10FFFF)
				}
				if ok && n <= 0x10FFFF {
					r = rune(n)
				}
			}
		}
		if r < 0 {
			out = append(out, b[i])
			continue
		}
		out = append(out, string(r)...)
		i += semi
	}
	return string(out)
}
