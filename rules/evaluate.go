package rules

// Compiled is a policy compiled into plain matcher functions, one per rule,
// in evaluation order. It is immutable: the engine holds it behind an atomic
// pointer and swaps it whole on reload.
type Compiled struct {
	source                             string
	env                                netEnv
	rules                              []compiledRule
	deflt                              compiledRule
	specs                              []ruleSpec // for Explain
	defltSpec                          ruleSpec
	offerNotes, solicitNotes, allNotes []string
	notes                              Problems
	networks                           []Network
	groups                             []Group
}

type compiledRule struct {
	match    func(facts) bool
	decision Decision // everything but Direction and Unenforceable
	suppress *Suppression
	idFields uint8 // identifier fields, idClientIP etc.
}

// Identifier fields of a suppression key.
const (
	idClientIP uint8 = 1 << iota
	idClientPort
	idServerIP
	idServerPort
	idProto
	idMode
)

var identifierBits = map[string]uint8{
	"client_ip": idClientIP, "client_port": idClientPort, "server_ip": idServerIP,
	"server_port": idServerPort, "proto": idProto, "mode": idMode,
}

// Compile validates p and compiles it. The error is a Problems value; a
// policy from Load, LoadBytes or Preset always compiles.
func Compile(p *Policy) (*Compiled, error) {
	pl := problemList{file: p.Source}
	b := build(p, &pl)
	if err := pl.err(); err != nil {
		return nil, err
	}
	c := &Compiled{
		source: p.Source, env: b.env, specs: b.specs, defltSpec: b.deflt,
		offerNotes: b.offerNotes, solicitNotes: b.solicitNotes, allNotes: b.allNotes, notes: b.notes,
		networks: p.Networks, groups: p.Groups,
	}
	c.rules = make([]compiledRule, len(b.specs))
	for i := range b.specs {
		c.rules[i] = compileRule(&b.specs[i])
	}
	c.deflt = compileRule(&b.deflt)
	c.deflt.match = nil
	return c, nil
}

func compileRule(s *ruleSpec) compiledRule {
	alts := make([]func(facts) bool, len(s.alts))
	for i := range s.alts {
		alts[i] = compileAlt(&s.alts[i])
	}
	r := compiledRule{
		match: anyOf(alts),
		decision: Decision{
			Action: s.action, RuleID: s.id, RuleName: s.name, SignatureID: s.sid,
			Rev: s.rev, Severity: s.severity, Reason: s.reason,
		},
		suppress: s.suppress,
	}
	if s.suppress != nil {
		for _, f := range s.suppress.Identifier {
			r.idFields |= identifierBits[f]
		}
		if r.idFields == 0 {
			r.idFields = idClientIP | idServerIP
		}
	}
	return r
}

func always(facts) bool { return true }

func anyOf(alts []func(facts) bool) func(facts) bool {
	switch len(alts) {
	case 0:
		return func(facts) bool { return false }
	case 1:
		return alts[0]
	case 2:
		a, b := alts[0], alts[1]
		return func(f facts) bool { return a(f) || b(f) }
	}
	return func(f facts) bool {
		for _, m := range alts {
			if m(f) {
				return true
			}
		}
		return false
	}
}

func allOf(preds []func(facts) bool) func(facts) bool {
	switch len(preds) {
	case 0:
		return always
	case 1:
		return preds[0]
	case 2:
		a, b := preds[0], preds[1]
		return func(f facts) bool { return a(f) && b(f) }
	}
	return func(f facts) bool {
		for _, p := range preds {
			if !p(f) {
				return false
			}
		}
		return true
	}
}

// compileAlt turns one conjunction into a function that tests only the
// fields the rule constrains.
func compileAlt(m *matchSpec) func(facts) bool {
	var preds []func(facts) bool
	if l := m.labels; l != 0 {
		preds = append(preds, func(f facts) bool { return f.labels&l != 0 })
	}
	if l := m.notLabels; l != 0 {
		preds = append(preds, func(f facts) bool { return f.labels&l == 0 })
	}
	if md := m.modes; md != 0 && md != modeAll {
		preds = append(preds, func(f facts) bool { return f.mode&md != 0 })
	}
	if d := m.dirs; d != 0 {
		preds = append(preds, func(f facts) bool { return d&(1<<f.dir) != 0 })
	}
	if m.hasProtos {
		p := m.protos
		preds = append(preds, func(f facts) bool { return p[f.proto>>6]&(1<<(f.proto&63)) != 0 })
	}
	if m.inner != 0 {
		want := m.inner > 0
		preds = append(preds, func(f facts) bool { return f.inner == want })
	}
	if m.plain != 0 {
		want := m.plain > 0
		preds = append(preds, func(f facts) bool { return f.plain == want })
	}
	for i := range m.ep {
		e := m.ep[i]
		if e.netConstrained() {
			nets, internet := e.nets, e.internet
			preds = append(preds, func(f facts) bool {
				n := f.nets[i]
				return n&nets != 0 || (internet && n == 0)
			})
		}
		if e.notNets != 0 || e.notInternet {
			nets, internet := e.notNets, e.notInternet
			preds = append(preds, func(f facts) bool {
				n := f.nets[i]
				return n&nets == 0 && !(internet && n == 0)
			})
		}
		if g := e.groups; g != 0 {
			preds = append(preds, func(f facts) bool { return f.groups[i]&g != 0 })
		}
		if g := e.notGroups; g != 0 {
			preds = append(preds, func(f facts) bool { return f.groups[i]&g == 0 })
		}
		if ports := e.ports; len(ports) > 0 {
			preds = append(preds, func(f facts) bool {
				p := f.port[i]
				for _, r := range ports {
					if r.Lo <= p && p <= r.Hi {
						return true
					}
				}
				return false
			})
		}
	}
	return allOf(preds)
}

// facts computes what the matchers need: network and group membership of
// both endpoints, direction, the local host, the mode bit.
func (c *Compiled) facts(s *Subject) facts {
	ca, sa := s.Client.Addr().Unmap(), s.Server.Addr().Unmap()
	f := facts{
		labels: s.Labels, mode: modeBit(s.Mode), proto: s.Proto,
		inner: s.Inner, plain: s.InvitationPlain,
	}
	f.nets[epClient] = member(c.env.nets, ca)
	f.nets[epServer] = member(c.env.nets, sa)
	if len(c.env.groups) > 0 {
		f.groups[epClient] = member(c.env.groups, ca)
		f.groups[epServer] = member(c.env.groups, sa)
	}
	f.port[epClient], f.port[epServer] = s.Client.Port(), s.Server.Port()
	local := epServer
	switch cin, sin := f.nets[epClient] != 0, f.nets[epServer] != 0; {
	case cin && sin:
		f.dir, local = DirectionInternal, epClient
	case cin:
		f.dir, local = DirectionOutbound, epClient
	case sin:
		f.dir = DirectionInbound
	default:
		f.dir = DirectionExternal
	}
	f.nets[epLocal], f.groups[epLocal], f.port[epLocal] = f.nets[local], f.groups[local], f.port[local]
	return f
}

// Evaluate decides a subject: the first rule that matches, else the
// default. It is pure and allocates nothing; suppression is the Engine's.
func (c *Compiled) Evaluate(s *Subject) Decision {
	d, _ := c.evaluate(s)
	return d
}

func (c *Compiled) evaluate(s *Subject) (Decision, *compiledRule) {
	f := c.facts(s)
	r := &c.deflt
	for i := range c.rules {
		if c.rules[i].match(f) {
			r = &c.rules[i]
			break
		}
	}
	d := r.decision
	d.Direction = f.dir.String()
	d.Unenforceable = c.notesFor(&f)
	return d, r
}

// notesFor returns the unenforceable settings that concern the subject: the
// offer notes for offers, the solicited notes for solicited Remote
// Assistance, both for an RDP session not yet attributed to either.
func (c *Compiled) notesFor(f *facts) []string {
	if len(c.allNotes) == 0 {
		return nil
	}
	offer := f.mode == modeOffer || f.labels&offerNoteLabels != 0
	solicited := f.mode&solicitedSessionModes != 0 || f.labels&solicitedNoteLabels != 0
	if f.mode == modeNone && f.labels&sessionishLabels != 0 {
		offer, solicited = true, true
	}
	switch {
	case offer && solicited:
		return c.allNotes
	case offer:
		return c.offerNotes
	case solicited:
		return c.solicitNotes
	}
	return nil
}

// Source names where the compiled policy came from.
func (c *Compiled) Source() string { return c.source }

// Len returns the number of rules, not counting the default.
func (c *Compiled) Len() int { return len(c.rules) }

// Notes returns the settings the policy accepted that cannot be enforced on
// the wire, as "FILE:LINE:COL: note: …" problems.
func (c *Compiled) Notes() Problems { return c.notes }
