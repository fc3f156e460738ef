package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	"golang.org/x/sys/unix"
)

// QueueRules describes the netfilter rules that send packets to rasentry's
// queues (rasentry inline rules install|remove). They live in tables of
// rasentry's own, one for IPv4 ("ip") and one for IPv6 ("ip6"), so that
// installing and removing them never touches the operator's rules. Each
// hooked chain holds, in order:
//
//  1. packets that carry the offload mark (given by Offload with NF_REPEAT)
//     have it copied to their connection's mark and are accepted;
//  2. packets of connections with the offload mark are accepted (decided
//     and allowed flows no longer reach rasentry);
//  3. every other packet goes to the queue(s) (the xt NFQUEUE target through
//     nft_compat: kernels without nft_queue, such as the test machines, have
//     it, and it is what iptables-nft writes), with bypass, so packets pass
//     while no rasentry is bound to the queue.
//
// The chains run at the mangle priority (-150), before the filter chains,
// and an accept there does not end other tables' chains: the operator's
// filter rules still apply to every packet.
type QueueRules struct {
	// Queue and Count give the queue range, as in QueueOptions.
	Queue, Count uint16
	// NoBypass leaves the bypass flag off: with no rasentry bound to the
	// queue, packets are then dropped (fail-closed).
	NoBypass bool
	// CPUFanout spreads a range of queues by CPU instead of by flow hash
	// (--queue-cpu-fanout).
	CPUFanout bool
	// Hooks are the netfilter hooks to queue from: "forward" (a gateway;
	// the default), "input", "output". Input and output skip loopback.
	Hooks []string
	// OffloadMark is the mark bit(s) of offloaded connections; default
	// DefaultOffloadMark. It must match QueueOptions.OffloadMark.
	OffloadMark uint32
	// Table is the name of rasentry's tables; default "rasentry_queue".
	Table string
	// NetNS, when not 0, is a descriptor of the network namespace to
	// install into.
	NetNS int
}

// DefaultQueueTable is the name of the tables of QueueRules.
const DefaultQueueTable = "rasentry_queue"

func (r *QueueRules) setDefaults() error {
	if r.Count == 0 {
		r.Count = 1
	}
	if r.OffloadMark == 0 {
		r.OffloadMark = DefaultOffloadMark
	}
	if r.Table == "" {
		r.Table = DefaultQueueTable
	}
	if len(r.Hooks) == 0 {
		r.Hooks = []string{"forward"}
	}
	for _, h := range r.Hooks {
		if _, ok := queueHooks[h]; !ok {
			return fmt.Errorf("capture: queue rules: hook %q: want forward, input or output", h)
		}
	}
	if int(r.Queue)+int(r.Count)-1 > 0xffff {
		return fmt.Errorf("capture: queue rules: queues %d to %d: past 65535", r.Queue, int(r.Queue)+int(r.Count)-1)
	}
	return nil
}

var queueHooks = map[string]*nftables.ChainHook{
	"forward": nftables.ChainHookForward,
	"input":   nftables.ChainHookInput,
	"output":  nftables.ChainHookOutput,
}

// NFQUEUE target flags (linux/netfilter/xt_NFQUEUE.h).
const (
	nfqFlagBypass    = 0x01
	nfqFlagCPUFanout = 0x02
)

// nfqueueTargetInfo is struct xt_NFQ_info_v3 {u16 queuenum, queues_total,
// flags}, in host byte order, padded to 8 bytes (XT_ALIGN).
func (r *QueueRules) nfqueueTargetInfo() []byte {
	info := make([]byte, 8)
	binary.NativeEndian.PutUint16(info[0:], r.Queue)
	binary.NativeEndian.PutUint16(info[2:], r.Count)
	var flags uint16
	if !r.NoBypass {
		flags |= nfqFlagBypass
	}
	if r.CPUFanout && r.Count > 1 {
		flags |= nfqFlagCPUFanout
	}
	binary.NativeEndian.PutUint16(info[4:], flags)
	return info
}

// InstallQueueRules writes the rules (replacing rasentry's tables if they
// exist), for IPv4 and IPv6 in one transaction. It needs CAP_NET_ADMIN.
func InstallQueueRules(r QueueRules) error {
	if err := r.setDefaults(); err != nil {
		return err
	}
	c, err := nftables.New(nftables.WithNetNSFd(r.NetNS))
	if err != nil {
		return fmt.Errorf("capture: queue rules: %w", err)
	}
	for _, fam := range []nftables.TableFamily{nftables.TableFamilyIPv4, nftables.TableFamilyIPv6} {
		// Add, delete, add: replaces an old table in the same batch.
		c.AddTable(&nftables.Table{Family: fam, Name: r.Table})
		c.DelTable(&nftables.Table{Family: fam, Name: r.Table})
		t := c.AddTable(&nftables.Table{Family: fam, Name: r.Table})
		for _, h := range r.Hooks {
			policy := nftables.ChainPolicyAccept
			ch := c.AddChain(&nftables.Chain{
				Name: h, Table: t, Type: nftables.ChainTypeFilter,
				Hooknum: queueHooks[h], Priority: nftables.ChainPriorityMangle, Policy: &policy,
			})
			for _, exprs := range r.chainRules(h) {
				c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs})
			}
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("capture: queue rules: installing table %s: %w%s", r.Table, err, permissionHint(err, "CAP_NET_ADMIN"))
	}
	return nil
}

// chainRules returns the expressions of a hooked chain's rules.
func (r *QueueRules) chainRules(hook string) [][]expr.Any {
	bit := r.OffloadMark
	var rules [][]expr.Any
	switch hook {
	case "input", "output":
		key := expr.MetaKeyIIFNAME
		if hook == "output" {
			key = expr.MetaKeyOIFNAME
		}
		lo := make([]byte, unix.IFNAMSIZ)
		copy(lo, "lo")
		rules = append(rules, []expr.Any{ // iifname "lo" accept
			&expr.Meta{Key: key, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: lo},
			&expr.Verdict{Kind: expr.VerdictAccept},
		})
	}
	info := xt.Unknown(r.nfqueueTargetInfo())
	return append(rules,
		[]expr.Any{ // meta mark & BIT == BIT ct mark set ct mark | BIT counter accept
			&expr.Meta{Key: expr.MetaKeyMARK, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(bit), Xor: binaryutil.NativeEndian.PutUint32(0)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(bit)},
			&expr.Ct{Key: expr.CtKeyMARK, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(^bit), Xor: binaryutil.NativeEndian.PutUint32(bit)},
			&expr.Ct{Key: expr.CtKeyMARK, Register: 1, SourceRegister: true},
			&expr.Counter{},
			&expr.Verdict{Kind: expr.VerdictAccept},
		},
		[]expr.Any{ // ct mark & BIT == BIT counter accept
			&expr.Ct{Key: expr.CtKeyMARK, Register: 1},
			&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(bit), Xor: binaryutil.NativeEndian.PutUint32(0)},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(bit)},
			&expr.Counter{},
			&expr.Verdict{Kind: expr.VerdictAccept},
		},
		[]expr.Any{ // counter queue num N[-M] [bypass] [fanout]
			&expr.Counter{},
			&expr.Target{Name: "NFQUEUE", Rev: 3, Info: &info},
		},
	)
}

// RemoveQueueRules deletes rasentry's queue tables (IPv4 and IPv6); tables
// that are not there are not an error.
func RemoveQueueRules(r QueueRules) error {
	if err := r.setDefaults(); err != nil {
		return err
	}
	c, err := nftables.New(nftables.WithNetNSFd(r.NetNS))
	if err != nil {
		return fmt.Errorf("capture: queue rules: %w", err)
	}
	var errs []error
	for _, fam := range []nftables.TableFamily{nftables.TableFamilyIPv4, nftables.TableFamilyIPv6} {
		c.DelTable(&nftables.Table{Family: fam, Name: r.Table})
		if err := c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("capture: queue rules: removing table %s: %w%s", r.Table, err, permissionHint(err, "CAP_NET_ADMIN")))
		}
	}
	return errors.Join(errs...)
}

// IPTablesCommands returns iptables and ip6tables command lines with the
// same effect as InstallQueueRules (a chain RASENTRY in the mangle table,
// jumped to from each hook's chain), for operators who keep their rules in
// iptables; the remove lines undo them.
func IPTablesCommands(r QueueRules) (install, remove []string, err error) {
	if err := r.setDefaults(); err != nil {
		return nil, nil, err
	}
	bit := fmt.Sprintf("0x%x", r.OffloadMark)
	queue := fmt.Sprintf("--queue-num %d", r.Queue)
	if r.Count > 1 {
		queue = fmt.Sprintf("--queue-balance %d:%d", r.Queue, r.Queue+r.Count-1)
		if r.CPUFanout {
			queue += " --queue-cpu-fanout"
		}
	}
	if !r.NoBypass {
		queue += " --queue-bypass"
	}
	for _, cmd := range []string{"iptables", "ip6tables"} {
		install = append(install,
			cmd+" -t mangle -N RASENTRY",
			cmd+" -t mangle -A RASENTRY -m mark --mark "+bit+"/"+bit+" -j CONNMARK --or-mark "+bit,
			cmd+" -t mangle -A RASENTRY -m connmark --mark "+bit+"/"+bit+" -j ACCEPT",
			cmd+" -t mangle -A RASENTRY -j NFQUEUE "+queue,
		)
		for _, h := range r.Hooks {
			chain := strings.ToUpper(h)
			skip := ""
			switch h {
			case "input":
				skip = " ! -i lo"
			case "output":
				skip = " ! -o lo"
			}
			install = append(install, cmd+" -t mangle -I "+chain+skip+" -j RASENTRY")
			remove = append(remove, cmd+" -t mangle -D "+chain+skip+" -j RASENTRY")
		}
		remove = append(remove, cmd+" -t mangle -F RASENTRY", cmd+" -t mangle -X RASENTRY")
	}
	return install, remove, nil
}
