package alert

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/viper"
)

// outputSection reads YAML as rasentry's CLI does (viper) and returns its
// "output" section.
func outputSection(t *testing.T, yaml string) map[string]any {
	t.Helper()
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(strings.NewReader(yaml)); err != nil {
		t.Fatal(err)
	}
	return v.GetStringMap("output")
}

func TestDecodeOutputConfig(t *testing.T) {
	c, err := DecodeOutputConfig(outputSection(t, `
output:
  eve: ignored.json          # another setting's key
  community_id_seed: 3       # another setting's key
  format: ecs
  spool_dir: /var/lib/rasentry/spool
  close_timeout: 5s
  sinks:
    - type: stdout
    - type: file
      path: /var/log/rasentry/eve.json
      rotate_size_mb: 0
      rotate_every: 24h
      queue: {size: 500, spool: false}
    - name: siem
      type: syslog
      network: tcp
      address: siem.example:6514
      facility: local3
    - type: kafka
      brokers: [k1:9092, k2:9092]
      topic_by_type: {flow: rasentry-flows}
      tls: {enabled: true, server_name: kafka.example}
      sasl: {mechanism: scram-sha-512, username: rasentry, password_file: /etc/rasentry/kafka.pass}
      queue: {size: 20000, spool_max_bytes: 1GiB, retry_max: 1m}
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Format != FormatECS || c.SpoolDir != "/var/lib/rasentry/spool" || c.CloseTimeout != 5*time.Second || len(c.Sinks) != 4 {
		t.Fatalf("%+v", c)
	}
	st, f, sy, k := c.Sinks[0], c.Sinks[1], c.Sinks[2], c.Sinks[3]
	if st.Name != "stdout" || c.spoolDir(&st) != "" {
		t.Errorf("stdout: %+v, spool %q", st, c.spoolDir(&st))
	}
	if f.Name != "file" || f.File.RotateSizeMB != 0 || f.File.RotateEvery != 24*time.Hour || f.File.KeepFiles != 10 || !f.File.Compress ||
		f.Queue.Size != 500 || c.spoolDir(&f) != "" {
		t.Errorf("file: %+v %+v", f, f.File)
	}
	if sy.Name != "siem" || sy.Syslog.Network != "tcp" || sy.Syslog.Facility != "local3" || sy.Syslog.AppName != "rasentry" ||
		c.spoolDir(&sy) != "/var/lib/rasentry/spool/siem" {
		t.Errorf("syslog: %+v %+v", sy, sy.Syslog)
	}
	if k.Kafka.Topic != "rasentry" || len(k.Kafka.Brokers) != 2 || k.Kafka.TopicByType["flow"] != "rasentry-flows" || !k.Kafka.TLS.Enabled ||
		k.Kafka.SASL.Mechanism != "scram-sha-512" || k.Queue.SpoolMaxBytes != 1<<30 || k.Queue.RetryMax != time.Minute || k.Kafka.Acks != "all" {
		t.Errorf("kafka: %+v %+v", k, k.Kafka)
	}

	d, err := DecodeOutputConfig(nil)
	if err != nil || len(d.Sinks) != 1 || d.Sinks[0].Type != SinkStdout || d.Format != FormatEVE {
		t.Errorf("defaults: %+v, %v", d, err)
	}
}

// Errors name the setting, the sink and the problem.
func TestDecodeOutputConfigErrors(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"output: {format: xml}", `output.format: "xml" is not a record format (want eve or ecs)`},
		{"output: {sinks: [{type: file}]}", `output.sinks[0] (file): path: missing`},
		{"output: {sinks: [{type: pigeon}]}", `output.sinks[0] (pigeon): type "pigeon": want stdout, file, syslog or kafka`},
		{"output: {sinks: [{path: x}]}", `output.sinks[0]: type: missing`},
		{"output: {sinks: [{type: file, path: x, rotate_size: 5}]}", `output.sinks[0] (file): unknown setting(s) rotate_size`},
		{"output: {sinks: [{type: stdout, path: x}]}", `output.sinks[0] (stdout): unknown setting(s) "path" for a stdout sink`},
		{"output: {sinks: [{type: kafka, name: siem, brokers: []}]}", `output.sinks[0] (kafka "siem"): brokers: missing`},
		{"output: {sinks: [{type: syslog, address: h, facility: mail2}]}", `output.sinks[0] (syslog): facility "mail2"`},
		{"output: {sinks: [{type: stdout}, {type: stdout}]}", `output.sinks[1] (stdout): name "stdout" is already output.sinks[0]'s`},
		{"output: {sinks: [{type: stdout, name: a/b}]}", `output.sinks[0] (stdout "a/b"): name "a/b": use letters`},
		{"output: {sinks: [{type: kafka, brokers: [k:1], queue: {spool_max_bytes: 12XB}}]}", `output.sinks[0] (kafka): queue: spool_max_bytes: size "12XB": unknown unit`},
		{"output: {sinks: [{type: kafka, brokers: [k:1], queue: {spool_max_bytes: 1KiB}}]}", `output.sinks[0] (kafka): queue.spool_max_bytes: 1024 is below the 64KiB minimum`},
		{"output: {sinks: [{type: kafka, brokers: [k:1], queue: {sise: 3}}]}", `output.sinks[0] (kafka): queue: unknown setting(s) sise`},
		{"output: {close_timeout: soon}", `output.close_timeout "soon": time: invalid duration`},
		{"output: {sinks: []}", `output.sinks: empty`},
	} {
		_, err := DecodeOutputConfig(outputSection(t, c.yaml))
		if testing.Verbose() {
			t.Logf("%-90s → %v", c.yaml, err)
		}
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant %s…", c.yaml, err, c.want)
		}
	}
}

func TestParseByteSize(t *testing.T) {
	for s, want := range map[string]ByteSize{"0": 0, "512": 512, "64KiB": 64 << 10, "256MiB": 256 << 20, "1 GiB": 1 << 30, "10mb": 10 << 20, "2G": 2 << 30} {
		if got, err := ParseByteSize(s); err != nil || got != want {
			t.Errorf("%q: %d, %v; want %d", s, got, err, want)
		}
	}
	for _, s := range []string{"", "MiB", "-1", "1.5GiB", "3 parsecs"} {
		if _, err := ParseByteSize(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a sink's goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// Open builds the sinks; records reach all of them; Reload swaps sinks in
// and out while records are written, without losing any; Reopen follows
// logrotate; Close flushes all.
func TestOutputsOpenReloadClose(t *testing.T) {
	dir := t.TempDir()
	out := &syncBuffer{}
	cfg, err := DecodeOutputConfig(map[string]any{
		"spool_dir": filepath.Join(dir, "spool"),
		"sinks": []any{
			map[string]any{"type": "stdout"},
			map[string]any{"type": "file", "path": filepath.Join(dir, "a.json")},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	o, err := Open(cfg, OpenOptions{Stdout: out})
	if err != nil {
		t.Fatal(err)
	}
	// Writers keep going throughout the reloads.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	written := 0
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				written = i
				return
			default:
			}
			o.Write(rec(i))
			if i%100 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	time.Sleep(20 * time.Millisecond)

	// Reload 1: the file sink moves to b.json (a new destination for the
	// same sink) with a larger queue, and a second file sink starts.
	cfg2 := cfg
	cfg2.Sinks = []SinkConfig{cfg.Sinks[0],
		{Name: "file", Type: SinkFile, File: &FileConfig{Path: filepath.Join(dir, "b.json")}, Queue: QueueConfig{Size: 20000}},
		{Name: "extra", Type: SinkFile, File: &FileConfig{Path: filepath.Join(dir, "extra.json")}}}
	if err := o.Reload(cfg2); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	// A reload that cannot be applied changes nothing.
	bad := cfg2
	bad.Sinks = append([]SinkConfig(nil), cfg2.Sinks...)
	bad.Sinks[2] = SinkConfig{Name: "extra", Type: SinkFile, File: &FileConfig{Path: filepath.Join(dir, "a.json", "x")}}
	if err := o.Reload(bad); err == nil || !strings.Contains(err.Error(), "alert: sink extra: ") {
		t.Errorf("bad reload: %v", err)
	}
	// logrotate moves b.json away; SIGHUP reopens.
	if err := os.Rename(filepath.Join(dir, "b.json"), filepath.Join(dir, "b.json.1")); err != nil {
		t.Fatal(err)
	}
	if err := o.Reopen(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	// Reload 2: the extra sink is removed.
	if err := o.Reload(cfg2WithoutExtra(cfg2)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	close(stop)
	wg.Wait()
	stats := o.SinkStats()
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}

	count := func(s string) int { return strings.Count(s, "\n") }
	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		return string(b)
	}
	if n := count(out.String()); n != written {
		t.Errorf("stdout: %d records, want %d", n, written)
	}
	file := count(read("a.json")) + count(read("b.json.1")) + count(read("b.json"))
	if file != written {
		t.Errorf("file sink: %d records across a.json, b.json.1 and b.json; want %d", file, written)
	}
	if count(read("b.json")) == 0 || count(read("b.json.1")) == 0 || count(read("extra.json")) == 0 {
		t.Errorf("a destination got nothing: b.json %d, b.json.1 %d, extra.json %d",
			count(read("b.json")), count(read("b.json.1")), count(read("extra.json")))
	}
	for _, s := range stats {
		if s.Dropped.Total() != 0 {
			t.Errorf("%s dropped: %+v", s.Name, s.Dropped)
		}
	}
	t.Logf("%d records; a.json %d, b.json.1 %d, b.json %d, extra.json %d", written, count(read("a.json")),
		count(read("b.json.1")), count(read("b.json")), count(read("extra.json")))
}

func cfg2WithoutExtra(c OutputConfig) OutputConfig {
	c.Sinks = c.Sinks[:2]
	return c
}
