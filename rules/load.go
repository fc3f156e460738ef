package rules

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rasentry/rasentry/classify"
)

// Where viper ends and yaml.v3 begins: viper (LoadConfigured, config.go)
// decides WHICH policy runs — policy.file or policy.preset, merged from the
// configuration file, RASENTRY_* environment variables and flags. The policy
// file itself is parsed here with go.yaml.in/yaml/v3 into yaml.Node trees,
// because viper flattens a file into a case-folded map and forgets where
// each value was written: a policy check must say "FILE:LINE:COL" for every
// problem, report unknown keys anywhere, keep the order of rules and
// per-network entries, and keep network and group names as written.

// maxPolicySize bounds the file a policy may be read from.
const maxPolicySize = 4 << 20

// Load reads and validates the policy file at path. The error, when not an
// I/O error, is a Problems value listing every problem found.
func Load(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPolicySize+1))
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", path, err)
	}
	return LoadBytes(path, data)
}

// LoadBytes validates the policy in data; name is the file name problems are
// reported under. The error is a Problems value.
func LoadBytes(name string, data []byte) (*Policy, error) {
	l := &loader{
		problemList: problemList{file: name},
		p:           &Policy{Source: name},
		netIndex:    map[string]int{},
		groupIndex:  map[string]int{},
	}
	if len(data) > maxPolicySize {
		l.addf(Pos{1, 1}, "policy file is larger than %d bytes", maxPolicySize)
		return nil, l.err()
	}
	root := l.parse(data)
	if root != nil {
		l.policy(root)
	}
	if len(l.list) == 0 {
		// The policy reads well; now the checks that need the whole of it:
		// derived signature ids and rules shadowed by earlier ones.
		b := build(l.p, &l.problemList)
		l.p.Notes = b.notes
	}
	if err := l.err(); err != nil {
		return nil, err
	}
	return l.p, nil
}

type loader struct {
	problemList
	p          *Policy
	netIndex   map[string]int
	groupIndex map[string]int
}

func pos(n *yaml.Node) Pos { return Pos{n.Line, n.Column} }

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parse reads the one YAML document of a policy file. Anchors and aliases
// are refused: a policy is short, and refusing them keeps expansion bombs
// out of the loader.
func (l *loader) parse(data []byte) (root *yaml.Node) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	err := func() (err error) {
		defer func() {
			// The YAML parser is not ours; a panic in it must not take the
			// sensor down on reload.
			if r := recover(); r != nil {
				err = fmt.Errorf("yaml: internal error: %v", r)
			}
		}()
		return dec.Decode(&doc)
	}()
	switch {
	case errors.Is(err, io.EOF):
		l.addf(Pos{1, 1}, "policy file is empty")
		return nil
	case err != nil:
		msg := err.Error()
		line := 1
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
			msg = m[2]
		} else {
			msg = strings.TrimPrefix(msg, "yaml: ")
		}
		l.addf(Pos{line, 1}, "YAML syntax: %s", msg)
		return nil
	}
	var extra yaml.Node
	if err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("yaml: internal error: %v", r)
			}
		}()
		return dec.Decode(&extra)
	}(); err == nil {
		l.addf(pos(&extra), "a policy file holds one YAML document; this is a second one")
	} else if !errors.Is(err, io.EOF) {
		l.addf(Pos{1, 1}, "YAML syntax after the first document: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		l.addf(Pos{1, 1}, "policy file is empty")
		return nil
	}
	l.noAliases(&doc, 0)
	root = doc.Content[0]
	if isNull(root) {
		l.addf(pos(root), "policy file is empty")
		return nil
	}
	return root
}

func (l *loader) noAliases(n *yaml.Node, depth int) {
	if depth > 64 {
		l.addf(pos(n), "nested too deeply")
		return
	}
	if n.Kind == yaml.AliasNode {
		l.addf(pos(n), "YAML aliases (*%s) are not supported in a policy; write the value out", n.Value)
		return
	}
	if n.Anchor != "" {
		l.addf(pos(n), "YAML anchors (&%s) are not supported in a policy", n.Anchor)
	}
	for _, c := range n.Content {
		l.noAliases(c, depth+1)
	}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// kv is one key and its value in a mapping.
type kv struct {
	key, val *yaml.Node
}

// mapping returns the pairs of a mapping node in file order, reporting
// duplicate keys and keys not in known (nil: any key). where names the
// mapping in messages. A null value (an empty mapping) gives no pairs.
func (l *loader) mapping(n *yaml.Node, where string, known []string) []kv {
	if isNull(n) || n.Kind == yaml.AliasNode { // an alias is reported once, by noAliases
		return nil
	}
	if n.Kind != yaml.MappingNode {
		l.addf(pos(n), "%s: want a mapping (key: value lines), got %s", where, describe(n))
		return nil
	}
	seen := map[string]Pos{}
	var out []kv
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			l.addf(pos(k), "%s: a key must be a plain name, got %s", where, describe(k))
			continue
		}
		if p, dup := seen[k.Value]; dup {
			l.addf(pos(k), "%s: duplicate key %q (first at line %d)", where, k.Value, p.Line)
			continue
		}
		seen[k.Value] = pos(k)
		if known != nil && !slices.Contains(known, k.Value) {
			l.addf(pos(k), "%s: unknown key %q%s", where, k.Value, suggest(k.Value, known))
			continue
		}
		out = append(out, kv{k, v})
	}
	return out
}

// describe names a node's kind for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		if isNull(n) {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "something else"
}

// suggest returns ` (did you mean "x"?)` for the known word closest to w.
func suggest(w string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(strings.ToLower(w), k); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return "; known keys: " + strings.Join(known, ", ")
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := prev[j-1]
			if a[i-1] != b[j-1] {
				c++
			}
			cur[j] = min(c, prev[j]+1, cur[j-1]+1)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// items returns the items of a list node. A single scalar is a list of one;
// null is an empty list.
func (l *loader) items(n *yaml.Node, where string) []*yaml.Node {
	switch {
	case isNull(n) || n.Kind == yaml.AliasNode:
		return nil
	case n.Kind == yaml.SequenceNode:
		return n.Content
	case n.Kind == yaml.ScalarNode:
		return []*yaml.Node{n}
	}
	l.addf(pos(n), "%s: want a list, got %s", where, describe(n))
	return nil
}

// scalar returns a scalar's text, or reports what it is instead.
func (l *loader) scalar(n *yaml.Node, where string) (string, bool) {
	if n.Kind == yaml.AliasNode {
		return "", false
	}
	if n.Kind != yaml.ScalarNode || isNull(n) {
		l.addf(pos(n), "%s: want a value, got %s", where, describe(n))
		return "", false
	}
	return n.Value, true
}

func (l *loader) integer(n *yaml.Node, where string, lo, hi int64) (int64, bool) {
	s, ok := l.scalar(n, where)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.ReplaceAll(s, "_", ""), 0, 64)
	if n.ShortTag() != "!!int" || err != nil {
		l.addf(pos(n), "%s: want a whole number, got %q", where, s)
		return 0, false
	}
	if v < lo || v > hi {
		l.addf(pos(n), "%s: %d is out of range (%d to %d)", where, v, lo, hi)
		return 0, false
	}
	return v, true
}

func (l *loader) boolean(n *yaml.Node, where string) (bool, bool) {
	s, ok := l.scalar(n, where)
	if !ok {
		return false, false
	}
	if n.ShortTag() == "!!bool" {
		switch strings.ToLower(s) {
		case "true":
			return true, true
		case "false":
			return false, true
		}
	}
	l.addf(pos(n), "%s: want true or false, got %q", where, s)
	return false, false
}

func (l *loader) duration(n *yaml.Node, where string) (time.Duration, bool) {
	s, ok := l.scalar(n, where)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		l.addf(pos(n), "%s: want a positive duration such as 90s, 10m or 1h, got %q", where, s)
		return 0, false
	}
	return d, true
}

func (l *loader) action(n *yaml.Node, where string) (Action, bool) {
	s, ok := l.scalar(n, where)
	if !ok {
		return 0, false
	}
	a, ok := ParseAction(s)
	if !ok {
		l.addf(pos(n), "%s: unknown action %q (want allow, log, alert or block)%s", where, s, suggestWord(s, actionNames[1:]))
	}
	return a, ok
}

// suggestWord is suggest for values: only a close match is offered.
func suggestWord(w string, known []string) string {
	s := suggest(w, known)
	if strings.HasPrefix(s, ";") {
		return ""
	}
	return s
}

func (l *loader) severity(n *yaml.Node, where string) int {
	v, ok := l.integer(n, where, 1, 4)
	if !ok {
		return 0
	}
	return int(v)
}

var (
	nameRE   = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]{0,63}$`)
	ruleIDRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
)

// Names a network or group cannot have: they mean something in a policy.
var reservedNames = []string{"internet", "default", "any", "none", "all"}

// policy reads the top-level mapping. Networks and groups are read first so
// that every later reference to them resolves, wherever they are written.
func (l *loader) policy(root *yaml.Node) {
	pairs := l.mapping(root, "policy", []string{"version", "default", "networks", "groups", "remote_assistance", "rules"})
	by := map[string]kv{}
	for _, p := range pairs {
		by[p.key.Value] = p
	}
	l.p.Default = Default{Action: ActionLog, Severity: defaultSeverity(ActionLog)}
	if p, ok := by["version"]; ok {
		if v, ok := l.integer(p.val, "version", 1, 1<<31); ok && v != 1 {
			l.addf(pos(p.val), "version: this rasentry reads policy version 1, not %d", v)
		}
	}
	if p, ok := by["networks"]; ok {
		l.networks(p.val)
	}
	if p, ok := by["groups"]; ok {
		l.groups(p.val)
	}
	if p, ok := by["default"]; ok {
		l.defaultAction(p.val)
	}
	if p, ok := by["remote_assistance"]; ok {
		l.settings(p.val)
	}
	if p, ok := by["rules"]; ok {
		l.rules(p.val)
	}
}

func (l *loader) defaultAction(n *yaml.Node) {
	d := &l.p.Default
	d.Pos = pos(n)
	if n.Kind == yaml.ScalarNode {
		if a, ok := l.action(n, "default"); ok {
			d.Action, d.Severity = a, defaultSeverity(a)
		}
		return
	}
	sev := 0
	for _, p := range l.mapping(n, "default", []string{"action", "severity"}) {
		switch p.key.Value {
		case "action":
			if a, ok := l.action(p.val, "default.action"); ok {
				d.Action = a
			}
		case "severity":
			sev = l.severity(p.val, "default.severity")
		}
	}
	d.Severity = defaultSeverity(d.Action)
	if sev != 0 {
		d.Severity = sev
	}
}

// defaultSeverity is the severity of a rule that does not give one.
func defaultSeverity(a Action) int {
	switch a {
	case ActionBlock:
		return 1
	case ActionAlert:
		return 2
	case ActionLog:
		return 3
	}
	return 4
}

func (l *loader) networks(n *yaml.Node) {
	l.namedSets(n, "networks", "network", func() int { return len(l.p.Networks) },
		func(name string, prefixes []netip.Prefix, at Pos) {
			l.netIndex[name] = len(l.p.Networks)
			l.p.Networks = append(l.p.Networks, Network{Name: name, Prefixes: prefixes, Pos: at})
		})
}

func (l *loader) groups(n *yaml.Node) {
	l.namedSets(n, "groups", "group", func() int { return len(l.p.Groups) },
		func(name string, prefixes []netip.Prefix, at Pos) {
			l.groupIndex[name] = len(l.p.Groups)
			l.p.Groups = append(l.p.Groups, Group{Name: name, Prefixes: prefixes, Pos: at})
		})
}

// namedSets reads a section mapping names to address lists (networks,
// groups): at most 64 of them (membership is a bitmask), each with at
// least one address or CIDR.
func (l *loader) namedSets(n *yaml.Node, section, kind string, count func() int, add func(string, []netip.Prefix, Pos)) {
	for _, p := range l.mapping(n, section, nil) {
		name := p.key.Value
		if !l.checkName(p.key, kind) {
			continue
		}
		if count() == 64 {
			l.addf(pos(p.key), "%s: at most 64 %ss may be named", section, kind)
			continue
		}
		where := section + "." + name
		prefixes := l.prefixes(p.val, where)
		if len(prefixes) == 0 && (isNull(p.val) || (p.val.Kind == yaml.SequenceNode && len(p.val.Content) == 0)) {
			l.addf(pos(p.val), "%s: a %s needs at least one address or CIDR", where, kind)
		}
		add(name, prefixes, pos(p.key))
	}
}

func (l *loader) checkName(k *yaml.Node, what string) bool {
	name := k.Value
	if !nameRE.MatchString(name) {
		l.addf(pos(k), "%s name %q: want a letter, then letters, digits, '_', '-' or '.' (at most 64)", what, name)
		return false
	}
	if slices.Contains(reservedNames, name) {
		l.addf(pos(k), "%s name %q is reserved (%s)", what, name, strings.Join(reservedNames, ", "))
		return false
	}
	return true
}

// prefixes reads a list of addresses and CIDRs. Single addresses become
// host prefixes; IPv4-mapped IPv6 forms are unmapped so that they match the
// IPv4 addresses the decoder reports.
func (l *loader) prefixes(n *yaml.Node, where string) []netip.Prefix {
	var out []netip.Prefix
	for _, item := range l.items(n, where) {
		s, ok := l.scalar(item, where)
		if !ok {
			continue
		}
		p, err := parsePrefix(s)
		if err != nil {
			l.addf(pos(item), "%s: %v", where, err)
			continue
		}
		out = append(out, p)
	}
	return out
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "%") {
		return netip.Prefix{}, fmt.Errorf("%q: zoned addresses are not allowed", s)
	}
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not a valid CIDR", s)
	}
	if p.Addr().Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("%q mixes IPv4-mapped and other IPv6 addresses; write the IPv4 CIDR", s)
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set (did you mean %s?)", s, p.Masked())
	}
	return p, nil
}

// networkRef resolves a network name; special lists the other names allowed
// here ("internet", "default").
func (l *loader) networkRef(n *yaml.Node, where string, special ...string) (string, bool) {
	s, ok := l.scalar(n, where)
	if !ok {
		return "", false
	}
	if _, ok := l.netIndex[s]; ok || slices.Contains(special, s) {
		return s, true
	}
	names := slices.Sorted(mapKeys(l.netIndex))
	names = append(names, special...)
	l.addf(pos(n), "%s: unknown network %q%s", where, s, suggestRef(s, names))
	return "", false
}

func (l *loader) groupRef(n *yaml.Node, where string) (string, bool) {
	s, ok := l.scalar(n, where)
	if !ok {
		return "", false
	}
	if _, ok := l.groupIndex[s]; ok {
		return s, true
	}
	names := slices.Sorted(mapKeys(l.groupIndex))
	l.addf(pos(n), "%s: unknown group %q%s", where, s, suggestRef(s, names))
	return "", false
}

func suggestRef(s string, names []string) string {
	if len(names) == 0 {
		return " (none are defined)"
	}
	if w := suggestWord(s, names); w != "" {
		return w
	}
	return " (known: " + strings.Join(names, ", ") + ")"
}

func mapKeys(m map[string]int) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// settings reads remote_assistance.
func (l *loader) settings(n *yaml.Node) {
	s := &l.p.RemoteAssistance
	for _, p := range l.mapping(n, "remote_assistance", []string{"solicited", "offer", "encrypted_invitations_only", "teredo", "upnp", "pnrp", "dns"}) {
		where := "remote_assistance." + p.key.Value
		switch p.key.Value {
		case "solicited":
			l.solicited(p.key, p.val, where, &s.Solicited)
		case "offer":
			l.offer(p.key, p.val, where, &s.Offer)
		case "encrypted_invitations_only":
			l.encrypted(p.key, p.val, where, &s.EncryptedInvitationsOnly)
		case "teredo":
			l.helper(p.key, p.val, where, &s.Teredo)
		case "upnp":
			l.helper(p.key, p.val, where, &s.UPnP)
		case "pnrp":
			l.helper(p.key, p.val, where, &s.PNRP)
		case "dns":
			l.helper(p.key, p.val, where, &s.DNS)
		}
	}
}

func (l *loader) state(n *yaml.Node, where string) State {
	s, ok := l.scalar(n, where)
	if !ok {
		return StateNotConfigured
	}
	for st, name := range stateNames {
		if name == s {
			return State(st)
		}
	}
	l.addf(pos(n), "%s: unknown state %q (want enabled, disabled or not-configured)%s", where, s, suggestWord(s, stateNames[:]))
	return StateNotConfigured
}

func (l *loader) control(n *yaml.Node, where string) Control {
	s, ok := l.scalar(n, where)
	if !ok {
		return ControlNotConfigured
	}
	switch s {
	case "full":
		return ControlFull
	case "view-only":
		return ControlViewOnly
	}
	l.addf(pos(n), "%s: unknown control %q (want full or view-only)", where, s)
	return ControlNotConfigured
}

func (l *loader) solicited(k, n *yaml.Node, where string, s *SolicitedSetting) {
	s.Pos = pos(k)
	s.Action = ActionBlock
	if n.Kind == yaml.ScalarNode {
		s.State = l.state(n, where)
	} else {
		for _, p := range l.mapping(n, where, []string{"state", "control", "max_ticket_time", "action", "severity"}) {
			w := where + "." + p.key.Value
			switch p.key.Value {
			case "state":
				s.State = l.state(p.val, w)
			case "control":
				s.Control, s.ControlPos = l.control(p.val, w), pos(p.val)
			case "max_ticket_time":
				s.MaxTicketTime, _ = l.duration(p.val, w)
				s.MaxTicketTimePos = pos(p.val)
			case "action":
				if a, ok := l.action(p.val, w); ok {
					s.Action = a
				}
			case "severity":
				s.Severity = l.severity(p.val, w)
			}
		}
	}
	if s.Severity == 0 {
		s.Severity = defaultSeverity(s.Action)
	}
}

func (l *loader) offer(k, n *yaml.Node, where string, o *OfferSetting) {
	o.Pos = pos(k)
	o.Action = ActionBlock
	var helpersPos, statePos Pos
	statePos = pos(n)
	if n.Kind == yaml.ScalarNode {
		o.State = l.state(n, where)
	} else {
		for _, p := range l.mapping(n, where, []string{"state", "control", "helpers", "networks", "action", "severity"}) {
			w := where + "." + p.key.Value
			switch p.key.Value {
			case "state":
				o.State = l.state(p.val, w)
				statePos = pos(p.val)
			case "control":
				o.Control, o.ControlPos = l.control(p.val, w), pos(p.val)
			case "helpers":
				helpersPos = pos(p.key)
				for _, item := range l.items(p.val, w) {
					if g, ok := l.groupRef(item, w); ok {
						o.Helpers = append(o.Helpers, g)
					}
				}
			case "networks":
				for _, item := range l.items(p.val, w) {
					if nw, ok := l.networkRef(item, w); ok {
						o.Networks = append(o.Networks, nw)
					}
				}
			case "action":
				if a, ok := l.action(p.val, w); ok {
					o.Action = a
				}
			case "severity":
				o.Severity = l.severity(p.val, w)
			}
		}
	}
	if o.Severity == 0 {
		o.Severity = defaultSeverity(o.Action)
	}
	if o.State == StateEnabled && len(o.Helpers) == 0 && helpersPos == (Pos{}) {
		l.addf(statePos, "%s: enabled, but no helpers are listed, so no one could offer; add helpers: [GROUP] or disable it", where)
	}
	if o.State == StateEnabled && len(o.Networks) == 0 && len(l.p.Networks) == 0 {
		l.addf(statePos, "%s: enabled, but no networks are defined, so there is no domain to offer to; define networks", where)
	}
}

func (l *loader) encrypted(k, n *yaml.Node, where string, e *InvitationSetting) {
	e.Pos = pos(k)
	e.Action = ActionBlock
	if n.Kind == yaml.ScalarNode {
		e.Enabled, _ = l.boolean(n, where)
	} else {
		for _, p := range l.mapping(n, where, []string{"enabled", "action", "severity"}) {
			w := where + "." + p.key.Value
			switch p.key.Value {
			case "enabled":
				e.Enabled, _ = l.boolean(p.val, w)
			case "action":
				if a, ok := l.action(p.val, w); ok {
					e.Action = a
				}
			case "severity":
				e.Severity = l.severity(p.val, w)
			}
		}
	}
	if e.Severity == 0 {
		e.Severity = defaultSeverity(e.Action)
	}
}

// helper reads a NAT-traversal helper setting: an action for every host, or
// a mapping from network ("internet", "default") to an action or to
// {action, severity}.
func (l *loader) helper(k, n *yaml.Node, where string, h *HelperSetting) {
	h.Pos = pos(k)
	if n.Kind == yaml.ScalarNode {
		if a, ok := l.action(n, where); ok {
			h.Entries = []HelperEntry{{Network: "default", Action: a, Severity: defaultSeverity(a), Pos: pos(n)}}
		}
		return
	}
	var deflt *HelperEntry
	for _, p := range l.mapping(n, where, nil) {
		w := where + "." + p.key.Value
		name := p.key.Value
		if name != "default" {
			var ok bool
			if name, ok = l.networkRef(p.key, where, "internet", "default"); !ok {
				continue
			}
		}
		e := HelperEntry{Network: name, Pos: pos(p.key)}
		if p.val.Kind == yaml.ScalarNode {
			a, ok := l.action(p.val, w)
			if !ok {
				continue
			}
			e.Action = a
		} else {
			for _, q := range l.mapping(p.val, w, []string{"action", "severity"}) {
				switch q.key.Value {
				case "action":
					e.Action, _ = l.action(q.val, w+".action")
				case "severity":
					e.Severity = l.severity(q.val, w+".severity")
				}
			}
			if e.Action == 0 {
				l.addf(pos(p.val), "%s: action is missing", w)
				continue
			}
		}
		if e.Severity == 0 {
			e.Severity = defaultSeverity(e.Action)
		}
		if name == "default" {
			// The catch-all is evaluated after the networks, wherever it is written.
			deflt = &e
			continue
		}
		h.Entries = append(h.Entries, e)
	}
	if deflt != nil {
		h.Entries = append(h.Entries, *deflt)
	}
}

func (l *loader) rules(n *yaml.Node) {
	if isNull(n) {
		return
	}
	if n.Kind != yaml.SequenceNode {
		l.addf(pos(n), "rules: want a list of rules (lines starting with '- id:'), got %s", describe(n))
		return
	}
	for _, item := range n.Content {
		l.rule(item)
	}
}

var ruleKeys = []string{"id", "name", "sid", "rev", "severity", "action", "match", "suppress"}

func (l *loader) rule(n *yaml.Node) {
	r := Rule{Pos: pos(n), Rev: 1}
	where := fmt.Sprintf("rule at line %d", n.Line)
	if n.Kind == yaml.MappingNode {
		// Name the rule by its id in every message about it, even those
		// about keys written before the id.
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k, v := n.Content[i], n.Content[i+1]; k.Value == "id" && v.Kind == yaml.ScalarNode && !isNull(v) {
				where = fmt.Sprintf("rule %q", v.Value)
				break
			}
		}
	}
	pairs := l.mapping(n, where, ruleKeys)
	if n.Kind != yaml.MappingNode {
		return
	}
	var haveID, haveAction bool
	for _, p := range pairs {
		if p.key.Value == "id" {
			if s, ok := l.scalar(p.val, "rule id"); ok {
				haveID = true
				if !ruleIDRE.MatchString(s) || s == "default" {
					l.addf(pos(p.val), "rule id %q: want letters, digits, '_', '-' or '.' (at most 128, not \"default\")", s)
				}
				r.ID = s
			}
		}
	}
	if !haveID {
		l.addf(pos(n), "%s: id is missing", where)
	}
	sev := 0
	for _, p := range pairs {
		w := where + ": " + p.key.Value
		switch p.key.Value {
		case "name":
			r.Name, _ = l.scalar(p.val, w)
		case "sid":
			if v, ok := l.integer(p.val, w, 1, 1<<32-1); ok {
				r.SID = uint32(v)
			}
		case "rev":
			if v, ok := l.integer(p.val, w, 1, 1<<31-1); ok {
				r.Rev = int(v)
			}
		case "severity":
			sev = l.severity(p.val, w)
		case "action":
			haveAction = true
			r.Action, _ = l.action(p.val, w)
		case "match":
			l.match(p.val, where, &r.Match)
		case "suppress":
			r.Suppress = l.suppress(p.val, where)
		}
	}
	if !haveAction {
		l.addf(pos(n), "%s: action is missing (allow, log, alert or block)", where)
	}
	if r.Name == "" {
		r.Name = r.ID
	}
	r.Severity = defaultSeverity(r.Action)
	if sev != 0 {
		r.Severity = sev
	}
	if r.Suppress != nil && r.Action != 0 && r.Action < ActionAlert {
		l.addf(pos(n), "%s: suppress has no effect on a %s rule (only alert and block raise alerts)", where, r.Action)
	}
	for i, other := range l.p.Rules {
		if haveID && other.ID == r.ID {
			l.addf(pos(n), "%s: duplicate id (first used by the rule at line %d)", where, l.p.Rules[i].Pos.Line)
		}
	}
	l.p.Rules = append(l.p.Rules, r)
}

var matchKeys = []string{"labels", "not_labels", "mode", "direction", "proto", "inner", "invitation_plain", "client", "server", "local"}

func (l *loader) match(n *yaml.Node, where string, m *Match) {
	for _, p := range l.mapping(n, where+": match", matchKeys) {
		w := where + ": match." + p.key.Value
		switch p.key.Value {
		case "labels":
			m.Labels = l.labels(p.val, w)
		case "not_labels":
			m.NotLabels = l.labels(p.val, w)
		case "mode":
			for _, item := range l.items(p.val, w) {
				s, ok := l.scalar(item, w)
				if !ok {
					continue
				}
				mode, ok := parseMode(s)
				if !ok {
					l.addf(pos(item), "%s: unknown session mode %q (want none, offer, invitation, easy-connect, upnp or unknown)%s", w, s, suggestWord(s, modeNames[:]))
					continue
				}
				m.Modes = append(m.Modes, mode)
			}
		case "direction":
			for _, item := range l.items(p.val, w) {
				s, ok := l.scalar(item, w)
				if !ok {
					continue
				}
				d, ok := ParseDirection(s)
				if !ok {
					l.addf(pos(item), "%s: unknown direction %q (want inbound, outbound, internal or external)%s", w, s, suggestWord(s, directionNames[1:]))
					continue
				}
				m.Directions = append(m.Directions, d)
			}
		case "proto":
			for _, item := range l.items(p.val, w) {
				s, ok := l.scalar(item, w)
				if !ok {
					continue
				}
				pr, ok := parseProto(s)
				if !ok {
					l.addf(pos(item), "%s: unknown protocol %q (want tcp, udp, icmp, icmpv6 or a number 0-255)", w, s)
					continue
				}
				m.Protos = append(m.Protos, pr)
			}
		case "inner":
			if b, ok := l.boolean(p.val, w); ok {
				m.Inner = &b
			}
		case "invitation_plain":
			if b, ok := l.boolean(p.val, w); ok {
				m.InvitationPlain = &b
			}
		case "client":
			l.endpoint(p.val, w, &m.Client)
		case "server":
			l.endpoint(p.val, w, &m.Server)
		case "local":
			l.endpoint(p.val, w, &m.Local)
		}
	}
	if both := m.Labels & m.NotLabels; both != 0 && m.Labels&^m.NotLabels == 0 {
		l.addf(pos(n), "%s: can never match: every label in labels is also in not_labels", where)
	}
}

func (l *loader) labels(n *yaml.Node, where string) classify.LabelSet {
	var set classify.LabelSet
	for _, item := range l.items(n, where) {
		s, ok := l.scalar(item, where)
		if !ok {
			continue
		}
		lab, ok := classify.ParseLabel(s)
		if !ok {
			l.addf(pos(item), "%s: unknown label %q%s", where, s, suggestLabel(s))
			continue
		}
		set = set.With(lab)
	}
	return set
}

func suggestLabel(s string) string {
	var names []string
	for _, lab := range classify.AllLabels() {
		names = append(names, lab.String())
	}
	return suggestWord(s, names)
}

var modeNames = [...]string{"none", "offer", "invitation", "easy-connect", "upnp", "unknown"}

// parseMode reads a session mode as written in a policy ("none" is a flow
// outside any session).
func parseMode(s string) (classify.SessionMode, bool) {
	switch s {
	case "none":
		return "", true
	case string(classify.ModeOffer), string(classify.ModeInvitation), string(classify.ModeEasyConnect),
		string(classify.ModeUPnP), string(classify.ModeUnknown):
		return classify.SessionMode(s), true
	}
	return "", false
}

func parseProto(s string) (uint8, bool) {
	switch strings.ToLower(s) {
	case "tcp":
		return classify.ProtoTCP, true
	case "udp":
		return classify.ProtoUDP, true
	case "icmp":
		return classify.ProtoICMP, true
	case "icmpv6", "ipv6-icmp":
		return classify.ProtoICMPv6, true
	}
	v, err := strconv.ParseUint(s, 10, 8)
	return uint8(v), err == nil
}

func (l *loader) endpoint(n *yaml.Node, where string, e *Endpoint) {
	for _, p := range l.mapping(n, where, []string{"networks", "not_networks", "groups", "not_groups", "ports"}) {
		w := where + "." + p.key.Value
		switch p.key.Value {
		case "networks", "not_networks":
			var names []string
			for _, item := range l.items(p.val, w) {
				if nw, ok := l.networkRef(item, w, "internet"); ok {
					names = append(names, nw)
				}
			}
			if p.key.Value == "networks" {
				e.Networks = names
			} else {
				e.NotNetworks = names
			}
		case "groups", "not_groups":
			var names []string
			for _, item := range l.items(p.val, w) {
				if g, ok := l.groupRef(item, w); ok {
					names = append(names, g)
				}
			}
			if p.key.Value == "groups" {
				e.Groups = names
			} else {
				e.NotGroups = names
			}
		case "ports":
			for _, item := range l.items(p.val, w) {
				if r, ok := l.portRange(item, w); ok {
					e.Ports = append(e.Ports, r)
				}
			}
		}
	}
	for _, g := range e.Groups {
		if slices.Contains(e.NotGroups, g) {
			l.addf(pos(n), "%s: can never match: group %q is in both groups and not_groups", where, g)
		}
	}
	for _, nw := range e.Networks {
		if slices.Contains(e.NotNetworks, nw) {
			l.addf(pos(n), "%s: can never match: network %q is in both networks and not_networks", where, nw)
		}
	}
}

func (l *loader) portRange(n *yaml.Node, where string) (PortRange, bool) {
	s, ok := l.scalar(n, where)
	if !ok {
		return PortRange{}, false
	}
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange {
		hi = lo
	}
	a, err1 := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
	b, err2 := strconv.ParseUint(strings.TrimSpace(hi), 10, 16)
	if err1 != nil || err2 != nil || a == 0 || b == 0 {
		l.addf(pos(n), "%s: %q is not a port (1-65535) or a range such as 49152-65535", where, s)
		return PortRange{}, false
	}
	if a > b {
		l.addf(pos(n), "%s: range %q runs backwards", where, s)
		return PortRange{}, false
	}
	return PortRange{uint16(a), uint16(b)}, true
}

var identifierFields = []string{"client_ip", "client_port", "server_ip", "server_port", "proto", "mode"}

func (l *loader) suppress(n *yaml.Node, where string) *Suppression {
	s := &Suppression{}
	w := where + ": suppress"
	havWindow := false
	for _, p := range l.mapping(n, w, []string{"window", "identifier"}) {
		switch p.key.Value {
		case "window":
			s.Window, _ = l.duration(p.val, w+".window")
			havWindow = true
		case "identifier":
			for _, item := range l.items(p.val, w+".identifier") {
				f, ok := l.scalar(item, w+".identifier")
				if !ok {
					continue
				}
				if !slices.Contains(identifierFields, f) {
					l.addf(pos(item), "%s.identifier: unknown field %q (want %s)%s", w, f, strings.Join(identifierFields, ", "), suggestWord(f, identifierFields))
					continue
				}
				if !slices.Contains(s.Identifier, f) {
					s.Identifier = append(s.Identifier, f)
				}
			}
		}
	}
	if !havWindow && n.Kind == yaml.MappingNode {
		l.addf(pos(n), "%s: window is missing (e.g. window: 10m)", w)
	}
	if len(s.Identifier) == 0 {
		s.Identifier = []string{"client_ip", "server_ip"}
	}
	return s
}
