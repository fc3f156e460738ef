package alert

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// mountTmpfs mounts a tmpfs of size bytes at a new directory, unmounted
// when the test ends. It needs root (CI runs as root); elsewhere the test
// is skipped.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root (CI runs this test as root)")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	return dir
}

// The disk under the spool fills up (a 256 KiB tmpfs, far below the spool's
// own bound): records past it are dropped and counted as spool errors, the
// error names the sink, the spool and ENOSPC, nothing crashes, and once the
// destination is back every record that was kept arrives, in order.
func TestSpoolDiskFull(t *testing.T) {
	dir := mountTmpfs(t, "256k")
	core, logs := observer.New(zap.WarnLevel)
	d := &fakeDest{t: t, down: true}
	b, err := Buffered(d, fastRetry(BufferOptions{Name: "siem", QueueSize: 100, SpoolDir: dir + "/siem",
		SpoolMaxBytes: 64 << 20, SpoolSegmentBytes: 64 << 10, Logger: zap.New(core), LogInterval: time.Hour}))
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000 // ~1.2 MB of spool records: several times the disk
	for i := range n {
		if err := b.Write(rec(i)); err != nil {
			t.Fatalf("Write returned %v: a full disk must not stop packet processing", err)
		}
	}
	st := b.Stats()
	t.Logf("disk full: %+v", st)
	if st.Dropped.SpoolError == 0 || st.Dropped.SpoolFull != 0 {
		t.Fatalf("want spool_error drops (the disk, not the bound, is full): %+v", st.Dropped)
	}
	for _, want := range []string{"alert: sink siem: spool " + dir + "/siem", "no space left on device"} {
		if !strings.Contains(st.LastError, want) {
			t.Errorf("last error %q does not say %q", st.LastError, want)
		}
	}
	found := false
	for _, e := range logs.All() {
		if e.Message == "record dropped: cannot write the spool" {
			found = true
		}
	}
	if !found {
		t.Errorf("no log line about the spool write failure; logged: %v", logs.All())
	}

	d.setDown(false)
	waitFor(t, "delivery after the disk filled", 20*time.Second, func() bool {
		s := b.Stats()
		return s.Delivered+s.Dropped.Total() == n
	})
	// With the spool drained the disk has room again: new records flow.
	for i := n; i < n+100; i++ {
		b.Write(rec(i))
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	got := d.received()
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("order lost: %d after %d", got[i], got[i-1])
		}
	}
	st = b.Stats()
	if st.Delivered+st.Dropped.SpoolError != n+100 || uint64(len(got)) != st.Delivered || got[len(got)-1] != n+99 {
		t.Errorf("sent %d, delivered %d (received %d), dropped %+v", n+100, st.Delivered, len(got), st.Dropped)
	}
	t.Logf("sent %d, spooled %d, delivered %d, dropped %d (disk full)", n+100, st.Spooled, st.Delivered, st.Dropped.SpoolError)
}
