package rules

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/viper"

	"github.com/rasentry/rasentry/classify"
)

var update = flag.Bool("update", false, "rewrite the golden files from the current output")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// TestBrokenGolden checks the FILE:LINE:COL report of a policy with one of
// every kind of reading problem.
func TestBrokenGolden(t *testing.T) {
	_, err := Load("testdata/broken.yaml")
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("Load: want Problems, got %v", err)
	}
	golden(t, "broken.golden", []byte(ps.Error()+"\n"))
	for _, p := range ps {
		if p.File != "testdata/broken.yaml" || p.Line < 1 || p.Col < 1 {
			t.Errorf("problem without a position: %+v", p)
		}
	}
}

// TestExplainGolden fixes the words explain prints for the reference policy.
func TestExplainGolden(t *testing.T) {
	p, err := Load("presets/example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	c.Explain(&b)
	golden(t, "example.explain.golden", b.Bytes())
}

func TestPresets(t *testing.T) {
	names := PresetNames()
	if want := []string{"monitor", "disable-all", "offer-only", "encrypted-invitations-only"}; !slices.Equal(names, want) {
		t.Fatalf("PresetNames() = %v, want %v", names, want)
	}
	for _, name := range names {
		p, err := Preset(name)
		if err != nil {
			t.Fatalf("preset %s: %v", name, err)
		}
		if p.Source != "preset:"+name {
			t.Errorf("preset %s: Source %q", name, p.Source)
		}
		c, err := Compile(p)
		if err != nil {
			t.Fatalf("preset %s: compile: %v", name, err)
		}
		var b bytes.Buffer
		c.Explain(&b)
		if !strings.Contains(b.String(), "default: log") {
			t.Errorf("preset %s: explain lacks the default:\n%s", name, b.String())
		}
		// The embedded copy is the file in the repo a user copies.
		onDisk, err := Load(filepath.Join("presets", name+".yaml"))
		if err != nil {
			t.Fatalf("presets/%s.yaml: %v", name, err)
		}
		if len(onDisk.Rules) != len(p.Rules) {
			t.Errorf("presets/%s.yaml differs from the embedded preset", name)
		}
	}
	if _, err := Preset("nope"); err == nil || !strings.Contains(err.Error(), "monitor") {
		t.Errorf("unknown preset: %v", err)
	}
	// monitor never blocks, whatever it sees.
	c := mustCompile(t, mustPreset(t, "monitor"))
	for _, l := range classify.AllLabels() {
		for _, mode := range []classify.SessionMode{"", classify.ModeOffer, classify.ModeInvitation, classify.ModeEasyConnect, classify.ModeUPnP, classify.ModeUnknown} {
			for _, pair := range [][2]string{{"10.0.0.1:1", "198.51.100.1:2"}, {"198.51.100.1:1", "10.0.0.1:2"}, {"10.0.0.1:1", "10.0.0.2:2"}, {"198.51.100.1:1", "203.0.113.1:2"}} {
				s := Subject{Labels: classify.LabelSet(0).With(l), Mode: mode, Client: netip.MustParseAddrPort(pair[0]), Server: netip.MustParseAddrPort(pair[1])}
				if d := c.Evaluate(&s); d.Action == ActionBlock {
					t.Errorf("monitor blocks %v %s %v: %+v", l, mode, pair, d)
				}
			}
		}
	}
}

func TestExamplePolicyValid(t *testing.T) {
	p, err := Load("presets/example.yaml")
	if err != nil {
		t.Fatalf("the reference policy must be valid:\n%v", err)
	}
	if len(p.Notes) != 2 {
		t.Errorf("notes: %v", p.Notes)
	}
}

func mustPreset(t testing.TB, name string) *Policy {
	t.Helper()
	p, err := Preset(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustCompile(t testing.TB, p *Policy) *Compiled {
	t.Helper()
	c, err := Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustLoad(t testing.TB, yaml string) *Policy {
	t.Helper()
	p, err := LoadBytes("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSignatureIDs pins the derived signature ids of the rules compiled from
// settings: alert consumers key on them, so they must never change.
func TestSignatureIDs(t *testing.T) {
	fixed := map[string]uint32{
		"default":                            9140894,
		"setting:offer":                      9189303,
		"setting:offer:helpers":              9186912,
		"setting:solicited":                  9102843,
		"setting:encrypted-invitations-only": 9110505,
		"setting:teredo":                     9142968,
		"setting:upnp":                       9142536,
		"setting:pnrp":                       9169887,
		"setting:dns":                        9172870,
	}
	seen := map[uint32]string{}
	for id, want := range fixed {
		got := SignatureID(id)
		if got != want {
			t.Errorf("SignatureID(%q) = %d, want %d", id, got, want)
		}
		if other, dup := seen[got]; dup {
			t.Errorf("%q and %q share sid %d", id, other, got)
		}
		seen[got] = id
		if got < SignatureIDBase || got >= SignatureIDBase+SignatureIDRange {
			t.Errorf("SignatureID(%q) = %d out of range", id, got)
		}
	}
	c := mustCompile(t, mustLoad(t, "rules:\n  - {id: y, action: log, match: {labels: [rdp]}}\n  - {id: x, sid: 42, action: alert, rev: 3}\n"))
	d := c.Evaluate(&Subject{})
	if d.SignatureID != 42 || d.Rev != 3 || d.RuleName != "x" || d.Severity != 2 {
		t.Errorf("explicit sid: %+v", d)
	}
}

// TestCompileHandBuilt covers Compile's own validation of a Policy built in
// Go rather than loaded.
func TestCompileHandBuilt(t *testing.T) {
	p := &Policy{
		Source:   "go",
		Networks: []Network{{Name: "lan", Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}},
		Rules: []Rule{
			{ID: "a", Action: ActionAlert, Match: Match{Client: Endpoint{Networks: []string{"wan"}}, Server: Endpoint{Groups: []string{"g"}}}},
			{ID: "b", Action: 0},
			{ID: "c", Action: ActionLog, Severity: 9},
		},
		RemoteAssistance: Settings{Teredo: HelperSetting{Entries: []HelperEntry{{Network: "nowhere", Action: ActionBlock}}}},
	}
	_, err := Compile(p)
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("want Problems, got %v", err)
	}
	for _, want := range []string{`unknown network "wan"`, `unknown group "g"`, "action is missing", "severity 9", `unknown network "nowhere"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("problems lack %q:\n%v", want, err)
		}
	}
	// A minimal hand-built policy compiles and decides with its default.
	c, err := Compile(&Policy{Source: "go", Default: Default{Action: ActionAlert}})
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Evaluate(&Subject{}); d.Action != ActionAlert || d.RuleID != "default" || d.Severity != 2 {
		t.Errorf("default: %+v", d)
	}
}

func TestLoadErrors(t *testing.T) {
	cases := []struct{ name, yaml, want string }{
		{"empty", "", "1:1: policy file is empty"},
		{"comment only", "# nothing\n", "1:1: policy file is empty"},
		{"null", "~\n", "1:1: policy file is empty"},
		{"syntax", "rules:\n  - id: [\n", "YAML syntax"},
		{"two documents", "version: 1\n---\nversion: 1\n", "2:1: a policy file holds one YAML document"},
		{"scalar root", "hello\n", "policy: want a mapping"},
		{"list root", "- a\n", "policy: want a mapping"},
		{"too many networks", manyNetworks(65), "at most 64 networks"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadBytes("x.yaml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if !strings.HasPrefix(err.Error(), "x.yaml:") {
				t.Errorf("not FILE:LINE:COL: %v", err)
			}
		})
	}
	if _, err := Load("testdata/does-not-exist.yaml"); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func manyNetworks(n int) string {
	var b strings.Builder
	b.WriteString("networks:\n")
	for i := range n {
		fmt.Fprintf(&b, "  n%d: [10.0.0.1]\n", i)
	}
	return b.String()
}

func TestLoadConfigured(t *testing.T) {
	v := viper.New()
	p, err := LoadConfigured(v)
	if err != nil || p.Source != "preset:monitor" {
		t.Fatalf("no configuration: %v %v", p, err)
	}
	v.Set(ConfigPreset, "disable-all")
	if p, err = LoadConfigured(v); err != nil || p.Source != "preset:disable-all" {
		t.Fatalf("preset: %v %v", p, err)
	}
	v.Set(ConfigFile, "presets/offer-only.yaml")
	if p, err = LoadConfigured(v); err != nil || p.Source != "presets/offer-only.yaml" {
		t.Fatalf("file wins: %v %v", p, err)
	}
}

const reloadA = `
rules:
  - id: a
    match: {labels: [rdp]}
    action: alert
    suppress: {window: 1h}
`

const reloadB = `
rules:
  - id: a
    match: {labels: [rdp]}
    action: alert
    suppress: {window: 1h}
  - id: b
    match: {labels: [teredo]}
    action: block
`

func TestReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	load := func() (*Policy, error) { return Load(path) }
	write(reloadA)
	e := NewEngine(nil)
	if e.Current().Source() != "empty policy" {
		t.Fatalf("NewEngine(nil) runs %q", e.Current().Source())
	}
	if err := e.Reload(load); err != nil {
		t.Fatal(err)
	}
	rdp := Subject{Labels: classify.LabelSet(0).With(classify.LabelRDP), Time: time.Unix(1000, 0),
		Client: netip.MustParseAddrPort("10.0.0.1:1"), Server: netip.MustParseAddrPort("10.0.0.2:3389")}
	teredo := Subject{Labels: classify.LabelSet(0).With(classify.LabelTeredo), Time: time.Unix(1000, 0)}
	if d := e.Decide(&rdp); d.RuleID != "a" || d.Suppressed {
		t.Fatalf("policy A: %+v", d)
	}
	if d := e.Decide(&teredo); d.RuleID != "default" {
		t.Fatalf("policy A, teredo: %+v", d)
	}

	// A valid edit swaps; the suppression window of rule a survives it.
	write(reloadB)
	old := e.Current()
	if err := e.Reload(load); err != nil {
		t.Fatal(err)
	}
	if e.Current() == old {
		t.Fatal("valid reload did not swap")
	}
	if d := e.Decide(&teredo); d.RuleID != "b" || d.Action != ActionBlock {
		t.Fatalf("policy B, teredo: %+v", d)
	}
	rdp.Time = rdp.Time.Add(time.Minute)
	if d := e.Decide(&rdp); d.RuleID != "a" || !d.Suppressed {
		t.Fatalf("policy B, rdp inside the window: %+v", d)
	}

	// An invalid edit keeps B running and says why, with positions.
	write(reloadB + "  - id: b\n    action: explode\n")
	running := e.Current()
	err := e.Reload(load)
	if err == nil {
		t.Fatal("invalid policy accepted")
	}
	for _, want := range []string{"still running " + path, path + ":10:5: rule \"b\": duplicate id", path + ":11:13: rule \"b\": action: unknown action \"explode\""} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("reload error lacks %q:\n%v", want, err)
		}
	}
	if e.Current() != running {
		t.Fatal("invalid reload replaced the running policy")
	}
	if d := e.Decide(&teredo); d.RuleID != "b" {
		t.Fatalf("after failed reload: %+v", d)
	}
	// A file that vanished is a failure too.
	os.Remove(path)
	if err := e.Reload(load); err == nil || e.Current() != running {
		t.Fatalf("missing file: %v", err)
	}
	// A policy that loads but does not compile (built in Go).
	if err := e.Reload(func() (*Policy, error) { return &Policy{Rules: []Rule{{ID: "x"}}}, nil }); err == nil || e.Current() != running {
		t.Fatalf("uncompilable policy: %v", err)
	}
	st := e.Stats()
	if st.ReloadsOK != 2 || st.ReloadsFailed != 3 || st.Source != path || st.Rules != 2 {
		t.Errorf("stats: %+v", st)
	}
	if st.Alert != 2 || st.Block != 2 || st.Log != 1 || st.Suppressed != 1 || st.SuppressWindows != 1 {
		t.Errorf("decision stats: %+v", st)
	}
	e.Swap(nil)
	if e.Current() != running {
		t.Error("Swap(nil) replaced the policy")
	}
}

// TestReloadOnSignal drives ReloadOn as the sensor does with SIGHUP.
func TestReloadOnSignal(t *testing.T) {
	e := NewEngine(nil)
	sig := make(chan os.Signal)
	results := make(chan error)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	n := 0
	go func() {
		defer wg.Done()
		e.ReloadOn(ctx, sig, func() (*Policy, error) {
			n++
			if n == 2 {
				return LoadBytes("bad.yaml", []byte("rules: 3\n"))
			}
			return Preset("disable-all")
		}, func(err error) { results <- err })
	}()
	sig <- syscall.SIGHUP
	if err := <-results; err != nil || e.Current().Source() != "preset:disable-all" {
		t.Fatalf("first SIGHUP: %v", err)
	}
	sig <- syscall.SIGHUP
	if err := <-results; err == nil || !strings.Contains(err.Error(), "bad.yaml:1:8: rules: want a list") || e.Current().Source() != "preset:disable-all" {
		t.Fatalf("second SIGHUP: %v", err)
	}
	cancel()
	wg.Wait()
	close(sig)
	e.ReloadOn(context.Background(), sig, nil, nil) // returns on a closed channel
}

// TestDecideConcurrent runs decisions while reloading, for the race detector.
func TestDecideConcurrent(t *testing.T) {
	e := NewEngine(mustCompile(t, mustPreset(t, "monitor")))
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := Subject{Labels: classify.LabelSet(0).With(classify.LabelRASession), Mode: classify.ModeInvitation,
				Client: netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(w)}), 1), Server: netip.MustParseAddrPort("10.0.0.1:2")}
			for i := range 2000 {
				s.Time = time.Unix(int64(i), 0)
				e.Decide(&s)
			}
		}()
	}
	for _, name := range PresetNames() {
		if err := e.Reload(func() (*Policy, error) { return Preset(name) }); err != nil {
			t.Error(err)
		}
	}
	wg.Wait()
	st := e.Stats()
	if total := st.Allow + st.Log + st.Alert + st.Block; total != 8000 {
		t.Errorf("decisions counted: %d", total)
	}
}

func TestSuppressorBounded(t *testing.T) {
	s := newSuppressor(4)
	t0 := time.Unix(0, 0)
	key := func(i int) suppressKey {
		return suppressKey{rule: "r", client: netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})}
	}
	for i := range 4 {
		if s.check(key(i), t0, time.Minute) {
			t.Fatal("first alert suppressed")
		}
	}
	// Full and nothing expired: the new window is not recorded.
	if s.check(key(9), t0.Add(time.Second), time.Minute) || s.check(key(9), t0.Add(2*time.Second), time.Minute) {
		t.Fatal("overflowing key suppressed")
	}
	if n, over := s.stats(); n != 4 || over != 2 {
		t.Fatalf("entries %d overflow %d", n, over)
	}
	// Once the windows have expired, a sweep makes room.
	if s.check(key(9), t0.Add(2*time.Minute), time.Minute) {
		t.Fatal("suppressed after sweep")
	}
	if !s.check(key(9), t0.Add(2*time.Minute+time.Second), time.Minute) {
		t.Fatal("not suppressed inside the new window")
	}
	if n, _ := s.stats(); n != 1 {
		t.Fatalf("entries after sweep: %d", n)
	}
}

func TestSuppressIdentifierFields(t *testing.T) {
	c := mustCompile(t, mustLoad(t, `
rules:
  - id: r
    action: alert
    suppress: {window: 1m, identifier: [server_ip, server_port, proto, mode, client_port]}
`))
	e := NewEngine(c)
	base := Subject{Client: netip.MustParseAddrPort("10.0.0.1:1000"), Server: netip.MustParseAddrPort("10.0.0.2:3389"),
		Proto: classify.ProtoTCP, Mode: classify.ModeOffer, Time: time.Unix(100, 0)}
	if e.Decide(&base).Suppressed {
		t.Fatal("first suppressed")
	}
	other := base
	other.Client = netip.MustParseAddrPort("10.9.9.9:1000") // client_ip is not in the identifier
	if !e.Decide(&other).Suppressed {
		t.Error("same identifier not suppressed")
	}
	for i, change := range []func(*Subject){
		func(s *Subject) { s.Server = netip.MustParseAddrPort("10.0.0.3:3389") },
		func(s *Subject) { s.Server = netip.MustParseAddrPort("10.0.0.2:3390") },
		func(s *Subject) { s.Proto = classify.ProtoUDP },
		func(s *Subject) { s.Mode = classify.ModeUPnP },
		func(s *Subject) { s.Client = netip.MustParseAddrPort("10.0.0.1:1001") },
	} {
		s := base
		change(&s)
		if e.Decide(&s).Suppressed {
			t.Errorf("change %d: a different identifier was suppressed", i)
		}
	}
}

// TestEvaluateNoAllocs: evaluation on the hot path allocates nothing, for
// every kind of subject and every preset.
func TestEvaluateNoAllocs(t *testing.T) {
	subjects := benchSubjects()
	for _, name := range append(PresetNames(), "example") {
		var c *Compiled
		if name == "example" {
			p, err := Load("presets/example.yaml")
			if err != nil {
				t.Fatal(err)
			}
			c = mustCompile(t, p)
		} else {
			c = mustCompile(t, mustPreset(t, name))
		}
		for i := range subjects {
			s := &subjects[i]
			if n := testing.AllocsPerRun(100, func() { c.Evaluate(s) }); n != 0 {
				t.Errorf("%s: Evaluate(%v) allocates %.1f times", name, s.Labels.Strings(), n)
			}
		}
		// Decide allocates nothing either once a window is open.
		e := NewEngine(c)
		for i := range subjects {
			s := &subjects[i]
			e.Decide(s)
			if n := testing.AllocsPerRun(100, func() { e.Decide(s) }); n != 0 {
				t.Errorf("%s: Decide(%v) allocates %.1f times", name, s.Labels.Strings(), n)
			}
		}
	}
}

func benchSubjects() []Subject {
	ls := func(ls ...classify.Label) classify.LabelSet {
		var s classify.LabelSet
		for _, l := range ls {
			s = s.With(l)
		}
		return s
	}
	t0 := time.Unix(1_700_000_000, 0)
	return []Subject{
		{Labels: ls(classify.LabelRDP), Client: netip.MustParseAddrPort("10.1.1.1:50000"), Server: netip.MustParseAddrPort("10.1.1.2:3389"), Proto: classify.ProtoTCP, Time: t0},
		{Labels: ls(classify.LabelDCERPC, classify.LabelRADCOMOffer), Client: netip.MustParseAddrPort("192.0.2.10:50000"), Server: netip.MustParseAddrPort("10.1.1.2:49700"), Proto: classify.ProtoTCP, Time: t0},
		{Labels: ls(classify.LabelRASession, classify.LabelRDPRACandidate), Mode: classify.ModeInvitation, Client: netip.MustParseAddrPort("198.51.100.1:50000"), Server: netip.MustParseAddrPort("10.1.1.2:49800"), Proto: classify.ProtoTCP, Time: t0},
		{Labels: ls(classify.LabelTeredo, classify.LabelTeredoQualification), Client: netip.MustParseAddrPort("10.1.1.2:50000"), Server: netip.MustParseAddrPort("198.51.100.1:3544"), Proto: classify.ProtoUDP, Time: t0},
		{Labels: ls(classify.LabelRDP, classify.LabelRDPRACandidate), Inner: true, Client: netip.MustParseAddrPort("[2001:0:4136:e378:8000:63bf:3fff:fdd2]:50000"), Server: netip.MustParseAddrPort("[2001:0:4136:e378::2]:49802"), Proto: classify.ProtoTCP, Time: t0},
		{Labels: ls(classify.LabelRAInvitationFile), InvitationPlain: true, Client: netip.MustParseAddrPort("10.1.1.2:50000"), Server: netip.MustParseAddrPort("198.51.100.1:25"), Proto: classify.ProtoTCP, Time: t0},
		{Labels: ls(classify.LabelSSDP), Client: netip.MustParseAddrPort("10.1.1.2:50000"), Server: netip.MustParseAddrPort("239.255.255.250:1900"), Proto: classify.ProtoUDP, Time: t0},
	}
}

// BenchmarkEvaluate measures one evaluation per labelled flow, cycling
// through the kinds of subject, with each preset and the reference policy.
func BenchmarkEvaluate(b *testing.B) {
	subjects := benchSubjects()
	for _, name := range append(PresetNames(), "example") {
		var p *Policy
		var err error
		if name == "example" {
			p, err = Load("presets/example.yaml")
		} else {
			p, err = Preset(name)
		}
		if err != nil {
			b.Fatal(err)
		}
		c := mustCompile(b, p)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				c.Evaluate(&subjects[i%len(subjects)])
				i++
			}
		})
	}
}

// BenchmarkDecide adds the engine: atomic load, counters, suppression.
func BenchmarkDecide(b *testing.B) {
	subjects := benchSubjects()
	e := NewEngine(mustCompile(b, mustPreset(b, "monitor")))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e.Decide(&subjects[i%len(subjects)])
		i++
	}
}
