package classify

import (
	"encoding/binary"
	"net/netip"
	"strconv"
	"time"
)

// DCE/RPC and DCOM detector (protocols.md §1, §8). It recognises
// connection-oriented DCE/RPC v5 on any TCP port and inside SMB named pipes
// (smb.go), and connectionless DCE/RPC v4 on UDP. From the cleartext parts
// of the protocol it names the interfaces bound, the opnums called, the
// authentication in use, DCOM activations and the Remote Assistance DCOM
// interfaces, and it turns endpoint-mapper and DCOM answers into expected
// listeners so that the follow-on connection to a dynamic port is known to be
// DCE/RPC from its first packet.

// dcerpcName is the detector's name and evidence key.
const dcerpcName = "dcerpc"

// Expectation reasons this detector announces and honours (Expectation.Reason).
const (
	dcerpcReasonEPM  = "epm-map"
	dcerpcReasonDCOM = "dcom-activation"
	dcerpcReasonOXID = "oxid-resolve"
)

// Defaults for DCERPCOptions.
const (
	DefaultDCERPCBudget       = 32 << 10
	DefaultDCERPCMaxPDUs      = 64
	DefaultDCERPCMaxPDUSize   = 16 << 10
	DefaultDCERPCExpectWindow = 2 * time.Minute
)

// Bounds on what one flow keeps.
const (
	dcerpcMaxInterfaces = 16 // evidence interfaces
	dcerpcMaxOpnums     = 32 // evidence (interface, opnum) pairs
	dcerpcMaxAnnounced  = 16 // evidence announced listeners
	dcerpcMaxCLSIDs     = 8  // evidence activated classes
	dcerpcMaxContexts   = 16 // presentation contexts remembered per channel
	dcerpcMaxCalls      = 8  // outstanding calls whose response is read
	dcerpcMaxChannels   = 4  // SMB pipes followed per flow
	dcerpcMaxMisses     = 8  // segments an expected flow may take to show a header
	dcerpcMaxDatagrams  = 8  // UDP datagrams read per flow
	dcerpcMaxBindings   = 8  // string bindings taken from one response
)

// Connection-oriented PDU types (protocols.md §1.2).
const (
	coRequest      = 0x00
	coResponse     = 0x02
	coFault        = 0x03
	coBind         = 0x0b
	coBindAck      = 0x0c
	coBindNak      = 0x0d
	coAlter        = 0x0e
	coAlterResp    = 0x0f
	coAuth3        = 0x10
	coRTS          = 0x14
	pfcFirstFrag   = 0x01
	pfcLastFrag    = 0x02
	pfcObjectUUID  = 0x80
	coHeaderLen    = 16
	clHeaderLen    = 80
	authPktPrivacy = 6
)

// Transports named in evidence.
const (
	rpcTransportTCP uint8 = iota + 1
	rpcTransportSMB
	rpcTransportUDP
)

// DCERPCOptions configures the DCE/RPC detector. Zero values take the
// defaults.
type DCERPCOptions struct {
	// Budget is how many payload bytes per direction the detector reads
	// (default 32 KiB): binds, the first calls and their answers come early.
	Budget int
	// MaxPDUs is how many DCE/RPC PDUs of one flow it parses before it is
	// done (default 64).
	MaxPDUs int
	// MaxPDUSize bounds the reassembly buffer of each direction: a longer PDU
	// is read from its first MaxPDUSize bytes and the rest is skipped
	// (default 16 KiB).
	MaxPDUSize int
	// ExpectWindow is how long a listener announced by an endpoint-mapper or
	// DCOM answer stays expected (default 2 minutes, protocols.md §6.2).
	ExpectWindow time.Duration
}

// DCERPCDetector recognises DCE/RPC and DCOM. One value serves every flow.
type DCERPCDetector struct {
	opts DCERPCOptions
}

// NewDCERPCDetector returns a DCE/RPC detector with the given options.
func NewDCERPCDetector(opts DCERPCOptions) *DCERPCDetector {
	if opts.Budget <= 0 {
		opts.Budget = DefaultDCERPCBudget
	}
	if opts.MaxPDUs <= 0 {
		opts.MaxPDUs = DefaultDCERPCMaxPDUs
	}
	if opts.MaxPDUSize <= 0 {
		opts.MaxPDUSize = DefaultDCERPCMaxPDUSize
	}
	if opts.MaxPDUSize < 64 {
		opts.MaxPDUSize = 64
	}
	if opts.ExpectWindow <= 0 {
		opts.ExpectWindow = DefaultDCERPCExpectWindow
	}
	return &DCERPCDetector{opts: opts}
}

// Name returns "dcerpc".
func (d *DCERPCDetector) Name() string { return dcerpcName }

// Budget returns the payload bytes per direction the detector reads.
func (d *DCERPCDetector) Budget() int { return d.opts.Budget }

// DCERPCEvidence is what the detector learnt about a DCE/RPC flow; it is
// written as rasentry.dcerpc. Every list is bounded.
type DCERPCEvidence struct {
	Transport    string                `json:"transport"`      // tcp, smb or udp
	Pipe         string                `json:"pipe,omitempty"` // SMB named pipe carrying the calls
	Interfaces   []DCERPCInterface     `json:"interfaces,omitempty"`
	Opnums       []DCERPCOpnum         `json:"opnums,omitempty"`
	Auth         *DCERPCAuth           `json:"auth,omitempty"`
	SecAddr      string                `json:"sec_addr,omitempty"` // bind_ack secondary address (server port)
	CLSIDs       []DCERPCClass         `json:"clsids,omitempty"`   // classes seen in activation requests
	Announced    []DCERPCListener      `json:"announced,omitempty"`
	ExpectedFrom *DCERPCExpectedOrigin `json:"expected_from,omitempty"`
}

// DCERPCInterface is one abstract syntax from a bind or alter_context, with
// the server's answer.
type DCERPCInterface struct {
	UUID    string `json:"uuid"`
	Name    string `json:"name,omitempty"`
	Version string `json:"version"`          // "major.minor"
	Result  string `json:"result,omitempty"` // accepted, provider_rejection: ..., empty when no answer was seen
}

// DCERPCOpnum is one operation called on an interface.
type DCERPCOpnum struct {
	Interface string `json:"interface"` // interface name, its UUID when unnamed, "unknown" when no bind was seen
	Opnum     uint16 `json:"opnum"`
	Name      string `json:"name,omitempty"`
}

// DCERPCAuth is the strongest authentication seen on the flow's PDUs
// (protocols.md §1.3).
type DCERPCAuth struct {
	Type  string `json:"type"`
	Level string `json:"level"`
}

// DCERPCClass is a DCOM class named in an activation request.
type DCERPCClass struct {
	UUID string `json:"uuid"`
	Name string `json:"name,omitempty"`
}

// DCERPCListener is a listener this flow announced (an expectation it added).
type DCERPCListener struct {
	Addr    string `json:"addr"`
	Port    uint16 `json:"port"`
	Proto   string `json:"proto"`
	Reason  string `json:"reason"`
	Service string `json:"service,omitempty"`
}

// DCERPCExpectedOrigin says which earlier flow announced the listener this
// flow connected to.
type DCERPCExpectedOrigin struct {
	Reason  string `json:"reason"`
	FlowID  uint64 `json:"flow_id"`
	Service string `json:"service,omitempty"`
}

// dcerpcFlow is the per-flow state.
type dcerpcFlow struct {
	ev        *DCERPCEvidence
	transport uint8
	matched   bool
	expected  *Expectation
	pdus      int
	misses    int
	authLevel uint8
	chans     []*rpcChannel
	smb       *smbState
	ifaceKeys [dcerpcMaxInterfaces]ifaceKey
}

type ifaceKey struct {
	uuid rpcUUID
	ver  uint32
}

// rpcChannel is one DCE/RPC association: the TCP connection itself, or one
// SMB pipe. Presentation contexts and call ids are scoped to it (§1.6).
type rpcChannel struct {
	fid      [16]byte // SMB file id; zero for plain TCP
	pipe     string
	dead     bool // the pipe carried something other than DCE/RPC
	in       [2]rpcReasm
	lost     [2]bool // out of step: wait for a PDU header at a segment start
	ctx      [dcerpcMaxContexts]rpcContext
	nctx     int
	bindCall uint32
	bindIDs  [dcerpcMaxContexts]uint16
	nbind    int
	calls    [dcerpcMaxCalls]rpcCall
	nextCall int
}

// rpcContext maps a presentation context id to its abstract syntax.
type rpcContext struct {
	id    uint16
	uuid  rpcUUID
	iface *rpcInterface
	name  string // interface name or UUID, for evidence
	evIdx int8   // index in evidence interfaces, -1 when not recorded
	btfn  bool   // a bind-time feature negotiation item
	ndr64 bool   // the transfer syntax offered is NDR64
}

// callKind says what the response to a call is read for.
type callKind uint8

const (
	callNone callKind = iota
	callEPMMap
	callActivation
	callOXID
)

// rpcCall is an outstanding call whose response announces listeners.
type rpcCall struct {
	used    bool
	callID  uint32
	kind    callKind
	service string
	svcUUID string
	ndr64   bool // the call's context uses NDR64
}

// dcerpcExpected returns the expectation that f fulfilled when one of this
// detector's answers announced it.
func dcerpcExpected(f *Flow) *Expectation {
	x := f.Extension()
	if x == nil || x.Expected == nil {
		return nil
	}
	switch x.Expected.Reason {
	case dcerpcReasonEPM, dcerpcReasonDCOM, dcerpcReasonOXID:
		return x.Expected
	}
	return nil
}

// Inspect reads one payload of f.
func (d *DCERPCDetector) Inspect(ctx *Context, f *Flow, seg *Segment) Status {
	st, _ := ctx.State(f).(*dcerpcFlow)
	if st == nil {
		exp := dcerpcExpected(f)
		var tr uint8
		switch f.Proto {
		case ProtoUDP:
			if !clValid(seg.Payload) {
				return Done
			}
			tr = rpcTransportUDP
		case ProtoTCP:
			switch p := seg.Payload; {
			case coStart(p):
				tr = rpcTransportTCP
			case smbStart(p):
				tr = rpcTransportSMB
			case exp != nil:
				tr = rpcTransportTCP
			default:
				return Done
			}
		default:
			return Done
		}
		st = &dcerpcFlow{transport: tr, expected: exp, ev: &DCERPCEvidence{}}
		switch tr {
		case rpcTransportTCP:
			st.chans = []*rpcChannel{{}}
		case rpcTransportSMB:
			st.smb = &smbState{}
		}
		ctx.SetState(f, st)
	}
	switch st.transport {
	case rpcTransportUDP:
		return d.inspectCL(ctx, f, st, seg)
	case rpcTransportSMB:
		return d.inspectSMB(ctx, f, st, seg)
	}
	return d.inspectCO(ctx, f, st, seg)
}

// inspectCO reads DCE/RPC straight over TCP.
func (d *DCERPCDetector) inspectCO(ctx *Context, f *Flow, st *dcerpcFlow, seg *Segment) Status {
	ch := st.chans[0]
	dir := seg.Dir & 1
	data := seg.Payload
	if seg.Gap {
		ch.in[dir].reset()
		ch.lost[dir] = true
	}
	if !st.matched && st.expected != nil && coFragLen(data) > 0 {
		// An announced listener: the header alone is enough (§1.7, §1.8).
		d.match(ctx, f, st)
	}
	switch d.feedChannel(ctx, f, st, ch, dir, data) {
	case chanBad:
		if !st.matched && st.expected == nil {
			return Done
		}
		if st.matched {
			ctx.Counters.CountMalformed(dcerpcName)
		}
		ch.in[dir].reset()
		ch.lost[dir] = true
		if !st.matched {
			st.misses++
		}
	case chanSkipped:
		if !st.matched {
			st.misses++
		}
	}
	if !st.matched && st.misses >= dcerpcMaxMisses {
		return Done
	}
	if st.pdus >= d.opts.MaxPDUs {
		return Done
	}
	return Continue
}

// feedChannel results.
const (
	chanOK      = iota
	chanBad     // a PDU header or body was not DCE/RPC
	chanSkipped // the data was dropped while waiting to resynchronise
)

// feedChannel reassembles data into PDUs of one direction of ch and reads
// them.
func (d *DCERPCDetector) feedChannel(ctx *Context, f *Flow, st *dcerpcFlow, ch *rpcChannel, dir Direction, data []byte) int {
	r := &ch.in[dir]
	if ch.lost[dir] {
		if coFragLen(data) <= 0 {
			return chanSkipped
		}
		ch.lost[dir] = false
		r.reset()
	}
	for len(data) > 0 {
		frame, rest, cut, status := r.next(data, frameCO, d.opts.MaxPDUSize)
		switch status {
		case rpcReasmNeed:
			return chanOK
		case rpcReasmBad:
			return chanBad
		}
		if !st.matched && !coMatchable(frame[2], cut) {
			// An oversized first PDU proves little (only its header and the
			// start of an unstructured stub were seen), nor does a bare
			// header such as shutdown or orphaned. Let the next PDU decide.
			data = rest
			continue
		}
		if !d.handlePDU(ctx, f, st, ch, dir, frame, cut) {
			if !st.matched {
				return chanBad
			}
			ctx.Counters.CountMalformed(dcerpcName)
		} else if !st.matched {
			d.match(ctx, f, st)
		}
		st.pdus++
		data = rest
	}
	return chanOK
}

// coMatchable reports whether a PDU of type t may be the first evidence that
// a flow is DCE/RPC: it must have a body whose shape was checked.
func coMatchable(t uint8, cut bool) bool {
	switch t {
	case coBind, coAlter:
		return true
	case coBindAck, coAlterResp, coRequest, coResponse, coFault:
		return !cut
	}
	return false
}

// match labels the flow as DCE/RPC.
func (d *DCERPCDetector) match(ctx *Context, f *Flow, st *dcerpcFlow) {
	st.matched = true
	f.AddLabel(LabelDCERPC, ConfidenceHigh)
	if f.AppProto == AppNone {
		f.AppProto = AppDCERPC
	}
	switch st.transport {
	case rpcTransportTCP:
		st.ev.Transport = "tcp"
	case rpcTransportSMB:
		st.ev.Transport = "smb"
	case rpcTransportUDP:
		st.ev.Transport = "udp"
	}
	if e := st.expected; e != nil {
		st.ev.ExpectedFrom = &DCERPCExpectedOrigin{Reason: e.Reason, FlowID: e.FromFlow, Service: e.Service}
	}
	f.SetEvidence(dcerpcName, st.ev)
}

// coStart reports whether p can begin connection-oriented DCE/RPC: a valid
// common header, or, when the segment is shorter than a header, bytes that
// agree with one as far as they go.
func coStart(p []byte) bool {
	if len(p) >= coHeaderLen {
		return coFragLen(p) > 0
	}
	var h [coHeaderLen]byte
	copy(h[:], p)
	return len(p) > 0 && h[0] == 5 && h[1] <= 1 && coPtypeValid(h[2]) && h[4]&0xee == 0 && h[5] <= 3 && h[6] == 0 && h[7] == 0
}

// coPtypeValid reports whether t is a connection-oriented PDU type
// (0x01 and 0x04–0x0a are connectionless only, §1.2).
func coPtypeValid(t uint8) bool {
	return t <= coRTS && t != 0x01 && (t < 0x04 || t > 0x0a)
}

// coFragLen applies the minimum validity test of protocols.md §1.2 to a
// common header and returns frag_length, or -1 when b is not a header.
func coFragLen(b []byte) int {
	if len(b) < coHeaderLen || b[0] != 5 || b[1] > 1 || !coPtypeValid(b[2]) {
		return -1
	}
	if b[4]&0xee != 0 || b[5] > 3 || b[6] != 0 || b[7] != 0 {
		return -1
	}
	le := b[4]&0x10 != 0
	n := int(rpcU16(b[8:], le))
	a := int(rpcU16(b[10:], le))
	if a > 0 && coHeaderLen+8+a > n {
		return -1
	}
	least := coHeaderLen // the fixed part of each PDU type's body
	switch b[2] {
	case coRequest, coResponse:
		least = 24
	case coFault, coBind, coAlter, coBindAck, coAlterResp:
		least = 28
	case coBindNak:
		least = 18
	case coAuth3, coRTS:
		least = 20
	}
	if n < least {
		return -1
	}
	return n
}

// handlePDU reads one connection-oriented PDU (possibly cut to the buffer
// bound) and reports whether its body had the shape its type demands.
func (d *DCERPCDetector) handlePDU(ctx *Context, f *Flow, st *dcerpcFlow, ch *rpcChannel, dir Direction, p []byte, cut bool) bool {
	le := p[4]&0x10 != 0
	flags := p[3]
	fragLen := int(rpcU16(p[8:], le))
	authLen := int(rpcU16(p[10:], le))
	callID := rpcU32(p[12:], le)
	bodyEnd := len(p)
	var authType, authLevel uint8
	if authLen > 0 && !cut {
		t := fragLen - authLen - 8
		if t < coHeaderLen || t+8 > len(p) {
			return false
		}
		authType, authLevel = p[t], p[t+1]
		if authLevel == 0 || authLevel > 6 {
			return false
		}
		bodyEnd = t - int(p[t+2])
		if bodyEnd < coHeaderLen {
			bodyEnd = coHeaderLen
		}
	}
	// With a cut PDU the trailer is out of reach: treat the stub as unreadable
	// unless the PDU carries no verifier at all.
	readable := authLen == 0 || (!cut && authLevel < authPktPrivacy)
	ok := true
	switch p[2] {
	case coBind, coAlter:
		ok = d.onBind(f, st, ch, p[:bodyEnd], le, callID, cut)
	case coBindAck, coAlterResp:
		ok = d.onBindAck(st, ch, p[:bodyEnd], le, callID, cut)
	case coBindNak:
		if ch.nbind > 0 && ch.bindCall == callID {
			reason := rpcU16(p[16:], le)
			for i := 0; i < ch.nbind; i++ {
				st.setResult(ch, ch.bindIDs[i], bindNakResult(reason))
			}
			ch.nbind = 0
		}
	case coRequest:
		ok = d.onRequest(ctx, f, st, ch, p[:bodyEnd], le, flags, callID, readable)
	case coResponse:
		d.onResponse(ctx, f, st, ch, p[:bodyEnd], le, flags, callID, readable)
	}
	if ok && authType != 0 {
		st.noteAuth(authType, authLevel)
	}
	return ok
}

// onBind reads a bind or alter_context body (§1.4): every context item's
// abstract syntax, and labels activation and Remote Assistance interfaces.
func (d *DCERPCDetector) onBind(f *Flow, st *dcerpcFlow, ch *rpcChannel, p []byte, le bool, callID uint32, cut bool) bool {
	if len(p) < 28+24 {
		return false
	}
	if rpcU16(p[16:], le) == 0 || rpcU16(p[18:], le) == 0 {
		return false // max_xmit_frag / max_recv_frag
	}
	n := int(p[24])
	if n == 0 {
		return false
	}
	// First pass: every item must fit, unless the PDU was cut short.
	off, items := 28, 0
	for k := 0; k < n; k++ {
		if off+24 > len(p) {
			break
		}
		nts := int(p[off+2])
		if nts == 0 {
			return false
		}
		if off+24+20*nts > len(p) {
			break
		}
		off += 24 + 20*nts
		items++
	}
	if items == 0 || (items < n && !cut) {
		return false
	}
	ch.bindCall, ch.nbind = callID, 0
	off = 28
	for k := 0; k < items; k++ {
		id := rpcU16(p[off:], le)
		nts := int(p[off+2])
		abs := rpcUUIDAt(p[off+4:], le)
		ver := rpcU32(p[off+20:], le)
		btfn := false
		for t := 0; t < nts; t++ {
			ts := p[off+24+20*t:]
			if [8]byte(ts[:8]) == btfnPrefix {
				btfn = true
			}
		}
		ndr64 := rpcUUIDAt(p[off+24:], le) == uuidNDR64
		off += 24 + 20*nts
		if ch.nbind < len(ch.bindIDs) {
			ch.bindIDs[ch.nbind] = id
			ch.nbind++
		}
		c := ch.setContext(id, abs)
		c.btfn, c.ndr64 = btfn, ndr64
		c.evIdx = st.noteInterface(abs, ver)
		switch c.iface.roleOf() {
		case roleRA:
			f.AddLabel(LabelRADCOMOffer, ConfidenceDefinitive)
		case roleSCM, roleActivation:
			f.AddLabel(LabelDCOMActivation, ConfidenceMedium)
		}
	}
	return true
}

func (i *rpcInterface) roleOf() ifaceRole {
	if i == nil {
		return roleNone
	}
	return i.role
}

// onBindAck reads a bind_ack or alter_context_resp (§1.5): the secondary
// address and one result per context item of the bind it answers.
func (d *DCERPCDetector) onBindAck(st *dcerpcFlow, ch *rpcChannel, p []byte, le bool, callID uint32, cut bool) bool {
	if len(p) < 28 {
		return false
	}
	sl := int(rpcU16(p[24:], le))
	off := 26 + sl
	if off > len(p) {
		return false
	}
	if sl > 1 && st.ev.SecAddr == "" {
		a := p[26 : 26+sl]
		if a[len(a)-1] == 0 {
			a = a[:len(a)-1]
		}
		if rpcPrintable(a) && len(a) <= 64 {
			st.ev.SecAddr = string(a)
		}
	}
	off = (off + 3) &^ 3
	if off+4 > len(p) {
		return false
	}
	nres := int(p[off])
	off += 4
	if off+24*nres > len(p) && !cut {
		return false
	}
	if ch.nbind == 0 || ch.bindCall != callID {
		return true
	}
	for k := 0; k < nres && k < ch.nbind && off+24 <= len(p); k++ {
		st.setResult(ch, ch.bindIDs[k], bindResult(rpcU16(p[off:], le), rpcU16(p[off+2:], le)))
		off += 24
	}
	ch.nbind = 0
	return true
}

// onRequest reads a request (§1.6): the opnum on its interface, and for
// activation, OXID resolution and endpoint-mapper calls what their response
// will be read for.
func (d *DCERPCDetector) onRequest(ctx *Context, f *Flow, st *dcerpcFlow, ch *rpcChannel, p []byte, le bool, flags uint8, callID uint32, readable bool) bool {
	if len(p) < 24 {
		return false
	}
	ctxID := rpcU16(p[20:], le)
	op := rpcU16(p[22:], le)
	stubOff := 24
	if flags&pfcObjectUUID != 0 {
		stubOff = 40
	}
	var stub []byte
	if stubOff < len(p) {
		stub = p[stubOff:]
	}
	first := flags&pfcFirstFrag != 0
	c := ch.context(ctxID)
	var iface *rpcInterface
	name := "unknown"
	ndr64 := false
	if c != nil {
		iface, name, ndr64 = c.iface, c.name, c.ndr64
	} else if readable && first && (op == 3 || op == 4) && looksLikeActivation(stub) {
		// No bind seen (capture started late), but the stub is an
		// activation request: ORPCTHIS then an IActivationPropertiesIn OBJREF.
		iface = rpcInterfaces[uuidISystemActivatorID]
		name = iface.name
	}
	st.noteOpnum(name, op, iface.opName(op))
	switch iface.roleOf() {
	case roleSCM:
		if op == 3 || op == 4 {
			f.AddLabel(LabelDCOMActivation, ConfidenceHigh)
			d.activation(f, st, ch, callID, stub, readable && first, false)
		}
	case roleActivation:
		if op == 0 {
			f.AddLabel(LabelDCOMActivation, ConfidenceHigh)
			d.activation(f, st, ch, callID, stub, readable && first, true)
		}
	case roleOXID:
		if op == 0 || op == 4 || op == 5 {
			ch.addCall(rpcCall{callID: callID, kind: callOXID, service: "dcom-object-exporter"})
		}
	case roleEPM:
		if op == 3 || op == 7 {
			call := rpcCall{callID: callID, kind: callEPMMap, ndr64: ndr64}
			if readable && first {
				if u, ok := eptMapRequestInterface(stub, ndr64); ok {
					call.svcUUID = u.String()
					if i := lookupInterface(u); i != nil {
						call.service = i.name
					} else {
						call.service = call.svcUUID
					}
				}
			}
			ch.addCall(call)
		}
	}
	return true
}

// activation reads the class of an activation request and remembers the
// call so that its response is searched for string bindings (§1.8, §1.10).
func (d *DCERPCDetector) activation(f *Flow, st *dcerpcFlow, ch *rpcChannel, callID uint32, stub []byte, readable, legacy bool) {
	call := rpcCall{callID: callID, kind: callActivation, service: "dcom-object-exporter"}
	if readable {
		var clsid rpcUUID
		var ok bool
		if legacy {
			clsid, ok = remoteActivationCLSID(stub)
		} else {
			clsid, ok = activationCLSID(stub)
		}
		if !ok {
			// Fall back to a search for the Remote Assistance classes (§1.8).
			for _, c := range rpcRAClasses {
				if indexRPCUUID(stub, c.uuid) >= 0 {
					clsid, ok = c.uuid, true
					break
				}
			}
		}
		if ok {
			name := st.noteCLSID(clsid)
			if c := rpcClasses[clsid]; c != nil && c.ra {
				f.AddLabel(LabelRADCOMOffer, ConfidenceDefinitive)
			}
			call.svcUUID = clsid.String()
			call.service = name
			if name == "" {
				call.service = call.svcUUID
			}
		}
	}
	ch.addCall(call)
}

// onResponse reads the response to a call that announces listeners: an
// ept_map answer (towers, §1.7), or DCOM string bindings (§1.8).
func (d *DCERPCDetector) onResponse(ctx *Context, f *Flow, st *dcerpcFlow, ch *rpcChannel, p []byte, le bool, flags uint8, callID uint32, readable bool) {
	call := ch.findCall(callID)
	if call == nil {
		return
	}
	if flags&pfcLastFrag != 0 {
		call.used = false // the call is over; its slot may be reused after this PDU
	}
	if !readable || len(p) <= 24 {
		return
	}
	stub := p[24:]
	switch call.kind {
	case callEPMMap:
		if flags&pfcFirstFrag != 0 {
			d.eptMapResponse(ctx, f, st, stub, call)
		}
	case callActivation, callOXID:
		reason := dcerpcReasonDCOM
		if call.kind == callOXID {
			reason = dcerpcReasonOXID
		}
		var out [dcerpcMaxBindings]rpcStringBinding
		n := scanStringBindings(stub, out[:])
		for i := 0; i < n; i++ {
			b := &out[i]
			addr, err := netip.ParseAddr(string(b.host[:b.hostLen]))
			if err != nil {
				addr = netip.Addr{} // a host name: the answering server is the host (§1.8)
			}
			d.announce(ctx, f, st, addr, b.port, ProtoTCP, reason, call.service, call.svcUUID)
		}
	}
}

// eptMapResponse turns each tower of an ept_map answer into an expectation.
// The answer is entry_handle (20), num_towers, the conformant-varying array
// of tower pointers, then the towers (§1.7); under NDR64 conformance values
// and pointers are 8 bytes and aligned to 8.
func (d *DCERPCDetector) eptMapResponse(ctx *Context, f *Flow, st *dcerpcFlow, stub []byte, call *rpcCall) {
	w := 4
	if call.ndr64 {
		w = 8
	}
	off := 24 // entry_handle and num_towers, then aligned to w
	if off+3*w > len(stub) || binary.LittleEndian.Uint32(stub[20:]) == 0 {
		return
	}
	actual := ndrUint(stub[off+2*w:], w)
	if actual == 0 || actual > 64 {
		return
	}
	refs := off + 3*w
	off = refs + w*int(actual)
	for i := 0; i < int(actual) && i < 8; i++ {
		off = (off + w - 1) &^ (w - 1)
		if refs+w*i+w > len(stub) || off+w+4 > len(stub) {
			return
		}
		if ndrUint(stub[refs+w*i:], w) == 0 {
			continue
		}
		tl := int(binary.LittleEndian.Uint32(stub[off+w:]))
		off += w + 4
		if tl <= 0 || off+tl > len(stub) {
			return
		}
		tw, ok := parseRPCTower(stub[off : off+tl])
		off += tl
		if !ok || tw.port == 0 {
			continue
		}
		svc, svcUUID := call.service, call.svcUUID
		if tw.hasIface {
			svcUUID = tw.iface.String()
			if i := lookupInterface(tw.iface); i != nil {
				svc = i.name
			} else {
				svc = svcUUID
			}
		}
		d.announce(ctx, f, st, tw.addr, tw.port, tw.proto, dcerpcReasonEPM, svc, svcUUID)
	}
}

// ndrUint reads a w-byte (4 or 8) little-endian conformance value or
// pointer.
func ndrUint(b []byte, w int) uint64 {
	if w == 8 {
		return binary.LittleEndian.Uint64(b)
	}
	return uint64(binary.LittleEndian.Uint32(b))
}

// announce records a listener announced by f's server and expects a
// connection to it. An unspecified or unknown address means the server
// itself.
func (d *DCERPCDetector) announce(ctx *Context, f *Flow, st *dcerpcFlow, addr netip.Addr, port uint16, proto uint8, reason, svc, svcUUID string) {
	if port == 0 {
		return
	}
	if !addr.IsValid() || addr.IsUnspecified() {
		addr = f.Server.Addr()
	}
	addr = addr.Unmap()
	for _, a := range st.ev.Announced {
		if a.Port == port && a.Reason == reason && a.Addr == addr.String() && a.Proto == rpcProtoName(proto) {
			return
		}
	}
	if len(st.ev.Announced) < dcerpcMaxAnnounced {
		st.ev.Announced = append(st.ev.Announced, DCERPCListener{
			Addr: addr.String(), Port: port, Proto: rpcProtoName(proto), Reason: reason, Service: svc})
	}
	if ctx.Expect == nil {
		return
	}
	ctx.Expect.Add(Expectation{
		Addr: addr, Port: port, Proto: proto, Reason: reason,
		Service: svc, ServiceUUID: svcUUID, FromFlow: f.ID, FromClient: f.Client, FromServer: f.Server, Peer: f.Client.Addr(),
		Created: ctx.Now, Expires: ctx.Now.Add(d.opts.ExpectWindow),
	})
}

func rpcProtoName(p uint8) string {
	if p == ProtoUDP {
		return "udp"
	}
	return "tcp"
}

// setContext records (or replaces) presentation context id.
func (ch *rpcChannel) setContext(id uint16, u rpcUUID) *rpcContext {
	var c *rpcContext
	for i := 0; i < ch.nctx; i++ {
		if ch.ctx[i].id == id {
			c = &ch.ctx[i]
			break
		}
	}
	if c == nil {
		if ch.nctx < len(ch.ctx) {
			c = &ch.ctx[ch.nctx]
			ch.nctx++
		} else {
			c = &ch.ctx[int(id)%len(ch.ctx)]
		}
	}
	if c.uuid != u || c.name == "" {
		iface := lookupInterface(u)
		name := ""
		if iface != nil {
			name = iface.name
		} else {
			name = u.String()
		}
		*c = rpcContext{id: id, uuid: u, iface: iface, name: name}
	}
	c.id = id
	return c
}

func (ch *rpcChannel) context(id uint16) *rpcContext {
	for i := 0; i < ch.nctx; i++ {
		if ch.ctx[i].id == id {
			return &ch.ctx[i]
		}
	}
	return nil
}

func (ch *rpcChannel) addCall(c rpcCall) {
	c.used = true
	for i := range ch.calls {
		if ch.calls[i].used && ch.calls[i].callID == c.callID {
			ch.calls[i] = c
			return
		}
	}
	ch.calls[ch.nextCall] = c
	ch.nextCall = (ch.nextCall + 1) % len(ch.calls)
}

func (ch *rpcChannel) findCall(id uint32) *rpcCall {
	for i := range ch.calls {
		if ch.calls[i].used && ch.calls[i].callID == id {
			return &ch.calls[i]
		}
	}
	return nil
}

// noteInterface adds an abstract syntax to the evidence (once per UUID and
// version) and returns its index, or -1 when the list is full.
func (st *dcerpcFlow) noteInterface(u rpcUUID, ver uint32) int8 {
	n := len(st.ev.Interfaces)
	for i := 0; i < n; i++ {
		if st.ifaceKeys[i] == (ifaceKey{u, ver}) {
			return int8(i)
		}
	}
	if n >= dcerpcMaxInterfaces {
		return -1
	}
	st.ifaceKeys[n] = ifaceKey{u, ver}
	iv := DCERPCInterface{UUID: u.String(), Version: strconv.Itoa(int(ver&0xffff)) + "." + strconv.Itoa(int(ver>>16))}
	if i := lookupInterface(u); i != nil {
		iv.Name = i.name
	}
	st.ev.Interfaces = append(st.ev.Interfaces, iv)
	return int8(n)
}

// setResult records the server's answer for context id. An acceptance wins
// over the rejections of other transfer syntaxes offered for the same
// interface.
func (st *dcerpcFlow) setResult(ch *rpcChannel, id uint16, result string) {
	c := ch.context(id)
	if c == nil || c.evIdx < 0 || int(c.evIdx) >= len(st.ev.Interfaces) {
		return
	}
	iv := &st.ev.Interfaces[c.evIdx]
	switch {
	case iv.Result == "accepted":
	case result == "negotiate_ack" && iv.Result != "":
	case c.btfn && result != "negotiate_ack" && iv.Result != "":
	default:
		iv.Result = result
	}
}

var (
	userRejections     = [...]string{"user_rejection: reason_not_specified", "user_rejection: abstract_syntax_not_supported", "user_rejection: proposed_transfer_syntaxes_not_supported", "user_rejection: local_limit_exceeded"}
	providerRejections = [...]string{"provider_rejection: reason_not_specified", "provider_rejection: abstract_syntax_not_supported", "provider_rejection: proposed_transfer_syntaxes_not_supported", "provider_rejection: local_limit_exceeded"}
)

// bindResult names a p_result (MS-RPCE §2.2.2.4, C706 p_cont_def_result_t).
func bindResult(result, reason uint16) string {
	switch result {
	case 0:
		return "accepted"
	case 1:
		if int(reason) < len(userRejections) {
			return userRejections[reason]
		}
		return "user_rejection"
	case 2:
		if int(reason) < len(providerRejections) {
			return providerRejections[reason]
		}
		return "provider_rejection"
	case 3:
		return "negotiate_ack"
	}
	return "result_" + strconv.Itoa(int(result))
}

// bindNakResult names a bind_nak reject reason.
func bindNakResult(reason uint16) string {
	switch reason {
	case 0:
		return "bind_nak: reason_not_specified"
	case 1:
		return "bind_nak: temporary_congestion"
	case 2:
		return "bind_nak: local_limit_exceeded"
	case 4:
		return "bind_nak: protocol_version_not_supported"
	case 8:
		return "bind_nak: authentication_type_not_recognized"
	case 9:
		return "bind_nak: invalid_checksum"
	}
	return "bind_nak"
}

// noteOpnum adds an (interface, opnum) pair to the evidence once.
func (st *dcerpcFlow) noteOpnum(iface string, op uint16, name string) {
	for i := range st.ev.Opnums {
		if st.ev.Opnums[i].Opnum == op && st.ev.Opnums[i].Interface == iface {
			return
		}
	}
	if len(st.ev.Opnums) < dcerpcMaxOpnums {
		st.ev.Opnums = append(st.ev.Opnums, DCERPCOpnum{Interface: iface, Opnum: op, Name: name})
	}
}

// noteCLSID adds an activated class to the evidence and returns its name.
func (st *dcerpcFlow) noteCLSID(u rpcUUID) string {
	name := ""
	if c := rpcClasses[u]; c != nil {
		name = c.name
	}
	s := u.String()
	for _, c := range st.ev.CLSIDs {
		if c.UUID == s {
			return name
		}
	}
	if len(st.ev.CLSIDs) < dcerpcMaxCLSIDs {
		st.ev.CLSIDs = append(st.ev.CLSIDs, DCERPCClass{UUID: s, Name: name})
	}
	return name
}

// noteAuth keeps the strongest authentication level seen (§1.3).
func (st *dcerpcFlow) noteAuth(typ, level uint8) {
	if level <= st.authLevel {
		return
	}
	st.authLevel = level
	st.ev.Auth = &DCERPCAuth{Type: authTypeName(typ), Level: authLevelName(level)}
}

func authTypeName(t uint8) string {
	switch t {
	case 0x00:
		return "none"
	case 0x01:
		return "dce_private"
	case 0x02:
		return "dce_public"
	case 0x04:
		return "digest"
	case 0x09:
		return "spnego"
	case 0x0a:
		return "ntlm"
	case 0x0e:
		return "schannel"
	case 0x10:
		return "kerberos"
	case 0x44:
		return "netlogon"
	case 0xff:
		return "default"
	}
	return "type_" + strconv.Itoa(int(t))
}

func authLevelName(l uint8) string {
	switch l {
	case 1:
		return "none"
	case 2:
		return "connect"
	case 3:
		return "call"
	case 4:
		return "pkt"
	case 5:
		return "pkt_integrity"
	case 6:
		return "pkt_privacy"
	}
	return "level_" + strconv.Itoa(int(l))
}

// rpcTower is what a protocol tower says about an endpoint (§1.7).
type rpcTower struct {
	iface    rpcUUID
	hasIface bool
	port     uint16
	proto    uint8
	addr     netip.Addr
}

// parseRPCTower walks every floor of a tower octet string.
func parseRPCTower(t []byte) (rpcTower, bool) {
	var tw rpcTower
	if len(t) < 2 {
		return tw, false
	}
	n := int(binary.LittleEndian.Uint16(t))
	off := 2
	var tcp, udp, http uint16
	for i := 0; i < n && i < 8; i++ {
		if off+2 > len(t) {
			return tw, false
		}
		ll := int(binary.LittleEndian.Uint16(t[off:]))
		off += 2
		if off+ll+2 > len(t) {
			return tw, false
		}
		lhs := t[off : off+ll]
		off += ll
		rl := int(binary.LittleEndian.Uint16(t[off:]))
		off += 2
		if off+rl > len(t) {
			return tw, false
		}
		rhs := t[off : off+rl]
		off += rl
		if ll == 0 {
			continue
		}
		switch lhs[0] {
		case 0x0d: // UUID floor; the first is the interface
			if i == 0 && ll >= 17 {
				tw.iface, tw.hasIface = rpcUUIDAt(lhs[1:], true), true
			}
		case 0x07: // TCP port, big-endian
			if rl >= 2 {
				tcp = binary.BigEndian.Uint16(rhs)
			}
		case 0x08: // UDP port
			if rl >= 2 {
				udp = binary.BigEndian.Uint16(rhs)
			}
		case 0x1f: // ncacn_http port
			if rl >= 2 {
				http = binary.BigEndian.Uint16(rhs)
			}
		case 0x09: // IPv4 address
			if rl >= 4 {
				tw.addr = netip.AddrFrom4([4]byte(rhs[:4]))
			}
		}
	}
	switch {
	case tcp != 0:
		tw.port, tw.proto = tcp, ProtoTCP
	case http != 0:
		tw.port, tw.proto = http, ProtoTCP
	case udp != 0:
		tw.port, tw.proto = udp, ProtoUDP
	}
	return tw, true
}

// eptMapRequestInterface reads the interface UUID of the tower an ept_map
// request asks about (§1.7): obj (a unique pointer to a UUID), then a
// pointer to the tower, its conformance, its length and its octets.
func eptMapRequestInterface(stub []byte, ndr64 bool) (rpcUUID, bool) {
	w := 4
	if ndr64 {
		w = 8
	}
	if len(stub) < w {
		return rpcUUID{}, false
	}
	off := w
	if ndrUint(stub, w) != 0 {
		off += 16
	}
	if off+2*w+4 > len(stub) || ndrUint(stub[off:], w) == 0 {
		return rpcUUID{}, false
	}
	tl := int(binary.LittleEndian.Uint32(stub[off+2*w:]))
	off += 2*w + 4
	if tl <= 0 || off+tl > len(stub) {
		return rpcUUID{}, false
	}
	tw, ok := parseRPCTower(stub[off : off+tl])
	return tw.iface, ok && tw.hasIface
}

// ORPC and activation structures ([MS-DCOM] §2.2.13, §2.2.18, §2.2.22).
var objrefSignature = [4]byte{'M', 'E', 'O', 'W'}

// looksLikeActivation reports whether an ORPC stub is an activation
// request: COM version 5.x, then an OBJREF carrying IActivationPropertiesIn.
func looksLikeActivation(stub []byte) bool {
	if len(stub) < 64 || stub[0] != 5 || stub[1] != 0 {
		return false
	}
	i := indexMEOW(stub[:min(len(stub), 160)])
	return i >= 0 && i+24 <= len(stub) && rpcUUID(stub[i+8:i+24]) == uuidIActPropsIn
}

func indexMEOW(b []byte) int {
	for i := 0; i+4 <= len(b); i++ {
		if b[i] == 'M' && [4]byte(b[i:i+4]) == objrefSignature {
			return i
		}
	}
	return -1
}

// activationCLSID finds the class being activated in a RemoteCreateInstance
// or RemoteGetClassObject stub: the classId that opens InstantiationInfoData
// inside the activation properties blob [MS-DCOM §2.2.22.2.1].
func activationCLSID(stub []byte) (rpcUUID, bool) {
	i := indexMEOW(stub[:min(len(stub), 160)])
	if i < 0 || i+56 > len(stub) {
		return rpcUUID{}, false
	}
	o := stub[i:]
	// OBJREF: signature, flags (4 = custom), IID, then OBJREF_CUSTOM: clsid,
	// cbExtension, size, then the blob.
	if binary.LittleEndian.Uint32(o[4:]) != 4 || rpcUUID(o[8:24]) != uuidIActPropsIn || rpcUUID(o[24:40]) != uuidCLSIDActPropsIn {
		return rpcUUID{}, false
	}
	blob := o[48:]
	// Blob: dwSize, dwReserved, then CustomHeader as a serialised type: 8-byte
	// common header, 8-byte private header, then its fields.
	if len(blob) < 8+16+48 {
		return rpcUUID{}, false
	}
	hdr := blob[8:]
	headerSize := int(binary.LittleEndian.Uint32(hdr[16+4:]))
	cIfs := int(binary.LittleEndian.Uint32(hdr[16+16:]))
	if cIfs <= 0 || cIfs > 16 || headerSize < 16+48 || headerSize > len(hdr) {
		return rpcUUID{}, false
	}
	p := 16 + 48
	if p+4+16*cIfs+4+4*cIfs > len(hdr) || int(binary.LittleEndian.Uint32(hdr[p:])) != cIfs {
		return rpcUUID{}, false
	}
	clsids := hdr[p+4:]
	sizes := hdr[p+4+16*cIfs+4:]
	if int(binary.LittleEndian.Uint32(hdr[p+4+16*cIfs:])) != cIfs {
		return rpcUUID{}, false
	}
	prop := headerSize
	for k := 0; k < cIfs; k++ {
		if rpcUUID(clsids[16*k:16*k+16]) == uuidInstantiationInfo {
			if prop+16+16 > len(hdr) {
				return rpcUUID{}, false
			}
			return rpcUUID(hdr[prop+16 : prop+32]), true
		}
		prop += int(binary.LittleEndian.Uint32(sizes[4*k:]))
		if prop > len(hdr) {
			break
		}
	}
	return rpcUUID{}, false
}

// remoteActivationCLSID reads the Clsid of an IActivation RemoteActivation
// stub: it follows ORPCTHIS when that carries no extensions
// [MS-DCOM §3.1.2.5.2.3.1].
func remoteActivationCLSID(stub []byte) (rpcUUID, bool) {
	if len(stub) < 48 || stub[0] != 5 || stub[1] != 0 || binary.LittleEndian.Uint32(stub[28:]) != 0 {
		return rpcUUID{}, false
	}
	return rpcUUID(stub[32:48]), true
}

func indexRPCUUID(b []byte, u rpcUUID) int {
	for i := 0; i+16 <= len(b); i++ {
		if b[i] == u[0] && rpcUUID(b[i:i+16]) == u {
			return i
		}
	}
	return -1
}

// rpcStringBinding is one "host[port]" ncacn_ip_tcp binding.
type rpcStringBinding struct {
	host    [64]byte
	hostLen int
	port    uint16
}

// scanStringBindings finds NDR-marshalled DUALSTRINGARRAYs in b (a
// conformant count equal to wNumEntries, then wSecurityOffset ≤ it) and
// collects their ncacn_ip_tcp bindings that carry a port ([MS-DCOM] §2.2.19).
// It returns how many it stored in out.
func scanStringBindings(b []byte, out []rpcStringBinding) int {
	n := 0
	for i := 0; i+12 <= len(b) && n < len(out); i += 2 {
		cnt := binary.LittleEndian.Uint32(b[i:])
		if cnt < 4 || cnt > 8192 || uint32(binary.LittleEndian.Uint16(b[i+4:])) != cnt {
			continue
		}
		sec := int(binary.LittleEndian.Uint16(b[i+6:]))
		arr := b[i+8:]
		if sec < 2 || sec > int(cnt) || 2*sec > len(arr) {
			continue
		}
		if m, ok := parseDualStringArray(arr[:2*sec], out[n:]); ok {
			n += m
			i += 6 + 2*sec
		}
	}
	return n
}

// parseDualStringArray reads the string bindings part of a DUALSTRINGARRAY.
func parseDualStringArray(a []byte, out []rpcStringBinding) (int, bool) {
	n, u := 0, 0
	units := len(a) / 2
	unit := func(k int) uint16 { return binary.LittleEndian.Uint16(a[2*k:]) }
	for u < units {
		towerID := unit(u)
		u++
		if towerID == 0 {
			break
		}
		start := u
		for u < units && unit(u) != 0 {
			c := unit(u)
			if c < 0x20 || c > 0x7e {
				return 0, false
			}
			u++
		}
		if u >= units || u == start {
			return 0, false // each binding is a non-empty NUL-terminated string
		}
		end := u
		u++
		if towerID != 7 || n >= len(out) {
			continue
		}
		// "host[port]"
		lb := -1
		for k := start; k < end; k++ {
			if unit(k) == '[' {
				lb = k
				break
			}
		}
		if lb <= start || unit(end-1) != ']' || lb-start > len(out[n].host) {
			continue
		}
		port := 0
		for k := lb + 1; k < end-1; k++ {
			c := unit(k)
			if c < '0' || c > '9' || port > 65535 {
				port = -1
				break
			}
			port = port*10 + int(c-'0')
		}
		if port <= 0 || port > 65535 {
			continue
		}
		b := &out[n]
		b.hostLen = lb - start
		for k := 0; k < b.hostLen; k++ {
			b.host[k] = byte(unit(start + k))
		}
		b.port = uint16(port)
		n++
	}
	return n, true
}

// inspectCL reads connectionless DCE/RPC over UDP (protocols.md §1.1): each
// datagram carries the interface and opnum in its 80-byte header.
func (d *DCERPCDetector) inspectCL(ctx *Context, f *Flow, st *dcerpcFlow, seg *Segment) Status {
	p := seg.Payload
	if !clValid(p) {
		if !st.matched {
			return Done
		}
		ctx.Counters.CountMalformed(dcerpcName)
	} else {
		if !st.matched {
			d.match(ctx, f, st)
		}
		le := p[4]&0x10 != 0
		ifid := rpcUUIDAt(p[24:], le)
		ver := rpcU32(p[60:], le)
		ptype := p[1]
		if ifid != (rpcUUID{}) {
			st.noteInterface(ifid, ver)
			if ptype == 0 || ptype == 2 {
				iface := lookupInterface(ifid)
				name := ifid.String()
				if iface != nil {
					name = iface.name
				}
				op := rpcU16(p[68:], le)
				st.noteOpnum(name, op, iface.opName(op))
			}
		}
	}
	st.pdus++
	if st.pdus >= dcerpcMaxDatagrams || st.pdus >= d.opts.MaxPDUs {
		return Done
	}
	return Continue
}

// clValid is a strict test of the connectionless header (C706 §12.5, as
// Wireshark and nDPI read it): version 4, a known packet type, no reserved
// flag bits, a valid drep, a body length that matches the datagram, and a
// fragment number only on fragments. Payloads that merely start with 0x04
// (SQL Slammer's 0x04 0x01 0x01 ... on UDP 1434) fail it.
func clValid(b []byte) bool {
	if len(b) < clHeaderLen || b[0] != 4 || b[1] > 10 {
		return false
	}
	if b[2]&0x81 != 0 || b[3]&0xfd != 0 { // reserved flags1 bits; flags2 holds only cancel_pending
		return false
	}
	if b[4]&0xee != 0 || b[5] > 3 || b[6] != 0 {
		return false
	}
	le := b[4]&0x10 != 0
	body := int(rpcU16(b[74:], le))
	fragNum := rpcU16(b[76:], le)
	authProto := b[78]
	if clHeaderLen+body > len(b) || (authProto == 0 && clHeaderLen+body != len(b)) {
		return false
	}
	if b[2]&0x04 == 0 && fragNum != 0 {
		return false
	}
	if [16]byte(b[40:56]) == ([16]byte{}) { // activity id
		return false
	}
	if b[1] == 0 && [16]byte(b[24:40]) == ([16]byte{}) { // a request names its interface
		return false
	}
	return true
}

func rpcU16(b []byte, le bool) uint16 {
	if le {
		return binary.LittleEndian.Uint16(b)
	}
	return binary.BigEndian.Uint16(b)
}

func rpcU32(b []byte, le bool) uint32 {
	if le {
		return binary.LittleEndian.Uint32(b)
	}
	return binary.BigEndian.Uint32(b)
}

func rpcPrintable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// Frame kinds the reassembler knows.
const (
	frameCO   uint8 = iota // a connection-oriented DCE/RPC PDU
	frameNBSS              // a NetBIOS session service message (SMB carrier)
)

// rpcReasm results.
const (
	rpcReasmNeed  = iota // the data ended inside a frame
	rpcReasmFrame        // a frame is returned
	rpcReasmBad          // a frame header was invalid
)

// rpcReasm rebuilds length-prefixed frames from one direction of a stream
// with a bounded buffer: a frame longer than the bound is returned cut to it
// and its remainder skipped.
type rpcReasm struct {
	buf   []byte
	want  int // bytes of the current frame to keep; 0 while its header is incomplete
	total int // the current frame's full length
	skip  int // bytes of an oversized frame still to drop
}

func (r *rpcReasm) reset() {
	r.buf = r.buf[:0]
	r.want, r.total, r.skip = 0, 0, 0
}

func rpcFrameHeaderLen(kind uint8) int {
	if kind == frameNBSS {
		return 4
	}
	return coHeaderLen
}

func rpcFrameLen(kind uint8, b []byte) int {
	if kind == frameNBSS {
		return nbssFrameLen(b)
	}
	return coFragLen(b)
}

// next returns the next frame found in data (which may continue a frame
// begun in earlier data) and the data after it. A returned frame is valid
// until the next call; cut says it was shortened to max bytes.
func (r *rpcReasm) next(data []byte, kind uint8, max int) (frame, rest []byte, cut bool, status int) {
	hl := rpcFrameHeaderLen(kind)
	if r.skip > 0 {
		if len(data) <= r.skip {
			r.skip -= len(data)
			return nil, nil, false, rpcReasmNeed
		}
		data = data[r.skip:]
		r.skip = 0
	}
	if len(data) == 0 {
		return nil, nil, false, rpcReasmNeed
	}
	if len(r.buf) == 0 {
		if len(data) < hl {
			r.buf = append(r.buf[:0], data...)
			r.want, r.total = 0, 0
			return nil, nil, false, rpcReasmNeed
		}
		n := rpcFrameLen(kind, data)
		if n < 0 {
			return nil, data, false, rpcReasmBad
		}
		if len(data) >= n {
			return data[:n], data[n:], false, rpcReasmFrame
		}
		keep := min(n, max)
		if len(data) >= keep {
			r.skip = n - len(data)
			return data[:keep], nil, true, rpcReasmFrame
		}
		r.buf = append(r.buf[:0], data...)
		r.want, r.total = keep, n
		return nil, nil, false, rpcReasmNeed
	}
	if r.want == 0 {
		need := hl - len(r.buf)
		if len(data) < need {
			r.buf = append(r.buf, data...)
			return nil, nil, false, rpcReasmNeed
		}
		r.buf = append(r.buf, data[:need]...)
		data = data[need:]
		n := rpcFrameLen(kind, r.buf)
		if n < 0 {
			r.reset()
			return nil, data, false, rpcReasmBad
		}
		r.want, r.total = min(n, max), n
	}
	need := r.want - len(r.buf)
	if need > len(data) {
		r.buf = append(r.buf, data...)
		return nil, nil, false, rpcReasmNeed
	}
	r.buf = append(r.buf, data[:need]...)
	data = data[need:]
	frame, cut = r.buf, r.total > r.want
	r.skip = r.total - r.want
	r.buf, r.want, r.total = r.buf[:0], 0, 0
	if r.skip > 0 {
		if len(data) <= r.skip {
			r.skip -= len(data)
			data = nil
		} else {
			data = data[r.skip:]
			r.skip = 0
		}
	}
	return frame, data, cut, rpcReasmFrame
}
