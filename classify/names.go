package classify

import (
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// NameCache maps addresses to the DNS names that answers gave them, so a
// later flow can name its peer (a Teredo server, a PNRP seed). It respects
// the answers' TTLs and holds at most a fixed number of entries. It is safe
// for concurrent use.
type NameCache struct {
	mu       sync.Mutex
	size     atomic.Int64
	max      int
	entries  map[netip.Addr]nameEntry
	counters *Counters
}

type nameEntry struct {
	name    string
	expires time.Time
}

// DefaultNames is the default bound on the name cache.
const DefaultNames = 16384

// NewNameCache returns a cache of at most max entries (non-positive means
// DefaultNames). Counters may be nil.
func NewNameCache(max int, counters *Counters) *NameCache {
	if max <= 0 {
		max = DefaultNames
	}
	return &NameCache{max: max, entries: make(map[netip.Addr]nameEntry), counters: counters}
}

// Add records that addr is name until now+ttl.
func (c *NameCache) Add(addr netip.Addr, name string, now time.Time, ttl time.Duration) {
	addr = addr.Unmap()
	c.mu.Lock()
	defer c.mu.Unlock()
	defer func() { c.size.Store(int64(len(c.entries))) }()
	if _, ok := c.entries[addr]; !ok && len(c.entries) >= c.max {
		c.evict(now)
	}
	c.entries[addr] = nameEntry{name: name, expires: now.Add(ttl)}
	if c.counters != nil {
		c.counters.NamesCached.Add(1)
	}
}

// Lookup returns the name of addr at time now.
func (c *NameCache) Lookup(addr netip.Addr, now time.Time) (string, bool) {
	if c.size.Load() == 0 {
		return "", false
	}
	addr = addr.Unmap()
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[addr]
	if !ok {
		return "", false
	}
	if now.After(e.expires) {
		delete(c.entries, addr)
		c.size.Store(int64(len(c.entries)))
		return "", false
	}
	return e.name, true
}

// Len returns the number of entries.
func (c *NameCache) Len() int { return int(c.size.Load()) }

// evict removes expired entries, or, if none expired, the one closest to expiry.
func (c *NameCache) evict(now time.Time) {
	removed := 0
	var victim netip.Addr
	var soonest time.Time
	for a, e := range c.entries {
		if now.After(e.expires) {
			delete(c.entries, a)
			removed++
			continue
		}
		if !victim.IsValid() || e.expires.Before(soonest) || (e.expires.Equal(soonest) && a.Less(victim)) {
			victim, soonest = a, e.expires
		}
	}
	if removed == 0 && victim.IsValid() {
		delete(c.entries, victim)
		removed = 1
	}
	if c.counters != nil {
		c.counters.NamesEvicted.Add(uint64(removed))
	}
}
