package classify

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// SessionMode says how a Remote Assistance session was set up
// (protocols.md §6.2 chains A to E).
type SessionMode string

// Session modes.
const (
	ModeOffer       SessionMode = "offer"
	ModeInvitation  SessionMode = "invitation"
	ModeEasyConnect SessionMode = "easy-connect"
	ModeUPnP        SessionMode = "upnp"
	ModeUnknown     SessionMode = "unknown"
)

// Session is one Remote Assistance session: the flows that together show a
// helper (expert) reaching a user's (novice's) desktop.
type Session struct {
	ID         string
	Mode       SessionMode
	Novice     netip.Addr
	Expert     netip.Addr
	Confidence Confidence
	First      time.Time
	Last       time.Time
	Members    []SessionMember
	// Why says, in words, which chain formed the session.
	Why string
}

// SessionMember is one flow of a session.
type SessionMember struct {
	FlowID uint64
	Labels LabelSet
	Client netip.AddrPort
	Server netip.AddrPort
}

// SessionConfig sets the windows of session assembly (protocols.md §6.2
// "Timing guidance"); zero values mean the defaults.
type SessionConfig struct {
	// OfferWindow: how long after an Offer RA DCOM exchange between two
	// hosts an RDP connection between them completes the session (default 2 min).
	OfferWindow time.Duration
	// EasyConnectWindow: how long a host's Remote Assistance PNRP activity
	// makes RDP inside Teredo to or from it an Easy Connect session
	// (default 30 min, the lifetime of an Easy Connect registration).
	EasyConnectWindow time.Duration
	// MaxPending bounds the hosts and host pairs awaiting a session
	// (default 65536); MaxSessions bounds the sessions remembered for
	// tagging their member flows (default 16384).
	MaxPending  int
	MaxSessions int
	// SessionIdle: how long a session is remembered after its last member
	// joined (default 2 h).
	SessionIdle time.Duration
}

func (c *SessionConfig) setDefaults() {
	if c.OfferWindow <= 0 {
		c.OfferWindow = 2 * time.Minute
	}
	if c.EasyConnectWindow <= 0 {
		c.EasyConnectWindow = 30 * time.Minute
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 65536
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = 16384
	}
	if c.SessionIdle <= 0 {
		c.SessionIdle = 2 * time.Hour
	}
}

type hostPair struct{ a, b netip.Addr } // expert, novice

// pending is evidence awaiting the flow that completes a chain.
type pending struct {
	expires time.Time
	first   time.Time
	members []SessionMember
}

const maxMembers = 32

// SessionTable assembles Remote Assistance sessions from labelled flows
// (design.md "session assembly"): it remembers the precursors (an Offer RA
// DCOM exchange between two hosts, a host's Remote Assistance PNRP
// activity) for a bounded time, and when an RDP flow completes a chain it
// forms a session. Expected listeners from invitations and UPnP mappings
// live in the ExpectTable and reach the RDP flow as Flow.Ext().Expected.
// It is bounded, time-limited, and safe for concurrent use.
type SessionTable struct {
	mu       sync.Mutex
	cfg      SessionConfig
	offers   map[hostPair]*pending   // Offer RA exchanges, by (expert, novice)
	pnrp     map[netip.Addr]*pending // hosts with Remote Assistance PNRP activity
	byFlow   map[uint64]*Session     // member flow id -> its session
	sessions map[string]*Session
	size     atomic.Int64 // len(byFlow), read without the lock when flows end
	counters *Counters
}

// NewSessionTable returns an empty session table with default windows.
func NewSessionTable(counters *Counters) *SessionTable {
	return NewSessionTableConfig(SessionConfig{}, counters)
}

// NewSessionTableConfig returns an empty session table.
func NewSessionTableConfig(cfg SessionConfig, counters *Counters) *SessionTable {
	cfg.setDefaults()
	if counters == nil {
		counters = &Counters{}
	}
	return &SessionTable{cfg: cfg, offers: map[hostPair]*pending{}, pnrp: map[netip.Addr]*pending{},
		byFlow: map[uint64]*Session{}, sessions: map[string]*Session{}, counters: counters}
}

func memberOf(f *Flow) SessionMember {
	return SessionMember{FlowID: f.ID, Labels: f.Labels, Client: f.Client, Server: f.Server}
}

// Observe looks at a flow whose labels just changed. It records
// precursors, and when f completes a chain it forms a session, labels f
// ra-session, and returns the new session; otherwise (including a member
// whose labels grew) it returns nil. The returned session must be read
// before the next call into the table.
func (t *SessionTable) Observe(f *Flow, now time.Time) *Session {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire(now)
	client, server := f.Client.Addr().Unmap(), f.Server.Addr().Unmap()
	if f.Labels.Has(LabelRADCOMOffer) {
		t.remember(t.offerEntry(hostPair{client, server}), f, now, t.cfg.OfferWindow)
	}
	if f.Labels.Has(LabelPNRPRAEasyConnect) {
		// PNRP is a cloud: the novice registers and the expert resolves
		// through other peers, so the activity marks each host, not a pair.
		for _, a := range [...]netip.Addr{client, server} {
			t.remember(t.pnrpEntry(a), f, now, t.cfg.EasyConnectWindow)
		}
	}
	if s := t.byFlow[f.ID]; s != nil {
		t.update(s, f, now) // a member's labels grew: no new session record
		return nil
	}
	if f.Proto != ProtoTCP || !(f.Labels.Has(LabelRDP) || f.Labels.Has(LabelRDPRACandidate)) {
		return nil
	}
	mode, conf, why, pre := t.chain(f, client, server, now)
	if mode == "" {
		return nil
	}
	s := &Session{Mode: mode, Novice: server, Expert: client, Confidence: conf, First: now, Last: now, Why: why}
	if pre != nil {
		s.Members = append(s.Members, pre.members...)
		if pre.first.Before(s.First) {
			s.First = pre.first
		}
	}
	s.Members = append(s.Members, memberOf(f))
	s.ID = sessionID(f.ID, mode)
	if len(t.sessions) >= t.cfg.MaxSessions {
		t.dropOldestSession()
	}
	t.sessions[s.ID] = s
	for _, m := range s.Members {
		t.byFlow[m.FlowID] = s
	}
	t.size.Store(int64(len(t.byFlow)))
	t.counters.SessionsFormed.Add(1)
	f.AddLabel(LabelRASession, conf)
	f.Ext().Session = s
	return s
}

// chain decides which chain, if any, the RDP flow f completes.
func (t *SessionTable) chain(f *Flow, client, server netip.Addr, now time.Time) (SessionMode, Confidence, string, *pending) {
	if x := f.ext; x != nil && x.Expected != nil {
		e := x.Expected
		// The flow that carried the ticket or the mapping is a member too.
		announcer := func(l Label) *pending {
			if e.FromFlow == 0 || !e.FromClient.IsValid() {
				return nil
			}
			return &pending{first: e.Created, members: []SessionMember{{FlowID: e.FromFlow, Labels: LabelSet(0).With(l),
				Client: e.FromClient, Server: e.FromServer}}}
		}
		switch e.Reason {
		case "invitation":
			return ModeInvitation, ConfidenceHigh, "RDP to a listener named in an invitation ticket", announcer(LabelRAInvitationFile)
		case "upnp-portmap":
			return ModeUPnP, ConfidenceHigh, "RDP to a port opened by a UPnP AddPortMapping", announcer(LabelUPnPPortmapAdd)
		}
	}
	if p := t.offers[hostPair{client, server}]; p != nil && !now.After(p.expires) {
		return ModeOffer, ConfidenceDefinitive, "RDP after an Offer Remote Assistance DCOM exchange between the same hosts", p
	}
	if x := f.ext; x != nil && x.Tunnel != nil && x.Tunnel.Type == "teredo" {
		for _, a := range [...]netip.Addr{server, client} {
			if p := t.pnrp[a]; p != nil && !now.After(p.expires) {
				return ModeEasyConnect, ConfidenceHigh, "RDP inside Teredo to or from a host with Remote Assistance PNRP activity", p
			}
		}
	}
	if f.Labels.Has(LabelRDPRACandidate) {
		return ModeUnknown, ConfidenceMedium, "RDP with the shape of Remote Assistance (plain RDP security to a dynamic port, or its virtual channels)", nil
	}
	return "", 0, "", nil
}

func (t *SessionTable) offerEntry(k hostPair) *pending { return pendingEntry(t, t.offers, k) }

func (t *SessionTable) pnrpEntry(a netip.Addr) *pending { return pendingEntry(t, t.pnrp, a) }

// pendingEntry returns m's entry for k, creating it while the precursor
// tables (offers and PNRP hosts together) are below their bound.
func pendingEntry[K comparable](t *SessionTable, m map[K]*pending, k K) *pending {
	p := m[k]
	if p == nil {
		if len(t.offers)+len(t.pnrp) >= t.cfg.MaxPending {
			t.counters.SessionsDropped.Add(1)
			return nil
		}
		p = &pending{}
		m[k] = p
	}
	return p
}

func (t *SessionTable) remember(p *pending, f *Flow, now time.Time, window time.Duration) {
	if p == nil {
		return
	}
	if p.first.IsZero() || now.Before(p.first) {
		p.first = f.Start()
	}
	p.expires = now.Add(window)
	for i := range p.members {
		if p.members[i].FlowID == f.ID {
			p.members[i].Labels = f.Labels
			return
		}
	}
	if len(p.members) < maxMembers {
		p.members = append(p.members, memberOf(f))
	}
}

func (t *SessionTable) update(s *Session, f *Flow, now time.Time) {
	if now.After(s.Last) {
		s.Last = now
	}
	for i := range s.Members {
		if s.Members[i].FlowID == f.ID {
			s.Members[i].Labels = f.Labels
			return
		}
	}
	if len(s.Members) < maxMembers {
		s.Members = append(s.Members, memberOf(f))
		t.byFlow[f.ID] = s
		t.size.Store(int64(len(t.byFlow)))
	}
}

// SessionOf returns the session a flow belongs to, or nil.
func (t *SessionTable) SessionOf(flowID uint64) *Session {
	if t.size.Load() == 0 {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byFlow[flowID]
}

// Len returns the number of sessions remembered and of precursors pending.
func (t *SessionTable) Len() (sessions, pendingPrecursors int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.sessions), len(t.offers) + len(t.pnrp)
}

func (t *SessionTable) expire(now time.Time) {
	for k, p := range t.offers {
		if now.After(p.expires) {
			delete(t.offers, k)
			t.counters.SessionsExpired.Add(1)
		}
	}
	for k, p := range t.pnrp {
		if now.After(p.expires) {
			delete(t.pnrp, k)
			t.counters.SessionsExpired.Add(1)
		}
	}
	for id, s := range t.sessions {
		if now.Sub(s.Last) > t.cfg.SessionIdle {
			t.forget(id, s)
		}
	}
}

func (t *SessionTable) forget(id string, s *Session) {
	delete(t.sessions, id)
	for _, m := range s.Members {
		if t.byFlow[m.FlowID] == s {
			delete(t.byFlow, m.FlowID)
		}
	}
	t.size.Store(int64(len(t.byFlow)))
}

func (t *SessionTable) dropOldestSession() {
	var oldest *Session
	for _, s := range t.sessions {
		if oldest == nil || s.Last.Before(oldest.Last) || (s.Last.Equal(oldest.Last) && s.ID < oldest.ID) {
			oldest = s
		}
	}
	if oldest != nil {
		t.forget(oldest.ID, oldest)
		t.counters.SessionsDropped.Add(1)
	}
}

// sessionID derives a stable id from the completing flow and the mode.
func sessionID(flowID uint64, mode SessionMode) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], flowID)
	h := fnv1a(append(b[:], mode...))
	return fmt.Sprintf("ras-%016x", h)
}
