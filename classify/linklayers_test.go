package classify

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// ipv4TCP is a 40-byte IPv4/TCP SYN (10.0.2.15:49762 -> 93.184.216.34:80).
var ipv4TCP = []byte{
	0x45, 0x00, 0x00, 0x28, 0xe8, 0xef, 0x40, 0x00, 0x40, 0x06, 0x0f, 0xf7, 0x0a, 0x00, 0x02, 0x0f,
	0x5d, 0xb8, 0xd8, 0x22, 0xc2, 0x62, 0x00, 0x50, 0x3f, 0x32, 0xba, 0xd1, 0x00, 0x00, 0x00, 0x00,
	0x50, 0x02, 0x72, 0x10, 0x42, 0x18, 0x00, 0x00,
}

// ipv6UDP is a 48-byte IPv6/UDP datagram (2001:db8::1:5353 -> 2001:db8::2:53).
var ipv6UDP = func() []byte {
	b := make([]byte, 48)
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], 8)
	b[6], b[7] = 17, 64
	copy(b[8:], []byte{0x20, 0x01, 0x0d, 0xb8, 15: 1})
	copy(b[24:], []byte{0x20, 0x01, 0x0d, 0xb8, 15: 2})
	binary.BigEndian.PutUint16(b[40:], 5353)
	binary.BigEndian.PutUint16(b[42:], 53)
	binary.BigEndian.PutUint16(b[44:], 8)
	return b
}()

// sll2Header builds a LINKTYPE_LINUX_SLL2 header.
func sll2Header(proto uint16, ifindex int32, arphrd uint16, pktType, addrLen uint8, addr []byte) []byte {
	h := make([]byte, sll2HeaderLen)
	binary.BigEndian.PutUint16(h[0:], proto)
	binary.BigEndian.PutUint32(h[4:], uint32(ifindex))
	binary.BigEndian.PutUint16(h[8:], arphrd)
	h[10], h[11] = pktType, addrLen
	copy(h[12:20], addr)
	return h
}

// nflogTLV is one NFLOG TLV in the given byte order, padded to 4 bytes.
func nflogTLV(order binary.ByteOrder, typ uint16, value []byte) []byte {
	t := make([]byte, 4, 4+len(value)+3)
	order.PutUint16(t[0:], uint16(4+len(value)))
	order.PutUint16(t[2:], typ)
	t = append(t, value...)
	for len(t)%4 != 0 {
		t = append(t, 0)
	}
	return t
}

// nflogMessage builds an NFLOG message: header, packet header TLV, prefix,
// then the payload TLV.
func nflogMessage(order binary.ByteOrder, family uint8, payload []byte) []byte {
	m := []byte{family, 0, 0x00, 0x2a}
	m = append(m, nflogTLV(order, nfulaPacketHdr, []byte{0x08, 0x00, 3, 0})...)
	m = append(m, nflogTLV(order, nfulaPrefix, []byte("ra-drop\x00"))...)
	m = append(m, nflogTLV(order, 11, []byte{0, 0, 0x03, 0xe8})...) // NFULA_UID
	return append(m, nflogTLV(order, nfulaPayload, payload)...)
}

// newLinkParser is the DecodingLayerParser shape the classifier uses.
func newLinkParser(first gopacket.LayerType) (*gopacket.DecodingLayerParser, *[]gopacket.LayerType) {
	var (
		sll2 SLL2
		nfl  NFLOG
		ip4  layers.IPv4
		ip6  layers.IPv6
		tcp  layers.TCP
		udp  layers.UDP
		pay  gopacket.Payload
	)
	p := gopacket.NewDecodingLayerParser(first, &sll2, &nfl, &ip4, &ip6, &tcp, &udp, &pay)
	p.IgnoreUnsupported = true
	decoded := make([]gopacket.LayerType, 0, 8)
	return p, &decoded
}

func TestSLL2(t *testing.T) {
	mac := []byte{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}
	cases := []struct {
		name     string
		data     []byte
		wantErr  bool
		next     gopacket.LayerType
		addr     []byte
		ifindex  int32
		pktType  layers.LinuxSLLPacketType
		arphrd   uint16
		protocol layers.EthernetType
	}{
		{"ipv4 from ethernet", append(sll2Header(0x0800, 2, 1, 0, 6, mac), ipv4TCP...), false, layers.LayerTypeIPv4, mac, 2, 0, 1, layers.EthernetTypeIPv4},
		{"ipv6 outgoing", append(sll2Header(0x86dd, 7, 1, 4, 6, mac), ipv6UDP...), false, layers.LayerTypeIPv6, mac, 7, 4, 1, layers.EthernetTypeIPv6},
		{"no address (tun)", append(sll2Header(0x0800, 3, 65534, 0, 0, nil), ipv4TCP...), false, layers.LayerTypeIPv4, []byte{}, 3, 0, 65534, layers.EthernetTypeIPv4},
		{"address longer than 8", append(sll2Header(0x0800, 1, 1, 0, 20, bytes.Repeat([]byte{0xaa}, 8)), ipv4TCP...), false, layers.LayerTypeIPv4, bytes.Repeat([]byte{0xaa}, 8), 1, 0, 1, layers.EthernetTypeIPv4},
		{"radiotap ignores protocol", sll2Header(0x0800, 1, arphrdRadiotap, 0, 0, nil), false, layers.LayerTypeRadioTap, []byte{}, 1, 0, arphrdRadiotap, layers.EthernetTypeIPv4},
		{"LLC", sll2Header(0x0004, 1, 1, 0, 0, nil), false, layers.LayerTypeLLC, []byte{}, 1, 0, 1, 4},
		{"negative interface index", sll2Header(0x0800, -1, 1, 0, 0, nil), false, layers.LayerTypeIPv4, []byte{}, -1, 0, 1, layers.EthernetTypeIPv4},
		{"short", sll2Header(0x0800, 1, 1, 0, 0, nil)[:19], true, 0, nil, 0, 0, 0, 0},
		{"empty", nil, true, 0, nil, 0, 0, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s SLL2
			err := s.DecodeFromBytes(tc.data, gopacket.NilDecodeFeedback)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if tc.wantErr {
				return
			}
			if s.NextLayerType() != tc.next || !bytes.Equal(s.Addr, tc.addr) || s.InterfaceIndex != tc.ifindex ||
				s.PacketType != tc.pktType || s.ARPHRDType != tc.arphrd || s.ProtocolType != tc.protocol {
				t.Errorf("got %+v next %v", s, s.NextLayerType())
			}
			if !bytes.Equal(s.LayerPayload(), tc.data[sll2HeaderLen:]) || len(s.LayerContents()) != sll2HeaderLen {
				t.Errorf("payload %d bytes, contents %d", len(s.LayerPayload()), len(s.LayerContents()))
			}
			if s.LayerType() != LayerTypeSLL2 || s.CanDecode() != LayerTypeSLL2 {
				t.Error("layer type")
			}
			_ = s.LinkFlow()
		})
	}
}

func TestNFLOG(t *testing.T) {
	le, be := binary.LittleEndian, binary.BigEndian
	snapped := nflogMessage(le, afInet, ipv4TCP)
	snapped = snapped[:len(snapped)-10]
	noPayload := []byte{afInet, 0, 0, 1}
	noPayload = append(noPayload, nflogTLV(le, nfulaPacketHdr, []byte{8, 0, 1, 0})...)
	cutTLV := append([]byte{afInet, 0, 0, 1}, nflogTLV(le, nfulaPrefix, []byte("abcdefgh"))[:9]...)
	badTLV := append([]byte{afInet, 0, 0, 1}, 2, 0, 1, 0, 0, 0, 0, 0)
	nested := append([]byte{afInet6, 0, 0, 1}, nflogTLV(le, 0x8000|nfulaPayload, ipv6UDP)...)

	cases := []struct {
		name      string
		data      []byte
		err       error
		next      gopacket.LayerType
		payload   []byte
		bigEndian bool
		truncated bool
	}{
		{"ipv4 little-endian TLVs", nflogMessage(le, afInet, ipv4TCP), nil, layers.LayerTypeIPv4, ipv4TCP, false, false},
		{"ipv4 big-endian TLVs", nflogMessage(be, afInet, ipv4TCP), nil, layers.LayerTypeIPv4, ipv4TCP, true, false},
		{"ipv6", nflogMessage(le, afInet6, ipv6UDP), nil, layers.LayerTypeIPv6, ipv6UDP, false, false},
		{"ipv6 big-endian", nflogMessage(be, afInet6, ipv6UDP), nil, layers.LayerTypeIPv6, ipv6UDP, true, false},
		{"payload of odd length, padded", nflogMessage(le, afInet, ipv4TCP[:39]), nil, layers.LayerTypeIPv4, ipv4TCP[:39], false, false},
		{"payload type with netlink flag", nested, nil, layers.LayerTypeIPv6, ipv6UDP, false, false},
		{"unknown family", nflogMessage(le, 7, ipv4TCP), nil, gopacket.LayerTypePayload, ipv4TCP, false, false},
		{"snapped payload", snapped, nil, layers.LayerTypeIPv4, ipv4TCP[:30], false, true},
		{"no payload TLV", noPayload, nil, layers.LayerTypeIPv4, nil, false, false},
		{"header only", []byte{afInet, 0, 0, 1}, nil, layers.LayerTypeIPv4, nil, false, false},
		{"version 1", []byte{afInet, 1, 0, 1}, errNFLOGVersion, 0, nil, false, false},
		{"TLV length 2", badTLV, errNFLOGBadTLV, 0, nil, false, false},
		{"TLV cut before the payload", cutTLV, errNFLOGTruncated, 0, nil, false, true},
		{"short", []byte{afInet, 0, 0}, errNFLOGShort, 0, nil, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var n NFLOG
			pb := &truncFeedback{}
			err := n.DecodeFromBytes(tc.data, pb)
			if err != tc.err {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if pb.truncated != tc.truncated {
				t.Errorf("truncated = %v", pb.truncated)
			}
			if err != nil {
				return
			}
			if n.NextLayerType() != tc.next || !bytes.Equal(n.LayerPayload(), tc.payload) || n.BigEndian != tc.bigEndian {
				t.Errorf("next %v payload %x big-endian %v", n.NextLayerType(), n.LayerPayload(), n.BigEndian)
			}
			if n.ResourceID != 0x2a && n.ResourceID != 1 {
				t.Errorf("resource id %d", n.ResourceID)
			}
			if bytes.Contains(tc.data, []byte("ra-drop")) {
				if string(n.Prefix) != "ra-drop" || n.HWProtocol != layers.EthernetTypeIPv4 || n.Hook != 3 {
					t.Errorf("prefix %q hw %v hook %d", n.Prefix, n.HWProtocol, n.Hook)
				}
			}
		})
	}
}

// TestLinkLayersPacketAPI: the registered decoders work through
// gopacket.NewPacket too.
func TestLinkLayersPacketAPI(t *testing.T) {
	p := gopacket.NewPacket(append(sll2Header(0x0800, 2, 1, 0, 6, []byte{1, 2, 3, 4, 5, 6}), ipv4TCP...), LayerTypeSLL2, gopacket.Default)
	if p.Layer(LayerTypeSLL2) == nil || p.Layer(layers.LayerTypeTCP) == nil || p.LinkLayer() == nil {
		t.Errorf("SLL2 packet: %v", p)
	}
	p = gopacket.NewPacket(nflogMessage(binary.LittleEndian, afInet6, ipv6UDP), LayerTypeNFLOG, gopacket.Default)
	if p.Layer(LayerTypeNFLOG) == nil || p.Layer(layers.LayerTypeUDP) == nil {
		t.Errorf("NFLOG packet: %v", p)
	}
	if LayerTypeSLL2.String() != "LinuxSLL2" || LayerTypeNFLOG.String() != "NFLOG" {
		t.Errorf("names %v %v", LayerTypeSLL2, LayerTypeNFLOG)
	}
}

// TestLinkLayersNoAllocs: decoding through a DecodingLayerParser allocates
// nothing.
func TestLinkLayersNoAllocs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first gopacket.LayerType
		data  []byte
	}{
		{"SLL2", LayerTypeSLL2, append(sll2Header(0x0800, 2, 1, 0, 6, []byte{1, 2, 3, 4, 5, 6}), ipv4TCP...)},
		{"NFLOG", LayerTypeNFLOG, nflogMessage(binary.LittleEndian, afInet6, ipv6UDP)},
	} {
		p, decoded := newLinkParser(tc.first)
		allocs := testing.AllocsPerRun(1000, func() {
			if err := p.DecodeLayers(tc.data, decoded); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 || len(*decoded) != 3 {
			t.Errorf("%s: %v allocs, decoded %v", tc.name, allocs, *decoded)
		}
	}
}

// realCapturesDir holds the shared real-world captures; tests skip without
// it.
const realCapturesDir = "../../shared/pcaps/real"

// TestLinkLayersRealCaptures decodes every packet of the shared SLL2 and
// NFLOG captures down to IPv4 or IPv6 and a transport layer.
func TestLinkLayersRealCaptures(t *testing.T) {
	for _, tc := range []struct {
		file    string
		first   gopacket.LayerType
		packets int
	}{
		{"negative/zeek-tls-openjdk-zeek-org.pcap", LayerTypeSLL2, 6},
		{"negative/zeek-nflog-http.pcap", LayerTypeNFLOG, 13},
	} {
		t.Run(tc.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join(realCapturesDir, tc.file))
			if err != nil {
				t.Skipf("shared real captures absent (%v)", err)
			}
			defer f.Close()
			r, err := pcapgo.NewReader(f)
			if err != nil {
				t.Fatal(err)
			}
			p, decoded := newLinkParser(tc.first)
			n := 0
			for {
				data, _, err := r.ReadPacketData()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				n++
				if err := p.DecodeLayers(data, decoded); err != nil {
					t.Fatalf("packet %d: %v (decoded %v)", n, err, *decoded)
				}
				var ip, transport bool
				for _, lt := range *decoded {
					ip = ip || lt == layers.LayerTypeIPv4 || lt == layers.LayerTypeIPv6
					transport = transport || lt == layers.LayerTypeTCP || lt == layers.LayerTypeUDP
				}
				if len(*decoded) == 0 || (*decoded)[0] != tc.first || !ip || !transport {
					t.Errorf("packet %d: decoded %v", n, *decoded)
				}
			}
			if n != tc.packets {
				t.Errorf("%d packets, want %d", n, tc.packets)
			}
		})
	}
}

func BenchmarkSLL2Decode(b *testing.B) {
	data := append(sll2Header(0x0800, 2, 1, 0, 6, []byte{1, 2, 3, 4, 5, 6}), ipv4TCP...)
	var s SLL2
	b.ReportAllocs()
	for b.Loop() {
		if err := s.DecodeFromBytes(data, gopacket.NilDecodeFeedback); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNFLOGDecode(b *testing.B) {
	data := nflogMessage(binary.LittleEndian, afInet, ipv4TCP)
	var n NFLOG
	b.ReportAllocs()
	for b.Loop() {
		if err := n.DecodeFromBytes(data, gopacket.NilDecodeFeedback); err != nil {
			b.Fatal(err)
		}
	}
}

// checkLayer asserts what must hold after any decode: contents and payload
// lie within the input, and the accessors do not panic.
func checkLayer(t *testing.T, data []byte, contents, payload []byte) {
	t.Helper()
	if len(contents) > len(data) || len(payload) > len(data) {
		t.Fatalf("contents %d / payload %d bytes from %d", len(contents), len(payload), len(data))
	}
	if len(payload) > 0 && !bytes.Contains(data, payload) {
		t.Fatal("payload is not part of the input")
	}
}

func FuzzSLL2(f *testing.F) {
	f.Add(append(sll2Header(0x0800, 2, 1, 0, 6, []byte{1, 2, 3, 4, 5, 6}), ipv4TCP...))
	f.Add(sll2Header(0x86dd, 1, arphrdRadiotap, 4, 255, nil))
	f.Add([]byte{0x08, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		var s SLL2
		if err := s.DecodeFromBytes(data, gopacket.NilDecodeFeedback); err != nil {
			if len(data) >= sll2HeaderLen {
				t.Fatalf("err %v on %d bytes", err, len(data))
			}
			return
		}
		checkLayer(t, data, s.LayerContents(), s.LayerPayload())
		if len(s.Addr) > 8 {
			t.Fatalf("address of %d bytes", len(s.Addr))
		}
		_ = s.NextLayerType()
		_ = s.LinkFlow()
		p, decoded := newLinkParser(LayerTypeSLL2)
		_ = p.DecodeLayers(data, decoded)
	})
}

func FuzzNFLOG(f *testing.F) {
	f.Add(nflogMessage(binary.LittleEndian, afInet, ipv4TCP))
	f.Add(nflogMessage(binary.BigEndian, afInet6, ipv6UDP))
	f.Add([]byte{2, 0, 0, 1, 2, 0, 9, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		var n NFLOG
		err := n.DecodeFromBytes(data, gopacket.NilDecodeFeedback)
		if err != nil && !errors.Is(err, errNFLOGShort) && !errors.Is(err, errNFLOGVersion) &&
			!errors.Is(err, errNFLOGBadTLV) && !errors.Is(err, errNFLOGTruncated) {
			t.Fatalf("unexpected error %v", err)
		}
		if err != nil {
			return
		}
		checkLayer(t, data, n.LayerContents(), n.LayerPayload())
		_ = n.NextLayerType()
		p, decoded := newLinkParser(LayerTypeNFLOG)
		_ = p.DecodeLayers(data, decoded)
	})
}

// TestGopacketLinkLayers pins what the pinned gopacket does for the other
// link types the sensor decodes with gopacket's own layers.
func TestGopacketLinkLayers(t *testing.T) {
	// layers.Loopback serves LINKTYPE_NULL (host byte order) and
	// LINKTYPE_LOOP (network byte order): it reads the family big-endian
	// when the first two bytes are zero, else little-endian.
	for _, tc := range []struct {
		hdr  []byte
		next gopacket.LayerType
	}{
		{[]byte{2, 0, 0, 0}, layers.LayerTypeIPv4},
		{[]byte{0, 0, 0, 2}, layers.LayerTypeIPv4},
		{[]byte{24, 0, 0, 0}, layers.LayerTypeIPv6},
		{[]byte{0, 0, 0, 28}, layers.LayerTypeIPv6},
		{[]byte{30, 0, 0, 0}, layers.LayerTypeIPv6},
		{[]byte{0, 0, 0, 10}, layers.LayerTypeIPv6},
	} {
		var l layers.Loopback
		if err := l.DecodeFromBytes(append(tc.hdr, ipv4TCP...), gopacket.NilDecodeFeedback); err != nil || l.NextLayerType() != tc.next {
			t.Errorf("loopback %x: %v, next %v", tc.hdr, err, l.NextLayerType())
		}
	}

	// layers.LinuxSLL (v1, 16 bytes) exists and is a DecodingLayer.
	sll := []byte{0, 4, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00}
	var s1 layers.LinuxSLL
	if err := s1.DecodeFromBytes(append(sll, ipv4TCP...), gopacket.NilDecodeFeedback); err != nil || s1.NextLayerType() != layers.LayerTypeIPv4 {
		t.Errorf("linux SLL: %v, next %v", err, s1.NextLayerType())
	}
	// Its DecodeFromBytes slices the address by the header's length field
	// unchecked and panics on a large one; a DecodingLayerParser turns
	// the panic into an error unless IgnorePanic is set.
	bad := bytes.Clone(sll)
	bad[4], bad[5] = 0xff, 0xff
	var (
		s2  layers.LinuxSLL
		ip4 layers.IPv4
	)
	p := gopacket.NewDecodingLayerParser(layers.LayerTypeLinuxSLL, &s2, &ip4)
	var decoded []gopacket.LayerType
	if err := p.DecodeLayers(append(bad, ipv4TCP...), &decoded); err == nil {
		t.Error("linux SLL with address length 0xffff decoded")
	}
}
