package classify

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf16"
)

// The RDP detector recognises Remote Desktop Protocol connections by the
// structure of their first bytes (protocols.md §2): over TCP the X.224
// Connection Request / Confirm pair inside TPKT (optionally behind an MS-RDPEPS
// pre-connection PDU, or behind a SOCKS or HTTP CONNECT proxy handshake), and
// over UDP the MS-RDPEUDP SYN / SYN+ACK (rdpudp.go). Where Standard RDP
// Security leaves the MCS Connect-Initial in clear, it reads the client core
// data and the static channel list, which is where Remote Assistance shows
// itself (§2.7).

// rdpEvidenceName is the detector's name and the key of its evidence.
const rdpEvidenceName = "rdp"

// Sizes that bound the detector's work per flow.
const (
	rdpBudget      = 4096 // payload bytes per direction: enough for proxy + PCB + CR + MCS Connect-Initial
	rdpClientBuf   = 4096 // client bytes kept while a message spans segments
	rdpServerBuf   = 1024 // server bytes kept (proxy replies and the CC are short)
	rdpMaxCR       = 1024 // longest X.224 CR accepted (cookie or routing token + neg req + correlation info)
	rdpMaxPCB      = 2048 // longest RDPEPS pre-connection PDU accepted
	rdpMaxProxyMsg = 2048 // longest proxy handshake message (HTTP CONNECT headers)
	rdpMaxChannels = 31   // MS-RDPBCGR 2.2.1.3.4: at most 31 static channels
	rdpWaitSegs    = 8    // client segments to sit through while waiting for a server CC
)

// RDP security protocols (MS-RDPBCGR 2.2.1.1.1 requestedProtocols,
// 2.2.1.2.1 selectedProtocol).
const (
	rdpProtocolRDP      uint32 = 0x00
	rdpProtocolSSL      uint32 = 0x01
	rdpProtocolHybrid   uint32 = 0x02
	rdpProtocolRDSTLS   uint32 = 0x04
	rdpProtocolHybridEx uint32 = 0x08
	rdpProtocolRDSAAD   uint32 = 0x10
)

var rdpProtocolBits = [...]struct {
	bit  uint32
	name string
}{
	{rdpProtocolSSL, "ssl"},
	{rdpProtocolHybrid, "hybrid"},
	{rdpProtocolRDSTLS, "rdstls"},
	{rdpProtocolHybridEx, "hybrid_ex"},
	{rdpProtocolRDSAAD, "rdsaad"},
}

// RDPEvidence is what the RDP detector learnt about a flow. It is written
// under rasentry.rdp and updated in place as more of the flow is read.
type RDPEvidence struct {
	// Transport is "tcp" or "udp".
	Transport string `json:"transport"`
	// Proxy names a proxy handshake skipped before RDP: "socks5", "socks4"
	// or "http-connect"; ProxyTarget is the host:port asked of the proxy.
	Proxy       string `json:"proxy,omitempty"`
	ProxyTarget string `json:"proxy_target,omitempty"`
	// Preconnection is the MS-RDPEPS pre-connection PDU, when one was sent.
	Preconnection *RDPPreconnection `json:"preconnection,omitempty"`
	// Cookie is the value of "Cookie: mstshash=" (usually a user name);
	// RoutingToken is any other cookie line (load-balancer token,
	// "msts=...").
	Cookie       string `json:"cookie,omitempty"`
	RoutingToken string `json:"routing_token,omitempty"`
	// RequestedProtocols names the protocols of the client's RDP_NEG_REQ
	// ("rdp" when it asks for Standard RDP Security only);
	// RequestedProtocolsRaw is its bit mask. Both are absent when the CR
	// carries no negotiation request.
	RequestedProtocols    []string `json:"requested_protocols,omitempty"`
	RequestedProtocolsRaw *uint32  `json:"requested_protocols_raw,omitempty"`
	// SelectedProtocol is the server's RDP_NEG_RSP choice; "rdp" also when
	// the server answered a CC without negotiation data (legacy Standard
	// RDP Security).
	SelectedProtocol string `json:"selected_protocol,omitempty"`
	// NegFailure is the RDP_NEG_FAILURE code, NegFailureReason its name.
	NegFailure       uint32 `json:"neg_failure,omitempty"`
	NegFailureReason string `json:"neg_failure_reason,omitempty"`
	// ServerReply says what answered the CR: "x224-cc", or "other" when the
	// server spoke something else (an RDP probe to a non-RDP service).
	ServerReply string `json:"server_reply,omitempty"`
	// Client core data and channel list from the MCS Connect-Initial, only
	// readable under Standard RDP Security.
	ClientName     string   `json:"client_name,omitempty"`
	ClientBuild    uint32   `json:"client_build,omitempty"`
	KeyboardLayout uint32   `json:"keyboard_layout,omitempty"`
	Channels       []string `json:"channels,omitempty"`
	// RAReason says why the flow is an rdp-ra-candidate: "ra-channels" or
	// "standard-security-nonstandard-port".
	RAReason string `json:"ra_reason,omitempty"`
	// RDP over UDP (MS-RDPEUDP): the version from the SYNEX payload
	// (1, 2, or 3 = MS-RDPEUDP2 follows), whether the lossy (DTLS) mode was
	// asked for, and how far the handshake was seen: "syn", "syn-ack" or
	// "mid-stream".
	UDPVersion uint8  `json:"udp_version,omitempty"`
	UDPLossy   bool   `json:"udp_lossy,omitempty"`
	UDPState   string `json:"udp_state,omitempty"`
}

// RDPPreconnection is an MS-RDPEPS RDP_PRECONNECTION_PDU (V1 or V2).
type RDPPreconnection struct {
	Version uint32 `json:"version"`
	ID      uint32 `json:"id"`
	PCB     string `json:"pcb,omitempty"` // V2 only: the session selection string
}

// RDPOptions configures the RDP detector.
type RDPOptions struct {
	// StandardPorts are the ports ordinary Remote Desktop listens on.
	// Standard RDP Security to any other port marks a flow as a Remote
	// Assistance candidate (protocols.md §2.7); empty means {3389}.
	StandardPorts []uint16
}

// RDPDetector recognises RDP over TCP and UDP. One value serves every flow;
// per-flow state lives in the flow.
type RDPDetector struct {
	standard []uint16
}

// NewRDPDetector returns an RDP detector.
func NewRDPDetector(opts RDPOptions) *RDPDetector {
	d := &RDPDetector{standard: append([]uint16(nil), opts.StandardPorts...)}
	if len(d.standard) == 0 {
		d.standard = []uint16{3389}
	}
	return d
}

// Name returns "rdp".
func (d *RDPDetector) Name() string { return rdpEvidenceName }

// Budget returns the payload bytes per direction the detector reads.
func (d *RDPDetector) Budget() int { return rdpBudget }

// Inspect looks at the next payload of f.
func (d *RDPDetector) Inspect(ctx *Context, f *Flow, seg *Segment) Status {
	switch f.Proto {
	case ProtoTCP:
		return d.inspectTCP(ctx, f, seg)
	case ProtoUDP:
		return d.inspectUDP(ctx, f, seg)
	}
	return Done
}

func (d *RDPDetector) isStandardPort(p uint16) bool {
	for _, s := range d.standard {
		if s == p {
			return true
		}
	}
	return false
}

// ---------------------------------------------------------------------------
// TCP

// Stages of the client stream.
const (
	cliStart   uint8 = iota // first bytes: proxy handshake, PCB or TPKT
	cliSOCKS5               // after the SOCKS5 greeting: auth sub-negotiation or CONNECT request
	cliRDP                  // RDP starts here: PCB or TPKT
	cliCR                   // TPKT + X.224 Connection Request
	cliAfterCR              // the next client message: MCS Connect-Initial or TLS
	cliDone                 // nothing more to read
	cliFailed               // not RDP
)

// Stages of the server stream.
const (
	srvStart        uint8 = iota // waits until the client's first message says what to expect
	srvSOCKS5Method              // SOCKS5 method selection
	srvSOCKS5Auth                // RFC 1929 status
	srvSOCKS5Reply               // SOCKS5 CONNECT reply
	srvSOCKS4Reply               // SOCKS4 reply
	srvHTTPReply                 // HTTP CONNECT response
	srvCC                        // TPKT + X.224 Connection Confirm
	srvDone
	srvFailed
)

// Proxies whose handshake is skipped.
const (
	proxyNone uint8 = iota
	proxySOCKS5
	proxySOCKS4
	proxyHTTP
)

var proxyNames = [...]string{proxyNone: "", proxySOCKS5: "socks5", proxySOCKS4: "socks4", proxyHTTP: "http-connect"}

// What the client's Connection Request was.
const (
	crNone   uint8 = iota
	crWeak         // bare X.224 CR: no cookie, no negotiation request (legacy RDP, or another ISO transport user)
	crStrong       // cookie / routing token and/or RDP_NEG_REQ
	crBad
)

// What the server answered.
const (
	ccNone uint8 = iota
	ccBare       // CC without negotiation data (Standard RDP Security)
	ccRsp        // CC with RDP_NEG_RSP
	ccFail       // CC with RDP_NEG_FAILURE
	ccBad        // something other than a CC
)

type rdpStream struct {
	buf   []byte
	stage uint8
	full  bool // bytes were dropped because the buffer reached its limit
}

// add appends p, keeping at most limit bytes.
func (s *rdpStream) add(p []byte, limit int) {
	room := limit - len(s.buf)
	if len(p) > room {
		p, s.full = p[:max(room, 0)], true
	}
	if len(p) == 0 {
		return
	}
	if s.buf == nil {
		s.buf = make([]byte, 0, min(limit, max(len(p), 256)))
	}
	s.buf = append(s.buf, p...)
}

func (s *rdpStream) consume(n int) { s.buf = s.buf[:copy(s.buf, s.buf[n:])] }

// rdpTCPState is the per-flow state of an RDP-over-TCP candidate.
type rdpTCPState struct {
	ev         *RDPEvidence
	cli, srv   rdpStream
	proxy      uint8
	targetPort uint16
	cr         uint8
	hasNeg     bool
	requested  uint32
	cc         uint8
	selected   uint32
	mcs        bool // a cleartext MCS Connect-Initial with GCC client data was read
	tlsAfterCR bool // the client went on with a TLS handshake
	raChannels bool
	conf       Confidence
	published  bool
}

func (d *RDPDetector) inspectTCP(ctx *Context, f *Flow, seg *Segment) Status {
	st, _ := ctx.State(f).(*rdpTCPState)
	if st == nil {
		return d.startTCP(ctx, f, seg)
	}
	if seg.Gap {
		// Bytes are missing: the stream can no longer be parsed. Keep what
		// was decided.
		return Done
	}
	if seg.Dir == ToServer {
		if st.cli.stage < cliDone {
			st.cli.add(seg.Payload, rdpClientBuf)
		}
	} else if st.srv.stage < srvDone {
		st.srv.add(seg.Payload, rdpServerBuf)
	}
	d.runClient(ctx, st)
	d.runServer(ctx, st)
	d.decideTCP(ctx, f, st)
	return st.status(f)
}

// startTCP handles a flow without state: the first client payload decides
// whether it can be RDP, without allocating when it cannot.
func (d *RDPDetector) startTCP(ctx *Context, f *Flow, seg *Segment) Status {
	p := seg.Payload
	if seg.Dir == ToClient {
		// The server spoke before any plausible client start (or the client
		// side is not captured). A complete CC carrying RDP negotiation data
		// is still an RDP server answering (asymmetric capture).
		if seg.Index == 0 && !seg.Gap {
			d.serverOnlyCC(ctx, f, p)
		}
		return Done
	}
	if seg.Index > 0 || seg.Gap {
		// The first client payload was not RDP. On the standard port keep
		// waiting for the server's first answer (see serverOnlyCC).
		if !seg.Gap && seg.Index < rdpWaitSegs && d.isStandardPort(f.Server.Port()) {
			return Continue
		}
		return Done
	}
	ok, rdpish := rdpPlausibleStart(p)
	if rdpish {
		ctx.Counters.CountMalformed(rdpEvidenceName)
	}
	if !ok {
		if d.isStandardPort(f.Server.Port()) {
			return Continue
		}
		return Done
	}
	st := &rdpTCPState{ev: &RDPEvidence{Transport: "tcp"}}
	ctx.SetState(f, st)
	st.cli.add(p, rdpClientBuf)
	d.runClient(ctx, st)
	d.runServer(ctx, st)
	d.decideTCP(ctx, f, st)
	return st.status(f)
}

// rdpPlausibleStart is the allocation-free first test of a client stream:
// can these bytes begin a proxy handshake, a pre-connection PDU or an RDP
// X.224 Connection Request? A complete CR in the first segment is checked
// in full, so other ISO transport users (S7comm, MMS) end here. rdpish
// reports a CR that failed after showing an RDP-only part (malformed RDP).
func rdpPlausibleStart(p []byte) (ok, rdpish bool) {
	if len(p) == 0 {
		return false, false
	}
	switch p[0] {
	case 0x03:
		if len(p) < 4 {
			return len(p) == 1 || p[1] == 0, false
		}
		if p[1] != 0 {
			return false, false
		}
		tlen := int(binary.BigEndian.Uint16(p[2:4]))
		if tlen < 11 || tlen > rdpMaxCR {
			return false, false
		}
		if len(p) >= 6 && (int(p[4]) != tlen-5 || p[5] != 0xE0) {
			return false, false
		}
		if len(p) >= tlen {
			cr, ok := scanCR(p[:tlen])
			return ok, !ok && cr.rdpish
		}
		return true, false
	case 0x05:
		n, r := socks5Greeting(p)
		if r != parseOK {
			return false, false
		}
		// The greeting may be followed at once by the sub-negotiation or the
		// request.
		return len(p) == n || p[n] == 0x01 || p[n] == 0x05, false
	case 0x04:
		_, r := socks4Request(p, nil)
		return r != parseBad, false
	case 'C', 'c':
		return len(p) >= 8 && asciiHasPrefixFold(p, "CONNECT "), false
	}
	_, r := parsePCB(p, nil)
	return r != parseBad && len(p) >= 12, false
}

// serverOnlyCC labels a flow whose first server payload is a complete X.224
// CC with RDP negotiation data, though no client CR was seen.
func (d *RDPDetector) serverOnlyCC(ctx *Context, f *Flow, p []byte) {
	if len(p) < 19 || p[0] != 3 || p[1] != 0 {
		return
	}
	tlen := int(binary.BigEndian.Uint16(p[2:4]))
	if tlen != 19 || len(p) < tlen {
		return
	}
	cc, ok := scanCC(p[:tlen])
	if !ok || (cc.kind != ccRsp && cc.kind != ccFail) {
		return
	}
	if cc.malformed {
		ctx.Counters.CountMalformed(rdpEvidenceName)
	}
	st := &rdpTCPState{ev: &RDPEvidence{Transport: "tcp"}, cc: cc.kind, selected: cc.value}
	st.applyCC(cc)
	st.conf = ConfidenceMedium
	d.publish(f, st)
}

// status says whether anything more of the flow is worth reading.
func (st *rdpTCPState) status(f *Flow) Status {
	switch {
	case st.cli.stage == cliFailed, st.srv.stage == srvFailed, st.cc == ccBad, st.cc == ccFail:
		return Done
	case st.cc == ccRsp && st.selected != rdpProtocolRDP:
		// The rest is TLS: no more cleartext to read.
		return Done
	case st.cli.stage == cliDone && (st.cc != ccNone || !serverVisible(f)):
		return Done
	}
	return Continue
}

// runClient parses as many complete client messages as the buffer holds.
func (d *RDPDetector) runClient(ctx *Context, st *rdpTCPState) {
	for {
		s := &st.cli
		b := s.buf
		if len(b) == 0 {
			return
		}
		switch s.stage {
		case cliStart:
			switch {
			case b[0] == 0x05:
				n, r := socks5Greeting(b)
				if !st.step(s, n, r, cliSOCKS5) {
					return
				}
				st.proxy = proxySOCKS5
			case b[0] == 0x04:
				n, r := socks4Request(b, st)
				if !st.step(s, n, r, cliRDP) {
					return
				}
				st.proxy = proxySOCKS4
			case b[0] == 'C' || b[0] == 'c':
				n, r := httpConnectRequest(b, st)
				if !st.step(s, n, r, cliRDP) {
					return
				}
				st.proxy = proxyHTTP
			default:
				s.stage = cliRDP
			}
			st.ev.Proxy = proxyNames[st.proxy]
		case cliSOCKS5:
			var n int
			var r parseResult
			next := uint8(cliSOCKS5)
			switch b[0] {
			case 0x01: // RFC 1929 username/password
				n, r = socks5Auth(b)
			case 0x05:
				n, r = socks5Request(b, st)
				next = cliRDP
			default:
				r = parseBad
			}
			if !st.step(s, n, r, next) {
				return
			}
		case cliRDP:
			if b[0] == 0x03 {
				s.stage = cliCR
				continue
			}
			n, r := parsePCB(b, st.ev)
			if !st.step(s, n, r, cliCR) {
				return
			}
		case cliCR:
			n, r := d.clientCR(ctx, st, b)
			if !st.step(s, n, r, cliAfterCR) {
				if r == parseBad {
					st.cr = crBad
				}
				return
			}
		case cliAfterCR:
			d.clientAfterCR(ctx, st, b)
			return
		default:
			return
		}
	}
}

// step applies one parse result to a stream: on success it consumes n bytes
// and moves to next. It reports whether parsing may go on.
func (st *rdpTCPState) step(s *rdpStream, n int, r parseResult, next uint8) bool {
	switch r {
	case parseOK:
		s.consume(n)
		s.stage = next
		return true
	case parseMore:
		if !s.full {
			return false
		}
		// A message larger than the buffer: not one we recognise.
	}
	if s == &st.cli {
		s.stage = cliFailed
	} else {
		s.stage = srvFailed
	}
	return false
}

func (d *RDPDetector) clientCR(ctx *Context, st *rdpTCPState, b []byte) (int, parseResult) {
	if len(b) < 4 {
		return 0, parseMore
	}
	if b[0] != 3 || b[1] != 0 {
		return 0, parseBad
	}
	tlen := int(binary.BigEndian.Uint16(b[2:4]))
	if tlen < 11 || tlen > rdpMaxCR {
		return 0, parseBad
	}
	if len(b) >= 6 && (int(b[4]) != tlen-5 || b[5] != 0xE0) {
		return 0, parseBad
	}
	if len(b) < tlen {
		return 0, parseMore
	}
	cr, ok := scanCR(b[:tlen])
	if !ok {
		if cr.rdpish {
			ctx.Counters.CountMalformed(rdpEvidenceName)
		}
		return 0, parseBad
	}
	st.applyCR(cr)
	return tlen, parseOK
}

func (st *rdpTCPState) applyCR(cr x224CR) {
	st.cr = crWeak
	if cr.strong() {
		st.cr = crStrong
	}
	if cr.cookie != nil {
		st.ev.Cookie = string(cr.cookie)
	}
	if cr.token != nil {
		st.ev.RoutingToken = string(cr.token)
	}
	if cr.hasNeg {
		st.hasNeg = true
		st.requested = cr.requested
		raw := cr.requested
		st.ev.RequestedProtocolsRaw = &raw
		st.ev.RequestedProtocols = rdpRequestedNames(cr.requested)
	}
}

// clientAfterCR reads the client's message after the CR: under Standard
// RDP Security an X.224 Data TPDU with the MCS Connect-Initial
// (MS-RDPBCGR 2.2.1.3), else a TLS ClientHello (2.2.1.2, 5.4.5).
func (d *RDPDetector) clientAfterCR(ctx *Context, st *rdpTCPState, b []byte) {
	s := &st.cli
	switch {
	case b[0] == 0x16:
		if len(b) >= 3 && b[1] == 0x03 {
			st.tlsAfterCR = true
		}
		s.stage = cliDone
		return
	case b[0] != 0x03:
		s.stage = cliDone
		return
	}
	if len(b) < 9 {
		if s.full {
			s.stage = cliDone
		}
		return
	}
	if b[1] != 0 || b[4] != 2 || b[5] != 0xF0 || b[7] != 0x7F || b[8] != 0x65 {
		s.stage = cliDone
		return
	}
	tlen := int(binary.BigEndian.Uint16(b[2:4]))
	complete := len(b) >= tlen || s.full
	if len(b) > tlen {
		b = b[:tlen]
	}
	ci, ok := parseConnectInitial(b)
	if ok {
		st.mcs = true
		st.applyConnectInitial(ci)
	} else if complete {
		ctx.Counters.CountMalformed(rdpEvidenceName)
	}
	if complete {
		s.stage = cliDone
	}
}

func (st *rdpTCPState) applyConnectInitial(ci connectInitial) {
	ev := st.ev
	if ci.haveCore {
		ev.ClientName = ci.clientName
		ev.ClientBuild = ci.clientBuild
		ev.KeyboardLayout = ci.keyboardLayout
	}
	if ci.haveNet {
		ev.Channels = ci.channels
		st.raChannels = false
		for _, c := range ci.channels {
			if isRAChannel(c) {
				st.raChannels = true
			}
		}
	}
}

// isRAChannel reports whether a static channel name belongs to Remote
// Assistance or desktop sharing: encomsp (MS-RDPEMC), remdesk (the RA
// control channel FreeRDP enables in its assistance mode) and RC_CTL.
func isRAChannel(name string) bool {
	return strings.EqualFold(name, "encomsp") || strings.EqualFold(name, "remdesk") ||
		strings.EqualFold(name, "rc_ctl")
}

// runServer parses the server stream: proxy replies, then the CC.
func (d *RDPDetector) runServer(ctx *Context, st *rdpTCPState) {
	for {
		s := &st.srv
		b := s.buf
		if len(b) == 0 {
			return
		}
		switch s.stage {
		case srvStart:
			// What the server says first depends on what the client began
			// with; wait until the client's first message was read.
			if st.cli.stage == cliStart {
				return
			}
			switch st.proxy {
			case proxySOCKS5:
				s.stage = srvSOCKS5Method
			case proxySOCKS4:
				s.stage = srvSOCKS4Reply
			case proxyHTTP:
				s.stage = srvHTTPReply
			default:
				s.stage = srvCC
			}
		case srvSOCKS5Method:
			// RFC 1928 §3: VER METHOD; 0x00 no auth, 0x02 username/password.
			if len(b) < 2 {
				return
			}
			next := uint8(srvSOCKS5Reply)
			r := parseOK
			switch {
			case b[0] != 5:
				r = parseBad
			case b[1] == 0x02:
				next = srvSOCKS5Auth
			case b[1] != 0x00:
				r = parseBad
			}
			if !st.step(s, 2, r, next) {
				return
			}
		case srvSOCKS5Auth:
			if len(b) < 2 {
				return
			}
			r := parseOK
			if b[0] != 1 || b[1] != 0 {
				r = parseBad
			}
			if !st.step(s, 2, r, srvSOCKS5Reply) {
				return
			}
		case srvSOCKS5Reply:
			n, r := socks5Reply(b)
			if !st.step(s, n, r, srvCC) {
				return
			}
		case srvSOCKS4Reply:
			// SOCKS4: VN=0, CD=90 (granted), DSTPORT, DSTIP.
			if len(b) < 8 {
				return
			}
			r := parseOK
			if b[0] != 0 || b[1] != 0x5A {
				r = parseBad
			}
			if !st.step(s, 8, r, srvCC) {
				return
			}
		case srvHTTPReply:
			n, r := httpConnectReply(b)
			if !st.step(s, n, r, srvCC) {
				return
			}
		case srvCC:
			if st.cr == crNone {
				// The CR has not been read yet; a CC cannot come before it.
				return
			}
			n, r := serverCC(ctx, st, b)
			switch r {
			case parseMore:
				return
			case parseBad:
				st.cc = ccBad
				st.ev.ServerReply = "other"
				s.stage = srvDone
				return
			}
			s.consume(n)
			s.stage = srvDone
		default:
			return
		}
	}
}

// serverCC reads the X.224 Connection Confirm (MS-RDPBCGR 2.2.1.2). Its
// length is known from the first bytes (11 without negotiation data, 19
// with), so anything else is rejected early.
func serverCC(ctx *Context, st *rdpTCPState, b []byte) (int, parseResult) {
	if len(b) < 4 {
		if b[0] != 3 || (len(b) > 1 && b[1] != 0) {
			return 0, parseBad
		}
		return 0, parseMore
	}
	if b[0] != 3 || b[1] != 0 {
		return 0, parseBad
	}
	tlen := int(binary.BigEndian.Uint16(b[2:4]))
	if tlen != 11 && tlen != 19 {
		return 0, parseBad
	}
	if len(b) >= 6 && (int(b[4]) != tlen-5 || b[5] != 0xD0) {
		return 0, parseBad
	}
	if len(b) < tlen {
		return 0, parseMore
	}
	cc, ok := scanCC(b[:tlen])
	if !ok {
		return 0, parseBad
	}
	if cc.malformed {
		ctx.Counters.CountMalformed(rdpEvidenceName)
	}
	st.cc = cc.kind
	st.selected = cc.value
	st.applyCC(cc)
	return tlen, parseOK
}

func (st *rdpTCPState) applyCC(cc x224CC) {
	st.ev.ServerReply = "x224-cc"
	switch cc.kind {
	case ccBare:
		st.ev.SelectedProtocol = "rdp"
	case ccRsp:
		st.ev.SelectedProtocol = rdpSelectedName(cc.value)
	case ccFail:
		st.ev.NegFailure = cc.value
		st.ev.NegFailureReason = rdpFailureName(cc.value)
	}
}

// decideTCP turns what was read into labels (protocols.md §2.2–2.3, §2.7).
func (d *RDPDetector) decideTCP(ctx *Context, f *Flow, st *rdpTCPState) {
	ccOK := st.cc == ccBare || st.cc == ccRsp || st.cc == ccFail
	var conf Confidence
	switch {
	case st.cr == crStrong && ccOK:
		conf = ConfidenceHigh
	case st.cr == crWeak && (st.cc == ccRsp || st.cc == ccFail):
		conf = ConfidenceHigh
	case st.cr == crWeak && st.cc == ccBare:
		// A bare CR and a bare CC could be another ISO transport user; the
		// MCS Connect-Initial that follows settles it.
		conf = ConfidenceMedium
		if st.mcs {
			conf = ConfidenceHigh
		}
	case st.cr == crStrong && st.cc == ccBad:
		// An RDP client's request answered by something that is not RDP:
		// a probe to another service. Recorded, but not as confirmed RDP.
		conf = ConfidenceLow
	case st.cr == crStrong && st.cc == ccNone:
		// The client side alone: good enough when the server side is not
		// captured, or when the client went on as if it had got a CC.
		if st.mcs || st.tlsAfterCR || !serverVisible(f) {
			conf = ConfidenceHigh
		}
	case st.cr == crWeak && st.cc == ccNone && st.mcs:
		conf = ConfidenceHigh
	}
	if conf > st.conf {
		st.conf = conf
	}
	if st.conf == 0 {
		return
	}
	d.publish(f, st)
}

// serverVisible reports whether anything from the server was captured
// (its SYN+ACK counts): then the detector waits for its answer to a CR.
func serverVisible(f *Flow) bool {
	return f.Pkts[ToClient] > 0 || f.TCPFlags[ToClient] != 0
}

// publish puts the labels and evidence on the flow.
func (d *RDPDetector) publish(f *Flow, st *rdpTCPState) {
	if !st.published {
		st.published = true
		f.SetEvidence(rdpEvidenceName, st.ev)
		if f.AppProto == AppNone {
			f.AppProto = AppRDP
		}
	}
	f.AddLabel(LabelRDP, st.conf)
	if st.conf < ConfidenceMedium {
		return
	}
	switch {
	case st.raChannels:
		st.ev.RAReason = "ra-channels"
		f.AddLabel(LabelRDPRACandidate, ConfidenceHigh)
	case st.standardSecurity() && !d.isStandardPort(st.rdpPort(f)):
		if st.ev.RAReason == "" {
			st.ev.RAReason = "standard-security-nonstandard-port"
		}
		f.AddLabel(LabelRDPRACandidate, ConfidenceMedium)
	}
}

// standardSecurity reports whether the connection uses Standard RDP
// Security: PROTOCOL_RDP selected, a CC without negotiation, a cleartext
// Connect-Initial, or (no CC seen) a request that allows nothing else.
func (st *rdpTCPState) standardSecurity() bool {
	switch st.cc {
	case ccBare:
		return true
	case ccRsp:
		return st.selected == rdpProtocolRDP
	case ccNone:
		return st.mcs || !st.hasNeg || st.requested == rdpProtocolRDP
	}
	return false
}

// rdpPort is the port the RDP client meant to reach: the proxy's target
// when a proxy was used, else the flow's server port.
func (st *rdpTCPState) rdpPort(f *Flow) uint16 {
	if st.proxy != proxyNone && st.targetPort != 0 {
		return st.targetPort
	}
	return f.Server.Port()
}

// ---------------------------------------------------------------------------
// Wire structures

type parseResult uint8

const (
	parseOK   parseResult = iota // a complete message
	parseMore                    // could be one, needs more bytes
	parseBad                     // is not one
)

// x224CR is a parsed X.224 Connection Request (MS-RDPBCGR 2.2.1.1). Its
// slices point into the parsed bytes.
type x224CR struct {
	cookie    []byte // after "Cookie: mstshash="
	token     []byte // any other cookie line's value
	hasNeg    bool
	requested uint32
	rdpish    bool // failed, but after showing an RDP-only part (cookie, neg req)
}

func (c *x224CR) strong() bool { return c.cookie != nil || c.token != nil || c.hasNeg }

// scanCR checks that b (exactly one TPKT) is an RDP X.224 Connection
// Request: TPKT v3, LI = length-5, CR code 0xE0, DST-REF 0, class 0, then
// only the parts RDP defines: an optional CRLF-terminated cookie line, an
// optional 8-byte RDP_NEG_REQ and an optional RDP_NEG_CORRELATION_INFO.
// ISO 8073 parameters (TSAPs 0xC1/0xC2, TPDU size 0xC0) make it fail.
// It does not allocate.
func scanCR(b []byte) (cr x224CR, ok bool) {
	if len(b) < 11 || b[0] != 3 || b[1] != 0 || int(binary.BigEndian.Uint16(b[2:4])) != len(b) {
		return cr, false
	}
	if int(b[4]) != len(b)-5 || b[5] != 0xE0 || b[6] != 0 || b[7] != 0 || b[10] != 0 {
		return cr, false
	}
	v := b[11:]
	if len(v) >= 7 && asciiHasPrefixFold(v, "Cookie:") {
		cr.rdpish = true
		end := bytes.Index(v, []byte("\r\n"))
		if end < 0 {
			return cr, false
		}
		line := v[7:end]
		if len(line) > 0 && line[0] == ' ' {
			line = line[1:]
		}
		for _, c := range line {
			if c < 0x20 || c > 0x7E {
				return cr, false
			}
		}
		if asciiHasPrefixFold(line, "mstshash=") {
			cr.cookie = line[9:len(line):len(line)]
		} else {
			cr.token = line[:len(line):len(line)]
		}
		v = v[end+2:]
	}
	if len(v) > 0 {
		// RDP_NEG_REQ (MS-RDPBCGR 2.2.1.1.1): type 1, flags, length 8, protocols.
		if v[0] != 0x01 {
			return cr, false
		}
		if len(v) < 8 || binary.LittleEndian.Uint16(v[2:4]) != 8 {
			cr.rdpish = cr.rdpish || (len(v) >= 4 && v[3] == 0 && v[2] != 0)
			return cr, false
		}
		cr.rdpish = true
		cr.hasNeg = true
		cr.requested = binary.LittleEndian.Uint32(v[4:8])
		v = v[8:]
		// RDP_NEG_CORRELATION_INFO (2.2.1.1.2): type 6, flags 0, length 36.
		if len(v) >= 36 && v[0] == 0x06 && binary.LittleEndian.Uint16(v[2:4]) == 36 {
			v = v[36:]
		}
	}
	if len(v) != 0 {
		return cr, false
	}
	return cr, true
}

// x224CC is a parsed X.224 Connection Confirm (MS-RDPBCGR 2.2.1.2).
type x224CC struct {
	kind      uint8  // ccBare, ccRsp, ccFail
	value     uint32 // selectedProtocol or failureCode
	malformed bool   // negotiation data whose length field is not 8
}

// scanCC checks that b (exactly one TPKT) is an RDP X.224 Connection
// Confirm: TPKT, LI, CC code 0xD0, class 0, and either nothing more or an
// 8-byte RDP_NEG_RSP (type 2) / RDP_NEG_FAILURE (type 3). The ISO 8073
// parameters other CC senders carry (0xC0..0xC2) fail. It does not allocate.
func scanCC(b []byte) (cc x224CC, ok bool) {
	if len(b) < 11 || b[0] != 3 || b[1] != 0 || int(binary.BigEndian.Uint16(b[2:4])) != len(b) {
		return cc, false
	}
	if int(b[4]) != len(b)-5 || b[5] != 0xD0 || b[10] != 0 {
		return cc, false
	}
	v := b[11:]
	switch {
	case len(v) == 0:
		cc.kind = ccBare
		return cc, true
	case len(v) != 8:
		return cc, false
	}
	switch v[0] {
	case 0x02:
		cc.kind = ccRsp
	case 0x03:
		cc.kind = ccFail
	default:
		return cc, false
	}
	cc.value = binary.LittleEndian.Uint32(v[4:8])
	// The length field must say 8; a CC whose type and size are right but
	// whose length field is not is kept, and counted as malformed.
	cc.malformed = binary.LittleEndian.Uint16(v[2:4]) != 8
	return cc, true
}

// connectInitial is what is read from an MCS Connect-Initial.
type connectInitial struct {
	haveCore       bool
	clientName     string
	clientBuild    uint32
	keyboardLayout uint32
	haveNet        bool
	channels       []string
}

// parseConnectInitial reads an X.224 Data TPDU carrying an MCS
// Connect-Initial (T.125, BER) whose userData is a GCC Conference Create
// Request (T.124, PER) with the client data blocks behind the "Duca" H.221
// key (MS-RDPBCGR 2.2.1.3, 3.2.5.3.3). b may be cut short; whatever blocks
// are complete (or, for CS_CORE and CS_NET, long enough) are read. It
// reports false when the client data cannot be reached.
func parseConnectInitial(b []byte) (ci connectInitial, ok bool) {
	if len(b) < 10 || b[4] != 2 || b[5] != 0xF0 || b[7] != 0x7F || b[8] != 0x65 {
		return ci, false
	}
	p := 9
	_, n, okLen := berLength(b[p:])
	if !okLen {
		return ci, false
	}
	p += n
	// callingDomainSelector, calledDomainSelector (OCTET STRING), upwardFlag
	// (BOOLEAN), target/minimum/maximumParameters (SEQUENCE).
	for _, tag := range [...]byte{0x04, 0x04, 0x01, 0x30, 0x30, 0x30} {
		if p >= len(b) || b[p] != tag {
			return ci, false
		}
		l, n, okLen := berLength(b[p+1:])
		if !okLen {
			return ci, false
		}
		p += 1 + n + l
	}
	if p >= len(b) || b[p] != 0x04 {
		return ci, false
	}
	l, n, okLen := berLength(b[p+1:])
	if !okLen {
		return ci, false
	}
	p += 1 + n
	ud := b[p:]
	if len(ud) > l {
		ud = ud[:l]
	}
	// The GCC header (object identifier, ConnectData length, Conference
	// Create Request) is short; the H.221 key follows within a few bytes.
	head := ud[:min(len(ud), 32)]
	i := bytes.Index(head, []byte("Duca"))
	if i < 0 {
		return ci, false
	}
	ud = ud[i+4:]
	// PER length determinant of the user data.
	if len(ud) < 1 {
		return ci, true
	}
	dl := int(ud[0])
	if ud[0]&0x80 != 0 {
		if len(ud) < 2 {
			return ci, true
		}
		dl = int(ud[0]&0x3F)<<8 | int(ud[1])
		ud = ud[2:]
	} else {
		ud = ud[1:]
	}
	if len(ud) > dl {
		ud = ud[:dl]
	}
	// Client data blocks: TS_UD_HEADER type u16, length u16 (2.2.1.3.1).
	for len(ud) >= 4 {
		typ := binary.LittleEndian.Uint16(ud[0:2])
		bl := int(binary.LittleEndian.Uint16(ud[2:4]))
		if bl < 4 {
			break
		}
		blk := ud[:min(bl, len(ud))]
		switch typ {
		case 0xC001:
			readClientCore(&ci, blk)
		case 0xC003:
			readClientNet(&ci, blk)
		}
		if bl > len(ud) {
			break
		}
		ud = ud[bl:]
	}
	return ci, true
}

// readClientCore reads TS_UD_CS_CORE (MS-RDPBCGR 2.2.1.3.2): version,
// desktop size, colour depth, SAS sequence, keyboardLayout, clientBuild,
// clientName (32 bytes UTF-16LE).
func readClientCore(ci *connectInitial, blk []byte) {
	if len(blk) < 24 {
		return
	}
	ci.haveCore = true
	ci.keyboardLayout = binary.LittleEndian.Uint32(blk[16:20])
	ci.clientBuild = binary.LittleEndian.Uint32(blk[20:24])
	if len(blk) >= 56 {
		ci.clientName = utf16zString(blk[24:56])
	}
}

// readClientNet reads TS_UD_CS_NET (MS-RDPBCGR 2.2.1.3.4): channelCount,
// then CHANNEL_DEF entries of an 8-byte NUL-padded ANSI name and options.
func readClientNet(ci *connectInitial, blk []byte) {
	if len(blk) < 8 {
		return
	}
	n := binary.LittleEndian.Uint32(blk[4:8])
	if n > rdpMaxChannels {
		n = rdpMaxChannels
	}
	ci.haveNet = true
	ci.channels = nil
	for i, off := uint32(0), 8; i < n && off+12 <= len(blk); i, off = i+1, off+12 {
		ci.channels = append(ci.channels, asciizString(blk[off:off+8]))
	}
}

// berLength reads a BER definite length: the value, the bytes it took.
func berLength(b []byte) (l, n int, ok bool) {
	if len(b) == 0 {
		return 0, 0, false
	}
	if b[0] < 0x80 {
		return int(b[0]), 1, true
	}
	k := int(b[0] & 0x7F)
	if k == 0 || k > 2 || len(b) < 1+k {
		return 0, 0, false
	}
	for i := 1; i <= k; i++ {
		l = l<<8 | int(b[i])
	}
	return l, 1 + k, true
}

// parsePCB reads an MS-RDPEPS RDP_PRECONNECTION_PDU_V1/V2 (MS-RDPEPS
// 2.2.1.1–2.2.1.2): cbSize, Flags = 0, Version 1 or 2, Id, and for V2
// cchPCB + wszPCB (UTF-16LE). ev may be nil (check only).
func parsePCB(b []byte, ev *RDPEvidence) (int, parseResult) {
	if len(b) < 12 {
		// Too short to judge: what there is must fit the fixed fields.
		if len(b) >= 4 {
			size := binary.LittleEndian.Uint32(b[0:4])
			if size != 16 && (size < 18 || size > rdpMaxPCB) {
				return 0, parseBad
			}
		}
		for i := 4; i < len(b) && i < 8; i++ {
			if b[i] != 0 {
				return 0, parseBad
			}
		}
		return 0, parseMore
	}
	size := binary.LittleEndian.Uint32(b[0:4])
	flags := binary.LittleEndian.Uint32(b[4:8])
	version := binary.LittleEndian.Uint32(b[8:12])
	if flags != 0 {
		return 0, parseBad
	}
	switch version {
	case 1:
		if size != 16 {
			return 0, parseBad
		}
	case 2:
		if size < 18 || size > rdpMaxPCB {
			return 0, parseBad
		}
	default:
		return 0, parseBad
	}
	if len(b) < 16 || (version == 2 && len(b) < 18) {
		return 0, parseMore
	}
	if version == 2 && uint32(18+2*int(binary.LittleEndian.Uint16(b[16:18]))) != size {
		return 0, parseBad
	}
	if len(b) < int(size) {
		return 0, parseMore
	}
	if ev != nil {
		pc := &RDPPreconnection{Version: version, ID: binary.LittleEndian.Uint32(b[12:16])}
		if version == 2 {
			pc.PCB = utf16zString(b[18:size])
		}
		ev.Preconnection = pc
	}
	return int(size), parseOK
}

// socks5Greeting reads the RFC 1928 §3 client greeting: VER 5, NMETHODS,
// METHODS.
func socks5Greeting(b []byte) (int, parseResult) {
	if len(b) < 2 {
		return 0, parseMore
	}
	n := int(b[1])
	if b[0] != 5 || n == 0 {
		return 0, parseBad
	}
	if len(b) < 2+n {
		return 0, parseMore
	}
	for _, m := range b[2 : 2+n] {
		if m == 0xFF || (m > 0x09 && m < 0x80) {
			return 0, parseBad
		}
	}
	return 2 + n, parseOK
}

// socks5Auth reads the RFC 1929 username/password request.
func socks5Auth(b []byte) (int, parseResult) {
	if len(b) < 2 {
		return 0, parseMore
	}
	ul := int(b[1])
	if ul == 0 {
		return 0, parseBad
	}
	if len(b) < 3+ul {
		return 0, parseMore
	}
	pl := int(b[2+ul])
	if len(b) < 3+ul+pl {
		return 0, parseMore
	}
	return 3 + ul + pl, parseOK
}

// socks5Address reads ATYP, DST.ADDR, DST.PORT (RFC 1928 §4–5) starting at
// b[0] = ATYP. It returns the bytes used and the address as host:port.
func socks5Address(b []byte, want bool) (int, string, uint16, parseResult) {
	if len(b) < 1 {
		return 0, "", 0, parseMore
	}
	var host string
	n := 0
	switch b[0] {
	case 0x01:
		n = 1 + 4
		if len(b) < n+2 {
			return 0, "", 0, parseMore
		}
		if want {
			host = netip.AddrFrom4([4]byte(b[1:5])).String()
		}
	case 0x03:
		if len(b) < 2 {
			return 0, "", 0, parseMore
		}
		dl := int(b[1])
		if dl == 0 {
			return 0, "", 0, parseBad
		}
		n = 2 + dl
		if len(b) < n+2 {
			return 0, "", 0, parseMore
		}
		if want {
			host = printableString(b[2:n])
		}
	case 0x04:
		n = 1 + 16
		if len(b) < n+2 {
			return 0, "", 0, parseMore
		}
		if want {
			host = netip.AddrFrom16([16]byte(b[1:17])).String()
		}
	default:
		return 0, "", 0, parseBad
	}
	port := binary.BigEndian.Uint16(b[n : n+2])
	return n + 2, host, port, parseOK
}

// socks5Request reads the CONNECT request: VER 5, CMD 1, RSV 0, address.
func socks5Request(b []byte, st *rdpTCPState) (int, parseResult) {
	if len(b) < 4 {
		return 0, parseMore
	}
	if b[0] != 5 || b[1] != 1 || b[2] != 0 {
		return 0, parseBad
	}
	n, host, port, r := socks5Address(b[3:], true)
	if r != parseOK {
		return 0, r
	}
	st.setTarget(host, port)
	return 3 + n, parseOK
}

// socks5Reply reads the server's reply: VER 5, REP 0 (succeeded), RSV 0,
// bound address.
func socks5Reply(b []byte) (int, parseResult) {
	if len(b) < 4 {
		return 0, parseMore
	}
	if b[0] != 5 || b[1] != 0 || b[2] != 0 {
		return 0, parseBad
	}
	n, _, _, r := socks5Address(b[3:], false)
	if r != parseOK {
		return 0, r
	}
	return 3 + n, parseOK
}

// socks4Request reads a SOCKS4/4a CONNECT: VN 4, CD 1, DSTPORT, DSTIP,
// USERID NUL, and for 4a (DSTIP 0.0.0.x, x != 0) a host name NUL. st may be
// nil (check only).
func socks4Request(b []byte, st *rdpTCPState) (int, parseResult) {
	if len(b) < 2 {
		return 0, parseMore
	}
	if b[0] != 4 || b[1] != 1 {
		return 0, parseBad
	}
	if len(b) < 9 {
		return 0, parseMore
	}
	const maxField = 256
	end := bytes.IndexByte(b[8:min(len(b), 8+maxField)], 0)
	if end < 0 {
		if len(b) >= 8+maxField {
			return 0, parseBad
		}
		return 0, parseMore
	}
	n := 8 + end + 1
	port := binary.BigEndian.Uint16(b[2:4])
	host := ""
	if b[4] == 0 && b[5] == 0 && b[6] == 0 && b[7] != 0 {
		end := bytes.IndexByte(b[n:min(len(b), n+maxField)], 0)
		if end < 0 {
			if len(b) >= n+maxField {
				return 0, parseBad
			}
			return 0, parseMore
		}
		if st != nil {
			host = printableString(b[n : n+end])
		}
		n += end + 1
	} else if st != nil {
		host = netip.AddrFrom4([4]byte(b[4:8])).String()
	}
	if st != nil {
		st.setTarget(host, port)
	}
	return n, parseOK
}

// httpConnectRequest reads "CONNECT host:port HTTP/1.x" and its headers up
// to the empty line.
func httpConnectRequest(b []byte, st *rdpTCPState) (int, parseResult) {
	if len(b) < 8 {
		if asciiHasPrefixFold(b, "CONNECT "[:len(b)]) {
			return 0, parseMore
		}
		return 0, parseBad
	}
	if !asciiHasPrefixFold(b, "CONNECT ") {
		return 0, parseBad
	}
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if len(b) >= rdpMaxProxyMsg {
			return 0, parseBad
		}
		return 0, parseMore
	}
	line := b[8:]
	if i := bytes.IndexByte(line, '\r'); i >= 0 {
		line = line[:i]
	}
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || !bytes.HasPrefix(line[sp+1:], []byte("HTTP/1.")) {
		return 0, parseBad
	}
	target := line[:sp]
	var port uint16
	if c := bytes.LastIndexByte(target, ':'); c >= 0 {
		if v, err := strconv.ParseUint(string(target[c+1:]), 10, 16); err == nil {
			port = uint16(v)
		}
	}
	st.targetPort = port
	st.ev.ProxyTarget = printableString(target)
	return end + 4, parseOK
}

// httpConnectReply reads "HTTP/1.x 2xx ..." and headers up to the empty line.
func httpConnectReply(b []byte) (int, parseResult) {
	const pre = "HTTP/1."
	if len(b) < 12 {
		if !bytes.HasPrefix([]byte(pre), b[:min(len(b), len(pre))]) {
			return 0, parseBad
		}
		return 0, parseMore
	}
	if !bytes.HasPrefix(b, []byte(pre)) || b[8] != ' ' || b[9] != '2' {
		return 0, parseBad
	}
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if len(b) >= rdpServerBuf {
			return 0, parseBad
		}
		return 0, parseMore
	}
	return end + 4, parseOK
}

func (st *rdpTCPState) setTarget(host string, port uint16) {
	st.targetPort = port
	if host != "" {
		st.ev.ProxyTarget = netJoinHostPort(host, port)
	}
}

func netJoinHostPort(host string, port uint16) string {
	if strings.IndexByte(host, ':') >= 0 {
		return "[" + host + "]:" + strconv.Itoa(int(port))
	}
	return host + ":" + strconv.Itoa(int(port))
}

// ---------------------------------------------------------------------------
// Names and strings

// rdpRequestedNames names the bits of requestedProtocols; 0 is "rdp"
// (Standard RDP Security only).
func rdpRequestedNames(p uint32) []string {
	if p == rdpProtocolRDP {
		return []string{"rdp"}
	}
	var out []string
	rest := p
	for _, b := range rdpProtocolBits {
		if p&b.bit != 0 {
			out = append(out, b.name)
			rest &^= b.bit
		}
	}
	if rest != 0 {
		out = append(out, "0x"+strconv.FormatUint(uint64(rest), 16))
	}
	return out
}

// rdpSelectedName names a selectedProtocol value.
func rdpSelectedName(p uint32) string {
	if p == rdpProtocolRDP {
		return "rdp"
	}
	for _, b := range rdpProtocolBits {
		if p == b.bit {
			return b.name
		}
	}
	return "0x" + strconv.FormatUint(uint64(p), 16)
}

var rdpFailureNames = [...]string{
	1: "ssl_required_by_server",
	2: "ssl_not_allowed_by_server",
	3: "ssl_cert_not_on_server",
	4: "inconsistent_flags",
	5: "hybrid_required_by_server",
	6: "ssl_with_user_auth_required_by_server",
}

// rdpFailureName names an RDP_NEG_FAILURE code (MS-RDPBCGR 2.2.1.2.2).
func rdpFailureName(c uint32) string {
	if c > 0 && c < uint32(len(rdpFailureNames)) {
		return rdpFailureNames[c]
	}
	return "unknown"
}

// asciiHasPrefixFold reports whether b begins with prefix, ignoring ASCII
// letter case. It does not allocate.
func asciiHasPrefixFold(b []byte, prefix string) bool {
	if len(b) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		c, p := b[i], prefix[i]
		if c == p {
			continue
		}
		if lc := c | 0x20; lc != p|0x20 || lc < 'a' || lc > 'z' {
			return false
		}
	}
	return true
}

// utf16zString decodes NUL-terminated UTF-16LE.
func utf16zString(b []byte) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		c := binary.LittleEndian.Uint16(b[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return printableString([]byte(string(utf16.Decode(u))))
}

// asciizString decodes a NUL-padded ANSI name.
func asciizString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return printableString(b)
}

// printableString copies b, replacing control bytes so records stay clean.
func printableString(b []byte) string {
	clean := true
	for _, c := range b {
		if c < 0x20 || c == 0x7F {
			clean = false
			break
		}
	}
	if clean {
		return strings.ToValidUTF8(string(b), "?")
	}
	out := make([]byte, len(b))
	for i, c := range b {
		if c < 0x20 || c == 0x7F {
			c = '?'
		}
		out[i] = c
	}
	return strings.ToValidUTF8(string(out), "?")
}
