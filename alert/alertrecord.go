package alert

import (
	"time"

	"github.com/rasentry/rasentry/classify"
)

// AlertInfo is EVE's "alert" object.
type AlertInfo struct {
	Action      string              `json:"action"` // "allowed" or "blocked" (blocked only when an enforcer blocked)
	GID         int                 `json:"gid"`
	SignatureID uint32              `json:"signature_id"`
	Rev         int                 `json:"rev"`
	Signature   string              `json:"signature"`
	Category    string              `json:"category"`
	Severity    int                 `json:"severity"`
	Metadata    map[string][]string `json:"metadata,omitempty"`
}

// AlertRecord is an `"event_type": "alert"` record: one decision of the
// policy engine to alert on or block a flow or session.
type AlertRecord struct {
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
	Direction   string           `json:"direction"` // to_server or to_client: the packet that decided
	CommunityID string           `json:"community_id"`
	Alert       AlertInfo        `json:"alert"`
	AppProto    string           `json:"app_proto,omitempty"`
	Flow        FlowInfo         `json:"flow"`
	Tunnel      *classify.Tunnel `json:"tunnel,omitempty"`
	Rasentry    Rasentry         `json:"rasentry"`
}

// EventType returns "alert".
func (*AlertRecord) EventType() string { return "alert" }

// Category is the alert category of every rasentry signature.
const Category = "Remote Assistance"

// GID is rasentry's generator id (Suricata uses 1 for its rule engine).
const GID = 1

// Decided is what the policy engine decided about a flow, as the alert
// record needs it.
type Decided struct {
	Decision         string // allow, log, alert, block
	Enforced         bool   // an enforcer actually blocked
	SignatureID      uint32
	Rev              int
	Signature        string
	Severity         int
	PolicyRule       string
	NetworkDirection string
	Metadata         map[string][]string
}

// NewAlertRecord builds an alert for flow f, decided when a packet in
// direction dir arrived at time ts.
func NewAlertRecord(f *classify.Flow, dir classify.Direction, ts time.Time, d Decided, o Options) *AlertRecord {
	fr := NewFlowRecord(f, o)
	action := "allowed"
	if d.Enforced {
		action = "blocked"
	}
	direction := "to_server"
	if dir == classify.ToClient {
		direction = "to_client"
	}
	r := &AlertRecord{
		Timestamp: Time(ts), FlowID: fr.FlowID, InIface: fr.InIface, Type: "alert", VLAN: fr.VLAN,
		SrcIP: fr.SrcIP, SrcPort: fr.SrcPort, DestIP: fr.DestIP, DestPort: fr.DestPort, Proto: fr.Proto,
		Direction: direction, CommunityID: fr.CommunityID, AppProto: fr.AppProto, Tunnel: fr.Tunnel,
		Alert: AlertInfo{Action: action, GID: GID, SignatureID: d.SignatureID, Rev: d.Rev, Signature: d.Signature,
			Category: Category, Severity: d.Severity, Metadata: d.Metadata},
		Flow: FlowInfo{
			PktsToServer: fr.Flow.PktsToServer, PktsToClient: fr.Flow.PktsToClient,
			BytesToServer: fr.Flow.BytesToServer, BytesToClient: fr.Flow.BytesToClient,
			Start: fr.Flow.Start, SrcIP: fr.SrcIP, DestIP: fr.DestIP,
		},
		Rasentry: fr.Rasentry,
	}
	if fr.SrcPort != nil {
		r.Flow.SrcPort, r.Flow.DestPort = *fr.SrcPort, *fr.DestPort
	}
	enforced := d.Enforced
	r.Rasentry.Decision = d.Decision
	r.Rasentry.Enforced = &enforced
	r.Rasentry.PolicyRule = d.PolicyRule
	r.Rasentry.NetworkDirection = d.NetworkDirection
	return r
}
