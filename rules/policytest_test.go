package rules

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rasentry/rasentry/classify"
)

// Policy test files (testdata/*.policytest), in the shape of Caddy's
// *.caddyfiletest: a policy, a separator line of at least four dashes, then
// what the policy must decide.
//
// The policy part is YAML, or a single line "@preset NAME".
//
// The expectation part has one line per subject, evaluated in order by one
// Engine (so suppression windows carry from line to line):
//
//	CLIENT > SERVER [tcp|udp|icmp|icmpv6|N] [labels=a,b] [mode=M] [inner] [plain] [at=DUR]  =>  ACTION RULE-ID [dir=D] [sev=N] [sid=N] [notes=N] [suppressed]
//
// CLIENT and SERVER are ADDR:PORT ([v6]:port for IPv6); the protocol is TCP
// unless given; at= offsets the packet time from a fixed base (default 0).
// On the right, the action and rule id are always checked, "suppressed" is
// checked both ways, the key=value fields only when given.
//
// Lines "! LINE:COL: message" instead list the problems the policy must be
// rejected with, exactly and in order; lines "~ LINE:COL: note: message"
// list the notes a valid policy must carry, exactly. '#' starts a comment
// line; blank lines are ignored.

var policytestBase = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

var separatorRE = regexp.MustCompile(`^-{4,}\s*$`)

func TestPolicyFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/*.policytest")
	if err != nil || len(files) == 0 {
		t.Fatalf("no policy test files: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".policytest"), func(t *testing.T) {
			runPolicyTest(t, file)
		})
	}
}

func runPolicyTest(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	sep := -1
	for i, l := range lines {
		if separatorRE.MatchString(l) {
			sep = i
			break
		}
	}
	if sep < 0 {
		t.Fatalf("%s: no separator line (----)", file)
	}
	policyText := strings.Join(lines[:sep], "\n") + "\n"
	var wantProblems, wantNotes []string
	type subjectLine struct {
		line int
		text string
	}
	var subjects []subjectLine
	for i, l := range lines[sep+1:] {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "!"):
			wantProblems = append(wantProblems, strings.TrimSpace(l[1:]))
		case strings.HasPrefix(l, "~"):
			wantNotes = append(wantNotes, strings.TrimSpace(l[1:]))
		default:
			subjects = append(subjects, subjectLine{sep + 2 + i, l})
		}
	}

	var p *Policy
	if name, ok := strings.CutPrefix(strings.TrimSpace(policyText), "@preset "); ok {
		p, err = Preset(strings.TrimSpace(name))
	} else {
		p, err = LoadBytes("policy", []byte(policyText))
	}
	if len(wantProblems) > 0 {
		if err == nil {
			t.Fatalf("%s: policy loaded; want problems:\n%s", file, strings.Join(wantProblems, "\n"))
		}
		var ps Problems
		if !errors.As(err, &ps) {
			t.Fatalf("%s: error is not Problems: %v", file, err)
		}
		var got []string
		for _, pr := range ps {
			got = append(got, fmt.Sprintf("%d:%d: %s", pr.Line, pr.Col, pr.Msg))
		}
		if strings.Join(got, "\n") != strings.Join(wantProblems, "\n") {
			t.Errorf("%s: problems\ngot:\n%s\nwant:\n%s", file, strings.Join(got, "\n"), strings.Join(wantProblems, "\n"))
		}
		return
	}
	if err != nil {
		t.Fatalf("%s: policy rejected:\n%v", file, err)
	}
	var gotNotes []string
	for _, n := range p.Notes {
		gotNotes = append(gotNotes, fmt.Sprintf("%d:%d: %s", n.Line, n.Col, n.Msg))
	}
	if strings.Join(gotNotes, "\n") != strings.Join(wantNotes, "\n") {
		t.Errorf("%s: notes\ngot:\n%s\nwant:\n%s", file, strings.Join(gotNotes, "\n"), strings.Join(wantNotes, "\n"))
	}
	c, err := Compile(p)
	if err != nil {
		t.Fatalf("%s: compile: %v", file, err)
	}
	if len(subjects) == 0 {
		t.Fatalf("%s: no subjects to evaluate", file)
	}
	e := NewEngine(c)
	for _, sl := range subjects {
		where := fmt.Sprintf("%s:%d", file, sl.line)
		left, right, ok := strings.Cut(sl.text, "=>")
		if !ok {
			t.Fatalf("%s: no '=>' in %q", where, sl.text)
		}
		s, err := parseSubject(left)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		d := e.Decide(&s)
		if pure := c.Evaluate(&s); pure.RuleID != d.RuleID || pure.Action != d.Action {
			t.Errorf("%s: Evaluate and Decide disagree: %s/%s vs %s/%s", where, pure.Action, pure.RuleID, d.Action, d.RuleID)
		}
		if msg := checkDecision(d, right); msg != "" {
			t.Errorf("%s: %s\n  subject:  %s\n  decision: %s %s dir=%s sev=%d sid=%d suppressed=%v notes=%d (%s)",
				where, msg, strings.TrimSpace(left), d.Action, d.RuleID, d.Direction, d.Severity, d.SignatureID, d.Suppressed, len(d.Unenforceable), d.Reason)
		}
	}
}

func parseSubject(text string) (Subject, error) {
	f := strings.Fields(text)
	if len(f) < 3 || f[1] != ">" {
		return Subject{}, fmt.Errorf("want CLIENT > SERVER ..., got %q", text)
	}
	var s Subject
	var err error
	if s.Client, err = netip.ParseAddrPort(f[0]); err != nil {
		return s, err
	}
	if s.Server, err = netip.ParseAddrPort(f[2]); err != nil {
		return s, err
	}
	s.Proto = classify.ProtoTCP
	s.Time = policytestBase
	for _, opt := range f[3:] {
		k, v, _ := strings.Cut(opt, "=")
		switch k {
		case "tcp", "udp", "icmp", "icmpv6":
			s.Proto, _ = parseProto(k)
		case "proto":
			p, ok := parseProto(v)
			if !ok {
				return s, fmt.Errorf("bad proto %q", v)
			}
			s.Proto = p
		case "labels":
			for _, name := range strings.Split(v, ",") {
				l, ok := classify.ParseLabel(name)
				if !ok {
					return s, fmt.Errorf("unknown label %q", name)
				}
				s.Labels = s.Labels.With(l)
			}
		case "mode":
			m, ok := parseMode(v)
			if !ok {
				return s, fmt.Errorf("unknown mode %q", v)
			}
			s.Mode = m
		case "inner":
			s.Inner = true
		case "plain":
			s.InvitationPlain = true
		case "at":
			d, err := time.ParseDuration(v)
			if err != nil {
				return s, err
			}
			s.Time = policytestBase.Add(d)
		case "notime":
			s.Time = time.Time{}
		default:
			return s, fmt.Errorf("unknown subject field %q", opt)
		}
	}
	return s, nil
}

func checkDecision(d Decision, want string) string {
	f := strings.Fields(want)
	if len(f) < 2 {
		return fmt.Sprintf("want ACTION RULE-ID, got %q", want)
	}
	var problems []string
	if d.Action.String() != f[0] {
		problems = append(problems, fmt.Sprintf("action %s, want %s", d.Action, f[0]))
	}
	if d.RuleID != f[1] {
		problems = append(problems, fmt.Sprintf("rule %s, want %s", d.RuleID, f[1]))
	}
	wantSuppressed := false
	for _, opt := range f[2:] {
		k, v, _ := strings.Cut(opt, "=")
		switch k {
		case "suppressed":
			wantSuppressed = true
		case "dir":
			if d.Direction != v {
				problems = append(problems, fmt.Sprintf("direction %s, want %s", d.Direction, v))
			}
		case "sev":
			if strconv.Itoa(d.Severity) != v {
				problems = append(problems, fmt.Sprintf("severity %d, want %s", d.Severity, v))
			}
		case "sid":
			if strconv.FormatUint(uint64(d.SignatureID), 10) != v {
				problems = append(problems, fmt.Sprintf("sid %d, want %s", d.SignatureID, v))
			}
		case "notes":
			if strconv.Itoa(len(d.Unenforceable)) != v {
				problems = append(problems, fmt.Sprintf("%d unenforceable notes, want %s", len(d.Unenforceable), v))
			}
		default:
			problems = append(problems, fmt.Sprintf("unknown expectation %q", opt))
		}
	}
	if d.Suppressed != wantSuppressed {
		problems = append(problems, fmt.Sprintf("suppressed %v, want %v", d.Suppressed, wantSuppressed))
	}
	return strings.Join(problems, "; ")
}
