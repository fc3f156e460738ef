package rules

import (
	"fmt"
	"hash/fnv"
	"math/bits"
	"net/netip"
	"slices"
	"strings"

	"github.com/rasentry/rasentry/classify"
)

// Signature ids. A rule's sid is the one it gives; otherwise it is derived
// from its id: SignatureIDBase + FNV-1a-32(id) mod SignatureIDRange, so it
// stays the same across edits, reloads and machines as long as the id does.
// Compiled setting rules ("setting:offer", ...) and the default ("default")
// get theirs the same way. Two rules landing on one sid is a problem the
// check reports, asking for an explicit sid.
const (
	SignatureIDBase  = 9_100_000
	SignatureIDRange = 100_000
)

// SignatureID returns the signature id derived from a rule id.
func SignatureID(ruleID string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(ruleID))
	return SignatureIDBase + h.Sum32()%SignatureIDRange
}

// Labels each setting acts on (protocols.md §6.1, §6.4).
var (
	offerLabels = classify.LabelSet(0).With(classify.LabelRADCOMOffer)
	// An Offer RA session's RDP connection is an rdp-ra-candidate flow
	// before the session is assembled; a helper's must pass.
	offerHelperLabels     = offerLabels.With(classify.LabelRDPRACandidate)
	invitationLabels      = classify.LabelSet(0).With(classify.LabelRAInvitationFile)
	solicitedFlowLabels   = invitationLabels.With(classify.LabelPNRPRAEasyConnect).With(classify.LabelRDPRACandidate)
	teredoLabels          = classify.LabelSet(0).With(classify.LabelTeredo).With(classify.LabelTeredoQualification)
	upnpLabels            = classify.LabelSet(0).With(classify.LabelUPnPPortmapAdd)
	pnrpLabels            = classify.LabelSet(0).With(classify.LabelPNRP).With(classify.LabelPNRPRAEasyConnect)
	dnsLabels             = classify.LabelSet(0).With(classify.LabelDNSTeredoServer).With(classify.LabelDNSPNRPSeed)
	sessionishLabels      = classify.LabelSet(0).With(classify.LabelRASession).With(classify.LabelRDPRACandidate)
	offerNoteLabels       = offerLabels
	solicitedNoteLabels   = invitationLabels.With(classify.LabelPNRPRAEasyConnect)
	solicitedSessionModes = modeInvitation | modeEasyConnect | modeUPnP | modeUnknown
)

// Session mode bits of a match.
const (
	modeNone uint8 = 1 << iota
	modeOffer
	modeInvitation
	modeEasyConnect
	modeUPnP
	modeUnknown
	modeAll = 1<<iota - 1
)

func modeBit(m classify.SessionMode) uint8 {
	switch m {
	case "":
		return modeNone
	case classify.ModeOffer:
		return modeOffer
	case classify.ModeInvitation:
		return modeInvitation
	case classify.ModeEasyConnect:
		return modeEasyConnect
	case classify.ModeUPnP:
		return modeUPnP
	}
	return modeUnknown
}

// Endpoints of a match, indexes into facts' arrays.
const (
	epClient = iota
	epServer
	epLocal
)

var endpointNames = [3]string{"client", "server", "local host"}

// facts is what a matcher needs to know about a subject, computed once per
// evaluation. It holds no pointers and is passed by value, so evaluating
// never makes the caller's Subject escape.
type facts struct {
	labels classify.LabelSet
	nets   [3]uint64 // named networks the client, server and local host are in
	groups [3]uint64
	port   [3]uint16
	mode   uint8 // one mode bit
	dir    Direction
	proto  uint8
	inner  bool
	plain  bool
}

// matchSpec is one conjunction of conditions, with names resolved to bits.
type matchSpec struct {
	labels, notLabels classify.LabelSet
	modes             uint8 // 0: any
	dirs              uint8 // bits 1<<Direction; 0: any
	protos            [4]uint64
	hasProtos         bool // protos constrains; otherwise any protocol
	inner, plain      int8 // 0: any, 1: must be set, -1: must be clear
	ep                [3]endpointSpec
}

type endpointSpec struct {
	nets        uint64
	internet    bool
	notNets     uint64
	notInternet bool
	groups      uint64
	notGroups   uint64
	ports       []PortRange
}

func (e *endpointSpec) netConstrained() bool { return e.nets != 0 || e.internet }

// ruleSpec is a rule in evaluation order: explicit, or compiled from a
// setting. Alternatives are combined with OR.
type ruleSpec struct {
	id, name string
	sid      uint32
	rev      int
	severity int
	action   Action
	alts     []matchSpec
	suppress *Suppression
	pos      Pos
	origin   string // the rule and where it comes from, for messages
	key      string // the policy key it comes from: "rules" or "remote_assistance.…"
	reason   string // Decision.Reason
}

// netEnv resolves addresses to the named networks and groups they are in.
type netEnv struct {
	nets, groups         []prefixBit
	netNames, groupNames []string
	// implies[i] has bit j set when every address of set i is in set j, so
	// a rule asking for j also matches what a rule asking for i matches.
	netImplies, groupImplies []uint64
	netPrefixes              [][]netip.Prefix
	groupPrefixes            [][]netip.Prefix
}

type prefixBit struct {
	p   netip.Prefix
	bit uint64
}

func member(list []prefixBit, a netip.Addr) uint64 {
	var m uint64
	for i := range list {
		if list[i].p.Contains(a) {
			m |= list[i].bit
		}
	}
	return m
}

// built is a policy resolved into rule specs, ready to compile.
type built struct {
	env          netEnv
	specs        []ruleSpec
	deflt        ruleSpec
	offerNotes   []string
	solicitNotes []string
	allNotes     []string
	notes        Problems
	netIndex     map[string]int
	groupIndex   map[string]int
}

// build resolves a policy: networks and groups into bits, settings into
// rules after the explicit ones, signature ids; then reports derived-sid
// collisions and rules shadowed by earlier ones.
func build(p *Policy, pl *problemList) *built {
	b := &built{netIndex: map[string]int{}, groupIndex: map[string]int{}}
	if len(p.Networks) > 64 || len(p.Groups) > 64 {
		pl.addf(Pos{}, "at most 64 networks and 64 groups may be named")
		return b
	}
	for i, n := range p.Networks {
		if _, dup := b.netIndex[n.Name]; dup {
			pl.addf(n.Pos, "network %q is defined twice", n.Name)
		}
		b.netIndex[n.Name] = i
		b.env.netNames = append(b.env.netNames, n.Name)
		b.env.netPrefixes = append(b.env.netPrefixes, n.Prefixes)
		for _, pr := range n.Prefixes {
			b.env.nets = append(b.env.nets, prefixBit{pr, 1 << i})
		}
	}
	for i, g := range p.Groups {
		if _, dup := b.groupIndex[g.Name]; dup {
			pl.addf(g.Pos, "group %q is defined twice", g.Name)
		}
		b.groupIndex[g.Name] = i
		b.env.groupNames = append(b.env.groupNames, g.Name)
		b.env.groupPrefixes = append(b.env.groupPrefixes, g.Prefixes)
		for _, pr := range g.Prefixes {
			b.env.groups = append(b.env.groups, prefixBit{pr, 1 << i})
		}
	}
	b.env.netImplies = implies(b.env.netPrefixes)
	b.env.groupImplies = implies(b.env.groupPrefixes)

	for i := range p.Rules {
		b.explicit(&p.Rules[i], pl)
	}
	b.settings(&p.RemoteAssistance, pl)
	d := p.Default
	if d.Action == 0 {
		d.Action = ActionLog
	}
	if d.Severity == 0 {
		d.Severity = defaultSeverity(d.Action)
	}
	b.deflt = ruleSpec{
		id: "default", name: "rasentry default policy: " + d.Action.String(), rev: 1,
		severity: d.Severity, action: d.Action, pos: d.Pos, origin: "the default", key: "default",
		reason: "no rule matched, so the policy's default applies",
	}
	b.deflt.sid = SignatureID("default")
	b.notesFrom(&p.RemoteAssistance, pl.file)

	b.checkSIDs(pl)
	b.checkShadowing(pl)
	return b
}

// implies computes, for sets of prefixes, which sets contain which.
func implies(sets [][]netip.Prefix) []uint64 {
	out := make([]uint64, len(sets))
	for i, a := range sets {
		for j, bset := range sets {
			if len(a) > 0 && prefixesWithin(a, bset) {
				out[i] |= 1 << j
			}
		}
	}
	return out
}

// prefixesWithin reports whether every prefix of a lies inside some prefix of b.
func prefixesWithin(a, b []netip.Prefix) bool {
	for _, p := range a {
		if !slices.ContainsFunc(b, func(q netip.Prefix) bool { return prefixWithin(p, q) }) {
			return false
		}
	}
	return true
}

func prefixWithin(p, q netip.Prefix) bool {
	return q.Bits() <= p.Bits() && q.Contains(p.Addr())
}

func (b *built) explicit(r *Rule, pl *problemList) {
	where := fmt.Sprintf("rule %q", r.ID)
	m, ok := b.resolve(&r.Match, r.Pos, where, pl)
	if !ok {
		return
	}
	if r.Action < ActionAllow || r.Action > ActionBlock {
		pl.addf(r.Pos, "%s: action is missing or invalid", where)
	}
	sev := r.Severity
	if sev == 0 {
		sev = defaultSeverity(r.Action)
	}
	if sev < 1 || sev > 4 {
		pl.addf(r.Pos, "%s: severity %d is out of range (1 to 4)", where, sev)
	}
	rev := max(r.Rev, 1)
	name := r.Name
	if name == "" {
		name = r.ID
	}
	origin := "rule " + r.ID
	if r.Pos.Line > 0 {
		origin = fmt.Sprintf("rule %s (line %d)", r.ID, r.Pos.Line)
	}
	origin = strings.TrimSpace(origin)
	spec := ruleSpec{
		id: r.ID, name: name, sid: r.SID, rev: rev, severity: sev, action: r.Action,
		alts: []matchSpec{m}, suppress: r.Suppress, pos: r.Pos, origin: origin, key: "rules",
	}
	if r.Suppress != nil && r.Suppress.Window <= 0 {
		pl.addf(r.Pos, "%s: suppress.window must be positive", where)
	}
	spec.reason = origin + " matches " + b.describeAlts(spec.alts)
	b.specs = append(b.specs, spec)
}

// resolve turns a Match into bits; unknown names are problems.
func (b *built) resolve(m *Match, at Pos, where string, pl *problemList) (matchSpec, bool) {
	ok := true
	var s matchSpec
	s.labels, s.notLabels = m.Labels, m.NotLabels
	for _, mode := range m.Modes {
		s.modes |= modeBit(mode)
	}
	for _, d := range m.Directions {
		if d < DirectionInternal || d > DirectionExternal {
			pl.addf(at, "%s: invalid direction %d", where, d)
			ok = false
			continue
		}
		s.dirs |= 1 << d
	}
	s.hasProtos = len(m.Protos) > 0
	for _, pr := range m.Protos {
		s.protos[pr>>6] |= 1 << (pr & 63)
	}
	s.inner = tri(m.Inner)
	s.plain = tri(m.InvitationPlain)
	for i, e := range [3]*Endpoint{&m.Client, &m.Server, &m.Local} {
		es := &s.ep[i]
		w := where + ": " + endpointNames[i]
		var good bool
		es.nets, es.internet, good = b.netBits(e.Networks, at, w, pl)
		ok = ok && good
		es.notNets, es.notInternet, good = b.netBits(e.NotNetworks, at, w, pl)
		ok = ok && good
		es.groups, good = b.groupBits(e.Groups, at, w, pl)
		ok = ok && good
		es.notGroups, good = b.groupBits(e.NotGroups, at, w, pl)
		ok = ok && good
		es.ports = e.Ports
		for _, r := range e.Ports {
			if r.Lo == 0 || r.Lo > r.Hi {
				pl.addf(at, "%s: invalid port range %d-%d", w, r.Lo, r.Hi)
				ok = false
			}
		}
	}
	return s, ok
}

func tri(b *bool) int8 {
	switch {
	case b == nil:
		return 0
	case *b:
		return 1
	}
	return -1
}

func (b *built) netBits(names []string, at Pos, where string, pl *problemList) (uint64, bool, bool) {
	var m uint64
	internet, ok := false, true
	for _, n := range names {
		if n == "internet" {
			internet = true
			continue
		}
		i, found := b.netIndex[n]
		if !found {
			pl.addf(at, "%s: unknown network %q", where, n)
			ok = false
			continue
		}
		m |= 1 << i
	}
	return m, internet, ok
}

func (b *built) groupBits(names []string, at Pos, where string, pl *problemList) (uint64, bool) {
	var m uint64
	ok := true
	for _, n := range names {
		i, found := b.groupIndex[n]
		if !found {
			pl.addf(at, "%s: unknown group %q", where, n)
			ok = false
			continue
		}
		m |= 1 << i
	}
	return m, ok
}

// settings compiles remote_assistance into rules, in this order: offer,
// encrypted invitations, solicited, then Teredo, UPnP, PNRP and DNS. The
// restrictions on Remote Assistance itself come before the helpers so that
// an Easy Connect flow blocked as solicited Remote Assistance says so, and
// offer comes first so that a helper's offer passes before the solicited
// rule looks at its RDP connection.
func (b *built) settings(s *Settings, pl *problemList) {
	o := &s.Offer
	if o.State == StateEnabled {
		helpers, ok := b.groupBits(o.Helpers, o.Pos, "remote_assistance.offer.helpers", pl)
		domainNames := o.Networks
		if len(domainNames) == 0 {
			if _, found := b.netIndex["domain"]; found {
				domainNames = []string{"domain"}
			} else {
				domainNames = b.env.netNames
			}
		}
		domain, _, ok2 := b.netBits(domainNames, o.Pos, "remote_assistance.offer.networks", pl)
		if ok && ok2 {
			if helpers == 0 {
				pl.addf(o.Pos, "remote_assistance.offer: enabled, but no helpers are listed, so no one could offer")
			}
			if domain == 0 {
				pl.addf(o.Pos, "remote_assistance.offer: enabled, but no networks are defined to offer to")
			}
			pair := func(m matchSpec) matchSpec {
				m.ep[epClient].groups = helpers
				m.ep[epServer].nets = domain
				return m
			}
			b.specs = append(b.specs, ruleSpec{
				id: "setting:offer:helpers", name: "Offer Remote Assistance from a listed helper to a domain host",
				action: ActionAllow, severity: 4,
				alts: []matchSpec{
					pair(matchSpec{labels: offerHelperLabels, modes: modeNone | modeOffer}),
					pair(matchSpec{modes: modeOffer}),
				},
				pos: o.Pos, key: "remote_assistance.offer",
				reason: fmt.Sprintf("Offer Remote Assistance is enabled for helpers in group %s offering to hosts in network %s",
					strings.Join(o.Helpers, ", "), strings.Join(domainNames, ", ")),
			})
		}
	}
	if o.State != StateNotConfigured {
		reason := "Offer Remote Assistance is disabled"
		name := "Offer Remote Assistance (disabled by policy)"
		if o.State == StateEnabled {
			reason = "Offer Remote Assistance is allowed only from the listed helpers to domain hosts, and this is not such an offer"
			name = "Offer Remote Assistance from a host that is not a listed helper, or to a host outside the domain"
		}
		b.specs = append(b.specs, ruleSpec{
			id: "setting:offer", name: name, action: o.Action, severity: sevOr(o.Severity, o.Action),
			alts: []matchSpec{{labels: offerLabels}, {modes: modeOffer}},
			pos:  o.Pos, key: "remote_assistance.offer", reason: reason,
		})
	}
	e := &s.EncryptedInvitationsOnly
	if e.Enabled {
		b.specs = append(b.specs, ruleSpec{
			id: "setting:encrypted-invitations-only", name: "Remote Assistance invitation with a plain-text ticket (RCTICKET)",
			action: e.Action, severity: sevOr(e.Severity, e.Action),
			alts: []matchSpec{{labels: invitationLabels, plain: 1}},
			pos:  e.Pos, key: "remote_assistance.encrypted_invitations_only",
			reason: "only encrypted invitations are allowed (Windows Vista or later), and this invitation file carries the XP-compatible RCTICKET with the novice's addresses in plain text",
		})
	}
	so := &s.Solicited
	if so.State == StateDisabled {
		b.specs = append(b.specs, ruleSpec{
			id: "setting:solicited", name: "Solicited Remote Assistance (disabled by policy)",
			action: so.Action, severity: sevOr(so.Severity, so.Action),
			alts: []matchSpec{
				{labels: solicitedFlowLabels, modes: modeNone},
				{modes: solicitedSessionModes},
			},
			pos: so.Pos, key: "remote_assistance.solicited",
			reason: "Solicited Remote Assistance (invitations, Easy Connect, UPnP-assisted and unattributed sessions) is disabled",
		})
	}
	for _, h := range []struct {
		key, title string
		set        *HelperSetting
		labels     classify.LabelSet
	}{
		{"teredo", "Teredo", &s.Teredo, teredoLabels},
		{"upnp", "UPnP port mapping", &s.UPnP, upnpLabels},
		{"pnrp", "PNRP", &s.PNRP, pnrpLabels},
		{"dns", "DNS lookup of a Teredo server or PNRP seed", &s.DNS, dnsLabels},
	} {
		for _, en := range h.set.Entries {
			spec := ruleSpec{
				id: "setting:" + h.key, action: en.Action, severity: sevOr(en.Severity, en.Action),
				pos: en.Pos, key: "remote_assistance." + h.key,
			}
			if en.Network != "default" && en.Network != "" {
				spec.key += "." + en.Network
			}
			m := matchSpec{labels: h.labels}
			switch en.Network {
			case "default", "":
				spec.name = h.title
				spec.reason = fmt.Sprintf("remote_assistance.%s sets %s for every host", h.key, en.Action)
			case "internet":
				spec.id += ":internet"
				spec.name = h.title + " between Internet hosts"
				spec.reason = fmt.Sprintf("remote_assistance.%s sets %s when neither endpoint is in a named network", h.key, en.Action)
				m.ep[epLocal].internet = true
			default:
				i, found := b.netIndex[en.Network]
				if !found {
					pl.addf(en.Pos, "remote_assistance.%s: unknown network %q", h.key, en.Network)
					continue
				}
				spec.id += ":" + en.Network
				spec.name = h.title + " from network " + en.Network
				spec.reason = fmt.Sprintf("remote_assistance.%s sets %s for hosts in network %s", h.key, en.Action, en.Network)
				m.ep[epLocal].nets = 1 << i
			}
			if en.Action < ActionAllow || en.Action > ActionBlock {
				pl.addf(en.Pos, "remote_assistance.%s: invalid action", h.key)
				continue
			}
			spec.alts = []matchSpec{m}
			b.specs = append(b.specs, spec)
		}
	}
	for i := range b.specs {
		r := &b.specs[i]
		if r.rev == 0 {
			r.rev = 1
		}
		if r.origin == "" {
			r.origin = r.id + " (" + r.key
			if r.pos.Line > 0 {
				r.origin += fmt.Sprintf(", line %d", r.pos.Line)
			}
			r.origin += ")"
		}
	}
}

func sevOr(sev int, a Action) int {
	if sev >= 1 && sev <= 4 {
		return sev
	}
	return defaultSeverity(a)
}

// or returns p, or q when p is unset.
func or(p, q Pos) Pos {
	if p == (Pos{}) {
		return q
	}
	return p
}

// notesFrom lists the settings that cannot be enforced on the wire.
func (b *built) notesFrom(s *Settings, file string) {
	add := func(at Pos, to *[]string, msg string) {
		*to = append(*to, msg)
		b.notes = append(b.notes, Problem{File: file, Line: at.Line, Col: at.Col, Msg: "note: " + msg})
	}
	const viewOnly = "view-only control is not enforceable on the wire: viewing and controlling travel in the same encrypted RDP session; the hosts' Group Policy enforces it"
	if s.Offer.Control == ControlViewOnly {
		add(or(s.Offer.ControlPos, s.Offer.Pos), &b.offerNotes, "remote_assistance.offer.control: "+viewOnly)
	}
	if s.Solicited.Control == ControlViewOnly {
		add(or(s.Solicited.ControlPos, s.Solicited.Pos), &b.solicitNotes, "remote_assistance.solicited.control: "+viewOnly)
	}
	if s.Solicited.MaxTicketTime > 0 {
		add(or(s.Solicited.MaxTicketTimePos, s.Solicited.Pos), &b.solicitNotes, fmt.Sprintf("remote_assistance.solicited.max_ticket_time: %s is not enforceable on the wire: an invitation's lifetime travels inside its encrypted LHTICKET; the hosts' Group Policy enforces it", fmtDuration(s.Solicited.MaxTicketTime)))
	}
	b.allNotes = append(slices.Clip(b.offerNotes), b.solicitNotes...)
	b.notes = b.notes.sort()
}

// checkSIDs assigns derived signature ids and reports two rules sharing one.
func (b *built) checkSIDs(pl *problemList) {
	seen := map[uint32]*ruleSpec{b.deflt.sid: &b.deflt}
	for i := range b.specs {
		r := &b.specs[i]
		explicit := r.sid != 0
		if !explicit {
			r.sid = SignatureID(r.id)
		}
		if other, dup := seen[r.sid]; dup {
			if explicit {
				pl.addf(r.pos, "%s: sid %d is also the signature id of %s", r.origin, r.sid, other.origin)
			} else {
				pl.addf(r.pos, "%s: the signature id derived from its id (%d) is also that of %s; give one of them an explicit sid", r.origin, r.sid, other.origin)
			}
			continue
		}
		seen[r.sid] = r
	}
}

// checkShadowing reports every rule that can never match because an earlier
// rule matches everything it matches. The comparison is conservative: it
// compares field by field (with network and group containment), so it may
// miss a shadow made by several earlier rules together, but never reports
// one that is not there. Suppression does not make a rule fall through (a
// suppressed match is still that rule's decision), so it plays no part.
func (b *built) checkShadowing(pl *problemList) {
	for j := range b.specs {
		later := &b.specs[j]
		for i := 0; i < j; i++ {
			if b.covers(&b.specs[i], later) {
				pl.addf(later.pos, "%s can never match: %s comes first and matches everything it matches", later.origin, b.specs[i].origin)
				break
			}
		}
	}
}

// covers reports whether a matches every subject b matches.
func (bl *built) covers(a, b *ruleSpec) bool {
	for k := range b.alts {
		if !slices.ContainsFunc(a.alts, func(am matchSpec) bool { return bl.altCovers(&am, &b.alts[k]) }) {
			return false
		}
	}
	return true
}

func (bl *built) altCovers(a, b *matchSpec) bool {
	if a.labels != 0 && (b.labels == 0 || b.labels&^a.labels != 0) {
		return false
	}
	if a.notLabels&^b.notLabels != 0 {
		return false
	}
	if a.modes != 0 && a.modes != modeAll && (b.modes == 0 || b.modes&^a.modes != 0) {
		return false
	}
	if a.dirs != 0 && (b.dirs == 0 || b.dirs&^a.dirs != 0) {
		return false
	}
	if a.hasProtos && (!b.hasProtos || b.protos[0]&^a.protos[0] != 0 || b.protos[1]&^a.protos[1] != 0 ||
		b.protos[2]&^a.protos[2] != 0 || b.protos[3]&^a.protos[3] != 0) {
		return false
	}
	if a.inner != 0 && a.inner != b.inner {
		return false
	}
	if a.plain != 0 && a.plain != b.plain {
		return false
	}
	for i := range a.ep {
		if !endpointCovers(&a.ep[i], &b.ep[i], bl.env.netImplies, bl.env.groupImplies) {
			return false
		}
	}
	return true
}

func endpointCovers(a, b *endpointSpec, netImplies, groupImplies []uint64) bool {
	if a.netConstrained() {
		if !b.netConstrained() || (b.internet && !a.internet) {
			return false
		}
		for m := b.nets; m != 0; m &= m - 1 {
			if netImplies[bits.TrailingZeros64(m)]&a.nets == 0 {
				return false
			}
		}
	}
	onlyInternet := b.internet && b.nets == 0
	if !onlyInternet {
		if a.notNets&^b.notNets != 0 {
			return false
		}
	}
	if a.notInternet && !b.notInternet && !(b.nets != 0 && !b.internet) {
		return false
	}
	if a.groups != 0 {
		if b.groups == 0 {
			return false
		}
		for m := b.groups; m != 0; m &= m - 1 {
			if groupImplies[bits.TrailingZeros64(m)]&a.groups == 0 {
				return false
			}
		}
	}
	if a.notGroups&^b.notGroups != 0 {
		return false
	}
	if len(a.ports) > 0 {
		if len(b.ports) == 0 {
			return false
		}
		for _, br := range b.ports {
			if !slices.ContainsFunc(a.ports, func(ar PortRange) bool { return ar.Lo <= br.Lo && br.Hi <= ar.Hi }) {
				return false
			}
		}
	}
	return true
}
