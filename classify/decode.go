package classify

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// decoded is what the decoder extracts from one packet at one tunnel depth.
// Everything points into the packet's bytes; nothing is allocated.
type decoded struct {
	vlan     uint16
	src, dst netip.Addr
	proto    uint8
	ipLen    int // IP header plus payload
	sport    uint16
	dport    uint16
	tcpFlags uint8
	seq      uint32
	icmpType uint8
	icmpCode uint8
	icmpID   uint16
	payload  []byte
	hasPorts bool

	// fragment of an IP datagram (reassembled before the transport is read)
	frag fragment

	// a tunnel found under this packet: the bytes of the inner packet and
	// what they start with
	inner     []byte
	innerType gopacket.LayerType
	tunnel    string
}

type fragment struct {
	is     bool
	id     uint32
	offset int  // in bytes
	more   bool // more fragments follow
	data   []byte
}

// Errors the decoder reports; the classifier counts them per kind.
var (
	errNoIP      = errors.New("no IP layer")
	errTruncated = errors.New("truncated packet")
	errBadIP     = errors.New("malformed IP header")
)

// decoder holds preallocated gopacket layers, so decoding a packet allocates
// nothing. It decodes link and tunnel-typed layers (VLAN, PPPoE, GRE, VXLAN,
// GTP-U, IP-in-IP) down to the transport header of one IP packet.
type decoder struct {
	sll      layers.LinuxSLL
	sll2     SLL2
	nflog    NFLOG
	loopback layers.Loopback
	ip4      layers.IPv4
	gre      layers.GRE
	vxlan    layers.VXLAN
	gtp      layers.GTPv1U
	fb       truncFeedback
}

type truncFeedback struct{ truncated bool }

func (t *truncFeedback) SetTruncated() { t.truncated = true }

// Ports that carry tunnels the decoder looks inside.
const (
	portVXLAN = 4789
	portGTPU  = 2152
)

// linkStart returns the layer type that data of a capture link type begins with.
// Link types are numbers from the capture file (LINKTYPE_*); gopacket's
// layers.LinkType is a byte and cannot hold SLL2 (276), hence an int here.
func linkStart(lt int) (gopacket.LayerType, bool) {
	switch lt {
	case int(layers.LinkTypeEthernet):
		return layers.LayerTypeEthernet, true
	case int(layers.LinkTypeLinuxSLL):
		return layers.LayerTypeLinuxSLL, true
	case linkTypeLinuxSLL2:
		return LayerTypeSLL2, true
	case int(layers.LinkTypeNull), int(layers.LinkTypeLoop):
		return layers.LayerTypeLoopback, true
	case int(layers.LinkTypeRaw), 12, 14, int(layers.LinkTypeIPv4), int(layers.LinkTypeIPv6):
		return layerTypeRawIP, true
	case linkTypeNFLOG:
		return LayerTypeNFLOG, true
	}
	return gopacket.LayerTypeZero, false
}

const (
	linkTypeLinuxSLL2 = 276
	linkTypeNFLOG     = 239
)

// layerTypeRawIP marks bytes that start with an IPv4 or IPv6 header, told
// apart by the version nibble.
var layerTypeRawIP = gopacket.RegisterLayerType(1899, gopacket.LayerTypeMetadata{Name: "RawIP"})

// errPanic marks a packet on which a gopacket layer panicked.
var errPanic = errors.New("decoder panicked")

// safeDecode is decode with gopacket's layers fenced in: some of them index
// hostile input without checking its length (LinuxSLL, GRE: found by
// FuzzClassifierPacket), and a packet must never take the sensor down. A
// panic here happens before any flow state changes, so recovering is safe.
func (dc *decoder) safeDecode(data []byte, first gopacket.LayerType, d *decoded) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errPanic
		}
	}()
	return dc.decode(data, first, d)
}

// safeTransport is decodeTransport (for reassembled datagrams) fenced in the same way.
func (dc *decoder) safeTransport(data []byte, d *decoded) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errPanic
		}
	}()
	return dc.decodeTransport(data, d)
}

// decode fills d from data, which starts with a layer of type first.
func (dc *decoder) decode(data []byte, first gopacket.LayerType, d *decoded) error {
	*d = decoded{}
	t := first
	for i := 0; i < 16; i++ { // bounded: link layers cannot nest more than this
		switch t {
		case layers.LayerTypeEthernet:
			// Ethernet II and 802.1Q are read by hand: they are on nearly
			// every packet, and gopacket's layers stored five slices each
			// (a tenth of the classifier's time went there).
			if len(data) < 14 {
				return errTruncated
			}
			t, data = etherNext(binary.BigEndian.Uint16(data[12:14])), data[14:]
		case layers.LayerTypeDot1Q:
			if len(data) < 4 {
				return errTruncated
			}
			if d.vlan == 0 {
				d.vlan = binary.BigEndian.Uint16(data[0:2]) & 0x0fff
			}
			t, data = etherNext(binary.BigEndian.Uint16(data[2:4])), data[4:]
		case layers.LayerTypeLinuxSLL:
			// gopacket's LinuxSLL slices the address by its length field
			// unchecked (a panic past 8 bytes): check it first.
			if len(data) < 16 || binary.BigEndian.Uint16(data[4:6]) > 8 {
				return errTruncated
			}
			if err := dc.sll.DecodeFromBytes(data, &dc.fb); err != nil {
				return errTruncated
			}
			t, data = dc.sll.NextLayerType(), dc.sll.Payload
		case LayerTypeSLL2:
			if err := dc.sll2.DecodeFromBytes(data, &dc.fb); err != nil {
				return errTruncated
			}
			t, data = dc.sll2.NextLayerType(), dc.sll2.LayerPayload()
		case LayerTypeNFLOG:
			if err := dc.nflog.DecodeFromBytes(data, &dc.fb); err != nil {
				return errTruncated
			}
			t, data = dc.nflog.NextLayerType(), dc.nflog.LayerPayload()
		case layers.LayerTypeLoopback:
			if err := dc.loopback.DecodeFromBytes(data, &dc.fb); err != nil {
				return errTruncated
			}
			t, data = dc.loopback.NextLayerType(), dc.loopback.Payload
		case layerTypePPPoE:
			// RFC 2516 session header (6 bytes) then a PPP protocol field.
			if len(data) < 8 {
				return errTruncated
			}
			switch binary.BigEndian.Uint16(data[6:8]) {
			case 0x0021:
				t = layers.LayerTypeIPv4
			case 0x0057:
				t = layers.LayerTypeIPv6
			default:
				return errNoIP
			}
			data = data[8:]
		case layerTypeRawIP:
			if len(data) == 0 {
				return errTruncated
			}
			switch data[0] >> 4 {
			case 4:
				t = layers.LayerTypeIPv4
			case 6:
				t = layers.LayerTypeIPv6
			default:
				return errNoIP
			}
		case layers.LayerTypeIPv4:
			return dc.decodeIPv4(data, d)
		case layers.LayerTypeIPv6:
			return dc.decodeIPv6(data, d)
		default:
			return errNoIP
		}
	}
	return errNoIP
}

var layerTypePPPoE = gopacket.RegisterLayerType(1898, gopacket.LayerTypeMetadata{Name: "PPPoESession"})

// etherNext returns the layer an EtherType announces. Values below 0x0600
// are 802.3 lengths (LLC follows, which carries no IP here).
func etherNext(et uint16) gopacket.LayerType {
	switch layers.EthernetType(et) {
	case layers.EthernetTypeIPv4:
		return layers.LayerTypeIPv4
	case layers.EthernetTypeIPv6:
		return layers.LayerTypeIPv6
	case layers.EthernetTypeDot1Q, layers.EthernetTypeQinQ:
		return layers.LayerTypeDot1Q
	case layers.EthernetTypePPPoESession:
		return layerTypePPPoE
	}
	if et < 0x0600 {
		return layers.LayerTypeLLC
	}
	return layers.EthernetType(et).LayerType()
}

// decodeIPv4 reads an IPv4 header. The common header without options is
// read by hand, with gopacket's checks (a zero total length is taken as
// the captured length, as TCP segmentation offload leaves it; padding past
// the total length is dropped); one with options goes through gopacket's
// layer, which checks them.
func (dc *decoder) decodeIPv4(data []byte, d *decoded) error {
	if len(data) < 20 || data[0] != 0x45 {
		return dc.decodeIPv4Options(data, d)
	}
	length := int(binary.BigEndian.Uint16(data[2:4]))
	if length == 0 {
		length = int(uint16(len(data)))
	}
	if length < 20 {
		return errBadIP
	}
	if len(data) > length {
		data = data[:length]
	}
	d.src = netip.AddrFrom4([4]byte(data[12:16]))
	d.dst = netip.AddrFrom4([4]byte(data[16:20]))
	d.proto = data[9]
	payload := data[20:]
	d.ipLen = len(data)
	flagsFrag := binary.BigEndian.Uint16(data[6:8])
	more, offset := flagsFrag&0x2000 != 0, int(flagsFrag&0x1fff)*8
	if more || offset != 0 {
		d.frag = fragment{is: true, id: uint32(binary.BigEndian.Uint16(data[4:6])), offset: offset, more: more, data: payload}
		return nil
	}
	return dc.decodeTransport(payload, d)
}

func (dc *decoder) decodeIPv4Options(data []byte, d *decoded) error {
	ip := &dc.ip4
	if err := ip.DecodeFromBytes(data, &dc.fb); err != nil || ip.Version != 4 {
		return errBadIP
	}
	d.src = netip.AddrFrom4([4]byte(ip.SrcIP.To4()))
	d.dst = netip.AddrFrom4([4]byte(ip.DstIP.To4()))
	d.proto = uint8(ip.Protocol)
	d.ipLen = int(ip.IHL)*4 + len(ip.Payload)
	if ip.Flags&layers.IPv4MoreFragments != 0 || ip.FragOffset != 0 {
		d.frag = fragment{is: true, id: uint32(ip.Id), offset: int(ip.FragOffset) * 8,
			more: ip.Flags&layers.IPv4MoreFragments != 0, data: ip.Payload}
		return nil
	}
	return dc.decodeTransport(ip.Payload, d)
}

// decodeIPv6 reads the fixed header and walks the extension headers
// (RFC 8200 §4) by hand, so fragments and every extension are handled
// the same way without allocation.
func (dc *decoder) decodeIPv6(data []byte, d *decoded) error {
	if len(data) < 40 || data[0]>>4 != 6 {
		return errBadIP
	}
	plen := int(binary.BigEndian.Uint16(data[4:6]))
	next := data[6]
	d.src = netip.AddrFrom16([16]byte(data[8:24]))
	d.dst = netip.AddrFrom16([16]byte(data[24:40]))
	payload := data[40:]
	if plen != 0 && plen < len(payload) {
		payload = payload[:plen] // drop link-layer padding
	}
	d.ipLen = 40 + len(payload)
	for i := 0; i < 8; i++ { // bounded walk over extension headers
		switch next {
		case 0, 43, 60, 135, 139, 140: // hop-by-hop, routing, destination, mobility, HIP, shim6
			if len(payload) < 8 {
				return errTruncated
			}
			n := (int(payload[1]) + 1) * 8
			if n > len(payload) {
				return errTruncated
			}
			next, payload = payload[0], payload[n:]
		case 51: // authentication header: length in 4-byte units minus 2
			if len(payload) < 8 {
				return errTruncated
			}
			n := (int(payload[1]) + 2) * 4
			if n > len(payload) {
				return errTruncated
			}
			next, payload = payload[0], payload[n:]
		case 44: // fragment
			if len(payload) < 8 {
				return errTruncated
			}
			off := int(binary.BigEndian.Uint16(payload[2:4]) &^ 7)
			more := payload[3]&1 != 0
			id := binary.BigEndian.Uint32(payload[4:8])
			d.proto = payload[0]
			if off == 0 && !more { // atomic fragment: nothing to reassemble
				next, payload = payload[0], payload[8:]
				continue
			}
			d.frag = fragment{is: true, id: id, offset: off, more: more, data: payload[8:]}
			return nil
		default:
			d.proto = next
			return dc.decodeTransport(payload, d)
		}
	}
	return errBadIP
}

// decodeTransport reads the transport header of an unfragmented datagram
// (or a reassembled one), and notes a tunnel beneath it.
func (dc *decoder) decodeTransport(data []byte, d *decoded) error {
	switch d.proto {
	case ProtoTCP:
		if len(data) < 20 {
			return errTruncated
		}
		hl := int(data[12]>>4) * 4
		if hl < 20 || hl > len(data) {
			return errTruncated
		}
		d.sport = binary.BigEndian.Uint16(data[0:2])
		d.dport = binary.BigEndian.Uint16(data[2:4])
		d.seq = binary.BigEndian.Uint32(data[4:8])
		d.tcpFlags = data[13]
		d.payload = data[hl:]
		d.hasPorts = true
	case ProtoUDP:
		if len(data) < 8 {
			return errTruncated
		}
		d.sport = binary.BigEndian.Uint16(data[0:2])
		d.dport = binary.BigEndian.Uint16(data[2:4])
		ulen := int(binary.BigEndian.Uint16(data[4:6]))
		p := data[8:]
		if ulen >= 8 && ulen-8 < len(p) {
			p = p[:ulen-8]
		}
		d.payload = p
		d.hasPorts = true
		dc.udpTunnel(d)
	case ProtoSCTP:
		if len(data) < 12 {
			return errTruncated
		}
		d.sport = binary.BigEndian.Uint16(data[0:2])
		d.dport = binary.BigEndian.Uint16(data[2:4])
		d.payload = data[12:]
		d.hasPorts = true
	case ProtoICMP, ProtoICMPv6:
		if len(data) < 4 {
			return errTruncated
		}
		d.icmpType, d.icmpCode = data[0], data[1]
		if len(data) >= 8 && isICMPEcho(d.proto, d.icmpType) {
			d.icmpID = binary.BigEndian.Uint16(data[4:6])
		}
		d.payload = data[4:]
	case 4: // IPv4 in IP (4in6, or IP-in-IP)
		d.inner, d.innerType, d.tunnel = data, layers.LayerTypeIPv4, ipInIPName(d)
	case 41: // IPv6 in IP (6in4, 6in6)
		d.inner, d.innerType, d.tunnel = data, layers.LayerTypeIPv6, ipInIPName(d)
	case 47: // GRE
		if greHeaderFits(data) && dc.gre.DecodeFromBytes(data, &dc.fb) == nil {
			switch dc.gre.Protocol {
			case layers.EthernetTypeIPv4:
				d.inner, d.innerType = dc.gre.Payload, layers.LayerTypeIPv4
			case layers.EthernetTypeIPv6:
				d.inner, d.innerType = dc.gre.Payload, layers.LayerTypeIPv6
			case layers.EthernetTypeTransparentEthernetBridging:
				d.inner, d.innerType = dc.gre.Payload, layers.LayerTypeEthernet
			}
			if d.inner != nil {
				d.tunnel = "gre"
			}
		}
		d.payload = data
	default:
		d.payload = data
	}
	return nil
}

// greHeaderFits checks that data holds the GRE header its flags announce
// (RFC 2784/2890: checksum, key, sequence; the enhanced GRE acknowledgment)
// before gopacket reads it unchecked; source routing is not decoded.
func greHeaderFits(data []byte) bool {
	if len(data) < 4 || data[0]&0x40 != 0 { // too short, or routing present
		return false
	}
	n := 4
	if data[0]&0x80 != 0 {
		n += 4
	}
	if data[0]&0x20 != 0 {
		n += 4
	}
	if data[0]&0x10 != 0 {
		n += 4
	}
	if data[1]&0x80 != 0 {
		n += 4
	}
	return len(data) >= n
}

func ipInIPName(d *decoded) string {
	switch {
	case d.src.Is4() && d.proto == 41:
		return "6in4"
	case d.src.Is6() && d.proto == 4:
		return "4in6"
	case d.src.Is4():
		return "4in4"
	}
	return "6in6"
}

// udpTunnel recognises VXLAN and GTP-U by port and header.
func (dc *decoder) udpTunnel(d *decoded) {
	switch {
	case d.dport == portVXLAN && len(d.payload) >= 8 && d.payload[0]&0x08 != 0:
		if err := dc.vxlan.DecodeFromBytes(d.payload, &dc.fb); err == nil {
			d.inner, d.innerType, d.tunnel = dc.vxlan.Payload, layers.LayerTypeEthernet, "vxlan"
		}
	case (d.dport == portGTPU || d.sport == portGTPU) && len(d.payload) >= 8 && d.payload[0]>>5 == 1 && d.payload[1] == 0xff:
		if err := dc.gtp.DecodeFromBytes(d.payload, &dc.fb); err == nil && len(dc.gtp.Payload) > 0 {
			switch dc.gtp.Payload[0] >> 4 {
			case 4:
				d.inner, d.innerType, d.tunnel = dc.gtp.Payload, layers.LayerTypeIPv4, "gtpu"
			case 6:
				d.inner, d.innerType, d.tunnel = dc.gtp.Payload, layers.LayerTypeIPv6, "gtpu"
			}
		}
	}
}

func isICMPEcho(proto, typ uint8) bool {
	if proto == ProtoICMP {
		return typ == 8 || typ == 0
	}
	return typ == 128 || typ == 129
}
