package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/rasentry/rasentry/capture"
	"github.com/rasentry/rasentry/internal/netlab"
)

// The rasentry binary is built once per test run, into a directory that
// TestMain removes.
var build struct {
	once sync.Once
	dir  string
	path string
	err  error
	out  []byte
}

var errNoGo = errors.New("no go command")

func TestMain(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// rasentryBin returns the path of the rasentry binary built from this
// checkout (`go build -o DIR/rasentry ./cmd/rasentry` at the module root).
func rasentryBin(t *testing.T) string {
	t.Helper()
	build.once.Do(func() {
		root, err := filepath.Abs("../..")
		if err == nil {
			_, err = os.Stat(filepath.Join(root, "go.mod"))
		}
		if err != nil {
			build.err = fmt.Errorf("module root: %w", err)
			return
		}
		goBin, err := exec.LookPath("go")
		if err != nil && os.Getenv("GOROOT") != "" {
			goBin, err = filepath.Join(os.Getenv("GOROOT"), "bin", "go"), nil
		}
		if err != nil {
			build.err = errNoGo
			return
		}
		// Not t.TempDir: the binary outlives the test that built it.
		if build.dir, build.err = os.MkdirTemp("", "rasentry-e2e-"); build.err != nil {
			return
		}
		build.path = filepath.Join(build.dir, "rasentry")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, goBin, "build", "-o", build.path, "./cmd/rasentry")
		cmd.Dir = root
		build.out, build.err = cmd.CombinedOutput()
	})
	if build.err == errNoGo {
		t.Skip("e2e: the go command is not on PATH (nor in $GOROOT/bin): cannot build rasentry")
	}
	if build.err != nil {
		t.Fatalf("building rasentry: %v\n%s", build.err, build.out)
	}
	return build.path
}

// requireLab skips the test unless it can run here: root, Linux, and the
// given tools (beyond what netlab itself checks); and in -short mode and
// under the race detector.
func requireLab(t *testing.T, tools ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("e2e: skipped in -short mode (real peers in network namespaces, about a minute)")
	}
	if raceEnabled {
		// The code under test runs in the rasentry binary, built without
		// -race; the plain `go test` run covers these tests.
		t.Skip("e2e: skipped under -race (rasentry runs as a separate binary built without it)")
	}
	netlab.RequireRoot(t)
	netlab.RequireTools(t, append([]string{"ip", "timeout", "nft"}, tools...)...)
}

// daemon is a process started in a namespace with a bounded lifetime
// (timeout(1) kills it at the latest), in a process group of its own so
// that signals reach it and its children. Unlike netlab.Proc it keeps
// stdout and stderr apart (rasentry's summary is on stderr) and lets the
// test choose the signal and the grace period.
type daemon struct {
	name   string
	cmd    *exec.Cmd
	stdout lockedBuffer
	stderr lockedBuffer
	done   chan struct{}
	err    error
}

// startIn starts args in ns, killed after lifetime at the latest and when
// the test ends.
func startIn(t *testing.T, ns *netlab.NS, lifetime time.Duration, args ...string) *daemon {
	t.Helper()
	secs := strconv.FormatFloat(lifetime.Seconds(), 'f', 1, 64)
	d := &daemon{name: ns.Role + ": " + strings.Join(args, " "), done: make(chan struct{})}
	d.cmd = exec.Command("ip", append([]string{"netns", "exec", ns.Name, "timeout", "-k", "3", secs}, args...)...)
	d.cmd.Stdout = &d.stdout
	d.cmd.Stderr = &d.stderr
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", d.name, err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		d.kill()
		if t.Failed() {
			t.Logf("output of %s:\nstdout:\n%s\nstderr:\n%s", d.name, d.stdout.String(), d.stderr.String())
		}
	})
	return d
}

func (d *daemon) running() bool {
	select {
	case <-d.done:
		return false
	default:
		return true
	}
}

// waitFor waits until the daemon's stderr (or stdout) contains s.
func (d *daemon) waitFor(s string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if strings.Contains(d.stderr.String(), s) || strings.Contains(d.stdout.String(), s) {
			return nil
		}
		if !d.running() {
			return fmt.Errorf("%s exited (%v) before printing %q:\n%s", d.name, d.err, s, d.stderr.String())
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not print %q within %v:\n%s", d.name, s, timeout, d.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM to the process group and waits up to grace for the
// exit, then kills it. It returns the exit error.
func (d *daemon) stop(grace time.Duration) error {
	if d.running() {
		syscall.Kill(-d.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-d.done:
		case <-time.After(grace):
			d.kill()
			return fmt.Errorf("%s: still running %v after SIGTERM; killed", d.name, grace)
		}
	}
	return d.err
}

// kill sends SIGKILL to the process group and waits for the exit.
func (d *daemon) kill() {
	if d.running() {
		syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.done
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startRasentry runs the rasentry binary in ns with args and waits until
// the sensor runs (it logs "sensor running" once its sources are open).
func startRasentry(t *testing.T, ns *netlab.NS, lifetime time.Duration, args ...string) *daemon {
	t.Helper()
	d := startIn(t, ns, lifetime, append([]string{rasentryBin(t)}, args...)...)
	if err := d.waitFor("sensor running", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	return d
}

// stopRasentry stops rasentry with SIGTERM (it flushes every flow and
// prints its summary) and returns the summary.
func stopRasentry(t *testing.T, d *daemon) summary {
	t.Helper()
	if err := d.stop(15 * time.Second); err != nil {
		t.Errorf("rasentry: %v\n%s", err, d.stderr.String())
	}
	s, ok := parseSummary(d.stderr.String())
	if !ok {
		t.Fatalf("rasentry's summary is missing, or has a packets or kernel line this test cannot read:\n%s", d.stderr.String())
	}
	return s
}

// startTcpdump writes what iface of ns carries to path (root-owned: -Z
// root) and waits until it listens. --immediate-mode: otherwise libpcap
// hands packets over in TPACKET_V3 blocks retired after tcpdump's 1 s
// timeout, and the packets of the last second before SIGTERM are lost
// ("received by filter" exceeds "captured").
func startTcpdump(t *testing.T, ns *netlab.NS, iface, path string, lifetime time.Duration) *daemon {
	t.Helper()
	d := startIn(t, ns, lifetime, "tcpdump", "-n", "-i", iface, "-s", "262144", "-U", "--immediate-mode", "-Z", "root", "-B", "8192", "-w", path)
	if err := d.waitFor("listening on", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	return d
}

// summary is what the tests read from rasentry's end-of-run summary
// (sensor/summary.go WriteText).
type summary struct {
	text        string
	packets     uint64
	kernelLine  string // "" when the summary has none (then every kernel counter was 0)
	kernelDrops uint64
	freezes     uint64
	dropped     uint64 // inline: packets given a drop verdict
	alerts      uint64
	blocked     uint64
}

var (
	sumPacketsRE = regexp.MustCompile(`(?m)^  packets +(\d+) `)
	sumKernelRE  = regexp.MustCompile(`(?m)^  kernel +(\d+) drops, (\d+) freezes; verdicts: (\d+) dropped`)
	sumAlertsRE  = regexp.MustCompile(`(?m)^  alerts +(\d+) \(\d+ suppressed\); (\d+) flows blocked`)
)

func parseSummary(stderr string) (summary, bool) {
	i := strings.Index(stderr, "rasentry summary\n")
	if i < 0 {
		return summary{}, false
	}
	s := summary{text: stderr[i:]}
	m := sumPacketsRE.FindStringSubmatch(s.text)
	if m == nil {
		return s, false
	}
	s.packets, _ = strconv.ParseUint(m[1], 10, 64)
	if m := sumKernelRE.FindStringSubmatch(s.text); m != nil {
		s.kernelLine = strings.TrimSpace(m[0])
		s.kernelDrops, _ = strconv.ParseUint(m[1], 10, 64)
		s.freezes, _ = strconv.ParseUint(m[2], 10, 64)
		s.dropped, _ = strconv.ParseUint(m[3], 10, 64)
	} else if strings.Contains(s.text, "\n  kernel ") {
		return s, false // a kernel line this parser does not understand
	}
	if m := sumAlertsRE.FindStringSubmatch(s.text); m != nil {
		s.alerts, _ = strconv.ParseUint(m[1], 10, 64)
		s.blocked, _ = strconv.ParseUint(m[2], 10, 64)
	}
	return s, true
}

// record is the part of an EVE record the tests look at.
type record struct {
	EventType string `json:"event_type"`
	SrcIP     string `json:"src_ip"`
	SrcPort   uint16 `json:"src_port"`
	DestIP    string `json:"dest_ip"`
	DestPort  uint16 `json:"dest_port"`
	Proto     string `json:"proto"`
	ICMPType  *uint8 `json:"icmp_type"`
	AppProto  string `json:"app_proto"`
	Flow      struct {
		PktsToServer uint64 `json:"pkts_toserver"`
		PktsToClient uint64 `json:"pkts_toclient"`
		Start        string `json:"start"`
		End          string `json:"end"`
	} `json:"flow"`
	Alert *struct {
		Action    string `json:"action"`
		Signature string `json:"signature"`
	} `json:"alert"`
	Rasentry struct {
		Labels     []string `json:"labels"`
		Decision   string   `json:"decision"`
		Enforced   *bool    `json:"enforced"`
		PolicyRule string   `json:"policy_rule"`
	} `json:"rasentry"`
}

// readEve reads an EVE file (JSON lines).
func readEve(t *testing.T, path string) []record {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("eve: %v", err)
	}
	defer f.Close()
	var recs []record
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for n := 1; sc.Scan(); n++ {
		var r record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s:%d: %v", path, n, err)
		}
		recs = append(recs, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("eve %s: %v", path, err)
	}
	return recs
}

// flowKey names a flow independently of which end is the client: proto
// and the unordered endpoint pair (ICMP flows carry their type instead
// of ports).
func (r *record) flowKey() string {
	a := endpoint(r.SrcIP, r.SrcPort)
	b := endpoint(r.DestIP, r.DestPort)
	if b < a {
		a, b = b, a
	}
	k := r.Proto + " " + a + " " + b
	if r.ICMPType != nil {
		// An echo request and its reply make one flow whichever was
		// seen first; other ICMP types are flows of their own.
		typ := *r.ICMPType
		switch typ {
		case 0:
			typ = 8
		case 129:
			typ = 128
		}
		k += " type " + strconv.Itoa(int(typ))
	}
	return k
}

func endpoint(ip string, port uint16) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip + ":" + strconv.Itoa(int(port))
	}
	return netip.AddrPortFrom(a, port).String()
}

// labelSet is a flow's labels, sorted and joined ("-" for none).
func (r *record) labelSet() string {
	if len(r.Rasentry.Labels) == 0 {
		return "-"
	}
	l := append([]string(nil), r.Rasentry.Labels...)
	sort.Strings(l)
	return strings.Join(l, ",")
}

// flowLabels maps each flow key to the label sets of its flow records
// (sorted: a key may have several flows, e.g. repeated pings).
func flowLabels(recs []record) map[string][]string {
	m := make(map[string][]string)
	for i := range recs {
		if recs[i].EventType != "flow" {
			continue
		}
		k := recs[i].flowKey()
		m[k] = append(m[k], recs[i].labelSet())
	}
	for _, v := range m {
		sort.Strings(v)
	}
	return m
}

// mergePcaps writes the packets of every input (Ethernet only) into one
// classic pcap, in timestamp order (stable for equal stamps): what several
// per-interface captures show as one stream.
func mergePcaps(t *testing.T, out string, ins ...string) int {
	t.Helper()
	type pkt struct {
		ts   time.Time
		data []byte
	}
	var pkts []pkt
	for _, in := range ins {
		src, err := capture.OpenFile(in)
		if err != nil {
			t.Fatalf("merge: %v", err)
		}
		for {
			p, err := src.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("merge %s: %v", in, err)
			}
			if p.LinkType != capture.LinkTypeEthernet {
				continue
			}
			pkts = append(pkts, pkt{p.Time, append([]byte(nil), p.Data...)})
		}
		src.Close()
	}
	sort.SliceStable(pkts, func(i, j int) bool { return pkts[i].ts.Before(pkts[j].ts) })
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriterNanos(f)
	if err := w.WriteFileHeader(262144, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		ci := gopacket.CaptureInfo{Timestamp: p.ts, CaptureLength: len(p.data), Length: len(p.data)}
		if err := w.WritePacket(ci, p.data); err != nil {
			t.Fatal(err)
		}
	}
	return len(pkts)
}

// RDP over xfreerdp: FreeRDP 2 under Xvfb, Standard RDP Security
// (/sec:rdp), with the Remote Assistance virtual channels encomsp and
// remdesk in its ClientData. Against xrdp (no sesman) a connection that
// gets through the whole connection sequence ends with the server's Set
// Error Info PDU (ERRINFO_LOGOFF_BY_USER) within about 2 s; a blocked one
// hangs until the timeout kills it. xvfb-run's temporary directory and
// FreeRDP's ~/.config go to the lab's directory (HOME, TMPDIR), so that a
// killed run leaves nothing behind.
func xfreerdp(l *netlab.Lab, ns *netlab.NS, host netip.Addr, port uint16, timeout time.Duration) (out string, reached bool) {
	out, _ = ns.Run(timeout, xfreerdpArgs(l, host, port)...)
	return out, strings.Contains(out, "ERRINFO_")
}

// xfreerdpArgs is the command line of xfreerdp.
func xfreerdpArgs(l *netlab.Lab, host netip.Addr, port uint16) []string {
	v := "/v:" + host.String()
	if host.Is6() {
		v = "/v:[" + host.String() + "]" // and the port apart: /v:[v6]:port connects to port 0 (FreeRDP 2.11)
	}
	return []string{"env", "HOME=" + l.Dir(), "TMPDIR=" + l.Dir(), "xvfb-run", "-a", "xfreerdp",
		v, "/port:" + strconv.Itoa(int(port)),
		"/sec:rdp", "/u:tester", "/p:wrongpass", "/cert:ignore", "/vc:encomsp", "/vc:remdesk"}
}

// dcomActivatePy is netlab's DCOM client (DCOMConnection without
// authentication, CoCreateInstanceEx of a CLSID) with impacket's socket
// timeout (30 s, which also bounds every receive) lowered to argv[3]
// seconds, so that a blocked activation fails quickly.
const dcomActivatePy = `import sys, time
import impacket.dcerpc.v5.transport as tr
_set = tr.DCERPCTransport.set_connect_timeout
tr.DCERPCTransport.set_connect_timeout = lambda self, t: _set(self, float(sys.argv[3]))
from impacket.dcerpc.v5.dcomrt import DCOMConnection
from impacket.dcerpc.v5.dcom.oaut import IID_IDispatch
from impacket.dcerpc.v5.rpcrt import RPC_C_AUTHN_LEVEL_NONE
from impacket.uuid import string_to_bin
t0 = time.time()
try:
    d = DCOMConnection(sys.argv[1], '', '', '', '', '', authLevel=RPC_C_AUTHN_LEVEL_NONE)
    d.CoCreateInstanceEx(string_to_bin(sys.argv[2]), IID_IDispatch)
    print('activated')
except Exception as e:
    print('activation failed after %.1fs: %s: %s' % (time.time() - t0, type(e).__name__, e))
`

// clsidRASrv is the CLSID of RASrv, the class an Offer Remote Assistance
// expert activates on the novice (protocols.md §2).
const clsidRASrv = "3c3a70a7-a468-49b9-8ada-28e11fccad5d"

// dcomActivate asks host to activate clsid. reached reports that the
// RemoteCreateInstance request got an answer from the fake activator (an
// rpc fault, "rpc_s_cannot_support"), as opposed to a timeout or reset.
// It may run on any goroutine.
func dcomActivate(l *netlab.Lab, ns *netlab.NS, host netip.Addr, clsid string, sockTimeout time.Duration) (out string, reached bool) {
	script := filepath.Join(l.Dir(), "e2e_dcom_activate_"+strconv.FormatInt(time.Now().UnixNano(), 36)+".py")
	if err := os.WriteFile(script, []byte(dcomActivatePy), 0o644); err != nil {
		return err.Error(), false
	}
	out, _ = ns.Run(sockTimeout*3+5*time.Second, netlab.Python, script, host.String(), clsid,
		strconv.FormatFloat(sockTimeout.Seconds(), 'f', 1, 64))
	return strings.TrimSpace(out), strings.Contains(out, "rpc_s_cannot_support")
}

// teredoAddr returns the namespace's Teredo address (2001:0::/32 on the
// "teredo" tun), if miredo has qualified.
func teredoAddr(ns *netlab.NS) (netip.Addr, bool) {
	out, _ := ns.Run(5*time.Second, "ip", "-6", "-o", "addr", "show", "dev", "teredo", "scope", "global")
	for _, f := range strings.Fields(out) {
		if p, err := netip.ParsePrefix(f); err == nil && strings.HasPrefix(p.Addr().String(), "2001:0:") {
			return p.Addr(), true
		}
	}
	return netip.Addr{}, false
}

// startMiredo starts a miredo Teredo client in ns against server (a name
// or an address) with a config of the test's own (never Debian's, which
// names a public server), without waiting for it to qualify.
func startMiredo(t *testing.T, l *netlab.Lab, ns *netlab.NS, server string, lifetime time.Duration) *daemon {
	t.Helper()
	conf := l.WriteFile("e2e-miredo-"+ns.Role+".conf", "RelayType client\nInterfaceName teredo\nServerAddress "+server+"\n")
	return startIn(t, ns, lifetime, "miredo", "-f", "-c", conf, "-p", filepath.Join(l.Dir(), "e2e-miredo-"+ns.Role+".pid"))
}

// waitTeredo waits up to timeout for ns to qualify.
func waitTeredo(ns *netlab.NS, timeout time.Duration) (netip.Addr, bool) {
	deadline := time.Now().Add(timeout)
	for {
		if a, ok := teredoAddr(ns); ok {
			return a, true
		}
		if time.Now().After(deadline) {
			return netip.Addr{}, false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// envInt reads a positive integer setting from the environment.
func envInt(t *testing.T, name string, def, max int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || n > max {
		t.Fatalf("%s=%q: want 1 to %d", name, v, max)
	}
	return n
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// keep copies files into $RASENTRY_E2E_KEEP/<test name>/ when that is set,
// for a look at the captures and records after the lab is gone.
func keep(t *testing.T, files ...string) {
	t.Helper()
	root := os.Getenv("RASENTRY_E2E_KEEP")
	if root == "" {
		return
	}
	dir := filepath.Join(root, strings.ReplaceAll(t.Name(), "/", "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("keep: %v", err)
		return
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644)
		}
		if err != nil {
			t.Logf("keep: %v", err)
		}
	}
	t.Logf("kept %d files in %s", len(files), dir)
}

// eveTime parses an EVE timestamp.
func eveTime(s string) (time.Time, error) {
	return time.Parse("2006-01-02T15:04:05.000000-0700", s)
}

// startSkew compares the start times of the flows that have exactly one
// record on each side, with the same packet counts, and returns how many differ by more than tol and
// the largest difference (with its flow).
func startSkew(a, b []record, tol time.Duration) (n int, worst time.Duration, worstKey string, compared int) {
	one := func(recs []record) map[string]*record {
		m := map[string]*record{}
		dup := map[string]bool{}
		for i := range recs {
			if recs[i].EventType != "flow" {
				continue
			}
			k := recs[i].flowKey()
			if m[k] != nil {
				dup[k] = true
			}
			m[k] = &recs[i]
		}
		for k := range dup {
			delete(m, k)
		}
		return m
	}
	ma, mb := one(a), one(b)
	for k, ra := range ma {
		rb := mb[k]
		if rb == nil || ra.Flow.PktsToServer != rb.Flow.PktsToServer || ra.Flow.PktsToClient != rb.Flow.PktsToClient {
			continue // not the same packets (one side started earlier)
		}
		ta, err1 := eveTime(ra.Flow.Start)
		tb, err2 := eveTime(rb.Flow.Start)
		if err1 != nil || err2 != nil {
			continue
		}
		compared++
		d := ta.Sub(tb)
		if d < 0 {
			d = -d
		}
		if d > tol {
			n++
		}
		if d > worst {
			worst, worstKey = d, k
		}
	}
	return n, worst, worstKey, compared
}
