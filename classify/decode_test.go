package classify

import (
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/google/gopacket/layers"
)

// ipv4Header builds a 20-byte IPv4 header with the given total length,
// flags+fragment field and protocol, followed by payload.
func ipv4Header(total, flagsFrag uint16, proto byte, payload []byte) []byte {
	b := make([]byte, 20, 20+len(payload))
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], total)
	binary.BigEndian.PutUint16(b[4:], 0x1234)
	binary.BigEndian.PutUint16(b[6:], flagsFrag)
	b[8], b[9] = 64, proto
	copy(b[12:], []byte{10, 0, 0, 1})
	copy(b[16:], []byte{10, 0, 0, 2})
	return append(b, payload...)
}

// TestIPv4FastPathMatchesGopacket: the hand-read IPv4 header gives what
// gopacket's layer gives, on the cases its checks single out.
func TestIPv4FastPathMatchesGopacket(t *testing.T) {
	udp := []byte{0x30, 0x39, 0x00, 0x35, 0x00, 0x0c, 0, 0, 'a', 'b', 'c', 'd'}
	tcp := make([]byte, 24)
	tcp[12] = 5 << 4
	tcp[13] = 0x18
	cases := map[string][]byte{
		"udp":                  ipv4Header(32, 0, ProtoUDP, udp),
		"tcp":                  ipv4Header(44, 0x4000, ProtoTCP, tcp),
		"zero total length":    ipv4Header(0, 0, ProtoUDP, udp),
		"padding past total":   ipv4Header(28, 0, ProtoUDP, append(append([]byte(nil), udp...), 0, 0, 0, 0)),
		"total beyond capture": ipv4Header(1500, 0, ProtoUDP, udp),
		"total below header":   ipv4Header(19, 0, ProtoUDP, udp),
		"first fragment":       ipv4Header(32, 0x2000, ProtoUDP, udp),
		"last fragment":        ipv4Header(32, 0x0010, ProtoUDP, udp),
		"header only":          ipv4Header(20, 0, ProtoTCP, nil),
		"short":                ipv4Header(32, 0, ProtoUDP, udp)[:19],
		"gre":                  ipv4Header(28, 0, 47, []byte{0, 0, 0x08, 0x00, 0x45, 0, 0, 0}),
	}
	for name, pkt := range cases {
		t.Run(name, func(t *testing.T) { compareIPv4(t, pkt) })
	}
}

func compareIPv4(t *testing.T, pkt []byte) {
	t.Helper()
	var fast, slow decoder
	var a, b decoded
	errA := fast.decodeIPv4(pkt, &a)
	errB := slow.decodeIPv4Options(pkt, &b)
	if errA != errB || !reflect.DeepEqual(a, b) {
		t.Fatalf("by hand: %v %+v\ngopacket: %v %+v", errA, a, errB, b)
	}
}

// FuzzIPv4FastPath checks the hand-read IPv4 header against gopacket's on
// any input.
func FuzzIPv4FastPath(f *testing.F) {
	f.Add(ipv4Header(32, 0, ProtoUDP, []byte{0x30, 0x39, 0x00, 0x35, 0x00, 0x0c, 0, 0, 1, 2, 3, 4}))
	f.Add(ipv4Header(0, 0x2000, ProtoTCP, make([]byte, 20)))
	f.Fuzz(func(t *testing.T, pkt []byte) {
		if len(pkt) > 0 {
			pkt[0] = 0x45 // the fast path's case; other headers take gopacket's path anyway
		}
		compareIPv4(t, pkt)
	})
}

// TestEtherNextMatchesGopacket: the hand-read EtherType leads where
// gopacket's Ethernet layer led (PPPoE sessions aside, which the decoder
// reads itself).
func TestEtherNextMatchesGopacket(t *testing.T) {
	for et := 0; et <= 0xffff; et++ {
		want := layers.EthernetType(et).LayerType()
		if et < 0x0600 {
			want = layers.LayerTypeLLC
		}
		if et == int(layers.EthernetTypePPPoESession) {
			want = layerTypePPPoE
		}
		if got := etherNext(uint16(et)); got != want {
			t.Fatalf("EtherType 0x%04x: %v, gopacket %v", et, got, want)
		}
	}
}
