package classify

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"unicode/utf16"
)

// Vectors from protocols.md §2.9.
var (
	vecCRRDPOnly   = hx("03 00 00 13 0e e0 00 00 00 00 00 01 00 08 00 00 00 00 00")
	vecCRCookie    = hx("03 00 00 2c 27 e0 00 00 00 00 00 43 6f 6f 6b 69 65 3a 20 6d 73 74 73 68 61 73 68 3d 65 78 70 65 72 74 0d 0a 01 00 08 00 0b 00 00 00")
	vecCRBare      = hx("03 00 00 0b 06 e0 00 00 00 00 00")
	vecCCRDP       = hx("03 00 00 13 0e d0 00 00 12 34 00 02 00 08 00 00 00 00 00")
	vecCCHybrid    = hx("03 00 00 13 0e d0 00 00 12 34 00 02 1f 08 00 02 00 00 00")
	vecCCFailure   = hx("03 00 00 13 0e d0 00 00 12 34 00 03 00 08 00 01 00 00 00")
	vecCCBare      = hx("03 00 00 0b 06 d0 00 00 12 34 00")
	vecPCBv1       = hx("10 00 00 00 00 00 00 00 01 00 00 00 eb 99 c6 ee")
	vecEUDPSYN     = padTo(hx("ff ff ff ff 00 40 00 01 11 22 33 44 04 d0 04 d0"), 1232)
	vecEUDPSYNv2   = padTo(hx("ff ff ff ff 00 40 10 01 11 22 33 44 04 d0 04 d0 00 01 00 02"), 1232)
	vecEUDPSYNACK  = padTo(hx("11 22 33 44 00 40 00 05 55 66 77 88 04 d0 04 d0"), 1232)
	vecEUDPSYNShrt = hx("ff ff ff ff 00 40 00 01 11 22 33 44 04 d0 04 d0")
)

// Payloads from the shared captures (negative/ndpi-s7comm-tpkt-102.pcap,
// rdp/ndpi-rdp2-rdpudp.pcapng), cut to what the tests need.
var (
	s7CR     = hx("0300001611e00000000700c1020100c2020102c0010a")
	s7CC     = hx("0300001611d00007000300c0010ac1020100c2020102")
	eudpMidC = hx("109760330400000c00010000e65f846de65f846d1603030106100001020100a38eca15cb0fb0a391")
	eudpMidS = hx("e65f846d00c8000c00010100109760341097603414030300010116030300280000000000000000f4")
)

const (
	httpGET        = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"
	httpBadRequest = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
)

var tlsClientHello = hx("16 03 01 00 2f 01 00 00 2b 03 03 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f 00 00 02 13 01 01 00")

func hx(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

func padTo(b []byte, n int) []byte {
	out := make([]byte, n)
	copy(out, b)
	return out
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// mcsConnectInitial builds an X.224 Data TPDU carrying an MCS
// Connect-Initial whose GCC Conference Create Request holds CS_CORE,
// CS_SECURITY and CS_NET blocks (MS-RDPBCGR 2.2.1.3, 4.1.3).
func mcsConnectInitial(name string, build, layout uint32, channels []string) []byte {
	le16 := func(v int) []byte { return binary.LittleEndian.AppendUint16(nil, uint16(v)) }
	le32 := func(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
	core := cat(le32(0x00080004), le16(1024), le16(768), le16(0xCA01), le16(0xAA03), le32(layout), le32(build))
	nm := make([]byte, 32)
	for i, c := range utf16.Encode([]rune(name)) {
		if i < 15 {
			binary.LittleEndian.PutUint16(nm[2*i:], c)
		}
	}
	core = cat(core, nm, le32(4), le32(0), le32(12), make([]byte, 64))
	blocks := cat(le16(0xC001), le16(4+len(core)), core)
	blocks = cat(blocks, le16(0xC002), le16(12), le32(0x1b), le32(0))
	netb := le32(uint32(len(channels)))
	for _, c := range channels {
		n := make([]byte, 8)
		copy(n, c)
		netb = cat(netb, n, le32(0x80800000))
	}
	blocks = cat(blocks, le16(0xC003), le16(4+len(netb)), netb)
	per := func(n int) []byte { return []byte{0x80 | byte(n>>8), byte(n)} }
	gccTail := cat(hx("00 08 00 10 00 01 c0 00"), []byte("Duca"), per(len(blocks)), blocks)
	ud := cat(hx("00 05 00 14 7c 00 01"), per(len(gccTail)), gccTail)
	ber := func(tag []byte, body []byte) []byte {
		return cat(tag, []byte{0x82, byte(len(body) >> 8), byte(len(body))}, body)
	}
	params := ber([]byte{0x30}, make([]byte, 25))
	body := cat(hx("04 01 01 04 01 01 01 01 ff"), params, params, params, ber([]byte{0x04}, ud))
	mcs := ber([]byte{0x7f, 0x65}, body)
	x224 := cat(hx("02 f0 80"), mcs)
	return cat([]byte{3, 0, byte((len(x224) + 4) >> 8), byte(len(x224) + 4)}, x224)
}

type tseg struct {
	dir Direction
	b   []byte
	gap bool
}

func c2s(b []byte) tseg { return tseg{dir: ToServer, b: b} }
func s2c(b []byte) tseg { return tseg{dir: ToClient, b: b} }

func splitSegs(dir Direction, b []byte, sizes ...int) []tseg {
	var out []tseg
	for _, n := range sizes {
		out = append(out, tseg{dir: dir, b: b[:n]})
		b = b[n:]
	}
	if len(b) > 0 {
		out = append(out, tseg{dir: dir, b: b})
	}
	return out
}

// runDetector feeds segments to d as the classifier would, stopping at
// Done, and returns the status of each segment fed.
func runDetector(d Detector, ctx *Context, f *Flow, segs []tseg) []Status {
	var idx [2]int
	var out []Status
	for _, s := range segs {
		seg := &Segment{Dir: s.dir, Payload: s.b, Index: idx[s.dir], Gap: s.gap}
		idx[s.dir]++
		st := d.Inspect(ctx, f, seg)
		out = append(out, st)
		if st == Done {
			ctx.SetState(f, nil)
			break
		}
	}
	return out
}

func newTestContext() *Context {
	return &Context{Counters: &Counters{}, Expect: NewExpectTable(0, nil), Names: NewNameCache(0, nil)}
}

func tcpFlow(serverPort uint16, serverVisible bool) *Flow {
	f := &Flow{
		Proto:  ProtoTCP,
		Client: netip.MustParseAddrPort("10.1.1.2:50123"),
		Server: netip.AddrPortFrom(netip.MustParseAddr("10.1.1.9"), serverPort),
	}
	f.TCPFlags[ToServer] = TCPSyn | TCPAck
	if serverVisible {
		f.TCPFlags[ToClient] = TCPSyn | TCPAck
		f.Pkts[ToClient] = 1
	}
	return f
}

func udpFlow(serverPort uint16) *Flow {
	return &Flow{
		Proto:  ProtoUDP,
		Client: netip.MustParseAddrPort("[2001:db8::2]:61291"),
		Server: netip.AddrPortFrom(netip.MustParseAddr("2001:db8::9"), serverPort),
	}
}

func u32p(v uint32) *uint32 { return &v }

func TestRDPDetectorTCP(t *testing.T) {
	socks5 := func(target []byte) []tseg {
		return []tseg{
			c2s(hx("05 02 00 02")), // greeting: no auth, user/pass
			s2c(hx("05 02")),       // user/pass chosen
			c2s(cat(hx("01 04"), []byte("user"), hx("04"), []byte("pass"))), // RFC 1929
			s2c(hx("01 00")),
			c2s(cat(hx("05 01 00"), target)),
			s2c(hx("05 00 00 01 0a 00 00 01 c2 55")),
		}
	}
	raCI := mcsConnectInitial("EXPERT-PC", 7601, 0x409, []string{"rdpdr", "encomsp", "remdesk", "rdpsnd"})
	plainCI := mcsConnectInitial("WS01", 2600, 0x407, []string{"rdpdr", "cliprdr", "rdpsnd"})
	routing := cat(hx("03 00 00 37 32 e0 00 00 00 00 00"), []byte("Cookie: msts=3640205228.15629.0000\r\n"), hx("01 00 08 00 03 00 00 00"))
	corr := cat(hx("03 00 00 37 32 e0 00 00 00 00 00 01 08 08 00 0b 00 00 00 06 00 24 00"), bytes.Repeat([]byte{0xab}, 16), make([]byte, 16))
	pcbV2 := cat(hx("20 00 00 00 00 00 00 00 02 00 00 00 07 00 00 00 07 00"), utf16le("TestVM"), hx("00 00"))

	tests := []struct {
		name       string
		port       uint16
		clientOnly bool
		segs       []tseg
		want       map[Label]Confidence
		ev         *RDPEvidence // nil: no evidence expected
		malformed  uint64
		last       Status // status of the last segment fed
	}{
		{
			name: "RA expert CR, RDP selected, dynamic port",
			port: 49749,
			segs: []tseg{c2s(vecCRRDPOnly), s2c(vecCCRDP)},
			want: map[Label]Confidence{LabelRDP: ConfidenceHigh, LabelRDPRACandidate: ConfidenceMedium},
			ev: &RDPEvidence{Transport: "tcp", RequestedProtocols: []string{"rdp"}, RequestedProtocolsRaw: u32p(0),
				SelectedProtocol: "rdp", ServerReply: "x224-cc", RAReason: "standard-security-nonstandard-port"},
			last: Continue, // waits for the cleartext Connect-Initial
		},
		{
			name: "RA expert CR, RDP selected, then Connect-Initial with RA channels",
			port: 49749,
			segs: []tseg{c2s(vecCRRDPOnly), s2c(vecCCRDP), c2s(raCI)},
			want: map[Label]Confidence{LabelRDP: ConfidenceHigh, LabelRDPRACandidate: ConfidenceHigh},
			ev: &RDPEvidence{Transport: "tcp", RequestedProtocols: []string{"rdp"}, RequestedProtocolsRaw: u32p(0),
				SelectedProtocol: "rdp", ServerReply: "x224-cc", ClientName: "EXPERT-PC", ClientBuild: 7601, KeyboardLayout: 0x409,
				Channels: []string{"rdpdr", "encomsp", "remdesk", "rdpsnd"}, RAReason: "ra-channels"},
			last: Done,
		},
		{
			name: "standard security on 3389 is not an RA candidate",
			port: 3389,
			segs: []tseg{c2s(vecCRRDPOnly), s2c(vecCCRDP), c2s(plainCI)},
			want: map[Label]Confidence{LabelRDP: ConfidenceHigh},
			ev: &RDPEvidence{Transport: "tcp", RequestedProtocols: []string{"rdp"}, RequestedProtocolsRaw: u32p(0),
				SelectedProtocol: "rdp", ServerReply: "x224-cc", ClientName: "WS01", ClientBuild: 2600, KeyboardLayout: 0x407,
				Channels: []string{"rdpdr", "cliprdr", "rdpsnd"}},
			last: Done,
		},
		{
			name: "cookie, SSL|HYBRID|HYBRID_EX, HYBRID selected",
			port: 3389,
			segs: []tseg{c2s(vecCRCookie), s2c(vecCCHybrid), c2s(tlsClientHello)},
			want: map[Label]Confidence{LabelRDP: ConfidenceHigh},
			ev: &RDPEvidence{Transport: "tcp", Cookie: "expert", RequestedProtocols: []string{"ssl", "hybrid", "hybrid_ex"},
				RequestedProtocolsRaw: u32p(0x0b), SelectedProtocol: "hybrid", ServerReply: "x224-cc"},
			last: Done, // after the CC: the rest is TLS
		},
		{
			name: "negotiation failure",
			port: 3389,
			segs: []tseg{c2s(vecCRCookie), s2c(vecCCFailure)},
			want: map[Label]Confidence{LabelRDP: ConfidenceHigh},
			ev: &RDPEvidence{Transport: "tcp", Cookie: "expert", RequestedProtocols: []string{"ssl", "hybrid", "hybrid_ex"},
				RequestedProtocolsRaw: u32p(0x0b), NegFailure: 1, NegFailureReason: "ssl_required_by_server", ServerReply: "x224-cc"},
			last: Done,
		},
		{
			name: "cookie, old server answers a bare CC",
			port: 3389,
			segs: []tseg{c2s(vecCRCookie), s2c(vecCCBare)},
			want: map[Label]Confidence{LabelRDP: ConfidenceHigh},
			ev: &RDPEvidence{Transport: "tcp", Cookie: "expert", RequestedProtocols: []string{"ssl", "hybrid", "hybrid_ex"},
				RequestedProtocolsRaw: u32p(0x0b), SelectedProtocol: "rdp", ServerReply: "x224-cc"},
			last: Continue,
		},
		{
			name: "legacy bare CR + bare CC is medium until the Connect-Initial",
			port: 3389,
			segs: []tseg{c2s(vecCRBare), s2c(vecCCBare)},
			want: map[Label]Confidence{LabelRDP: ConfidenceMedium},
			ev:   &RDPEvidence{Transport: "tcp", SelectedProtocol: "rdp", ServerReply: "x224-cc"},
			last: Continue,
		},
		{
			name: "legacy bare CR + bare CC + Connect-Initial",
			port: 3389,
			segs: []tseg{c2s(vecCRBare), s2c(vecCCBare), c2s(plainCI)},
			want: map[Label]Confidence{LabelRDP: ConfidenceHigh},
			ev: &RDPEvidence{Transport: "tcp", SelectedProtocol: "rdp", ServerReply: "x224-cc", ClientName: "WS01",
				ClientBuild: 2600, KeyboardLayout: 0x407, Channels: []string{"rdpdr", "cliprdr", "rdpsnd"}},
			last: Done,
		},
		{
			name:       "legacy bare CR alone, client side only: nothing",
			port:       3389,
			clientOnly: true,
			segs:       []tseg{c2s(vecCRBare)},
			last:       Continue,
		},
		{
			name:       "legacy bare CR then Connect-Initial, client side only",
			port:       3389,
			clientOnly: true,
			segs:       []tseg{c2s(vecCRBare), c2s(plainCI)},
			want:       map[Label]Confidence{LabelRDP: ConfidenceHigh},
			ev: &RDPEvidence{Transport: "tcp", ClientName: "WS01", ClientBuild: 2600, KeyboardLayout: 0x407,
				Channels: []string{"rdpdr", "cliprdr", "rdpsnd"}},
			last: Done,
		},
		{
			name:       "strong CR, client side only, dynamic port",
			port:       50000,
			clientOnly: true,
			segs:       []tseg{c2s(vecCRRDPOnly)},
			want:       map[Label]Confidence{LabelRDP: ConfidenceHigh, LabelRDPRACandidate: ConfidenceMedium},
			ev: &RDPEvidence{Transport: "tcp", RequestedProtocols: []string{"rdp"}, RequestedProtocolsRaw: u32p(0),
				RAReason: "standard-security-nonstandard-port"},
			last: Continue,
		},
		{
			name: "strong CR, server visible but not answered yet: no label",
			port: 3389,
			segs: []tseg{c2s(vecCRCookie)},
			last: Continue,
		},
		{
			name: "strong CR, CC lost, client goes on with TLS",
			port: 3389,
			segs: []tseg{c2s(vecCRCookie), c2s(tlsClientHello)},
			want: map[Label]Confidence{LabelRDP: ConfidenceHigh},
			ev: &RDPEvidence{Transport: "tcp", Cookie: "expert", RequestedProtocols: []string{"ssl", "hybrid", "hybrid_ex"},
				RequestedProtocolsRaw: u32p(0x0b)},
			last: Continue,
		},
		{
			name: "RDP probe answered by an HTTP server: low",
			port: 80,
			segs: []tseg{c2s(vecCRCookie), s2c([]byte(httpBadRequest))},
			want: map[Label]Confidence{LabelRDP: ConfidenceLow},
			ev: &RDPEvidence{Transport: "tcp", Cookie: "expert", RequestedProtocols: []string{"ssl", "hybrid", "hybrid_ex"},
				RequestedProtocolsRaw: u32p(0x0b), ServerReply: "other"},
			last: Done,
		},
		{
			name: "RDP probe answered by a Modbus exception (TPKT-shaped)",
			port: 502,
			segs: []tseg{c2s(vecCRRDPOnly), s2c(hx("03 00 00 2b 00 03 00 80 01"))},
			want: map[Label]Confidence{LabelRDP: ConfidenceLow},
			ev: &RDPEvidence{Transport: "tcp", RequestedProtocols: []string{"rdp"}, RequestedProtocolsRaw: u32p(0),
				ServerReply: "other"},
			last: Done,
		},
		{
			name: "bare CR answered by HTTP: nothing",
			port: 80,
			segs: []tseg{c2s(vecCRBare), s2c([]byte(httpBadRequest))},
			last: Done,
		},
		{
			name: "pre-connection PDU V1 then CR and CC",
			port: 2179,
			segs: []tseg{c2s(vecPCBv1), c2s(vecCRCookie), s2c(vecCCHybrid)},
			want: map[Label]Confidence{LabelRDP: ConfidenceHigh},
			ev: &RDPEvidence{Transport: "tcp", Preconnection: &RDPPreconnection{Version: 1, ID: 0xeec699eb}, Cookie: "expert",
				RequestedProtocols: []string{"ssl", "hybrid", "hybrid_ex"}, RequestedProtocolsRaw: u32p(0x0b),
				SelectedProtocol: "hybrid", ServerReply: "x224-cc"},
			last: Done,
		},
		{
			name: "pre-connection PDU V2 and CR in one segment",
			port: 2179,
			segs: []tseg{c2s(cat(pcbV2, vecCRRDPOnly)), s2c(vecCCRDP)},
			want: map[Label]Confidence{LabelRDP: ConfidenceHigh, LabelRDPRACandidate: ConfidenceMedium},
			ev: &RDPEvidence{Transport: "tcp", Preconnection: &RDPPreconnection{Version: 2, ID: 7, PCB: "TestVM"},
				RequestedProtocols: []string{"rdp"}, RequestedProtocolsRaw: u32p(0), SelectedProtocol: "rdp",
				ServerReply: "x224-cc", RAReason: "standard-security-nonstandard-port"},
			last: Continue,
		},
		{
			name: "SOCKS5 with user/pass to a dynamic port",
			port: 1080,
			segs: append(socks5(cat(hx("03 0a"), []byte("ra.example"), hx("c2 55"))), c2s(vecCRRDPOnly), s2c(vecCCRDP)),
			want: map[Label]Confidence{LabelRDP: ConfidenceHigh, LabelRDPRACandidate: ConfidenceMedium},
			ev: &RDPEvidence{Transport: "tcp", Proxy: "socks5", ProxyTarget: "ra.example:49749",
				RequestedProtocols: []string{"rdp"}, RequestedProtocolsRaw: u32p(0), SelectedProtocol: "rdp",
				ServerReply: "x224-cc", RAReason: "standard-security-nonstandard-port"},
			last: Continue,
		},
		{
			name: "SOCKS5 to 3389 through a proxy on a high port: no RA candidate",
			port: 42356,
			segs: []tseg{c2s(hx("05 01 00")), s2c(hx("05 00")), c2s(hx("05 01 00 01 0a 00 00 01 0d 3d")),
				s2c(hx("05 00 00 01 00 00 00 00 00 00")), c2s(vecCRRDPOnly), s2c(vecCCRDP)},
			want: map[Label]Confidence{LabelRDP: ConfidenceHigh},
			ev: &RDPEvidence{Transport: "tcp", Proxy: "socks5", ProxyTarget: "10.0.0.1:3389",
				RequestedProtocols: []string{"rdp"}, RequestedProtocolsRaw: u32p(0), SelectedProtocol: "rdp",
				ServerReply: "x224-cc"},
			last: Continue,
		},
		{
			name: "SOCKS5 greeting and request pipelined with the CR",
			port: 1080,
			segs: []tseg{c2s(cat(hx("05 01 00 05 01 00 04"), make([]byte, 15), hx("01"), hx("0d 3d"), vecCRCookie)),
				s2c(cat(hx("05 00 05 00 00 01 00 00 00 00 00 00"), vecCCHybrid))},
			want: map[Label]Confidence{LabelRDP: ConfidenceHigh},
			ev: &RDPEvidence{Transport: "tcp", Proxy: "socks5", ProxyTarget: "[::1]:3389", Cookie: "expert",
				RequestedProtocols: []string{"ssl", "hybrid", "hybrid_ex"}, RequestedProtocolsRaw: u32p(0x0b),
				SelectedProtocol: "hybrid", ServerReply: "x224-cc"},
			last: Done,
		},
		{
			name: "SOCKS5 refused: nothing",
			port: 1080,
			segs: []tseg{c2s(hx("05 01 00")), s2c(hx("05 00")), c2s(hx("05 01 00 01 0a 00 00 01 0d 3d")),
				s2c(hx("05 05 00 01 00 00 00 00 00 00"))},
			last: Done,
		},
		{
			name: "SOCKS4a",
			port: 1080,
			segs: []tseg{c2s(cat(hx("04 01 0d 3d 00 00 00 01"), []byte("bob\x00rdp.example\x00"))), s2c(hx("00 5a 00 00 00 00 00 00")),
				c2s(vecCRCookie), s2c(vecCCHybrid)},
			want: map[Label]Confidence{LabelRDP: ConfidenceHigh},
			ev: &RDPEvidence{Transport: "tcp", Proxy: "socks4", ProxyTarget: "rdp.example:3389", Cookie: "expert",
				RequestedProtocols: []string{"ssl", "hybrid", "hybrid_ex"}, RequestedProtocolsRaw: u32p(0x0b),
				SelectedProtocol: "hybrid", ServerReply: "x224-cc"},
			last: Done,
		},
		{
			name: "HTTP CONNECT",
			port: 8080,
			segs: []tseg{c2s([]byte("CONNECT 10.0.0.5:3389 HTTP/1.1\r\nHost: 10.0.0.5:3389\r\n\r\n")),
				s2c([]byte("HTTP/1.1 200 Connection established\r\n\r\n")), c2s(vecCRRDPOnly), s2c(vecCCRDP)},
			want: map[Label]Confidence{LabelRDP: ConfidenceHigh},
			ev: &RDPEvidence{Transport: "tcp", Proxy: "http-connect", ProxyTarget: "10.0.0.5:3389",
				RequestedProtocols: []string{"rdp"}, RequestedProtocolsRaw: u32p(0), SelectedProtocol: "rdp", ServerReply: "x224-cc"},
			last: Continue,
		},
		{
			name: "HTTP CONNECT refused: nothing",
			port: 8080,
			segs: []tseg{c2s([]byte("CONNECT 10.0.0.5:3389 HTTP/1.1\r\n\r\n")), s2c([]byte("HTTP/1.1 403 Forbidden\r\n\r\n"))},
			last: Done,
		},
		{
			name: "HTTP CONNECT to a TLS site: nothing",
			port: 8080,
			segs: []tseg{c2s([]byte("CONNECT example.com:443 HTTP/1.1\r\n\r\n")), s2c([]byte("HTTP/1.1 200 OK\r\n\r\n")), c2s(tlsClientHello)},
			last: Done,
		},
		{
			name: "CR and CC split across segments",
			port: 3389,
			segs: append(append(splitSegs(ToServer, vecCRCookie, 2, 3, 10), splitSegs(ToClient, vecCCRDP, 1, 5)...),
				splitSegs(ToServer, plainCI, 40, 100)...),
			want: map[Label]Confidence{LabelRDP: ConfidenceHigh},
			ev: &RDPEvidence{Transport: "tcp", Cookie: "expert", RequestedProtocols: []string{"ssl", "hybrid", "hybrid_ex"},
				RequestedProtocolsRaw: u32p(0x0b), SelectedProtocol: "rdp", ServerReply: "x224-cc", ClientName: "WS01",
				ClientBuild: 2600, KeyboardLayout: 0x407, Channels: []string{"rdpdr", "cliprdr", "rdpsnd"}},
			last: Done,
		},
		{
			name: "routing token",
			port: 3389,
			segs: []tseg{c2s(routing), s2c(vecCCHybrid)},
			want: map[Label]Confidence{LabelRDP: ConfidenceHigh},
			ev: &RDPEvidence{Transport: "tcp", RoutingToken: "msts=3640205228.15629.0000", RequestedProtocols: []string{"ssl", "hybrid"},
				RequestedProtocolsRaw: u32p(3), SelectedProtocol: "hybrid", ServerReply: "x224-cc"},
			last: Done,
		},
		{
			name: "negotiation request with correlation info",
			port: 3389,
			segs: []tseg{c2s(corr), s2c(vecCCHybrid)},
			want: map[Label]Confidence{LabelRDP: ConfidenceHigh},
			ev: &RDPEvidence{Transport: "tcp", RequestedProtocols: []string{"ssl", "hybrid", "hybrid_ex"},
				RequestedProtocolsRaw: u32p(0x0b), SelectedProtocol: "hybrid", ServerReply: "x224-cc"},
			last: Done,
		},
		{
			name: "server side only: CC with negotiation response",
			port: 3389,
			segs: []tseg{s2c(vecCCHybrid)},
			want: map[Label]Confidence{LabelRDP: ConfidenceMedium},
			ev:   &RDPEvidence{Transport: "tcp", SelectedProtocol: "hybrid", ServerReply: "x224-cc"},
			last: Done,
		},
		{
			name:      "garbled client start on 3389, CC with a bad length field",
			port:      3389,
			segs:      []tseg{c2s([]byte("ECODH\r\n\x01\x00\x08\x00")), s2c(hx("030000130ed000001234000203000001000002"))},
			want:      map[Label]Confidence{LabelRDP: ConfidenceMedium},
			ev:        &RDPEvidence{Transport: "tcp", SelectedProtocol: "0x2000001", ServerReply: "x224-cc"},
			malformed: 1,
			last:      Done,
		},
		{
			name: "S7comm COTP CR/CC on 102: nothing",
			port: 102,
			segs: []tseg{c2s(s7CR), s2c(s7CC)},
			last: Done,
		},
		{
			name: "S7comm COTP CR on 3389: nothing",
			port: 3389,
			segs: []tseg{c2s(s7CR), s2c(s7CC)},
			last: Done,
		},
		{
			name: "S7comm CR split across segments: nothing",
			port: 102,
			segs: splitSegs(ToServer, s7CR, 8),
			last: Done,
		},
		{
			name: "19-byte TPKT probe with TSAP parameters on an HTTP port: nothing",
			port: 80,
			segs: []tseg{c2s(hx("03 00 00 13 0e e0 00 00 00 01 00 c1 02 01 00 c2 02 01 02")), s2c([]byte(httpBadRequest))},
			last: Done,
		},
		{
			name: "X.224 data TPDU first: nothing",
			port: 102,
			segs: []tseg{c2s(hx("0300000702f000"))},
			last: Done,
		},
		{
			name: "CR with class 4: nothing",
			port: 50000,
			segs: []tseg{c2s(hx("03 00 00 13 0e e0 00 00 00 00 40 01 00 08 00 00 00 00 00")), s2c(vecCCRDP)},
			last: Done,
		},
		{
			name:      "cookie without CRLF: malformed, nothing",
			port:      50000,
			segs:      []tseg{c2s(cat(hx("03 00 00 1d 18 e0 00 00 00 00 00"), []byte("Cookie: mstshash=ab")))},
			malformed: 1,
			last:      Done,
		},
		{
			name:      "negotiation request with length 9: malformed, nothing",
			port:      50000,
			segs:      []tseg{c2s(hx("03 00 00 14 0f e0 00 00 00 00 00 01 00 09 00 00 00 00 00 00"))},
			malformed: 1,
			last:      Done,
		},
		{
			name: "HTTP request: nothing",
			port: 80,
			segs: []tseg{c2s([]byte(httpGET))},
			last: Done,
		},
		{
			name: "TLS ClientHello: nothing",
			port: 443,
			segs: []tseg{c2s(tlsClientHello)},
			last: Done,
		},
		{
			name: "TLS ClientHello on 3389 waits for the server, then nothing",
			port: 3389,
			segs: []tseg{c2s(tlsClientHello), s2c(hx("16 03 03 00 04 02 00 00 00"))},
			last: Done,
		},
		{
			name: "SSH banner from the server: nothing",
			port: 22,
			segs: []tseg{s2c([]byte("SSH-2.0-OpenSSH_9.2\r\n"))},
			last: Done,
		},
		{
			name: "random bytes: nothing",
			port: 40000,
			segs: []tseg{c2s(hx("8f 3a 11 00 de ad be ef 00 01 02 03 04 05 06 07 08 09"))},
			last: Done,
		},
		{
			name: "gap before the CC: give up",
			port: 3389,
			segs: []tseg{c2s(vecCRCookie), {dir: ToClient, b: vecCCRDP, gap: true}},
			last: Done,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewRDPDetector(RDPOptions{})
			ctx := newTestContext()
			f := tcpFlow(tc.port, !tc.clientOnly)
			sts := runDetector(d, ctx, f, tc.segs)
			checkRDPResult(t, f, tc.want, tc.ev, "rdp")
			if got := ctx.Counters.Malformed()[rdpEvidenceName]; got != tc.malformed {
				t.Errorf("malformed count = %d, want %d", got, tc.malformed)
			}
			if last := sts[len(sts)-1]; last != tc.last {
				t.Errorf("last status = %v (after %d of %d segments), want %v", last, len(sts), len(tc.segs), tc.last)
			}
		})
	}
}

func checkRDPResult(t *testing.T, f *Flow, want map[Label]Confidence, ev *RDPEvidence, app string) {
	t.Helper()
	got := map[Label]Confidence{}
	for _, l := range f.Labels.Labels() {
		got[l] = f.LabelConfidence(l)
	}
	if len(want) == 0 {
		want = map[Label]Confidence{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("labels = %v, want %v", got, want)
	}
	gotEv, _ := f.GetEvidence(rdpEvidenceName).(*RDPEvidence)
	switch {
	case ev == nil && gotEv != nil:
		t.Errorf("unexpected evidence %s", jsonString(gotEv))
	case ev != nil && gotEv == nil:
		t.Errorf("no evidence, want %s", jsonString(ev))
	case ev != nil && !reflect.DeepEqual(gotEv, ev):
		t.Errorf("evidence\n got %s\nwant %s", jsonString(gotEv), jsonString(ev))
	}
	wantApp := ""
	if len(want) > 0 {
		wantApp = app
	}
	if f.AppProto.String() != wantApp {
		t.Errorf("app_proto = %q, want %q", f.AppProto, wantApp)
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestRDPDetectorUDP(t *testing.T) {
	synv3 := padTo(cat(hx("ff ff ff ff 00 40 1a 01 9f d6 75 2b 04 d0 04 d0"), make([]byte, 32), hx("00 01 01 01")), 1232)
	tests := []struct {
		name string
		port uint16
		segs []tseg
		want map[Label]Confidence
		ev   *RDPEvidence
		last Status
	}{
		{
			name: "SYN (v1) alone",
			port: 3389,
			segs: []tseg{c2s(vecEUDPSYN)},
			want: map[Label]Confidence{LabelRDPUDP: ConfidenceHigh},
			ev:   &RDPEvidence{Transport: "udp", UDPVersion: 1, UDPState: "syn"},
			last: Continue,
		},
		{
			// The SYN+ACK carries no SYNEX payload, so version 1 is what is
			// used (MS-RDPEUDP 3.1.5.1.3).
			name: "SYN with SYNEX v2 and SYN+ACK without SYNEX",
			port: 3389,
			segs: []tseg{c2s(vecEUDPSYNv2), s2c(vecEUDPSYNACK)},
			want: map[Label]Confidence{LabelRDPUDP: ConfidenceHigh},
			ev:   &RDPEvidence{Transport: "udp", UDPVersion: 1, UDPState: "syn-ack"},
			last: Done,
		},
		{
			name: "lossy SYN with correlation id, RDP-UDP2 version, on any port",
			port: 60000,
			segs: []tseg{c2s(synv3), c2s(synv3)},
			want: map[Label]Confidence{LabelRDPUDP: ConfidenceHigh},
			ev:   &RDPEvidence{Transport: "udp", UDPVersion: 3, UDPLossy: true, UDPState: "syn"},
			last: Continue,
		},
		{
			name: "SYN with SYNEX v2 alone",
			port: 3389,
			segs: []tseg{c2s(vecEUDPSYNv2)},
			want: map[Label]Confidence{LabelRDPUDP: ConfidenceHigh},
			ev:   &RDPEvidence{Transport: "udp", UDPVersion: 2, UDPState: "syn"},
			last: Continue,
		},
		{
			name: "unpadded SYN needs the SYN+ACK",
			port: 3389,
			segs: []tseg{c2s(vecEUDPSYNShrt)},
			last: Continue,
		},
		{
			name: "unpadded SYN and its SYN+ACK",
			port: 3389,
			segs: []tseg{c2s(vecEUDPSYNShrt), s2c(vecEUDPSYNACK)},
			want: map[Label]Confidence{LabelRDPUDP: ConfidenceHigh},
			ev:   &RDPEvidence{Transport: "udp", UDPVersion: 1, UDPState: "syn-ack"},
			last: Done,
		},
		{
			name: "unpadded SYN, answer acknowledges another ISN: nothing",
			port: 3389,
			segs: []tseg{c2s(vecEUDPSYNShrt), s2c(padTo(hx("11 22 33 45 00 40 00 05 55 66 77 88 04 d0 04 d0"), 1232))},
			last: Done,
		},
		{
			name: "mid-stream data acknowledged by the other side",
			port: 3389,
			segs: []tseg{c2s(eudpMidC), s2c(eudpMidS)},
			want: map[Label]Confidence{LabelRDPUDP: ConfidenceHigh},
			ev:   &RDPEvidence{Transport: "udp", UDPState: "mid-stream"},
			last: Done,
		},
		{
			name: "mid-stream data not acknowledged: nothing",
			port: 3389,
			segs: []tseg{c2s(eudpMidC), s2c(cat(hx("00 00 00 01"), eudpMidS[4:]))},
			last: Continue,
		},
		{
			name: "SYN with MTU 1500: nothing",
			port: 3389,
			segs: []tseg{c2s(padTo(hx("ff ff ff ff 00 40 00 01 11 22 33 44 05 dc 05 dc"), 1500))},
			last: Done,
		},
		{
			name: "Source engine query (ff ff ff ff 'TSource'): nothing",
			port: 27015,
			segs: []tseg{c2s([]byte("\xff\xff\xff\xffTSource Engine Query\x00"))},
			last: Done,
		},
		{
			name: "DNS query: nothing",
			port: 53,
			segs: []tseg{c2s(hx("12 34 01 00 00 01 00 00 00 00 00 00 07 65 78 61 6d 70 6c 65 03 63 6f 6d 00 00 01 00 01"))},
			last: Done,
		},
		{
			name: "QUIC initial: nothing",
			port: 443,
			segs: []tseg{c2s(padTo(hx("c3 00 00 00 01 08 01 02 03 04 05 06 07 08 00 00 44 d0"), 1200))},
			last: Done,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := NewRDPDetector(RDPOptions{})
			ctx := newTestContext()
			f := udpFlow(tc.port)
			sts := runDetector(d, ctx, f, tc.segs)
			checkRDPResult(t, f, tc.want, tc.ev, "rdp")
			if last := sts[len(sts)-1]; last != tc.last {
				t.Errorf("last status = %v, want %v", last, tc.last)
			}
		})
	}
}

// TestRDPStandardPortsOption: with 3390 declared a Remote Desktop port, RDP
// with standard security there is not a Remote Assistance candidate.
func TestRDPStandardPortsOption(t *testing.T) {
	d := NewRDPDetector(RDPOptions{StandardPorts: []uint16{3389, 3390}})
	ctx := newTestContext()
	f := tcpFlow(3390, true)
	runDetector(d, ctx, f, []tseg{c2s(vecCRRDPOnly), s2c(vecCCRDP)})
	if !f.Labels.Has(LabelRDP) || f.Labels.Has(LabelRDPRACandidate) {
		t.Fatalf("labels = %v", f.Labels.Strings())
	}
}

func TestRDPEvidenceJSON(t *testing.T) {
	d := NewRDPDetector(RDPOptions{})
	ctx := newTestContext()
	f := tcpFlow(49749, true)
	runDetector(d, ctx, f, []tseg{c2s(vecCRRDPOnly), s2c(vecCCRDP)})
	got := jsonString(f.GetEvidence("rdp"))
	want := `{"transport":"tcp","requested_protocols":["rdp"],"requested_protocols_raw":0,"selected_protocol":"rdp","server_reply":"x224-cc","ra_reason":"standard-security-nonstandard-port"}`
	if got != want {
		t.Errorf("evidence JSON\n got %s\nwant %s", got, want)
	}
}

func TestRDPParsers(t *testing.T) {
	t.Run("scanCR vectors", func(t *testing.T) {
		for _, b := range [][]byte{vecCRRDPOnly, vecCRCookie, vecCRBare} {
			if _, ok := scanCR(b); !ok {
				t.Errorf("scanCR(% x) failed", b)
			}
		}
		for _, b := range [][]byte{s7CR, vecCCRDP, vecCRRDPOnly[:18], cat(vecCRBare, []byte{0})} {
			if _, ok := scanCR(b); ok {
				t.Errorf("scanCR(% x) accepted", b)
			}
		}
	})
	t.Run("scanCC vectors", func(t *testing.T) {
		for _, b := range [][]byte{vecCCRDP, vecCCHybrid, vecCCFailure, vecCCBare} {
			if _, ok := scanCC(b); !ok {
				t.Errorf("scanCC(% x) failed", b)
			}
		}
		for _, b := range [][]byte{s7CC, vecCRRDPOnly} {
			if _, ok := scanCC(b); ok {
				t.Errorf("scanCC(% x) accepted", b)
			}
		}
	})
	t.Run("requested names", func(t *testing.T) {
		if got := rdpRequestedNames(0x2b); !reflect.DeepEqual(got, []string{"ssl", "hybrid", "hybrid_ex", "0x20"}) {
			t.Errorf("rdpRequestedNames(0x2b) = %v", got)
		}
		if got := rdpSelectedName(rdpProtocolRDSTLS); got != "rdstls" {
			t.Errorf("rdpSelectedName(4) = %q", got)
		}
		if got := rdpFailureName(6); got != "ssl_with_user_auth_required_by_server" {
			t.Errorf("rdpFailureName(6) = %q", got)
		}
	})
	t.Run("Connect-Initial from a real capture", func(t *testing.T) {
		// rdp/zeek-rdp-x509.pcap frame 11 (cut after CS_NET).
		ci := hx("030001be02f0807f658201b20401010401010101ff30190201220201020201000201010201000201010202ffff020102301902010102010102010102010102010002010102020420020102301c0202ffff0202fc170202ffff0201010201000201010202ffff02010204820151000500147c00018148000800100001c00044756361813a01c0ea00040008008007380401ca03aa09040000802500004a004f0048004e002d00500043002d004c004100500054004f0050000000000004000000000000000c0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001ca01000000000010000f00ad07330063003500370031006500640030002d0033003400310035002d0034003700340062002d0061006500390034002d003700340065003100350031006200000007000000000000000000000000000000000000000000000004c00c00150000000000000002c00c001b0000000000000003c0380004000000726470647200000000008080726470736e640000000000c0636c6970726472000000a0c0647264796e766300000080c0")
		got, ok := parseConnectInitial(ci)
		want := connectInitial{haveCore: true, clientName: "JOHN-PC-LAPTOP", clientBuild: 9600, keyboardLayout: 0x409,
			haveNet: true, channels: []string{"rdpdr", "rdpsnd", "cliprdr", "drdynvc"}}
		if !ok || !reflect.DeepEqual(got, want) {
			t.Errorf("parseConnectInitial = %+v, %v; want %+v", got, ok, want)
		}
	})
}

// TestRDPNoMatchAllocs: the paths that reject a flow allocate nothing.
func TestRDPNoMatchAllocs(t *testing.T) {
	d := NewRDPDetector(RDPOptions{})
	ctx := newTestContext()
	cases := []struct {
		name  string
		proto uint8
		port  uint16
		seg   Segment
	}{
		{"http", ProtoTCP, 80, Segment{Dir: ToServer, Payload: []byte(httpGET)}},
		{"tls", ProtoTCP, 443, Segment{Dir: ToServer, Payload: tlsClientHello}},
		{"s7comm CR", ProtoTCP, 102, Segment{Dir: ToServer, Payload: s7CR}},
		{"tpkt probe with tsaps", ProtoTCP, 80, Segment{Dir: ToServer, Payload: hx("03 00 00 13 0e e0 00 00 00 01 00 c1 02 01 00 c2 02 01 02")}},
		{"non-RDP on 3389 (wait)", ProtoTCP, 3389, Segment{Dir: ToServer, Payload: tlsClientHello}},
		{"non-RDP on 3389, later client segment", ProtoTCP, 3389, Segment{Dir: ToServer, Payload: tlsClientHello, Index: 2}},
		{"server banner", ProtoTCP, 22, Segment{Dir: ToClient, Payload: []byte("SSH-2.0-OpenSSH_9.2\r\n")}},
		{"server S7 CC", ProtoTCP, 102, Segment{Dir: ToClient, Payload: s7CC}},
		{"udp dns", ProtoUDP, 53, Segment{Dir: ToServer, Payload: hx("12 34 01 00 00 01 00 00 00 00 00 00 00 00 01 00 01")}},
		{"udp source query", ProtoUDP, 27015, Segment{Dir: ToServer, Payload: []byte("\xff\xff\xff\xffTSource Engine Query\x00")}},
		{"udp random", ProtoUDP, 40000, Segment{Dir: ToServer, Payload: hx("8f 3a 11 00 de ad be ef 00 01 02 03 04 05 06 07 08 09")}},
		{"udp bare ack shape", ProtoUDP, 3389, Segment{Dir: ToServer, Payload: hx("10 97 60 37 03 ff 04 04 00 01 04 00")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := &Flow{Proto: tc.proto, Client: netip.MustParseAddrPort("10.0.0.1:40000"),
				Server: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.2"), tc.port)}
			seg := tc.seg
			allocs := testing.AllocsPerRun(200, func() { d.Inspect(ctx, f, &seg) })
			if allocs != 0 {
				t.Errorf("%v allocations per run", allocs)
			}
			if f.Labels != 0 || f.Extension() != nil {
				t.Errorf("flow touched: labels %v", f.Labels.Strings())
			}
		})
	}
}

func BenchmarkRDPDetector(b *testing.B) {
	d := NewRDPDetector(RDPOptions{})
	ctx := newTestContext()
	ci := mcsConnectInitial("EXPERT-PC", 7601, 0x409, []string{"rdpdr", "encomsp", "remdesk", "rdpsnd"})
	b.Run("match-cr-cc-mcs", func(b *testing.B) {
		b.ReportAllocs()
		segs := []Segment{
			{Dir: ToServer, Payload: vecCRRDPOnly},
			{Dir: ToClient, Payload: vecCCRDP},
			{Dir: ToServer, Payload: ci, Index: 1},
		}
		for b.Loop() {
			f := tcpFlow(49749, true)
			for i := range segs {
				if d.Inspect(ctx, f, &segs[i]) == Done {
					break
				}
			}
		}
	})
	b.Run("match-cr-cc-tls", func(b *testing.B) {
		b.ReportAllocs()
		segs := []Segment{{Dir: ToServer, Payload: vecCRCookie}, {Dir: ToClient, Payload: vecCCHybrid}}
		for b.Loop() {
			f := tcpFlow(3389, true)
			for i := range segs {
				if d.Inspect(ctx, f, &segs[i]) == Done {
					break
				}
			}
		}
	})
	b.Run("match-udp-syn", func(b *testing.B) {
		b.ReportAllocs()
		segs := []Segment{{Dir: ToServer, Payload: vecEUDPSYNv2}, {Dir: ToClient, Payload: vecEUDPSYNACK}}
		for b.Loop() {
			f := udpFlow(3389)
			for i := range segs {
				if d.Inspect(ctx, f, &segs[i]) == Done {
					break
				}
			}
		}
	})
	noMatch := func(name string, proto uint8, port uint16, p []byte) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			f := &Flow{Proto: proto, Client: netip.MustParseAddrPort("10.0.0.1:40000"),
				Server: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.2"), port)}
			seg := Segment{Dir: ToServer, Payload: p}
			for b.Loop() {
				d.Inspect(ctx, f, &seg)
			}
		})
	}
	noMatch("no-match-http", ProtoTCP, 80, []byte(httpGET))
	noMatch("no-match-tls", ProtoTCP, 443, tlsClientHello)
	noMatch("no-match-s7comm", ProtoTCP, 102, s7CR)
	noMatch("no-match-udp-dns", ProtoUDP, 53, hx("12 34 01 00 00 01 00 00 00 00 00 00 00 00 01 00 01"))
}

// fuzzSegments decodes a fuzz input into a flow and its segments: byte 0
// bit 0 says whether the server side is visible, bytes 1-2 are the server
// port, then records of a header byte (bit 0: to client, bit 1: gap), a
// 16-bit length and the payload.
func fuzzSegments(data []byte) (visible bool, port uint16, segs []tseg) {
	if len(data) < 3 {
		return false, 0, nil
	}
	visible, port = data[0]&1 != 0, binary.BigEndian.Uint16(data[1:3])
	data = data[3:]
	for len(data) >= 3 {
		h, n := data[0], int(binary.BigEndian.Uint16(data[1:3]))
		data = data[3:]
		n = min(n, len(data))
		segs = append(segs, tseg{dir: Direction(h & 1), gap: h&2 != 0, b: data[:n]})
		data = data[n:]
	}
	return visible, port, segs
}

func checkRDPInvariants(t *testing.T, f *Flow, allowed LabelSet) {
	t.Helper()
	if f.Labels&^allowed != 0 {
		t.Fatalf("labels %v outside %v", f.Labels.Strings(), allowed.Strings())
	}
	if f.Labels.Has(LabelRDPRACandidate) && !f.Labels.Has(LabelRDP) {
		t.Fatalf("rdp-ra-candidate without rdp")
	}
	labelled := f.Labels != 0
	if ev := f.GetEvidence(rdpEvidenceName); (ev != nil) != labelled || (f.AppProto == AppRDP) != labelled {
		t.Fatalf("labels %v, evidence %v, app_proto %q", f.Labels.Strings(), ev, f.AppProto)
	}
	if labelled {
		if _, err := json.Marshal(f.GetEvidence(rdpEvidenceName)); err != nil {
			t.Fatalf("evidence does not marshal: %v", err)
		}
	}
}

func FuzzRDP(f *testing.F) {
	f.Add(cat(hx("01 c2 55 00 00 13"), vecCRRDPOnly, hx("01 00 13"), vecCCRDP))
	d := NewRDPDetector(RDPOptions{})
	f.Fuzz(func(t *testing.T, data []byte) {
		// The parsers alone, on the raw bytes.
		scanCR(data)
		scanCC(data)
		parseConnectInitial(data)
		parsePCB(data, &RDPEvidence{})
		rdpPlausibleStart(data)
		st := &rdpTCPState{ev: &RDPEvidence{}}
		socks4Request(data, st)
		socks5Request(data, st)
		socks5Reply(data)
		httpConnectRequest(data, st)
		httpConnectReply(data)

		visible, port, segs := fuzzSegments(data)
		fl := tcpFlow(port, visible)
		runDetector(d, newTestContext(), fl, segs)
		checkRDPInvariants(t, fl, LabelSet(0).With(LabelRDP).With(LabelRDPRACandidate))
	})
}

func FuzzRDPEUDP(f *testing.F) {
	f.Add(cat(hx("01 0d 3d 00 04 d0"), vecEUDPSYN, hx("01 04 d0"), vecEUDPSYNACK))
	d := NewRDPDetector(RDPOptions{})
	f.Fuzz(func(t *testing.T, data []byte) {
		parseEUDPSYN(data)
		parseEUDPData(data)
		_, port, segs := fuzzSegments(data)
		fl := udpFlow(port)
		runDetector(d, newTestContext(), fl, segs)
		checkRDPInvariants(t, fl, LabelSet(0).With(LabelRDPUDP))
	})
}
