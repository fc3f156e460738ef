package rules

import (
	"io"
	"net/netip"
	"testing"

	"github.com/rasentry/rasentry/classify"
)

// FuzzLoad feeds arbitrary bytes to the policy loader: it must never panic,
// and whatever it accepts must compile, explain and evaluate. Seeds: the
// presets, the reference policy and the test policies
// (testdata/fuzz/FuzzLoad).
func FuzzLoad(f *testing.F) {
	for _, name := range PresetNames() {
		data, err := PresetYAML(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("rules:\n  - {id: a, action: alert, match: {labels: [rdp]}, suppress: {window: 1m}}\n"))
	f.Add([]byte("a: &x [*x]\n"))
	subjects := benchSubjects()
	subjects = append(subjects, Subject{}, Subject{
		Labels: ^classify.LabelSet(0), Mode: "weird", Proto: 255,
		Client: netip.MustParseAddrPort("[::ffff:10.0.0.1]:0"), Server: netip.MustParseAddrPort("[fe80::1%eth0]:65535"),
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := LoadBytes("fuzz.yaml", data)
		if err != nil {
			if _, ok := err.(Problems); !ok {
				t.Fatalf("error is not Problems: %T %v", err, err)
			}
			return
		}
		c, err := Compile(p)
		if err != nil {
			t.Fatalf("loaded policy does not compile: %v\n%s", err, data)
		}
		c.Explain(io.Discard)
		e := NewEngine(c)
		for i := range subjects {
			d := e.Decide(&subjects[i])
			if d.Action < ActionAllow || d.Action > ActionBlock || d.RuleID == "" || d.Severity < 1 || d.Severity > 4 {
				t.Fatalf("bad decision %+v", d)
			}
		}
	})
}
