package classify

import (
	"net/netip"
	"time"
)

// SessionMode says how a Remote Assistance session was set up
// (protocols.md §6.2 chains A to E).
type SessionMode string

// Session modes.
const (
	ModeOffer       SessionMode = "offer"
	ModeInvitation  SessionMode = "invitation"
	ModeEasyConnect SessionMode = "easy-connect"
	ModeUPnP        SessionMode = "upnp"
	ModeUnknown     SessionMode = "unknown"
)

// Session is one Remote Assistance session: the flows that together show a
// helper (expert) reaching a user's (novice's) desktop.
type Session struct {
	ID         string
	Mode       SessionMode
	Novice     netip.Addr
	Expert     netip.Addr
	Confidence Confidence
	First      time.Time
	Last       time.Time
	Members    []SessionMember
}

// SessionMember is one flow of a session.
type SessionMember struct {
	FlowID uint64
	Labels LabelSet
}

// SessionTable assembles sessions from labelled flows. It is bounded and
// time-limited; see session assembly in design.md.
type SessionTable struct {
	counters *Counters
}

// NewSessionTable returns an empty session table.
func NewSessionTable(counters *Counters) *SessionTable {
	return &SessionTable{counters: counters}
}
