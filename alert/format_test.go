package alert

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/rasentry/rasentry/classify"
)

// EncodeFlow: EVE straight from the flow (AppendFlow) with the
// community_id as key; ECS through the record; an EVE record handed to an
// ECS encoder is refused rather than passed through in the wrong layout.
func TestEncodeFlow(t *testing.T) {
	f := &classify.Flow{ID: 7, Proto: classify.ProtoUDP, Client: netip.MustParseAddrPort("10.0.0.1:5000"),
		Server: netip.MustParseAddrPort("10.0.0.2:3544"), AppProto: classify.AppTeredo}
	f.SetTimes(time.Unix(1767603600, 0), time.Unix(1767603601, 0))
	o := Options{Interface: "eth1"}
	eve, err := NewEncoder(FormatEVE, EncoderOptions{}).EncodeFlow(f, o)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := AppendFlow(nil, f, o)
	if !bytes.Equal(eve.JSON, want) || eve.Type != "flow" || eve.PartitionKey() != f.CommunityID(0) || !eve.Time.Equal(f.Last()) {
		t.Errorf("EVE: %+v", eve)
	}
	ecsEnc := NewEncoder(FormatECS, EncoderOptions{ObserverHostname: "gw"})
	ecs, err := ecsEnc.EncodeFlow(f, o)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(ecs.JSON, &doc); err != nil || doc["@timestamp"] != "2026-01-05T09:00:01.000000Z" || ecs.PartitionKey() != eve.PartitionKey() {
		t.Errorf("ECS: %s (%v)", ecs.JSON, err)
	}
	if _, err := ecsEnc.Encode(eve); err == nil || !strings.Contains(err.Error(), "already written as EVE") {
		t.Errorf("EVE through an ECS encoder: %v", err)
	}
	if CommunityIDOf([]byte(`{"a":1}`)) != "" || CommunityIDOf(want) != f.CommunityID(0) {
		t.Error("CommunityIDOf")
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"": FormatEVE, "eve": FormatEVE, "ecs": FormatECS} {
		if got, err := ParseFormat(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	if _, err := ParseFormat("cef"); err == nil || err.Error() != `"cef" is not a record format (want eve or ecs)` {
		t.Errorf("cef: %v", err)
	}
}

func BenchmarkEncodeFlowEVE(b *testing.B) {
	f := &classify.Flow{ID: 7, Proto: classify.ProtoTCP, Client: netip.MustParseAddrPort("10.0.0.1:5000"),
		Server: netip.MustParseAddrPort("10.0.0.2:3389"), AppProto: classify.AppRDP}
	f.SetTimes(time.Unix(1767603600, 0), time.Unix(1767603601, 0))
	enc := NewEncoder(FormatEVE, EncoderOptions{})
	b.ReportAllocs()
	for b.Loop() {
		enc.EncodeFlow(f, Options{})
	}
}

func BenchmarkEncodeFlowECS(b *testing.B) {
	f := &classify.Flow{ID: 7, Proto: classify.ProtoTCP, Client: netip.MustParseAddrPort("10.0.0.1:5000"),
		Server: netip.MustParseAddrPort("10.0.0.2:3389"), AppProto: classify.AppRDP}
	f.SetTimes(time.Unix(1767603600, 0), time.Unix(1767603601, 0))
	enc := NewEncoder(FormatECS, EncoderOptions{})
	b.ReportAllocs()
	for b.Loop() {
		enc.EncodeFlow(f, Options{})
	}
}
