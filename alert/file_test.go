package alert

import (
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// padded is a record of about 400 bytes, numbered by writer and sequence.
type padded struct {
	Writer int    `json:"writer"`
	Seq    int    `json:"seq"`
	Pad    string `json:"pad"`
}

func (padded) EventType() string { return "flow" }

// readLines reads every line of a file, gunzipping .gz ones.
func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		r = gz
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Fatalf("%s does not end with a whole line", path)
	}
	if len(b) > 1<<20 {
		t.Errorf("%s holds %d bytes, past the 1 MiB rotation size", path, len(b))
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// Rotation under load: 8 writers, ~16 MB through a 1 MiB rotation with
// compression. Every record is in exactly one file, whole, and per writer
// in order; no file passes the size.
func TestFileRotationUnderLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "eve.json")
	fs, err := NewFileSink("eve", FileConfig{Path: path, RotateSizeMB: 1, Compress: true})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Buffered(fs, BufferOptions{Name: "eve", Type: SinkFile, QueueSize: 1000, Block: true})
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 8, 5000
	pad := strings.Repeat("x", 360)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				b.Write(padded{Writer: w, Seq: i, Pad: pad})
			}
		}()
	}
	wg.Wait()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// lumberjack compresses in the background: wait for it.
	var files []string
	waitFor(t, "compression of rotated files", 30*time.Second, func() bool {
		files, _ = filepath.Glob(filepath.Join(dir, "eve-*"))
		for _, f := range files {
			if !strings.HasSuffix(f, ".gz") {
				return false
			}
		}
		return true
	})
	if len(files) < 10 {
		t.Fatalf("%d rotated files, want at least 10 for ~16 MB at 1 MiB", len(files))
	}
	next := make([]int, writers)
	total := 0
	for _, f := range append(files, path) { // rotated names sort by time
		for _, line := range readLines(t, f) {
			if line == "" {
				continue
			}
			var p padded
			if err := json.Unmarshal([]byte(line), &p); err != nil {
				t.Fatalf("%s: a broken line: %v: %.80s", f, err, line)
			}
			if p.Seq != next[p.Writer] {
				t.Fatalf("%s: writer %d: record %d after %d", f, p.Writer, p.Seq, next[p.Writer]-1)
			}
			next[p.Writer]++
			total++
		}
	}
	if total != writers*each {
		t.Errorf("found %d records, want %d", total, writers*each)
	}
	t.Logf("%d records in %d compressed files and the current one", total, len(files))
}

// logrotate's way: the file is moved away, SIGHUP makes the sink reopen
// the path, new records go to a new file.
func TestFileReopenAfterMove(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "eve.json")
	fs, err := NewFileSink("eve", FileConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		fs.Write(rec(i))
	}
	if err := fs.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	fs.Write(rec(10)) // still buffered: goes to the moved file on Reopen's flush
	if err := fs.Reopen(); err != nil {
		t.Fatal(err)
	}
	for i := 11; i < 15; i++ {
		fs.Write(rec(i))
	}
	if err := fs.Close(); err != nil {
		t.Fatal(err)
	}
	if got := len(readLines(t, path+".1")); got != 11 {
		t.Errorf("moved file has %d records, want 11", got)
	}
	if got := len(readLines(t, path)); got != 4 {
		t.Errorf("new file has %d records, want 4", got)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o640 {
		t.Errorf("new file mode %v, want 0640", st.Mode().Perm())
	}
}

// Rotation by age.
func TestFileRotateEvery(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "eve.json")
	fs, err := NewFileSink("eve", FileConfig{Path: path, RotateEvery: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	fs.Write(rec(0))
	fs.Flush()
	time.Sleep(60 * time.Millisecond)
	fs.Write(rec(1))
	fs.Flush()
	fs.Close()
	files, _ := filepath.Glob(filepath.Join(dir, "eve-*"))
	if len(files) != 1 || len(readLines(t, path)) != 1 {
		t.Errorf("rotated %v", files)
	}
}

func TestFileSinkErrorsNameTheSink(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "file"), nil, 0o640)
	_, err := NewFileSink("eve", FileConfig{Path: filepath.Join(dir, "file", "eve.json")})
	if err == nil || !strings.HasPrefix(err.Error(), "alert: sink eve: ") || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("got %v", err)
	}
	_, err = NewFileSink("eve", FileConfig{})
	if err == nil || err.Error() != "alert: sink eve: path: missing" {
		t.Errorf("got %v", err)
	}
}
