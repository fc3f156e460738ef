package netlab

import (
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"
)

// These tests start each real peer once and run its client: they prove
// the harness works on this machine (and show what each client prints).

func TestPeerRDP(t *testing.T) {
	l := New(t)
	l.Server.StartXRDP(60*time.Second, 3389, ServerV4)
	l.Server.StartXRDP(60*time.Second, 3390, ServerV4)
	for _, port := range []uint16{3389, 3390} {
		out, err := l.Client.RDPCheck(ServerV4, port)
		t.Logf("rdp_check :%d: %v: %s", port, err, lastLines(out, 1))
		if !RDPCheckReached(out) {
			t.Errorf("rdp_check on %d did not reach xrdp", port)
		}
	}
}

func TestPeerDCERPC(t *testing.T) {
	l := New(t)
	l.Server.StartSamba(90*time.Second, ServerV4, 24, ServerV6, 64)
	out, err := l.Client.RPCDump(ServerV4)
	// samba-dcerpcd 4.17 on the test machines answers the EPM lookup with
	// ept_s_not_registered (its workers do not register): still a DCE/RPC
	// bind and request/response on 135, which is what the sensor needs to
	// see. Anything else (refused, timed out) means it did not get there.
	full := regexp.MustCompile(`\n\[\*\] \d+ endpoints found`).MatchString(out)
	if !full && !strings.Contains(out, "ept_s_not_registered") {
		t.Errorf("rpcdump did not reach the endpoint mapper: %v\n%s", err, out)
	}
	t.Logf("rpcdump: %s", lastLines(out, 3))
}

func TestPeerDCOMActivation(t *testing.T) {
	l := New(t)
	l.Server.StartDCOMActivator(60*time.Second, ServerV4)
	out, err := l.Client.DCOMActivate(ServerV4, CLSIDMMC20)
	t.Logf("activation: %v %s", err, out)
	if !strings.Contains(out, "activation failed") || strings.Contains(out, "Connection refused") || strings.Contains(out, "timed out") {
		t.Errorf("the activation request did not reach the activator: %s", out)
	}
}

func TestPeerDNS(t *testing.T) {
	l := New(t)
	l.Server.StartDNS(60*time.Second, ServerV4, ServerV6)
	for _, c := range []struct {
		server    netip.Addr
		name, typ string
		tcp       bool
		want      string
	}{
		{ServerV4, "teredo.ipv6.microsoft.com", "A", false, "198.51.100.10"},
		{ServerV6, "teredo.ipv6.microsoft.com", "A", true, "198.51.100.10"},
		{ServerV4, "pnrpv2.ipv6.microsoft.com", "AAAA", false, "fd99:2::2"},
		{ServerV4, "example.com", "A", false, ""},
	} {
		got, err := l.Client.Dig(c.server, c.name, c.typ, c.tcp)
		if err != nil || got != c.want {
			t.Errorf("dig @%v %s %s: %q %v, want %q", c.server, c.name, c.typ, got, err, c.want)
		}
	}
}

func TestPeerTeredo(t *testing.T) {
	l := New(t)
	peer := l.AddTeredo()
	l.Server.StartDNS(60*time.Second, ServerV4)
	l.Client.SetResolver(ServerV4)
	l.Server.StartMiredoServer(60 * time.Second)
	_, peerAddr := peer.StartMiredoClient(50*time.Second, TeredoServerV4.String())
	_, clientAddr := l.Client.StartMiredoClient(50*time.Second, "teredo.ipv6.microsoft.com")
	t.Logf("teredo addresses: client %v (behind NAT), peer %v", clientAddr, peerAddr)
	if !peer.Ping(clientAddr, 3) {
		t.Error("peer cannot ping the client over Teredo")
	}
	if !l.Client.Ping(peerAddr, 3) {
		t.Error("client cannot ping the peer over Teredo")
	}
}

func TestPeerUPnP(t *testing.T) {
	l := New(t)
	l.Gateway.StartMiniUPnPd(60*time.Second, MiniUPnPdOptions{ExtIP: "1.2.3.4"})
	out, err := l.Client.Upnpc("-e", "Remote Assistance", "-a", ClientV4.String(), "3389", "3389", "TCP", "3600")
	if err != nil || !strings.Contains(out, "is redirected to internal") {
		t.Errorf("AddPortMapping: %v\n%s", err, out)
	}
	out, err = l.Client.Upnpc("-l")
	if err != nil || !strings.Contains(out, "Remote Assistance") {
		t.Errorf("list: %v\n%s", err, out)
	}
	out, err = l.Client.Upnpc("-d", "3389", "TCP")
	if err != nil {
		t.Errorf("DeletePortMapping: %v\n%s", err, out)
	}
}

func TestPeerHTTP(t *testing.T) {
	l := New(t)
	l.Server.ServeHTTP(":8000", 1<<20)
	n, err := l.Client.HTTPGet("http://10.99.2.2:8000/file", 5*time.Second)
	if err != nil || n != 1<<20 {
		t.Errorf("download: %d bytes, %v", n, err)
	}
	n, err = l.Client.HTTPGet("http://[fd99:2::2]:8000/file", 5*time.Second)
	if err != nil || n != 1<<20 {
		t.Errorf("download v6: %d bytes, %v", n, err)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
