package alert

import (
	"time"

	"github.com/rasentry/rasentry/classify"
)

// SessionMemberInfo is one member flow of a session record.
type SessionMemberInfo struct {
	FlowID uint64   `json:"flow_id"`
	Labels []string `json:"labels"`
	SrcIP  string   `json:"src_ip"`
	Src    uint16   `json:"src_port"`
	DestIP string   `json:"dest_ip"`
	Dest   uint16   `json:"dest_port"`
}

// SessionInfo is the "ra_session" object.
type SessionInfo struct {
	ID         string              `json:"id"`
	Mode       string              `json:"mode"`
	Novice     string              `json:"novice"`
	Expert     string              `json:"expert"`
	Confidence string              `json:"confidence"`
	Why        string              `json:"why"`
	First      Time                `json:"first"`
	Last       Time                `json:"last"`
	Members    []SessionMemberInfo `json:"members"`
}

// SessionRecord is an `"event_type": "ra_session"` record: a Remote
// Assistance session formed from its member flows (design.md, session
// assembly). Its flow fields are those of the flow that completed it.
type SessionRecord struct {
	Timestamp   Time        `json:"timestamp"`
	FlowID      uint64      `json:"flow_id"`
	InIface     string      `json:"in_iface,omitempty"`
	Type        string      `json:"event_type"`
	SrcIP       string      `json:"src_ip"`
	SrcPort     uint16      `json:"src_port"`
	DestIP      string      `json:"dest_ip"`
	DestPort    uint16      `json:"dest_port"`
	Proto       string      `json:"proto"`
	CommunityID string      `json:"community_id"`
	Session     SessionInfo `json:"ra_session"`
	Rasentry    Rasentry    `json:"rasentry"`
}

// EventType returns "ra_session".
func (*SessionRecord) EventType() string { return "ra_session" }

// NewSessionRecord builds the record of session s, completed by flow f at ts.
func NewSessionRecord(s *classify.Session, f *classify.Flow, ts time.Time, o Options) *SessionRecord {
	r := &SessionRecord{
		Timestamp: Time(ts), FlowID: f.ID, InIface: o.Interface, Type: "ra_session",
		SrcIP: addrString(f.Client.Addr()), SrcPort: f.Client.Port(),
		DestIP: addrString(f.Server.Addr()), DestPort: f.Server.Port(),
		Proto: classify.ProtoName(f.Proto), CommunityID: f.CommunityID(o.CommunityIDSeed),
		Session: SessionInfo{ID: s.ID, Mode: string(s.Mode), Novice: addrString(s.Novice), Expert: addrString(s.Expert),
			Confidence: s.Confidence.String(), Why: s.Why, First: Time(s.First), Last: Time(s.Last)},
		Rasentry: rasentryOf(f),
	}
	for _, m := range s.Members {
		r.Session.Members = append(r.Session.Members, SessionMemberInfo{FlowID: m.FlowID, Labels: m.Labels.Strings(),
			SrcIP: addrString(m.Client.Addr()), Src: m.Client.Port(), DestIP: addrString(m.Server.Addr()), Dest: m.Server.Port()})
	}
	return r
}
