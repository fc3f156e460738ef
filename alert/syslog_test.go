package alert

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rasentry/rasentry/classify"
)

func TestSyslogMessageFormat(t *testing.T) {
	s, err := NewSyslogSink("siem", SyslogConfig{Network: "udp", Address: "127.0.0.1", Facility: "local5", Hostname: "sensor 1", AppName: "rasentry"})
	if err != nil {
		t.Fatal(err)
	}
	if s.cfg.Address != "127.0.0.1:514" {
		t.Errorf("address %q, want the default port", s.cfg.Address)
	}
	e := &Encoded{Type: "alert", Severity: 1, Time: time.Date(2026, 1, 5, 9, 0, 0, 9000, time.UTC), JSON: []byte(`{"a":1}`)}
	got := string(s.appendMessage(nil, e))
	// local5 (21) * 8 + crit (2) = 170
	want := "<170>1 2026-01-05T09:00:00.000009Z sensor1 rasentry " + strconv.Itoa(os.Getpid()) + ` alert - {"a":1}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	for _, c := range []struct {
		typ  string
		sev  int
		want int
	}{{"alert", 2, sevErr}, {"alert", 3, sevWarning}, {"alert", 0, sevNotice}, {"flow", 0, sevInfo}, {"stats", 0, sevInfo}} {
		if got := syslogSeverity(&Encoded{Type: c.typ, Severity: c.sev}); got != c.want {
			t.Errorf("%s severity %d: got %d, want %d", c.typ, c.sev, got, c.want)
		}
	}
}

func TestSyslogConfigErrors(t *testing.T) {
	for _, c := range []struct {
		cfg  SyslogConfig
		want string
	}{
		{SyslogConfig{Network: "sctp"}, `alert: sink s: network "sctp": want udp, tcp or unix`},
		{SyslogConfig{Network: "tcp"}, `alert: sink s: address: missing (host:port)`},
		{SyslogConfig{Network: "udp", Address: "h:1", Facility: "local9"}, `alert: sink s: facility "local9": want kern`},
	} {
		_, err := NewSyslogSink("s", c.cfg)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want %s", c.cfg, err, c.want)
		}
	}
}

// rsyslog is a real rsyslogd listening on loopback (UDP, TCP) and on a
// unix socket, writing what it parses to a file, one line per message.
type rsyslog struct {
	dir, out, sock string
	udp, tcp       int
	cmd            *exec.Cmd
}

func freePort(t *testing.T, network string) int {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

const rsyslogd = "/usr/sbin/rsyslogd"

func startRsyslog(t *testing.T) *rsyslog {
	t.Helper()
	if _, err := os.Stat(rsyslogd); err != nil {
		t.Skipf("%s not installed (Debian package rsyslog; alert/testdata/install-packages.sh installs it)", rsyslogd)
	}
	dir, err := os.MkdirTemp("", "rsyslog")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	r := &rsyslog{dir: dir, out: filepath.Join(dir, "messages"), sock: filepath.Join(dir, "log.sock"),
		udp: freePort(t, "udp"), tcp: freePort(t, "tcp")}
	conf := fmt.Sprintf(`global(workDirectory=%[1]q maxMessageSize="64k")
module(load="imudp")
module(load="imtcp")
module(load="imuxsock" SysSock.Use="off")
input(type="imudp" address="127.0.0.1" port="%[2]d")
input(type="imtcp" address="127.0.0.1" port="%[3]d")
input(type="imuxsock" Socket=%[4]q UseSpecialParser="off" ParseHostname="on" IgnoreTimestamp="off")
template(name="fields" type="string"
  string="%%inputname%%|%%syslogfacility-text%%|%%syslogseverity%%|%%protocol-version%%|%%hostname%%|%%app-name%%|%%procid%%|%%msgid%%|%%timereported:::date-rfc3339%%|%%msg%%\n")
*.* action(type="omfile" file=%[5]q template="fields")
`, dir, r.udp, r.tcp, r.sock, r.out)
	confPath := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	r.cmd = exec.Command(rsyslogd, "-n", "-f", confPath, "-i", filepath.Join(dir, "rsyslogd.pid"))
	r.cmd.Stdout, r.cmd.Stderr = &stderr, &stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("starting rsyslogd: %v", err)
	}
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		if t.Failed() {
			t.Logf("rsyslogd output: %s", stderr.String())
		}
	})
	// Ready when the TCP port accepts and the socket exists.
	waitFor(t, "rsyslogd to listen", 10*time.Second, func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.tcp))
		if err != nil {
			return false
		}
		c.Close()
		_, err = os.Stat(r.sock)
		return err == nil
	})
	return r
}

// lines returns what rsyslog wrote, split into fields.
func (r *rsyslog) lines(t *testing.T) [][]string {
	t.Helper()
	f, err := os.Open(r.out)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		out = append(out, strings.SplitN(sc.Text(), "|", 10))
	}
	return out
}

// sampleRecords returns one record of each kind, the alerts with severities 1 to 3.
func sampleRecords(i int) []Record {
	f := &classify.Flow{ID: uint64(1000 + i), Proto: classify.ProtoTCP,
		Client: netip.MustParseAddrPort("10.20.0.15:50000"), Server: netip.MustParseAddrPort("10.30.0.80:3389"), AppProto: classify.AppRDP}
	f.SetTimes(time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC), time.Date(2026, 1, 5, 9, 0, 5, 0, time.UTC))
	f.Pkts = [2]uint64{10, 12}
	f.Bytes = [2]uint64{1500, 9000}
	f.AddLabel(classify.LabelRDP, classify.ConfidenceHigh)
	alert := NewAlertRecord(f, classify.ToServer, f.Last(), Decided{Decision: "alert", SignatureID: 9000001, Rev: 1,
		Signature: "rasentry: Remote Assistance <offer> & \"quotes\"", Severity: 1 + i%3, PolicyRule: "offer-outside-domain",
		NetworkDirection: "outbound"}, Options{Interface: "eth0"})
	sess := &classify.Session{ID: fmt.Sprintf("s%d", i), Mode: classify.ModeOffer, Novice: netip.MustParseAddr("10.20.0.15"),
		Expert: netip.MustParseAddr("10.30.0.80"), Confidence: classify.ConfidenceHigh, First: f.Start(), Last: f.Last(),
		Members: []classify.SessionMember{{FlowID: f.ID, Labels: f.Labels, Client: f.Client, Server: f.Server}}}
	return []Record{NewFlowRecord(f, Options{Interface: "eth0"}), alert,
		NewSessionRecord(sess, f, f.Last(), Options{Interface: "eth0"}),
		NewStatsRecord(f.Last(), Stats{Uptime: int64(i), Capture: CaptureStats{Packets: uint64(i)}})}
}

// Records through a real rsyslogd over UDP, TCP and a unix socket: every
// message arrives, parsed as RFC 5424 with our facility, severity,
// hostname, app name, process id and event type, its body the record's
// JSON unchanged.
func TestSyslogIntoRsyslog(t *testing.T) {
	r := startRsyslog(t)
	nets := map[string]string{
		"udp":  fmt.Sprintf("127.0.0.1:%d", r.udp),
		"tcp":  fmt.Sprintf("127.0.0.1:%d", r.tcp),
		"unix": r.sock,
	}
	input := map[string]string{"udp": "imudp", "tcp": "imtcp", "unix": "imuxsock"}
	var sinks []Sink
	for _, network := range []string{"udp", "tcp", "unix"} {
		s, err := NewSyslogSink("siem-"+network, SyslogConfig{Network: network, Address: nets[network], Facility: "local5", Hostname: "sensor-1"})
		if err != nil {
			t.Fatal(err)
		}
		b, err := Buffered(s, BufferOptions{Name: "siem-" + network, Type: SinkSyslog, BatchSize: 16})
		if err != nil {
			t.Fatal(err)
		}
		sinks = append(sinks, b)
	}
	m := NewMulti(sinks...)
	const rounds = 100          // 400 records per transport
	want := map[string]string{} // JSON by event type and round, to compare bodies
	for i := range rounds {
		for _, rec := range sampleRecords(i) {
			e, err := eveEncoder.Encode(rec)
			if err != nil {
				t.Fatal(err)
			}
			want[string(e.JSON)] = e.Type
			if err := m.Write(rec); err != nil {
				t.Fatal(err)
			}
		}
		if i%10 == 9 {
			time.Sleep(2 * time.Millisecond) // a steady rate, as a sensor writes; UDP has no flow control
		}
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	var lines [][]string
	waitFor(t, "rsyslogd to write every message", 15*time.Second, func() bool {
		lines = r.lines(t)
		return len(lines) >= 3*rounds*4
	})
	counts := map[string]int{}
	sevs := map[string]int{}
	for _, l := range lines {
		if len(l) != 10 {
			t.Fatalf("line with %d fields: %q", len(l), l)
		}
		in, fac, sev, ver, host, app, pid, msgid, ts, msg := l[0], l[1], l[2], l[3], l[4], l[5], l[6], l[7], l[8], l[9]
		counts[in]++
		typ, ok := want[msg]
		if !ok {
			t.Fatalf("%s: body is not a record we sent: %.200s", in, msg)
		}
		if !json.Valid([]byte(msg)) {
			t.Fatalf("%s: body is not JSON: %.200s", in, msg)
		}
		if fac != "local5" || ver != "1" || host != "sensor-1" || app != "rasentry" || pid != strconv.Itoa(os.Getpid()) || msgid != typ {
			t.Fatalf("%s: header fields %q", in, l[:8])
		}
		if !strings.HasPrefix(ts, "2026-01-05T09:00:05") {
			t.Errorf("%s: timestamp %s, want the record's", in, ts)
		}
		sevs[typ+"/"+sev]++
	}
	for network, in := range input {
		if counts[in] != rounds*4 {
			t.Errorf("%s: rsyslog got %d messages, want %d", network, counts[in], rounds*4)
		}
	}
	t.Logf("messages by input: %v; by type/severity: %v", counts, sevs)
	if sevs["alert/2"] == 0 || sevs["alert/3"] == 0 || sevs["alert/4"] == 0 || sevs["flow/6"] == 0 {
		t.Errorf("severities %v: want alerts at 2, 3, 4 and flows at 6", sevs)
	}
}

// A server that is down shows as delivery errors naming the sink and the
// address; the records wait and arrive once it is up.
func TestSyslogTCPServerLate(t *testing.T) {
	port := freePort(t, "tcp")
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s, err := NewSyslogSink("siem", SyslogConfig{Network: "tcp", Address: addr, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	b, err := Buffered(s, fastRetry(BufferOptions{Name: "siem"}))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		b.Write(rec(i))
	}
	waitFor(t, "a failed attempt", 5*time.Second, func() bool { return b.Stats().Errors > 0 })
	if e := b.Stats().LastError; !strings.Contains(e, "alert: sink siem: syslog tcp "+addr+": ") || !strings.Contains(e, "connection refused") {
		t.Errorf("error %q", e)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var buf bytes.Buffer
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		one := make([]byte, 4096)
		for bytes.Count(buf.Bytes(), []byte(" flow - ")) < 50 {
			n, err := c.Read(one)
			buf.Write(one[:n])
			if err != nil {
				break
			}
		}
		got <- buf.Bytes()
	}()
	data := <-got
	b.Close()
	// Octet counting: LEN SP MSG, back to back.
	n := 0
	for len(data) > 0 {
		sp := bytes.IndexByte(data, ' ')
		size, err := strconv.Atoi(string(data[:sp]))
		if err != nil {
			t.Fatalf("frame %d: bad length %q", n, data[:sp])
		}
		msg := data[sp+1 : sp+1+size]
		if want := fmt.Sprintf(`{"n":%d,"event_type":"flow"}`, n); !bytes.HasSuffix(msg, []byte(want)) {
			t.Fatalf("frame %d: %q, want it to end %s", n, msg, want)
		}
		data = data[sp+1+size:]
		n++
	}
	if n != 50 {
		t.Errorf("%d frames, want 50", n)
	}
}
