package scenario

import (
	"encoding/binary"
	"unicode/utf16"
)

// RDP connection sequence PDUs (MS-RDPBCGR §2.2.1.1–2.2.1.4; protocols.md §2).

// Requested/selected security protocols.
const (
	protoRDP    = 0x0
	protoSSL    = 0x1
	protoHybrid = 0x2
	protoHybEx  = 0x8
)

func tpkt(payload []byte) []byte {
	b := []byte{3, 0, 0, 0}
	binary.BigEndian.PutUint16(b[2:], uint16(4+len(payload)))
	return append(b, payload...)
}

// x224CR is a Connection Request with an optional cookie and RDP_NEG_REQ.
func x224CR(cookie string, withNeg bool, protocols uint32) []byte {
	v := []byte{0, 0xe0, 0, 0, 0x12, 0x34, 0} // LI (set below), CR, dst-ref, src-ref, class 0
	if cookie != "" {
		v = append(v, "Cookie: mstshash="+cookie+"\r\n"...)
	}
	if withNeg {
		v = append(v, 1, 0, 8, 0)
		v = binary.LittleEndian.AppendUint32(v, protocols)
	}
	v[0] = byte(len(v) - 1)
	return tpkt(v)
}

// x224CC is a Connection Confirm with RDP_NEG_RSP.
func x224CC(selected uint32) []byte {
	v := []byte{0, 0xd0, 0x12, 0x34, 0x56, 0x78, 0, 2, 0x1f, 8, 0}
	v = binary.LittleEndian.AppendUint32(v, selected)
	v[0] = byte(len(v) - 1)
	return tpkt(v)
}

// x224Data wraps MCS bytes in an X.224 Data TPDU.
func x224Data(mcs []byte) []byte { return tpkt(append([]byte{2, 0xf0, 0x80}, mcs...)) }

// berLen encodes a BER length.
func berLen(n int) []byte {
	switch {
	case n < 0x80:
		return []byte{byte(n)}
	case n < 0x100:
		return []byte{0x81, byte(n)}
	}
	return []byte{0x82, byte(n >> 8), byte(n)}
}

// perLen encodes a PER length (X.691 §10.9).
func perLen(n int) []byte {
	if n < 0x80 {
		return []byte{byte(n)}
	}
	return []byte{0x80 | byte(n>>8), byte(n)}
}

func berInts(vals ...int) []byte {
	var b []byte
	for _, v := range vals {
		switch {
		case v < 0x80:
			b = append(b, 2, 1, byte(v))
		case v < 0x8000:
			b = append(b, 2, 2, byte(v>>8), byte(v))
		default:
			b = append(b, 2, 3, byte(v>>16), byte(v>>8), byte(v))
		}
	}
	return append(append([]byte{0x30}, berLen(len(b))...), b...)
}

func utf16Fixed(s string, n int) []byte {
	b := make([]byte, n)
	for i, c := range utf16.Encode([]rune(s)) {
		if 2*i+1 >= n-2 {
			break
		}
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return b
}

// mcsConnectInitial builds the client's MCS Connect Initial carrying the GCC
// Conference Create Request with CS_CORE, CS_SECURITY and CS_NET (the
// channel names a passive sensor reads under Standard RDP Security).
func mcsConnectInitial(clientName string, build uint32, channels []string) []byte {
	core := make([]byte, 0, 216)
	core = binary.LittleEndian.AppendUint32(core, 0x00080004) // RDP 5+
	core = binary.LittleEndian.AppendUint16(core, 1280)       // desktop width
	core = binary.LittleEndian.AppendUint16(core, 1024)       // desktop height
	core = binary.LittleEndian.AppendUint16(core, 0xca01)     // colorDepth
	core = binary.LittleEndian.AppendUint16(core, 0xaa03)     // SASSequence
	core = binary.LittleEndian.AppendUint32(core, 0x409)      // keyboard layout
	core = binary.LittleEndian.AppendUint32(core, build)      // client build
	core = append(core, utf16Fixed(clientName, 32)...)        // client name
	core = binary.LittleEndian.AppendUint32(core, 4)          // keyboard type
	core = binary.LittleEndian.AppendUint32(core, 0)          // subtype
	core = binary.LittleEndian.AppendUint32(core, 12)         // function keys
	core = append(core, make([]byte, 64)...)                  // IME file name
	core = binary.LittleEndian.AppendUint16(core, 0xca01)     // postBeta2ColorDepth
	core = binary.LittleEndian.AppendUint16(core, 1)          // clientProductId
	core = binary.LittleEndian.AppendUint32(core, 0)          // serialNumber
	core = binary.LittleEndian.AppendUint16(core, 0x18)       // highColorDepth
	core = binary.LittleEndian.AppendUint16(core, 0x0f)       // supportedColorDepths
	core = binary.LittleEndian.AppendUint16(core, 0x0001)     // earlyCapabilityFlags
	core = append(core, make([]byte, 64)...)                  // clientDigProductId
	core = append(core, 0, 0)                                 // connectionType, pad
	core = binary.LittleEndian.AppendUint32(core, protoRDP)   // serverSelectedProtocol
	block := func(typ uint16, body []byte) []byte {
		b := binary.LittleEndian.AppendUint16(nil, typ)
		b = binary.LittleEndian.AppendUint16(b, uint16(4+len(body)))
		return append(b, body...)
	}
	sec := binary.LittleEndian.AppendUint32(nil, 0x1b) // 40/56/128-bit, FIPS
	sec = binary.LittleEndian.AppendUint32(sec, 0)
	net := binary.LittleEndian.AppendUint32(nil, uint32(len(channels)))
	for _, ch := range channels {
		name := make([]byte, 8)
		copy(name, ch)
		net = append(net, name...)
		net = binary.LittleEndian.AppendUint32(net, 0x80800000) // initialized, encrypt RDP
	}
	user := append(append(block(0xc001, core), block(0xc002, sec)...), block(0xc003, net)...)
	// GCC Conference Create Request (T.124, PER) with the H.221 key "Duca".
	ccr := []byte{0x00, 0x08, 0x00, 0x10, 0x00, 0x01, 0xc0, 0x00, 'D', 'u', 'c', 'a'}
	ccr = append(append(ccr, perLen(len(user))...), user...)
	gcc := []byte{0x00, 0x05, 0x00, 0x14, 0x7c, 0x00, 0x01}
	gcc = append(append(gcc, perLen(len(ccr))...), ccr...)
	var ci []byte
	ci = append(ci, 0x04, 0x01, 0x01, 0x04, 0x01, 0x01, 0x01, 0x01, 0xff)
	ci = append(ci, berInts(34, 2, 0, 1, 0, 1, 0xffff, 2)...)
	ci = append(ci, berInts(1, 1, 1, 1, 0, 1, 0x420, 2)...)
	ci = append(ci, berInts(0xffff, 0xfc17, 0xffff, 1, 0, 1, 0xffff, 2)...)
	ci = append(append(append(ci, 0x04), berLen(len(gcc))...), gcc...)
	return x224Data(append(append([]byte{0x7f, 0x65}, berLen(len(ci))...), ci...))
}

// mcsConnectResponse is the server's answer with SC_CORE, SC_SECURITY
// (128-bit RC4, a server random and a proprietary RSA certificate, as
// Standard RDP Security has it: MS-RDPBCGR §2.2.1.4.3, §2.2.1.4.3.1.1) and
// SC_NET ("McDn").
func mcsConnectResponse(nChannels int, r []byte) []byte {
	block := func(typ uint16, body []byte) []byte {
		b := binary.LittleEndian.AppendUint16(nil, typ)
		b = binary.LittleEndian.AppendUint16(b, uint16(4+len(body)))
		return append(b, body...)
	}
	core := binary.LittleEndian.AppendUint32(nil, 0x00080004)
	core = binary.LittleEndian.AppendUint32(core, protoRDP)
	cert := binary.LittleEndian.AppendUint32(nil, 1) // dwVersion: proprietary
	cert = binary.LittleEndian.AppendUint32(cert, 1) // dwSigAlgId: RSA
	cert = binary.LittleEndian.AppendUint32(cert, 1) // dwKeyAlgId: RSA
	cert = binary.LittleEndian.AppendUint16(cert, 6) // BB_RSA_KEY_BLOB
	cert = binary.LittleEndian.AppendUint16(cert, 92)
	cert = append(cert, 'R', 'S', 'A', '1')
	cert = binary.LittleEndian.AppendUint32(cert, 72)    // keylen
	cert = binary.LittleEndian.AppendUint32(cert, 512)   // bitlen
	cert = binary.LittleEndian.AppendUint32(cert, 63)    // datalen
	cert = binary.LittleEndian.AppendUint32(cert, 65537) // public exponent
	cert = append(cert, r[:64]...)                       // modulus
	cert = append(cert, make([]byte, 8)...)              // padding
	cert = binary.LittleEndian.AppendUint16(cert, 8)     // BB_RSA_SIGNATURE_BLOB
	cert = binary.LittleEndian.AppendUint16(cert, 72)
	cert = append(cert, r[64:128]...)
	cert = append(cert, make([]byte, 8)...)
	sec := binary.LittleEndian.AppendUint32(nil, 2) // encryptionMethod: 128-bit
	sec = binary.LittleEndian.AppendUint32(sec, 2)  // encryptionLevel: client compatible
	sec = binary.LittleEndian.AppendUint32(sec, 32)
	sec = binary.LittleEndian.AppendUint32(sec, uint32(len(cert)))
	sec = append(sec, r[128:160]...) // server random
	sec = append(sec, cert...)
	net := binary.LittleEndian.AppendUint16(nil, 1003)
	net = binary.LittleEndian.AppendUint16(net, uint16(nChannels))
	for i := 0; i < nChannels; i++ {
		net = binary.LittleEndian.AppendUint16(net, uint16(1004+i))
	}
	if nChannels%2 == 1 {
		net = append(net, 0, 0)
	}
	user := append(append(block(0x0c01, core), block(0x0c02, sec)...), block(0x0c03, net)...)
	ccr := []byte{0x14, 0x76, 0x0a, 0x01, 0x01, 0x00, 0x01, 0xc0, 0x00, 'M', 'c', 'D', 'n'}
	ccr = append(append(ccr, perLen(len(user))...), user...)
	gcc := []byte{0x00, 0x05, 0x00, 0x14, 0x7c, 0x00, 0x01}
	gcc = append(append(gcc, perLen(len(ccr))...), ccr...)
	var cr []byte
	cr = append(cr, 0x0a, 0x01, 0x00, 0x02, 0x01, 0x00)
	cr = append(cr, berInts(34, 3, 0, 1, 0, 1, 0xfff8, 2)...)
	cr = append(append(append(cr, 0x04), berLen(len(gcc))...), gcc...)
	return x224Data(append(append([]byte{0x7f, 0x66}, berLen(len(cr))...), cr...))
}

// MCS domain PDUs after the connect exchange (T.125 PER): Erect Domain
// Request, Attach User Request and Confirm (user channel 1007).
var (
	mcsErectDomain   = x224Data([]byte{0x04, 0x01, 0x00, 0x01, 0x00})
	mcsAttachUser    = x224Data([]byte{0x28})
	mcsAttachConfirm = x224Data([]byte{0x2e, 0x00, 0x00, 0x06})
)

// mcsSend wraps a security header and data in an MCS Send Data Request
// (client, 0x64) or Indication (server, 0x68) on the I/O channel 1003.
func mcsSend(fromServer bool, secFlags uint16, data []byte) []byte {
	pdu := byte(0x64)
	if fromServer {
		pdu = 0x68
	}
	sec := binary.LittleEndian.AppendUint16(nil, secFlags)
	sec = append(sec, 0, 0)
	sec = append(sec, data...)
	body := []byte{pdu, 0x00, 0x06, 0x03, 0xeb, 0x70}
	body = append(body, perLen(len(sec))...)
	return x224Data(append(body, sec...))
}

// Security header flags (MS-RDPBCGR §2.2.8.1.1.2.1).
const (
	secExchangePkt = 0x0001
	secEncrypt     = 0x0008
	secInfoPkt     = 0x0040
)

// rdpSecurityExchange carries the client random encrypted with the server's
// public key (64 bytes plus 8 of padding).
func rdpSecurityExchange(r []byte) []byte {
	data := binary.LittleEndian.AppendUint32(nil, 72)
	data = append(data, r[:64]...)
	return mcsSend(false, secExchangePkt, append(data, make([]byte, 8)...))
}

// rdpEncrypted is an encrypted PDU: a MAC signature and n opaque bytes.
func rdpEncrypted(fromServer bool, flags uint16, r []byte, n int) []byte {
	return mcsSend(fromServer, secEncrypt|flags, r[:8+n])
}
