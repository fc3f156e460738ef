package classify

import (
	"bytes"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var upnpT0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// upnpStep is one payload of a test flow.
type upnpStep struct {
	dir  Direction
	data string
	gap  bool
}

func newUPnPTestContext() *Context {
	c := &Counters{}
	return &Context{Now: upnpT0, Expect: NewExpectTable(0, c), Names: NewNameCache(0, c), Counters: c}
}

// upnpRun feeds steps to d like the classifier does (indexes per
// direction, budget, nothing more after Done) and returns the number of
// steps consumed.
func upnpRun(ctx *Context, d Detector, f *Flow, steps []upnpStep) int {
	var index [2]int
	var fed [2]int
	for i, s := range steps {
		p := []byte(s.data)
		if room := d.Budget() - fed[s.dir]; len(p) > room {
			p = p[:room]
		}
		if len(p) == 0 {
			return i
		}
		fed[s.dir] += len(p)
		src, dst := f.Client, f.Server
		if s.dir == ToClient {
			src, dst = dst, src
		}
		seg := &Segment{Dir: s.dir, Payload: p, Time: ctx.Now, Gap: s.gap, Src: src, Dst: dst, Index: index[s.dir]}
		index[s.dir]++
		if d.Inspect(ctx, f, seg) == Done {
			f.SetDetectorState(ctx.Detector, nil)
			return i + 1
		}
	}
	return len(steps)
}

func upnpUDPFlow(client, server string) *Flow {
	return &Flow{ID: 7, Proto: ProtoUDP, Client: netip.MustParseAddrPort(client), Server: netip.MustParseAddrPort(server)}
}

func upnpTCPFlow(client, server string) *Flow {
	return &Flow{ID: 9, Proto: ProtoTCP, Client: netip.MustParseAddrPort(client), Server: netip.MustParseAddrPort(server)}
}

// Vectors of protocols.md §4.2 and §4.5.
const (
	ssdpIGDSearch = "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n" +
		"ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nMAN: \"ssdp:discover\"\r\nMX: 2\r\n\r\n"
	ssdpIGDResponse = "HTTP/1.1 200 OK\r\nCACHE-CONTROL: max-age=1800\r\n" +
		"ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n" +
		"USN: uuid:4d696e69-444c-164e-9d41-b827eb3a1c9d::urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n" +
		"EXT:\r\nSERVER: Linux/6.1 UPnP/1.1 MiniUPnPd/2.3.1\r\nLOCATION: http://192.168.1.1:5000/rootDesc.xml\r\n\r\n"
	ssdpPNRPSearch = "M-SEARCH * HTTP/1.1\r\nHOST: [FF02::C]:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 3\r\n" +
		"ST: urn:Microsoft Windows Peer Name Resolution Protocol: V4:IPV6:LinkLocal\r\n\r\n"
	ssdpNotifyRoot = "NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nCACHE-CONTROL: max-age=120\r\n" +
		"LOCATION: http://192.168.1.1:7406/rootDesc.xml\r\nSERVER: OpenWRT UPnP/1.1 MiniUPnPd/2.3\r\n" +
		"NT: upnp:rootdevice\r\nUSN: uuid:04645c3d::upnp:rootdevice\r\nNTS: ssdp:alive\r\n\r\n"
	ssdpNotifyIGD = "NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nCACHE-CONTROL: max-age=120\r\n" +
		"LOCATION: http://192.168.1.1:7406/rootDesc.xml\r\nSERVER: OpenWRT UPnP/1.1 MiniUPnPd/2.3\r\n" +
		"NT: urn:schemas-upnp-org:service:WANIPConnection:1\r\nUSN: uuid:04645c3d::urn:schemas-upnp-org:service:WANIPConnection:1\r\nNTS: ssdp:alive\r\n\r\n"
	ssdpByeIGD = "NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n" +
		"NT: urn:schemas-upnp-org:device:InternetGatewayDevice:2\r\nUSN: uuid:04645c3d::urn:schemas-upnp-org:device:InternetGatewayDevice:2\r\nNTS: ssdp:byebye\r\n\r\n"
	// Windows 7 (suricata-verify output-eve-ftp-data): no space after the colons.
	ssdpWindowsSearch = "M-SEARCH * HTTP/1.1\r\nHost:239.255.255.250:1900\r\n" +
		"ST:urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\nMan:\"ssdp:discover\"\r\nMX:3\r\n\r\n"
	ssdpAllSearch = "M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\nST: ssdp:all\r\n\r\n"
	ssdpPPPSearch = "M-SEARCH * HTTP/1.1\r\nHOST: [ff05::c]:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 1\r\n" +
		"ST: urn:schemas-upnp-org:service:WANPPPConnection:1\r\n\r\n"
	ssdpV6Response = "HTTP/1.1 200 OK\r\nST: upnp:rootdevice\r\nUSN: uuid:1::upnp:rootdevice\r\n" +
		"LOCATION: http://[fe80::1%25eth0]:2869/upnphost/udhisapi.dll?content=uuid:1\r\n\r\n"
	ssdpNameResponse = "HTTP/1.1 200 OK\r\nST: upnp:rootdevice\r\nUSN: uuid:1::upnp:rootdevice\r\n" +
		"LOCATION: http://router.lan:5000/rootDesc.xml\r\n\r\n"
	upnpPlexGDM      = "M-SEARCH * HTTP/1.1\r\n"
	upnpWSDiscovery  = `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing"><soap:Header><wsa:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</wsa:To><wsa:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</wsa:Action></soap:Header><soap:Body><wsd:Probe/></soap:Body></soap:Envelope>`
	upnpNATPMP       = "\x00\x02\x00\x00\x0d\x3e\x0d\x3e\x00\x00\x0e\x10"
	upnpQUICInitial  = "\xc0\x00\x00\x00\x01\x08\x83\x94\xc8\xf0\x3e\x51\x57\x08\x00\x00\x44\x9e"
	upnpHTTPOverUDP  = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 0\r\n\r\n"
	ssdpHTTP10       = "M-SEARCH * HTTP/1.0\r\nHOST: 239.255.255.250:1900\r\nST: ssdp:all\r\nMAN: \"ssdp:discover\"\r\n\r\n"
	upnpDNSQueryWire = "\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x06teredo\x04ipv6\x09microsoft\x03com\x00\x00\x01\x00\x01"
)

func TestSSDPDetector(t *testing.T) {
	tests := []struct {
		name           string
		client, server string
		datagrams      []string
		want           []Label
		check          func(t *testing.T, ev *UPnPEvidence)
		expect         string // "addr:port" of a upnp-description expectation
		malformed      uint64
	}{
		{name: "IGD search §4.2", client: "192.168.1.20:50000", server: "239.255.255.250:1900",
			datagrams: []string{ssdpIGDSearch}, want: []Label{LabelSSDP, LabelSSDPIGDSearch},
			check: func(t *testing.T, ev *UPnPEvidence) {
				if ev.Method != "M-SEARCH" || ev.ST != "urn:schemas-upnp-org:device:InternetGatewayDevice:1" || !ev.IGD || ev.Kind != "ssdp" {
					t.Errorf("evidence %+v", ev)
				}
			}},
		{name: "IGD response from 1901", client: "192.168.1.1:1901", server: "192.168.1.20:50000",
			datagrams: []string{ssdpIGDResponse}, want: []Label{LabelSSDP, LabelSSDPIGDSearch}, expect: "192.168.1.1:5000",
			check: func(t *testing.T, ev *UPnPEvidence) {
				if ev.Status != 200 || ev.Location != "http://192.168.1.1:5000/rootDesc.xml" || !strings.HasPrefix(ev.USN, "uuid:4d69") ||
					ev.Server != "Linux/6.1 UPnP/1.1 MiniUPnPd/2.3.1" {
					t.Errorf("evidence %+v", ev)
				}
			}},
		{name: "PNRP cloud discovery §4.5", client: "[fe80::1]:50000", server: "[ff02::c]:1900",
			datagrams: []string{ssdpPNRPSearch}, want: []Label{LabelSSDP},
			check: func(t *testing.T, ev *UPnPEvidence) {
				if !ev.PNRPDiscovery || ev.IGD {
					t.Errorf("evidence %+v", ev)
				}
			}},
		{name: "NOTIFY root then IGD service", client: "192.168.1.1:9489", server: "239.255.255.250:1900",
			datagrams: []string{ssdpNotifyRoot, ssdpNotifyIGD}, want: []Label{LabelSSDP, LabelSSDPIGDSearch}, expect: "192.168.1.1:7406",
			check: func(t *testing.T, ev *UPnPEvidence) {
				if ev.NT != "urn:schemas-upnp-org:service:WANIPConnection:1" || ev.NTS != "ssdp:alive" || ev.Method != "NOTIFY" {
					t.Errorf("evidence keeps the IGD notification: %+v", ev)
				}
			}},
		{name: "byebye", client: "192.168.1.1:1900", server: "239.255.255.250:1900",
			datagrams: []string{ssdpByeIGD}, want: []Label{LabelSSDP, LabelSSDPIGDSearch}},
		{name: "Windows 7 search, no spaces", client: "192.168.0.13:62923", server: "239.255.255.250:1900",
			datagrams: []string{ssdpWindowsSearch}, want: []Label{LabelSSDP, LabelSSDPIGDSearch}},
		{name: "ssdp:all is not IGD", client: "10.0.0.2:40000", server: "239.255.255.250:1900",
			datagrams: []string{ssdpAllSearch}, want: []Label{LabelSSDP}},
		{name: "WANPPPConnection site-local", client: "[fd00::2]:40000", server: "[ff05::c]:1900",
			datagrams: []string{ssdpPPPSearch}, want: []Label{LabelSSDP, LabelSSDPIGDSearch}},
		{name: "IPv6 LOCATION with zone", client: "[fe80::1]:1900", server: "[fe80::2]:50000",
			datagrams: []string{ssdpV6Response}, want: []Label{LabelSSDP}, expect: "[fe80::1]:2869"},
		{name: "host name LOCATION: no expectation", client: "192.168.1.1:1900", server: "192.168.1.20:50000",
			datagrams: []string{ssdpNameResponse}, want: []Label{LabelSSDP}},
		{name: "stray datagram in an SSDP flow", client: "192.168.1.1:9489", server: "239.255.255.250:1900",
			datagrams: []string{ssdpNotifyRoot, "garbage", ssdpNotifyIGD}, want: []Label{LabelSSDP, LabelSSDPIGDSearch}, expect: "192.168.1.1:7406"},
		// Near misses.
		{name: "Plex GDM bare M-SEARCH on 32412", client: "192.168.242.8:42253", server: "192.168.242.255:32412",
			datagrams: []string{upnpPlexGDM}},
		{name: "bare M-SEARCH on 1900 is broken SSDP", client: "10.0.0.2:40000", server: "239.255.255.250:1900",
			datagrams: []string{upnpPlexGDM}, malformed: 1},
		{name: "M-SEARCH HTTP/1.0 §4.5", client: "10.0.0.2:40000", server: "239.255.255.250:1900", datagrams: []string{ssdpHTTP10}},
		{name: "WS-Discovery 3702", client: "10.0.0.2:40000", server: "239.255.255.250:3702", datagrams: []string{upnpWSDiscovery}},
		{name: "NAT-PMP 5351", client: "10.0.0.2:40000", server: "10.0.0.1:5351", datagrams: []string{upnpNATPMP}},
		{name: "QUIC initial", client: "10.0.0.2:40000", server: "192.0.2.1:443", datagrams: []string{upnpQUICInitial}},
		{name: "DNS", client: "10.0.0.2:40000", server: "10.0.0.1:53", datagrams: []string{upnpDNSQueryWire}},
		{name: "HTTP response over UDP without SSDP headers", client: "10.0.0.2:40000", server: "10.0.0.1:8080", datagrams: []string{upnpHTTPOverUDP}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := newUPnPTestContext()
			f := upnpUDPFlow(tt.client, tt.server)
			var steps []upnpStep
			for _, d := range tt.datagrams {
				steps = append(steps, upnpStep{dir: ToServer, data: d})
			}
			upnpRun(ctx, NewSSDPDetector(SSDPOptions{}), f, steps)
			var want LabelSet
			for _, l := range tt.want {
				want = want.With(l)
			}
			if f.Labels != want {
				t.Fatalf("labels %v, want %v", f.Labels.Strings(), want.Strings())
			}
			ev, _ := f.GetEvidence(UPnPEvidenceKey).(*UPnPEvidence)
			if want == 0 {
				if ev != nil || f.AppProto != AppNone {
					t.Errorf("near miss has evidence %+v app %q", ev, f.AppProto)
				}
			} else {
				if ev == nil || f.AppProto != AppSSDP || f.LabelConfidence(LabelSSDP) != ConfidenceHigh {
					t.Fatalf("evidence %+v app %q", ev, f.AppProto)
				}
				if tt.check != nil {
					tt.check(t, ev)
				}
			}
			n := 0
			ctx.Expect.Each(func(e *Expectation) {
				n++
				if tt.expect == "" {
					t.Errorf("unexpected expectation %+v", e)
					return
				}
				ap := netip.MustParseAddrPort(tt.expect)
				if e.Addr != ap.Addr() || e.Port != ap.Port() || e.Proto != ProtoTCP || e.Reason != "upnp-description" ||
					e.Service != "upnp" || e.FromFlow != f.ID || !e.Expires.After(upnpT0) || e.Expires.Sub(upnpT0) > DefaultSSDPDescriptionTTL {
					t.Errorf("expectation %+v, want %s", e, tt.expect)
				}
			})
			if tt.expect != "" && n != 1 {
				t.Errorf("%d expectations, want 1", n)
			}
			if got := ctx.Counters.Malformed()["ssdp"]; got != tt.malformed {
				t.Errorf("malformed %d, want %d", got, tt.malformed)
			}
		})
	}
}

func TestSSDPOverTCPIsNotSSDP(t *testing.T) {
	ctx := newUPnPTestContext()
	f := upnpTCPFlow("10.0.0.2:40000", "10.0.0.1:1900")
	upnpRun(ctx, NewSSDPDetector(SSDPOptions{}), f, []upnpStep{{data: ssdpNotifyRoot}})
	upnpRun(ctx, NewUPnPDetector(UPnPOptions{}), f, []upnpStep{{data: ssdpNotifyRoot}})
	if f.Labels != 0 {
		t.Errorf("TCP NOTIFY * labelled %v", f.Labels.Strings())
	}
}

func TestSSDPMaxAgeAndURL(t *testing.T) {
	for _, c := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{{"max-age=1800", 1800 * time.Second, true}, {"no-cache, max-age = 60", time.Minute, true}, {"max-age", 0, false}, {"", 0, false}, {"max-age=x", 0, false}} {
		got, ok := ssdpMaxAge([]byte(c.in))
		if got != c.want || ok != c.ok {
			t.Errorf("ssdpMaxAge(%q) = %v %v", c.in, got, ok)
		}
	}
	for _, c := range []struct {
		in   string
		want string
	}{
		{"http://192.168.1.1:5000/rootDesc.xml", "192.168.1.1:5000"},
		{"HTTP://10.0.0.1/igd.xml", "10.0.0.1:80"},
		{"http://[fe80::1%eth0]:2869/x", "[fe80::1]:2869"},
		{"http://user@10.0.0.1:81", "10.0.0.1:81"},
		{"http://router.lan:5000/", ""},
		{"https://10.0.0.1/", ""},
		{"http://10.0.0.1:0/", ""},
		{"http://10.0.0.1:99999/", ""},
		{"http://[::1/", ""},
	} {
		a, p, ok := upnpParseHTTPURL([]byte(c.in))
		got := ""
		if ok {
			got = netip.AddrPortFrom(a, p).String()
		}
		if got != c.want {
			t.Errorf("upnpParseHTTPURL(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// §4.3: the AddPortMapping request, with its exact Content-Length.
const upnpAddBody = "<?xml version=\"1.0\"?>\r\n<s:Envelope xmlns:s=\"http://schemas.xmlsoap.org/soap/envelope/\" s:encodingStyle=\"http://schemas.xmlsoap.org/soap/encoding/\"><s:Body><u:AddPortMapping xmlns:u=\"urn:schemas-upnp-org:service:WANIPConnection:1\"><NewRemoteHost></NewRemoteHost><NewExternalPort>52781</NewExternalPort><NewProtocol>TCP</NewProtocol><NewInternalPort>52781</NewInternalPort><NewInternalClient>192.168.1.20</NewInternalClient><NewEnabled>1</NewEnabled><NewPortMappingDescription>example</NewPortMappingDescription><NewLeaseDuration>0</NewLeaseDuration></u:AddPortMapping></s:Body></s:Envelope>\r\n"

func upnpPost(action, body string) string {
	return "POST /ctl/IPConn HTTP/1.1\r\nHost: 192.168.1.1:5000\r\nContent-Type: text/xml; charset=\"utf-8\"\r\n" +
		"SOAPAction: \"urn:schemas-upnp-org:service:WANIPConnection:1#" + action + "\"\r\n" +
		"Content-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n" + body
}

func upnpSOAPResponse(status int, inner string) string {
	body := `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>` + inner + `</s:Body></s:Envelope>`
	reason := "OK"
	if status == 500 {
		reason = "Internal Server Error"
	}
	return fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: text/xml; charset=\"utf-8\"\r\nConnection: close\r\nContent-Length: %d\r\nServer: Linux UPnP/1.1 MiniUPnPd/2.3.1\r\nExt:\r\n\r\n%s", status, reason, len(body), body)
}

func upnpFault(code int, desc string) string {
	return upnpSOAPResponse(500, `<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail><UPnPError xmlns="urn:schemas-upnp-org:control-1-0"><errorCode>`+
		fmt.Sprint(code)+`</errorCode><errorDescription>`+desc+`</errorDescription></UPnPError></detail></s:Fault>`)
}

func upnpDeleteBody(ext int, proto string) string {
	return `<?xml version="1.0"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" s:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><u:DeletePortMapping xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1"><NewRemoteHost></NewRemoteHost><NewExternalPort>` +
		fmt.Sprint(ext) + `</NewExternalPort><NewProtocol>` + proto + `</NewProtocol></u:DeletePortMapping></s:Body></s:Envelope>`
}

// upnpExpectations lists the table as "addr:port/proto reason service".
func upnpExpectations(ctx *Context) []string {
	var out []string
	ctx.Expect.Each(func(e *Expectation) {
		out = append(out, fmt.Sprintf("%v/%d %s %s", netip.AddrPortFrom(e.Addr, e.Port), e.Proto, e.Reason, e.Service))
	})
	upnpSortStrings(out)
	return out
}

func upnpSortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func TestUPnPAddPortMappingVector(t *testing.T) {
	if len(upnpAddBody) != 591 {
		t.Fatalf("vector body is %d bytes, protocols.md says 591", len(upnpAddBody))
	}
	req := upnpPost("AddPortMapping", upnpAddBody)
	resp := upnpSOAPResponse(200, `<u:AddPortMappingResponse xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1"/>`)
	check := func(t *testing.T, ctx *Context, f *Flow) {
		t.Helper()
		want := LabelSet(0).With(LabelUPnPControl).With(LabelUPnPPortmapAdd)
		if f.Labels != want || f.AppProto != AppHTTP {
			t.Fatalf("labels %v app %q", f.Labels.Strings(), f.AppProto)
		}
		ev, _ := f.GetEvidence(UPnPEvidenceKey).(*UPnPEvidence)
		if ev == nil || ev.Mapping == nil {
			t.Fatalf("evidence %+v", ev)
		}
		m := ev.Mapping
		if ev.Kind != "soap" || ev.Method != "POST" || ev.URI != "/ctl/IPConn" || ev.SOAPAction != "AddPortMapping" ||
			ev.ServiceType != "urn:schemas-upnp-org:service:WANIPConnection:1" || !ev.IGD || ev.Status != 200 ||
			m.ExternalPort != 52781 || m.Protocol != "TCP" || m.InternalClient != "192.168.1.20" || m.InternalPort != 52781 ||
			m.Description != "example" || m.RemoteHost != "" || *m.LeaseDuration != 0 || !*m.Enabled {
			t.Errorf("evidence %+v mapping %+v", *ev, *m)
		}
		got := upnpExpectations(ctx)
		wantEx := []string{"192.168.1.1:52781/6 upnp-portmap example", "192.168.1.20:52781/6 upnp-portmap example"}
		if fmt.Sprint(got) != fmt.Sprint(wantEx) {
			t.Errorf("expectations %v, want %v", got, wantEx)
		}
		ctx.Expect.Each(func(e *Expectation) {
			if e.Expires.Sub(e.Created) != DefaultUPnPMappingTTL || e.Peer.IsValid() || e.FromFlow != f.ID {
				t.Errorf("expectation %+v: lease 0 must be capped at %v, no peer", e, DefaultUPnPMappingTTL)
			}
		})
	}
	t.Run("one segment each", func(t *testing.T) {
		ctx := newUPnPTestContext()
		f := upnpTCPFlow("192.168.1.20:40000", "192.168.1.1:5000")
		n := upnpRun(ctx, NewUPnPDetector(UPnPOptions{}), f, []upnpStep{{dir: ToServer, data: req}, {dir: ToClient, data: resp}, {dir: ToServer, data: "more"}})
		check(t, ctx, f)
		if n != 2 {
			t.Errorf("Done after %d segments, want 2 (Connection: close answered)", n)
		}
	})
	t.Run("every split point", func(t *testing.T) {
		for i := 1; i < len(req); i++ {
			ctx := newUPnPTestContext()
			f := upnpTCPFlow("192.168.1.20:40000", "192.168.1.1:5000")
			upnpRun(ctx, NewUPnPDetector(UPnPOptions{}), f, []upnpStep{{dir: ToServer, data: req[:i]}, {dir: ToServer, data: req[i:]}, {dir: ToClient, data: resp}})
			first := req[:i]
			if strings.Count(first, "\n") > 1 && !strings.Contains(first, "SOAPAction") {
				// The first segment shows complete header lines but no
				// SOAPAction: it is let go like ordinary HTTP.
				if f.Labels != 0 {
					t.Fatalf("split %d: labelled %v", i, f.Labels.Strings())
				}
				continue
			}
			if f.Labels == 0 {
				t.Fatalf("split %d: first segment %q: not labelled", i, first)
			}
			check(t, ctx, f)
		}
	})
	t.Run("byte by byte after the head", func(t *testing.T) {
		ctx := newUPnPTestContext()
		f := upnpTCPFlow("192.168.1.20:40000", "192.168.1.1:5000")
		head := strings.Index(req, "\r\n\r\n") + 4
		steps := []upnpStep{{dir: ToServer, data: req[:head]}}
		for i := head; i < len(req); i++ {
			steps = append(steps, upnpStep{dir: ToServer, data: req[i : i+1]})
		}
		for i := 0; i < len(resp); i += 7 {
			steps = append(steps, upnpStep{dir: ToClient, data: resp[i:min(i+7, len(resp))]})
		}
		d := NewUPnPDetector(UPnPOptions{MaxMessage: 4096})
		upnpRun(ctx, d, f, steps)
		check(t, ctx, f)
	})
	t.Run("chunked body", func(t *testing.T) {
		body := upnpAddBody
		var chunked strings.Builder
		for i := 0; i < len(body); i += 100 {
			part := body[i:min(i+100, len(body))]
			fmt.Fprintf(&chunked, "%x;ext=1\r\n%s\r\n", len(part), part)
		}
		chunked.WriteString("0\r\n\r\n")
		creq := "POST /ctl/IPConn HTTP/1.1\r\nHost: 192.168.1.1:5000\r\nTransfer-Encoding: chunked\r\n" +
			"SOAPAction: \"urn:schemas-upnp-org:service:WANIPConnection:1#AddPortMapping\"\r\n\r\n" + chunked.String()
		ctx := newUPnPTestContext()
		f := upnpTCPFlow("192.168.1.20:40000", "192.168.1.1:5000")
		upnpRun(ctx, NewUPnPDetector(UPnPOptions{}), f, []upnpStep{{dir: ToServer, data: creq[:300]}, {dir: ToServer, data: creq[300:]}, {dir: ToClient, data: resp}})
		check(t, ctx, f)
		// One byte per segment: the framing is followed incrementally.
		ctx = newUPnPTestContext()
		f = upnpTCPFlow("192.168.1.20:40000", "192.168.1.1:5000")
		var steps []upnpStep
		for i := range len(creq) {
			steps = append(steps, upnpStep{dir: ToServer, data: creq[i : i+1]})
		}
		upnpRun(ctx, NewUPnPDetector(UPnPOptions{}), f, append(steps, upnpStep{dir: ToClient, data: resp}))
		check(t, ctx, f)
	})
}

func TestUPnPControl(t *testing.T) {
	windowsAdd := "POST /WANIPConnection HTTP/1.1\r\nCache-Control: no-cache\r\nConnection: Close\r\nPragma: no-cache\r\n" +
		"Content-Type: text/xml; charset=\"utf-8\"\r\nUser-Agent: Microsoft-Windows/6.1 UPnP/1.0\r\n" +
		"SOAPAction: \"urn:schemas-upnp-org:service:WANIPConnection:1#AddPortMapping\"\r\nContent-Length: %d\r\nHost: 192.168.0.1\r\n\r\n"
	windowsBody := `<?xml version="1.0"?>` + "\r\n" + `<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" SOAP-ENV:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><SOAP-ENV:Body><m:AddPortMapping xmlns:m="urn:schemas-upnp-org:service:WANIPConnection:1"><NewRemoteHost xmlns:dt="urn:schemas-microsoft-com:datatypes" dt:dt="string">203.0.113.9</NewRemoteHost><NewExternalPort xmlns:dt="urn:schemas-microsoft-com:datatypes" dt:dt="ui2">59085</NewExternalPort><NewProtocol xmlns:dt="urn:schemas-microsoft-com:datatypes" dt:dt="string">UDP</NewProtocol><NewInternalPort xmlns:dt="urn:schemas-microsoft-com:datatypes" dt:dt="ui2">59085</NewInternalPort><NewInternalClient xmlns:dt="urn:schemas-microsoft-com:datatypes" dt:dt="string">192.168.0.13</NewInternalClient><NewEnabled xmlns:dt="urn:schemas-microsoft-com:datatypes" dt:dt="boolean">true</NewEnabled><NewPortMappingDescription xmlns:dt="urn:schemas-microsoft-com:datatypes" dt:dt="string">Remote &amp; Assistance &#x41;</NewPortMappingDescription><NewLeaseDuration xmlns:dt="urn:schemas-microsoft-com:datatypes" dt:dt="ui4">600</NewLeaseDuration></m:AddPortMapping></SOAP-ENV:Body></SOAP-ENV:Envelope>`
	geNotify := "NOTIFY /upnp/eventing/xcmmwtqlwc HTTP/1.1\r\nNT: upnp:event\r\nNTS: upnp:propchange\r\nSID: uuid:185134fb\r\nSEQ: 0\r\n" +
		"Content-Type: text/xml\r\nHOST: 192.168.0.13:2869\r\nContent-Length: 120\r\nConnection: close\r\n\r\n" +
		`<?xml version="1.0" encoding="utf-8"?><e:propertyset xmlns:e="urn:schemas-upnp-org:event-1-0"><e:property/></e:propertyset>`
	subscribe := "SUBSCRIBE /WANIPConnection HTTP/1.1\r\nConnection: Close\r\nUser-Agent: Microsoft-Windows/6.1 UPnP/1.0\r\n" +
		"NT: upnp:event\r\nCallback: <http://192.168.0.13:2869/upnp/eventing/mclbfxnltw>\r\nTimeout: Second-1800\r\nHost: 192.168.0.1\r\n\r\n"
	descGet := "GET /rootDesc.xml HTTP/1.1\r\nHost: 192.168.1.1:41547\r\nUser-Agent: UPnP/1.0\r\n\r\n"
	descResp := "HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=\"utf-8\"\r\nConnection: close\r\nServer: Debian/bullseye UPnP/1.1 MiniUPnPd/2.1\r\n\r\n" +
		`<?xml version="1.0"?><root xmlns="urn:schemas-upnp-org:device-1-0"><specVersion><major>1</major></specVersion><device><deviceType>urn:schemas-upnp-org:device:InternetGatewayDevice:2</deviceType>`
	plainXML := "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: 60\r\n\r\n" + `<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org">`
	mpost := "M-POST /ctl HTTP/1.1\r\nHOST: 10.0.0.1:5000\r\nMAN: \"http://schemas.xmlsoap.org/soap/envelope/\"; ns=01\r\n" +
		"01-SOAPACTION: \"urn:schemas-upnp-org:service:WANPPPConnection:1#DeletePortMapping\"\r\nContent-Length: " +
		fmt.Sprint(len(upnpDeleteBody(3389, "TCP"))) + "\r\n\r\n" + upnpDeleteBody(3389, "TCP")

	type tcase struct {
		name      string
		steps     []upnpStep
		expected  string // reason of the flow's met expectation, if any
		want      []Label
		check     func(t *testing.T, ev *UPnPEvidence, ctx *Context)
		malformed uint64
	}
	tests := []tcase{
		{name: "Windows AddPortMapping with m: prefix and dt attributes",
			steps: []upnpStep{{dir: ToServer, data: fmt.Sprintf(windowsAdd, len(windowsBody))}, {dir: ToServer, data: windowsBody},
				{dir: ToClient, data: upnpSOAPResponse(200, `<m:AddPortMappingResponse xmlns:m="urn:schemas-upnp-org:service:WANIPConnection:1"></m:AddPortMappingResponse>`)}},
			want: []Label{LabelUPnPControl, LabelUPnPPortmapAdd},
			check: func(t *testing.T, ev *UPnPEvidence, ctx *Context) {
				m := ev.Mapping
				if m == nil || m.Protocol != "UDP" || m.ExternalPort != 59085 || m.Description != "Remote & Assistance A" ||
					m.RemoteHost != "203.0.113.9" || *m.LeaseDuration != 600 || !*m.Enabled || ev.UserAgent != "Microsoft-Windows/6.1 UPnP/1.0" {
					t.Errorf("mapping %+v", m)
				}
				ctx.Expect.Each(func(e *Expectation) {
					if e.Peer != netip.MustParseAddr("203.0.113.9") || e.Expires.Sub(e.Created) != 600*time.Second || e.Proto != ProtoUDP {
						t.Errorf("expectation %+v: want peer = NewRemoteHost, 600 s, UDP", e)
					}
				})
				if n := ctx.Expect.Len(); n != 2 {
					t.Errorf("%d expectations", n)
				}
			}},
		{name: "AddPortMapping refused: 718 ConflictInMappingEntry",
			steps: []upnpStep{{dir: ToServer, data: upnpPost("AddPortMapping", upnpAddBody)}, {dir: ToClient, data: upnpFault(718, "ConflictInMappingEntry")}},
			want:  []Label{LabelUPnPControl, LabelUPnPPortmapAdd},
			check: func(t *testing.T, ev *UPnPEvidence, ctx *Context) {
				if ev.Status != 500 || ev.UPnPError == nil || ev.UPnPError.Code != 718 || ev.UPnPError.Description != "ConflictInMappingEntry" {
					t.Errorf("evidence %+v", ev)
				}
				if n := ctx.Expect.Len(); n != 0 {
					t.Errorf("refused mapping left %d expectations: %v", n, upnpExpectations(ctx))
				}
			}},
		{name: "AddPortMapping 501 ActionFailed (miniupnpd, reserved WAN address)",
			steps: []upnpStep{{dir: ToServer, data: upnpPost("AddPortMapping", upnpAddBody)}, {dir: ToClient, data: upnpFault(501, "Action Failed")}},
			want:  []Label{LabelUPnPControl, LabelUPnPPortmapAdd},
			check: func(t *testing.T, ev *UPnPEvidence, ctx *Context) {
				if ev.UPnPError == nil || ev.UPnPError.Code != 501 || ctx.Expect.Len() != 0 {
					t.Errorf("evidence %+v, %d expectations", ev, ctx.Expect.Len())
				}
			}},
		{name: "AddPortMapping, response unseen: expected anyway",
			steps: []upnpStep{{dir: ToServer, data: upnpPost("AddPortMapping", upnpAddBody)}},
			want:  []Label{LabelUPnPControl, LabelUPnPPortmapAdd},
			check: func(t *testing.T, ev *UPnPEvidence, ctx *Context) {
				if ev.Status != 0 || ctx.Expect.Len() != 2 {
					t.Errorf("status %d, %d expectations", ev.Status, ctx.Expect.Len())
				}
			}},
		{name: "M-POST DeletePortMapping",
			steps: []upnpStep{{dir: ToServer, data: mpost}, {dir: ToClient, data: upnpSOAPResponse(200, "")}},
			want:  []Label{LabelUPnPControl, LabelUPnPPortmapDelete},
			check: func(t *testing.T, ev *UPnPEvidence, ctx *Context) {
				if ev.Method != "M-POST" || ev.SOAPAction != "DeletePortMapping" || ev.Mapping == nil || ev.Mapping.ExternalPort != 3389 || ev.Mapping.Protocol != "TCP" {
					t.Errorf("evidence %+v", ev)
				}
			}},
		{name: "GENA NOTIFY to 2869", steps: []upnpStep{{dir: ToServer, data: geNotify}, {dir: ToClient, data: "HTTP/1.1 200 OK\r\nServer: Microsoft-HTTPAPI/2.0\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"}},
			want: []Label{LabelUPnPControl},
			check: func(t *testing.T, ev *UPnPEvidence, ctx *Context) {
				if ev.Kind != "gena" || ev.NT != "upnp:event" || ev.NTS != "upnp:propchange" || ev.SID != "uuid:185134fb" || ev.Status != 200 {
					t.Errorf("evidence %+v", ev)
				}
			}},
		{name: "GENA SUBSCRIBE", steps: []upnpStep{{dir: ToServer, data: subscribe}, {dir: ToClient, data: "HTTP/1.0 200 OK\r\nServer: UPnP/1.0 UPnP-Device-Host/1.0\r\nTimeout: Second-600\r\nSID: uuid:185144fc\r\n\r\n"}},
			want: []Label{LabelUPnPControl},
			check: func(t *testing.T, ev *UPnPEvidence, ctx *Context) {
				if ev.Kind != "gena" || ev.Method != "SUBSCRIBE" || ev.Status != 200 {
					t.Errorf("evidence %+v", ev)
				}
			}},
		{name: "description fetch, body without length", steps: []upnpStep{{dir: ToServer, data: descGet}, {dir: ToClient, data: descResp[:120]}, {dir: ToClient, data: descResp[120:]}},
			want: []Label{LabelUPnPControl},
			check: func(t *testing.T, ev *UPnPEvidence, ctx *Context) {
				if ev.Kind != "description" || ev.URI != "/rootDesc.xml" || ev.DeviceType != "urn:schemas-upnp-org:device:InternetGatewayDevice:2" || !ev.IGD || ev.Status != 200 {
					t.Errorf("evidence %+v", ev)
				}
			}},
		{name: "description on an expected listener, path without .xml", expected: "upnp-description",
			steps: []upnpStep{{dir: ToServer, data: "GET /upnp/desc HTTP/1.1\r\nHost: 10.0.0.1:49152\r\n\r\n"}, {dir: ToClient, data: descResp}},
			want:  []Label{LabelUPnPControl}},
		{name: "GetExternalIPAddress keep-alive then AddPortMapping",
			steps: []upnpStep{
				{dir: ToServer, data: upnpPost("GetExternalIPAddress", "<s:Envelope><s:Body><u:GetExternalIPAddress/></s:Body></s:Envelope>")},
				{dir: ToClient, data: strings.Replace(upnpSOAPResponse(200, `<u:GetExternalIPAddressResponse><NewExternalIPAddress>198.51.100.7</NewExternalIPAddress></u:GetExternalIPAddressResponse>`), "Connection: close\r\n", "", 1)},
				{dir: ToServer, data: upnpPost("AddPortMapping", upnpAddBody)},
				{dir: ToClient, data: upnpSOAPResponse(200, "")},
			},
			want: []Label{LabelUPnPControl, LabelUPnPPortmapAdd},
			check: func(t *testing.T, ev *UPnPEvidence, ctx *Context) {
				if ev.SOAPAction != "AddPortMapping" || ev.ExternalIP != "198.51.100.7" || ev.Actions != 2 || ev.Mapping == nil {
					t.Errorf("evidence %+v", ev)
				}
			}},
		{name: "two pipelined requests in one segment",
			steps: []upnpStep{
				{dir: ToServer, data: upnpPost("GetStatusInfo", "<a/>") + upnpPost("AddPortMapping", upnpAddBody)},
				{dir: ToClient, data: upnpSOAPResponse(200, "") + upnpFault(718, "ConflictInMappingEntry")},
			},
			want: []Label{LabelUPnPControl, LabelUPnPPortmapAdd},
			check: func(t *testing.T, ev *UPnPEvidence, ctx *Context) {
				if ev.Mapping == nil || ev.UPnPError == nil || ev.UPnPError.Code != 718 || ctx.Expect.Len() != 0 {
					t.Errorf("evidence %+v, %d expectations", ev, ctx.Expect.Len())
				}
			}},
		{name: "oversized body is truncated, not fatal",
			steps: []upnpStep{{dir: ToServer, data: upnpPost("AddPortMapping", strings.Replace(upnpAddBody, "example", strings.Repeat("x", 20000), 1))}},
			want:  []Label{LabelUPnPControl, LabelUPnPPortmapAdd},
			check: func(t *testing.T, ev *UPnPEvidence, ctx *Context) {
				if !ev.Truncated {
					t.Errorf("evidence %+v", ev)
				}
			}},
		{name: "gap after the head", steps: []upnpStep{{dir: ToServer, data: upnpPost("AddPortMapping", upnpAddBody)[:200]}, {dir: ToServer, data: "x", gap: true}},
			want: []Label{LabelUPnPControl, LabelUPnPPortmapAdd}},
		{name: "broken response head counted", steps: []upnpStep{{dir: ToServer, data: upnpPost("GetStatusInfo", "<a/>")}, {dir: ToClient, data: "NOT HTTP\r\n\r\n"}},
			want: []Label{LabelUPnPControl}, malformed: 1},
		// Near misses.
		{name: "ordinary GET", steps: []upnpStep{{dir: ToServer, data: "GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8\r\n\r\n"}, {dir: ToClient, data: descResp}}},
		{name: "GET .xml answered with other XML", steps: []upnpStep{{dir: ToServer, data: "GET /sitemap.xml HTTP/1.1\r\nHost: example.com\r\n\r\n"}, {dir: ToClient, data: plainXML}}},
		{name: "GET .xml answered 404", steps: []upnpStep{{dir: ToServer, data: descGet}, {dir: ToClient, data: "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"}}},
		{name: "POST without SOAPAction", steps: []upnpStep{{dir: ToServer, data: "POST /api HTTP/1.1\r\nContent-Type: text/xml\r\nContent-Length: 2\r\n\r\n{}"}}},
		{name: "TR-064 SOAPAction is not UPnP IGD", steps: []upnpStep{{dir: ToServer, data: "POST /upnp/control/deviceinfo HTTP/1.1\r\nSOAPACTION: \"urn:dslforum-org:service:DeviceInfo:1#GetInfo\"\r\nContent-Length: 0\r\n\r\n"}}},
		{name: "TCP NOTIFY *", steps: []upnpStep{{dir: ToServer, data: ssdpNotifyRoot}}},
		{name: "server speaks first", steps: []upnpStep{{dir: ToClient, data: "220 smtp ready\r\n"}, {dir: ToServer, data: upnpPost("AddPortMapping", upnpAddBody)}}},
		{name: "TLS ClientHello", steps: []upnpStep{{dir: ToServer, data: "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"}}},
		{name: "RDP X.224", steps: []upnpStep{{dir: ToServer, data: "\x03\x00\x00\x13\x0e\xe0\x00\x00\x00\x00\x00\x01\x00\x08\x00\x03\x00\x00\x00"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := newUPnPTestContext()
			f := upnpTCPFlow("192.168.1.20:40000", "192.168.1.1:5000")
			if tt.expected != "" {
				f.Ext().Expected = &Expectation{Reason: tt.expected}
			}
			upnpRun(ctx, NewUPnPDetector(UPnPOptions{}), f, tt.steps)
			var want LabelSet
			for _, l := range tt.want {
				want = want.With(l)
			}
			if f.Labels != want {
				t.Fatalf("labels %v, want %v", f.Labels.Strings(), want.Strings())
			}
			ev, _ := f.GetEvidence(UPnPEvidenceKey).(*UPnPEvidence)
			if want == 0 {
				if ev != nil || f.AppProto != AppNone || ctx.Expect.Len() != 0 {
					t.Errorf("near miss: evidence %+v app %q, %d expectations", ev, f.AppProto, ctx.Expect.Len())
				}
			} else if ev == nil || f.AppProto != AppHTTP {
				t.Fatalf("evidence %+v app %q", ev, f.AppProto)
			} else if tt.check != nil {
				tt.check(t, ev, ctx)
			}
			if got := ctx.Counters.Malformed()["upnp"]; got != tt.malformed {
				t.Errorf("malformed %d, want %d", got, tt.malformed)
			}
		})
	}
}

// TestUPnPMappingLifecycle follows §6.2 E across flows: a mapping, the WAN
// address learnt afterwards, an AddAnyPortMapping that the router moves,
// and the deletes that end them.
func TestUPnPMappingLifecycle(t *testing.T) {
	ctx := newUPnPTestContext()
	d := NewUPnPDetector(UPnPOptions{MappingTTL: 10 * time.Minute})
	flow := func(id uint64) *Flow {
		f := upnpTCPFlow(fmt.Sprintf("192.168.1.20:%d", 40000+id), "192.168.1.1:5000")
		f.ID = id
		return f
	}
	upnpRun(ctx, d, flow(1), []upnpStep{{data: upnpPost("AddPortMapping", upnpAddBody)}, {dir: ToClient, data: upnpSOAPResponse(200, "")}})
	upnpRun(ctx, d, flow(2), []upnpStep{{data: upnpPost("GetExternalIPAddress", "<a/>")},
		{dir: ToClient, data: upnpSOAPResponse(200, "<u:GetExternalIPAddressResponse><NewExternalIPAddress>198.51.100.7</NewExternalIPAddress></u:GetExternalIPAddressResponse>")}})
	want := []string{
		"192.168.1.1:52781/6 upnp-portmap example",
		"192.168.1.20:52781/6 upnp-portmap example",
		"198.51.100.7:52781/6 upnp-portmap example",
	}
	if got := upnpExpectations(ctx); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after GetExternalIPAddress: %v, want %v", got, want)
	}
	ctx.Expect.Each(func(e *Expectation) {
		if e.Expires.Sub(e.Created) != 10*time.Minute {
			t.Errorf("%+v: MappingTTL cap not applied", e)
		}
	})

	anyBody := strings.NewReplacer("AddPortMapping", "AddAnyPortMapping", "52781</NewExternalPort>", "3389</NewExternalPort>",
		"52781</NewInternalPort>", "3390</NewInternalPort>", "example", "RA").Replace(upnpAddBody)
	f3 := flow(3)
	upnpRun(ctx, d, f3, []upnpStep{{data: upnpPost("AddAnyPortMapping", anyBody)},
		{dir: ToClient, data: upnpSOAPResponse(200, "<u:AddAnyPortMappingResponse><NewReservedPort>13389</NewReservedPort></u:AddAnyPortMappingResponse>")}})
	if !f3.Labels.Has(LabelUPnPPortmapAdd) {
		t.Errorf("AddAnyPortMapping not labelled portmap-add: %v", f3.Labels.Strings())
	}
	ev := f3.GetEvidence(UPnPEvidenceKey).(*UPnPEvidence)
	if ev.Mapping.ReservedPort != 13389 {
		t.Errorf("reserved port %d", ev.Mapping.ReservedPort)
	}
	want = []string{
		"192.168.1.1:13389/6 upnp-portmap RA",
		"192.168.1.1:52781/6 upnp-portmap example",
		"192.168.1.20:3390/6 upnp-portmap RA",
		"192.168.1.20:52781/6 upnp-portmap example",
		"198.51.100.7:52781/6 upnp-portmap example",
	}
	if got := upnpExpectations(ctx); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after AddAnyPortMapping: %v, want %v", got, want)
	}

	f4 := flow(4)
	upnpRun(ctx, d, f4, []upnpStep{{data: upnpPost("DeletePortMapping", upnpDeleteBody(52781, "TCP"))}, {dir: ToClient, data: upnpSOAPResponse(200, "")}})
	if !f4.Labels.Has(LabelUPnPPortmapDelete) || f4.Labels.Has(LabelUPnPPortmapAdd) {
		t.Errorf("delete labels %v", f4.Labels.Strings())
	}
	want = []string{"192.168.1.1:13389/6 upnp-portmap RA", "192.168.1.20:3390/6 upnp-portmap RA"}
	if got := upnpExpectations(ctx); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after DeletePortMapping: %v, want %v", got, want)
	}
	rangeBody := `<s:Envelope><s:Body><u:DeletePortMappingRange><NewStartPort>13000</NewStartPort><NewEndPort>14000</NewEndPort><NewProtocol>TCP</NewProtocol><NewManage>1</NewManage></u:DeletePortMappingRange></s:Body></s:Envelope>`
	upnpRun(ctx, d, flow(5), []upnpStep{{data: upnpPost("DeletePortMappingRange", rangeBody)}})
	if got := upnpExpectations(ctx); len(got) != 0 {
		t.Fatalf("after DeletePortMappingRange: %v", got)
	}
}

func TestUPnPXMLScan(t *testing.T) {
	body := `<?xml version="1.0"?><!-- <NewExternalPort>1</NewExternalPort> --><a:X xmlns:a="u" b='>'><NewExternalPort>  80 </NewExternalPort>` +
		`<NewProtocol/><NewPortMappingDescription><![CDATA[x<y]]></NewPortMappingDescription><NewLeaseDuration>99999999999</NewLeaseDuration><NewInternalPort>70000</NewInternalPort>`
	a := upnpParseArgs([]byte(body))
	if a.externalPort != 80 || len(a.protocol) != 0 || string(a.description) != "x<y" || a.leaseSet || a.internalPort != 0 {
		t.Errorf("args %+v", a)
	}
	for in, want := range map[string]string{"a&amp;b": "a&b", "&lt;&gt;&quot;&apos;": `<>"'`, "&#65;&#x42;": "AB", "&bogus;": "&bogus;", "&": "&", "&#x110000;": "&#x110000;"} {
		if got := upnpUnescape([]byte(in)); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"3\r\nabc\r\n0\r\n\r\n": "abc", "3\r\nabc\r\n": "abc", "zz\r\n": "", "2;x=1\r\nab\r\n1\r\nc\r\n0\r\n": "abc"} {
		got, _ := upnpDechunk([]byte(in), []byte{})
		if string(got) != want {
			t.Errorf("dechunk(%q) = %q, want %q", in, got, want)
		}
	}
}

// upnpNoMatchPayloads are first payloads that must cost no allocation.
var upnpNoMatchPayloads = map[string]string{
	"WS-Discovery": upnpWSDiscovery,
	"NAT-PMP":      upnpNATPMP,
	"QUIC":         upnpQUICInitial,
	"DNS":          upnpDNSQueryWire,
	"Plex GDM":     upnpPlexGDM,
	"HTTP GET":     "GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0\r\nAccept: */*\r\n\r\n",
	"HTTP POST":    "POST /api HTTP/1.1\r\nHost: example.com\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
	"TLS":          "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
	"empty-ish":    "\x00",
	"TCP NOTIFY *": ssdpNotifyRoot,
}

func TestSSDPAndUPnPNoMatchAllocs(t *testing.T) {
	ctx := newUPnPTestContext()
	ssdp, upnp := NewSSDPDetector(SSDPOptions{}), NewUPnPDetector(UPnPOptions{})
	for name, p := range upnpNoMatchPayloads {
		payload := []byte(p)
		uf := upnpUDPFlow("10.0.0.2:40000", "239.255.255.250:1900")
		tf := upnpTCPFlow("10.0.0.2:40000", "10.0.0.1:80")
		seg := &Segment{Dir: ToServer, Payload: payload}
		if name != "TCP NOTIFY *" {
			if n := testing.AllocsPerRun(100, func() { ssdp.Inspect(ctx, uf, seg) }); n != 0 {
				t.Errorf("SSDP %s: %v allocs", name, n)
			}
		}
		if n := testing.AllocsPerRun(100, func() { upnp.Inspect(ctx, tf, seg) }); n != 0 {
			t.Errorf("UPnP %s: %v allocs", name, n)
		}
		if uf.Labels != 0 || tf.Labels != 0 || uf.Extension() != nil || tf.Extension() != nil {
			t.Errorf("%s: labelled or state kept", name)
		}
	}
	// A recognised SSDP flow reading more datagrams of the same kind only
	// parses them.
	f := upnpUDPFlow("192.168.1.1:9489", "239.255.255.250:1900")
	seg := &Segment{Dir: ToServer, Payload: []byte(ssdpNotifyRoot)}
	ssdp.Inspect(ctx, f, seg)
	seg.Index = 1
	if n := testing.AllocsPerRun(100, func() { ssdp.Inspect(ctx, f, seg) }); n != 0 {
		t.Errorf("repeat NOTIFY: %v allocs", n)
	}
}

func BenchmarkSSDPDetector(b *testing.B) {
	d := NewSSDPDetector(SSDPOptions{})
	ctx := newUPnPTestContext()
	b.Run("match-igd-search", func(b *testing.B) {
		p := []byte(ssdpWindowsSearch)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			f := upnpUDPFlow("192.168.0.13:62923", "239.255.255.250:1900")
			d.Inspect(ctx, f, &Segment{Payload: p})
		}
	})
	b.Run("match-response-location", func(b *testing.B) {
		p := []byte(ssdpIGDResponse)
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			f := upnpUDPFlow("192.168.1.1:1901", "192.168.1.20:50000")
			d.Inspect(ctx, f, &Segment{Payload: p})
		}
	})
	b.Run("nomatch-wsd", func(b *testing.B) {
		p := []byte(upnpWSDiscovery)
		f := upnpUDPFlow("10.0.0.2:40000", "239.255.255.250:3702")
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			d.Inspect(ctx, f, &Segment{Payload: p})
		}
	})
	b.Run("nomatch-quic", func(b *testing.B) {
		p := []byte(upnpQUICInitial)
		f := upnpUDPFlow("10.0.0.2:40000", "192.0.2.1:443")
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			d.Inspect(ctx, f, &Segment{Payload: p})
		}
	})
}

func BenchmarkUPnPDetector(b *testing.B) {
	d := NewUPnPDetector(UPnPOptions{})
	b.Run("match-addportmapping", func(b *testing.B) {
		req := []byte(upnpPost("AddPortMapping", upnpAddBody))
		resp := []byte(upnpSOAPResponse(200, ""))
		b.ReportAllocs()
		b.SetBytes(int64(len(req) + len(resp)))
		for i := 0; i < b.N; i++ {
			ctx := newUPnPTestContext()
			f := upnpTCPFlow("192.168.1.20:40000", "192.168.1.1:5000")
			d.Inspect(ctx, f, &Segment{Dir: ToServer, Payload: req})
			d.Inspect(ctx, f, &Segment{Dir: ToClient, Payload: resp})
		}
	})
	b.Run("nomatch-http-get", func(b *testing.B) {
		ctx := newUPnPTestContext()
		p := []byte(upnpNoMatchPayloads["HTTP GET"])
		f := upnpTCPFlow("10.0.0.2:40000", "10.0.0.1:80")
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			d.Inspect(ctx, f, &Segment{Payload: p})
		}
	})
	b.Run("nomatch-tls", func(b *testing.B) {
		ctx := newUPnPTestContext()
		p := []byte(upnpNoMatchPayloads["TLS"])
		f := upnpTCPFlow("10.0.0.2:40000", "10.0.0.1:443")
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			d.Inspect(ctx, f, &Segment{Payload: p})
		}
	})
}

// FuzzSSDP feeds arbitrary datagrams to the SSDP detector (twice, as a
// flow) and to its URL parser.
func FuzzSSDP(f *testing.F) {
	for _, s := range []string{ssdpIGDSearch, ssdpIGDResponse, ssdpPNRPSearch, ssdpNotifyRoot, ssdpByeIGD, ssdpV6Response, upnpPlexGDM, upnpWSDiscovery, upnpNATPMP} {
		f.Add([]byte(s))
	}
	d := NewSSDPDetector(SSDPOptions{})
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := newUPnPTestContext()
		fl := upnpUDPFlow("192.168.1.1:1900", "239.255.255.250:1900")
		upnpRun(ctx, d, fl, []upnpStep{{data: string(data)}, {data: string(data)}})
		var m ssdpMessage
		parseSSDP(data, &m)
		upnpParseHTTPURL(data)
		ssdpMaxAge(data)
		if fl.Labels.Has(LabelSSDPIGDSearch) && !fl.Labels.Has(LabelSSDP) {
			t.Fatal("igd without ssdp")
		}
	})
}

// FuzzUPnPSOAP feeds arbitrary bytes as a request (split in two segments
// at a point the input picks) and as the response to a real
// AddPortMapping, and through the body parsers.
func FuzzUPnPSOAP(f *testing.F) {
	f.Add([]byte(upnpPost("AddPortMapping", upnpAddBody)))
	f.Add([]byte(upnpFault(718, "ConflictInMappingEntry")))
	f.Add([]byte(upnpPost("DeletePortMapping", upnpDeleteBody(1, "UDP"))))
	d := NewUPnPDetector(UPnPOptions{MaxMessage: 2048})
	req := upnpPost("AddPortMapping", upnpAddBody)
	f.Fuzz(func(t *testing.T, data []byte) {
		split := 0
		if len(data) > 0 {
			split = int(data[0]) * len(data) / 256
		}
		ctx := newUPnPTestContext()
		fl := upnpTCPFlow("192.168.1.20:40000", "192.168.1.1:5000")
		upnpRun(ctx, d, fl, []upnpStep{{data: string(data[:split])}, {data: string(data[split:])}, {dir: ToClient, data: string(data)}})
		ctx = newUPnPTestContext()
		fl = upnpTCPFlow("192.168.1.20:40000", "192.168.1.1:5000")
		upnpRun(ctx, d, fl, []upnpStep{{data: req}, {dir: ToClient, data: string(data[:split])}, {dir: ToClient, data: string(data[split:])}})
		upnpParseArgs(data)
		upnpUnescape(data)
		upnpDechunk(data, []byte{})
		if ctx.Expect.Len() > 3 {
			t.Fatalf("%d expectations from one mapping", ctx.Expect.Len())
		}
		_ = bytes.MinRead
	})
}
