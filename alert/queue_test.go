package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// numbered is a record carrying its write order.
type numbered struct {
	N    int    `json:"n"`
	Type string `json:"event_type"`
}

func (numbered) EventType() string { return "flow" }

func rec(n int) Record { return numbered{N: n, Type: "flow"} }

// numberOf reads n back from a delivered record.
func numberOf(t testing.TB, r Record) int {
	t.Helper()
	e, ok := r.(*Encoded)
	if !ok {
		t.Fatalf("delivered %T, want *Encoded", r)
	}
	var x numbered
	if err := json.Unmarshal(e.JSON, &x); err != nil {
		t.Fatalf("delivered %q: %v", e.JSON, err)
	}
	return x.N
}

// fakeDest is a destination that can be taken down, slowed, or made to
// hang, and remembers what it received.
type fakeDest struct {
	mu      sync.Mutex
	down    bool
	delay   time.Duration
	hang    chan struct{} // Write waits on it while not nil
	reject  map[int]bool
	got     []int
	t       testing.TB
	closed  bool
	flushes int
}

func (d *fakeDest) Write(r Record) error {
	d.mu.Lock()
	hang, delay := d.hang, d.delay
	d.mu.Unlock()
	if hang != nil {
		<-hang
	}
	if delay > 0 {
		time.Sleep(delay)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.down {
		return errors.New("alert: sink fake: destination down")
	}
	n := numberOf(d.t, r)
	if d.reject[n] {
		return Reject(fmt.Errorf("alert: sink fake: record %d refused", n))
	}
	d.got = append(d.got, n)
	return nil
}

func (d *fakeDest) Flush() error { d.mu.Lock(); d.flushes++; d.mu.Unlock(); return nil }

func (d *fakeDest) Close() error { d.mu.Lock(); d.closed = true; d.mu.Unlock(); return nil }

func (d *fakeDest) setDown(v bool) { d.mu.Lock(); d.down = v; d.mu.Unlock() }

func (d *fakeDest) received() []int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]int(nil), d.got...)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func fastRetry(o BufferOptions) BufferOptions {
	o.RetryMin, o.RetryMax = time.Millisecond, 20*time.Millisecond
	return o
}

func checkInOrder(t *testing.T, got []int, want int) {
	t.Helper()
	if len(got) != want {
		t.Fatalf("delivered %d records, want %d", len(got), want)
	}
	for i, n := range got {
		if n != i {
			t.Fatalf("record %d delivered at position %d: order lost (first 20: %v)", n, i, got[:min(20, len(got))])
		}
	}
}

func TestBufferedDeliversInOrder(t *testing.T) {
	d := &fakeDest{t: t}
	b, err := Buffered(d, BufferOptions{Name: "fake"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5000 {
		b.Write(rec(i))
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	checkInOrder(t, d.received(), 5000)
	st := b.Stats()
	if st.Written != 5000 || st.Delivered != 5000 || st.Dropped.Total() != 0 || st.Spooled != 0 {
		t.Errorf("stats %+v", st)
	}
	if !d.closed || d.flushes == 0 {
		t.Errorf("destination closed=%v flushes=%d", d.closed, d.flushes)
	}
}

// A dead destination: Write never waits, records go to the spool past the
// queue, and once the destination is back every record arrives, in order.
// The destination first hangs (a write that never returns), then fails,
// then recovers.
func TestBufferedOutageSpoolsAndResumesInOrder(t *testing.T) {
	hang := make(chan struct{})
	d := &fakeDest{t: t, down: true, hang: hang}
	b, err := Buffered(d, fastRetry(BufferOptions{Name: "fake", QueueSize: 100, SpoolDir: t.TempDir(), SpoolMaxBytes: 8 << 20, SpoolSegmentBytes: 64 << 10}))
	if err != nil {
		t.Fatal(err)
	}
	const n = 20000
	var slowest time.Duration
	for i := range n {
		start := time.Now()
		b.Write(rec(i))
		slowest = max(slowest, time.Since(start))
	}
	// Writes never wait for the destination; the bound only allows for a
	// loaded machine's scheduling.
	if slowest > time.Second {
		t.Errorf("a Write took %s while the destination hung", slowest)
	}
	t.Logf("%d writes while the destination hung; slowest %s", n, slowest)
	d.mu.Lock()
	d.hang = nil
	d.mu.Unlock()
	close(hang)
	waitFor(t, "a failed attempt", 5*time.Second, func() bool { return b.Stats().Errors > 0 })
	st := b.Stats()
	if st.Spooled == 0 || st.SpoolRecords == 0 || st.SpoolBytes == 0 || st.Errors == 0 || st.LastError == "" {
		t.Errorf("during the outage: %+v", st)
	}
	segs, _ := filepath.Glob(filepath.Join(b.spoolDir, "*.spool"))
	if len(segs) < 2 {
		t.Errorf("spool has %d segments, want several", len(segs))
	}
	d.setDown(false)
	waitFor(t, "delivery after the outage", 20*time.Second, func() bool { return b.Stats().Delivered == n })
	// New records after the spool drained go through memory again.
	for i := n; i < n+10; i++ {
		b.Write(rec(i))
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	checkInOrder(t, d.received(), n+10)
	st = b.Stats()
	if st.Dropped.Total() != 0 || st.SpoolRecords != 0 || st.SpoolBytes != 0 {
		t.Errorf("after recovery: %+v", st)
	}
	if segs, _ := filepath.Glob(filepath.Join(b.spoolDir, "*.spool")); len(segs) != 0 {
		t.Errorf("spool segments left after everything was delivered: %v", segs)
	}
}

// Past the queue and the spool, records are dropped and counted; what is
// delivered keeps its order.
func TestBufferedDropsPastEveryBound(t *testing.T) {
	d := &fakeDest{t: t, down: true}
	b, err := Buffered(d, fastRetry(BufferOptions{Name: "fake", QueueSize: 10, SpoolDir: t.TempDir(), SpoolMaxBytes: 64 << 10}))
	if err != nil {
		t.Fatal(err)
	}
	const n = 5000
	for i := range n {
		b.Write(rec(i))
	}
	st := b.Stats()
	if st.Dropped.SpoolFull == 0 || st.SpoolBytes > 64<<10 {
		t.Fatalf("want spool_full drops within the 64 KiB bound: %+v", st)
	}
	d.setDown(false)
	waitFor(t, "delivery", 10*time.Second, func() bool {
		s := b.Stats()
		return s.Delivered+s.Dropped.Total() == n
	})
	b.Close()
	got := d.received()
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("order lost at %d: %d after %d", i, got[i], got[i-1])
		}
	}
	st = b.Stats()
	if uint64(len(got)) != st.Delivered || st.Delivered+st.Dropped.SpoolFull != n {
		t.Errorf("delivered %d, stats %+v", len(got), st)
	}
	t.Logf("sent %d, delivered %d, spooled %d, dropped %d (spool full)", n, st.Delivered, st.Spooled, st.Dropped.SpoolFull)
}

func TestBufferedWithoutSpoolDropsQueueFull(t *testing.T) {
	d := &fakeDest{t: t, down: true}
	b, err := Buffered(d, fastRetry(BufferOptions{Name: "fake", QueueSize: 10}))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 1000 {
		b.Write(rec(i))
	}
	if st := b.Stats(); st.Dropped.QueueFull == 0 || st.QueueDepth != 10 || st.QueueCapacity != 10 {
		t.Errorf("stats %+v", st)
	}
	d.setDown(false)
	waitFor(t, "delivery", 5*time.Second, func() bool { st := b.Stats(); return st.Delivered+st.Dropped.Total() == 1000 })
	b.Close()
}

// Records still in memory at a shutdown deadline are kept in the spool, in
// front of the spooled ones; the next run delivers all of them, in order,
// before anything new.
func TestBufferedSpoolSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	d := &fakeDest{t: t, down: true}
	b, err := Buffered(d, fastRetry(BufferOptions{Name: "fake", QueueSize: 50, SpoolDir: dir, SpoolSegmentBytes: 64 << 10}))
	if err != nil {
		t.Fatal(err)
	}
	const n = 3000
	for i := range n {
		b.Write(rec(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := b.CloseContext(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	if st := b.Stats(); st.SpoolRecords != n || st.Dropped.Total() != 0 {
		t.Fatalf("after close: %+v", st)
	}

	d2 := &fakeDest{t: t}
	b2, err := Buffered(d2, fastRetry(BufferOptions{Name: "fake", QueueSize: 50, SpoolDir: dir, SpoolSegmentBytes: 64 << 10}))
	if err != nil {
		t.Fatal(err)
	}
	for i := n; i < n+500; i++ {
		b2.Write(rec(i))
	}
	if err := b2.Close(); err != nil {
		t.Fatal(err)
	}
	checkInOrder(t, d2.received(), n+500)
}

// A second process must not share a spool.
func TestSpoolLocked(t *testing.T) {
	dir := t.TempDir()
	b, err := Buffered(&fakeDest{t: t}, BufferOptions{Name: "one", SpoolDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, err = Buffered(&fakeDest{t: t}, BufferOptions{Name: "two", SpoolDir: dir})
	if err == nil || !strings.Contains(err.Error(), "in use by another process") || !strings.Contains(err.Error(), "sink two") {
		t.Fatalf("second open: %v", err)
	}
}

// spoolRecords fills a spool directory with records 0..n-1 by running a
// Buffered sink against a dead destination and closing it.
func spoolRecords(t *testing.T, dir string, n int) {
	t.Helper()
	d := &fakeDest{t: t, down: true}
	b, err := Buffered(d, fastRetry(BufferOptions{Name: "fake", QueueSize: 1, BatchSize: 1, SpoolDir: dir, SpoolSegmentBytes: 64 << 10}))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		b.Write(rec(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := b.CloseContext(ctx); err != nil {
		t.Fatal(err)
	}
}

func replaySpool(t *testing.T, dir string) ([]int, SinkStats) {
	t.Helper()
	d := &fakeDest{t: t}
	b, err := Buffered(d, BufferOptions{Name: "fake", SpoolDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	return d.received(), b.Stats()
}

// A damaged record is found by its checksum: the rest of its segment is
// skipped and counted, the other segments are delivered.
func TestSpoolDamageSkipped(t *testing.T) {
	dir := t.TempDir()
	spoolRecords(t, dir, 4000)
	segs, _ := filepath.Glob(filepath.Join(dir, "*.spool"))
	if len(segs) < 3 {
		t.Fatalf("want several segments, have %d", len(segs))
	}
	b, err := os.ReadFile(segs[1])
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(b), `"n":`) + 4
	b[i] ^= 0x01 // one flipped bit in a number
	if err := os.WriteFile(segs[1], b, 0o640); err != nil {
		t.Fatal(err)
	}
	got, st := replaySpool(t, dir)
	if st.Dropped.Corrupt != 1 {
		t.Errorf("corrupt drops %d, want 1", st.Dropped.Corrupt)
	}
	if len(got) == 0 || len(got) >= 4000 {
		t.Fatalf("delivered %d of 4000", len(got))
	}
	for i := 1; i < len(got); i++ {
		if got[i] <= got[i-1] {
			t.Fatalf("order lost: %d after %d", got[i], got[i-1])
		}
	}
	if got[len(got)-1] != 3999 {
		t.Errorf("last delivered %d: the segments after the damage were not", got[len(got)-1])
	}
}

// A torn last record (the process died mid-write) is cut off at start and
// appending goes on after the last whole record.
func TestSpoolTornTailRepaired(t *testing.T) {
	dir := t.TempDir()
	spoolRecords(t, dir, 300)
	segs, _ := filepath.Glob(filepath.Join(dir, "*.spool"))
	last := segs[len(segs)-1]
	f, err := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`000000ff 12345678 flow 0 0 - {"n":30`)
	f.Close()
	got, st := replaySpool(t, dir)
	if len(got) != 300 || st.Dropped.Corrupt != 1 {
		t.Errorf("delivered %d (want 300), corrupt %d (want 1)", len(got), st.Dropped.Corrupt)
	}
}

// Block (replay) makes Write wait for room: nothing spooled, nothing lost.
func TestBufferedBlock(t *testing.T) {
	d := &fakeDest{t: t}
	b, err := Buffered(d, BufferOptions{Name: "fake", QueueSize: 8, BatchSize: 4, Block: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20000 {
		b.Write(rec(i))
	}
	b.Close()
	checkInOrder(t, d.received(), 20000)
	if st := b.Stats(); st.Dropped.Total() != 0 || st.Spooled != 0 {
		t.Errorf("stats %+v", st)
	}
}

// A record the destination refuses for good is dropped and counted; the
// ones behind it are not held up.
func TestBufferedRejected(t *testing.T) {
	d := &fakeDest{t: t, reject: map[int]bool{5: true}}
	b, err := Buffered(d, BufferOptions{Name: "fake"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		b.Write(rec(i))
	}
	b.Close()
	got := d.received()
	if len(got) != 9 || got[5] != 6 {
		t.Errorf("delivered %v", got)
	}
	if st := b.Stats(); st.Dropped.Rejected != 1 || st.Delivered != 9 || !strings.Contains(st.LastError, "record 5 refused") {
		t.Errorf("stats %+v", st)
	}
}

// hangDest never returns from Write until interrupted.
type hangDest struct {
	fakeDest
	stop chan struct{}
	once sync.Once
}

func (h *hangDest) Write(Record) error { <-h.stop; return errors.New("alert: sink hang: interrupted") }

func (h *hangDest) Interrupt() { h.once.Do(func() { close(h.stop) }) }

// Close keeps its deadline even when the destination hangs in a write.
func TestBufferedCloseDeadline(t *testing.T) {
	h := &hangDest{stop: make(chan struct{})}
	b, err := Buffered(h, BufferOptions{Name: "hang", SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		b.Write(rec(i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = b.CloseContext(ctx)
	if took := time.Since(start); took > time.Second {
		t.Errorf("close took %s", took)
	}
	if err != nil {
		t.Errorf("close: %v", err)
	}
	// Nothing was lost: all 100 wait in the spool for the next start.
	if st := b.Stats(); st.SpoolRecords != 100 {
		t.Errorf("stats %+v", st)
	}
	b.Write(rec(100))
	if st := b.Stats(); st.Dropped.Closed != 1 {
		t.Errorf("a write after close: %+v", st)
	}
}

// Reconfigure swaps the destination between batches: records that waited
// for the dead one go to the new one, in order.
func TestBufferedReconfigure(t *testing.T) {
	dir := t.TempDir()
	old := &fakeDest{t: t, down: true}
	o := fastRetry(BufferOptions{Name: "fake", QueueSize: 20, SpoolDir: dir})
	b, err := Buffered(old, o)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 500 {
		b.Write(rec(i))
	}
	nu := &fakeDest{t: t}
	o.QueueSize = 5 // smaller: the overflow goes in front of the spool
	if err := b.Reconfigure(nu, o); err != nil {
		t.Fatal(err)
	}
	for i := 500; i < 600; i++ {
		b.Write(rec(i))
	}
	b.Close()
	checkInOrder(t, nu.received(), 600)
	if !old.closed {
		t.Error("the replaced destination was not closed")
	}
	if err := b.Reconfigure(nil, BufferOptions{SpoolDir: "/elsewhere"}); err == nil {
		t.Error("a spool directory change was accepted")
	}
}

func BenchmarkBufferedWrite(b *testing.B) {
	d := &fakeDest{t: b}
	s, err := Buffered(d, BufferOptions{Name: "fake"})
	if err != nil {
		b.Fatal(err)
	}
	r := rec(1)
	b.ReportAllocs()
	for b.Loop() {
		s.Write(r)
	}
	s.Close()
}

// The sensor's path: records arrive encoded (EncodeFlow); Write only queues.
func BenchmarkBufferedWriteEncoded(b *testing.B) {
	s, err := Buffered(discard{}, BufferOptions{Name: "discard"})
	if err != nil {
		b.Fatal(err)
	}
	e := &Encoded{Type: "flow", JSON: []byte(`{"timestamp":"2026-01-05T09:00:00.009000+0000","event_type":"flow"}`)}
	b.ReportAllocs()
	for b.Loop() {
		s.Write(e)
	}
	s.Close()
}

type discard struct{}

func (discard) Write(Record) error { return nil }
func (discard) Close() error       { return nil }
