package rules

import (
	"fmt"
	"io"
	"math/bits"
	"net/netip"
	"strings"
	"time"

	"github.com/rasentry/rasentry/classify"
)

// Explain writes the compiled rules in evaluation order, in words: what each
// matches, what it decides, and where it comes from.
func (c *Compiled) Explain(w io.Writer) {
	b := &strings.Builder{}
	fmt.Fprintf(b, "policy %s: %d rules, evaluated in order; the first that matches decides.\n", c.source, len(c.specs))
	if len(c.networks) == 0 {
		b.WriteString("networks: none named, so every address is on the Internet\n")
	} else {
		b.WriteString("networks (an address in none of them is on the Internet):\n")
		for _, n := range c.networks {
			fmt.Fprintf(b, "  %s: %s\n", n.Name, prefixList(n.Prefixes))
		}
	}
	if len(c.groups) > 0 {
		b.WriteString("groups:\n")
		for _, g := range c.groups {
			fmt.Fprintf(b, "  %s: %s\n", g.Name, prefixList(g.Prefixes))
		}
	}
	b.WriteByte('\n')
	bl := &built{env: c.env}
	for i := range c.specs {
		explainRule(b, bl, fmt.Sprintf("%d.", i+1), &c.specs[i])
	}
	d := &c.defltSpec
	fmt.Fprintf(b, "default: %s (severity %d, sid %d) for every subject no rule matched.\n", d.action, d.severity, d.sid)
	if len(c.notes) > 0 {
		b.WriteString("\naccepted but not enforceable on the wire (reported with the decisions they concern):\n")
		for _, n := range c.notes {
			fmt.Fprintf(b, "  %s\n", strings.TrimPrefix(n.Msg, "note: "))
		}
	}
	io.WriteString(w, b.String())
}

func prefixList(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		if p.IsSingleIP() {
			s[i] = p.Addr().String()
		} else {
			s[i] = p.String()
		}
	}
	return strings.Join(s, ", ")
}

func explainRule(b *strings.Builder, bl *built, num string, r *ruleSpec) {
	from := r.key
	if r.pos.Line > 0 {
		from += fmt.Sprintf(", line %d", r.pos.Line)
	}
	fmt.Fprintf(b, "%3s %s: %s, severity %d, sid %d rev %d (from %s)\n", num, r.id, r.action, r.severity, r.sid, r.rev, from)
	if r.name != r.id {
		fmt.Fprintf(b, "    signature: %s\n", r.name)
	}
	fmt.Fprintf(b, "    matches %s\n", bl.describeAlts(r.alts))
	if s := r.suppress; s != nil {
		fmt.Fprintf(b, "    after an alert, no new alert for the same %s for %s (packet time)\n",
			strings.ReplaceAll(strings.Join(s.Identifier, ", "), "_", " "), fmtDuration(s.Window))
	}
}

// describeAlts says in words what a rule's alternatives match.
func (b *built) describeAlts(alts []matchSpec) string {
	parts := make([]string, len(alts))
	for i := range alts {
		parts[i] = b.describe(&alts[i])
	}
	return strings.Join(parts, "; or ")
}

func (b *built) describe(m *matchSpec) string {
	var conds []string
	subject := "every flow or session"
	switch {
	case m.modes == modeNone:
		subject = "a flow outside any session"
	case m.modes != 0 && m.modes != modeAll && m.modes&modeNone == 0:
		subject = "a Remote Assistance session in mode " + modeList(m.modes, " or ")
	case m.modes != 0 && m.modes != modeAll:
		subject = "a flow or session, outside any session or in mode " + modeList(m.modes&^modeNone, " or ") + ","

	}
	if m.labels != 0 {
		conds = append(conds, "labelled "+labelList(m.labels, " or "))
	}
	if m.notLabels != 0 {
		conds = append(conds, "not labelled "+labelList(m.notLabels, " nor "))
	}
	if m.dirs != 0 {
		var ds []string
		for d := DirectionInternal; d <= DirectionExternal; d++ {
			if m.dirs&(1<<d) != 0 {
				ds = append(ds, d.String())
			}
		}
		conds = append(conds, "direction "+strings.Join(ds, " or "))
	}
	if m.hasProtos {
		var ps []string
		for p := 0; p < 256; p++ {
			if m.protos[p>>6]&(1<<(p&63)) != 0 {
				ps = append(ps, protoName(uint8(p)))
			}
		}
		conds = append(conds, "over "+strings.Join(ps, " or "))
	}
	switch m.inner {
	case 1:
		conds = append(conds, "inside a Teredo tunnel")
	case -1:
		conds = append(conds, "not inside a tunnel")
	}
	switch m.plain {
	case 1:
		conds = append(conds, "with a plain-text RCTICKET")
	case -1:
		conds = append(conds, "without a plain-text RCTICKET")
	}
	for i := range m.ep {
		conds = append(conds, b.describeEndpoint(endpointNames[i], &m.ep[i])...)
	}
	if len(conds) == 0 {
		return strings.TrimSuffix(subject, ",")
	}
	if strings.HasPrefix(conds[0], "labelled") || strings.HasPrefix(conds[0], "not labelled") || strings.HasSuffix(subject, ",") {
		return subject + " " + strings.Join(conds, ", ")
	}
	return subject + ", " + strings.Join(conds, ", ")
}

func (b *built) describeEndpoint(name string, e *endpointSpec) []string {
	var out []string
	if e.netConstrained() {
		out = append(out, name+" "+b.setList("in network", e.nets, b.env.netNames, e.internet, " or "))
	}
	if e.notNets != 0 || e.notInternet {
		out = append(out, name+" not "+b.setList("in network", e.notNets, b.env.netNames, e.notInternet, " nor "))
	}
	if e.groups != 0 {
		out = append(out, name+" "+b.setList("in group", e.groups, b.env.groupNames, false, " or "))
	}
	if e.notGroups != 0 {
		out = append(out, name+" not "+b.setList("in group", e.notGroups, b.env.groupNames, false, " nor "))
	}
	if len(e.ports) > 0 {
		ps := make([]string, len(e.ports))
		for i, r := range e.ports {
			if r.Lo == r.Hi {
				ps[i] = fmt.Sprint(r.Lo)
			} else {
				ps[i] = fmt.Sprintf("%d-%d", r.Lo, r.Hi)
			}
		}
		out = append(out, name+" port "+strings.Join(ps, ", "))
	}
	return out
}

func (b *built) setList(kind string, mask uint64, names []string, internet bool, sep string) string {
	var parts []string
	for m := mask; m != 0; m &= m - 1 {
		i := bits.TrailingZeros64(m)
		if i < len(names) {
			parts = append(parts, kind+" "+names[i])
		}
	}
	if internet {
		parts = append(parts, "on the Internet")
	}
	return strings.Join(parts, sep)
}

func labelList(s classify.LabelSet, sep string) string {
	return strings.Join(s.Strings(), sep)
}

func modeList(m uint8, sep string) string {
	var out []string
	for i, name := range modeNames {
		if m&(1<<i) != 0 {
			out = append(out, name)
		}
	}
	return strings.Join(out, sep)
}

func protoName(p uint8) string {
	switch p {
	case classify.ProtoTCP:
		return "TCP"
	case classify.ProtoUDP:
		return "UDP"
	case classify.ProtoICMP:
		return "ICMP"
	case classify.ProtoICMPv6:
		return "ICMPv6"
	}
	return fmt.Sprintf("IP protocol %d", p)
}

// fmtDuration writes 1h rather than 1h0m0s.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
