package alert

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// ECSVersion is the Elastic Common Schema version the ECS records follow.
const ECSVersion = "8.17.0"

// ecsTimeFormat is ISO 8601 in UTC, as Elasticsearch's date fields parse it.
const ecsTimeFormat = "2006-01-02T15:04:05.000000Z"

// The ECS layout (--format ecs) keeps what the EVE records say, moved to
// the fields Elastic's own integrations (Suricata, Zeek, Packetbeat) fill,
// so that dashboards and detection rules written for them apply:
// @timestamp, event.*, rule.*, source.*, destination.*, network.* (with
// community_id), observer.*, related.ip. What ECS has no field for stays
// under "rasentry" with the EVE names (labels, evidence, decision,
// flow_id, tunnel).

type ecsDoc struct {
	Timestamp   string        `json:"@timestamp"`
	ECS         ecsVersion    `json:"ecs"`
	Message     string        `json:"message,omitempty"`
	Event       ecsEvent      `json:"event"`
	Rule        *ecsRule      `json:"rule,omitempty"`
	Source      *ecsEndpoint  `json:"source,omitempty"`
	Destination *ecsEndpoint  `json:"destination,omitempty"`
	Network     *ecsNetwork   `json:"network,omitempty"`
	Observer    ecsObserver   `json:"observer"`
	Related     *ecsRelated   `json:"related,omitempty"`
	Rasentry    ecsRawMessage `json:"rasentry"`
}

type ecsVersion struct {
	Version string `json:"version"`
}

type ecsEvent struct {
	Kind     string   `json:"kind"`
	Category []string `json:"category,omitempty"`
	Type     []string `json:"type,omitempty"`
	Action   string   `json:"action,omitempty"`
	Module   string   `json:"module"`
	Dataset  string   `json:"dataset"`
	Severity int      `json:"severity,omitempty"`
	Start    string   `json:"start,omitempty"`
	End      string   `json:"end,omitempty"`
	Duration *int64   `json:"duration,omitempty"` // nanoseconds, as ECS has it
	Reason   string   `json:"reason,omitempty"`
}

type ecsRule struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Category string `json:"category"`
	Version  string `json:"version"`
	Ruleset  string `json:"ruleset,omitempty"`
}

type ecsEndpoint struct {
	IP      string  `json:"ip"`
	Port    *uint16 `json:"port,omitempty"`
	Bytes   *uint64 `json:"bytes,omitempty"`
	Packets *uint64 `json:"packets,omitempty"`
}

type ecsNetwork struct {
	Transport   string   `json:"transport"`
	Type        string   `json:"type,omitempty"`
	Protocol    string   `json:"protocol,omitempty"`
	CommunityID string   `json:"community_id"`
	Bytes       *uint64  `json:"bytes,omitempty"`
	Packets     *uint64  `json:"packets,omitempty"`
	Direction   string   `json:"direction,omitempty"`
	VLAN        *ecsVLAN `json:"vlan,omitempty"`
}

type ecsVLAN struct {
	ID string `json:"id"`
}

type ecsObserver struct {
	Hostname string      `json:"hostname,omitempty"`
	Product  string      `json:"product"`
	Vendor   string      `json:"vendor"`
	Type     string      `json:"type"`
	Version  string      `json:"version,omitempty"`
	Ingress  *ecsIngress `json:"ingress,omitempty"`
}

type ecsIngress struct {
	Interface struct {
		Name string `json:"name"`
	} `json:"interface"`
}

type ecsRelated struct {
	IP []string `json:"ip"`
}

// ecsRawMessage is JSON written beforehand (the rasentry object).
type ecsRawMessage []byte

// MarshalJSON returns the JSON as it is.
func (m ecsRawMessage) MarshalJSON() ([]byte, error) { return m, nil }

// ECS writes r in the Elastic Common Schema layout.
func ECS(r Record, o EncoderOptions) ([]byte, error) {
	d := ecsDoc{ECS: ecsVersion{ECSVersion}, Observer: ecsObserver{Hostname: o.ObserverHostname,
		Product: "rasentry", Vendor: "rasentry", Type: "ids", Version: o.ObserverVersion}}
	d.Event.Module = "rasentry"
	var err error
	switch x := r.(type) {
	case *FlowRecord:
		err = d.flow(x)
	case *AlertRecord:
		err = d.alert(x)
	case *SessionRecord:
		err = d.session(x)
	case *StatsRecord:
		err = d.stats(x)
	case *Encoded:
		return nil, fmt.Errorf("a %s record already encoded cannot be re-encoded as ECS", x.Type)
	default:
		return nil, fmt.Errorf("no ECS layout for %T (%s)", r, r.EventType())
	}
	if err != nil {
		return nil, err
	}
	return appendMarshalNoHTML(nil, &d)
}

func ecsTime(t Time) string { return time.Time(t).UTC().Format(ecsTimeFormat) }

func ecsIface(d *ecsDoc, iface string) {
	if iface != "" {
		d.Observer.Ingress = &ecsIngress{}
		d.Observer.Ingress.Interface.Name = iface
	}
}

// network fills source, destination, network and related from a flow's
// endpoints and counters.
func (d *ecsDoc) network(srcIP string, srcPort *uint16, destIP string, destPort *uint16, proto, appProto, communityID string, vlan []uint16, f *FlowInfo, direction string) {
	d.Source = &ecsEndpoint{IP: srcIP, Port: srcPort}
	d.Destination = &ecsEndpoint{IP: destIP, Port: destPort}
	n := &ecsNetwork{Transport: strings.ToLower(proto), Protocol: appProto, CommunityID: communityID}
	if f != nil {
		d.Source.Bytes, d.Source.Packets = ptr(f.BytesToServer), ptr(f.PktsToServer)
		d.Destination.Bytes, d.Destination.Packets = ptr(f.BytesToClient), ptr(f.PktsToClient)
		n.Bytes, n.Packets = ptr(f.BytesToServer+f.BytesToClient), ptr(f.PktsToServer+f.PktsToClient)
	}
	if a, err := netip.ParseAddr(srcIP); err == nil {
		n.Type = "ipv4"
		if a.Is6() {
			n.Type = "ipv6"
		}
	}
	switch direction {
	case "inbound", "outbound", "internal", "external", "ingress", "egress", "unknown":
		// ECS network.direction's allowed values.
		n.Direction = direction
	}
	if len(vlan) > 0 {
		n.VLAN = &ecsVLAN{ID: strconv.Itoa(int(vlan[0]))}
	}
	d.Network = n
	d.Related = &ecsRelated{IP: uniqueIPs(srcIP, destIP)}
}

func uniqueIPs(ips ...string) []string {
	out := make([]string, 0, len(ips))
	for _, ip := range ips {
		if ip != "" && !containsString(out, ip) {
			out = append(out, ip)
		}
	}
	return out
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// rasentryObject writes the "rasentry" object: the EVE one with the
// fields ECS has no place for added in front.
func rasentryObject(r *Rasentry, extra func(b []byte) ([]byte, error)) (ecsRawMessage, error) {
	b := []byte{'{'}
	b, err := extra(b)
	if err != nil {
		return nil, err
	}
	inner, err := r.appendJSON(nil)
	if err != nil {
		return nil, err
	}
	// inner is {"labels":[...],...}: splice its fields after ours.
	if len(b) > 1 {
		b = append(b, ',')
	}
	return append(b, inner[1:]...), nil
}

func flowExtra(flowID uint64, f *FlowInfo, tunnel any, icmpType, icmpCode *uint8) func(b []byte) ([]byte, error) {
	return func(b []byte) ([]byte, error) {
		b = append(b, `"flow_id":`...)
		b = strconv.AppendUint(b, flowID, 10)
		if icmpType != nil && icmpCode != nil {
			b = append(b, `,"icmp_type":`...)
			b = strconv.AppendUint(b, uint64(*icmpType), 10)
			b = append(b, `,"icmp_code":`...)
			b = strconv.AppendUint(b, uint64(*icmpCode), 10)
		}
		if f.State != "" {
			b = append(b, `,"flow_state":`...)
			b = appendString(b, f.State)
		}
		if tunnel != nil {
			var err error
			b = append(b, `,"tunnel":`...)
			if b, err = appendMarshal(b, tunnel); err != nil {
				return nil, err
			}
		}
		return b, nil
	}
}

func (d *ecsDoc) flow(r *FlowRecord) error {
	d.Timestamp = ecsTime(r.Timestamp)
	d.Event.Kind = "event"
	d.Event.Category = []string{"network"}
	d.Event.Type = []string{"connection", "end"}
	d.Event.Action = "flow_ended"
	d.Event.Dataset = "rasentry.flow"
	d.Event.Start = ecsTime(r.Flow.Start)
	if r.Flow.End != nil {
		d.Event.End = ecsTime(*r.Flow.End)
		dur := time.Time(*r.Flow.End).Sub(time.Time(r.Flow.Start)).Nanoseconds()
		d.Event.Duration = &dur
	}
	d.Event.Reason = r.Flow.Reason
	ecsIface(d, r.InIface)
	d.network(r.SrcIP, r.SrcPort, r.DestIP, r.DestPort, r.Proto, r.AppProto, r.CommunityID, r.VLAN, &r.Flow, r.Rasentry.NetworkDirection)
	var tunnel any
	if r.Tunnel != nil {
		tunnel = r.Tunnel
	}
	var err error
	d.Rasentry, err = rasentryObject(&r.Rasentry, flowExtra(r.FlowID, &r.Flow, tunnel, r.ICMPType, r.ICMPCode))
	return err
}

func (d *ecsDoc) alert(r *AlertRecord) error {
	d.Timestamp = ecsTime(r.Timestamp)
	d.Message = r.Alert.Signature
	d.Event.Kind = "alert"
	d.Event.Category = []string{"network", "intrusion_detection"}
	d.Event.Type = []string{"allowed"}
	if r.Alert.Action == "blocked" {
		d.Event.Type = []string{"denied"}
	}
	d.Event.Action = r.Rasentry.Decision
	d.Event.Dataset = "rasentry.alert"
	d.Event.Severity = r.Alert.Severity
	d.Event.Start = ecsTime(r.Flow.Start)
	d.Rule = &ecsRule{ID: strconv.FormatUint(uint64(r.Alert.SignatureID), 10), Name: r.Alert.Signature,
		Category: r.Alert.Category, Version: strconv.Itoa(r.Alert.Rev), Ruleset: r.Rasentry.PolicyRule}
	ecsIface(d, r.InIface)
	d.network(r.SrcIP, r.SrcPort, r.DestIP, r.DestPort, r.Proto, r.AppProto, r.CommunityID, r.VLAN, &r.Flow, r.Rasentry.NetworkDirection)
	var tunnel any
	if r.Tunnel != nil {
		tunnel = r.Tunnel
	}
	var err error
	d.Rasentry, err = rasentryObject(&r.Rasentry, func(b []byte) ([]byte, error) {
		b, err := flowExtra(r.FlowID, &r.Flow, tunnel, nil, nil)(b)
		if err != nil {
			return nil, err
		}
		b = append(b, `,"direction":`...)
		b = appendString(b, r.Direction)
		b = append(b, `,"action":`...)
		b = appendString(b, r.Alert.Action)
		if len(r.Alert.Metadata) > 0 {
			b = append(b, `,"metadata":`...)
			if b, err = appendMarshal(b, r.Alert.Metadata); err != nil {
				return nil, err
			}
		}
		return b, nil
	})
	return err
}

func (d *ecsDoc) session(r *SessionRecord) error {
	d.Timestamp = ecsTime(r.Timestamp)
	d.Message = "Remote Assistance session (" + r.Session.Mode + "): " + r.Session.Why
	d.Event.Kind = "event"
	d.Event.Category = []string{"network", "session"}
	d.Event.Type = []string{"info"}
	d.Event.Action = "ra_session"
	d.Event.Dataset = "rasentry.ra_session"
	d.Event.Start = ecsTime(r.Session.First)
	d.Event.End = ecsTime(r.Session.Last)
	dur := time.Time(r.Session.Last).Sub(time.Time(r.Session.First)).Nanoseconds()
	d.Event.Duration = &dur
	ecsIface(d, r.InIface)
	// source and destination are the flow that completed the session.
	sp, dp := r.SrcPort, r.DestPort
	d.network(r.SrcIP, &sp, r.DestIP, &dp, r.Proto, "", r.CommunityID, nil, nil, r.Rasentry.NetworkDirection)
	d.Related.IP = uniqueIPs(append([]string{r.Session.Novice, r.Session.Expert}, d.Related.IP...)...)
	var err error
	d.Rasentry, err = rasentryObject(&r.Rasentry, func(b []byte) ([]byte, error) {
		b = append(b, `"flow_id":`...)
		b = strconv.AppendUint(b, r.FlowID, 10)
		b = append(b, `,"ra_session":`...)
		return appendMarshal(b, &r.Session)
	})
	return err
}

func (d *ecsDoc) stats(r *StatsRecord) error {
	d.Timestamp = ecsTime(r.Timestamp)
	d.Event.Kind = "metric"
	d.Event.Dataset = "rasentry.stats"
	b, err := appendMarshalNoHTML([]byte(`{"stats":`), &r.Stats)
	if err != nil {
		return err
	}
	d.Rasentry = append(b, '}')
	return nil
}
