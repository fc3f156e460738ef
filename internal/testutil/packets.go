// Package testutil builds packets and captures for rasentry's tests and its
// capture generator: real frames with correct lengths and checksums, made
// with gopacket's serializer.
package testutil

import (
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// Frame is one generated packet with its capture time.
type Frame struct {
	Time time.Time
	Data []byte
}

var (
	macClient = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
	macServer = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}
)

// Serialize builds a frame from layers, computing lengths and checksums.
func Serialize(ls ...gopacket.SerializableLayer) []byte {
	buf := gopacket.NewSerializeBuffer()
	opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
	if err := gopacket.SerializeLayers(buf, opts, ls...); err != nil {
		panic(fmt.Sprintf("testutil: serialize: %v", err)) // a bug in the caller's layers
	}
	return append([]byte(nil), buf.Bytes()...)
}

// Endpoints describe one conversation for the builders.
type Endpoints struct {
	Client, Server netip.AddrPort
	VLAN           uint16 // 802.1Q tag, 0 for none
}

// ipLayers returns the Ethernet (+VLAN) and IP layers for a packet from src to dst.
func ipLayers(src, dst netip.Addr, vlan uint16, proto layers.IPProtocol, ttl uint8) (ls []gopacket.SerializableLayer, nl gopacket.NetworkLayer) {
	eth := &layers.Ethernet{SrcMAC: macClient, DstMAC: macServer}
	if src.Compare(dst) > 0 {
		eth.SrcMAC, eth.DstMAC = macServer, macClient
	}
	var etype layers.EthernetType
	if src.Is4() {
		ip := &layers.IPv4{Version: 4, IHL: 5, TTL: ttl, Protocol: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice(), Flags: layers.IPv4DontFragment}
		nl, etype = ip, layers.EthernetTypeIPv4
	} else {
		ip := &layers.IPv6{Version: 6, HopLimit: ttl, NextHeader: proto, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
		nl, etype = ip, layers.EthernetTypeIPv6
	}
	if vlan != 0 {
		eth.EthernetType = layers.EthernetTypeDot1Q
		ls = append(ls, eth, &layers.Dot1Q{VLANIdentifier: vlan, Type: etype})
	} else {
		eth.EthernetType = etype
		ls = append(ls, eth)
	}
	return append(ls, nl.(gopacket.SerializableLayer)), nl
}

// TCPPacket builds one Ethernet TCP frame.
func TCPPacket(src, dst netip.AddrPort, vlan uint16, flags uint8, seq, ack uint32, payload []byte) []byte {
	ls, nl := ipLayers(src.Addr(), dst.Addr(), vlan, layers.IPProtocolTCP, 64)
	tcp := &layers.TCP{SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()), Seq: seq, Ack: ack, Window: 64240,
		FIN: flags&0x01 != 0, SYN: flags&0x02 != 0, RST: flags&0x04 != 0, PSH: flags&0x08 != 0, ACK: flags&0x10 != 0}
	_ = tcp.SetNetworkLayerForChecksum(nl)
	return Serialize(append(ls, tcp, gopacket.Payload(payload))...)
}

// UDPPacket builds one Ethernet UDP frame.
func UDPPacket(src, dst netip.AddrPort, vlan uint16, payload []byte) []byte {
	ls, nl := ipLayers(src.Addr(), dst.Addr(), vlan, layers.IPProtocolUDP, 64)
	udp := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
	_ = udp.SetNetworkLayerForChecksum(nl)
	return Serialize(append(ls, udp, gopacket.Payload(payload))...)
}

// ICMPEcho builds an ICMP (v4) or ICMPv6 echo request or reply.
func ICMPEcho(src, dst netip.Addr, reply bool, id, seq uint16) []byte {
	if src.Is4() {
		ls, _ := ipLayers(src, dst, 0, layers.IPProtocolICMPv4, 64)
		t := uint8(layers.ICMPv4TypeEchoRequest)
		if reply {
			t = layers.ICMPv4TypeEchoReply
		}
		ic := &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(t, 0), Id: id, Seq: seq}
		return Serialize(append(ls, ic, gopacket.Payload([]byte("rasentry-ping")))...)
	}
	ls, nl := ipLayers(src, dst, 0, layers.IPProtocolICMPv6, 64)
	t := uint8(layers.ICMPv6TypeEchoRequest)
	if reply {
		t = layers.ICMPv6TypeEchoReply
	}
	ic := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(t, 0)}
	_ = ic.SetNetworkLayerForChecksum(nl)
	echo := &layers.ICMPv6Echo{Identifier: id, SeqNumber: seq}
	return Serialize(append(ls, ic, echo, gopacket.Payload([]byte("rasentry-ping")))...)
}

// TCPConversation scripts a whole TCP connection: handshake, the given
// payloads in turn (each acknowledged), and a FIN exchange. Payloads at even
// positions go client to server, odd ones server to client; an empty
// payload skips a turn. Times advance by step per packet.
type TCPConversation struct {
	Endpoints
	ClientISN, ServerISN uint32
	Step                 time.Duration
	NoHandshake          bool // start mid-stream (no SYN)
	NoClose              bool // leave the connection open
	Reset                bool // close with a RST from the client instead of FINs
}

// Frames returns the conversation's frames starting at t.
func (c TCPConversation) Frames(t time.Time, payloads ...[]byte) []Frame {
	step := c.Step
	if step == 0 {
		step = time.Millisecond
	}
	var out []Frame
	add := func(b []byte) {
		out = append(out, Frame{Time: t, Data: b})
		t = t.Add(step)
	}
	cs, ss := c.ClientISN, c.ServerISN
	cl, sv, v := c.Client, c.Server, c.VLAN
	const syn, ack, psh, fin, rst = 0x02, 0x10, 0x08, 0x01, 0x04
	if !c.NoHandshake {
		add(TCPPacket(cl, sv, v, syn, cs, 0, nil))
		add(TCPPacket(sv, cl, v, syn|ack, ss, cs+1, nil))
		cs++
		ss++
		add(TCPPacket(cl, sv, v, ack, cs, ss, nil))
	}
	// Payloads longer than the MSS of a 1500-byte MTU go out in several
	// segments (PSH on the last), as a real stack sends them.
	mss := 1460
	if !cl.Addr().Is4() {
		mss = 1440
	}
	for i, p := range payloads {
		if len(p) == 0 {
			continue
		}
		from, to, seq, peerSeq := cl, sv, &cs, &ss
		if i%2 == 1 {
			from, to, seq, peerSeq = sv, cl, &ss, &cs
		}
		for off := 0; off < len(p); off += mss {
			end := min(off+mss, len(p))
			flags := uint8(ack)
			if end == len(p) {
				flags |= psh
			}
			add(TCPPacket(from, to, v, flags, *seq, *peerSeq, p[off:end]))
			*seq += uint32(end - off)
		}
		add(TCPPacket(to, from, v, ack, *peerSeq, *seq, nil))
	}
	switch {
	case c.NoClose:
	case c.Reset:
		add(TCPPacket(cl, sv, v, rst|ack, cs, ss, nil))
	default:
		add(TCPPacket(cl, sv, v, fin|ack, cs, ss, nil))
		add(TCPPacket(sv, cl, v, fin|ack, ss, cs+1, nil))
		add(TCPPacket(cl, sv, v, ack, cs+1, ss+1, nil))
	}
	return out
}
