package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds rasentry once for the tests that need a real process
// (exit statuses, signals).
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rasentry-test-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "rasentry")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = err
			binPath = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("go build: %v\n%s", buildErr, binPath)
	}
	return binPath
}

func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func writeFile(t *testing.T, name string, data []byte) string {
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestReplayExitStatusesAndErrors covers the error table in the README:
// each broken input gives a message naming the file (and packet), the
// packets before a problem are still reported, the other files still run.
func TestReplayExitStatusesAndErrors(t *testing.T) {
	good := "../../pcaps/basic.pcap"
	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	truncated := writeFile(t, "cut.pcap", raw[:len(raw)-30])
	notCapture := writeFile(t, "notes.txt", []byte("this is not a capture file\n"))
	badLink := append([]byte{}, raw[:24]...)
	badLink[20] = 147 // LINKTYPE_USER0
	unknownLink := writeFile(t, "user0.pcap", badLink)
	tests := []struct {
		name     string
		args     []string
		code     int
		stderr   []string
		minFlows int
	}{
		{"good file", []string{"replay", good}, 0, []string{"rasentry summary"}, 9},
		{"truncated packet: earlier packets reported", []string{"replay", truncated}, 1, []string{"cut.pcap", "packet", "truncated"}, 8},
		{"not a capture", []string{"replay", notCapture}, 1, []string{"notes.txt", "not a capture file"}, 0},
		{"unsupported link type", []string{"replay", unknownLink}, 1, []string{"user0.pcap", "unsupported link type 147"}, 0},
		{"missing file, other files still run", []string{"replay", "/nonexistent/x.pcap", good}, 1, []string{"/nonexistent/x.pcap"}, 9},
		{"bad policy", []string{"replay", "--policy", writeFile(t, "p.yaml", []byte("defualt: log\n")), good}, 2, []string{"p.yaml:1:1", "unknown key"}, 0},
		{"unknown preset", []string{"replay", "--preset", "nope", good}, 2, []string{"nope"}, 0},
		{"unwritable output", []string{"replay", "--eve", "/dev/null/out.json", good}, 2, []string{"sink eve", "/dev/null"}, 0},
		{"bad log level", []string{"replay", "--log-level", "loud", good}, 1, []string{"--log-level"}, 0},
		{"bad worker count", []string{"replay", "--workers", "0", good}, 2, []string{"--workers 0: want 1 to 64"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := run(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, errOut)
			}
			for _, s := range tt.stderr {
				if !strings.Contains(errOut, s) {
					t.Errorf("stderr lacks %q:\n%s", s, errOut)
				}
			}
			if n := strings.Count(out, `"event_type":"flow"`); n < tt.minFlows {
				t.Errorf("%d flow records, want at least %d", n, tt.minFlows)
			}
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				if l != "" && !json.Valid([]byte(l)) {
					t.Fatalf("not JSON: %s", l)
				}
			}
		})
	}
}

// TestReplayInterrupted sends SIGINT and SIGTERM to a paced replay: flows are
// flushed, the summary printed, and every record is whole.
func TestReplayInterrupted(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(binary(t), "replay", "--realtime", "../../pcaps/invitation-mail.pcap") // spans 90 s
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(1500 * time.Millisecond)
			_ = cmd.Process.Signal(sig)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatal("replay did not stop within 20 s of the signal")
			}
			if !strings.Contains(errb.String(), "rasentry summary") || !strings.Contains(errb.String(), "interrupted") {
				t.Errorf("stderr:\n%s", errb.String())
			}
			// The SMTP flow and its invitation were read before the signal.
			if !strings.Contains(out.String(), `"ra-invitation-file"`) {
				t.Errorf("the flow read before the signal was not flushed:\n%s", out.String())
			}
			for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
				if !json.Valid([]byte(l)) {
					t.Fatalf("torn record: %s", l)
				}
			}
		})
	}
}
