package classify

import (
	"bytes"
	"net/netip"
	"time"
)

// SSDP (Simple Service Discovery Protocol, UPnP Device Architecture 1.x §1):
// HTTP-shaped messages in single UDP datagrams. Searches go to UDP 1900 on
// 239.255.255.250, ff02::c or ff05::c; responses come back unicast from the
// device's port 1900, 1901 or an ephemeral port (protocols.md §4.1), so the
// detector decides by the message itself on any UDP port.

// SSDPOptions configures the SSDP detector.
type SSDPOptions struct {
	// MaxDatagrams is how many datagrams per direction of one flow the
	// detector reads while waiting for an Internet Gateway Device search or
	// notification (default 8). NOTIFY bursts announce the root device
	// first and the IGD a few datagrams later.
	MaxDatagrams int
	// DescriptionTTL bounds how long the device description named by a
	// LOCATION header stays expected (the message's CACHE-CONTROL max-age
	// is used when shorter; default 30 minutes).
	DescriptionTTL time.Duration
}

// DefaultSSDPDescriptionTTL is the default lifetime of a "upnp-description"
// expectation.
const DefaultSSDPDescriptionTTL = 30 * time.Minute

// SSDPDetector labels SSDP searches, responses and notifications ("ssdp"),
// and those about an Internet Gateway Device ("ssdp-igd-search"). The URL
// in a LOCATION header becomes an expectation (reason "upnp-description")
// so the following description fetch is recognised on any TCP port.
//
// Its evidence is a *UPnPEvidence stored under "upnp" (the key the SOAP
// control flows use too), with app_proto "ssdp".
type SSDPDetector struct {
	maxDatagrams int
	descTTL      time.Duration
}

// NewSSDPDetector returns an SSDP detector.
func NewSSDPDetector(opts SSDPOptions) *SSDPDetector {
	d := &SSDPDetector{maxDatagrams: opts.MaxDatagrams, descTTL: opts.DescriptionTTL}
	if d.maxDatagrams <= 0 {
		d.maxDatagrams = 8
	}
	if d.descTTL <= 0 {
		d.descTTL = DefaultSSDPDescriptionTTL
	}
	return d
}

// Name returns "ssdp" (used for malformed counts; evidence is kept under
// "upnp").
func (d *SSDPDetector) Name() string { return "ssdp" }

// Budget covers MaxDatagrams full-size datagrams.
func (d *SSDPDetector) Budget() int { return d.maxDatagrams * 1500 }

// UPnPEvidenceKey is the record key ("rasentry.upnp") under which both the
// SSDP and the UPnP control detector store their *UPnPEvidence.
const UPnPEvidenceKey = "upnp"

// ssdpKind says which of the three SSDP start lines a datagram carries.
type ssdpKind uint8

const (
	ssdpNone ssdpKind = iota
	ssdpSearch
	ssdpNotify
	ssdpResponse
)

// ssdpMessage holds sub-slices of one datagram; parsing it allocates nothing.
type ssdpMessage struct {
	kind                     ssdpKind
	st, nt, nts, usn, man    []byte
	location, server, ua, al []byte
	cacheControl             []byte
}

var (
	ssdpSearchLine   = []byte("M-SEARCH * HTTP/1.1")
	ssdpNotifyLine   = []byte("NOTIFY * HTTP/1.1")
	ssdpResponseLine = []byte("HTTP/1.1 200")
)

// ssdpStartLine recognises the start line and returns the offset of the
// first header line. Methods and the HTTP version are case-sensitive
// (RFC 9110 §9.1); "HTTP/1.0" is not SSDP (protocols.md §4.5).
func ssdpStartLine(p []byte) (ssdpKind, int) {
	var k ssdpKind
	var n int
	switch {
	case bytes.HasPrefix(p, ssdpSearchLine):
		k, n = ssdpSearch, len(ssdpSearchLine)
	case bytes.HasPrefix(p, ssdpNotifyLine):
		k, n = ssdpNotify, len(ssdpNotifyLine)
	case bytes.HasPrefix(p, ssdpResponseLine):
		k, n = ssdpResponse, len(ssdpResponseLine)
		// "HTTP/1.1 200 OK": the reason phrase is free text.
		if n < len(p) && p[n] == ' ' {
			i := bytes.IndexByte(p[n:], '\n')
			if i < 0 {
				return ssdpNone, 0
			}
			return k, n + i + 1
		}
	default:
		return ssdpNone, 0
	}
	switch {
	case n+1 < len(p) && p[n] == '\r' && p[n+1] == '\n':
		return k, n + 2
	case n < len(p) && p[n] == '\n':
		return k, n + 1
	}
	return ssdpNone, 0
}

// parseSSDP fills m from datagram p and reports whether it is SSDP: a start
// line plus the headers UDA 1.1 requires of that message (ST or MAN
// "ssdp:discover" for M-SEARCH, NT or NTS for NOTIFY, ST with USN or
// LOCATION for a search response). A bare start line is not SSDP: Plex's
// GDM discovery sends "M-SEARCH * HTTP/1.1" alone to UDP 32412.
func parseSSDP(p []byte, m *ssdpMessage) bool {
	kind, off := ssdpStartLine(p)
	if kind == ssdpNone {
		return false
	}
	m.kind = kind
	it := upnpHeaders{b: p, off: off}
	for {
		name, value, ok := it.next()
		if !ok {
			break
		}
		switch {
		case upnpEqualFold(name, "ST"):
			m.st = value
		case upnpEqualFold(name, "NT"):
			m.nt = value
		case upnpEqualFold(name, "NTS"):
			m.nts = value
		case upnpEqualFold(name, "USN"):
			m.usn = value
		case upnpEqualFold(name, "MAN"):
			m.man = value
		case upnpEqualFold(name, "LOCATION"):
			m.location = value
		case upnpEqualFold(name, "SERVER"):
			m.server = value
		case upnpEqualFold(name, "USER-AGENT"):
			m.ua = value
		case upnpEqualFold(name, "AL"):
			m.al = value
		case upnpEqualFold(name, "CACHE-CONTROL"):
			m.cacheControl = value
		}
	}
	switch kind {
	case ssdpSearch:
		return len(m.st) > 0 || upnpContainsFold(m.man, "ssdp:discover")
	case ssdpNotify:
		return len(m.nt) > 0 || len(m.nts) > 0
	case ssdpResponse:
		return len(m.st) > 0 && (len(m.usn) > 0 || len(m.location) > 0)
	}
	return false
}

// ssdpIGDTypes are the search targets and notification types that mean an
// Internet Gateway Device or its port-mapping services (protocols.md §4.2,
// miniupnpd's known-ST table). "ssdp:all" and "upnp:rootdevice" find every
// device and are not IGD-specific; WANCommonInterfaceConfig and
// Layer3Forwarding only report link state and routing.
var ssdpIGDTypes = []string{
	"urn:schemas-upnp-org:device:InternetGatewayDevice:",
	"urn:schemas-upnp-org:device:WANDevice:",
	"urn:schemas-upnp-org:device:WANConnectionDevice:",
	"urn:schemas-upnp-org:service:WANIPConnection:",
	"urn:schemas-upnp-org:service:WANPPPConnection:",
	"urn:schemas-upnp-org:service:WANIPv6FirewallControl:",
}

// ssdpPNRPPrefix starts the search target of PNRP cloud discovery
// ([MS-PNRP] §3.1.4.2.2, protocols.md §4.5).
const ssdpPNRPPrefix = "urn:Microsoft Windows Peer Name Resolution Protocol:"

func ssdpIsIGD(t []byte) bool {
	for _, p := range ssdpIGDTypes {
		if upnpHasPrefixFold(t, p) {
			return true
		}
	}
	return false
}

// Inspect reads one datagram.
func (d *SSDPDetector) Inspect(ctx *Context, f *Flow, seg *Segment) Status {
	if f.Proto != ProtoUDP {
		return Done
	}
	var m ssdpMessage
	if !parseSSDP(seg.Payload, &m) {
		if !f.Labels.Has(LabelSSDP) {
			// A start line without SSDP headers on the SSDP port is broken
			// SSDP; elsewhere (Plex GDM on 32412) it is another protocol.
			if m.kind != ssdpNone && ssdpPortHint(f) {
				ctx.Counters.CountMalformed(d.Name())
			}
			return Done
		}
		return d.more(f, seg)
	}
	d.record(ctx, f, &m)
	return d.more(f, seg)
}

func (d *SSDPDetector) more(f *Flow, seg *Segment) Status {
	if f.Labels.Has(LabelSSDPIGDSearch) || seg.Index+1 >= d.maxDatagrams {
		return Done
	}
	return Continue
}

func ssdpPortHint(f *Flow) bool {
	return f.Server.Port() == 1900 || f.Client.Port() == 1900
}

// record labels the flow and fills its evidence from a recognised datagram.
// Strings are copied only for the first message and for the first IGD one.
func (d *SSDPDetector) record(ctx *Context, f *Flow, m *ssdpMessage) {
	target := m.st
	if m.kind == ssdpNotify {
		target = m.nt
	}
	igd := ssdpIsIGD(target)
	first := !f.Labels.Has(LabelSSDP)
	upgrade := igd && !f.Labels.Has(LabelSSDPIGDSearch)

	f.AddLabel(LabelSSDP, ConfidenceHigh)
	if f.AppProto == AppNone {
		f.AppProto = AppSSDP
	}
	if igd {
		f.AddLabel(LabelSSDPIGDSearch, ConfidenceHigh)
	}

	ev, _ := f.GetEvidence(UPnPEvidenceKey).(*UPnPEvidence)
	if ev == nil {
		ev = &UPnPEvidence{Kind: "ssdp"}
		f.SetEvidence(UPnPEvidenceKey, ev)
	}
	newLocation := len(m.location) > 0 && string(m.location) != ev.Location
	if first || upgrade {
		ev.fillSSDP(m)
		ev.IGD = ev.IGD || igd
	}
	if newLocation && m.kind != ssdpSearch && !upnpContainsFold(m.nts, "ssdp:byebye") {
		d.expectDescription(ctx, f, m)
	}
}

func (ev *UPnPEvidence) fillSSDP(m *ssdpMessage) {
	switch m.kind {
	case ssdpSearch:
		ev.Method = "M-SEARCH"
	case ssdpNotify:
		ev.Method = "NOTIFY"
	case ssdpResponse:
		ev.Method = ""
		ev.Status = 200
	}
	ev.ST = string(m.st)
	ev.NT = string(m.nt)
	ev.NTS = string(m.nts)
	ev.USN = string(m.usn)
	ev.Location = string(m.location)
	ev.Server = string(m.server)
	ev.UserAgent = string(m.ua)
	ev.AL = string(m.al)
	ev.PNRPDiscovery = upnpHasPrefixFold(m.st, ssdpPNRPPrefix) || upnpHasPrefixFold(m.nt, ssdpPNRPPrefix)
}

// expectDescription announces the TCP listener named by LOCATION
// ("http://192.168.1.1:5000/rootDesc.xml", UDA 1.1 §1.1.2) so the
// description fetch and the SOAP control that follow are tied to this
// discovery. Host names are skipped: only literal addresses can be matched.
func (d *SSDPDetector) expectDescription(ctx *Context, f *Flow, m *ssdpMessage) {
	if ctx.Expect == nil {
		return
	}
	addr, port, ok := upnpParseHTTPURL(m.location)
	if !ok {
		return
	}
	ttl := d.descTTL
	if age, ok := ssdpMaxAge(m.cacheControl); ok && age < ttl {
		ttl = age
	}
	if ttl < time.Minute {
		ttl = time.Minute
	}
	ctx.Expect.Add(Expectation{
		Addr:     addr,
		Port:     port,
		Proto:    ProtoTCP,
		Reason:   "upnp-description",
		Service:  "upnp",
		FromFlow: f.ID, FromClient: f.Client, FromServer: f.Server,
		Created: ctx.Now,
		Expires: ctx.Now.Add(ttl),
	})
}

// ssdpMaxAge reads "max-age=N" from a CACHE-CONTROL value.
func ssdpMaxAge(v []byte) (time.Duration, bool) {
	i := upnpIndexFold(v, "max-age")
	if i < 0 {
		return 0, false
	}
	v = upnpTrimSpace(v[i+len("max-age"):])
	if len(v) == 0 || v[0] != '=' {
		return 0, false
	}
	n, ok := upnpParseUint(upnpLeadingDigits(upnpTrimSpace(v[1:])), 1<<31)
	if !ok {
		return 0, false
	}
	return time.Duration(n) * time.Second, true
}

// upnpParseHTTPURL returns the literal address and port of an http URL
// ("http://[fe80::1]:2869/desc" or "http://10.0.0.1/igd.xml", port 80 when
// absent).
func upnpParseHTTPURL(u []byte) (netip.Addr, uint16, bool) {
	u = upnpTrimSpace(u)
	if !upnpHasPrefixFold(u, "http://") {
		return netip.Addr{}, 0, false
	}
	u = u[len("http://"):]
	if i := bytes.IndexAny(u, "/?#"); i >= 0 {
		u = u[:i]
	}
	if i := bytes.LastIndexByte(u, '@'); i >= 0 {
		u = u[i+1:]
	}
	var host, port []byte
	if len(u) > 0 && u[0] == '[' {
		end := bytes.IndexByte(u, ']')
		if end < 0 {
			return netip.Addr{}, 0, false
		}
		host, u = u[1:end], u[end+1:]
		if len(u) > 0 {
			if u[0] != ':' {
				return netip.Addr{}, 0, false
			}
			port = u[1:]
		}
	} else if i := bytes.IndexByte(u, ':'); i >= 0 {
		host, port = u[:i], u[i+1:]
	} else {
		host = u
	}
	p := uint64(80)
	if len(port) > 0 {
		var ok bool
		if p, ok = upnpParseUint(port, 65535); !ok || p == 0 {
			return netip.Addr{}, 0, false
		}
	}
	addr, err := netip.ParseAddr(string(host))
	if err != nil {
		return netip.Addr{}, 0, false
	}
	return addr.WithZone(""), uint16(p), true
}

// upnpHeaders walks "Name: value" lines of an HTTP header block without
// allocating. It stops at the empty line that ends the block, or at the end
// of the buffer; lines without a colon are skipped.
type upnpHeaders struct {
	b   []byte
	off int
	end bool // the empty line was reached
}

func (h *upnpHeaders) next() (name, value []byte, ok bool) {
	for h.off < len(h.b) {
		line := h.b[h.off:]
		i := bytes.IndexByte(line, '\n')
		if i < 0 {
			// A last line without its newline is still a header (SSDP
			// senders differ on the final CRLF).
			h.off = len(h.b)
		} else {
			line = line[:i]
			h.off += i + 1
		}
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line) == 0 {
			h.end = true
			h.off = len(h.b)
			return nil, nil, false
		}
		c := bytes.IndexByte(line, ':')
		if c <= 0 {
			continue
		}
		return upnpTrimSpace(line[:c]), upnpTrimSpace(line[c+1:]), true
	}
	return nil, nil, false
}

func upnpLower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// upnpEqualFold compares ASCII case-insensitively.
func upnpEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if upnpLower(b[i]) != upnpLower(s[i]) {
			return false
		}
	}
	return true
}

func upnpHasPrefixFold(b []byte, s string) bool {
	return len(b) >= len(s) && upnpEqualFold(b[:len(s)], s)
}

func upnpHasSuffixFold(b []byte, s string) bool {
	return len(b) >= len(s) && upnpEqualFold(b[len(b)-len(s):], s)
}

// upnpIndexFold returns the index of s in b, ignoring ASCII case, or -1.
func upnpIndexFold(b []byte, s string) int {
	if len(s) == 0 {
		return 0
	}
	c0 := upnpLower(s[0])
	for i := 0; i+len(s) <= len(b); i++ {
		if upnpLower(b[i]) == c0 && upnpEqualFold(b[i:i+len(s)], s) {
			return i
		}
	}
	return -1
}

func upnpContainsFold(b []byte, s string) bool { return upnpIndexFold(b, s) >= 0 }

func upnpTrimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r' || b[len(b)-1] == '\n') {
		b = b[:len(b)-1]
	}
	return b
}

func upnpLeadingDigits(b []byte) []byte {
	i := 0
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return b[:i]
}

// upnpParseUint parses decimal digits only, up to max.
func upnpParseUint(b []byte, max uint64) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
		if n > max {
			return 0, false
		}
	}
	return n, true
}
