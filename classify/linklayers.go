package classify

import (
	"encoding/binary"
	"errors"
	"net"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Link-layer decoders for the link types the pinned gopacket lacks: Linux
// "cooked" capture v2 (LINKTYPE_LINUX_SLL2, 276) and Linux netfilter NFLOG
// (LINKTYPE_NFLOG, 239). Both are gopacket DecodingLayers, so they sit in a
// DecodingLayerParser beside layers.Ethernet, layers.LinuxSLL and
// layers.Loopback, and allocate nothing.

// Layer type numbers registered with gopacket. gopacket keeps 0-999 for
// itself and serves 1000-1999 from an array ("common application-specific
// types, very fast"); rasentry uses 1800 and up.
const (
	layerNumSLL2  = 1800
	layerNumNFLOG = 1801
)

var (
	// LayerTypeSLL2 is the gopacket layer type of SLL2.
	LayerTypeSLL2 = gopacket.RegisterLayerType(layerNumSLL2,
		gopacket.LayerTypeMetadata{Name: "LinuxSLL2", Decoder: gopacket.DecodeFunc(decodeSLL2)})
	// LayerTypeNFLOG is the gopacket layer type of NFLOG.
	LayerTypeNFLOG = gopacket.RegisterLayerType(layerNumNFLOG,
		gopacket.LayerTypeMetadata{Name: "NFLOG", Decoder: gopacket.DecodeFunc(decodeNFLOG)})
)

var (
	errSLL2Short      = errors.New("linux SLL2 header too short")
	errNFLOGShort     = errors.New("NFLOG header too short")
	errNFLOGVersion   = errors.New("unsupported NFLOG version")
	errNFLOGBadTLV    = errors.New("NFLOG TLV length below 4")
	errNFLOGTruncated = errors.New("NFLOG TLV truncated before the payload")
)

// sll2HeaderLen is the fixed LINKTYPE_LINUX_SLL2 header length.
const sll2HeaderLen = 20

// ARPHRD_ values for which the SLL2 protocol type field does not hold an
// Ethernet type (tcpdump.org LINKTYPE_LINUX_SLL2).
const (
	arphrdFRAD     = 770 // Frame Relay LAPF frame follows
	arphrdRadiotap = 803 // Radiotap header and 802.11 frame follow
)

// SLL2 is the Linux "cooked" capture v2 header (LINKTYPE_LINUX_SLL2), 20
// bytes, all fields in network byte order:
//
//	protocol type (2) | reserved, zero (2) | interface index (4)
//	ARPHRD_ type (2) | packet type (1) | address length (1) | address (8)
type SLL2 struct {
	layers.BaseLayer
	// ProtocolType is the Ethernet type of the payload (a GRE protocol
	// type when ARPHRDType is ARPHRD_IPGRE).
	ProtocolType layers.EthernetType
	// InterfaceIndex is the 1-based Linux index of the interface the packet
	// was seen on.
	InterfaceIndex int32
	// ARPHRDType is the Linux ARPHRD_ device type.
	ARPHRDType uint16
	// PacketType says to whom the packet was addressed (host, broadcast,
	// multicast, other host, outgoing), as in Linux SLL v1.
	PacketType layers.LinuxSLLPacketType
	// AddrLen is the sender's link-layer address length; it may exceed 8.
	AddrLen uint8
	// Addr is the meaningful part of the 8-byte address field (at most
	// 8 bytes, fewer when AddrLen is smaller). It aliases the packet data.
	Addr net.HardwareAddr
}

// LayerType returns LayerTypeSLL2.
func (s *SLL2) LayerType() gopacket.LayerType { return LayerTypeSLL2 }

// CanDecode returns LayerTypeSLL2.
func (s *SLL2) CanDecode() gopacket.LayerClass { return LayerTypeSLL2 }

// LinkFlow returns a flow from the sender's address, as layers.LinuxSLL does.
func (s *SLL2) LinkFlow() gopacket.Flow {
	return gopacket.NewFlow(layers.EndpointMAC, s.Addr, nil)
}

// NextLayerType returns the payload's layer type from the protocol type,
// except for the ARPHRD_ types that carry no Ethernet type.
func (s *SLL2) NextLayerType() gopacket.LayerType {
	switch s.ARPHRDType {
	case arphrdRadiotap:
		return layers.LayerTypeRadioTap
	case arphrdFRAD:
		return gopacket.LayerTypePayload
	}
	switch s.ProtocolType {
	case 0x0004: // frame begins with an 802.2 LLC header
		return layers.LayerTypeLLC
	case 0x0000, 0x0001, 0x0003: // no Ethernet type (Novell 802.3, "mysterious cases")
		return gopacket.LayerTypePayload
	}
	return s.ProtocolType.LayerType()
}

// DecodeFromBytes decodes the 20-byte header; the rest is the payload.
func (s *SLL2) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < sll2HeaderLen {
		df.SetTruncated()
		return errSLL2Short
	}
	s.ProtocolType = layers.EthernetType(binary.BigEndian.Uint16(data[0:2]))
	s.InterfaceIndex = int32(binary.BigEndian.Uint32(data[4:8]))
	s.ARPHRDType = binary.BigEndian.Uint16(data[8:10])
	s.PacketType = layers.LinuxSLLPacketType(data[10])
	s.AddrLen = data[11]
	s.Addr = net.HardwareAddr(data[12 : 12+min(int(s.AddrLen), 8)])
	s.BaseLayer = layers.BaseLayer{Contents: data[:sll2HeaderLen], Payload: data[sll2HeaderLen:]}
	return nil
}

// decodeSLL2 is the gopacket.Decoder for packets decoded with
// gopacket.NewPacket.
func decodeSLL2(data []byte, p gopacket.PacketBuilder) error {
	s := &SLL2{}
	if err := s.DecodeFromBytes(data, p); err != nil {
		return err
	}
	p.AddLayer(s)
	p.SetLinkLayer(s)
	if len(s.Payload) == 0 {
		return nil
	}
	return p.NextDecoder(s.NextLayerType())
}

// NFLOG TLV types (linux/netfilter/nfnetlink_log.h, as listed at
// tcpdump.org LINKTYPE_NFLOG).
const (
	nfulaPacketHdr = 1  // hardware protocol (2), hook (1), pad (1)
	nfulaPayload   = 9  // the packet, from its network header
	nfulaPrefix    = 10 // log prefix, NUL-terminated
)

// nflogTypeMask strips the netlink attribute flags (NLA_F_NESTED,
// NLA_F_NET_BYTEORDER) from a TLV type.
const nflogTypeMask = 0x3fff

// Linux address families in the NFLOG header.
const (
	afInet  = 2
	afInet6 = 10
)

// NFLOG is a Linux netfilter log message (LINKTYPE_NFLOG): a 4-byte header
// (address family, version 0, resource ID in network byte order) followed
// by TLVs. Each TLV has a 16-bit length (including its 4-byte header) and a
// 16-bit type, both in the byte order of the host that wrote the capture,
// and is padded to 4 bytes. The payload is the value of the NFULA_PAYLOAD
// TLV: an IPv4 or IPv6 packet, by the address family.
//
// The TLV byte order is a property of the file (its magic number, or the
// pcapng section header), which a layer decoder does not see; DecodeFromBytes
// infers it from the first TLV's type, whose value is small, and reports
// what it found in BigEndian.
type NFLOG struct {
	layers.BaseLayer
	// Family is the Linux address family: 2 (AF_INET) or 10 (AF_INET6).
	Family uint8
	// Version is the header version, 0.
	Version uint8
	// ResourceID is the nflog group the packet was logged to.
	ResourceID uint16
	// HWProtocol is the Ethernet type from the packet header TLV, 0 when
	// that TLV is absent.
	HWProtocol layers.EthernetType
	// Hook is the netfilter hook from the packet header TLV.
	Hook uint8
	// Prefix is the log prefix without its NUL, nil when absent. It
	// aliases the packet data.
	Prefix []byte
	// BigEndian reports that the TLV headers were big-endian.
	BigEndian bool
}

// LayerType returns LayerTypeNFLOG.
func (n *NFLOG) LayerType() gopacket.LayerType { return LayerTypeNFLOG }

// CanDecode returns LayerTypeNFLOG.
func (n *NFLOG) CanDecode() gopacket.LayerClass { return LayerTypeNFLOG }

// NextLayerType returns IPv4 or IPv6 by the address family, else Payload.
func (n *NFLOG) NextLayerType() gopacket.LayerType {
	switch n.Family {
	case afInet:
		return layers.LayerTypeIPv4
	case afInet6:
		return layers.LayerTypeIPv6
	}
	return gopacket.LayerTypePayload
}

// DecodeFromBytes decodes the header and walks the TLVs up to the payload.
// A payload TLV cut short by the snap length yields the bytes present and
// marks the packet truncated.
func (n *NFLOG) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 4 {
		df.SetTruncated()
		return errNFLOGShort
	}
	*n = NFLOG{
		Family:     data[0],
		Version:    data[1],
		ResourceID: binary.BigEndian.Uint16(data[2:4]),
	}
	if n.Version != 0 {
		return errNFLOGVersion
	}
	if len(data) >= 8 {
		n.BigEndian = nflogBigEndian(data[4:8])
	}
	off := 4
	for len(data)-off >= 4 {
		var tlen, typ int
		if n.BigEndian {
			tlen, typ = int(binary.BigEndian.Uint16(data[off:])), int(binary.BigEndian.Uint16(data[off+2:]))
		} else {
			tlen, typ = int(binary.LittleEndian.Uint16(data[off:])), int(binary.LittleEndian.Uint16(data[off+2:]))
		}
		if tlen < 4 {
			n.BaseLayer = layers.BaseLayer{Contents: data}
			return errNFLOGBadTLV
		}
		end := off + tlen
		if typ&nflogTypeMask == nfulaPayload {
			if end > len(data) {
				end = len(data)
				df.SetTruncated()
			}
			n.BaseLayer = layers.BaseLayer{Contents: data[:off+4], Payload: data[off+4 : end]}
			return nil
		}
		if end > len(data) {
			n.BaseLayer = layers.BaseLayer{Contents: data}
			df.SetTruncated()
			return errNFLOGTruncated
		}
		value := data[off+4 : end]
		switch typ & nflogTypeMask {
		case nfulaPacketHdr:
			if len(value) >= 3 {
				n.HWProtocol = layers.EthernetType(binary.BigEndian.Uint16(value))
				n.Hook = value[2]
			}
		case nfulaPrefix:
			for len(value) > 0 && value[len(value)-1] == 0 {
				value = value[:len(value)-1]
			}
			n.Prefix = value
		}
		off += (tlen + 3) &^ 3
	}
	// No payload TLV: a message that logged no packet bytes.
	n.BaseLayer = layers.BaseLayer{Contents: data}
	return nil
}

// nflogBigEndian infers the byte order of the TLV headers from the first
// TLV header (length, type). TLV types are below 64, with netlink flags only
// in the top two bits, so the byte holding the type's low half is nonzero
// in its low six bits and the other byte is zero there. When neither reading
// fits, the little-endian hosts that write nearly all captures win.
func nflogBigEndian(tlv []byte) bool {
	return tlv[2]&0x3f == 0 && tlv[3]&0x3f != 0
}

// decodeNFLOG is the gopacket.Decoder for packets decoded with
// gopacket.NewPacket.
func decodeNFLOG(data []byte, p gopacket.PacketBuilder) error {
	n := &NFLOG{}
	if err := n.DecodeFromBytes(data, p); err != nil {
		return err
	}
	p.AddLayer(n)
	if len(n.Payload) == 0 {
		return nil
	}
	return p.NextDecoder(n.NextLayerType())
}
