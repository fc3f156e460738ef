// Package netlab builds throw-away network namespaces for tests that need a
// real network: a client, a gateway that forwards between two links (where
// rasentry runs), and a server, with IPv4 and IPv6 on each link (the
// topology of docs/testlab.md §1). It starts real peers (xrdp, samba,
// dnsmasq, miredo, miniupnpd) and their clients inside the namespaces, each
// with a bounded lifetime, and tears everything down when the test ends.
//
// Every test gets namespaces of its own (the names carry the process id and
// a counter), so tests may run in parallel and a crashed run leaves nothing
// that a later run trips over (stale namespaces of dead processes are
// removed). Traffic stays inside the namespaces: the addresses are private
// (10.99.x, fd99:x::) or documentation ranges that exist only there.
//
// A test that cannot run here (not root, a tool missing) is skipped with a
// message that names what is missing; internal/netlab/install-packages.sh
// installs every tool the package uses.
package netlab

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Addresses of the standard topology. They exist only inside the lab's
// namespaces.
var (
	ClientV4        = netip.MustParseAddr("10.99.1.2")
	GatewayClientV4 = netip.MustParseAddr("10.99.1.1")
	GatewayServerV4 = netip.MustParseAddr("10.99.2.1")
	ServerV4        = netip.MustParseAddr("10.99.2.2")
	ClientV6        = netip.MustParseAddr("fd99:1::2")
	GatewayClientV6 = netip.MustParseAddr("fd99:1::1")
	GatewayServerV6 = netip.MustParseAddr("fd99:2::1")
	ServerV6        = netip.MustParseAddr("fd99:2::2")
)

// Interface names of the standard topology: the client's c0 is linked to
// the gateway's g0, the server's s0 to the gateway's g1.
const (
	ClientIf        = "c0"
	GatewayClientIf = "g0"
	GatewayServerIf = "g1"
	ServerIf        = "s0"
)

// nsPrefix starts the name of every namespace this package makes; the
// process id follows, so stale namespaces of dead runs can be recognised.
const nsPrefix = "rsl"

var labCounter atomic.Uint32

// Lab is one test's set of namespaces.
type Lab struct {
	t       testing.TB
	id      string
	dir     string
	Client  *NS
	Gateway *NS
	Server  *NS

	mu    sync.Mutex
	nss   []*NS
	procs []*Proc
}

// NS is one network namespace of a lab.
type NS struct {
	// Name is the namespace's name (as in `ip netns list`).
	Name string
	// Role is the short name the test gave it ("client", "gw", ...).
	Role string
	lab  *Lab
}

// RequireRoot skips the test unless it runs as root on Linux.
func RequireRoot(t testing.TB) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("netlab: network namespaces need Linux")
	}
	if os.Geteuid() != 0 {
		t.Skip("netlab: needs root for network namespaces (run as root, as .ci/run does)")
	}
}

// RequireTools skips the test when a program it needs is not installed,
// naming the program and the script that installs it.
func RequireTools(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if _, err2 := os.Stat(tool); err2 != nil {
				t.Skipf("netlab: %s is not installed (internal/netlab/install-packages.sh installs it)", tool)
			}
		}
	}
}

// New builds the standard topology (client, gateway, server; IPv4 and
// IPv6; forwarding on the gateway; veth offloads off so that captures hold
// wire-sized frames) and removes it when the test ends. It skips the test
// when it cannot run here.
func New(t testing.TB) *Lab {
	t.Helper()
	l := NewEmpty(t)
	l.Client = l.AddNS("client")
	l.Gateway = l.AddNS("gw")
	l.Server = l.AddNS("server")
	l.Link(l.Client, ClientIf, l.Gateway, GatewayClientIf)
	l.Link(l.Server, ServerIf, l.Gateway, GatewayServerIf)
	l.Client.MustRun(t, "ip", "addr", "add", "10.99.1.2/24", "dev", ClientIf)
	l.Client.MustRun(t, "ip", "addr", "add", "fd99:1::2/64", "dev", ClientIf, "nodad")
	l.Gateway.MustRun(t, "ip", "addr", "add", "10.99.1.1/24", "dev", GatewayClientIf)
	l.Gateway.MustRun(t, "ip", "addr", "add", "fd99:1::1/64", "dev", GatewayClientIf, "nodad")
	l.Gateway.MustRun(t, "ip", "addr", "add", "10.99.2.1/24", "dev", GatewayServerIf)
	l.Gateway.MustRun(t, "ip", "addr", "add", "fd99:2::1/64", "dev", GatewayServerIf, "nodad")
	l.Server.MustRun(t, "ip", "addr", "add", "10.99.2.2/24", "dev", ServerIf)
	l.Server.MustRun(t, "ip", "addr", "add", "fd99:2::2/64", "dev", ServerIf, "nodad")
	l.Client.MustRun(t, "ip", "route", "add", "default", "via", "10.99.1.1")
	l.Client.MustRun(t, "ip", "-6", "route", "add", "default", "via", "fd99:1::1")
	l.Server.MustRun(t, "ip", "route", "add", "default", "via", "10.99.2.1")
	l.Server.MustRun(t, "ip", "-6", "route", "add", "default", "via", "fd99:2::1")
	l.Gateway.MustRun(t, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	return l
}

// Addresses of the bridged topology (NewBridged): client and server on one
// segment.
var (
	BridgedClientV4 = netip.MustParseAddr("10.99.3.2")
	BridgedServerV4 = netip.MustParseAddr("10.99.3.3")
	BridgedClientV6 = netip.MustParseAddr("fd99:3::2")
	BridgedServerV6 = netip.MustParseAddr("fd99:3::3")
)

// BridgeIf is the bridge of the bridged topology, in the gateway.
const BridgeIf = "br0"

// NewBridged builds a one-segment topology: the client (c0) and the server
// (s0) are linked to ports g0 and g1 of a bridge br0 in the gateway
// namespace, which has no addresses: the place of a SPAN or tap sensor
// that sees and injects frames without routing them.
func NewBridged(t testing.TB) *Lab {
	t.Helper()
	l := NewEmpty(t)
	l.Client = l.AddNS("client")
	l.Gateway = l.AddNS("bridge")
	l.Server = l.AddNS("server")
	l.Link(l.Client, ClientIf, l.Gateway, GatewayClientIf)
	l.Link(l.Server, ServerIf, l.Gateway, GatewayServerIf)
	l.Gateway.MustRun(t, "ip", "link", "add", BridgeIf, "type", "bridge")
	l.Gateway.MustRun(t, "ip", "link", "set", GatewayClientIf, "master", BridgeIf)
	l.Gateway.MustRun(t, "ip", "link", "set", GatewayServerIf, "master", BridgeIf)
	l.Gateway.MustRun(t, "ip", "link", "set", BridgeIf, "up")
	l.Client.MustRun(t, "ip", "addr", "add", "10.99.3.2/24", "dev", ClientIf)
	l.Client.MustRun(t, "ip", "addr", "add", "fd99:3::2/64", "dev", ClientIf, "nodad")
	l.Server.MustRun(t, "ip", "addr", "add", "10.99.3.3/24", "dev", ServerIf)
	l.Server.MustRun(t, "ip", "addr", "add", "fd99:3::3/64", "dev", ServerIf, "nodad")
	return l
}

// NewEmpty makes a lab with no namespaces yet (add them with AddNS and
// Link) and schedules its teardown.
func NewEmpty(t testing.TB) *Lab {
	t.Helper()
	RequireRoot(t)
	RequireTools(t, "ip", "ethtool", "sysctl", "timeout")
	removeStale()
	n := labCounter.Add(1)
	// Not t.TempDir: daemons that drop to users of their own (miredo,
	// dnsmasq) must be able to read their configs here.
	dir, err := os.MkdirTemp("", "netlab-")
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		t.Fatalf("netlab: %v", err)
	}
	l := &Lab{t: t, id: fmt.Sprintf("%s%d-%d", nsPrefix, os.Getpid(), n), dir: dir}
	t.Cleanup(func() {
		l.teardown()
		os.RemoveAll(dir)
	})
	return l
}

// Dir is a temporary directory of the lab's own (configs, pid files,
// captures); it is removed when the test ends.
func (l *Lab) Dir() string { return l.dir }

// AddNS makes a namespace with its loopback up.
func (l *Lab) AddNS(role string) *NS {
	l.t.Helper()
	ns := &NS{Name: l.id + "-" + role, Role: role, lab: l}
	if out, err := exec.Command("ip", "netns", "add", ns.Name).CombinedOutput(); err != nil {
		l.t.Fatalf("netlab: ip netns add %s: %v: %s", ns.Name, err, out)
	}
	l.mu.Lock()
	l.nss = append(l.nss, ns)
	l.mu.Unlock()
	ns.MustRun(l.t, "ip", "link", "set", "lo", "up")
	// No duplicate address detection: link-local addresses are usable at
	// once, so IPv6 works as soon as a link is up (no flaky first ping).
	ns.MustRun(l.t, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	return ns
}

// Link joins a's interface aIf and b's interface bIf with a veth pair, brings
// both up and turns their offloads off (TSO, GSO, GRO and checksum offload:
// captures then hold the frames as they would be on a wire, with valid
// checksums, which tcpreplay can send again).
func (l *Lab) Link(a *NS, aIf string, b *NS, bIf string) {
	l.t.Helper()
	out, err := exec.Command("ip", "link", "add", aIf, "netns", a.Name, "type", "veth", "peer", "name", bIf, "netns", b.Name).CombinedOutput()
	if err != nil {
		l.t.Fatalf("netlab: veth %s/%s - %s/%s: %v: %s", a.Name, aIf, b.Name, bIf, err, out)
	}
	for _, e := range []struct {
		ns *NS
		If string
	}{{a, aIf}, {b, bIf}} {
		e.ns.MustRun(l.t, "ip", "link", "set", e.If, "up")
		e.ns.MustRun(l.t, "ethtool", "-K", e.If, "tso", "off", "gso", "off", "gro", "off", "tx", "off")
	}
}

// teardown stops every process the lab started, then deletes its
// namespaces (which takes their interfaces and nftables tables with them)
// and their /etc/netns directories.
func (l *Lab) teardown() {
	l.mu.Lock()
	procs, nss := l.procs, l.nss
	l.procs, l.nss = nil, nil
	l.mu.Unlock()
	for _, p := range procs {
		p.Stop()
	}
	for _, ns := range nss {
		if out, err := exec.Command("ip", "netns", "del", ns.Name).CombinedOutput(); err != nil {
			l.t.Logf("netlab: ip netns del %s: %v: %s", ns.Name, err, out)
		}
		os.RemoveAll(filepath.Join("/etc/netns", ns.Name))
	}
}

// removeStale deletes namespaces left by runs of this package whose process
// is gone (a test binary killed before its cleanup ran).
func removeStale() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		if !strings.HasPrefix(name, nsPrefix) {
			continue
		}
		pidStr, _, ok := strings.Cut(strings.TrimPrefix(name, nsPrefix), "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); err == nil || err == syscall.EPERM {
			continue // still running
		}
		exec.Command("ip", "netns", "del", name).Run()
		os.RemoveAll(filepath.Join("/etc/netns", name))
	}
}

// Run runs a command in the namespace, bounded by timeout, and returns its
// combined output.
func (n *NS) Run(timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout+2*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", n.cmdline(timeout, args)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("netlab: %s: %s: %w", n.Role, strings.Join(args, " "), err)
	}
	return string(out), nil
}

// MustRun runs a short command (10 s at most) and fails the test if it
// fails.
func (n *NS) MustRun(t testing.TB, args ...string) string {
	t.Helper()
	out, err := n.Run(10*time.Second, args...)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return out
}

func (n *NS) cmdline(timeout time.Duration, args []string) []string {
	secs := strconv.FormatFloat(timeout.Seconds(), 'f', 1, 64)
	return append([]string{"netns", "exec", n.Name, "timeout", "-k", "2", secs}, args...)
}

// Proc is a process started in a namespace with a bounded lifetime.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	out  lockedBuffer
	done chan struct{}
	err  error
}

// Start starts a command in the namespace in the background. It is killed
// after lifetime (through timeout(1)) or when the test ends, whichever comes
// first. Its output is kept for Output and logged when the test fails.
func (n *NS) Start(lifetime time.Duration, args ...string) *Proc {
	t := n.lab.t
	t.Helper()
	p := &Proc{Name: n.Role + ": " + strings.Join(args, " "), done: make(chan struct{})}
	p.cmd = exec.Command("ip", n.cmdline(lifetime, args)...)
	p.cmd.Stdout = &p.out
	p.cmd.Stderr = &p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("netlab: start %s: %v", p.Name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	n.lab.mu.Lock()
	n.lab.procs = append(n.lab.procs, p)
	n.lab.mu.Unlock()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("netlab: output of %s:\n%s", p.Name, p.Output())
		}
	})
	return p
}

// Output returns what the process has written so far.
func (p *Proc) Output() string { return p.out.String() }

// Running reports whether the process has not exited yet.
func (p *Proc) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Wait waits for the process to exit, at most timeout, and returns its exit
// error (nil for status 0).
func (p *Proc) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("netlab: %s still running after %v", p.Name, timeout)
	}
}

// Stop ends the process group it leads (SIGTERM, then SIGKILL after 2 s).
func (p *Proc) Stop() {
	if !p.Running() {
		return
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(2 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
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

// Do runs fn on an OS thread that is in the namespace, so that sockets fn
// opens (AF_PACKET, netlink, TCP listeners) belong to the namespace; they
// stay there after Do returns and may be used from any goroutine.
// Goroutines that fn starts run outside the namespace.
func (n *NS) Do(fn func() error) error {
	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netlab: own namespace: %w", err)
	}
	defer unix.Close(orig)
	target, err := unix.Open(filepath.Join("/var/run/netns", n.Name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netlab: namespace %s: %w", n.Name, err)
	}
	defer unix.Close(target)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netlab: setns %s: %w", n.Name, err)
	}
	ferr := fn()
	if err := unix.Setns(orig, unix.CLONE_NEWNET); err != nil {
		// Leave the thread locked: the runtime ends it with this goroutine
		// rather than reusing a thread in the wrong namespace.
		return fmt.Errorf("netlab: back from %s: %w", n.Name, err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// Fd opens the namespace and returns a descriptor for APIs that take one
// (google/nftables WithNetNSFd, go-nfqueue Config.NetNS). It is closed when
// the test ends.
func (n *NS) Fd() int {
	t := n.lab.t
	t.Helper()
	f, err := os.Open(filepath.Join("/var/run/netns", n.Name))
	if err != nil {
		t.Fatalf("netlab: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return int(f.Fd())
}

// Dial opens a connection from inside the namespace.
func (n *NS) Dial(network, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := n.Do(func() error {
		var err error
		c, err = net.DialTimeout(network, addr, timeout)
		return err
	})
	return c, err
}

// Listen opens a listener inside the namespace; it is closed when the test
// ends.
func (n *NS) Listen(network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := n.Do(func() error {
		var err error
		ln, err = net.Listen(network, addr)
		return err
	})
	if err == nil {
		n.lab.t.Cleanup(func() { ln.Close() })
	}
	return ln, err
}

// ListenPacket opens a UDP (or other packet) socket inside the namespace;
// it is closed when the test ends.
func (n *NS) ListenPacket(network, addr string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := n.Do(func() error {
		var err error
		pc, err = net.ListenPacket(network, addr)
		return err
	})
	if err == nil {
		n.lab.t.Cleanup(func() { pc.Close() })
	}
	return pc, err
}

// WaitTCP waits until a TCP connection to addr succeeds from inside the
// namespace, at most timeout.
func (n *NS) WaitTCP(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := n.Dial("tcp", addr, 500*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("netlab: %s: nothing listens on %s after %v: %w", n.Role, addr, timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// CanConnect reports whether a TCP connection to addr succeeds from inside
// the namespace within timeout.
func (n *NS) CanConnect(addr string, timeout time.Duration) bool {
	c, err := n.Dial("tcp", addr, timeout)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// Ping sends count ICMP echo requests (v4 or v6 by the address) and
// reports whether any reply came back.
func (n *NS) Ping(addr netip.Addr, count int) bool {
	args := []string{"ping", "-n", "-q", "-c", strconv.Itoa(count), "-i", "0.2", "-W", "1"}
	if addr.Is6() {
		args = append(args, "-6")
	}
	_, err := n.Run(time.Duration(count)*300*time.Millisecond+3*time.Second, append(args, addr.String())...)
	return err == nil
}

// SetResolver makes `ip netns exec` programs in the namespace resolve
// names through server (it writes /etc/netns/<ns>/resolv.conf, which
// ip-netns bind-mounts over /etc/resolv.conf; removed at teardown).
func (n *NS) SetResolver(server netip.Addr) {
	t := n.lab.t
	t.Helper()
	dir := filepath.Join("/etc/netns", n.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("netlab: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte("nameserver "+server.String()+"\n"), 0o644); err != nil {
		t.Fatalf("netlab: %v", err)
	}
}

// HardwareAddr returns the MAC address of an interface in the namespace.
func (n *NS) HardwareAddr(ifname string) net.HardwareAddr {
	t := n.lab.t
	t.Helper()
	var mac net.HardwareAddr
	err := n.Do(func() error {
		ifc, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		mac = ifc.HardwareAddr
		return nil
	})
	if err != nil {
		t.Fatalf("netlab: %s: interface %s: %v", n.Role, ifname, err)
	}
	return mac
}

// WriteFile writes a file into the lab's directory and returns its path.
func (l *Lab) WriteFile(name, content string) string {
	l.t.Helper()
	p := filepath.Join(l.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		l.t.Fatalf("netlab: %v", err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		l.t.Fatalf("netlab: %v", err)
	}
	return p
}
