// Package enforce carries out the policy's block decisions in passive
// (live) mode: an Enforcer blocks a flow, a host pair or a host. DryRun only
// records what it would block (the default); NFTables adds elements with
// timeouts to named sets of rasentry's own nftables table on the gateway
// rasentry runs on; Reset sends TCP resets to both ends through an inject
// interface (SPAN deployments, where rasentry is not in the path). Inline
// mode blocks through the NFQUEUE verdict instead (capture.InlineVerdict).
package enforce

import (
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Scope says how much traffic a block covers.
type Scope uint8

// Scopes.
const (
	// ScopeFlow blocks the client's traffic to the server's port (and its
	// replies), for the flow's protocol: the flow and every later connection
	// like it, whatever its source port.
	ScopeFlow Scope = iota
	// ScopePair blocks all traffic between the two hosts.
	ScopePair
	// ScopeHost blocks all traffic from and to one host (Block.Host).
	ScopeHost
)

// String returns "flow", "pair" or "host".
func (s Scope) String() string {
	switch s {
	case ScopeFlow:
		return "flow"
	case ScopePair:
		return "pair"
	case ScopeHost:
		return "host"
	}
	return fmt.Sprintf("scope(%d)", uint8(s))
}

// IP protocol numbers a flow block distinguishes.
const (
	ProtoTCP uint8 = 6
	ProtoUDP uint8 = 17
)

// Block is one decision to block, with what an enforcer needs to know of
// the flow that caused it.
type Block struct {
	// Scope is what to block; Proto, Client and Server say whose.
	Scope Scope
	// Proto is the flow's IP protocol (ProtoTCP, ProtoUDP).
	Proto uint8
	// Client and Server are the flow's ends; the client opened it.
	Client, Server netip.AddrPort
	// Host is the host a ScopeHost block covers; the zero value means the
	// client.
	Host netip.Addr
	// Duration is how long the block lasts; 0 means the enforcer's default.
	Duration time.Duration
	// ClientNextSeq and ServerNextSeq are the TCP sequence numbers each
	// side will send next (the sequence number of its last segment plus its
	// length, plus one for SYN and FIN), as last seen: the acknowledgment the
	// other side expects, which a reset must carry. SeqKnown says they are
	// set (Reset needs them).
	ClientNextSeq, ServerNextSeq uint32
	SeqKnown                     bool
	// ClientMAC and ServerMAC are the source and destination addresses of
	// the client-to-server frames as seen (the server's MAC, or its
	// router's). When both are set, Reset sends Ethernet frames on its
	// interface; otherwise raw IP packets that the kernel routes.
	ClientMAC, ServerMAC net.HardwareAddr
	// Reason says why, for logs (a rule id).
	Reason string
}

// host returns the address a ScopeHost block covers.
func (b *Block) host() netip.Addr {
	if b.Host.IsValid() {
		return b.Host.Unmap()
	}
	return b.Client.Addr().Unmap()
}

// String describes the block for logs.
func (b Block) String() string {
	switch b.Scope {
	case ScopeHost:
		return "host " + b.host().String()
	case ScopePair:
		return "pair " + b.Client.Addr().String() + " <-> " + b.Server.Addr().String()
	}
	return fmt.Sprintf("flow %s -> %s proto %d", b.Client.Addr(), b.Server, b.Proto)
}

// Enforcer carries out blocks.
type Enforcer interface {
	// Name is the enforcer's configuration name ("dry-run", "nftables",
	// "reset").
	Name() string
	// Block blocks what b describes. It reports whether traffic is now
	// blocked (false for a dry run, or a block the enforcer cannot apply to
	// this flow, such as a reset for UDP), and an error when it failed.
	// Safe for concurrent use.
	Block(b Block) (bool, error)
	// Stats returns the enforcer's counters.
	Stats() Stats
	// Close releases the enforcer's resources.
	Close() error
}

// Stats are an enforcer's counters.
type Stats struct {
	// Blocks counts blocks applied (for DryRun: recorded).
	Blocks uint64
	// Skipped counts blocks the enforcer cannot apply (Reset: not TCP, or
	// no sequence numbers).
	Skipped uint64
	// Errors counts blocks that failed.
	Errors uint64
}

// counters is the atomic form of Stats.
type counters struct {
	blocks, skipped, errors atomic.Uint64
}

func (c *counters) stats() Stats {
	return Stats{Blocks: c.blocks.Load(), Skipped: c.skipped.Load(), Errors: c.errors.Load()}
}

// DryRun records the blocks it is given and blocks nothing: the default,
// so that a new policy can be watched before it is enforced.
type DryRun struct {
	counters
	mu     sync.Mutex
	recent []Block
}

// dryRunKeep bounds the blocks a DryRun remembers.
const dryRunKeep = 1024

// NewDryRun returns a dry-run enforcer.
func NewDryRun() *DryRun { return &DryRun{} }

// Name returns "dry-run".
func (d *DryRun) Name() string { return "dry-run" }

// Block records b and reports that nothing was blocked.
func (d *DryRun) Block(b Block) (bool, error) {
	d.blocks.Add(1)
	d.mu.Lock()
	if len(d.recent) == dryRunKeep {
		copy(d.recent, d.recent[1:])
		d.recent = d.recent[:dryRunKeep-1]
	}
	d.recent = append(d.recent, b)
	d.mu.Unlock()
	return false, nil
}

// Recent returns the last blocks recorded (at most 1024), oldest first.
func (d *DryRun) Recent() []Block {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Block(nil), d.recent...)
}

// Stats returns the counters.
func (d *DryRun) Stats() Stats { return d.stats() }

// Close does nothing.
func (d *DryRun) Close() error { return nil }
