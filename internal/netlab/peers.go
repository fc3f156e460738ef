package netlab

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Python is the interpreter with impacket (Debian's; a python3 earlier on
// PATH may lack it).
const Python = "/usr/bin/python3"

// ImpacketExamples is where Debian's python3-impacket keeps its scripts.
const ImpacketExamples = "/usr/share/doc/python3-impacket/examples"

// StartXRDP starts xrdp on port in the namespace (TLS and standard RDP
// security; no sesman, so logins end at an error box) and waits until it
// listens.
func (n *NS) StartXRDP(lifetime time.Duration, port uint16, listen netip.Addr) *Proc {
	t := n.lab.t
	t.Helper()
	RequireTools(t, "xrdp")
	p := n.Start(lifetime, "xrdp", "-n", "-p", strconv.Itoa(int(port)))
	if err := n.WaitTCP(netip.AddrPortFrom(listen, port).String(), 10*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, p.Output())
	}
	return p
}

// RDPCheck runs impacket's rdp_check against host:port (X.224 negotiation,
// TLS, then a CredSSP TSRequest that xrdp rejects). rdp_check hard-codes
// port 3389; for another port a patched copy is used.
func (n *NS) RDPCheck(host netip.Addr, port uint16) (string, error) {
	t := n.lab.t
	t.Helper()
	RequireTools(t, Python, ImpacketExamples+"/rdp_check.py")
	script := ImpacketExamples + "/rdp_check.py"
	if port != 3389 {
		b, err := os.ReadFile(script)
		if err != nil {
			t.Fatalf("netlab: %v", err)
		}
		src := strings.Replace(string(b), "s.connect((host,3389))", "s.connect((host,"+strconv.Itoa(int(port))+"))", 1)
		if src == string(b) {
			t.Fatalf("netlab: rdp_check.py has no hard-coded port to patch")
		}
		script = n.lab.WriteFile("rdp_check_"+strconv.Itoa(int(port))+".py", src)
	}
	return n.Run(20*time.Second, Python, script, "WORKGROUP/tester:wrongpass@"+host.String())
}

// StartSamba starts samba-dcerpcd listening on TCP 135 (and its workers on
// 49152 and up) on the given addresses, with every state directory in the
// lab's directory, and waits until the endpoint mapper answers.
func (n *NS) StartSamba(lifetime time.Duration, v4 netip.Addr, prefix4 int, v6 netip.Addr, prefix6 int) *Proc {
	t := n.lab.t
	t.Helper()
	const bin = "/usr/libexec/samba/samba-dcerpcd"
	RequireTools(t, bin)
	dir := filepath.Join(n.lab.dir, "samba-"+n.Role)
	for _, d := range []string{"lock", "state", "cache", "pid", "private", "ncalrpc"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatalf("netlab: %v", err)
		}
	}
	conf := fmt.Sprintf(`[global]
  server role = standalone server
  interfaces = %s/%d %s/%d
  bind interfaces only = yes
  disable netbios = yes
  smb ports = 445
  rpc start on demand helpers = no
  lock directory = %[5]s/lock
  state directory = %[5]s/state
  cache directory = %[5]s/cache
  pid directory = %[5]s/pid
  private dir = %[5]s/private
  ncalrpc dir = %[5]s/ncalrpc
  load printers = no
  printcap name = /dev/null
  disable spoolss = yes
`, v4, prefix4, v6, prefix6, dir)
	path := n.lab.WriteFile("smb-"+n.Role+".conf", conf)
	p := n.Start(lifetime, bin, "-s", path, "-F", "--libexec-rpcds", "--debug-stdout", "-d", sambaDebug())
	if err := n.WaitTCP(netip.AddrPortFrom(v4, 135).String(), 15*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, p.Output())
	}
	// The endpoint mapper registers the interfaces a moment after it
	// listens (an early lookup answered ept_s_not_registered).
	time.Sleep(3 * time.Second)
	return p
}

// RPCDump runs impacket's rpcdump (EPM lookup on 135) against host. While
// samba's endpoint mapper answers ept_s_not_registered (its workers are
// still registering), it tries once more.
func (n *NS) RPCDump(host netip.Addr) (string, error) {
	n.lab.t.Helper()
	RequireTools(n.lab.t, Python, ImpacketExamples+"/rpcdump.py")
	for i := 0; ; i++ {
		out, err := n.Run(30*time.Second, Python, ImpacketExamples+"/rpcdump.py", "-port", "135", host.String())
		if i == 1 || !strings.Contains(out, "ept_s_not_registered") {
			return out, err
		}
		time.Sleep(2 * time.Second)
	}
}

// RDPCheckReached reports whether rdp_check's output shows that it talked
// to an RDP server (xrdp answers the CredSSP request with a plain TPKT,
// "SEQUENCE expected"; Windows with "Access Denied" or "Granted"), as
// opposed to a connection that was refused, reset or timed out.
func RDPCheckReached(out string) bool {
	for _, s := range []string{"SEQUENCE expected", "Access Denied", "Access Granted"} {
		if strings.Contains(out, s) {
			return true
		}
	}
	return false
}

// TeredoServerV4 and its consecutive second address are where miredo-server
// listens: TEST-NET-2, because miredo-server refuses private addresses.
// They exist only in the lab (see AddTeredo).
var (
	TeredoServerV4  = netip.MustParseAddr("198.51.100.10")
	TeredoServer2V4 = netip.MustParseAddr("198.51.100.11")
	TeredoNATV4     = netip.MustParseAddr("198.51.100.1")
	TeredoPeerV4    = netip.MustParseAddr("203.0.113.2")
)

// DNSRecords are the static answers of StartDNS: the Teredo server names
// clients resolve (pointing at the lab's miredo-server) and the PNRP seed
// servers.
var DNSRecords = map[string]string{
	"teredo.ipv6.microsoft.com":  TeredoServerV4.String(),
	"win10.ipv6.microsoft.com":   TeredoServerV4.String(),
	"win1710.ipv6.microsoft.com": TeredoServerV4.String(),
	"win1711.ipv6.microsoft.com": TeredoServerV4.String(),
	"teredo.trex.fi":             TeredoServerV4.String(),
	"teredo.remlab.net":          TeredoServerV4.String(),
	"teredo-debian.remlab.net":   TeredoServerV4.String(),
	"pnrpv2.ipv6.microsoft.com":  ServerV6.String(),
	"pnrpv21.ipv6.microsoft.com": ServerV6.String(),
}

// StartDNS starts dnsmasq answering DNSRecords (A or AAAA by the address)
// and NXDOMAIN for everything else, on the given addresses, port 53. It
// never forwards a query.
func (n *NS) StartDNS(lifetime time.Duration, listen ...netip.Addr) *Proc {
	t := n.lab.t
	t.Helper()
	RequireTools(t, "dnsmasq")
	var b strings.Builder
	b.WriteString("no-resolv\nno-hosts\nno-poll\nbind-interfaces\nexcept-interface=lo\nuser=root\nlog-queries\nlog-facility=-\n")
	fmt.Fprintf(&b, "pid-file=%s\n", filepath.Join(n.lab.dir, "dnsmasq-"+n.Role+".pid"))
	for _, a := range listen {
		fmt.Fprintf(&b, "listen-address=%s\n", a)
	}
	for name, addr := range DNSRecords {
		fmt.Fprintf(&b, "host-record=%s,%s\n", name, addr)
	}
	b.WriteString("address=/#/\n")
	path := n.lab.WriteFile("dnsmasq-"+n.Role+".conf", b.String())
	p := n.Start(lifetime, "dnsmasq", "--keep-in-foreground", "--conf-file="+path)
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := n.Run(5*time.Second, "dig", "+time=1", "+tries=1", "+short", "@"+listen[0].String(), "teredo.ipv6.microsoft.com", "A")
		if err == nil && strings.TrimSpace(out) == TeredoServerV4.String() {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("netlab: dnsmasq does not answer: %v %s\n%s", err, out, p.Output())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Dig asks server for name of type qtype ("A", "AAAA") and returns the
// short answer.
func (n *NS) Dig(server netip.Addr, name, qtype string, tcp bool) (string, error) {
	args := []string{"dig", "+time=2", "+tries=1", "+short", "@" + server.String(), name, qtype}
	if tcp {
		args = append(args, "+tcp")
	}
	out, err := n.Run(10*time.Second, args...)
	return strings.TrimSpace(out), err
}

// AddTeredo adds the Teredo part of the lab (docs/testlab.md §2c) to a
// standard lab: the server gets TeredoServerV4 and TeredoServer2V4 on s0;
// the gateway gets TeredoNATV4 on g1 and masquerades the client LAN behind it
// (endpoint-independent mapping, like a cone NAT); a fourth namespace, the
// peer, sits behind the gateway's g2 with TeredoPeerV4, not NATed. It
// returns the peer.
func (l *Lab) AddTeredo() *NS {
	t := l.t
	t.Helper()
	RequireTools(t, "nft")
	peer := l.AddNS("peer")
	l.Link(peer, "p0", l.Gateway, "g2")
	l.Server.MustRun(t, "ip", "addr", "add", TeredoServerV4.String()+"/24", "dev", ServerIf)
	l.Server.MustRun(t, "ip", "addr", "add", TeredoServer2V4.String()+"/24", "dev", ServerIf)
	l.Gateway.MustRun(t, "ip", "addr", "add", TeredoNATV4.String()+"/24", "dev", GatewayServerIf)
	l.Gateway.MustRun(t, "ip", "addr", "add", "203.0.113.1/24", "dev", "g2")
	peer.MustRun(t, "ip", "addr", "add", TeredoPeerV4.String()+"/24", "dev", "p0")
	peer.MustRun(t, "ip", "route", "add", "default", "via", "203.0.113.1")
	nat := l.WriteFile("teredo-nat.nft", `table ip rslnat {
  chain post {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr 10.99.1.0/24 oifname { "g1", "g2" } snat to 198.51.100.1
  }
}
`)
	l.Gateway.MustRun(t, "nft", "-f", nat)
	return peer
}

// StartMiredoServer starts miredo-server on TeredoServerV4 (and the next
// address) in the namespace.
func (n *NS) StartMiredoServer(lifetime time.Duration) *Proc {
	t := n.lab.t
	t.Helper()
	RequireTools(t, "miredo-server")
	conf := n.lab.WriteFile("miredo-server-"+n.Role+".conf", "ServerBindAddress "+TeredoServerV4.String()+"\n")
	p := n.Start(lifetime, "miredo-server", "-f", "-c", conf, "-p", filepath.Join(n.lab.dir, "miredo-server-"+n.Role+".pid"))
	time.Sleep(500 * time.Millisecond)
	if !p.Running() {
		t.Fatalf("netlab: miredo-server ended: %s", p.Output())
	}
	return p
}

// StartMiredoClient starts a miredo Teredo client in the namespace with a
// config of the lab's own (never Debian's, which names a public server),
// using server (a name resolved through the namespace's resolver, or an
// address), and waits until it has qualified: a "teredo" interface with a
// 2001:0::/32 address. It returns the process and that address.
func (n *NS) StartMiredoClient(lifetime time.Duration, server string) (*Proc, netip.Addr) {
	t := n.lab.t
	t.Helper()
	RequireTools(t, "miredo")
	conf := n.lab.WriteFile("miredo-"+n.Role+".conf", "RelayType client\nInterfaceName teredo\nServerAddress "+server+"\n")
	p := n.Start(lifetime, "miredo", "-f", "-c", conf, "-p", filepath.Join(n.lab.dir, "miredo-"+n.Role+".pid"))
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, _ := n.Run(5*time.Second, "ip", "-6", "-o", "addr", "show", "dev", "teredo", "scope", "global")
		for _, f := range strings.Fields(out) {
			if pfx, err := netip.ParsePrefix(f); err == nil && strings.HasPrefix(pfx.Addr().String(), "2001:0:") {
				return p, pfx.Addr()
			}
		}
		if time.Now().After(deadline) || !p.Running() {
			t.Fatalf("netlab: miredo client in %s did not qualify:\n%s", n.Role, p.Output())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// MiniUPnPdOptions configures StartMiniUPnPd.
type MiniUPnPdOptions struct {
	// ExtIf and ListenIf are the external and internal interfaces
	// (default g1 and g0).
	ExtIf, ListenIf string
	// ExtIP, when set, is the external address miniupnpd reports; a
	// non-reserved one (never assigned or contacted) is needed for
	// AddPortMapping to succeed, as miniupnpd 2.3.1 refuses mappings behind
	// private and documentation addresses (501 ActionFailed).
	ExtIP string
	// Allow is the client network allowed to map (default 10.99.1.0/24).
	Allow string
}

// StartMiniUPnPd starts miniupnpd (UPnP IGD on port 5000, NAT-PMP) on the
// gateway with an nftables skeleton of its own, and waits until it listens.
func (n *NS) StartMiniUPnPd(lifetime time.Duration, o MiniUPnPdOptions) *Proc {
	t := n.lab.t
	t.Helper()
	RequireTools(t, "miniupnpd", "nft")
	if o.ExtIf == "" {
		o.ExtIf = GatewayServerIf
	}
	if o.ListenIf == "" {
		o.ListenIf = GatewayClientIf
	}
	if o.Allow == "" {
		o.Allow = "10.99.1.0/24"
	}
	skel := n.lab.WriteFile("miniupnpd-"+n.Role+".nft", `table inet rslupnp {
  chain forward { type filter hook forward priority 0; policy accept; jump miniupnpd; }
  chain miniupnpd { }
  chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }
  chain postrouting { type nat hook postrouting priority 100; policy accept; jump postrouting_miniupnpd; }
  chain prerouting_miniupnpd { }
  chain postrouting_miniupnpd { }
}
`)
	n.MustRun(t, "nft", "-f", skel)
	var b strings.Builder
	fmt.Fprintf(&b, "ext_ifname=%s\nlistening_ip=%s\nhttp_port=5000\nenable_natpmp=yes\nenable_upnp=yes\nsecure_mode=no\n", o.ExtIf, o.ListenIf)
	b.WriteString("system_uptime=yes\nnotify_interval=10\nuuid=3a5e2b1c-0000-4000-8000-0000000000aa\n")
	b.WriteString("upnp_table_name=rslupnp\nupnp_nat_table_name=rslupnp\nupnp_forward_chain=miniupnpd\n")
	b.WriteString("upnp_nat_chain=prerouting_miniupnpd\nupnp_nat_postrouting_chain=postrouting_miniupnpd\n")
	fmt.Fprintf(&b, "lease_file=%s\n", filepath.Join(n.lab.dir, "upnp-"+n.Role+".leases"))
	if o.ExtIP != "" {
		fmt.Fprintf(&b, "ext_ip=%s\n", o.ExtIP)
	}
	fmt.Fprintf(&b, "allow 1-65535 %s 1-65535\ndeny 0-65535 0.0.0.0/0 0-65535\n", o.Allow)
	conf := n.lab.WriteFile("miniupnpd-"+n.Role+".conf", b.String())
	p := n.Start(lifetime, "miniupnpd", "-d", "-f", conf, "-P", filepath.Join(n.lab.dir, "miniupnpd-"+n.Role+".pid"))
	if err := n.WaitTCP(netip.AddrPortFrom(GatewayClientV4, 5000).String(), 10*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, p.Output())
	}
	return p
}

// Upnpc runs upnpc on the client's interface c0 with -i (go on with an IGD
// that reports a reserved external address) and the given arguments, e.g.
// "-e", "Remote Assistance", "-a", "10.99.1.2", "3389", "3389", "TCP", "3600".
func (n *NS) Upnpc(args ...string) (string, error) {
	RequireTools(n.lab.t, "upnpc")
	return n.Run(20*time.Second, append([]string{"upnpc", "-i", "-m", ClientIf}, args...)...)
}

// ServeHTTP serves size bytes at every path on addr inside the namespace
// (a Go server: no tool needed); it stops when the test ends.
func (n *NS) ServeHTTP(addr string, size int) {
	t := n.lab.t
	t.Helper()
	ln, err := n.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("netlab: %v", err)
	}
	body := make([]byte, size)
	for i := range body {
		body[i] = byte('a' + i%26)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(size))
		w.Write(body)
	}), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// HTTPGet downloads url from inside the namespace and returns the number
// of body bytes read.
func (n *NS) HTTPGet(url string, timeout time.Duration) (int64, error) {
	c := &http.Client{Timeout: timeout, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return n.Dial(network, addr, timeout)
		},
		DisableKeepAlives: true,
	}}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("netlab: GET %s: %s", url, resp.Status)
	}
	return io.Copy(io.Discard, resp.Body)
}

// DCOM activation needs a server that accepts an unauthenticated bind to
// ISystemActivator: samba rejects it (provider rejection), so a
// minimal impacket DCERPCServer answers on 135 for ISystemActivator,
// IActivation and IObjectExporter. It faults every call, which is enough:
// the client's RemoteCreateInstance request (with the CLSID) is on the wire.
const dcomActivatorPy = `import sys, time
from impacket.dcerpc.v5.rpcrt import DCERPCServer
s = DCERPCServer()
s._listenAddress = sys.argv[1]
s.setListenPort(135)
for u in ('000001A0-0000-0000-C000-000000000046', '4d9f4ab8-7d1c-11cf-861e-0020af6e7c57',
          '99fcfec4-5260-101b-bbcb-00aa0021347a'):
    s.addCallbacks((u, '0.0'), '135', {})
s.daemon = True
s.start()
print('listening', flush=True)
while True:
    time.sleep(1)
`

const dcomActivatePy = `import sys
from impacket.dcerpc.v5.dcomrt import DCOMConnection
from impacket.dcerpc.v5.dcom.oaut import IID_IDispatch
from impacket.dcerpc.v5.rpcrt import RPC_C_AUTHN_LEVEL_NONE
from impacket.uuid import string_to_bin
try:
    d = DCOMConnection(sys.argv[1], '', '', '', '', '', authLevel=RPC_C_AUTHN_LEVEL_NONE)
    d.CoCreateInstanceEx(string_to_bin(sys.argv[2]), IID_IDispatch)
    print('activated')
except Exception as e:
    print('activation failed: %s' % e)
`

// CLSIDMMC20 is the CLSID of MMC20.Application, a DCOM class that
// activation requests name.
const CLSIDMMC20 = "49B2791A-B1AE-4C90-9B8E-E860BA07F889"

// StartDCOMActivator starts the fake activator on listen:135 (IPv4).
func (n *NS) StartDCOMActivator(lifetime time.Duration, listen netip.Addr) *Proc {
	t := n.lab.t
	t.Helper()
	RequireTools(t, Python)
	script := n.lab.WriteFile("dcom_activator.py", dcomActivatorPy)
	p := n.Start(lifetime, Python, script, listen.String())
	if err := n.WaitTCP(netip.AddrPortFrom(listen, 135).String(), 10*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, p.Output())
	}
	return p
}

// DCOMActivate asks host to activate clsid (DCOMConnection without
// authentication, CoCreateInstanceEx). Against the fake activator the
// request reaches the server and is answered by a fault: the output then
// says "activation failed" with an rpc fault; a blocked connection gives a
// socket error or times out.
func (n *NS) DCOMActivate(host netip.Addr, clsid string) (string, error) {
	RequireTools(n.lab.t, Python)
	script := n.lab.WriteFile("dcom_activate.py", dcomActivatePy)
	return n.Run(20*time.Second, Python, script, host.String(), clsid)
}

// sambaDebug is samba's debug level: RASENTRY_SAMBA_DEBUG or 0.
func sambaDebug() string {
	if v := os.Getenv("RASENTRY_SAMBA_DEBUG"); v != "" {
		return v
	}
	return "0"
}
