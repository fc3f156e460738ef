package capture

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// OpenLiveMulti opens one AF_PACKET capture per options (several
// interfaces, or several sockets of one fanout group) and merges them into
// one Source. Packet.Interface is the position of the packet's options in
// the list. Each capture is read by a goroutine of its own that copies
// packets into batches; order is kept within a capture, not across them.
// Stats are the sums over the captures. A capture that fails while running
// ends the merged source with its error.
func OpenLiveMulti(opts ...LiveOptions) (Source, error) {
	if len(opts) == 0 {
		return nil, errors.New("capture: no interface to capture on")
	}
	if len(opts) == 1 {
		return OpenLive(opts[0])
	}
	m := &multiSource{
		batches: make(chan *liveBatch, 16*len(opts)),
		free:    make(chan *liveBatch, 16*len(opts)+len(opts)*2),
		stop:    make(chan struct{}),
		poll:    defaultPollTimeout,
	}
	names := make([]string, 0, len(opts))
	for i, o := range opts {
		if i == 0 && o.PollTimeout > 0 {
			m.poll = o.PollTimeout
		}
		// Members poll briefly so that a partly filled batch goes out soon
		// and Close is quick.
		if o.PollTimeout <= 0 || o.PollTimeout > 20*time.Millisecond {
			o.PollTimeout = 20 * time.Millisecond
		}
		src, err := OpenLive(o)
		if err != nil {
			for _, s := range m.srcs {
				s.Close()
			}
			return nil, err
		}
		m.srcs = append(m.srcs, src.(*liveSource))
		names = append(names, o.Interface)
	}
	m.name = "interfaces " + strings.Join(names, ",")
	for i := 0; i < cap(m.free); i++ {
		m.free <- &liveBatch{data: make([]byte, 0, liveBatchBytes+defaultSnaplen)}
	}
	for i, s := range m.srcs {
		m.wg.Add(1)
		go m.read(i, s)
	}
	return m, nil
}

const (
	liveBatchPackets = 128
	liveBatchBytes   = 256 << 10
	liveBatchMaxAge  = 5 * time.Millisecond
)

// liveBatch carries copies of packets from one member's reader to Next.
type liveBatch struct {
	data []byte
	pkts []Packet // Data is set when the batch is consumed
	offs []int
	err  error
}

type multiSource struct {
	srcs    []*liveSource
	name    string
	poll    time.Duration
	batches chan *liveBatch
	free    chan *liveBatch
	stop    chan struct{}
	wg      sync.WaitGroup
	cur     *liveBatch
	i       int
	n       uint64
	err     error
	once    sync.Once
}

// read copies packets of member i into batches until Close or an error.
func (m *multiSource) read(i int, s *liveSource) {
	defer m.wg.Done()
	var b *liveBatch
	var first time.Time
	send := func() bool {
		select {
		case m.batches <- b:
			b = nil
			return true
		case <-m.stop:
			return false
		}
	}
	for {
		if b == nil {
			select {
			case b = <-m.free:
			case <-m.stop:
				return
			}
			b.data, b.pkts, b.offs, b.err = b.data[:0], b.pkts[:0], b.offs[:0], nil
		}
		p, err := s.Next()
		if errors.Is(err, ErrTimeout) {
			if len(b.pkts) > 0 && !send() {
				return
			}
			select {
			case <-m.stop:
				return
			default:
			}
			continue
		}
		if err != nil {
			b.err = err
			send()
			return
		}
		if len(b.pkts) == 0 {
			first = time.Now()
		}
		p.Interface = i
		b.offs = append(b.offs, len(b.data))
		b.data = append(b.data, p.Data...)
		p.Data = nil
		b.pkts = append(b.pkts, p)
		if len(b.pkts) >= liveBatchPackets || len(b.data) >= liveBatchBytes || time.Since(first) > liveBatchMaxAge {
			if !send() {
				return
			}
		}
	}
}

// Next returns the next packet from any member; Data is valid until the
// next call.
func (m *multiSource) Next() (Packet, error) {
	if m.err != nil {
		return Packet{}, m.err
	}
	for m.cur == nil || m.i >= len(m.cur.pkts) {
		if m.cur != nil {
			if m.cur.err != nil {
				m.err = m.cur.err
				return Packet{}, m.err
			}
			m.free <- m.cur
			m.cur = nil
		}
		t := time.NewTimer(m.poll)
		select {
		case b := <-m.batches:
			t.Stop()
			m.cur, m.i = b, 0
		case <-t.C:
			return Packet{Time: time.Now()}, ErrTimeout
		case <-m.stop:
			t.Stop()
			return Packet{}, fmt.Errorf("capture: %s: source is closed", m.name)
		}
	}
	b := m.cur
	p := b.pkts[m.i]
	end := len(b.data)
	if m.i+1 < len(b.offs) {
		end = b.offs[m.i+1]
	}
	p.Data = b.data[b.offs[m.i]:end:end]
	m.i++
	m.n++
	p.Number = m.n
	return p, nil
}

// Stats sums the members' counters.
func (m *multiSource) Stats() Stats {
	var st Stats
	for _, s := range m.srcs {
		x := s.Stats()
		st.Packets += x.Packets
		st.Bytes += x.Bytes
		st.KernelDrops += x.KernelDrops
		st.KernelFreezes += x.KernelFreezes
		st.Errors += x.Errors
	}
	return st
}

// Close stops the readers and closes every member.
func (m *multiSource) Close() error {
	m.once.Do(func() {
		close(m.stop)
		m.wg.Wait()
		for _, s := range m.srcs {
			s.Close()
		}
	})
	return nil
}

// Name returns "interfaces A,B,...".
func (m *multiSource) Name() string { return m.name }
