package capture

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	nfqueue "github.com/florianl/go-nfqueue/v2"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// InlineVerdict is the Verdict of a packet from an inline (NFQUEUE) source.
// Exactly one of its methods takes effect per packet: the first call gives
// the verdict, later calls return ErrVerdictGiven and change nothing.
type InlineVerdict interface {
	Verdict
	// Offload accepts the packet and marks its connection (conntrack mark)
	// so that the rules of InstallQueueRules accept the connection's later
	// packets in the kernel, without queueing them: for flows that are
	// decided and allowed. Without those rules it is a plain Accept.
	Offload() error
	// AcceptAndMark accepts the packet with its packet mark (skb->mark) set
	// to mark, for rules of the operator's own that act on it.
	AcceptAndMark(mark uint32) error
}

// ErrVerdictGiven is returned by a verdict method when the packet already
// has its verdict (given by the sensor, or by the source after the verdict
// timeout).
var ErrVerdictGiven = errors.New("capture: verdict already given")

// DefaultOffloadMark is the mark bit that tells the kernel a connection is
// offloaded (decided and allowed) when QueueOptions and QueueRules leave
// OffloadMark zero.
const DefaultOffloadMark uint32 = 0x40000000

// QueueOptions configures an NFQUEUE source. The zero value of each field
// selects its default.
type QueueOptions struct {
	// Queue is the first queue number (the N of --queue N[:M]).
	Queue uint16
	// Count is the number of queues, Queue to Queue+Count-1, each read by a
	// reader of its own. Default 1.
	Count uint16
	// MaxQueueLen is how many packets per queue may wait for a verdict in
	// the kernel. Default 4096.
	MaxQueueLen uint32
	// MaxPacketLen is how many bytes of each packet are copied to rasentry.
	// Default 65535 (whole packets).
	MaxPacketLen uint32
	// FailClosed makes the kernel drop packets when the queue is full or
	// cannot be delivered. By default it accepts them (fail-open,
	// NFQA_CFG_F_FAIL_OPEN): the network keeps working when rasentry falls
	// behind, and those packets are not inspected.
	FailClosed bool
	// VerdictTimeout is how long a packet may wait for its verdict; then
	// the source accepts it itself (counted in QueueStats.VerdictTimeouts),
	// so that a packet the sensor lost never holds the queue. Default 2 s.
	VerdictTimeout time.Duration
	// PollTimeout is how long Next waits for a packet before returning
	// ErrTimeout. Default 100 ms.
	PollTimeout time.Duration
	// OffloadMark is the mark bit (or bits) that Offload sets; it must match
	// QueueRules.OffloadMark. Default DefaultOffloadMark.
	OffloadMark uint32
	// NetNS, when not 0, is a descriptor of the network namespace whose
	// queues to read (an open /var/run/netns/NAME); 0 is the caller's.
	NetNS int
}

func (o *QueueOptions) setDefaults() {
	if o.Count == 0 {
		o.Count = 1
	}
	if o.MaxQueueLen == 0 {
		o.MaxQueueLen = 4096
	}
	if o.MaxPacketLen == 0 {
		o.MaxPacketLen = 0xffff
	}
	if o.VerdictTimeout <= 0 {
		o.VerdictTimeout = 2 * time.Second
	}
	if o.PollTimeout <= 0 {
		o.PollTimeout = defaultPollTimeout
	}
	if o.OffloadMark == 0 {
		o.OffloadMark = DefaultOffloadMark
	}
}

// QueueStats are an NFQUEUE source's detailed counters.
type QueueStats struct {
	Packets, Bytes uint64
	// Verdicts given, by kind.
	Accepted, Dropped, Offloaded uint64
	// VerdictTimeouts counts packets the source accepted itself because no
	// verdict came within VerdictTimeout (or because the source closed).
	VerdictTimeouts uint64
	// VerdictErrors counts verdicts the kernel did not take (the packet is
	// then handled by the queue's fail-open or fail-closed setting).
	VerdictErrors uint64
	// NoBuffers counts ENOBUFS from the netlink socket: the kernel could not
	// deliver packets to rasentry (they were accepted, or dropped with
	// FailClosed).
	NoBuffers uint64
	// ReadErrors counts other errors reading the queue.
	ReadErrors uint64
	// OffloadLoops counts packets that came back already carrying the
	// offload mark (the queue rules are not rasentry's): accepted plainly.
	OffloadLoops uint64
	// KernelQueueDropped and KernelUserDropped are the kernel's counters
	// (/proc/net/netfilter/nfnetlink_queue): packets dropped because the
	// queue was full (FailClosed) or could not be sent to rasentry.
	KernelQueueDropped, KernelUserDropped uint64
}

type queueSource struct {
	opts    QueueOptions
	name    string
	readers []*queueReader
	ch      chan Packet
	ctx     context.Context // go-nfqueue's: cancelling it unbinds
	cancel  context.CancelFunc
	stop    chan struct{} // closed first by Close
	timer   *time.Timer
	closing atomic.Bool
	once    sync.Once
	wg      sync.WaitGroup
	n       uint64
	proc    *os.File // the namespace's nfnetlink_queue statistics

	mu          sync.Mutex // guards outstanding
	outstanding []*queuedPacket
	head        int

	packets, bytes                     atomic.Uint64
	accepted, dropped, offloaded       atomic.Uint64
	timeouts, verdictErrs, noBufs      atomic.Uint64
	readErrs, offloadLoops             atomic.Uint64
	procMu                             sync.Mutex
	kernelQueueDropped, kernelUserDrop uint64
}

type queueReader struct {
	src *queueSource
	nf  *nfqueue.Nfqueue
	num uint16
	idx int
}

// queuedPacket is the verdict handle of one queued packet.
type queuedPacket struct {
	r     *queueReader
	id    uint32
	mark  uint32
	at    time.Time
	state atomic.Uint32 // 0 waiting, 1 given
}

// OpenQueue binds to NFQUEUE queues and returns their packets as a Source.
// It needs CAP_NET_ADMIN. Packets start at the IP header (LinkType 101,
// raw IP); Interface is the queue's position in the range; Time is the
// kernel's timestamp when it has one, else the time of arrival. Every
// packet's Verdict is an InlineVerdict: the sensor gives each exactly one
// verdict; one not given within VerdictTimeout is given by the source
// (Accept). Read and verdict errors are counted, never fatal. Close accepts
// every packet still waiting, then unbinds; the queue rules' bypass flag
// lets traffic through while no program is bound.
func OpenQueue(opts QueueOptions) (Source, error) {
	opts.setDefaults()
	if int(opts.Queue)+int(opts.Count)-1 > 0xffff {
		return nil, fmt.Errorf("capture: queues %d to %d: past 65535", opts.Queue, int(opts.Queue)+int(opts.Count)-1)
	}
	s := &queueSource{opts: opts, ch: make(chan Packet, 1024), stop: make(chan struct{})}
	if opts.Count == 1 {
		s.name = fmt.Sprintf("queue %d", opts.Queue)
	} else {
		s.name = fmt.Sprintf("queues %d:%d", opts.Queue, opts.Queue+opts.Count-1)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	flags := uint32(nfqueue.NfQaCfgFlagFailOpen)
	if opts.FailClosed {
		flags = 0
	}
	err := inNetNS(opts.NetNS, func() error {
		if f, err := os.Open("/proc/thread-self/net/netfilter/nfnetlink_queue"); err == nil {
			s.proc = f
		}
		for i := 0; i < int(opts.Count); i++ {
			num := opts.Queue + uint16(i)
			nf, err := nfqueue.Open(&nfqueue.Config{
				NfQueue:      num,
				MaxQueueLen:  opts.MaxQueueLen,
				MaxPacketLen: opts.MaxPacketLen,
				Copymode:     nfqueue.NfQnlCopyPacket,
				Flags:        flags,
				WriteTimeout: 100 * time.Millisecond,
			})
			if err != nil {
				return fmt.Errorf("queue %d: %w%s", num, err, permissionHint(err, "CAP_NET_ADMIN"))
			}
			r := &queueReader{src: s, nf: nf, num: num, idx: i}
			s.readers = append(s.readers, r)
			// A bigger receive buffer absorbs bursts (ENOBUFS otherwise).
			_ = nf.Con.SetReadBuffer(8 << 20)
			if err := nf.RegisterWithErrorFunc(s.ctx, r.packet, r.readError); err != nil {
				return fmt.Errorf("queue %d: binding: %w%s", num, err, permissionHint(err, "CAP_NET_ADMIN"))
			}
		}
		return nil
	})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("capture: %s: %w", s.name, err)
	}
	s.wg.Add(1)
	go s.reap()
	return s, nil
}

// packet is go-nfqueue's callback for one queued packet.
func (r *queueReader) packet(a nfqueue.Attribute) int {
	s := r.src
	if a.PacketID == nil {
		return 0
	}
	v := &queuedPacket{r: r, id: *a.PacketID, at: time.Now()}
	if a.Mark != nil {
		v.mark = *a.Mark
	}
	if s.closing.Load() {
		v.give(nfqueue.NfAccept, nil)
		return 0
	}
	var data []byte
	if a.Payload != nil {
		data = *a.Payload
	}
	p := Packet{Data: data, Time: v.at, Length: len(data), LinkType: linkRaw, Interface: r.idx, Verdict: v}
	if a.Timestamp != nil && !a.Timestamp.IsZero() {
		p.Time = *a.Timestamp
	}
	if a.CapLen != nil && int(*a.CapLen) > len(data) {
		p.Length = int(*a.CapLen)
	}
	s.mu.Lock()
	s.outstanding = append(s.outstanding, v)
	s.mu.Unlock()
	select {
	case s.ch <- p:
	case <-s.stop:
		v.give(nfqueue.NfAccept, nil)
	}
	return 0
}

// readError is go-nfqueue's error callback: errors are counted and reading
// goes on, except when the source is closing.
func (r *queueReader) readError(err error) int {
	s := r.src
	if s.closing.Load() || s.ctx.Err() != nil {
		return 1
	}
	if errors.Is(err, unix.ENOBUFS) {
		s.noBufs.Add(1)
		return 0
	}
	var op *netlink.OpError
	if errors.As(err, &op) && op.Timeout() {
		return 0
	}
	s.readErrs.Add(1)
	// Do not spin on an error that repeats.
	time.Sleep(10 * time.Millisecond)
	return 0
}

// give sends the verdict if none was given yet.
func (v *queuedPacket) give(verdict int, opts []nfqueue.VerdictOption) error {
	if !v.state.CompareAndSwap(0, 1) {
		return ErrVerdictGiven
	}
	s := v.r.src
	var err error
	if len(opts) > 0 {
		err = v.r.nf.SetVerdictWithOption(v.id, verdict, opts...)
	} else {
		err = v.r.nf.SetVerdict(v.id, verdict)
	}
	if err != nil {
		s.verdictErrs.Add(1)
		return fmt.Errorf("capture: %s: verdict for packet %d: %w", s.name, v.id, err)
	}
	return nil
}

// Accept lets the packet through.
func (v *queuedPacket) Accept() error {
	err := v.give(nfqueue.NfAccept, nil)
	if err == nil {
		v.r.src.accepted.Add(1)
	}
	return err
}

// Drop discards the packet.
func (v *queuedPacket) Drop() error {
	err := v.give(nfqueue.NfDrop, nil)
	if err == nil {
		v.r.src.dropped.Add(1)
	}
	return err
}

// Offload marks the packet with the offload bit and gives it NF_REPEAT:
// the kernel runs the queue chain again, whose first rule copies the bit to
// the connection's mark and accepts; the connection's later packets match
// the conntrack mark and are accepted before the queue rule.
func (v *queuedPacket) Offload() error {
	s := v.r.src
	bit := s.opts.OffloadMark
	if v.mark&bit == bit {
		// It came back marked: the rules did not take it (not ours).
		err := v.give(nfqueue.NfAccept, nil)
		if err == nil {
			s.offloadLoops.Add(1)
			s.accepted.Add(1)
		}
		return err
	}
	err := v.give(nfqueue.NfRepeat, []nfqueue.VerdictOption{nfqueue.WithMark(v.mark | bit)})
	if err == nil {
		s.offloaded.Add(1)
	}
	return err
}

// AcceptAndMark accepts the packet with its mark set to mark.
func (v *queuedPacket) AcceptAndMark(mark uint32) error {
	err := v.give(nfqueue.NfAccept, []nfqueue.VerdictOption{nfqueue.WithMark(mark)})
	if err == nil {
		v.r.src.accepted.Add(1)
	}
	return err
}

// reap accepts packets whose verdict is overdue and forgets those that
// have one.
func (s *queueSource) reap() {
	defer s.wg.Done()
	period := s.opts.VerdictTimeout / 4
	if period > 250*time.Millisecond {
		period = 250 * time.Millisecond
	}
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.expire(now.Add(-s.opts.VerdictTimeout))
		}
	}
}

// expire gives Accept to waiting packets queued before cutoff (all of them
// for a zero cutoff) and drops finished ones from the list.
func (s *queueSource) expire(cutoff time.Time) {
	s.mu.Lock()
	var overdue []*queuedPacket
	for s.head < len(s.outstanding) {
		v := s.outstanding[s.head]
		if v.state.Load() == 0 {
			if !cutoff.IsZero() && v.at.After(cutoff) {
				break
			}
			overdue = append(overdue, v)
		}
		s.outstanding[s.head] = nil
		s.head++
	}
	if s.head > 1024 && s.head*2 > len(s.outstanding) {
		n := copy(s.outstanding, s.outstanding[s.head:])
		clear(s.outstanding[n:])
		s.outstanding = s.outstanding[:n]
		s.head = 0
	}
	s.mu.Unlock()
	for _, v := range overdue {
		if v.give(nfqueue.NfAccept, nil) == nil {
			s.timeouts.Add(1)
		}
	}
}

// Next returns the next queued packet. Its Data stays valid after later
// calls (each packet has its own copy).
func (s *queueSource) Next() (Packet, error) {
	if s.timer == nil {
		s.timer = time.NewTimer(s.opts.PollTimeout)
	} else {
		s.timer.Reset(s.opts.PollTimeout)
	}
	t := s.timer
	defer t.Stop()
	select {
	case p := <-s.ch:
		s.n++
		p.Number = s.n
		s.packets.Add(1)
		s.bytes.Add(uint64(len(p.Data)))
		return p, nil
	case <-t.C:
		return Packet{Time: time.Now()}, ErrTimeout
	case <-s.stop:
		return Packet{}, fmt.Errorf("capture: %s: source is closed", s.name)
	}
}

// QueueStats returns the detailed counters.
func (s *queueSource) QueueStats() QueueStats {
	st := QueueStats{
		Packets: s.packets.Load(), Bytes: s.bytes.Load(),
		Accepted: s.accepted.Load(), Dropped: s.dropped.Load(), Offloaded: s.offloaded.Load(),
		VerdictTimeouts: s.timeouts.Load(), VerdictErrors: s.verdictErrs.Load(),
		NoBuffers: s.noBufs.Load(), ReadErrors: s.readErrs.Load(), OffloadLoops: s.offloadLoops.Load(),
	}
	st.KernelQueueDropped, st.KernelUserDropped = s.kernelCounters()
	return st
}

// Stats maps the detailed counters onto the common ones: KernelDrops are
// the kernel's queue and user drops, Errors the verdict, ENOBUFS and read
// errors.
func (s *queueSource) Stats() Stats {
	q := s.QueueStats()
	return Stats{
		Packets: q.Packets, Bytes: q.Bytes,
		KernelDrops: q.KernelQueueDropped + q.KernelUserDropped,
		Errors:      q.VerdictErrors + q.NoBuffers + q.ReadErrors,
	}
}

// kernelCounters sums queue_dropped and user_dropped of this source's
// queues from /proc/net/netfilter/nfnetlink_queue ("queue portid waiting
// copy_mode copy_range queue_dropped user_dropped id 1" per line). The last
// values read are kept, so the counters survive Close.
func (s *queueSource) kernelCounters() (queueDropped, userDropped uint64) {
	s.procMu.Lock()
	defer s.procMu.Unlock()
	if s.proc == nil || s.closing.Load() {
		return s.kernelQueueDropped, s.kernelUserDrop
	}
	if _, err := s.proc.Seek(0, 0); err != nil {
		return s.kernelQueueDropped, s.kernelUserDrop
	}
	var qd, ud uint64
	sc := bufio.NewScanner(s.proc)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 7 {
			continue
		}
		num, err := strconv.Atoi(f[0])
		if err != nil || num < int(s.opts.Queue) || num >= int(s.opts.Queue)+int(s.opts.Count) {
			continue
		}
		a, _ := strconv.ParseUint(f[5], 10, 64)
		b, _ := strconv.ParseUint(f[6], 10, 64)
		qd += a
		ud += b
	}
	s.kernelQueueDropped, s.kernelUserDrop = qd, ud
	return qd, ud
}

// Close accepts every packet still waiting for its verdict, then unbinds
// from the queues.
func (s *queueSource) Close() error {
	s.once.Do(func() {
		s.kernelCounters()
		// From here the callbacks accept new packets at once, and those
		// blocked handing one over accept it.
		s.closing.Store(true)
		close(s.stop)
		s.wg.Wait()
		// Every packet still waiting, read by the sensor or not.
		s.expire(time.Time{})
		for len(s.ch) > 0 {
			if p := <-s.ch; p.Verdict != nil {
				p.Verdict.Accept()
			}
		}
		// Only now unbind: the kernel drops what is still queued then.
		s.cancel()
		for _, r := range s.readers {
			r.nf.Close()
		}
		s.procMu.Lock()
		if s.proc != nil {
			s.proc.Close()
			s.proc = nil
		}
		s.procMu.Unlock()
	})
	return nil
}

// Name returns "queue N" or "queues N:M".
func (s *queueSource) Name() string { return s.name }

// QueueStatsReporter is implemented by the NFQUEUE source (for the summary and
// metrics).
type QueueStatsReporter interface {
	QueueStats() QueueStats
}
