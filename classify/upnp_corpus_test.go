package classify

// Corpus tests of the SSDP, UPnP and DNS detectors: the shared real
// captures replayed through the classifier (corpus_harness_test.go) and
// checked against tshark's oracle.

import (
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rasentry/rasentry/internal/corpus"
)

// upnpWantLabels turns a tshark oracle label into the labels the detectors
// must give the flow.
func upnpWantLabels(e corpus.Entry, o corpus.OracleFlow) LabelSet {
	var s LabelSet
	switch {
	case strings.HasPrefix(o.TsharkLabel, "ssdp"):
		// Plex GDM: a bare "M-SEARCH * HTTP/1.1" line with no SSDP header
		// to UDP 32412 is not UPnP (decision documented in ssdp.go).
		if filepath.Base(e.Path) == "ndpi-ssdp-m-search.pcap" {
			return 0
		}
		s = s.With(LabelSSDP)
	case strings.HasPrefix(o.TsharkLabel, "upnp-http"):
		s = s.With(LabelUPnPControl)
		if strings.Contains(o.TsharkLabel, "SOAP:AddPortMapping") || strings.Contains(o.TsharkLabel, "SOAP:AddAnyPortMapping") {
			s = s.With(LabelUPnPPortmapAdd)
		}
		if strings.Contains(o.TsharkLabel, "SOAP:DeletePortMapping") {
			s = s.With(LabelUPnPPortmapDelete)
		}
	}
	return s
}

var upnpFamilyLabels = LabelSet(0).With(LabelSSDP).With(LabelSSDPIGDSearch).With(LabelUPnPControl).
	With(LabelUPnPPortmapAdd).With(LabelUPnPPortmapDelete)

var dnsFamilyLabels = LabelSet(0).With(LabelDNSTeredoServer).With(LabelDNSPNRPSeed)

// upnpSharpRDP is the RDP capture whose SSDP flow the UPnP oracle lists.
const upnpSharpRDP = "rdp/pcapattack-lm-rdp-sharprdp.pcapng"

// TestUPnPCorpus replays every UPnP capture and the SSDP flow of the
// SharpRDP capture: each oracle flow must carry the expected labels, and
// no other flow may carry a UPnP label.
func TestUPnPCorpus(t *testing.T) {
	keep := func(e corpus.Entry) bool { return e.Family == "upnp" || e.Path == upnpSharpRDP }
	corpusEach(t, keep, func(t *testing.T, e corpus.Entry, r *corpusReplay) {
		oracle := corpusOracleFamily(t, e, "upnp")
		for _, o := range oracle {
			fs := r.Pair(o.Proto, o.Client, o.Server)
			if len(fs) == 0 {
				t.Errorf("%s %v > %v: flow not seen", o.Proto, o.Client, o.Server)
				continue
			}
			want := upnpWantLabels(e, o)
			got := corpusLabels(fs) & upnpFamilyLabels
			if got&want != want || (want == 0 && got != 0) {
				t.Errorf("%s %v > %v (%s): labels %v, want %v", o.Proto, o.Client, o.Server, o.TsharkLabel, got.Strings(), want.Strings())
			}
		}
		extra := 0
		for _, f := range r.Flows {
			if _, listed := oracle[f.Pair()]; !listed && f.Labels&upnpFamilyLabels != 0 {
				// The oracle lists HTTP flows with SOAP or UPnP XML;
				// GENA SUBSCRIBE/UNSUBSCRIBE carry neither but are
				// UPnP control all the same.
				if ev, _ := f.GetEvidence(UPnPEvidenceKey).(*UPnPEvidence); ev != nil && ev.Kind == "gena" &&
					(ev.Method == "SUBSCRIBE" || ev.Method == "UNSUBSCRIBE") && f.Labels&upnpFamilyLabels == LabelSet(0).With(LabelUPnPControl) {
					extra++
					continue
				}
				t.Errorf("flow %v > %v not in the oracle got %v", f.Client, f.Server, f.Labels.Strings())
			}
			if f.Labels&dnsFamilyLabels != 0 {
				t.Errorf("flow %v > %v got DNS labels %v", f.Client, f.Server, f.Labels.Strings())
			}
		}
		if extra > 0 {
			t.Logf("%d GENA SUBSCRIBE flows labelled upnp-control beyond the oracle", extra)
		}
		if testing.Verbose() {
			upnpCorpusLog(t, r)
		}
	})
}

func upnpCorpusLog(t *testing.T, r *corpusReplay) {
	for _, f := range r.Flows {
		if f.Labels != 0 {
			t.Log(f.describe(UPnPEvidenceKey))
		}
	}
	var ex []string
	for _, e := range r.Expect {
		ex = append(ex, fmt.Sprintf("%v:%d/%d %s %q peer=%v met=%d ttl=%v", e.Addr, e.Port, e.Proto, e.Reason, e.Service, e.Peer, e.Met, e.Expires.Sub(e.Created)))
	}
	slices.Sort(ex)
	for _, e := range ex {
		t.Log("expect", e)
	}
}

// TestUPnPCorpusWindowsIGD checks the expectations of the most
// Remote-Assistance-like capture: a Windows 7 host maps UDP 59085 for
// Teredo and then asks for the router's external address.
func TestUPnPCorpusWindowsIGD(t *testing.T) {
	r := corpusRun(t, corpusEntry(t, "upnp/suricata-verify-output-eve-ftp-data.pcap"))
	type want struct {
		addr   string
		port   uint16
		proto  uint8
		reason string
	}
	for _, w := range []want{
		{"192.168.0.1", 80, ProtoTCP, "upnp-description"},
		{"192.168.0.1", 59085, ProtoUDP, "upnp-portmap"},
		{"192.168.0.13", 59085, ProtoUDP, "upnp-portmap"},
		{"99.224.90.102", 59085, ProtoUDP, "upnp-portmap"}, // the WAN address from GetExternalIPAddress
	} {
		found := false
		for _, e := range r.Expect {
			if e.Addr == netip.MustParseAddr(w.addr) && e.Port == w.port && e.Proto == w.proto && e.Reason == w.reason {
				found = true
				if w.reason == "upnp-portmap" && e.Service != "Teredo" {
					t.Errorf("%v: service %q, want Teredo", w, e.Service)
				}
			}
		}
		if !found {
			t.Errorf("no expectation %v", w)
		}
	}
	// The SOAP flows to port 80 met the LOCATION expectation.
	fs := r.Pair("tcp", netip.MustParseAddrPort("192.168.0.13:59885"), netip.MustParseAddrPort("192.168.0.1:80"))
	if len(fs) == 0 {
		t.Fatal("AddPortMapping flow not seen")
	}
	f := fs[0]
	if f.Expected == nil || f.Expected.Reason != "upnp-description" {
		t.Errorf("AddPortMapping flow did not meet the upnp-description expectation")
	}
	ev, _ := f.GetEvidence(UPnPEvidenceKey).(*UPnPEvidence)
	if ev == nil || ev.Mapping == nil {
		t.Fatalf("no mapping evidence: %+v", ev)
	}
	m := ev.Mapping
	if ev.SOAPAction != "AddPortMapping" || ev.Status != 200 || m.ExternalPort != 59085 || m.Protocol != "UDP" ||
		m.InternalClient != "192.168.0.13" || m.InternalPort != 59085 || m.Description != "Teredo" ||
		m.LeaseDuration == nil || *m.LeaseDuration != 0 || m.Enabled == nil || !*m.Enabled ||
		ev.UserAgent != "Microsoft-Windows/6.1 UPnP/1.0" || ev.ServiceType != "urn:schemas-upnp-org:service:WANIPConnection:1" {
		t.Errorf("evidence %+v mapping %+v", *ev, *m)
	}
	// The IGD search and the unicast reply from port 1901.
	for _, c := range [][2]string{
		{"192.168.0.13:62923", "239.255.255.250:1900"},
		{"192.168.0.1:1901", "192.168.0.13:62923"},
	} {
		f := corpusWith(r.Pair("udp", netip.MustParseAddrPort(c[0]), netip.MustParseAddrPort(c[1])), LabelSSDPIGDSearch)
		if f == nil || f.AppProto != AppSSDP {
			t.Errorf("%v: want ssdp-igd-search", c)
		}
	}
}

// TestUPnPCorpusNegatives replays the negative captures and every other
// family: no SSDP/UPnP label except the SharpRDP SSDP flow, and no DNS
// label anywhere (none of the captures looks up a Teredo or PNRP name).
func TestUPnPCorpusNegatives(t *testing.T) {
	dnsFlows := 0
	keep := func(e corpus.Entry) bool { return e.Family != "upnp" }
	corpusEach(t, keep, func(t *testing.T, e corpus.Entry, r *corpusReplay) {
		t.Logf("%d packets, %d not decoded to IP, %d flows", r.Stats.Packets, r.Stats.UnsupportedLink+r.Stats.NotIP+r.Stats.Truncated+r.Stats.MalformedIP, len(r.Flows))
		for _, f := range r.Flows {
			if f.AppProto == AppDNS {
				dnsFlows++
			}
			if f.Labels&dnsFamilyLabels != 0 {
				t.Errorf("%v > %v: DNS label %v", f.Client, f.Server, f.Labels.Strings())
			}
			if f.Labels&upnpFamilyLabels == 0 {
				continue
			}
			if e.Path == upnpSharpRDP && f.Server == netip.MustParseAddrPort("239.255.255.250:1900") {
				continue
			}
			t.Errorf("%v > %v: UPnP label %v", f.Client, f.Server, f.Labels.Strings())
		}
	})
	if dnsFlows == 0 {
		t.Errorf("no DNS flow recognised in the whole corpus: the negative DNS files were not read")
	}
	t.Logf("%d DNS flows recognised, none for a listed name", dnsFlows)
}
