// Command bareloop is the benchmark's yardstick: the least a Go program must
// do to classify flows in a capture (read with pcapgo over a 1 MiB buffer,
// decode with a DecodingLayerParser, count packets per 5-tuple in a map).
// rasentry's replay is compared with it in bench/run.sh.
package main

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

type tuple struct {
	a, b         netip.Addr
	sport, dport uint16
	proto        uint8
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: bareloop FILE.pcap")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	r, err := pcapgo.NewReader(bufio.NewReaderSize(f, 1<<20))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var (
		eth   layers.Ethernet
		dot1q layers.Dot1Q
		ip4   layers.IPv4
		ip6   layers.IPv6
		tcp   layers.TCP
		udp   layers.UDP
	)
	p := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &dot1q, &ip4, &ip6, &tcp, &udp)
	p.IgnoreUnsupported = true
	decoded := make([]gopacket.LayerType, 0, 8)
	flows := make(map[tuple]uint64)
	start := time.Now()
	var n uint64
	for {
		data, _, err := r.ZeroCopyReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			break
		}
		n++
		_ = p.DecodeLayers(data, &decoded)
		var t tuple
		for _, l := range decoded {
			switch l {
			case layers.LayerTypeIPv4:
				t.a, _ = netip.AddrFromSlice(ip4.SrcIP)
				t.b, _ = netip.AddrFromSlice(ip4.DstIP)
				t.proto = uint8(ip4.Protocol)
			case layers.LayerTypeIPv6:
				t.a, _ = netip.AddrFromSlice(ip6.SrcIP)
				t.b, _ = netip.AddrFromSlice(ip6.DstIP)
				t.proto = uint8(ip6.NextHeader)
			case layers.LayerTypeTCP:
				t.sport, t.dport = uint16(tcp.SrcPort), uint16(tcp.DstPort)
			case layers.LayerTypeUDP:
				t.sport, t.dport = uint16(udp.SrcPort), uint16(udp.DstPort)
			}
		}
		flows[t]++
	}
	el := time.Since(start)
	fmt.Printf("bareloop: %d packets, %d tuples, %.3f s, %.0f packets/s\n", n, len(flows), el.Seconds(), float64(n)/el.Seconds())
}
