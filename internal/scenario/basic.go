package scenario

import (
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"

	"github.com/rasentry/rasentry/internal/testutil"
)

func init() {
	register(Scenario{
		Name: "basic",
		Description: "everyday traffic with no Remote Assistance in it: HTTP over TCP with handshake and FIN, " +
			"a reset connection, a mid-stream connection, DNS over UDP, ICMP and ICMPv6 echo, TCP over IPv6, " +
			"an 802.1Q-tagged flow, and a UDP datagram split into IPv4 fragments",
		Build: buildBasic,
	})
}

func buildBasic(o Options, r *rand.Rand) []testutil.Frame {
	client := orDefault(o.Client, "10.20.0.15")
	server := orDefault(o.Server, "10.30.0.80")
	t := o.Start
	var out []testutil.Frame
	at := func(d time.Duration) time.Time { return t.Add(d) }

	// HTTP with a full handshake and FIN close.
	http := testutil.TCPConversation{Endpoints: testutil.Endpoints{
		Client: netip.AddrPortFrom(client, ephemeral(r)), Server: netip.AddrPortFrom(server, 80)},
		ClientISN: r.Uint32(), ServerISN: r.Uint32()}
	out = append(out, http.Frames(at(0),
		[]byte("GET /index.html HTTP/1.1\r\nHost: intranet.example\r\nUser-Agent: rasentry-pcapgen\r\n\r\n"),
		[]byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello"))...)

	// A connection refused with a reset.
	rst := testutil.TCPConversation{Endpoints: testutil.Endpoints{
		Client: netip.AddrPortFrom(client, ephemeral(r)), Server: netip.AddrPortFrom(server, 8443)},
		ClientISN: r.Uint32(), ServerISN: r.Uint32(), Reset: true}
	out = append(out, rst.Frames(at(50*time.Millisecond))...)

	// A connection seen from the middle (capture started late).
	mid := testutil.TCPConversation{Endpoints: testutil.Endpoints{
		Client: netip.AddrPortFrom(client, ephemeral(r)), Server: netip.AddrPortFrom(server, 22)},
		ClientISN: r.Uint32(), ServerISN: r.Uint32(), NoHandshake: true, NoClose: true}
	out = append(out, mid.Frames(at(80*time.Millisecond), []byte("SSH-2.0-OpenSSH_9.2\r\n"), []byte("SSH-2.0-OpenSSH_9.6\r\n"))...)

	// DNS query and answer.
	dnsSrv := netip.AddrPortFrom(netip.MustParseAddr("10.30.0.53"), 53)
	dnsCli := netip.AddrPortFrom(client, ephemeral(r))
	q := []byte{0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 8, 'i', 'n', 't', 'r', 'a', 'n', 'e', 't', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 1, 0, 1}
	a := append(append([]byte{}, q...), 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 10, 30, 0, 80)
	a[2], a[3], a[7] = 0x81, 0x80, 1
	out = append(out,
		testutil.Frame{Time: at(100 * time.Millisecond), Data: testutil.UDPPacket(dnsCli, dnsSrv, 0, q)},
		testutil.Frame{Time: at(101 * time.Millisecond), Data: testutil.UDPPacket(dnsSrv, dnsCli, 0, a)})

	// ICMP and ICMPv6 echo.
	v6c, v6s := netip.MustParseAddr("fd20::15"), netip.MustParseAddr("fd30::80")
	out = append(out,
		testutil.Frame{Time: at(120 * time.Millisecond), Data: testutil.ICMPEcho(client, server, false, 0x77, 1)},
		testutil.Frame{Time: at(121 * time.Millisecond), Data: testutil.ICMPEcho(server, client, true, 0x77, 1)},
		testutil.Frame{Time: at(122 * time.Millisecond), Data: testutil.ICMPEcho(v6c, v6s, false, 0x78, 1)},
		testutil.Frame{Time: at(123 * time.Millisecond), Data: testutil.ICMPEcho(v6s, v6c, true, 0x78, 1)})

	// TCP over IPv6.
	v6 := testutil.TCPConversation{Endpoints: testutil.Endpoints{
		Client: netip.AddrPortFrom(v6c, ephemeral(r)), Server: netip.AddrPortFrom(v6s, 443)},
		ClientISN: r.Uint32(), ServerISN: r.Uint32()}
	out = append(out, v6.Frames(at(150*time.Millisecond), []byte{0x16, 0x03, 0x01, 0x00, 0x05, 1, 0, 0, 1, 0})...)

	// A VLAN-tagged flow.
	vl := testutil.TCPConversation{Endpoints: testutil.Endpoints{
		Client: netip.AddrPortFrom(netip.MustParseAddr("10.40.0.7"), ephemeral(r)),
		Server: netip.AddrPortFrom(netip.MustParseAddr("10.40.0.1"), 25), VLAN: 40},
		ClientISN: r.Uint32(), ServerISN: r.Uint32()}
	out = append(out, vl.Frames(at(200*time.Millisecond), []byte("EHLO client.example\r\n"), []byte("250 mail.example\r\n"))...)

	// A 3000-byte UDP datagram in three IPv4 fragments (syslog to a collector).
	out = append(out, fragmentedUDP(netip.AddrPortFrom(client, 514), netip.AddrPortFrom(server, 514), 3000, 0x4242, at(250*time.Millisecond))...)
	return out
}

// fragmentedUDP builds one UDP datagram of n payload bytes split into IPv4
// fragments of at most 1480 bytes, sent in order.
func fragmentedUDP(src, dst netip.AddrPort, n int, id uint16, t time.Time) []testutil.Frame {
	payload := make([]byte, n)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
	udp := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
	_ = udp.SetNetworkLayerForChecksum(ip)
	// Serialize the whole transport datagram once, then cut it.
	buf := gopacket.NewSerializeBuffer()
	_ = gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, udp, gopacket.Payload(payload))
	dgram := buf.Bytes()
	var out []testutil.Frame
	for off := 0; off < len(dgram); off += 1480 {
		end := min(off+1480, len(dgram))
		fip := *ip
		fip.Id = id
		fip.FragOffset = uint16(off / 8)
		if end < len(dgram) {
			fip.Flags = layers.IPv4MoreFragments
		}
		eth := &layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 0, 1}, DstMAC: []byte{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
		out = append(out, testutil.Frame{Time: t, Data: testutil.Serialize(eth, &fip, gopacket.Payload(dgram[off:end]))})
		t = t.Add(50 * time.Microsecond)
	}
	return out
}
