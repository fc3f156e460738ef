package alert

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/rasentry/rasentry/classify"
)

// stdJSON encodes r the way encoding/json does with HTML escaping off.
func stdJSON(t *testing.T, r any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `quote " and \ backslash`, "ctl \x00\x01\x1f\t\n\r\b\f", "<html>&amp;",
		"utf8 é 日本", "bad \xff\xfe utf8", "sep \u2028 \u2029", "emoji 🙂"} {
		want := stdJSON(t, s)
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	}
}

type testEvidence struct {
	Cookie   string   `json:"cookie"`
	Channels []string `json:"channels"`
	Note     string   `json:"note,omitempty"`
}

func TestFlowRecordAppendJSONMatchesEncodingJSON(t *testing.T) {
	f := &classify.Flow{ID: 42, Proto: classify.ProtoTCP,
		Client: netip.MustParseAddrPort("10.0.0.1:50000"), Server: netip.MustParseAddrPort("[2001:db8::1]:3389"),
		VLAN: 7, AppProto: classify.AppRDP}
	f.SetTimes(time.Unix(1700000000, 123456789), time.Unix(1700000005, 0))
	f.Pkts = [2]uint64{3, 4}
	f.Bytes = [2]uint64{300, 400}
	f.AddLabel(classify.LabelRDP, classify.ConfidenceHigh)
	f.AddLabel(classify.LabelRDPRACandidate, classify.ConfidenceMedium)
	f.SetEvidence("rdp", &testEvidence{Cookie: "mstshash=<a&b>", Channels: []string{"encomsp", "remdesk"}})
	f.Ext().Tunnel = &classify.Tunnel{SrcIP: netip.MustParseAddr("1.2.3.4"), SrcPort: 3544, DestIP: netip.MustParseAddr("5.6.7.8"), DestPort: 40000, Proto: "UDP", Depth: 1, Type: "teredo", FlowID: 9}
	f.Ext().Session = &classify.Session{ID: "s1", Mode: classify.ModeOffer}
	icmp := &classify.Flow{ID: 1, Proto: classify.ProtoICMP, Client: netip.MustParseAddrPort("10.0.0.1:0"), Server: netip.MustParseAddrPort("10.0.0.2:0"), ICMPType: 8}
	for _, fl := range []*classify.Flow{f, icmp} {
		for _, o := range []Options{{}, {Interface: "eth0", CommunityIDSeed: 3}} {
			r := NewFlowRecord(fl, o)
			got, err := r.AppendJSON(nil)
			if err != nil {
				t.Fatal(err)
			}
			if want := stdJSON(t, r); !bytes.Equal(got, want) {
				t.Errorf("AppendJSON:\n got %s\nwant %s", got, want)
			}
		}
	}
}
