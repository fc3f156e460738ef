package classify

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// Test vectors of protocols.md §1.11, verbatim.
const (
	vecBindIRASrv = `05 00 0b 03 10 00 00 00 48 00 00 00 01 00 00 00
b8 10 b8 10 00 00 00 00 01 00 00 00 00 00 01 00
84 a6 20 f1 26 b9 7f 44 9d f4 c9 66 cb 78 56 48
00 00 00 00 04 5d 88 8a eb 1c c9 11 9f e8 08 00
2b 10 48 60 02 00 00 00`

	vecBindAck49669 = `05 00 0c 03 10 00 00 00 3c 00 00 00 01 00 00 00
b8 10 b8 10 34 12 00 00 06 00 34 39 36 36 39 00
01 00 00 00 00 00 00 00 04 5d 88 8a eb 1c c9 11
9f e8 08 00 2b 10 48 60 02 00 00 00`

	vecRequestOpnum8 = `05 00 00 83 10 00 00 00 28 00 00 00 03 00 00 00
00 00 00 00 00 00 08 00 04 7c 00 00 64 0a 00 00
1f 4f 4f 4d 3d 3c 2c 1b`

	vecEptMapRequest = `05 00 00 03 10 00 00 00 9c 00 00 00 02 00 00 00 84 00 00 00 00 00 03 00
01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
02 00 00 00 4b 00 00 00 4b 00 00 00
05 00 13 00 0d 84 a6 20 f1 26 b9 7f 44 9d f4 c9 66 cb 78 56 48 00 00 02 00 00 00
13 00 0d 04 5d 88 8a eb 1c c9 11 9f e8 08 00 2b 10 48 60 02 00 02 00 00 00
01 00 0b 02 00 00 00 01 00 07 02 00 00 00 01 00 09 04 00 00 00 00 00 ab
00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 04 00 00 00`

	vecEptMapResponse = `05 00 02 03 10 00 00 00 98 00 00 00 02 00 00 00 80 00 00 00 00 00 00 00
00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  (entry_handle)
01 00 00 00  04 00 00 00 00 00 00 00 01 00 00 00  03 00 00 00
4b 00 00 00 4b 00 00 00
05 00 13 00 0d 78 57 34 12 34 12 cd ab ef 00 01 23 45 67 89 ac 01 00 02 00 00 00
13 00 0d 04 5d 88 8a eb 1c c9 11 9f e8 08 00 2b 10 48 60 02 00 02 00 00 00
01 00 0b 02 00 00 00  01 00 07 02 00 c2 04  01 00 09 04 00 0a 01 02 03
00  00 00 00 00`

	vecDualStringArray = `25 00 21 00
07 00 4e 00 4f 00 56 00 49 00 43 00 45 00 5b 00 34 00 39 00 36 00 36 00 39 00 5d 00 00 00
07 00 31 00 30 00 2e 00 31 00 2e 00 32 00 2e 00 33 00 5b 00 34 00 39 00 36 00 36 00 39 00 5d 00 00 00
00 00
0a 00 ff ff 00 00
00 00`
)

// dcerpcHex decodes a hex dump, ignoring spaces, newlines and (comments).
func dcerpcHex(t testing.TB, s string) []byte {
	t.Helper()
	var clean strings.Builder
	depth := 0
	for _, r := range s {
		switch {
		case r == '(':
			depth++
		case r == ')':
			depth--
		case depth == 0 && strings.ContainsRune("0123456789abcdefABCDEF", r):
			clean.WriteRune(r)
		}
	}
	b, err := hex.DecodeString(clean.String())
	if err != nil {
		t.Fatalf("bad hex: %v", err)
	}
	return b
}

var (
	dcerpcClient = netip.MustParseAddrPort("10.0.0.5:50001")
	dcerpcServer = netip.MustParseAddrPort("10.1.2.3:135")
	dcerpcT0     = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
)

// dcerpcHarness drives the detector over one flow like the classifier does.
type dcerpcHarness struct {
	det    *DCERPCDetector
	ctx    Context
	ctrs   Counters
	f      *Flow
	done   bool
	index  [2]int
	status []Status
}

func newDCERPCHarness(proto uint8, client, server netip.AddrPort) *dcerpcHarness {
	h := &dcerpcHarness{det: NewDCERPCDetector(DCERPCOptions{})}
	h.ctx = Context{Now: dcerpcT0, Expect: NewExpectTable(0, &h.ctrs), Names: NewNameCache(0, &h.ctrs), Counters: &h.ctrs}
	h.f = &Flow{ID: 7, Proto: proto, Client: client, Server: server}
	return h
}

// feed hands one payload to the detector unless it is done; it reports the
// detector's answer.
func (h *dcerpcHarness) feed(dir Direction, p []byte) Status {
	return h.feedSeg(&Segment{Dir: dir, Payload: p})
}

func (h *dcerpcHarness) feedSeg(seg *Segment) Status {
	if h.done {
		return Done
	}
	seg.Index = h.index[seg.Dir]
	seg.Time = h.ctx.Now
	h.index[seg.Dir]++
	st := h.det.Inspect(&h.ctx, h.f, seg)
	h.status = append(h.status, st)
	if st == Done {
		h.done = true
	}
	return st
}

func (h *dcerpcHarness) ev(t testing.TB) *DCERPCEvidence {
	t.Helper()
	ev, _ := h.f.GetEvidence(dcerpcName).(*DCERPCEvidence)
	return ev
}

func dcerpcJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// PDU builders for hand-made cases.

type dcerpcCtxItem struct {
	id    uint16
	iface string // canonical UUID
	ver   uint32 // major | minor<<16
	ts    []string
}

func dcerpcUUIDBytes(t testing.TB, s string) []byte {
	u, ok := parseRPCUUID(s)
	if !ok {
		t.Fatalf("bad uuid %s", s)
	}
	return u[:]
}

const (
	dcerpcNDR    = "8a885d04-1ceb-11c9-9fe8-08002b104860"
	dcerpcNDR64  = "71710533-beba-4937-8319-b5dbef9ccc36"
	dcerpcBTFN   = "6cb71c2c-9812-4540-0300-000000000000"
	dcerpcEPM    = "e1af8308-5d1f-11c9-91a4-08002b14a0fa"
	dcerpcSCM    = "000001a0-0000-0000-c000-000000000046"
	dcerpcIAct   = "4d9f4ab8-7d1c-11cf-861e-0020af6e7c57"
	dcerpcOXID   = "99fcfec4-5260-101b-bbcb-00aa0021347a"
	dcerpcIRASrv = "f120a684-b926-447f-9df4-c966cb785648"
	dcerpcRASrv  = "3c3a70a7-a468-49b9-8ada-28e11fccad5d"
	dcerpcPCHSvc = "833e4010-aff7-4ac3-aac2-9f24c1457bce"
	dcerpcSamr   = "12345778-1234-abcd-ef00-0123456789ac"
	dcerpcSrvsvc = "4b324fc8-1670-01d3-1278-5a47bf6ee188"
)

// dcerpcAuth is a sec_trailer to append.
type dcerpcAuth struct {
	typ, level uint8
	token      int
}

func dcerpcPDU(ptype, flags uint8, callID uint32, body []byte, auth *dcerpcAuth) []byte {
	p := make([]byte, 16, 16+len(body)+64)
	p[0], p[1], p[2], p[3] = 5, 0, ptype, flags
	p[4] = 0x10
	p = append(p, body...)
	authLen := 0
	if auth != nil {
		for len(p)%4 != 0 {
			p = append(p, 0)
		}
		p = append(p, auth.typ, auth.level, 0, 0, 1, 0, 0, 0)
		p = append(p, make([]byte, auth.token)...)
		authLen = auth.token
	}
	binary.LittleEndian.PutUint16(p[8:], uint16(len(p)))
	binary.LittleEndian.PutUint16(p[10:], uint16(authLen))
	binary.LittleEndian.PutUint32(p[12:], callID)
	return p
}

func dcerpcBindBody(t testing.TB, items ...dcerpcCtxItem) []byte {
	b := []byte{0xb8, 0x10, 0xb8, 0x10, 0, 0, 0, 0, byte(len(items)), 0, 0, 0}
	for _, it := range items {
		ts := it.ts
		if ts == nil {
			ts = []string{dcerpcNDR}
		}
		b = binary.LittleEndian.AppendUint16(b, it.id)
		b = append(b, byte(len(ts)), 0)
		b = append(b, dcerpcUUIDBytes(t, it.iface)...)
		b = binary.LittleEndian.AppendUint32(b, it.ver)
		for _, s := range ts {
			b = append(b, dcerpcUUIDBytes(t, s)...)
			v := uint32(2)
			if s != dcerpcNDR {
				v = 1
			}
			b = binary.LittleEndian.AppendUint32(b, v)
		}
	}
	return b
}

type dcerpcAckResult struct{ result, reason uint16 }

func dcerpcBindAckBody(secAddr string, results ...dcerpcAckResult) []byte {
	b := []byte{0xb8, 0x10, 0xb8, 0x10, 0x34, 0x12, 0, 0}
	if secAddr != "" {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(secAddr)+1))
		b = append(b, secAddr...)
		b = append(b, 0)
	} else {
		b = append(b, 0, 0)
	}
	for (16+len(b))%4 != 0 {
		b = append(b, 0)
	}
	b = append(b, byte(len(results)), 0, 0, 0)
	for _, r := range results {
		b = binary.LittleEndian.AppendUint16(b, r.result)
		b = binary.LittleEndian.AppendUint16(b, r.reason)
		b = append(b, make([]byte, 20)...)
	}
	return b
}

func dcerpcRequestBody(ctxID, opnum uint16, stub []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(stub)))
	b = binary.LittleEndian.AppendUint16(b, ctxID)
	b = binary.LittleEndian.AppendUint16(b, opnum)
	return append(b, stub...)
}

func dcerpcResponseBody(ctxID uint16, stub []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(stub)))
	b = binary.LittleEndian.AppendUint16(b, ctxID)
	b = append(b, 0, 0)
	return append(b, stub...)
}

// dcerpcActivationStub builds a RemoteCreateInstance request stub laid out as
// [MS-DCOM] §2.2.13.3, §2.2.22 describe it: ORPCTHIS, pUnkOuter, then an
// OBJREF_CUSTOM carrying IActivationPropertiesIn whose blob lists
// SpecialSystemProperties and InstantiationInfo (the class to activate).
func dcerpcActivationStub(t testing.TB, clsid string) []byte {
	le := binary.LittleEndian
	// Properties: each is a serialised type, 16-byte header then the data.
	prop0 := append([]byte{1, 0x10, 8, 0, 0xcc, 0xcc, 0xcc, 0xcc, 0x20, 0, 0, 0, 0, 0, 0, 0}, make([]byte, 0x20)...)
	prop1 := []byte{1, 0x10, 8, 0, 0xcc, 0xcc, 0xcc, 0xcc, 0x28, 0, 0, 0, 0, 0, 0, 0}
	prop1 = append(prop1, dcerpcUUIDBytes(t, clsid)...)
	prop1 = append(prop1, make([]byte, 0x28-16)...)
	// CustomHeader.
	cIfs := 2
	hdrFields := make([]byte, 0, 128)
	headerSize := 16 + 48 + 4 + 16*cIfs + 4 + 4*cIfs
	hdrFields = le.AppendUint32(hdrFields, 0) // totalSize, patched below
	hdrFields = le.AppendUint32(hdrFields, uint32(headerSize))
	hdrFields = le.AppendUint32(hdrFields, 0)
	hdrFields = le.AppendUint32(hdrFields, 2) // destCtx
	hdrFields = le.AppendUint32(hdrFields, uint32(cIfs))
	hdrFields = append(hdrFields, make([]byte, 16)...)
	hdrFields = append(hdrFields, 0, 0, 2, 0, 4, 0, 2, 0, 0, 0, 0, 0)
	hdrFields = le.AppendUint32(hdrFields, uint32(cIfs))
	hdrFields = append(hdrFields, dcerpcUUIDBytes(t, "000001b9-0000-0000-c000-000000000046")...)
	hdrFields = append(hdrFields, dcerpcUUIDBytes(t, "000001ab-0000-0000-c000-000000000046")...)
	hdrFields = le.AppendUint32(hdrFields, uint32(cIfs))
	hdrFields = le.AppendUint32(hdrFields, uint32(len(prop0)))
	hdrFields = le.AppendUint32(hdrFields, uint32(len(prop1)))
	custom := append([]byte{1, 0x10, 8, 0, 0xcc, 0xcc, 0xcc, 0xcc}, le.AppendUint32(nil, uint32(len(hdrFields)))...)
	custom = append(custom, 0, 0, 0, 0)
	custom = append(custom, hdrFields...)
	total := len(custom) + len(prop0) + len(prop1)
	le.PutUint32(custom[16:], uint32(total))
	blob := le.AppendUint32(nil, uint32(total))
	blob = append(blob, 0, 0, 0, 0)
	blob = append(blob, custom...)
	blob = append(blob, prop0...)
	blob = append(blob, prop1...)
	objref := []byte("MEOW")
	objref = le.AppendUint32(objref, 4)
	objref = append(objref, dcerpcUUIDBytes(t, "000001a2-0000-0000-c000-000000000046")...)
	objref = append(objref, dcerpcUUIDBytes(t, "00000338-0000-0000-c000-000000000046")...)
	objref = le.AppendUint32(objref, 0)
	objref = le.AppendUint32(objref, uint32(len(blob)))
	objref = append(objref, blob...)
	stub := []byte{5, 0, 7, 0}
	stub = append(stub, make([]byte, 4+4+16+4)...) // flags, reserved, cid, extensions
	stub = append(stub, 0, 0, 0, 0)                // pUnkOuter
	stub = append(stub, 0, 0, 2, 0)                // pActProperties referent
	stub = le.AppendUint32(stub, uint32(len(objref)))
	stub = le.AppendUint32(stub, uint32(len(objref)))
	return append(stub, objref...)
}

// dcerpcDSA wraps the §1.11 DUALSTRINGARRAY the way NDR marshals it inside
// a response: a conformant count first, with some ORPCTHAT bytes before.
func dcerpcDSAStub(t testing.TB) []byte {
	stub := []byte{5, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0} // ORPCTHAT-ish prefix
	stub = append(stub, 0, 0, 2, 0)                    // a pointer
	dsa := dcerpcHex(t, vecDualStringArray)
	stub = binary.LittleEndian.AppendUint32(stub, uint32(binary.LittleEndian.Uint16(dsa)))
	stub = append(stub, dsa...)
	return append(stub, 0, 0, 0, 0)
}

func TestDCERPCVectors(t *testing.T) {
	bindSCM := dcerpcHex(t, vecBindIRASrv)
	copy(bindSCM[32:48], dcerpcUUIDBytes(t, dcerpcSCM))
	bindEPM := dcerpcHex(t, vecBindIRASrv)
	copy(bindEPM[32:48], dcerpcUUIDBytes(t, dcerpcEPM))
	bindEPM[48] = 3
	alterRA := dcerpcHex(t, vecBindIRASrv)
	alterRA[2], alterRA[12] = 0x0e, 2

	tests := []struct {
		name   string
		pdu    []byte
		labels []Label
		conf   map[Label]Confidence
		iface  string
		ver    string
	}{
		{"bind IRASrv", dcerpcHex(t, vecBindIRASrv), []Label{LabelDCERPC, LabelRADCOMOffer},
			map[Label]Confidence{LabelDCERPC: ConfidenceHigh, LabelRADCOMOffer: ConfidenceDefinitive}, "IRASrv", "0.0"},
		{"bind IRemoteSCMActivator", bindSCM, []Label{LabelDCERPC, LabelDCOMActivation},
			map[Label]Confidence{LabelDCOMActivation: ConfidenceMedium}, "ISystemActivator", "0.0"},
		{"bind epmapper", bindEPM, []Label{LabelDCERPC}, nil, "epmapper", "3.0"},
		{"alter_context IRASrv", alterRA, []Label{LabelDCERPC, LabelRADCOMOffer},
			map[Label]Confidence{LabelRADCOMOffer: ConfidenceDefinitive}, "IRASrv", "0.0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newDCERPCHarness(ProtoTCP, dcerpcClient, netip.MustParseAddrPort("10.1.2.3:49669"))
			if st := h.feed(ToServer, tc.pdu); st != Continue {
				t.Fatalf("status %v, want Continue", st)
			}
			for _, l := range tc.labels {
				if !h.f.Labels.Has(l) {
					t.Errorf("label %v missing; have %v", l, h.f.Labels.Strings())
				}
			}
			if h.f.Labels.Len() != len(tc.labels) {
				t.Errorf("labels %v, want %v", h.f.Labels.Strings(), tc.labels)
			}
			for l, c := range tc.conf {
				if got := h.f.LabelConfidence(l); got != c {
					t.Errorf("%v confidence %v, want %v", l, got, c)
				}
			}
			if h.f.AppProto != AppDCERPC {
				t.Errorf("app_proto %q", h.f.AppProto)
			}
			ev := h.ev(t)
			if ev == nil || len(ev.Interfaces) != 1 || ev.Interfaces[0].Name != tc.iface || ev.Interfaces[0].Version != tc.ver || ev.Transport != "tcp" {
				t.Fatalf("evidence %s", dcerpcJSON(ev))
			}
		})
	}

	t.Run("bind_ack sec_addr and request opnum 8", func(t *testing.T) {
		h := newDCERPCHarness(ProtoTCP, dcerpcClient, netip.MustParseAddrPort("10.1.2.3:49669"))
		h.feed(ToServer, dcerpcHex(t, vecBindIRASrv))
		ack := dcerpcHex(t, vecBindAck49669)
		binary.LittleEndian.PutUint32(ack[12:], 1) // answer call 1
		h.feed(ToClient, ack)
		req := dcerpcHex(t, vecRequestOpnum8)
		if coFragLen(req) != 40 || req[3] != 0x83 {
			t.Fatalf("vector header: frag %d flags %#x", coFragLen(req), req[3])
		}
		h.feed(ToServer, req)
		ev := h.ev(t)
		if ev.SecAddr != "49669" || ev.Interfaces[0].Result != "accepted" {
			t.Errorf("sec_addr %q result %q", ev.SecAddr, ev.Interfaces[0].Result)
		}
		want := DCERPCOpnum{Interface: "IRASrv", Opnum: 8, Name: "GetSessionInfo"}
		if len(ev.Opnums) != 1 || ev.Opnums[0] != want {
			t.Errorf("opnums %s", dcerpcJSON(ev.Opnums))
		}
	})

	t.Run("ept_map request and response", func(t *testing.T) {
		h := newDCERPCHarness(ProtoTCP, dcerpcClient, dcerpcServer)
		bind := bytes.Clone(bindEPM)
		binary.LittleEndian.PutUint32(bind[12:], 2)
		req := dcerpcHex(t, vecEptMapRequest)
		resp := dcerpcHex(t, vecEptMapResponse)
		if len(req) != 156 || len(resp) != 152 {
			t.Fatalf("vector lengths %d %d", len(req), len(resp))
		}
		h.feed(ToServer, bind)
		h.feed(ToServer, req)
		h.feed(ToClient, resp)
		ev := h.ev(t)
		if len(ev.Opnums) != 1 || ev.Opnums[0].Name != "ept_map" {
			t.Errorf("opnums %s", dcerpcJSON(ev.Opnums))
		}
		want := DCERPCListener{Addr: "10.1.2.3", Port: 49668, Proto: "tcp", Reason: "epm-map", Service: "samr"}
		if len(ev.Announced) != 1 || ev.Announced[0] != want {
			t.Fatalf("announced %s", dcerpcJSON(ev.Announced))
		}
		e := h.ctx.Expect.Match(netip.MustParseAddr("10.1.2.3"), 49668, ProtoTCP, dcerpcT0.Add(time.Minute))
		if e == nil || e.Reason != "epm-map" || e.Service != "samr" || e.ServiceUUID != dcerpcSamr || e.FromFlow != 7 ||
			e.Peer != dcerpcClient.Addr() || !e.Expires.Equal(dcerpcT0.Add(2*time.Minute)) {
			t.Fatalf("expectation %+v", e)
		}
		if h.ctx.Expect.Match(netip.MustParseAddr("10.1.2.3"), 49668, ProtoTCP, dcerpcT0.Add(3*time.Minute)) != nil {
			t.Errorf("expectation outlived its 2-minute window")
		}
		u, ok := eptMapRequestInterface(req[24:], false)
		if !ok || u.String() != dcerpcIRASrv {
			t.Errorf("ept_map request tower interface %v %v", u, ok)
		}
	})

	t.Run("DUALSTRINGARRAY", func(t *testing.T) {
		var out [4]rpcStringBinding
		n := scanStringBindings(dcerpcDSAStub(t), out[:])
		if n != 2 {
			t.Fatalf("%d bindings", n)
		}
		got := []string{string(out[0].host[:out[0].hostLen]), string(out[1].host[:out[1].hostLen])}
		if got[0] != "NOVICE" || got[1] != "10.1.2.3" || out[0].port != 49669 || out[1].port != 49669 {
			t.Errorf("bindings %q ports %d %d", got, out[0].port, out[1].port)
		}
	})
}

// dcerpcActivationFlow runs bind + activation request (+ response) on a flow
// to TCP 135 and returns the harness.
func dcerpcActivationFlow(t *testing.T, iface string, opnum uint16, stub []byte, auth *dcerpcAuth, respStub []byte) *dcerpcHarness {
	h := newDCERPCHarness(ProtoTCP, dcerpcClient, dcerpcServer)
	h.feed(ToServer, dcerpcPDU(coBind, 3, 1, dcerpcBindBody(t, dcerpcCtxItem{id: 0, iface: iface}), auth))
	h.feed(ToClient, dcerpcPDU(coBindAck, 3, 1, dcerpcBindAckBody("135", dcerpcAckResult{0, 0}), auth))
	h.feed(ToServer, dcerpcPDU(coRequest, 3, 2, dcerpcRequestBody(0, opnum, stub), auth))
	if respStub != nil {
		h.feed(ToClient, dcerpcPDU(coResponse, 3, 2, dcerpcResponseBody(0, respStub), auth))
	}
	return h
}

func TestDCERPCActivation(t *testing.T) {
	t.Run("RemoteCreateInstance RASrv readable", func(t *testing.T) {
		h := dcerpcActivationFlow(t, dcerpcSCM, 4, dcerpcActivationStub(t, dcerpcRASrv), &dcerpcAuth{0x0a, 5, 16}, dcerpcDSAStub(t))
		if c := h.f.LabelConfidence(LabelDCOMActivation); c != ConfidenceHigh {
			t.Errorf("dcom-activation %v", c)
		}
		if c := h.f.LabelConfidence(LabelRADCOMOffer); c != ConfidenceDefinitive {
			t.Errorf("ra-dcom-offer %v", c)
		}
		ev := h.ev(t)
		if len(ev.CLSIDs) != 1 || ev.CLSIDs[0] != (DCERPCClass{UUID: dcerpcRASrv, Name: "RASrv"}) {
			t.Errorf("clsids %s", dcerpcJSON(ev.CLSIDs))
		}
		if ev.Auth == nil || *ev.Auth != (DCERPCAuth{Type: "ntlm", Level: "pkt_integrity"}) {
			t.Errorf("auth %s", dcerpcJSON(ev.Auth))
		}
		// NOVICE[49669] is a name: the server answering is the host; and
		// 10.1.2.3[49669] is the same listener.
		want := DCERPCListener{Addr: "10.1.2.3", Port: 49669, Proto: "tcp", Reason: "dcom-activation", Service: "RASrv"}
		if len(ev.Announced) != 1 || ev.Announced[0] != want {
			t.Errorf("announced %s", dcerpcJSON(ev.Announced))
		}
		e := h.ctx.Expect.Match(netip.MustParseAddr("10.1.2.3"), 49669, ProtoTCP, dcerpcT0)
		if e == nil || e.Service != "RASrv" || e.ServiceUUID != dcerpcRASrv {
			t.Errorf("expectation %+v", e)
		}
		if op := ev.Opnums; len(op) != 1 || op[0].Name != "RemoteCreateInstance" {
			t.Errorf("opnums %s", dcerpcJSON(op))
		}
	})
	t.Run("RemoteGetClassObject other class", func(t *testing.T) {
		h := dcerpcActivationFlow(t, dcerpcSCM, 3, dcerpcActivationStub(t, "49b2791a-b1ae-4c90-9b8e-e860ba07f889"), nil, nil)
		if h.f.LabelConfidence(LabelDCOMActivation) != ConfidenceHigh || h.f.Labels.Has(LabelRADCOMOffer) {
			t.Errorf("labels %v", h.f.Labels.Strings())
		}
		if ev := h.ev(t); len(ev.CLSIDs) != 1 || ev.CLSIDs[0].Name != "MMC20.Application" {
			t.Errorf("clsids %s", dcerpcJSON(ev.CLSIDs))
		}
	})
	t.Run("activation at pkt_privacy hides the class", func(t *testing.T) {
		h := dcerpcActivationFlow(t, dcerpcSCM, 4, dcerpcActivationStub(t, dcerpcRASrv), &dcerpcAuth{0x0a, 6, 16}, dcerpcDSAStub(t))
		if h.f.LabelConfidence(LabelDCOMActivation) != ConfidenceHigh {
			t.Errorf("dcom-activation %v", h.f.LabelConfidence(LabelDCOMActivation))
		}
		ev := h.ev(t)
		if h.f.Labels.Has(LabelRADCOMOffer) || len(ev.CLSIDs) != 0 || len(ev.Announced) != 0 {
			t.Errorf("read an encrypted stub: %v %s", h.f.Labels.Strings(), dcerpcJSON(ev))
		}
		if ev.Auth.Level != "pkt_privacy" {
			t.Errorf("auth %s", dcerpcJSON(ev.Auth))
		}
	})
	t.Run("bind alone is medium", func(t *testing.T) {
		h := newDCERPCHarness(ProtoTCP, dcerpcClient, dcerpcServer)
		h.feed(ToServer, dcerpcPDU(coBind, 3, 1, dcerpcBindBody(t, dcerpcCtxItem{id: 0, iface: dcerpcSCM}), nil))
		if h.f.LabelConfidence(LabelDCOMActivation) != ConfidenceMedium {
			t.Errorf("dcom-activation %v", h.f.LabelConfidence(LabelDCOMActivation))
		}
		// A non-activation opnum keeps it medium.
		h.feed(ToServer, dcerpcPDU(coRequest, 3, 2, dcerpcRequestBody(0, 1, nil), nil))
		if h.f.LabelConfidence(LabelDCOMActivation) != ConfidenceMedium {
			t.Errorf("dcom-activation %v after opnum 1", h.f.LabelConfidence(LabelDCOMActivation))
		}
	})
	t.Run("IActivation RemoteActivation PCHService", func(t *testing.T) {
		stub := []byte{5, 0, 1, 0}
		stub = append(stub, make([]byte, 28)...)
		stub = append(stub, dcerpcUUIDBytes(t, dcerpcPCHSvc)...)
		stub = append(stub, make([]byte, 24)...)
		h := dcerpcActivationFlow(t, dcerpcIAct, 0, stub, nil, nil)
		if h.f.LabelConfidence(LabelDCOMActivation) != ConfidenceHigh || h.f.LabelConfidence(LabelRADCOMOffer) != ConfidenceDefinitive {
			t.Errorf("labels %v", h.f.Labels.Strings())
		}
		if ev := h.ev(t); len(ev.CLSIDs) != 1 || ev.CLSIDs[0].Name != "PCHService" || ev.Opnums[0].Name != "RemoteActivation" {
			t.Errorf("evidence %s", dcerpcJSON(ev))
		}
	})
	t.Run("activation without bind (capture started late)", func(t *testing.T) {
		h := newDCERPCHarness(ProtoTCP, dcerpcClient, dcerpcServer)
		h.feed(ToServer, dcerpcPDU(coRequest, 3, 6, dcerpcRequestBody(0, 3, dcerpcActivationStub(t, dcerpcRASrv)), nil))
		h.feed(ToClient, dcerpcPDU(coResponse, 3, 6, dcerpcResponseBody(0, dcerpcDSAStub(t)), nil))
		if !h.f.Labels.Has(LabelDCOMActivation) || !h.f.Labels.Has(LabelRADCOMOffer) {
			t.Errorf("labels %v", h.f.Labels.Strings())
		}
		if ev := h.ev(t); len(ev.Announced) != 1 || ev.Opnums[0].Interface != "ISystemActivator" {
			t.Errorf("evidence %s", dcerpcJSON(ev))
		}
	})
	t.Run("ResolveOxid2", func(t *testing.T) {
		h := dcerpcActivationFlow(t, dcerpcOXID, 4, make([]byte, 12), nil, dcerpcDSAStub(t))
		ev := h.ev(t)
		if h.f.Labels.Has(LabelDCOMActivation) || len(ev.Announced) != 1 || ev.Announced[0].Reason != "oxid-resolve" {
			t.Errorf("labels %v evidence %s", h.f.Labels.Strings(), dcerpcJSON(ev))
		}
	})
}

func TestDCERPCBindResults(t *testing.T) {
	h := newDCERPCHarness(ProtoTCP, dcerpcClient, dcerpcServer)
	bind := dcerpcBindBody(t,
		dcerpcCtxItem{id: 0, iface: dcerpcSamr, ver: 1, ts: []string{dcerpcNDR}},
		dcerpcCtxItem{id: 1, iface: dcerpcSamr, ver: 1, ts: []string{dcerpcNDR64}},
		dcerpcCtxItem{id: 2, iface: dcerpcSamr, ver: 1, ts: []string{dcerpcBTFN}},
		dcerpcCtxItem{id: 3, iface: "01234567-89ab-cdef-0123-456789abcdef", ver: 2 | 3<<16},
	)
	h.feed(ToServer, dcerpcPDU(coBind, 3, 9, bind, &dcerpcAuth{0x09, 2, 40}))
	h.feed(ToClient, dcerpcPDU(coBindAck, 3, 9, dcerpcBindAckBody("49664",
		dcerpcAckResult{2, 2}, dcerpcAckResult{0, 0}, dcerpcAckResult{3, 3}, dcerpcAckResult{2, 1}), nil))
	ev := h.ev(t)
	want := []DCERPCInterface{
		{UUID: dcerpcSamr, Name: "samr", Version: "1.0", Result: "accepted"},
		{UUID: "01234567-89ab-cdef-0123-456789abcdef", Version: "2.3", Result: "provider_rejection: abstract_syntax_not_supported"},
	}
	if dcerpcJSON(ev.Interfaces) != dcerpcJSON(want) {
		t.Errorf("interfaces\n got %s\nwant %s", dcerpcJSON(ev.Interfaces), dcerpcJSON(want))
	}
	if ev.Auth == nil || ev.Auth.Type != "spnego" || ev.Auth.Level != "connect" {
		t.Errorf("auth %s", dcerpcJSON(ev.Auth))
	}
	// An unknown context id and a request on the NDR64 context.
	h.feed(ToServer, dcerpcPDU(coRequest, 3, 10, dcerpcRequestBody(1, 64, nil), nil))
	h.feed(ToServer, dcerpcPDU(coRequest, 3, 11, dcerpcRequestBody(9, 2, nil), nil))
	if dcerpcJSON(ev.Opnums) != `[{"interface":"samr","opnum":64,"name":"SamrConnect5"},{"interface":"unknown","opnum":2}]` {
		t.Errorf("opnums %s", dcerpcJSON(ev.Opnums))
	}
	// bind_nak
	h2 := newDCERPCHarness(ProtoTCP, dcerpcClient, dcerpcServer)
	h2.feed(ToServer, dcerpcPDU(coBind, 3, 1, dcerpcBindBody(t, dcerpcCtxItem{id: 0, iface: dcerpcEPM, ver: 3}), nil))
	h2.feed(ToClient, dcerpcPDU(coBindNak, 3, 1, []byte{4, 0, 0, 0}, nil))
	if r := h2.ev(t).Interfaces[0].Result; r != "bind_nak: protocol_version_not_supported" {
		t.Errorf("bind_nak result %q", r)
	}
}

func TestDCERPCSegmentation(t *testing.T) {
	bind := dcerpcPDU(coBind, 3, 1, dcerpcBindBody(t, dcerpcCtxItem{id: 0, iface: dcerpcEPM, ver: 3}), nil)
	req := dcerpcHex(t, vecEptMapRequest)
	binary.LittleEndian.PutUint32(req[12:], 1)
	ack := dcerpcPDU(coBindAck, 3, 1, dcerpcBindAckBody("135", dcerpcAckResult{0, 0}), nil)
	resp := dcerpcHex(t, vecEptMapResponse)
	binary.LittleEndian.PutUint32(resp[12:], 1)
	check := func(t *testing.T, h *dcerpcHarness) {
		t.Helper()
		ev := h.ev(t)
		if ev == nil || len(ev.Announced) != 1 || ev.Announced[0].Port != 49668 || ev.Interfaces[0].Result != "accepted" {
			t.Errorf("evidence %s", dcerpcJSON(ev))
		}
		if h.ctrs.Malformed()[dcerpcName] != 0 {
			t.Errorf("malformed counted %d", h.ctrs.Malformed()[dcerpcName])
		}
	}
	t.Run("several PDUs per segment", func(t *testing.T) {
		h := newDCERPCHarness(ProtoTCP, dcerpcClient, dcerpcServer)
		h.feed(ToServer, append(bytes.Clone(bind), req...))
		h.feed(ToClient, append(bytes.Clone(ack), resp...))
		check(t, h)
	})
	for _, cuts := range [][]int{{1}, {5}, {15, 16, 17}, {16}, {40, 41, 100}, {3, 9, 27, 81, 150, 151}} {
		t.Run("split", func(t *testing.T) {
			h := newDCERPCHarness(ProtoTCP, dcerpcClient, dcerpcServer)
			for _, pair := range []struct {
				dir Direction
				b   []byte
			}{{ToServer, append(bytes.Clone(bind), req...)}, {ToClient, append(bytes.Clone(ack), resp...)}} {
				prev := 0
				for _, c := range cuts {
					if c < len(pair.b) {
						h.feed(pair.dir, pair.b[prev:c])
						prev = c
					}
				}
				h.feed(pair.dir, pair.b[prev:])
			}
			if !h.f.Labels.Has(LabelDCERPC) {
				t.Fatalf("not labelled with cuts %v", cuts)
			}
			check(t, h)
		})
	}
	t.Run("oversized PDU is skipped", func(t *testing.T) {
		h := newDCERPCHarness(ProtoTCP, dcerpcClient, dcerpcServer)
		h.feed(ToServer, bind)
		big := dcerpcPDU(coRequest, 3, 5, dcerpcRequestBody(0, 9, make([]byte, 40000)), nil)
		big = append(big, req...)
		for off := 0; off < len(big); off += 1460 {
			h.feed(ToServer, big[off:min(off+1460, len(big))])
		}
		h.feed(ToClient, append(bytes.Clone(ack), resp...))
		check(t, h)
		if n := len(h.f.Extension().detectState[0].(*dcerpcFlow).chans[0].in[ToServer].buf); n != 0 {
			t.Errorf("buffer holds %d bytes", n)
		}
		if c := cap(h.f.Extension().detectState[0].(*dcerpcFlow).chans[0].in[ToServer].buf); c > 2*DefaultDCERPCMaxPDUSize {
			t.Errorf("buffer grew to %d", c)
		}
	})
	t.Run("gap resynchronises", func(t *testing.T) {
		h := newDCERPCHarness(ProtoTCP, dcerpcClient, dcerpcServer)
		h.feed(ToServer, bind)
		h.feed(ToServer, req[:50])                                        // the rest is lost
		h.feedSeg(&Segment{Dir: ToServer, Payload: req[100:], Gap: true}) // mid-PDU: skipped
		h.feed(ToServer, req)                                             // a fresh PDU at a segment start
		h.feed(ToClient, append(bytes.Clone(ack), resp...))
		check(t, h)
	})
}

func TestDCERPCNearMisses(t *testing.T) {
	slammer := append([]byte{0x04}, bytes.Repeat([]byte{0x01}, 375)...)
	clOK := dcerpcCLDatagram(t, 0, true, "5a7b91f8-ff00-11d0-a9b2-00c04fb6e6fc", 0, 40)
	mut := func(b []byte, f func([]byte)) []byte { c := bytes.Clone(b); f(c); return c }
	bind := dcerpcHex(t, vecBindIRASrv)
	tests := []struct {
		name    string
		proto   uint8
		payload []byte
	}{
		{"SQL Slammer on UDP 1434", ProtoUDP, slammer},
		{"CL body length mismatch", ProtoUDP, mut(clOK, func(b []byte) { b[74]++ })},
		{"CL reserved flag", ProtoUDP, mut(clOK, func(b []byte) { b[2] |= 0x80 })},
		{"CL bad drep", ProtoUDP, mut(clOK, func(b []byte) { b[6] = 1 })},
		{"CL ptype 11", ProtoUDP, mut(clOK, func(b []byte) { b[1] = 11 })},
		{"CL fragnum without frag flag", ProtoUDP, mut(clOK, func(b []byte) { b[76] = 1 })},
		{"CL nil activity", ProtoUDP, mut(clOK, func(b []byte) { copy(b[40:56], make([]byte, 16)) })},
		{"CL short", ProtoUDP, clOK[:79]},
		{"DNS query", ProtoUDP, dcerpcHex(t, "12 34 01 00 00 01 00 00 00 00 00 00 03 77 77 77 00 00 01 00 01")},
		{"CO ptype 5 (connectionless only)", ProtoTCP, mut(bind, func(b []byte) { b[2] = 5 })},
		{"CO version 4", ProtoTCP, mut(bind, func(b []byte) { b[0] = 4 })},
		{"CO minor 2", ProtoTCP, mut(bind, func(b []byte) { b[1] = 2 })},
		{"CO drep", ProtoTCP, mut(bind, func(b []byte) { b[4] = 0x20 })},
		{"CO float format", ProtoTCP, mut(bind, func(b []byte) { b[5] = 4 })},
		{"CO drep tail", ProtoTCP, mut(bind, func(b []byte) { b[7] = 1 })},
		{"CO frag_length < 16", ProtoTCP, mut(bind, func(b []byte) { b[8] = 8 })},
		{"CO auth_length too big", ProtoTCP, mut(bind, func(b []byte) { b[10] = 0x60 })},
		{"bind with no context", ProtoTCP, mut(bind, func(b []byte) { b[24] = 0 })},
		{"bind context without transfer syntax", ProtoTCP, mut(bind, func(b []byte) { b[30] = 0 })},
		{"bind items overflow", ProtoTCP, mut(bind, func(b []byte) { b[24] = 3 })},
		{"bind max_xmit 0", ProtoTCP, mut(bind, func(b []byte) { b[16], b[17] = 0, 0 })},
		{"TLS ClientHello", ProtoTCP, dcerpcHex(t, "16 03 01 02 00 01 00 01 fc 03 03 00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff")},
		{"HTTP", ProtoTCP, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		{"SSH banner", ProtoTCP, []byte("SSH-2.0-OpenSSH_9.6\r\n")},
		{"SMB magic without NBSS", ProtoTCP, []byte("\xfeSMB@\x00\x00\x00\x00\x00\x00\x00")},
		{"TPKT X.224", ProtoTCP, dcerpcHex(t, "03 00 00 13 0e e0 00 00 00 00 00 01 00 08 00 03 00 00 00")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newDCERPCHarness(tc.proto, dcerpcClient, netip.MustParseAddrPort("10.1.2.3:1434"))
			st := h.feed(ToServer, tc.payload)
			if tc.proto == ProtoTCP && st == Continue {
				// A TCP near-miss may need a second look only if it is still
				// a plausible prefix; feed the server side too.
				st = h.feed(ToClient, []byte("nothing like DCE/RPC here at all, not even close"))
			}
			if st != Done || h.f.Labels != 0 || h.f.AppProto != AppNone || h.f.Extension() != nil && h.f.GetEvidence(dcerpcName) != nil {
				t.Errorf("status %v labels %v app_proto %q", st, h.f.Labels.Strings(), h.f.AppProto)
			}
		})
	}
}

// dcerpcCLDatagram builds a connectionless v4 datagram.
func dcerpcCLDatagram(t testing.TB, ptype uint8, le bool, iface string, opnum uint16, body int) []byte {
	b := make([]byte, 80+body)
	b[0], b[1], b[2] = 4, ptype, 0x28
	var o binary.ByteOrder = binary.BigEndian
	if le {
		b[4] = 0x10
		o = binary.LittleEndian
	}
	u := dcerpcUUIDBytes(t, iface)
	copy(b[24:40], u)
	if !le {
		// UUID integers follow the sender's byte order.
		b[24], b[25], b[26], b[27] = u[3], u[2], u[1], u[0]
		b[28], b[29] = u[5], u[4]
		b[30], b[31] = u[7], u[6]
	}
	copy(b[40:56], []byte("activity-uuid-01"))
	o.PutUint32(b[60:], 1)
	o.PutUint32(b[64:], 42)
	o.PutUint16(b[68:], opnum)
	o.PutUint16(b[70:], 0xffff)
	o.PutUint16(b[72:], 0xffff)
	o.PutUint16(b[74:], uint16(body))
	return b
}

func TestDCERPCConnectionless(t *testing.T) {
	for _, le := range []bool{true, false} {
		h := newDCERPCHarness(ProtoUDP, dcerpcClient, netip.MustParseAddrPort("10.1.2.3:1026"))
		if h.feed(ToServer, dcerpcCLDatagram(t, 0, le, "5a7b91f8-ff00-11d0-a9b2-00c04fb6e6fc", 0, 100)) != Continue {
			t.Fatalf("le=%v: not taken", le)
		}
		ev := h.ev(t)
		if !h.f.Labels.Has(LabelDCERPC) || ev.Transport != "udp" || len(ev.Interfaces) != 1 || ev.Interfaces[0].Name != "msgsvcsend" ||
			ev.Interfaces[0].Version != "1.0" || len(ev.Opnums) != 1 || ev.Opnums[0].Name != "NetrSendMessage" {
			t.Errorf("le=%v: labels %v evidence %s", le, h.f.Labels.Strings(), dcerpcJSON(ev))
		}
	}
	// PROFINET answers come back big-endian from another port.
	h := newDCERPCHarness(ProtoUDP, netip.MustParseAddrPort("192.168.1.20:49161"), netip.MustParseAddrPort("192.168.1.11:49155"))
	resp := dcerpcCLDatagram(t, 2, false, "dea00001-6c97-11d1-8271-00a02442df7d", 4, 52)
	resp[2] = 0x0a
	h.feed(ToServer, resp)
	if ev := h.ev(t); ev == nil || ev.Opnums[0].Interface != "PNIO-CM Device" || ev.Opnums[0].Name != "Control" {
		t.Errorf("PNIO evidence %s", dcerpcJSON(ev))
	}
	// Done after a bounded number of datagrams.
	h = newDCERPCHarness(ProtoUDP, dcerpcClient, netip.MustParseAddrPort("10.1.2.3:1026"))
	dg := dcerpcCLDatagram(t, 0, true, "5a7b91f8-ff00-11d0-a9b2-00c04fb6e6fc", 0, 10)
	for i := 0; i < 20 && !h.done; i++ {
		h.feed(ToServer, dg)
	}
	if !h.done || len(h.status) != dcerpcMaxDatagrams {
		t.Errorf("done %v after %d datagrams", h.done, len(h.status))
	}
}

func TestDCERPCExpectedFlow(t *testing.T) {
	exp := &Expectation{Addr: netip.MustParseAddr("10.1.2.3"), Port: 49669, Proto: ProtoTCP, Reason: "dcom-activation",
		Service: "RASrv", FromFlow: 3}
	server := netip.MustParseAddrPort("10.1.2.3:49669")
	t.Run("mid-stream request", func(t *testing.T) {
		h := newDCERPCHarness(ProtoTCP, dcerpcClient, server)
		h.f.Ext().Expected = exp
		h.feed(ToServer, dcerpcHex(t, vecRequestOpnum8))
		ev := h.ev(t)
		if !h.f.Labels.Has(LabelDCERPC) || ev.ExpectedFrom == nil ||
			*ev.ExpectedFrom != (DCERPCExpectedOrigin{Reason: "dcom-activation", FlowID: 3, Service: "RASrv"}) {
			t.Errorf("labels %v evidence %s", h.f.Labels.Strings(), dcerpcJSON(ev))
		}
	})
	t.Run("starts inside a PDU", func(t *testing.T) {
		h := newDCERPCHarness(ProtoTCP, dcerpcClient, server)
		h.f.Ext().Expected = exp
		req := dcerpcHex(t, vecRequestOpnum8)
		if h.feed(ToServer, req[20:]) != Continue {
			t.Fatal("gave up on an expected flow at the first odd segment")
		}
		h.feed(ToClient, []byte("odd bytes"))
		h.feed(ToServer, req)
		if !h.f.Labels.Has(LabelDCERPC) || h.ev(t).ExpectedFrom == nil {
			t.Errorf("labels %v", h.f.Labels.Strings())
		}
	})
	t.Run("gives up when nothing is DCE/RPC", func(t *testing.T) {
		h := newDCERPCHarness(ProtoTCP, dcerpcClient, server)
		h.f.Ext().Expected = exp
		for i := 0; i < 20 && !h.done; i++ {
			h.feed(ToServer, []byte("\x16\x03\x01 not rpc at all................"))
		}
		if !h.done || h.f.Labels.Has(LabelDCERPC) {
			t.Errorf("done %v labels %v", h.done, h.f.Labels.Strings())
		}
	})
	t.Run("another detector's expectation is not ours", func(t *testing.T) {
		h := newDCERPCHarness(ProtoTCP, dcerpcClient, server)
		h.f.Ext().Expected = &Expectation{Reason: "invitation", Port: 49669}
		if h.feed(ToServer, []byte("\x03\x00\x00\x13\x0e\xe0\x00\x00\x00\x00\x00\x01\x00\x08\x00\x03\x00\x00\x00")) != Done {
			t.Errorf("took an RDP flow expected by an invitation")
		}
	})
}

func TestDCERPCLimits(t *testing.T) {
	h := newDCERPCHarness(ProtoTCP, dcerpcClient, dcerpcServer)
	h.feed(ToServer, dcerpcPDU(coBind, 3, 1, dcerpcBindBody(t, dcerpcCtxItem{id: 0, iface: dcerpcEPM, ver: 3}), nil))
	for i := 0; i < 200 && !h.done; i++ {
		h.feed(ToServer, dcerpcPDU(coRequest, 3, uint32(i+2), dcerpcRequestBody(0, uint16(i), nil), nil))
	}
	if !h.done || len(h.status) != DefaultDCERPCMaxPDUs {
		t.Errorf("done %v after %d PDUs", h.done, len(h.status))
	}
	if ev := h.ev(t); len(ev.Opnums) != dcerpcMaxOpnums {
		t.Errorf("%d opnums kept", len(ev.Opnums))
	}
	// Many interfaces in one bind: bounded.
	var items []dcerpcCtxItem
	for i := 0; i < 40; i++ {
		u := "01234567-89ab-cdef-0123-4567890000" + string("0123456789abcdef"[i/16]) + string("0123456789abcdef"[i%16])
		items = append(items, dcerpcCtxItem{id: uint16(i), iface: u})
	}
	h = newDCERPCHarness(ProtoTCP, dcerpcClient, dcerpcServer)
	h.feed(ToServer, dcerpcPDU(coBind, 3, 1, dcerpcBindBody(t, items...), nil))
	if ev := h.ev(t); len(ev.Interfaces) != dcerpcMaxInterfaces {
		t.Errorf("%d interfaces kept", len(ev.Interfaces))
	}
	if d := NewDCERPCDetector(DCERPCOptions{Budget: 1000, ExpectWindow: time.Second}); d.Budget() != 1000 || d.opts.ExpectWindow != time.Second || d.Name() != "dcerpc" {
		t.Errorf("options not applied: %+v", d.opts)
	}
}

func TestDCERPCNoMatchAllocs(t *testing.T) {
	det := NewDCERPCDetector(DCERPCOptions{})
	var ctrs Counters
	ctx := &Context{Now: dcerpcT0, Expect: NewExpectTable(0, &ctrs), Counters: &ctrs}
	cases := []struct {
		proto uint8
		p     []byte
	}{
		{ProtoTCP, dcerpcHex(t, "16 03 01 02 00 01 00 01 fc 03 03 00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff")},
		{ProtoTCP, []byte("GET / HTTP/1.1\r\nHost: example\r\n\r\n")},
		{ProtoTCP, dcerpcHex(t, "03 00 00 13 0e e0 00 00 00 00 00 01 00 08 00 03 00 00 00")},
		{ProtoUDP, append([]byte{0x04}, bytes.Repeat([]byte{0x01}, 375)...)},
		{ProtoUDP, dcerpcHex(t, "12 34 01 00 00 01 00 00 00 00 00 00 03 77 77 77 00 00 01 00 01")},
	}
	for _, c := range cases {
		f := &Flow{Proto: c.proto, Client: dcerpcClient, Server: dcerpcServer}
		seg := &Segment{Dir: ToServer, Payload: c.p}
		n := testing.AllocsPerRun(100, func() {
			if det.Inspect(ctx, f, seg) != Done {
				t.Fatal("not done")
			}
		})
		if n != 0 {
			t.Errorf("%q: %v allocs per no-match", c.p[:8], n)
		}
	}
}

func TestDCERPCInterfaceTable(t *testing.T) {
	for _, d := range rpcInterfaceDefs {
		u := mustRPCUUID(d.uuid)
		if u.String() != d.uuid {
			t.Errorf("%s round-trips as %s", d.uuid, u)
		}
		if n, ok := LookupDCERPCInterface(d.uuid); !ok || n != d.name {
			t.Errorf("LookupDCERPCInterface(%s) = %q %v", d.uuid, n, ok)
		}
	}
	// protocols.md §8 wire bytes.
	wires := map[string]string{
		dcerpcEPM:                              "08 83 af e1 1f 5d c9 11 91 a4 08 00 2b 14 a0 fa",
		dcerpcSCM:                              "a0 01 00 00 00 00 00 00 c0 00 00 00 00 00 00 46",
		dcerpcIRASrv:                           "84 a6 20 f1 26 b9 7f 44 9d f4 c9 66 cb 78 56 48",
		dcerpcRASrv:                            "a7 70 3a 3c 68 a4 b9 49 8a da 28 e1 1f cc ad 5d",
		dcerpcOXID:                             "c4 fe fc 99 60 52 1b 10 bb cb 00 aa 00 21 34 7a",
		"833e41aa-aff7-4ac3-aac2-9f24c1457bce": "aa 41 3e 83 f7 af c3 4a aa c2 9f 24 c1 45 7b ce",
	}
	for s, w := range wires {
		if got := mustRPCUUID(s); !bytes.Equal(got[:], dcerpcHex(t, w)) {
			t.Errorf("%s wire %x", s, got)
		}
	}
	for _, name := range []string{"epmapper", "mgmt", "lsarpc", "samr", "svcctl", "netlogon", "drsuapi", "winreg", "spoolss",
		"IRemoteWinspool", "srvsvc", "wkssvc", "atsvc", "eventlog", "ntsvcs", "IWbemLevel1Login", "IWbemServices",
		"IEnumWbemClassObject", "IRemUnknown", "IRemUnknown2", "IDispatch", "ITypeInfo", "IOXIDResolver",
		"ISystemActivator", "IActivation", "TsProxyRpcInterface", "nspi", "msgsvcsend", "PNIO-CM Device",
		"IRASrv", "IPCHService", "IPCHCollection", "ISAFSession", "IUnknown"} {
		found := false
		for _, d := range rpcInterfaceDefs {
			found = found || d.name == name
		}
		if !found {
			t.Errorf("interface %s missing from the table", name)
		}
	}
	if _, ok := LookupDCERPCInterface("not-a-uuid"); ok {
		t.Error("looked up garbage")
	}
}

// SMB builders.

func dcerpcNBSS(msgs ...[]byte) []byte {
	var out []byte
	for _, m := range msgs {
		out = append(out, 0, byte(len(m)>>16), byte(len(m)>>8), byte(len(m)))
		out = append(out, m...)
	}
	return out
}

func dcerpcSMB2(cmd uint16, resp bool, mid uint64, tree uint32, status uint32, body []byte) []byte {
	le := binary.LittleEndian
	h := make([]byte, 64, 64+len(body))
	copy(h, "\xfeSMB")
	le.PutUint16(h[4:], 64)
	le.PutUint32(h[8:], status)
	le.PutUint16(h[12:], cmd)
	if resp {
		le.PutUint32(h[16:], 1)
	}
	le.PutUint64(h[24:], mid)
	le.PutUint32(h[36:], tree)
	le.PutUint64(h[40:], 0x1122334455667788)
	return append(h, body...)
}

func dcerpcUTF16(s string) []byte {
	var b []byte
	for _, c := range s {
		b = append(b, byte(c), 0)
	}
	return b
}

var dcerpcFileID = [16]byte{0xaa, 1, 2, 3, 4, 5, 6, 7, 0xbb, 1, 2, 3, 4, 5, 6, 7}

func dcerpcSMB2Session(t *testing.T, name string, bind, ack, req []byte) (toServer, toClient [][]byte) {
	le := binary.LittleEndian
	tcResp := []byte{16, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0x01, 0x1f, 0}
	create := make([]byte, 56)
	le.PutUint16(create, 57)
	n := dcerpcUTF16(name)
	le.PutUint16(create[44:], 64+56)
	le.PutUint16(create[46:], uint16(len(n)))
	create = append(create, n...)
	createResp := make([]byte, 88)
	le.PutUint16(createResp, 89)
	copy(createResp[64:80], dcerpcFileID[:])
	write := make([]byte, 48)
	le.PutUint16(write, 49)
	le.PutUint16(write[2:], 64+48)
	le.PutUint32(write[4:], uint32(len(bind)))
	copy(write[16:32], dcerpcFileID[:])
	write = append(write, bind...)
	read := make([]byte, 49)
	le.PutUint16(read, 49)
	le.PutUint32(read[4:], 1024)
	copy(read[16:32], dcerpcFileID[:])
	readResp := make([]byte, 16)
	le.PutUint16(readResp, 17)
	readResp[2] = 64 + 16
	le.PutUint32(readResp[4:], uint32(len(ack)))
	readResp = append(readResp, ack...)
	ioctl := make([]byte, 56)
	le.PutUint16(ioctl, 57)
	le.PutUint32(ioctl[4:], fsctlPipeTransceive)
	copy(ioctl[8:24], dcerpcFileID[:])
	le.PutUint32(ioctl[24:], 64+56)
	le.PutUint32(ioctl[28:], uint32(len(req)))
	ioctl = append(ioctl, req...)
	toServer = [][]byte{
		dcerpcNBSS(dcerpcSMB2(smb2TreeConnect, false, 3, 0, 0, []byte{9, 0, 0, 0, 72, 0, 0, 0})),
		dcerpcNBSS(dcerpcSMB2(smb2Create, false, 4, 5, 0, create)),
		dcerpcNBSS(dcerpcSMB2(smb2Write, false, 5, 5, 0, write)),
		dcerpcNBSS(dcerpcSMB2(smb2Read, false, 6, 5, 0, read)),
		dcerpcNBSS(dcerpcSMB2(smb2Ioctl, false, 7, 5, 0, ioctl)),
	}
	toClient = [][]byte{
		dcerpcNBSS(dcerpcSMB2(smb2TreeConnect, true, 3, 5, 0, tcResp)),
		dcerpcNBSS(dcerpcSMB2(smb2Create, true, 4, 5, 0, createResp)),
		dcerpcNBSS(dcerpcSMB2(smb2Write, true, 5, 5, 0, []byte{17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})),
		dcerpcNBSS(dcerpcSMB2(smb2Read, true, 6, 5, 0, readResp)),
	}
	return toServer, toClient
}

func TestDCERPCSMB2Pipe(t *testing.T) {
	bind := dcerpcPDU(coBind, 3, 2, dcerpcBindBody(t, dcerpcCtxItem{id: 0, iface: dcerpcSrvsvc, ver: 3}), nil)
	ack := dcerpcPDU(coBindAck, 3, 2, dcerpcBindAckBody(`\PIPE\srvsvc`, dcerpcAckResult{0, 0}), nil)
	req := dcerpcPDU(coRequest, 3, 3, dcerpcRequestBody(0, 15, make([]byte, 32)), nil)
	toServer, toClient := dcerpcSMB2Session(t, "srvsvc", bind, ack, req)
	server := netip.MustParseAddrPort("10.1.2.3:445")
	for _, whole := range []bool{false, true} {
		h := newDCERPCHarness(ProtoTCP, dcerpcClient, server)
		if whole {
			// everything in one segment per direction, then split oddly
			all := bytes.Join(toServer, nil)
			h.feed(ToServer, all[:7])
			h.feed(ToServer, all[7:300])
			h.feed(ToServer, all[300:])
			h.feed(ToClient, bytes.Join(toClient, nil))
		} else {
			for i := range toServer {
				h.feed(ToServer, toServer[i])
				if i < len(toClient) {
					h.feed(ToClient, toClient[i])
				}
			}
		}
		ev := h.ev(t)
		if !h.f.Labels.Has(LabelDCERPC) || ev == nil {
			t.Fatalf("whole=%v: not labelled (%v)", whole, h.status)
		}
		want := `{"transport":"smb","pipe":"srvsvc","interfaces":[{"uuid":"4b324fc8-1670-01d3-1278-5a47bf6ee188","name":"srvsvc","version":"3.0","result":"accepted"}],"opnums":[{"interface":"srvsvc","opnum":15,"name":"NetrShareEnum"}],"sec_addr":"\\PIPE\\srvsvc"}`
		if got := dcerpcJSON(ev); got != want {
			t.Errorf("whole=%v evidence\n got %s\nwant %s", whole, got, want)
		}
	}
	// An SMB session on a disk share that never opens a pipe: no label.
	h := newDCERPCHarness(ProtoTCP, dcerpcClient, server)
	tcDisk := []byte{16, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0x01, 0x1f, 0}
	h.feed(ToServer, toServer[0])
	h.feed(ToClient, dcerpcNBSS(dcerpcSMB2(smb2TreeConnect, true, 3, 5, 0, tcDisk)))
	h.feed(ToServer, toServer[1])
	h.feed(ToClient, toClient[1])
	if h.done || h.f.Labels != 0 {
		t.Errorf("disk share: done %v labels %v", h.done, h.f.Labels.Strings())
	}
	// A file on a disk share whose bytes are not DCE/RPC.
	le := binary.LittleEndian
	write := make([]byte, 48)
	le.PutUint16(write, 49)
	le.PutUint16(write[2:], 64+48)
	le.PutUint32(write[4:], 20)
	write = append(write, []byte("MZ\x90\x00 plain file data")...)
	h.feed(ToServer, dcerpcNBSS(dcerpcSMB2(smb2Write, false, 9, 5, 0, write)))
	if h.f.Labels != 0 {
		t.Errorf("file write labelled %v", h.f.Labels.Strings())
	}
	// Encrypted SMB3: gives up.
	h = newDCERPCHarness(ProtoTCP, dcerpcClient, server)
	sealed := dcerpcNBSS(append([]byte("\xfdSMB"), make([]byte, 60)...))
	for i := 0; i < 10 && !h.done; i++ {
		h.feed(ToServer, sealed)
	}
	if !h.done || h.f.Labels != 0 {
		t.Errorf("sealed: done %v labels %v", h.done, h.f.Labels.Strings())
	}
}

func dcerpcSMB1(cmd uint8, resp bool, mid uint16, words []byte, data []byte) []byte {
	le := binary.LittleEndian
	h := make([]byte, 32)
	copy(h, "\xffSMB")
	h[4] = cmd
	if resp {
		h[9] = 0x98
	} else {
		h[9] = 0x18
	}
	le.PutUint16(h[10:], 0x8003)
	le.PutUint16(h[24:], 0x800) // tid
	le.PutUint16(h[26:], 0x4242)
	le.PutUint16(h[30:], mid)
	h = append(h, byte(len(words)/2))
	h = append(h, words...)
	h = le.AppendUint16(h, uint16(len(data)))
	return append(h, data...)
}

func TestDCERPCSMB1Pipe(t *testing.T) {
	le := binary.LittleEndian
	bind := dcerpcPDU(coBind, 0, 5, dcerpcBindBody(t, dcerpcCtxItem{id: 0, iface: "12345778-1234-abcd-ef00-0123456789ab"}), nil)
	ack := dcerpcPDU(coBindAck, 3, 5, dcerpcBindAckBody(`\PIPE\lsass`, dcerpcAckResult{0, 0}), nil)
	// NT Create AndX \lsarpc.
	cw := make([]byte, 48)
	cw[0] = 0xff
	name := dcerpcUTF16(`\lsarpc`)
	le.PutUint16(cw[5:], uint16(len(name)))
	cdata := append([]byte{0}, name...) // pad: bytes start at an odd offset
	create := dcerpcSMB1(smb1NTCreateAndX, false, 10, cw, cdata)
	crw := make([]byte, 68)
	crw[0] = 0xff
	le.PutUint16(crw[5:], 0xc00f)
	createResp := dcerpcSMB1(smb1NTCreateAndX, true, 10, crw, nil)
	// Trans TransactNmPipe carrying the bind.
	tw := make([]byte, 32)
	le.PutUint16(tw[2:], uint16(len(bind)))
	le.PutUint16(tw[6:], 1024)
	dataOff := 32 + 1 + 32 + 2 + 14 // header, wc, words, bcc, name+pad
	le.PutUint16(tw[20:], uint16(dataOff))
	le.PutUint16(tw[22:], uint16(len(bind)))
	le.PutUint16(tw[24:], uint16(dataOff))
	tw[26] = 2
	le.PutUint16(tw[28:], smb1TransactNmPipe)
	le.PutUint16(tw[30:], 0xc00f)
	tdata := append(dcerpcUTF16(`\PIPE\`), 0, 0)
	tdata = append(tdata, bind...)
	trans := dcerpcSMB1(smb1Transaction, false, 11, tw, tdata)
	rw := make([]byte, 20)
	le.PutUint16(rw[2:], uint16(len(ack)))
	rdataOff := 32 + 1 + 20 + 2 + 1
	le.PutUint16(rw[12:], uint16(len(ack)))
	le.PutUint16(rw[14:], uint16(rdataOff))
	transResp := dcerpcSMB1(smb1Transaction, true, 11, rw, append([]byte{0}, ack...))

	h := newDCERPCHarness(ProtoTCP, netip.MustParseAddrPort("192.168.0.2:4597"), netip.MustParseAddrPort("192.168.0.111:139"))
	// NetBIOS session request first, as on TCP 139.
	sreq := append([]byte{0x81, 0, 0, 68}, bytes.Repeat([]byte{0x41}, 68)...)
	h.feed(ToServer, sreq)
	h.feed(ToClient, []byte{0x82, 0, 0, 0})
	h.feed(ToServer, dcerpcNBSS(create))
	h.feed(ToClient, dcerpcNBSS(createResp))
	h.feed(ToServer, dcerpcNBSS(trans))
	h.feed(ToClient, dcerpcNBSS(transResp))
	ev := h.ev(t)
	if !h.f.Labels.Has(LabelDCERPC) || ev == nil || ev.Pipe != "lsarpc" || ev.Transport != "smb" ||
		ev.Interfaces[0].Name != "lsarpc" || ev.Interfaces[0].Result != "accepted" {
		t.Errorf("labels %v status %v evidence %s", h.f.Labels.Strings(), h.status, dcerpcJSON(ev))
	}
}

// dcerpcFuzzFlow replays a fuzz input as a TCP flow: data[0] is a mode byte
// (bit 0: the flow was announced by an expectation; bit 1: mark every
// third segment as following a gap), then records of [direction byte,
// 16-bit length, payload]; whatever does not parse as a record is one last
// segment to the server.
func dcerpcFuzzFlow(t *testing.T, server string, data []byte) *dcerpcHarness {
	h := newDCERPCHarness(ProtoTCP, dcerpcClient, netip.MustParseAddrPort(server))
	h.det = NewDCERPCDetector(DCERPCOptions{MaxPDUSize: 256, MaxPDUs: 1000})
	if len(data) == 0 {
		return h
	}
	mode := data[0]
	data = data[1:]
	if mode&1 != 0 {
		h.f.Ext().Expected = &Expectation{Reason: "epm-map", FromFlow: 1, Service: "svcctl"}
	}
	n := 0
	for len(data) >= 3 && !h.done {
		l := int(binary.LittleEndian.Uint16(data[1:]))
		if 3+l > len(data) {
			break
		}
		n++
		h.feedSeg(&Segment{Dir: Direction(data[0] & 1), Payload: data[3 : 3+l], Gap: mode&2 != 0 && n%3 == 0})
		data = data[3+l:]
	}
	if len(data) > 0 && !h.done {
		h.feed(ToServer, data)
	}
	return h
}

func dcerpcCheckBounds(t *testing.T, h *dcerpcHarness) {
	ev, _ := h.f.GetEvidence(dcerpcName).(*DCERPCEvidence)
	if ev == nil {
		if h.f.Labels != 0 {
			t.Fatalf("labels %v without evidence", h.f.Labels.Strings())
		}
		return
	}
	if !h.f.Labels.Has(LabelDCERPC) || len(ev.Interfaces) > dcerpcMaxInterfaces || len(ev.Opnums) > dcerpcMaxOpnums ||
		len(ev.Announced) > dcerpcMaxAnnounced || len(ev.CLSIDs) > dcerpcMaxCLSIDs {
		t.Fatalf("bounds broken: labels %v evidence %s", h.f.Labels.Strings(), dcerpcJSON(ev))
	}
	if st, ok := h.f.DetectorState(0).(*dcerpcFlow); ok {
		for _, ch := range st.chans {
			for _, r := range ch.in {
				if len(r.buf) > 256 {
					t.Fatalf("reassembly buffer %d bytes", len(r.buf))
				}
			}
		}
		if len(st.chans) > dcerpcMaxChannels {
			t.Fatalf("%d channels", len(st.chans))
		}
	}
}

func FuzzDCERPC(f *testing.F) {
	f.Add(append([]byte{0}, dcerpcHex(f, vecBindIRASrv)...))
	f.Add(append([]byte{1}, dcerpcHex(f, vecRequestOpnum8)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		h := dcerpcFuzzFlow(t, "10.1.2.3:135", data)
		dcerpcCheckBounds(t, h)
	})
}

func FuzzSMBPipe(f *testing.F) {
	f.Add([]byte{0, 0, 8, 0, 0, 0, 0, 4, 0xfe, 'S', 'M', 'B'})
	f.Fuzz(func(t *testing.T, data []byte) {
		h := dcerpcFuzzFlow(t, "10.1.2.3:445", data)
		dcerpcCheckBounds(t, h)
	})
}

func FuzzDCERPCCL(f *testing.F) {
	f.Add(dcerpcCLDatagram(f, 0, true, "5a7b91f8-ff00-11d0-a9b2-00c04fb6e6fc", 0, 40))
	f.Add(append([]byte{0x04}, bytes.Repeat([]byte{0x01}, 375)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		h := newDCERPCHarness(ProtoUDP, dcerpcClient, netip.MustParseAddrPort("10.1.2.3:1026"))
		h.feed(ToServer, data)
		h.feed(ToClient, data)
		dcerpcCheckBounds(t, h)
		if h.f.Labels.Has(LabelDCERPC) != clValid(data) {
			t.Fatalf("label %v but clValid %v", h.f.Labels.Has(LabelDCERPC), clValid(data))
		}
	})
}

func BenchmarkDCERPCDetector(b *testing.B) {
	bind := dcerpcPDU(coBind, 3, 1, dcerpcBindBody(b, dcerpcCtxItem{id: 0, iface: dcerpcEPM, ver: 3}), nil)
	ack := dcerpcPDU(coBindAck, 3, 1, dcerpcBindAckBody("135", dcerpcAckResult{0, 0}), nil)
	req := dcerpcHex(b, vecEptMapRequest)
	resp := dcerpcHex(b, vecEptMapResponse)
	binary.LittleEndian.PutUint32(req[12:], 1)
	binary.LittleEndian.PutUint32(resp[12:], 1)
	det := NewDCERPCDetector(DCERPCOptions{})
	var ctrs Counters
	ctx := &Context{Now: dcerpcT0, Expect: NewExpectTable(0, &ctrs), Counters: &ctrs}
	b.Run("match", func(b *testing.B) {
		segs := []Segment{{Dir: ToServer, Payload: bind}, {Dir: ToClient, Payload: ack}, {Dir: ToServer, Payload: req}, {Dir: ToClient, Payload: resp}}
		b.ReportAllocs()
		b.SetBytes(int64(len(bind) + len(ack) + len(req) + len(resp)))
		for i := 0; i < b.N; i++ {
			f := &Flow{Proto: ProtoTCP, Client: dcerpcClient, Server: dcerpcServer}
			for j := range segs {
				det.Inspect(ctx, f, &segs[j])
			}
		}
	})
	b.Run("no-match", func(b *testing.B) {
		seg := &Segment{Dir: ToServer, Payload: dcerpcHex(b, "16 03 01 02 00 01 00 01 fc 03 03 00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff")}
		f := &Flow{Proto: ProtoTCP, Client: dcerpcClient, Server: dcerpcServer}
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			det.Inspect(ctx, f, seg)
		}
	})
	b.Run("no-match-udp", func(b *testing.B) {
		seg := &Segment{Dir: ToServer, Payload: append([]byte{0x04}, bytes.Repeat([]byte{0x01}, 375)...)}
		f := &Flow{Proto: ProtoUDP, Client: dcerpcClient, Server: dcerpcServer}
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			det.Inspect(ctx, f, seg)
		}
	})
	b.Run("match-after-bind", func(b *testing.B) {
		// Steady state of a labelled flow: one request PDU per segment.
		f := &Flow{Proto: ProtoTCP, Client: dcerpcClient, Server: dcerpcServer}
		det := NewDCERPCDetector(DCERPCOptions{MaxPDUs: 1 << 30, Budget: 1 << 30})
		det.Inspect(ctx, f, &Segment{Dir: ToServer, Payload: bind})
		r := &Segment{Dir: ToServer, Payload: dcerpcPDU(coRequest, 3, 9, dcerpcRequestBody(0, 2, make([]byte, 64)), nil)}
		b.ReportAllocs()
		b.SetBytes(int64(len(r.Payload)))
		for i := 0; i < b.N; i++ {
			det.Inspect(ctx, f, r)
		}
	})
}

func TestDCERPCOversizedFirstPDU(t *testing.T) {
	// A stream that merely starts like a request header with a huge
	// frag_length must not be labelled from the cut PDU alone.
	h := newDCERPCHarness(ProtoTCP, dcerpcClient, dcerpcServer)
	hdr := dcerpcPDU(coRequest, 3, 1, dcerpcRequestBody(0, 1, nil), nil)
	binary.LittleEndian.PutUint16(hdr[8:], 60000)
	junk := bytes.Repeat([]byte{0x41}, 1400)
	h.feed(ToServer, hdr)
	for i := 0; i < 20 && !h.done; i++ {
		h.feed(ToServer, junk)
	}
	if h.f.Labels != 0 {
		t.Errorf("labelled %v from a cut PDU", h.f.Labels.Strings())
	}
}
