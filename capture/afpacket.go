package capture

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/google/gopacket/afpacket"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// ErrTimeout is returned by Next of a live source when no packet arrived
// within the poll timeout. It is not an error of the source: the Packet
// returned with it carries only Time (the wall clock, the clock the kernel
// stamps packets with), so that the sensor can advance its flow clock and
// expire idle flows, then call Next again.
var ErrTimeout = errors.New("capture: no packet within the poll timeout")

// FanoutMode says how the kernel spreads packets over the sockets of a
// fanout group (packet(7), PACKET_FANOUT).
type FanoutMode int

// Fanout modes.
const (
	// FanoutHash sends both directions of a flow to the same socket (the
	// kernel's symmetric flow hash); IP fragments are reassembled first so
	// that they follow their flow. The default.
	FanoutHash FanoutMode = iota
	// FanoutLoadBalance deals packets round-robin; flows are split.
	FanoutLoadBalance
	// FanoutCPU sends a packet to the socket of the CPU that received it.
	FanoutCPU
)

// LiveOptions configures an AF_PACKET capture on one interface. The zero
// value of each field selects its default.
type LiveOptions struct {
	// Interface is the interface to capture on (required; "any" is not
	// supported, as its link type would differ per packet).
	Interface string
	// Snaplen is the number of bytes kept of each packet; longer packets
	// are truncated (Packet.Length keeps their wire length). Default 262144,
	// that is whole packets.
	Snaplen int
	// BlockSize is the size of one TPACKET_V3 ring block, a multiple of the
	// page size. Default 1 MiB.
	BlockSize int
	// NumBlocks is the number of ring blocks. Default 64 (a 64 MiB ring).
	NumBlocks int
	// BlockTimeout is how long the kernel waits before handing over a block
	// that is not full (tp_retire_blk_tov): the latency at low rates.
	// Default 10 ms.
	BlockTimeout time.Duration
	// PollTimeout is how long Next waits for a packet before returning
	// ErrTimeout. Default 100 ms.
	PollTimeout time.Duration
	// FanoutGroup, when not 0, joins the socket to this fanout group (an id
	// per network namespace): N sockets of one group, each read by its own
	// worker, share the interface's packets by FanoutMode. Other processes
	// may join the same group.
	FanoutGroup uint16
	// FanoutMode is how the group shares packets; default FanoutHash.
	FanoutMode FanoutMode
	// BPF, when not empty, is a classic BPF filter run in the kernel: only
	// the packets it accepts are captured. It is either the output of
	// `tcpdump -ddd` (a count line, then one "code jt jf k" line per
	// instruction), used as it is, or a pcap-filter(7) expression such as
	// "tcp port 3389 or udp port 3544". An expression is compiled by
	// libpcap when rasentry is built with the libpcap tag; otherwise by
	// running `tcpdump -ddd` on the interface (tcpdump must be installed).
	BPF string
	// AddVLANHeader puts back the 802.1Q tag that the NIC or driver took
	// off a frame (VLAN offload hands it to AF_PACKET beside the frame), so
	// that tagged traffic is seen as on the wire. It copies each tagged
	// frame.
	AddVLANHeader bool
	// Promisc puts the interface in promiscuous mode while the source is
	// open. The kernel undoes it when the socket closes, even if rasentry
	// dies (a PACKET_MR_PROMISC membership, not the interface flag).
	Promisc bool
}

const (
	defaultSnaplen      = 262144
	defaultBlockSize    = 1 << 20
	defaultNumBlocks    = 64
	defaultBlockTimeout = 10 * time.Millisecond
	defaultPollTimeout  = 100 * time.Millisecond
	frameSize           = 1 << 12 // TPACKET_V3 packs packets in blocks; this only sets tp_frame_nr
)

func (o *LiveOptions) setDefaults() {
	if o.Snaplen <= 0 {
		o.Snaplen = defaultSnaplen
	}
	if o.BlockSize <= 0 {
		o.BlockSize = defaultBlockSize
	}
	if o.NumBlocks <= 0 {
		o.NumBlocks = defaultNumBlocks
	}
	if o.BlockTimeout <= 0 {
		o.BlockTimeout = defaultBlockTimeout
	}
	if o.PollTimeout <= 0 {
		o.PollTimeout = defaultPollTimeout
	}
}

// liveSource reads one AF_PACKET socket.
type liveSource struct {
	mu       sync.Mutex // held by Next while it reads the ring; Close waits for it
	tp       *afpacket.TPacket
	promisc  int // socket holding the promiscuous membership, or -1
	name     string
	tmpl     Packet // LinkType and Interface of every packet
	n        uint64
	closed   atomic.Bool
	packets  atomic.Uint64
	bytes    atomic.Uint64
	errors   atomic.Uint64
	statsErr atomic.Bool
	// The kernel's counters as last read, kept for Stats after Close.
	lastDrops, lastFreezes atomic.Uint64
}

// OpenLive opens an AF_PACKET TPACKET_V3 capture on an interface. It needs
// CAP_NET_RAW. Packets carry the kernel's receive timestamp and the link type
// of the interface (Ethernet for Ethernet, veth, bridges and loopback; raw IP
// for tun and other interfaces without a link-layer header). Next returns
// ErrTimeout when no packet came within the poll timeout. Stats reports the
// kernel's drop and queue-freeze counters (kept after Close). Next is for
// one goroutine; Stats may be called beside it (a metrics goroutine), but
// not at the same time as Close; Close may be called from another
// goroutine and waits for a Next in progress (at most the poll timeout).
func OpenLive(opts LiveOptions) (Source, error) {
	opts.setDefaults()
	if opts.Interface == "" || opts.Interface == "any" {
		return nil, fmt.Errorf("capture: live capture needs an interface name (not %q)", opts.Interface)
	}
	name := "interface " + opts.Interface
	linkType, err := interfaceLinkType(opts.Interface)
	if err != nil {
		return nil, fmt.Errorf("capture: %s: %w", name, err)
	}
	tp, err := afpacket.NewTPacket(
		afpacket.OptInterface(opts.Interface),
		afpacket.OptFrameSize(frameSize),
		afpacket.OptBlockSize(opts.BlockSize),
		afpacket.OptNumBlocks(opts.NumBlocks),
		afpacket.OptBlockTimeout(opts.BlockTimeout),
		afpacket.OptPollTimeout(opts.PollTimeout),
		afpacket.OptTPacketVersion(afpacket.TPacketVersion3),
		afpacket.OptAddVLANHeader(opts.AddVLANHeader),
	)
	if err != nil {
		return nil, fmt.Errorf("capture: %s: opening AF_PACKET socket: %w%s", name, err, permissionHint(err, "CAP_NET_RAW"))
	}
	s := &liveSource{tp: tp, promisc: -1, name: name}
	s.tmpl.LinkType = linkEthernet
	if linkType == linkRaw {
		s.tmpl.LinkType = linkRaw
	}
	fail := func(what string, err error) (Source, error) {
		s.closeLocked()
		return nil, fmt.Errorf("capture: %s: %s: %w", name, what, err)
	}
	// A filter that returns opts.Snaplen for accepted packets also sets the
	// snap length (AF_PACKET has no other knob for it in TPACKET_V3).
	if opts.BPF != "" || opts.Snaplen != defaultSnaplen {
		prog, err := compileFilter(opts.BPF, opts.Interface, linkType, opts.Snaplen)
		if err != nil {
			return fail("BPF filter", err)
		}
		// The socket has been receiving since it was bound: shut it with
		// a filter that takes nothing, drop what came in meanwhile, then
		// attach the real filter, so that no packet escapes it (as libpcap
		// does).
		if err := tp.SetBPF(rejectAll); err != nil {
			return fail("attaching BPF filter", err)
		}
		for {
			if _, _, err := tp.ZeroCopyReadPacketData(); err != nil {
				break // ErrTimeout: the ring is empty
			}
		}
		if err := tp.SetBPF(prog); err != nil {
			return fail("attaching BPF filter", err)
		}
	}
	if opts.FanoutGroup != 0 {
		var mode afpacket.FanoutType
		switch opts.FanoutMode {
		case FanoutHash:
			mode = afpacket.FanoutHash | afpacket.FanoutHashWithDefrag
		case FanoutLoadBalance:
			mode = afpacket.FanoutLoadBalance
		case FanoutCPU:
			mode = afpacket.FanoutCPU
		default:
			return fail("fanout", fmt.Errorf("unknown mode %d", opts.FanoutMode))
		}
		if err := tp.SetFanout(mode, opts.FanoutGroup); err != nil {
			return fail(fmt.Sprintf("joining fanout group %d", opts.FanoutGroup), err)
		}
	}
	if opts.Promisc {
		fd, err := promiscuous(opts.Interface)
		if err != nil {
			return fail("promiscuous mode", err)
		}
		s.promisc = fd
	}
	return s, nil
}

// Link types of live captures (tcpdump.org LINKTYPE_ETHERNET and
// LINKTYPE_RAW), untyped constants so that they fit Packet.LinkType.
const (
	linkEthernet = 1
	linkRaw      = 101
)

// Next returns the next packet; its Data is valid until the next call.
func (s *liveSource) Next() (Packet, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return Packet{}, fmt.Errorf("capture: %s: source is closed", s.name)
	}
	data, ci, err := s.tp.ZeroCopyReadPacketData()
	if err != nil {
		if errors.Is(err, afpacket.ErrTimeout) {
			return Packet{Time: time.Now()}, ErrTimeout
		}
		s.errors.Add(1)
		return Packet{}, fmt.Errorf("capture: %s: reading: %w", s.name, err)
	}
	s.n++
	p := s.tmpl
	p.Data, p.Time, p.Length, p.Number = data, ci.Timestamp, ci.Length, s.n
	s.packets.Add(1)
	s.bytes.Add(uint64(len(data)))
	return p, nil
}

// Stats returns the packets and bytes returned so far and the kernel's
// counters: packets dropped because the ring was full, and the times the
// ring was frozen for that reason.
func (s *liveSource) Stats() Stats {
	st := Stats{Packets: s.packets.Load(), Bytes: s.bytes.Load(), Errors: s.errors.Load()}
	if s.closed.Load() {
		st.KernelDrops, st.KernelFreezes = s.lastDrops.Load(), s.lastFreezes.Load()
		return st
	}
	// Not under s.mu, which Next holds while it polls: the kernel's
	// counters are read with getsockopt, safe beside a reader.
	_, v3, err := s.tp.SocketStats()
	if err != nil {
		if !s.statsErr.Swap(true) {
			s.errors.Add(1)
		}
		return st
	}
	st.KernelDrops = uint64(v3.Drops())
	st.KernelFreezes = uint64(v3.QueueFreezes())
	s.lastDrops.Store(st.KernelDrops)
	s.lastFreezes.Store(st.KernelFreezes)
	return st
}

// Close releases the socket and its ring, and with them the promiscuous
// mode it asked for.
func (s *liveSource) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeLocked()
	return nil
}

func (s *liveSource) closeLocked() {
	if s.closed.Load() {
		return
	}
	s.Stats() // keep the kernel's last counters
	s.closed.Store(true)
	s.tp.Close()
	if s.promisc >= 0 {
		unix.Close(s.promisc)
		s.promisc = -1
	}
}

// Name returns "interface NAME".
func (s *liveSource) Name() string { return s.name }

// interfaceLinkType maps the interface's ARPHRD type to the link type of
// what an AF_PACKET SOCK_RAW socket reads from it.
func interfaceLinkType(ifname string) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	// struct ifreq: 16 bytes of name, then the union whose sockaddr's
	// sa_family holds the ARPHRD type for SIOCGIFHWADDR.
	var ifr [40]byte
	if len(ifname) >= unix.IFNAMSIZ {
		return 0, fmt.Errorf("interface name too long")
	}
	copy(ifr[:], ifname)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCGIFHWADDR, uintptr(unsafe.Pointer(&ifr[0]))); e != 0 {
		if e == unix.ENODEV {
			return 0, fmt.Errorf("no such interface")
		}
		return 0, e
	}
	arphrd := *(*uint16)(unsafe.Pointer(&ifr[unix.IFNAMSIZ]))
	switch arphrd {
	case unix.ARPHRD_ETHER, unix.ARPHRD_LOOPBACK:
		return linkEthernet, nil
	case unix.ARPHRD_NONE, unix.ARPHRD_TUNNEL, unix.ARPHRD_TUNNEL6, unix.ARPHRD_SIT, unix.ARPHRD_IPGRE, unix.ARPHRD_RAWIP:
		return linkRaw, nil
	}
	return 0, fmt.Errorf("unsupported interface type (ARPHRD %d): capture on an Ethernet-like or raw IP interface", arphrd)
}

// promiscuous asks for promiscuous mode through a packet socket that
// receives nothing (protocol 0) and holds a PACKET_MR_PROMISC membership:
// the kernel counts it and removes it when the socket closes.
func promiscuous(ifname string) (int, error) {
	ifi, err := interfaceIndex(ifname)
	if err != nil {
		return -1, err
	}
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	mreq := unix.PacketMreq{Ifindex: int32(ifi), Type: unix.PACKET_MR_PROMISC}
	if err := unix.SetsockoptPacketMreq(fd, unix.SOL_PACKET, unix.PACKET_ADD_MEMBERSHIP, &mreq); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func interfaceIndex(ifname string) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(ifname)
	if err != nil {
		return 0, err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, err
	}
	return int(ifr.Uint32()), nil
}

// permissionHint adds a note naming the capability when err is a
// permission error.
func permissionHint(err error, capability string) string {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return " (needs " + capability + ": run as root or grant it with setcap)"
	}
	return ""
}

// parseRawBPF parses `tcpdump -ddd` output: the instruction count, then
// one "code jt jf k" line (decimal) per instruction. ok is false when the
// text is not in that form (then it is an expression).
func parseRawBPF(text string) (prog []bpf.RawInstruction, ok bool, err error) {
	fields := strings.Fields(text)
	if len(fields) == 0 {
		return nil, false, nil
	}
	var n int
	if _, err := fmt.Sscanf(fields[0], "%d", &n); err != nil || fmt.Sprint(n) != fields[0] {
		return nil, false, nil
	}
	if len(fields) != 1+4*n {
		// A number followed by something else is an expression ("1" alone is
		// not a useful one either way).
		return nil, false, nil
	}
	if n == 0 || n > maxBPFInstructions {
		return nil, true, fmt.Errorf("program of %d instructions", n)
	}
	prog = make([]bpf.RawInstruction, n)
	for i := range prog {
		var code, jt, jf, k uint64
		for j, dst := range []*uint64{&code, &jt, &jf, &k} {
			f := fields[1+4*i+j]
			if _, err := fmt.Sscanf(f, "%d", dst); err != nil {
				return nil, true, fmt.Errorf("instruction %d: %q is not a number", i, f)
			}
		}
		if code > 0xffff || jt > 0xff || jf > 0xff || k > 0xffffffff {
			return nil, true, fmt.Errorf("instruction %d out of range", i)
		}
		prog[i] = bpf.RawInstruction{Op: uint16(code), Jt: uint8(jt), Jf: uint8(jf), K: uint32(k)}
	}
	return prog, true, nil
}

// compileFilter returns the socket filter for a BPF option: raw
// instructions as given, an expression compiled (compileExpr), or, for an
// empty filter, a program that accepts every packet truncated to snaplen.
func compileFilter(text, ifname string, linkType, snaplen int) ([]bpf.RawInstruction, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: uint32(snaplen)}})
	}
	prog, ok, err := parseRawBPF(text)
	if ok || err != nil {
		return prog, err
	}
	return compileExpr(text, ifname, linkType, snaplen)
}

// rejectAll is a socket filter that accepts no packet.
var rejectAll = []bpf.RawInstruction{{Op: 0x06, K: 0}} // ret #0

// maxBPFInstructions is the kernel's limit on a classic BPF program
// (BPF_MAXINSNS).
const maxBPFInstructions = 4096
