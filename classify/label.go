package classify

import (
	"strconv"
	"strings"
)

// Label names one thing the classifier recognised in a flow (design.md "Labels",
// protocols.md §6.1). Labels are a closed set so a flow carries them as a bit set.
type Label uint8

// The labels, in the order they are reported.
const (
	LabelNone Label = iota
	LabelDCERPC
	LabelDCOMActivation
	LabelRADCOMOffer
	LabelRDP
	LabelRDPUDP
	LabelRDPRACandidate
	LabelTeredo
	LabelTeredoQualification
	LabelPNRP
	LabelPNRPRAEasyConnect
	LabelSSDP
	LabelSSDPIGDSearch
	LabelUPnPControl
	LabelUPnPPortmapAdd
	LabelUPnPPortmapDelete
	LabelRAInvitationFile
	LabelDNSTeredoServer
	LabelDNSPNRPSeed
	LabelRASession
	labelCount
)

var labelNames = [labelCount]string{
	LabelNone:                "",
	LabelDCERPC:              "dcerpc",
	LabelDCOMActivation:      "dcom-activation",
	LabelRADCOMOffer:         "ra-dcom-offer",
	LabelRDP:                 "rdp",
	LabelRDPUDP:              "rdp-udp",
	LabelRDPRACandidate:      "rdp-ra-candidate",
	LabelTeredo:              "teredo",
	LabelTeredoQualification: "teredo-qualification",
	LabelPNRP:                "pnrp",
	LabelPNRPRAEasyConnect:   "pnrp-ra-easyconnect",
	LabelSSDP:                "ssdp",
	LabelSSDPIGDSearch:       "ssdp-igd-search",
	LabelUPnPControl:         "upnp-control",
	LabelUPnPPortmapAdd:      "upnp-portmap-add",
	LabelUPnPPortmapDelete:   "upnp-portmap-delete",
	LabelRAInvitationFile:    "ra-invitation-file",
	LabelDNSTeredoServer:     "dns-teredo-server",
	LabelDNSPNRPSeed:         "dns-pnrp-seed",
	LabelRASession:           "ra-session",
}

// String returns the label's name as it appears in records and policy files.
func (l Label) String() string {
	if l < labelCount {
		return labelNames[l]
	}
	return "label(" + strconv.Itoa(int(l)) + ")"
}

// ParseLabel returns the label with the given name.
func ParseLabel(name string) (Label, bool) {
	name = strings.TrimSpace(name)
	for l := LabelNone + 1; l < labelCount; l++ {
		if labelNames[l] == name {
			return l, true
		}
	}
	return LabelNone, false
}

// AllLabels returns every label in report order.
func AllLabels() []Label {
	out := make([]Label, 0, labelCount-1)
	for l := LabelNone + 1; l < labelCount; l++ {
		out = append(out, l)
	}
	return out
}

// IsRemoteAssistance reports whether the label is specific to Remote Assistance
// (as opposed to a protocol that Remote Assistance merely uses). The negative
// corpus must never carry one of these.
func (l Label) IsRemoteAssistance() bool {
	switch l {
	case LabelRADCOMOffer, LabelRDPRACandidate, LabelPNRPRAEasyConnect,
		LabelRAInvitationFile, LabelRASession:
		return true
	}
	return false
}

// LabelSet is a set of labels.
type LabelSet uint32

// Has reports whether l is in the set.
func (s LabelSet) Has(l Label) bool { return s&(1<<l) != 0 }

// With returns the set with l added.
func (s LabelSet) With(l Label) LabelSet { return s | 1<<l }

// Len returns the number of labels in the set.
func (s LabelSet) Len() int {
	n := 0
	for v := s; v != 0; v &= v - 1 {
		n++
	}
	return n
}

// Labels returns the labels in report order. It allocates; call it when
// writing a record, not per packet.
func (s LabelSet) Labels() []Label {
	out := make([]Label, 0, s.Len())
	for l := LabelNone + 1; l < labelCount; l++ {
		if s.Has(l) {
			out = append(out, l)
		}
	}
	return out
}

// Strings returns the label names in report order (never nil, so JSON shows []).
func (s LabelSet) Strings() []string {
	out := make([]string, 0, s.Len())
	for l := LabelNone + 1; l < labelCount; l++ {
		if s.Has(l) {
			out = append(out, labelNames[l])
		}
	}
	return out
}

// Confidence grades how sure a detector is of a label (protocols.md §6.1).
type Confidence uint8

// Confidence levels.
const (
	ConfidenceLow Confidence = iota + 1
	ConfidenceMedium
	ConfidenceHigh
	ConfidenceDefinitive
)

// String returns the confidence as written in records.
func (c Confidence) String() string {
	switch c {
	case ConfidenceLow:
		return "low"
	case ConfidenceMedium:
		return "medium"
	case ConfidenceHigh:
		return "high"
	case ConfidenceDefinitive:
		return "definitive"
	}
	return "none"
}

// MarshalText writes the confidence name.
func (c Confidence) MarshalText() ([]byte, error) { return []byte(c.String()), nil }
