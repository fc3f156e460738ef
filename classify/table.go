package classify

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// flowKey is the bidirectional 5-tuple (plus VLAN and tunnel) of a flow, in
// canonical order: the lower endpoint first, so both directions find one
// entry. It holds no pointers, so a large table costs the collector nothing.
type flowKey struct {
	addrLo, addrHi [16]byte
	portLo, portHi uint16
	proto          uint8
	vlan           uint16
	tunnel         uint32 // low bits of the outer flow's id for inner flows, else 0
}

// makeKey builds the canonical key and reports whether src is the low side.
func makeKey(src, dst netip.AddrPort, proto uint8, vlan uint16, tunnel uint32) (flowKey, bool) {
	a, b := src.Addr().As16(), dst.Addr().As16()
	ap, bp := src.Port(), dst.Port()
	k := flowKey{proto: proto, vlan: vlan, tunnel: tunnel}
	srcLow := true
	if c := compare16(&a, &b); c > 0 || (c == 0 && ap > bp) {
		srcLow = false
	}
	if srcLow {
		k.addrLo, k.addrHi, k.portLo, k.portHi = a, b, ap, bp
	} else {
		k.addrLo, k.addrHi, k.portLo, k.portHi = b, a, bp, ap
	}
	return k, srcLow
}

func compare16(a, b *[16]byte) int {
	x1, x2 := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(b[:8])
	if x1 != x2 {
		if x1 < x2 {
			return -1
		}
		return 1
	}
	y1, y2 := binary.BigEndian.Uint64(a[8:]), binary.BigEndian.Uint64(b[8:])
	if y1 != y2 {
		if y1 < y2 {
			return -1
		}
		return 1
	}
	return 0
}

// Timeouts are the idle timeouts per transport, in packet time.
type Timeouts struct {
	TCP       time.Duration // established or half-open TCP
	TCPClosed time.Duration // linger after FIN from both sides or RST
	UDP       time.Duration
	ICMP      time.Duration
	Other     time.Duration
}

// DefaultTimeouts follow Suricata's defaults in spirit: long for TCP, short
// for datagrams.
var DefaultTimeouts = Timeouts{
	TCP:       600 * time.Second,
	TCPClosed: 5 * time.Second,
	UDP:       60 * time.Second,
	ICMP:      30 * time.Second,
	Other:     60 * time.Second,
}

// idle lists, one per timeout class, so each list is ordered by last packet
// time and its head is always the next to expire.
const (
	listTCP uint8 = iota
	listTCPClosed
	listUDP
	listICMP
	listOther
	numLists
)

type idleList struct {
	head, tail *Flow
	n          int
}

func (l *idleList) remove(f *Flow) {
	if f.prev != nil {
		f.prev.next = f.next
	} else {
		l.head = f.next
	}
	if f.next != nil {
		f.next.prev = f.prev
	} else {
		l.tail = f.prev
	}
	f.prev, f.next = nil, nil
	l.n--
}

func (l *idleList) pushBack(f *Flow) {
	f.prev, f.next = l.tail, nil
	if l.tail != nil {
		l.tail.next = f
	} else {
		l.head = f
	}
	l.tail = f
	l.n++
}

// flowTable tracks live flows: a bucket array indexed by the hash of the
// canonical key, each bucket a chain of flows, idle lists for expiry, a
// bound with eviction of the longest-idle flow, and flows allocated in
// slabs and recycled through a free list, so that steady state allocates
// nothing and a million flows stay under 256 bytes each (a flow does not
// keep its 44-byte key, it is compared field by field).
//
// The buckets are a plain power-of-two array rather than a Go map: the
// flow hash is already well mixed, so a lookup is one load and a short
// chain walk, where a map hashed the hash again and probed its groups
// (12 % of a replay's time). The array doubles when the flows outnumber
// its buckets, and costs 8 to 16 bytes per flow.
type flowTable struct {
	buckets  []*Flow
	mask     uint64
	n        int
	lists    [numLists]idleList
	timeouts [numLists]time.Duration
	max      int
	free     []*Flow // released flows, reused first
	slab     []Flow  // the unused rest of the newest slab
}

// minBuckets is the bucket array's initial size.
const minBuckets = 1 << 14

func newFlowTable(max int, t Timeouts) *flowTable {
	ft := &flowTable{
		buckets: make([]*Flow, minBuckets),
		mask:    minBuckets - 1,
		max:     max,
	}
	ft.timeouts = [numLists]time.Duration{t.TCP, t.TCPClosed, t.UDP, t.ICMP, t.Other}
	return ft
}

// grow doubles the bucket array and moves every flow to its new bucket.
func (t *flowTable) grow() {
	old := t.buckets
	t.buckets = make([]*Flow, 2*len(old))
	t.mask = uint64(len(t.buckets) - 1)
	for _, f := range old {
		for f != nil {
			next := f.hnext
			i := f.hash() & t.mask
			f.hnext = t.buckets[i]
			t.buckets[i] = f
			f = next
		}
	}
}

// hash is the table hash of f's tuple.
func (f *Flow) hash() uint64 { return flowHash(f.Client, f.Server, f.Proto, f.VLAN, f.tunnel) }

// fnv1a is FNV-1a over b: fixed, so the same input gives the same flow ids
// on every run and machine.
func fnv1a(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

func listFor(f *Flow) uint8 {
	switch f.Proto {
	case ProtoTCP:
		if f.State == StateClosed {
			return listTCPClosed
		}
		return listTCP
	case ProtoUDP:
		return listUDP
	case ProtoICMP, ProtoICMPv6:
		return listICMP
	}
	return listOther
}

// touch moves f to the back of its idle list (it just saw a packet), moving
// it between lists when its class changed.
func (t *flowTable) touch(f *Flow) {
	want := listFor(f)
	t.lists[f.list].remove(f)
	f.list = want
	t.lists[want].pushBack(f)
}

// mix64 is a 64-bit finaliser (from SplitMix64).
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// flowHash hashes a packet's flow tuple the same in both directions without
// building the canonical key: each endpoint is folded to 64 bits by one
// multiply-xorshift round, the two are combined in order, and the result
// gets a full mix. It only spreads flows over buckets (chains compare the
// tuple), so it need not be more than well distributed.
func flowHash(src, dst netip.AddrPort, proto uint8, vlan uint16, tunnel uint32) uint64 {
	a, b := endpointHash(src), endpointHash(dst)
	if a > b {
		a, b = b, a
	}
	return mix64(a*0x9e3779b97f4a7c15 ^ b ^ uint64(proto)<<56 ^ uint64(vlan)<<40 ^ uint64(tunnel))
}

func endpointHash(ap netip.AddrPort) uint64 {
	a := ap.Addr().As16()
	hi := binary.LittleEndian.Uint64(a[:8])
	lo := binary.LittleEndian.Uint64(a[8:])
	x := hi*0xff51afd7ed558ccd ^ lo*0xc4ceb9fe1a85ec53 ^ uint64(ap.Port())*0x9e3779b97f4a7c15
	return x ^ x>>29
}

// get returns the flow of the packet from src to dst, if live.
func (t *flowTable) get(h uint64, src, dst netip.AddrPort, proto uint8, vlan uint16, tunnel uint32) *Flow {
	for f := t.buckets[h&t.mask]; f != nil; f = f.hnext {
		if f.Proto == proto && f.VLAN == vlan && f.tunnel == tunnel &&
			((f.Client == src && f.Server == dst) || (f.Client == dst && f.Server == src)) {
			return f
		}
	}
	return nil
}

// slabSize is how many flows are allocated at once.
const slabSize = 1024

// insert adds a new flow under hash h at the head of its chain. The caller
// fills it in.
func (t *flowTable) insert(h uint64) *Flow {
	var f *Flow
	switch n := len(t.free); {
	case n > 0:
		f = t.free[n-1]
		t.free = t.free[:n-1]
	default:
		if len(t.slab) == 0 {
			t.slab = make([]Flow, slabSize)
		}
		f = &t.slab[0]
		t.slab = t.slab[1:]
	}
	if t.n >= len(t.buckets) {
		t.grow()
	}
	i := h & t.mask
	f.hnext = t.buckets[i]
	t.buckets[i] = f
	t.n++
	return f
}

// link puts a freshly filled flow on its idle list.
func (t *flowTable) link(f *Flow) {
	f.list = listFor(f)
	t.lists[f.list].pushBack(f)
}

// full reports whether inserting one more flow would exceed the bound.
func (t *flowTable) full() bool { return t.max > 0 && t.n >= t.max }

// oldest returns the flow idle the longest across all lists.
func (t *flowTable) oldest() *Flow {
	var o *Flow
	for i := range t.lists {
		h := t.lists[i].head
		if h != nil && (o == nil || h.last < o.last) {
			o = h
		}
	}
	return o
}

// expired returns the head of some list if it expired at now, else nil.
func (t *flowTable) expired(nowNs int64) *Flow {
	for i := range t.lists {
		h := t.lists[i].head
		if h != nil && nowNs-h.last > int64(t.timeouts[i]) {
			return h
		}
	}
	return nil
}

// remove unlinks f from the table. The caller must be done with it before
// calling release.
func (t *flowTable) remove(f *Flow) {
	t.lists[f.list].remove(f)
	i := f.hash() & t.mask // the flow keeps no key: rebuild its hash
	if t.buckets[i] == f {
		t.buckets[i] = f.hnext
	} else {
		for p := t.buckets[i]; p != nil; p = p.hnext {
			if p.hnext == f {
				p.hnext = f.hnext
				break
			}
		}
	}
	f.hnext = nil
	t.n--
}

// release recycles f (its slab stays allocated: the table's memory is
// bounded by MaxFlows).
func (t *flowTable) release(f *Flow) {
	*f = Flow{}
	t.free = append(t.free, f)
}

// len returns the number of live flows.
func (t *flowTable) len() int { return t.n }

// flowID derives the 51-bit flow id from the key and the first packet time,
// so the same input gives the same ids.
func (t *flowTable) flowID(k *flowKey, start time.Time) uint64 {
	var b [16 + 16 + 2 + 2 + 1 + 2 + 4 + 8]byte
	copy(b[0:], k.addrLo[:])
	copy(b[16:], k.addrHi[:])
	binary.BigEndian.PutUint16(b[32:], k.portLo)
	binary.BigEndian.PutUint16(b[34:], k.portHi)
	b[36] = k.proto
	binary.BigEndian.PutUint16(b[37:], k.vlan)
	binary.BigEndian.PutUint32(b[39:], k.tunnel)
	binary.BigEndian.PutUint64(b[43:], uint64(start.UnixNano()))
	id := fnv1a(b[:]) & (1<<51 - 1)
	if id == 0 {
		id = 1
	}
	return id
}
