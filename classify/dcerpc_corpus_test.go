package classify

// Corpus tests of the DCE/RPC detector: the shared real captures replayed
// through the classifier (corpus_harness_test.go) and checked against
// tshark's oracle, with nDPI's as the second word.

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rasentry/rasentry/internal/corpus"
)

// dcerpcIsSlammer reports whether an oracle row is one of the two SQL
// Slammer datagrams that tshark's heuristic calls DCE/RPC (README.md).
func dcerpcIsSlammer(e corpus.Entry, o corpus.OracleFlow) bool {
	return strings.HasPrefix(filepath.Base(e.Path), "markofu-ppa-evilprogram") && o.Proto == "udp" && o.Server.Port() == 1434
}

// TestDCERPCCorpus replays every shared real capture: each DCE/RPC flow the
// oracles list (except port-only ones and the Slammer near-miss) must be
// labelled dcerpc, activation flows dcom-activation, and no other flow of any
// capture — the negatives above all — may be labelled dcerpc.
func TestDCERPCCorpus(t *testing.T) {
	matched := 0
	corpusEach(t, nil, func(t *testing.T, e corpus.Entry, r *corpusReplay) {
		transport := 0
		for _, f := range r.Flows {
			if f.Proto == ProtoTCP || f.Proto == ProtoUDP {
				transport++
			}
		}
		if transport == 0 {
			t.Fatalf("no TCP/UDP flow decoded")
		}
		want := map[string]bool{}
		for _, o := range corpusOracle(t, e) {
			if o.Family != "dcerpc" || o.PortOnly() {
				continue
			}
			fs := r.Pair(o.Proto, o.Client, o.Server)
			labels := corpusLabels(fs)
			if dcerpcIsSlammer(e, o) {
				if labels.Has(LabelDCERPC) {
					t.Errorf("%s %v > %v: SQL Slammer datagram labelled dcerpc", o.Proto, o.Client, o.Server)
				}
				continue
			}
			want[corpusPair(o.Proto, o.Client, o.Server)] = true
			if len(fs) == 0 {
				t.Errorf("%s %v > %v: flow not found in capture", o.Proto, o.Client, o.Server)
				continue
			}
			f := corpusWith(fs, LabelDCERPC)
			if f == nil {
				t.Errorf("%s %v > %v (%s): not labelled dcerpc", o.Proto, o.Client, o.Server, o.TsharkLabel)
				continue
			}
			matched++
			if f.AppProto != AppDCERPC {
				t.Errorf("%s %v > %v: app_proto %q", o.Proto, o.Client, o.Server, f.AppProto)
			}
			if (strings.Contains(o.TsharkLabel, "ISystemActivator.") || strings.Contains(o.TsharkLabel, "IActivation.")) && !labels.Has(LabelDCOMActivation) {
				t.Errorf("%s %v > %v (%s): not labelled dcom-activation", o.Proto, o.Client, o.Server, o.TsharkLabel)
			}
			if labels.Has(LabelRADCOMOffer) {
				t.Errorf("%s %v > %v: ra-dcom-offer on a capture without Remote Assistance", o.Proto, o.Client, o.Server)
			}
			if testing.Verbose() {
				t.Log(corpusDescribe(fs, dcerpcName))
			}
		}
		ndpi, _ := os.ReadFile(filepath.Join(corpus.Root(), "oracles", e.Family, filepath.Base(e.Path)+".ndpi.txt"))
		for _, f := range r.Flows {
			if f.Has(LabelDCERPC) && !want[f.Pair()] && !dcerpcNDPISays(ndpi, f.Client, f.Server) {
				t.Errorf("unexpected dcerpc label: %s", f.describe(dcerpcName))
			}
		}
	})
	t.Logf("%d oracle DCE/RPC flows labelled", matched)
}

// dcerpcNDPISays reports whether nDPI's per-flow output calls the flow
// between a and b DCE_RPC: the second oracle, for flows tshark could not
// dissect (it marks the mid-stream MAPI flows of zeek-dce-rpc-mapi.pcap
// malformed).
func dcerpcNDPISays(ndpi []byte, a, b netip.AddrPort) bool {
	x, y := a.String(), b.String()
	for _, line := range strings.Split(string(ndpi), "\n") {
		if strings.Contains(line, "/DCE_RPC]") && strings.Contains(line, x) && strings.Contains(line, y) {
			return true
		}
	}
	return false
}

// TestDCERPCCorpusExpectations checks the listeners announced in real
// captures and that the follow-on connections carry expected_from.
func TestDCERPCCorpusExpectations(t *testing.T) {
	cases := []struct {
		file     string
		server   string // the follow-on connection's server
		reason   string
		announce bool // the announcing flow's answer is readable
	}{
		// ept_map answers in clear, then the service's dynamic port.
		{"dcerpc/suricata-verify-dcerpc-zerologon.pcap", "172.16.5.58:49668", "epm-map", true},
		{"dcerpc/otrf-empire-psexec-dcerpc-tcp-svcctl-ws5.pcap", "172.18.39.6:49726", "epm-map", true},
		{"dcerpc/pcapattack-lm-psexec-smb-dcerpc-epm-svcctl.pcapng", "172.16.66.36:49688", "epm-map", true},
		{"dcerpc/zeek-dce-rpc-mapi.pcap", "192.168.0.2:4997", "epm-map", true},
		// An unauthenticated activation whose answer names host[60283];
		// the capture starts after the binds.
		{"dcerpc/pcapattack-lm-dcom-mmc20-application.pcapng", "172.16.66.36:60283", "dcom-activation", true},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			r := corpusRun(t, corpusEntry(t, tc.file))
			srv := netip.MustParseAddrPort(tc.server)
			var follow *corpusFlow
			announced := false
			for _, f := range r.Flows {
				ev, _ := f.GetEvidence(dcerpcName).(*DCERPCEvidence)
				if ev == nil {
					continue
				}
				for _, a := range ev.Announced {
					if a.Port == srv.Port() && a.Addr == srv.Addr().String() && a.Reason == tc.reason {
						announced = true
					}
				}
				if f.Server == srv && follow == nil {
					follow = f
				}
			}
			if announced != tc.announce {
				t.Errorf("announced %v = %v, want %v", srv, announced, tc.announce)
			}
			if follow == nil {
				t.Fatalf("no flow to %v", srv)
			}
			ev, _ := follow.GetEvidence(dcerpcName).(*DCERPCEvidence)
			if ev == nil || ev.ExpectedFrom == nil || ev.ExpectedFrom.Reason != tc.reason {
				t.Errorf("follow-on flow: expected_from missing or wrong: %s", follow.describe(dcerpcName))
			} else if testing.Verbose() {
				t.Logf("follow-on %s", follow.describe(dcerpcName))
			}
		})
	}
}
