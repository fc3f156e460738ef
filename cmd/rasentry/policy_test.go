package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs rasentry with args and returns stdout, stderr and the exit
// status main would use.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	root := newRootCommand()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.Execute()
	code := 0
	if err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			code = ee.code
		} else {
			code = 1
			errOut.WriteString(err.Error())
		}
	}
	return out.String(), errOut.String(), code
}

func TestPolicyCheck(t *testing.T) {
	out, _, code := runCLI(t, "policy", "check", "../../rules/presets/example.yaml", "--preset", "monitor,offer-only")
	if code != 0 {
		t.Fatalf("valid files: exit %d\n%s", code, out)
	}
	for _, want := range []string{
		"preset monitor: ok (5 explicit rules, 0 notes)",
		"../../rules/presets/example.yaml: ok (3 explicit rules, 2 notes)",
		": note: remote_assistance.solicited.control: view-only",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	out, _, code = runCLI(t, "policy", "check", "../../rules/testdata/broken.yaml", "../../rules/presets/monitor.yaml")
	if code != 1 {
		t.Fatalf("broken file: exit %d", code)
	}
	golden, err := os.ReadFile("../../rules/testdata/broken.golden")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.ReplaceAll(string(golden), "testdata/broken.yaml", "../../rules/testdata/broken.yaml")
	if !strings.HasPrefix(out, want) {
		t.Errorf("check output:\n%s\nwant it to start with:\n%s", out, want)
	}
	if !strings.Contains(out, "../../rules/testdata/broken.yaml: 30 problems\n") || !strings.Contains(out, "monitor.yaml: ok") {
		t.Errorf("summary lines:\n%s", out)
	}

	_, errOut, code := runCLI(t, "policy", "check", "no-such-file.yaml")
	if code != 1 || !strings.Contains(errOut, "no-such-file.yaml") {
		t.Errorf("missing file: exit %d, stderr %q", code, errOut)
	}
}

func TestPolicyExplain(t *testing.T) {
	out, _, code := runCLI(t, "policy", "explain", "--preset", "offer-only")
	if code != 0 || !strings.Contains(out, "1. setting:offer:helpers: allow") || !strings.Contains(out, "default: log") {
		t.Fatalf("explain preset: exit %d\n%s", code, out)
	}
	// With neither FILE nor --preset, the configured policy: here from the
	// environment, through viper.
	dir := t.TempDir()
	path := filepath.Join(dir, "p.yaml")
	os.WriteFile(path, []byte("default: alert\n"), 0o644)
	t.Setenv("RASENTRY_POLICY_FILE", path)
	out, _, code = runCLI(t, "policy", "explain")
	if code != 0 || !strings.Contains(out, "policy "+path+": 0 rules") || !strings.Contains(out, "default: alert") {
		t.Fatalf("explain configured: exit %d\n%s", code, out)
	}
	os.WriteFile(path, []byte("default: explode\n"), 0o644)
	out, _, code = runCLI(t, "policy", "explain", path)
	if code != 1 || !strings.Contains(out, path+":1:10: default: unknown action \"explode\"") {
		t.Fatalf("explain broken: exit %d\n%s", code, out)
	}
	if _, _, code = runCLI(t, "policy", "explain", path, "--preset", "monitor"); code != 2 {
		t.Errorf("FILE and --preset: exit %d, want 2", code)
	}
	if _, errOut, code := runCLI(t, "policy", "explain", "--preset", "nope"); code != 1 || !strings.Contains(errOut, "unknown preset") {
		t.Errorf("unknown preset: exit %d %q", code, errOut)
	}
}
