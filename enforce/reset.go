package enforce

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"
)

// ResetOptions configures the reset enforcer.
type ResetOptions struct {
	// Interface is the inject interface: where Ethernet frames go for blocks
	// that carry MAC addresses (a SPAN deployment's inject port, on the
	// segment of the monitored hosts). With no Interface, or for blocks
	// without MACs, resets go out as raw IP packets that the kernel routes
	// (rasentry on a host that routes to both ends); with an Interface they
	// are bound to it.
	Interface string
	// Repeat is how many copies of each reset are sent (a lost reset leaves
	// the connection alive). Default 2.
	Repeat int
}

// Reset ends TCP connections by sending a reset to each end, forged as
// coming from the other end, with the sequence number that end expects
// (RFC 793 3.4; RFC 5961 3.2: Linux and Windows accept a reset only when
// its sequence number is the next expected one). It needs CAP_NET_RAW. It
// blocks the one connection, now: later connections are not stopped (pair
// it with policy alerts, or use NFTables on a gateway). Blocks that are not
// TCP, or whose sequence numbers are unknown, are skipped.
type Reset struct {
	counters
	opts   ResetOptions
	ifi    int
	mu     sync.Mutex
	packet int // AF_PACKET socket, or -1
	raw4   int // raw IPv4 socket (IPPROTO_RAW), or -1
	raw6   int
	buf    gopacket.SerializeBuffer
}

// NewReset opens the sockets the reset enforcer sends through.
func NewReset(opts ResetOptions) (*Reset, error) {
	if opts.Repeat <= 0 {
		opts.Repeat = 2
	}
	r := &Reset{opts: opts, packet: -1, raw4: -1, raw6: -1, buf: gopacket.NewSerializeBuffer()}
	fail := func(what string, err error) (*Reset, error) {
		r.Close()
		hint := ""
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			hint = " (needs CAP_NET_RAW: run as root or grant it with setcap)"
		}
		return nil, fmt.Errorf("enforce: reset: %s: %w%s", what, err, hint)
	}
	var err error
	if opts.Interface != "" {
		ifc, err := net.InterfaceByName(opts.Interface)
		if err != nil {
			return fail("inject interface", err)
		}
		r.ifi = ifc.Index
		// Protocol 0: the socket only sends.
		if r.packet, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0); err != nil {
			return fail("AF_PACKET socket", err)
		}
		if err := unix.Bind(r.packet, &unix.SockaddrLinklayer{Ifindex: r.ifi}); err != nil {
			return fail("binding to "+opts.Interface, err)
		}
	}
	if r.raw4, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW); err != nil {
		return fail("raw IPv4 socket", err)
	}
	if r.raw6, err = unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW); err != nil {
		return fail("raw IPv6 socket", err)
	}
	if opts.Interface != "" {
		for _, fd := range []int{r.raw4, r.raw6} {
			if err := unix.BindToDevice(fd, opts.Interface); err != nil {
				return fail("binding raw socket to "+opts.Interface, err)
			}
		}
	}
	return r, nil
}

// Name returns "reset".
func (r *Reset) Name() string { return "reset" }

// Block sends resets to both ends of a TCP connection. It reports true
// when they were sent (the connection is then over, if the sequence
// numbers were current).
func (r *Reset) Block(b Block) (bool, error) {
	if b.Proto != ProtoTCP || !b.SeqKnown {
		r.skipped.Add(1)
		return false, nil
	}
	c, s := b.Client.Addr().Unmap(), b.Server.Addr().Unmap()
	if c.Is4() != s.Is4() || !c.IsValid() || !s.IsValid() {
		r.errors.Add(1)
		return false, fmt.Errorf("enforce: reset: %s: addresses of different families", b)
	}
	cl, sv := netip.AddrPortFrom(c, b.Client.Port()), netip.AddrPortFrom(s, b.Server.Port())
	l2 := r.packet >= 0 && len(b.ClientMAC) == 6 && len(b.ServerMAC) == 6
	r.mu.Lock()
	defer r.mu.Unlock()
	// To the server, as from the client; to the client, as from the server.
	for _, d := range []struct {
		src, dst       netip.AddrPort
		seq, ack       uint32
		srcMAC, dstMAC net.HardwareAddr
	}{
		{cl, sv, b.ClientNextSeq, b.ServerNextSeq, b.ClientMAC, b.ServerMAC},
		{sv, cl, b.ServerNextSeq, b.ClientNextSeq, b.ServerMAC, b.ClientMAC},
	} {
		frame, err := r.build(d.src, d.dst, d.seq, d.ack, l2, d.srcMAC, d.dstMAC)
		if err != nil {
			r.errors.Add(1)
			return false, fmt.Errorf("enforce: reset: %s: %w", b, err)
		}
		for i := 0; i < r.opts.Repeat; i++ {
			if err := r.send(frame, d.dst.Addr(), l2); err != nil {
				r.errors.Add(1)
				return false, fmt.Errorf("enforce: reset: %s: sending to %s: %w", b, d.dst, err)
			}
		}
	}
	r.blocks.Add(1)
	return true, nil
}

// build serializes one RST+ACK segment (with an Ethernet header for l2).
func (r *Reset) build(src, dst netip.AddrPort, seq, ack uint32, l2 bool, srcMAC, dstMAC net.HardwareAddr) ([]byte, error) {
	tcp := &layers.TCP{SrcPort: layers.TCPPort(src.Port()), DstPort: layers.TCPPort(dst.Port()),
		Seq: seq, Ack: ack, RST: true, ACK: true, DataOffset: 5}
	var ls []gopacket.SerializableLayer
	var ip gopacket.NetworkLayer
	etype := layers.EthernetTypeIPv4
	if src.Addr().Is4() {
		v4 := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Protocol: layers.IPProtocolTCP, Flags: layers.IPv4DontFragment,
			SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
		ip = v4
		ls = append(ls, v4)
	} else {
		etype = layers.EthernetTypeIPv6
		v6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP,
			SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
		ip = v6
		ls = append(ls, v6)
	}
	if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
		return nil, err
	}
	ls = append(ls, tcp)
	if l2 {
		ls = append([]gopacket.SerializableLayer{&layers.Ethernet{SrcMAC: srcMAC, DstMAC: dstMAC, EthernetType: etype}}, ls...)
	}
	if err := gopacket.SerializeLayers(r.buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		return nil, err
	}
	return r.buf.Bytes(), nil
}

func (r *Reset) send(frame []byte, dst netip.Addr, l2 bool) error {
	switch {
	case l2:
		proto := uint16(unix.ETH_P_IP)
		if dst.Is6() {
			proto = unix.ETH_P_IPV6
		}
		// sll_protocol is in network byte order.
		return unix.Sendto(r.packet, frame, 0, &unix.SockaddrLinklayer{Ifindex: r.ifi, Protocol: proto<<8 | proto>>8})
	case dst.Is4():
		return unix.Sendto(r.raw4, frame, 0, &unix.SockaddrInet4{Addr: dst.As4()})
	default:
		// IPPROTO_RAW IPv6 sockets take the IPv6 header from the data; the
		// port must be 0.
		return unix.Sendto(r.raw6, frame, 0, &unix.SockaddrInet6{Addr: dst.As16()})
	}
}

// Stats returns the counters.
func (r *Reset) Stats() Stats { return r.stats() }

// Close closes the sockets.
func (r *Reset) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, fd := range []*int{&r.packet, &r.raw4, &r.raw6} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
	return nil
}
