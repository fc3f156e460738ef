package alert

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rasentry/rasentry/classify"
)

var update = flag.Bool("update", false, "rewrite testdata/records.*.jsonl from the current output")

// goldenRecords is one record of every type and shape: TCP with evidence
// and a session, ICMP, a Teredo inner flow with VLAN, alerts allowed and
// blocked, a session, stats with sinks.
func goldenRecords() []Record {
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	rdp := &classify.Flow{ID: 1209868111981850, Proto: classify.ProtoTCP,
		Client: netip.MustParseAddrPort("10.20.0.15:54464"), Server: netip.MustParseAddrPort("10.30.0.80:3389"),
		AppProto: classify.AppRDP, State: classify.StateClosed, Reason: classify.EndClosed}
	rdp.SetTimes(t0, t0.Add(75*time.Second))
	rdp.Pkts = [2]uint64{42, 40}
	rdp.Bytes = [2]uint64{9000, 120000}
	rdp.AddLabel(classify.LabelRDP, classify.ConfidenceDefinitive)
	rdp.AddLabel(classify.LabelRDPRACandidate, classify.ConfidenceMedium)
	rdp.SetEvidence("rdp", &testEvidence{Cookie: "mstshash=<helper&co>", Channels: []string{"encomsp", "remdesk"}})
	rdp.Ext().Session = &classify.Session{ID: "ra-1", Mode: classify.ModeOffer}

	icmp := &classify.Flow{ID: 17, Proto: classify.ProtoICMPv6, Client: netip.MustParseAddrPort("[2001:db8::1]:0"),
		Server: netip.MustParseAddrPort("[2001:db8::2]:0"), ICMPType: 128, Reason: classify.EndTimeout}
	icmp.SetTimes(t0, t0.Add(time.Second))

	teredo := &classify.Flow{ID: 99, Proto: classify.ProtoTCP, VLAN: 20,
		Client: netip.MustParseAddrPort("[2001:0:4136:e378:8000:63bf:3fff:fdd2]:49200"),
		Server: netip.MustParseAddrPort("[2001:0:4136:e378:8000:63bf:3fff:fdd3]:3389"),
		State:  classify.StateEstablished, Reason: classify.EndShutdown}
	teredo.SetTimes(t0, t0.Add(2*time.Second))
	teredo.AddLabel(classify.LabelTeredo, classify.ConfidenceHigh)
	teredo.Ext().Tunnel = &classify.Tunnel{SrcIP: netip.MustParseAddr("192.0.2.10"), SrcPort: 50000,
		DestIP: netip.MustParseAddr("198.51.100.7"), DestPort: 3544, Proto: "UDP", Depth: 1, Type: "teredo", FlowID: 98}

	o := Options{Interface: "eth0"}
	allowed := NewAlertRecord(rdp, classify.ToServer, t0.Add(2*time.Second), Decided{Decision: "alert", SignatureID: 9000101, Rev: 2,
		Signature: "rasentry: Offer Remote Assistance from outside the helpers group", Severity: 2,
		PolicyRule: "offer-helpers-only", NetworkDirection: "internal",
		Metadata: map[string][]string{"mode": {"offer"}, "policy": {"offer-only"}}}, o)
	blocked := NewAlertRecord(teredo, classify.ToClient, t0.Add(time.Second), Decided{Decision: "block", Enforced: true,
		SignatureID: 9000201, Rev: 1, Signature: "rasentry: RDP over Teredo", Severity: 1, PolicyRule: "no-teredo",
		NetworkDirection: "outbound"}, Options{})
	sess := NewSessionRecord(&classify.Session{ID: "ra-1", Mode: classify.ModeOffer,
		Novice: netip.MustParseAddr("10.30.0.80"), Expert: netip.MustParseAddr("10.20.0.15"),
		Confidence: classify.ConfidenceHigh, First: t0, Last: t0.Add(75 * time.Second), Why: "DCOM activation of the RA offer interface, then RDP",
		Members: []classify.SessionMember{{FlowID: 5, Labels: classify.LabelSet(0).With(classify.LabelDCERPC).With(classify.LabelDCOMActivation),
			Client: netip.MustParseAddrPort("10.20.0.15:50001"), Server: netip.MustParseAddrPort("10.30.0.80:135")},
			{FlowID: rdp.ID, Labels: rdp.Labels, Client: rdp.Client, Server: rdp.Server}}}, rdp, t0.Add(75*time.Second), o)
	stats := NewStatsRecord(t0.Add(time.Minute), Stats{Uptime: 60,
		Capture:  CaptureStats{Packets: 123456, Bytes: 98765432, KernelDrops: 3, UserDrops: 1},
		Flow:     FlowStats{Active: 120, Ended: 4500, Evicted: 2},
		Labels:   map[string]uint64{"rdp": 3, "dcerpc": 7},
		Sessions: SessionStats{Formed: 2, Active: 1, ByMode: map[string]uint64{"offer": 2}},
		Alerts: AlertStats{Total: 5, Suppressed: 9, ByRule: []RuleStats{{Rule: "offer-helpers-only", Action: "alert", Alerts: 4, Suppressed: 9},
			{Rule: "no-teredo", Action: "block", Alerts: 1}}},
		Verdicts: map[string]uint64{"accept": 123400, "drop": 56},
		Reloads:  ReloadStats{OK: 1},
		Sinks: []SinkStats{{Name: "siem", Type: "kafka", QueueDepth: 10, QueueCapacity: 10000, SpoolBytes: 4096, SpoolRecords: 40,
			SpoolCapacity: 256 << 20, Written: 4600, Delivered: 4550, Spooled: 40, Dropped: DropCounts{SpoolFull: 0},
			Errors: 3, LastError: "alert: sink siem: kafka k1:9092 topic rasentry: unable to dial"}}})
	return []Record{NewFlowRecord(rdp, o), NewFlowRecord(icmp, Options{}), NewFlowRecord(teredo, Options{}),
		allowed, blocked, sess, stats}
}

// TestRecordGolden writes every record shape in both formats and compares
// with testdata/records.eve.jsonl and records.ecs.jsonl (the schema tests
// validate these files). go test ./alert -run RecordGolden -update rewrites
// them.
func TestRecordGolden(t *testing.T) {
	for _, f := range []Format{FormatEVE, FormatECS} {
		enc := NewEncoder(f, EncoderOptions{ObserverHostname: "gw1", ObserverVersion: "1.0.0"})
		var got bytes.Buffer
		for _, r := range goldenRecords() {
			e, err := enc.Encode(r)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			got.Write(e.JSON)
			got.WriteByte('\n')
			if f == FormatEVE {
				// The queue's encoding is what a WriterSink writes.
				if want := stdJSON(t, r); !bytes.Equal(e.JSON, want) {
					t.Errorf("EVE %s:\n got %s\nwant %s", r.EventType(), e.JSON, want)
				}
			}
		}
		path := filepath.Join("testdata", "records."+string(f)+".jsonl")
		if *update {
			if err := os.MkdirAll("testdata", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (go test ./alert -run RecordGolden -update)", err)
		}
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("%s differs from %s:\n%s", f, path, got.String())
		}
	}
}
