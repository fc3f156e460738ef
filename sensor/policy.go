package sensor

import (
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/rasentry/rasentry/alert"
	"github.com/rasentry/rasentry/classify"
	"github.com/rasentry/rasentry/rules"
)

// Blocker stops a flow the policy decided to block (an NFQUEUE verdict, an
// nftables set element, TCP resets). It reports whether it actually
// blocked, so alerts say "blocked" only when traffic was stopped.
type Blocker interface {
	Block(f *classify.Flow, d *rules.Decision) (enforced bool, err error)
}

// ErrNotEnforced is what a dry-run Blocker returns: the decision stands,
// nothing was stopped.
var ErrNotEnforced = errors.New("not enforced (dry run)")

// subjectOf builds the policy subject of a flow.
func subjectOf(f *classify.Flow, ts time.Time) rules.Subject {
	s := rules.Subject{Labels: f.Labels, Client: f.Client, Server: f.Server, Proto: f.Proto, Inner: f.Depth > 0, Time: ts}
	if x := f.Extension(); x != nil {
		if x.Session != nil {
			s.Mode = x.Session.Mode
		}
		if inv, ok := x.Evidence.Get("invitation").(*classify.InvitationEvidence); ok {
			s.InvitationPlain = inv.RCTicketPlain
		}
	}
	return s
}

// decideFlow applies the policy to a flow whose labels grew.
func (w *worker) decideFlow(f *classify.Flow, dir classify.Direction, ts time.Time) {
	subj := subjectOf(f, ts)
	w.decide(f, &subj, dir, ts)
}

// decideSession applies the policy to a session that just formed, as
// completed by flow f: the subject carries ra-session and every member's
// labels, with the expert as client and the novice as server.
func (w *worker) decideSession(s *classify.Session, f *classify.Flow, dir classify.Direction, ts time.Time) {
	subj := subjectOf(f, ts)
	subj.Mode = s.Mode
	for _, m := range s.Members {
		subj.Labels |= m.Labels
	}
	subj.Labels = subj.Labels.With(classify.LabelRASession)
	w.decide(f, &subj, dir, ts)
}

func rank(a rules.Action) uint8 { return uint8(a) }

// decide evaluates the policy, keeps the strongest decision on the flow,
// enforces blocks and writes one alert per rule per flow.
func (w *worker) decide(f *classify.Flow, subj *rules.Subject, dir classify.Direction, ts time.Time) {
	pol := w.s.cfg.Policy
	if pol == nil {
		return
	}
	d := pol.Decide(subj)
	x := f.Ext()
	v := &x.Verdict
	if rank(d.Action) >= v.Rank {
		v.Rank, v.Decision, v.PolicyRule, v.NetworkDirection = rank(d.Action), d.Action.String(), d.RuleID, d.Direction
	}
	if d.Action < rules.ActionAlert {
		return
	}
	if d.Action == rules.ActionBlock && !v.Blocked && w.s.cfg.Blocker != nil {
		ok, err := w.s.cfg.Blocker.Block(f, &d)
		switch {
		case err != nil && !errors.Is(err, ErrNotEnforced):
			w.sum.BlockErrors++
			w.s.log.Warn("block failed", zap.Uint64("flow_id", f.ID), zap.String("rule", d.RuleID), zap.Error(err))
		case ok:
			v.Blocked = true
			w.sum.Blocked++
		}
	}
	if d.Suppressed {
		w.sum.Suppressed++
		w.sum.countRule(d.RuleID, d.Action.String(), true)
		return
	}
	for _, sid := range v.Alerted {
		if sid == d.SignatureID {
			return // this rule already alerted on this flow
		}
	}
	if len(v.Alerted) < 16 {
		v.Alerted = append(v.Alerted, d.SignatureID)
	}
	w.sum.Alerts++
	w.sum.countRule(d.RuleID, d.Action.String(), false)
	meta := map[string][]string{"policy_rule": {d.RuleID}, "reason": {d.Reason}}
	if len(d.Unenforceable) > 0 {
		meta["unenforceable"] = d.Unenforceable
	}
	w.write(alert.NewAlertRecord(f, dir, ts, alert.Decided{
		Decision: d.Action.String(), Enforced: v.Blocked && d.Action == rules.ActionBlock,
		SignatureID: d.SignatureID, Rev: d.Rev, Signature: d.RuleName, Severity: d.Severity,
		PolicyRule: d.RuleID, NetworkDirection: d.Direction, Metadata: meta,
	}, w.s.cfg.Records))
}
