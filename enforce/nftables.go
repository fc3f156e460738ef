package enforce

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// NFTablesOptions configures the nftables enforcer. The zero value of each
// field selects its default.
type NFTablesOptions struct {
	// Table is the name of rasentry's inet table; default "rasentry_block".
	Table string
	// Hooks are the hooks whose traffic is blocked: "forward" (a gateway;
	// the default), "input", "output".
	Hooks []string
	// DefaultDuration is the timeout of a block whose Duration is 0.
	// Default 10 minutes.
	DefaultDuration time.Duration
	// MaxElements bounds each set; when a set is full, further blocks fail
	// (counted). Default 65536.
	MaxElements uint32
	// RemoveOnClose deletes the table on Close, lifting every block. By
	// default the table stays and its elements expire by themselves, so a
	// restart does not lift blocks.
	RemoveOnClose bool
	// NetNS, when not 0, is a descriptor of the network namespace to work
	// in.
	NetNS int
}

// DefaultBlockTable is the name of the nftables enforcer's table.
const DefaultBlockTable = "rasentry_block"

// Set names of the nftables enforcer's table.
const (
	setHost4 = "host4"
	setHost6 = "host6"
	setPair4 = "pair4"
	setPair6 = "pair6"
	setFlow4 = "flow4"
	setFlow6 = "flow6"
)

// NFTables blocks by adding elements with timeouts to named sets of an
// inet table of its own, whose chains drop matching packets:
//
//	host4/host6  addr                              ip saddr @host4 drop; ip daddr @host4 drop
//	pair4/pair6  addr . addr                       ip saddr . ip daddr @pair4 drop (and reversed)
//	flow4/flow6  client . server . proto . port    ip saddr . ip daddr . meta l4proto . th dport @flow4 drop
//	                                               (and the replies: daddr . saddr . l4proto . th sport)
//
// The chains run before the mangle and filter priorities (-160), so blocked
// traffic never reaches the queue of inline mode or the operator's accepts;
// an accept elsewhere does not undo a drop here. Elements expire by
// themselves after the block's duration.
type NFTables struct {
	counters
	opts NFTablesOptions
	mu   sync.Mutex
	c    *nftables.Conn
	t    *nftables.Table
	sets map[string]*nftables.Set
}

var blockHooks = map[string]*nftables.ChainHook{
	"forward": nftables.ChainHookForward,
	"input":   nftables.ChainHookInput,
	"output":  nftables.ChainHookOutput,
}

// NewNFTables creates (or takes over) the enforcer's table, its sets and
// its chains. It needs CAP_NET_ADMIN.
func NewNFTables(opts NFTablesOptions) (*NFTables, error) {
	if opts.Table == "" {
		opts.Table = DefaultBlockTable
	}
	if len(opts.Hooks) == 0 {
		opts.Hooks = []string{"forward"}
	}
	for _, h := range opts.Hooks {
		if blockHooks[h] == nil {
			return nil, fmt.Errorf("enforce: nftables: hook %q: want forward, input or output", h)
		}
	}
	if opts.DefaultDuration <= 0 {
		opts.DefaultDuration = 10 * time.Minute
	}
	if opts.MaxElements == 0 {
		opts.MaxElements = 65536
	}
	c, err := nftables.New(nftables.WithNetNSFd(opts.NetNS))
	if err != nil {
		return nil, fmt.Errorf("enforce: nftables: %w", err)
	}
	n := &NFTables{opts: opts, c: c}
	if err := n.setup(false); err != nil {
		// A table of an older layout: start afresh.
		if err2 := n.setup(true); err2 != nil {
			return nil, fmt.Errorf("enforce: nftables: creating table inet %s: %w%s", opts.Table, err2, capHint(err2))
		}
	}
	return n, nil
}

// setup adds the table, sets and chains (keeping existing elements), or
// with fresh, replaces the table.
func (n *NFTables) setup(fresh bool) error {
	c := n.c
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: n.opts.Table}
	if fresh {
		c.AddTable(t)
		c.DelTable(t)
	}
	n.t = c.AddTable(t)
	ip4, ip6 := nftables.TypeIPAddr, nftables.TypeIP6Addr
	proto, port := nftables.TypeInetProto, nftables.TypeInetService
	defs := []struct {
		name string
		key  []nftables.SetDatatype
	}{
		{setHost4, []nftables.SetDatatype{ip4}},
		{setHost6, []nftables.SetDatatype{ip6}},
		{setPair4, []nftables.SetDatatype{ip4, ip4}},
		{setPair6, []nftables.SetDatatype{ip6, ip6}},
		{setFlow4, []nftables.SetDatatype{ip4, ip4, proto, port}},
		{setFlow6, []nftables.SetDatatype{ip6, ip6, proto, port}},
	}
	n.sets = map[string]*nftables.Set{}
	for _, d := range defs {
		s := &nftables.Set{
			Table: n.t, Name: d.name, KeyType: d.key[0],
			HasTimeout: true, Timeout: n.opts.DefaultDuration, Size: n.opts.MaxElements,
		}
		if len(d.key) > 1 {
			s.KeyType = nftables.MustConcatSetType(d.key...)
			s.Concatenation = true
		}
		if err := c.AddSet(s, nil); err != nil {
			return err
		}
		n.sets[d.name] = s
	}
	policy := nftables.ChainPolicyAccept
	for _, h := range n.opts.Hooks {
		ch := c.AddChain(&nftables.Chain{
			Name: h, Table: n.t, Type: nftables.ChainTypeFilter, Hooknum: blockHooks[h],
			Priority: nftables.ChainPriorityRef(-160), Policy: &policy,
		})
		c.FlushChain(ch)
		for _, exprs := range n.rules() {
			c.AddRule(&nftables.Rule{Table: n.t, Chain: ch, Exprs: exprs})
		}
	}
	return c.Flush()
}

// 32-bit registers (NFT_REG32_00 and on): concatenations are built field
// by field, each padded to 4 bytes.
const reg0 = 8

// rules returns the drop rules of a chain.
func (n *NFTables) rules() [][]expr.Any {
	type family struct {
		nfproto        byte
		saddr, daddr   uint32 // offsets in the network header
		alen           uint32
		host, pair, fl string
	}
	var rules [][]expr.Any
	for _, f := range []family{
		{unix.NFPROTO_IPV4, 12, 16, 4, setHost4, setPair4, setFlow4},
		{unix.NFPROTO_IPV6, 8, 24, 16, setHost6, setPair6, setFlow6},
	} {
		regs := f.alen / 4 // registers per address
		isFamily := []expr.Any{
			&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{f.nfproto}},
		}
		load := func(off, reg uint32) expr.Any {
			return &expr.Payload{DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: off, Len: f.alen}
		}
		drop := func(set string, exprs ...expr.Any) []expr.Any {
			r := append(append([]expr.Any{}, isFamily...), exprs...)
			s := n.sets[set]
			return append(r,
				&expr.Lookup{SourceRegister: reg0, SetName: s.Name, SetID: s.ID},
				&expr.Counter{},
				&expr.Verdict{Kind: expr.VerdictDrop})
		}
		for _, off := range []uint32{f.saddr, f.daddr} {
			rules = append(rules, drop(f.host, load(off, reg0)))
		}
		for _, o := range [][2]uint32{{f.saddr, f.daddr}, {f.daddr, f.saddr}} {
			rules = append(rules, drop(f.pair, load(o[0], reg0), load(o[1], reg0+regs)))
		}
		// Client to server: dport is the service; server to client: sport.
		for _, o := range []struct{ a, b, port uint32 }{{f.saddr, f.daddr, 2}, {f.daddr, f.saddr, 0}} {
			rules = append(rules, drop(f.fl,
				load(o.a, reg0), load(o.b, reg0+regs),
				&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg0 + 2*regs},
				&expr.Payload{DestRegister: reg0 + 2*regs + 1, Base: expr.PayloadBaseTransportHeader, Offset: o.port, Len: 2},
			))
		}
	}
	return rules
}

// Name returns "nftables".
func (n *NFTables) Name() string { return "nftables" }

// Block adds the block's element to its set with the block's duration. A
// block that is already there keeps its earlier timeout.
func (n *NFTables) Block(b Block) (bool, error) {
	set, key, err := n.element(&b)
	if err != nil {
		n.errors.Add(1)
		return false, err
	}
	d := b.Duration
	if d <= 0 {
		d = n.opts.DefaultDuration
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	err = n.c.SetAddElements(n.sets[set], []nftables.SetElement{{Key: key, Timeout: d}})
	if err == nil {
		err = n.c.Flush() // the element takes effect only when the batch is sent
	}
	if err != nil {
		n.errors.Add(1)
		return false, fmt.Errorf("enforce: nftables: blocking %s: %w%s", b, err, capHint(err))
	}
	n.blocks.Add(1)
	return true, nil
}

// element returns the set and key of a block.
func (n *NFTables) element(b *Block) (set string, key []byte, err error) {
	c, s := b.Client.Addr().Unmap(), b.Server.Addr().Unmap()
	switch b.Scope {
	case ScopeHost:
		h := b.host()
		if !h.IsValid() {
			return "", nil, errors.New("enforce: nftables: host block without an address")
		}
		if h.Is4() {
			return setHost4, h.AsSlice(), nil
		}
		return setHost6, h.AsSlice(), nil
	case ScopePair, ScopeFlow:
		if !c.IsValid() || !s.IsValid() || c.Is4() != s.Is4() {
			return "", nil, fmt.Errorf("enforce: nftables: %s: client and server addresses must be of one family", b)
		}
		key = append(append(key, c.AsSlice()...), s.AsSlice()...)
		if b.Scope == ScopePair {
			if c.Is4() {
				return setPair4, key, nil
			}
			return setPair6, key, nil
		}
		if b.Proto != ProtoTCP && b.Proto != ProtoUDP {
			return "", nil, fmt.Errorf("enforce: nftables: %s: flow blocks need TCP or UDP", b)
		}
		// inet_proto and inet_service, each padded to 4 bytes.
		key = append(key, b.Proto, 0, 0, 0)
		key = append(key, binaryutil.BigEndian.PutUint16(b.Server.Port())...)
		key = append(key, 0, 0)
		if c.Is4() {
			return setFlow4, key, nil
		}
		return setFlow6, key, nil
	}
	return "", nil, fmt.Errorf("enforce: nftables: unknown scope %v", b.Scope)
}

// Stats returns the counters.
func (n *NFTables) Stats() Stats { return n.stats() }

// Close deletes the table when RemoveOnClose is set; otherwise the blocks
// stay until they expire.
func (n *NFTables) Close() error {
	if !n.opts.RemoveOnClose {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.c.DelTable(n.t)
	if err := n.c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("enforce: nftables: removing table inet %s: %w", n.opts.Table, err)
	}
	return nil
}

// capHint names the capability when err is a permission error.
func capHint(err error) string {
	if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
		return " (needs CAP_NET_ADMIN: run as root or grant it with setcap)"
	}
	return ""
}
