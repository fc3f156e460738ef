// Package alert holds rasentry's output records (EVE-compatible JSON, the
// shape Suricata writes, so SOC pipelines ingest them unchanged) and the
// sinks that deliver them.
package alert

import (
	"net/netip"
	"time"

	"github.com/rasentry/rasentry/classify"
)

// TimeFormat is EVE's timestamp layout.
const TimeFormat = "2006-01-02T15:04:05.000000-0700"

// Time is a timestamp written in EVE's layout, in UTC so that the same
// input gives the same bytes on every machine.
type Time time.Time

// MarshalJSON writes the EVE layout.
func (t Time) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, len(TimeFormat)+2)
	b = append(b, '"')
	b = time.Time(t).UTC().AppendFormat(b, TimeFormat)
	return append(b, '"'), nil
}

// Record is one output record.
type Record interface {
	// EventType is the record's "event_type": flow, alert, ra_session, stats.
	EventType() string
}

// FlowInfo is EVE's "flow" object.
type FlowInfo struct {
	PktsToServer  uint64 `json:"pkts_toserver"`
	PktsToClient  uint64 `json:"pkts_toclient"`
	BytesToServer uint64 `json:"bytes_toserver"`
	BytesToClient uint64 `json:"bytes_toclient"`
	Start         Time   `json:"start"`
	End           *Time  `json:"end,omitempty"`
	Age           *int64 `json:"age,omitempty"`
	State         string `json:"state,omitempty"`
	Reason        string `json:"reason,omitempty"`
	// The client/server endpoints (alert records; flow records carry them
	// at the top level already).
	SrcIP    string `json:"src_ip,omitempty"`
	DestIP   string `json:"dest_ip,omitempty"`
	SrcPort  uint16 `json:"src_port,omitempty"`
	DestPort uint16 `json:"dest_port,omitempty"`
}

// Rasentry is the record's "rasentry" object: labels, evidence per
// detector, and, once the policy engine and session assembly have spoken,
// their results.
type Rasentry struct {
	Labels           []string
	Confidence       map[string]string
	Evidence         *classify.Evidence
	Session          string
	Mode             string
	Decision         string
	Enforced         *bool
	PolicyRule       string
	NetworkDirection string
}

// MarshalJSON writes the fields in a fixed order, evidence items under
// their detector names.
func (r Rasentry) MarshalJSON() ([]byte, error) { return r.appendJSON(nil) }

// FlowRecord is an `"event_type": "flow"` record, written when a flow ends.
type FlowRecord struct {
	Timestamp   Time             `json:"timestamp"`
	FlowID      uint64           `json:"flow_id"`
	InIface     string           `json:"in_iface,omitempty"`
	Type        string           `json:"event_type"`
	VLAN        []uint16         `json:"vlan,omitempty"`
	SrcIP       string           `json:"src_ip"`
	SrcPort     *uint16          `json:"src_port,omitempty"`
	DestIP      string           `json:"dest_ip"`
	DestPort    *uint16          `json:"dest_port,omitempty"`
	Proto       string           `json:"proto"`
	ICMPType    *uint8           `json:"icmp_type,omitempty"`
	ICMPCode    *uint8           `json:"icmp_code,omitempty"`
	CommunityID string           `json:"community_id"`
	AppProto    string           `json:"app_proto,omitempty"`
	Flow        FlowInfo         `json:"flow"`
	Tunnel      *classify.Tunnel `json:"tunnel,omitempty"`
	Rasentry    Rasentry         `json:"rasentry"`
}

// EventType returns "flow".
func (*FlowRecord) EventType() string { return "flow" }

// Options shape records.
type Options struct {
	CommunityIDSeed uint16
	Interface       string // in_iface
}

// NewFlowRecord builds the record of an ended flow.
func NewFlowRecord(f *classify.Flow, o Options) *FlowRecord {
	end := Time(f.Last())
	age := int64(f.Age() / time.Second)
	r := &FlowRecord{
		Timestamp:   Time(f.Last()),
		FlowID:      f.ID,
		InIface:     o.Interface,
		Type:        "flow",
		SrcIP:       addrString(f.Client.Addr()),
		DestIP:      addrString(f.Server.Addr()),
		Proto:       classify.ProtoName(f.Proto),
		CommunityID: f.CommunityID(o.CommunityIDSeed),
		AppProto:    f.AppProto.String(),
		Flow: FlowInfo{
			PktsToServer:  f.Pkts[classify.ToServer],
			PktsToClient:  f.Pkts[classify.ToClient],
			BytesToServer: f.Bytes[classify.ToServer],
			BytesToClient: f.Bytes[classify.ToClient],
			Start:         Time(f.Start()),
			End:           &end,
			Age:           &age,
			State:         f.State.String(),
			Reason:        f.Reason.String(),
		},
		Rasentry: rasentryOf(f),
	}
	if f.VLAN != 0 {
		r.VLAN = []uint16{f.VLAN}
	}
	switch f.Proto {
	case classify.ProtoTCP, classify.ProtoUDP, classify.ProtoSCTP:
		sp, dp := f.Client.Port(), f.Server.Port()
		r.SrcPort, r.DestPort = &sp, &dp
	case classify.ProtoICMP, classify.ProtoICMPv6:
		t, c := f.ICMPType, f.ICMPCode
		r.ICMPType, r.ICMPCode = &t, &c
	}
	if f.Proto != classify.ProtoTCP {
		r.Flow.State = ""
	}
	if x := f.Extension(); x != nil {
		r.Tunnel = x.Tunnel
	}
	return r
}

func rasentryOf(f *classify.Flow) Rasentry {
	r := Rasentry{Labels: f.Labels.Strings()}
	x := f.Extension()
	if x == nil {
		return r
	}
	if x.Evidence.Len() > 0 {
		r.Evidence = &x.Evidence
	}
	for _, l := range f.Labels.Labels() {
		if c := f.LabelConfidence(l); c != 0 {
			if r.Confidence == nil {
				r.Confidence = make(map[string]string, f.Labels.Len())
			}
			r.Confidence[l.String()] = c.String()
		}
	}
	if x.Session != nil {
		r.Session, r.Mode = x.Session.ID, string(x.Session.Mode)
	}
	if v := x.Verdict; v.Decision != "" {
		r.Decision, r.PolicyRule, r.NetworkDirection = v.Decision, v.PolicyRule, v.NetworkDirection
	}
	return r
}

func addrString(a netip.Addr) string { return a.Unmap().String() }
