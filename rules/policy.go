package rules

import (
	"net/netip"
	"time"

	"github.com/rasentry/rasentry/classify"
)

// Action is what the policy decides for a subject. The actions are ordered by
// strength: allow < log < alert < block.
type Action uint8

// Actions.
const (
	// ActionAllow lets the subject pass and asks for nothing beyond the
	// ordinary flow record.
	ActionAllow Action = iota + 1
	// ActionLog lets it pass and names the deciding rule in the flow record.
	ActionLog
	// ActionAlert lets it pass and raises an alert record.
	ActionAlert
	// ActionBlock raises an alert and asks the enforcer to stop the flow.
	ActionBlock
)

var actionNames = [...]string{"none", "allow", "log", "alert", "block"}

// String returns "allow", "log", "alert" or "block" ("none" for the zero value).
func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return "none"
}

// ParseAction returns the action with the given name.
func ParseAction(s string) (Action, bool) {
	for a := ActionAllow; a <= ActionBlock; a++ {
		if actionNames[a] == s {
			return a, true
		}
	}
	return 0, false
}

// Direction is a subject's network direction relative to the policy's
// named networks (ECS network.direction): a client or server in none of the
// networks is on the Internet.
type Direction uint8

// Directions.
const (
	// DirectionInternal: both endpoints inside named networks.
	DirectionInternal Direction = iota + 1
	// DirectionOutbound: the client inside, the server on the Internet.
	DirectionOutbound
	// DirectionInbound: the client on the Internet, the server inside.
	DirectionInbound
	// DirectionExternal: both endpoints on the Internet (a transit flow, or
	// a Teredo inner flow between two Teredo addresses).
	DirectionExternal
)

var directionNames = [...]string{"", "internal", "outbound", "inbound", "external"}

// String returns "internal", "outbound", "inbound" or "external".
func (d Direction) String() string {
	if int(d) < len(directionNames) {
		return directionNames[d]
	}
	return ""
}

// ParseDirection returns the direction with the given name.
func ParseDirection(s string) (Direction, bool) {
	for d := DirectionInternal; d <= DirectionExternal; d++ {
		if directionNames[d] == s {
			return d, true
		}
	}
	return 0, false
}

// Subject is what the policy evaluates: one labelled flow, or one Remote
// Assistance session.
type Subject struct {
	// Labels are the flow's labels; for a session, ra-session plus the labels
	// of its member flows.
	Labels classify.LabelSet
	// Mode is the session mode; "" for a flow outside any session.
	Mode classify.SessionMode
	// Client and Server are the flow's endpoints; for a session the expert is
	// the client and the novice the server.
	Client netip.AddrPort
	Server netip.AddrPort
	// Proto is the IP protocol (classify.ProtoTCP, classify.ProtoUDP, ...).
	Proto uint8
	// Inner is set for a flow found inside a tunnel (Teredo).
	Inner bool
	// InvitationPlain is set when an ra-invitation-file carries the
	// XP-compatible RCTICKET, whose novice address list is plain text
	// (protocols.md §2.8); encrypted_invitations_only acts on it.
	InvitationPlain bool
	// Time is the packet time; suppression windows run on it. The zero time
	// disables suppression for the decision.
	Time time.Time
}

// Decision is the policy's answer for one subject.
type Decision struct {
	Action Action
	// RuleID names the deciding rule: an explicit rule's id, "setting:…" for
	// a rule compiled from remote_assistance, or "default".
	RuleID string
	// RuleName is the human text used as the alert signature.
	RuleName string
	// SignatureID is stable per rule: the rule's sid, or derived from its id
	// (see SignatureID).
	SignatureID uint32
	Rev         int
	// Severity runs from 1 (high) to 4 (low), as Suricata's.
	Severity int
	// Reason says in one sentence why the rule matched.
	Reason string
	// Direction is "inbound", "outbound", "internal" or "external".
	Direction string
	// Suppressed is set by Engine.Decide for an alert or block inside its
	// rule's suppression window: still enforced, not alerted again.
	Suppressed bool
	// Unenforceable lists settings that apply to this subject but cannot be
	// enforced on the wire (e.g. view-only control inside an encrypted RDP
	// session). Shared and read-only.
	Unenforceable []string
}

// Policy is a validated policy: what a policy file says, with every name
// resolved and every value checked. Build one with Load, LoadBytes or Preset;
// Compile turns it into a Compiled policy.
type Policy struct {
	// Source names where the policy came from: a file name or "preset:NAME".
	Source string
	// Default decides a subject no rule matches.
	Default Default
	// Networks are the named CIDR sets, in file order; an address in none of
	// them is on the Internet. At most 64.
	Networks []Network
	// Groups are the named host sets, in file order. At most 64.
	Groups []Group
	// RemoteAssistance holds the settings that mirror Group Policy.
	RemoteAssistance Settings
	// Rules are the explicit rules, evaluated first, in file order.
	Rules []Rule
	// Notes are settings accepted but not enforceable on the wire. They are
	// not problems: the policy is valid.
	Notes Problems
}

// Default is the decision for subjects no rule matches.
type Default struct {
	Action   Action
	Severity int
	Pos      Pos
}

// Network is a named set of prefixes.
type Network struct {
	Name     string
	Prefixes []netip.Prefix
	Pos      Pos
}

// Group is a named set of hosts (single addresses are /32 or /128 prefixes).
type Group struct {
	Name     string
	Prefixes []netip.Prefix
	Pos      Pos
}

// State is a Group Policy setting's state.
type State uint8

// Setting states. Not configured compiles into no rule: the subject falls
// through to later rules and the default.
const (
	StateNotConfigured State = iota
	StateEnabled
	StateDisabled
)

var stateNames = [...]string{"not-configured", "enabled", "disabled"}

// String returns "not-configured", "enabled" or "disabled".
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "not-configured"
}

// Control is the Group Policy option "Permit remote control of this
// computer" / "Allow helpers to only view the computer".
type Control uint8

// Control values.
const (
	ControlNotConfigured Control = iota
	ControlFull
	ControlViewOnly
)

// Settings mirror Administrative Templates\System\Remote Assistance and the
// firewall's Remote Assistance exceptions (protocols.md §6.3).
type Settings struct {
	Solicited                SolicitedSetting
	Offer                    OfferSetting
	EncryptedInvitationsOnly InvitationSetting
	// Teredo covers the labels teredo and teredo-qualification.
	Teredo HelperSetting
	// UPnP covers upnp-portmap-add (the mapping that opens the NAT).
	UPnP HelperSetting
	// PNRP covers pnrp and pnrp-ra-easyconnect.
	PNRP HelperSetting
	// DNS covers dns-teredo-server and dns-pnrp-seed.
	DNS HelperSetting
}

// SolicitedSetting is "Configure Solicited Remote Assistance".
type SolicitedSetting struct {
	State State
	// Control and MaxTicketTime are the setting's options; neither can be
	// enforced on the wire and both are reported as notes.
	Control       Control
	MaxTicketTime time.Duration
	// Action is what a disabled setting does to solicited traffic (block).
	Action   Action
	Severity int
	// Pos is the setting's key; ControlPos and MaxTicketTimePos locate the
	// options for the notes.
	Pos, ControlPos, MaxTicketTimePos Pos
}

// OfferSetting is "Configure Offer Remote Assistance" with its helpers list.
type OfferSetting struct {
	State   State
	Control Control
	// Helpers name groups whose hosts may offer.
	Helpers []string
	// Networks name the networks whose hosts helpers may offer to (the
	// domain); empty means the network named "domain" if there is one,
	// else every named network.
	Networks []string
	// Action is what offers outside the helpers-to-domain pairs get (block).
	Action   Action
	Severity int
	// Pos is the setting's key; ControlPos locates the control option.
	Pos, ControlPos Pos
}

// InvitationSetting is "Allow only Windows Vista or later connections":
// invitations then carry only the encrypted LHTICKET.
type InvitationSetting struct {
	Enabled  bool
	Action   Action
	Severity int
	Pos      Pos
}

// HelperSetting says how one NAT-traversal helper is treated, per network of
// the local host (see HelperEntry). No entries: not configured.
type HelperSetting struct {
	Entries []HelperEntry
	Pos     Pos
}

// HelperEntry is the action for hosts of one network. The local host is the
// client when the client is in a named network, else the server. Network is
// a network name, "internet" (both endpoints outside every network) or
// "default" (any local host; evaluated after the others).
type HelperEntry struct {
	Network  string
	Action   Action
	Severity int
	Pos      Pos
}

// Rule is one explicit rule.
type Rule struct {
	ID   string
	Name string
	// SID is the signature id; 0 derives it from ID (see SignatureID).
	SID      uint32
	Rev      int
	Severity int
	Action   Action
	Match    Match
	Suppress *Suppression
	Pos      Pos
}

// Match is what a rule matches. Fields are combined with AND; the values of
// one field with OR; an empty field matches everything.
type Match struct {
	// Labels: the subject carries at least one of them.
	Labels classify.LabelSet
	// NotLabels: the subject carries none of them.
	NotLabels classify.LabelSet
	// Modes are session modes; "" (written "none") is a flow outside any
	// session.
	Modes      []classify.SessionMode
	Directions []Direction
	// Protos are IP protocol numbers.
	Protos []uint8
	// Inner and InvitationPlain, when set, must equal the subject's.
	Inner           *bool
	InvitationPlain *bool
	// Client, Server and Local constrain the endpoints; Local is the client
	// when it is in a named network, else the server.
	Client, Server, Local Endpoint
}

// Endpoint constrains one endpoint. Network names include "internet" (in no
// named network).
type Endpoint struct {
	Networks    []string
	NotNetworks []string
	Groups      []string
	NotGroups   []string
	Ports       []PortRange
}

// PortRange is an inclusive range of ports.
type PortRange struct {
	Lo, Hi uint16
}

// Suppression is a rule's suppression window, as Zeek's notices have: after
// an alert or block, the same rule does not alert again for the same
// identifier until Window has passed in packet time.
type Suppression struct {
	Window time.Duration
	// Identifier lists the subject fields that key the window: client_ip,
	// client_port, server_ip, server_port, proto, mode. Default: client_ip,
	// server_ip.
	Identifier []string
}
