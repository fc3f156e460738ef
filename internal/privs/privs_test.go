package privs

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestParseStatus(t *testing.T) {
	const status = "Name:\tx\nCapInh:\t0000000000000000\nCapPrm:\t0000000000003000\nCapEff:\t0000000000003000\n" +
		"CapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\n"
	st, err := parseStatus(bufio.NewScanner(strings.NewReader(status)))
	if err != nil {
		t.Fatal(err)
	}
	if st.Effective != Of(CapNetRaw, CapNetAdmin) || st.Permitted != st.Effective || !st.NoNewPrivs || st.Bounding != 0x1ffffffffff {
		t.Errorf("%+v", st)
	}
	if _, err := parseStatus(bufio.NewScanner(strings.NewReader("Name:\tx\n"))); err == nil {
		t.Error("no error without capability lines")
	}
	if _, err := parseStatus(bufio.NewScanner(strings.NewReader("CapEff:\tzz\n"))); err == nil {
		t.Error("no error for a bad number")
	}
}

func TestMissingError(t *testing.T) {
	err := error(&MissingError{Need: []Cap{CapNetRaw, CapNetAdmin}, Missing: []Cap{CapNetAdmin}})
	want := "rasentry needs CAP_NET_RAW and CAP_NET_ADMIN; this process lacks CAP_NET_ADMIN: run it as root, " +
		"or grant them with `setcap cap_net_raw,cap_net_admin+ep /path/to/rasentry`"
	if err.Error() != want {
		t.Errorf("got  %s\nwant %s", err, want)
	}
	var me *MissingError
	if !errors.As(err, &me) {
		t.Error("not a *MissingError")
	}
}

func TestCheckCapabilities(t *testing.T) {
	st, err := ThreadState()
	if err != nil {
		t.Fatal(err)
	}
	err = CheckCapabilities(CapNetRaw, CapNetAdmin)
	has := st.Effective.Has(CapNetRaw) && st.Effective.Has(CapNetAdmin)
	if has != (err == nil) {
		t.Errorf("effective %#x, CheckCapabilities: %v", uint64(st.Effective), err)
	}
}

const childEnv = "RASENTRY_PRIVS_CHILD"

// TestDropPrivileges runs the drop in a child process (it cannot be undone)
// and checks what the child reports.
func TestDropPrivileges(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip("in the child")
	}
	if err := CheckCapabilities(CapNetRaw, CapNetAdmin, CapSetPCap); err != nil {
		t.Skipf("needs root: %v", err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDropChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestDropChild") {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("child:\n%s", out)
}

// TestDropChild is the child's side of TestDropPrivileges.
func TestDropChild(t *testing.T) {
	dir := os.Getenv(childEnv)
	if dir == "" {
		t.Skip("run by TestDropPrivileges")
	}
	// A file only root's CAP_DAC_OVERRIDE can read.
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.ReadFile(secret); err != nil {
		t.Fatalf("root cannot read a mode 000 file before the drop: %v", err)
	}
	// Busy goroutines, so that the runtime has several threads.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					time.Sleep(time.Microsecond)
				}
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	before, _ := ProcessStates()
	if err := DropPrivileges(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	states, err := ProcessStates()
	if err != nil {
		t.Fatal(err)
	}
	want := Of(CapNetRaw, CapNetAdmin)
	for tid, st := range states {
		if st.Effective != want || st.Permitted != want || st.Bounding != want || st.Inheritable != 0 || st.Ambient != 0 || !st.NoNewPrivs {
			t.Errorf("thread %d: %+v", tid, st)
		}
	}
	t.Logf("%d threads before the drop, %d after, all with effective=permitted=bounding=%#x", len(before), len(states), uint64(want))
	// Reading the file now needs a capability the process gave up; on any
	// thread.
	var fails sync.WaitGroup
	for i := 0; i < 16; i++ {
		fails.Add(1)
		go func() {
			defer fails.Done()
			if _, err := os.ReadFile(secret); !errors.Is(err, os.ErrPermission) {
				t.Errorf("read after the drop: %v, want permission denied", err)
			}
		}()
	}
	fails.Wait()
	// What rasentry keeps still works: an AF_PACKET socket (CAP_NET_RAW).
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		t.Errorf("AF_PACKET socket after the drop: %v", err)
	} else {
		unix.Close(fd)
	}
	if err := CheckCapabilities(CapNetRaw, CapNetAdmin); err != nil {
		t.Error(err)
	}
	if err := CheckCapabilities(CapSetPCap); err == nil {
		t.Error("CAP_SETPCAP still there")
	}
}
