package scenario

import (
	"encoding/binary"
	"encoding/hex"
	"strings"
	"unicode/utf16"
)

// DCE/RPC connection-oriented PDUs (C706 §12; MS-RPCE §2.2.2), little-endian
// data representation, as Windows sends them. See protocols.md §1.

const (
	ptRequest  = 0x00
	ptResponse = 0x02
	ptBind     = 0x0b
	ptBindAck  = 0x0c
	ptAlter    = 0x0e
	ptAlterR   = 0x0f
	ptAuth3    = 0x10
)

// uuidLE encodes a canonical UUID the way NDR puts it on the wire.
func uuidLE(s string) [16]byte {
	raw, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(raw) != 16 {
		panic("scenario: bad uuid " + s)
	}
	var u [16]byte
	u[0], u[1], u[2], u[3] = raw[3], raw[2], raw[1], raw[0]
	u[4], u[5] = raw[5], raw[4]
	u[6], u[7] = raw[7], raw[6]
	copy(u[8:], raw[8:])
	return u
}

// Interface and class ids used by the scenarios (protocols.md §8).
var (
	uuidNDR                = uuidLE("8a885d04-1ceb-11c9-9fe8-08002b104860")
	uuidIObjectExport      = uuidLE("99fcfec4-5260-101b-bbcb-00aa0021347a")
	uuidISystemAct         = uuidLE("000001a0-0000-0000-c000-000000000046")
	uuidIRASrv             = uuidLE("f120a684-b926-447f-9df4-c966cb785648")
	clsidRASrv             = uuidLE("3c3a70a7-a468-49b9-8ada-28e11fccad5d")
	uuidActPropsIn         = uuidLE("000001a2-0000-0000-c000-000000000046")
	uuidActPropsOut        = uuidLE("000001a3-0000-0000-c000-000000000046")
	clsidActPropsIn        = uuidLE("00000338-0000-0000-c000-000000000046")
	clsidActPropsOut       = uuidLE("00000339-0000-0000-c000-000000000046")
	clsidInstInfo          = uuidLE("000001ab-0000-0000-c000-000000000046")
	clsidScmReply          = uuidLE("000001b6-0000-0000-c000-000000000046")
	uuidIUnknown           = uuidLE("00000000-0000-0000-c000-000000000046")
	clsidWbemLevel1        = uuidLE("8bc3f05e-d86b-11d0-a075-00c04fb68820")
	uuidIWbemLevel1        = uuidLE("f309ad18-d86a-11d0-a075-00c04fb68820")
	uuidIRemUnknown2       = uuidLE("00000143-0000-0000-c000-000000000046")
	authTypeNTLM      byte = 0x0a
	authLevelPriv     byte = 0x06
	authLevelInt      byte = 0x05
)

type ctxItem struct {
	id       uint16
	abstract [16]byte
	major    uint16
	minor    uint16
	transfer [16]byte
	tver     uint32
}

// pdu assembles a PDU: header, body, and an optional auth verifier
// (sec_trailer + token, MS-RPCE §2.2.2.11) after 4-byte alignment padding.
func pdu(ptype, flags byte, callID uint32, body []byte, authType, authLevel byte, token []byte) []byte {
	b := make([]byte, 16, 16+len(body)+32+len(token))
	b[0], b[1], b[2], b[3] = 5, 0, ptype, flags
	b[4] = 0x10 // little-endian integers, ASCII, IEEE floats
	binary.LittleEndian.PutUint32(b[12:], callID)
	b = append(b, body...)
	if token != nil {
		pad := (4 - len(b)%4) % 4
		b = append(b, make([]byte, pad)...)
		b = append(b, authType, authLevel, byte(pad), 0, 0, 0, 0, 0)
		binary.LittleEndian.PutUint32(b[len(b)-4:], 79231) // auth_context_id
		b = append(b, token...)
		binary.LittleEndian.PutUint16(b[10:], uint16(len(token)))
	}
	binary.LittleEndian.PutUint16(b[8:], uint16(len(b)))
	return b
}

const pfcFirstLast = 0x03

func dceBind(ptype byte, callID uint32, ctxs []ctxItem, authLevel byte, token []byte) []byte {
	body := make([]byte, 12)
	binary.LittleEndian.PutUint16(body[0:], 5840) // max_xmit_frag
	binary.LittleEndian.PutUint16(body[2:], 5840)
	body[8] = byte(len(ctxs))
	for _, c := range ctxs {
		e := make([]byte, 44)
		binary.LittleEndian.PutUint16(e[0:], c.id)
		e[2] = 1
		copy(e[4:], c.abstract[:])
		binary.LittleEndian.PutUint16(e[20:], c.major)
		binary.LittleEndian.PutUint16(e[22:], c.minor)
		copy(e[24:], c.transfer[:])
		binary.LittleEndian.PutUint32(e[40:], c.tver)
		body = append(body, e...)
	}
	flags := byte(pfcFirstLast)
	if token != nil {
		flags |= 0x04 // PFC_SUPPORT_HEADER_SIGN
	}
	return pdu(ptype, flags, callID, body, authTypeNTLM, authLevel, token)
}

// dceBindAck accepts every context with NDR; secAddr is the port string.
func dceBindAck(ptype byte, callID uint32, secAddr string, n int, authLevel byte, token []byte) []byte {
	body := make([]byte, 8)
	binary.LittleEndian.PutUint16(body[0:], 5840)
	binary.LittleEndian.PutUint16(body[2:], 5840)
	binary.LittleEndian.PutUint32(body[4:], 0x1234)
	sa := []byte(secAddr)
	if secAddr != "" {
		sa = append(sa, 0)
	}
	l := make([]byte, 2)
	binary.LittleEndian.PutUint16(l, uint16(len(sa)))
	body = append(append(body, l...), sa...)
	for (16+len(body))%4 != 0 {
		body = append(body, 0)
	}
	body = append(body, byte(n), 0, 0, 0)
	for i := 0; i < n; i++ {
		r := make([]byte, 24)
		copy(r[4:], uuidNDR[:])
		binary.LittleEndian.PutUint32(r[20:], 2)
		body = append(body, r...)
	}
	return pdu(ptype, pfcFirstLast, callID, body, authTypeNTLM, authLevel, token)
}

func dceRequest(callID uint32, ctxID, opnum uint16, object *[16]byte, stub []byte, authLevel byte, token []byte) []byte {
	body := make([]byte, 8)
	binary.LittleEndian.PutUint32(body[0:], uint32(len(stub)))
	binary.LittleEndian.PutUint16(body[4:], ctxID)
	binary.LittleEndian.PutUint16(body[6:], opnum)
	flags := byte(pfcFirstLast)
	if object != nil {
		flags |= 0x80
		body = append(body, object[:]...)
	}
	body = append(body, stub...)
	return pdu(ptRequest, flags, callID, body, authTypeNTLM, authLevel, token)
}

func dceResponse(callID uint32, ctxID uint16, stub []byte, authLevel byte, token []byte) []byte {
	body := make([]byte, 8)
	binary.LittleEndian.PutUint32(body[0:], uint32(len(stub)))
	binary.LittleEndian.PutUint16(body[4:], ctxID)
	body = append(body, stub...)
	return pdu(ptResponse, pfcFirstLast, callID, body, authTypeNTLM, authLevel, token)
}

// NTLMSSP messages with empty payload fields, shaped as MS-NLMP §2.2.1
// lays them out (the sensor never reads them; tshark does).
var ntlmFlags = []byte{0x35, 0x82, 0x88, 0xe2}

func ntlmNegotiate() []byte {
	b := append([]byte("NTLMSSP\x00"), 1, 0, 0, 0)
	b = append(b, ntlmFlags...)
	b = append(b, 0, 0, 0, 0, 40, 0, 0, 0) // domain name fields
	b = append(b, 0, 0, 0, 0, 40, 0, 0, 0) // workstation fields
	return append(b, 10, 0, 0x61, 0x4a, 0, 0, 0, 15)
}

func ntlmChallenge(r []byte) []byte {
	b := append([]byte("NTLMSSP\x00"), 2, 0, 0, 0)
	b = append(b, 0, 0, 0, 0, 56, 0, 0, 0) // target name fields
	b = append(b, ntlmFlags...)
	b = append(b, r[:8]...)                // server challenge
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0)  // reserved
	b = append(b, 0, 0, 0, 0, 56, 0, 0, 0) // target info fields
	return append(b, 10, 0, 0x61, 0x4a, 0, 0, 0, 15)
}

func ntlmAuthenticate(r []byte) []byte {
	b := append([]byte("NTLMSSP\x00"), 3, 0, 0, 0)
	for i := 0; i < 6; i++ { // LM, NT, domain, user, workstation, session key: empty
		b = append(b, 0, 0, 0, 0, 88, 0, 0, 0)
	}
	b = append(b, ntlmFlags...)
	b = append(b, 10, 0, 0x61, 0x4a, 0, 0, 0, 15)
	return append(b, r[:16]...) // MIC
}

// verifier is a signed-and-sealed message's 16-byte NTLM verifier.
func verifier(r []byte) []byte { return append([]byte{1, 0, 0, 0}, r[:12]...) }

func utf16z(s string) []byte {
	u := utf16.Encode([]rune(s))
	b := make([]byte, 0, 2*len(u)+2)
	for _, c := range u {
		b = binary.LittleEndian.AppendUint16(b, c)
	}
	return append(b, 0, 0)
}

// dualStringArray encodes string bindings (tower 7, ncacn_ip_tcp) and one
// NTLM security binding (MS-DCOM §2.2.19).
func dualStringArray(bindings []string) []byte {
	var strs []byte
	for _, s := range bindings {
		strs = binary.LittleEndian.AppendUint16(strs, 7)
		strs = append(strs, utf16z(s)...)
	}
	strs = append(strs, 0, 0)
	secOff := len(strs) / 2
	sec := []byte{0x0a, 0, 0xff, 0xff, 0, 0, 0, 0}
	all := append(strs, sec...)
	b := binary.LittleEndian.AppendUint16(nil, uint16(len(all)/2))
	b = binary.LittleEndian.AppendUint16(b, uint16(secOff))
	return append(b, all...)
}

// orpcThis is the ORPCTHIS header of a DCOM request (COM version 5.7).
func orpcThis(r []byte) []byte {
	b := []byte{5, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	b = append(b, r[:16]...) // causality id
	return append(b, 0, 0, 0, 0)
}

// activationRequestStub is a RemoteCreateInstance stub: ORPCTHIS, a NULL
// pUnkOuter, and the activation properties as an OBJREF_CUSTOM ("MEOW")
// whose InstantiationInfo names the class (MS-DCOM §2.2.22).
func activationRequestStub(clsid [16]byte, iid [16]byte, r []byte) []byte {
	var props []byte
	// CustomHeader-ish preamble: total size, header size, property clsids.
	props = append(props, 1, 0x10, 8, 0, 0xcc, 0xcc, 0xcc, 0xcc)
	props = append(props, clsidInstInfo[:]...)
	// InstantiationInfoData: classId first, then class context, flags, IIDs.
	props = append(props, 1, 0x10, 8, 0, 0xcc, 0xcc, 0xcc, 0xcc)
	props = append(props, clsid[:]...)
	props = binary.LittleEndian.AppendUint32(props, 0x14) // CLSCTX_LOCAL_SERVER|REMOTE_SERVER
	props = binary.LittleEndian.AppendUint32(props, 0)
	props = binary.LittleEndian.AppendUint32(props, 0)
	props = binary.LittleEndian.AppendUint32(props, 1) // one IID
	props = append(props, iid[:]...)
	var objref []byte
	objref = append(objref, 'M', 'E', 'O', 'W')
	objref = binary.LittleEndian.AppendUint32(objref, 4) // OBJREF_CUSTOM
	objref = append(objref, uuidActPropsIn[:]...)
	objref = append(objref, clsidActPropsIn[:]...)
	objref = binary.LittleEndian.AppendUint32(objref, 0)
	objref = binary.LittleEndian.AppendUint32(objref, uint32(len(props)))
	objref = append(objref, props...)
	b := orpcThis(r)
	b = append(b, 0, 0, 0, 0)                                    // pUnkOuter NULL
	b = binary.LittleEndian.AppendUint32(b, 0x00020000)          // referent id
	b = binary.LittleEndian.AppendUint32(b, uint32(len(objref))) // ulCntData
	b = binary.LittleEndian.AppendUint32(b, uint32(len(objref))) // conformant count
	return append(b, objref...)
}

// activationResponseStub carries ScmReplyInfo with the object exporter's
// string bindings (host[port]).
func activationResponseStub(bindings []string, r []byte) []byte {
	dsa := dualStringArray(bindings)
	var reply []byte
	reply = append(reply, 1, 0x10, 8, 0, 0xcc, 0xcc, 0xcc, 0xcc)
	reply = append(reply, clsidScmReply[:]...)
	reply = append(reply, r[:8]...)                                     // OXID
	reply = binary.LittleEndian.AppendUint32(reply, 0x00020004)         // pdsaOxidBindings referent
	reply = append(reply, r[8:24]...)                                   // IPID of IRemUnknown
	reply = binary.LittleEndian.AppendUint32(reply, 6)                  // authnHint
	reply = append(reply, 5, 0, 7, 0)                                   // serverVersion
	reply = binary.LittleEndian.AppendUint32(reply, uint32(len(dsa)/2)) // conformant size
	reply = append(reply, dsa...)
	var objref []byte
	objref = append(objref, 'M', 'E', 'O', 'W')
	objref = binary.LittleEndian.AppendUint32(objref, 4)
	objref = append(objref, uuidActPropsOut[:]...)
	objref = append(objref, clsidActPropsOut[:]...)
	objref = binary.LittleEndian.AppendUint32(objref, 0)
	objref = binary.LittleEndian.AppendUint32(objref, uint32(len(reply)))
	objref = append(objref, reply...)
	b := []byte{0, 0, 0, 0, 0, 0, 0, 0} // ORPCTHAT: flags, NULL extensions
	b = binary.LittleEndian.AppendUint32(b, 0x00020000)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(objref)))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(objref)))
	b = append(b, objref...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return append(b, 0, 0, 0, 0) // HRESULT S_OK
}

// serverAlive2Response: COMVERSION, the resolver's bindings (no ports), reserved.
func serverAlive2Response(bindings []string) []byte {
	b := []byte{5, 0, 7, 0}
	b = binary.LittleEndian.AppendUint32(b, 0x00020000)
	dsa := dualStringArray(bindings)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(dsa)/2))
	b = append(b, dsa...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return append(b, 0, 0, 0, 0, 0, 0, 0, 0)
}
