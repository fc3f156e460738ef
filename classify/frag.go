package classify

import (
	"net/netip"
	"time"
)

// IP fragment reassembly, bounded in datagrams and bytes, so the transport
// header of a fragmented datagram is read from its first fragment and
// detectors see whole datagrams. Incomplete datagrams time out in packet time.

type fragKey struct {
	src, dst [16]byte
	id       uint32
	proto    uint8
}

type fragEntry struct {
	buf      []byte   // the datagram's transport bytes, up to 64 KiB
	blocks   []uint64 // bitmap of received 8-byte blocks
	total    int      // datagram length, known once the last fragment arrived (-1 before)
	got      int      // blocks received (with overlaps counted once)
	frames   int      // fragments seen
	wire     uint64   // their captured bytes
	first    time.Time
	src, dst netip.Addr
}

// Fragment limits.
const (
	maxDatagram = 65535
	fragBlocks  = (maxDatagram + 7) / 8
)

type reassembler struct {
	entries  map[fragKey]*fragEntry
	max      int
	timeout  time.Duration
	pool     []*fragEntry
	dropped  uint64 // datagrams that never completed, or did not fit
	complete uint64
}

func newReassembler(max int, timeout time.Duration) *reassembler {
	return &reassembler{entries: make(map[fragKey]*fragEntry), max: max, timeout: timeout}
}

// add stores one fragment. When it completes its datagram, add returns the
// datagram's transport bytes (valid until the next call), how many fragments
// made it and their captured bytes.
func (r *reassembler) add(d *decoded, wire int, now time.Time) (data []byte, frames int, wireBytes uint64, ok bool) {
	k := fragKey{src: d.src.As16(), dst: d.dst.As16(), id: d.frag.id, proto: d.proto}
	e := r.entries[k]
	if e == nil {
		if len(r.entries) >= r.max {
			r.expire(now)
			if len(r.entries) >= r.max {
				r.dropped++
				return nil, 0, 0, false
			}
		}
		e = r.get()
		e.first, e.src, e.dst = now, d.src, d.dst
		r.entries[k] = e
	}
	e.frames++
	e.wire += uint64(wire)
	off, n := d.frag.offset, len(d.frag.data)
	if off+n > maxDatagram || (!d.frag.more && e.total >= 0 && e.total != off+n) {
		r.drop(k, e)
		return nil, 0, 0, false
	}
	copy(e.buf[off:], d.frag.data)
	if !d.frag.more {
		e.total = off + n
	}
	end := (off + n + 7) / 8
	if d.frag.more {
		end = (off + n) / 8 // a non-final fragment's length is a multiple of 8
	}
	for b := off / 8; b < end; b++ {
		w, bit := b/64, uint64(1)<<(b%64)
		if e.blocks[w]&bit == 0 {
			e.blocks[w] |= bit
			e.got++
		}
	}
	if e.total >= 0 && e.got == (e.total+7)/8 {
		data, frames, wireBytes = e.buf[:e.total], e.frames, e.wire
		delete(r.entries, k)
		r.pool = append(r.pool, e) // the bytes stay valid until the next add
		r.complete++
		return data, frames, wireBytes, true
	}
	return nil, 0, 0, false
}

func (r *reassembler) get() *fragEntry {
	var e *fragEntry
	if n := len(r.pool); n > 0 {
		e = r.pool[n-1]
		r.pool = r.pool[:n-1]
		clear(e.blocks)
	} else {
		e = &fragEntry{buf: make([]byte, maxDatagram), blocks: make([]uint64, (fragBlocks+63)/64)}
	}
	e.total, e.got, e.frames, e.wire = -1, 0, 0, 0
	return e
}

func (r *reassembler) drop(k fragKey, e *fragEntry) {
	delete(r.entries, k)
	if len(r.pool) < 16 {
		r.pool = append(r.pool, e)
	}
	r.dropped++
}

// expire drops datagrams older than the timeout.
func (r *reassembler) expire(now time.Time) {
	for k, e := range r.entries {
		if now.Sub(e.first) > r.timeout {
			r.drop(k, e)
		}
	}
}

// pending returns the number of incomplete datagrams.
func (r *reassembler) pending() int { return len(r.entries) }
