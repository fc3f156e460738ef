package alert

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// Flow records are written once per flow, hundreds of thousands per
// capture; encoding/json's reflection was 40% of replay time, so the
// common record types append their JSON by hand. The output is byte for
// byte what encoding/json writes (with HTML escaping off), which a test
// checks on every record of the corpus.

// appender is a record that writes its own JSON.
type appender interface {
	AppendJSON(b []byte) ([]byte, error)
}

// AppendJSON appends the record's JSON (without a newline).
func (r *FlowRecord) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"timestamp":`...)
	b = appendTime(b, time.Time(r.Timestamp))
	b = append(b, `,"flow_id":`...)
	b = strconv.AppendUint(b, r.FlowID, 10)
	if r.InIface != "" {
		b = append(b, `,"in_iface":`...)
		b = appendString(b, r.InIface)
	}
	b = append(b, `,"event_type":`...)
	b = appendString(b, r.Type)
	if len(r.VLAN) > 0 {
		b = append(b, `,"vlan":[`...)
		for i, v := range r.VLAN {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendUint(b, uint64(v), 10)
		}
		b = append(b, ']')
	}
	b = append(b, `,"src_ip":`...)
	b = appendString(b, r.SrcIP)
	if r.SrcPort != nil {
		b = append(b, `,"src_port":`...)
		b = strconv.AppendUint(b, uint64(*r.SrcPort), 10)
	}
	b = append(b, `,"dest_ip":`...)
	b = appendString(b, r.DestIP)
	if r.DestPort != nil {
		b = append(b, `,"dest_port":`...)
		b = strconv.AppendUint(b, uint64(*r.DestPort), 10)
	}
	b = append(b, `,"proto":`...)
	b = appendString(b, r.Proto)
	if r.ICMPType != nil {
		b = append(b, `,"icmp_type":`...)
		b = strconv.AppendUint(b, uint64(*r.ICMPType), 10)
	}
	if r.ICMPCode != nil {
		b = append(b, `,"icmp_code":`...)
		b = strconv.AppendUint(b, uint64(*r.ICMPCode), 10)
	}
	b = append(b, `,"community_id":`...)
	b = appendString(b, r.CommunityID)
	if r.AppProto != "" {
		b = append(b, `,"app_proto":`...)
		b = appendString(b, r.AppProto)
	}
	b = append(b, `,"flow":`...)
	b = r.Flow.appendJSON(b)
	var err error
	if r.Tunnel != nil {
		b = append(b, `,"tunnel":`...)
		if b, err = appendMarshal(b, r.Tunnel); err != nil {
			return nil, err
		}
	}
	b = append(b, `,"rasentry":`...)
	if b, err = r.Rasentry.appendJSON(b); err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

func (f *FlowInfo) appendJSON(b []byte) []byte {
	b = append(b, `{"pkts_toserver":`...)
	b = strconv.AppendUint(b, f.PktsToServer, 10)
	b = append(b, `,"pkts_toclient":`...)
	b = strconv.AppendUint(b, f.PktsToClient, 10)
	b = append(b, `,"bytes_toserver":`...)
	b = strconv.AppendUint(b, f.BytesToServer, 10)
	b = append(b, `,"bytes_toclient":`...)
	b = strconv.AppendUint(b, f.BytesToClient, 10)
	b = append(b, `,"start":`...)
	b = appendTime(b, time.Time(f.Start))
	if f.End != nil {
		b = append(b, `,"end":`...)
		b = appendTime(b, time.Time(*f.End))
	}
	if f.Age != nil {
		b = append(b, `,"age":`...)
		b = strconv.AppendInt(b, *f.Age, 10)
	}
	for _, kv := range [...]struct{ k, v string }{{"state", f.State}, {"reason", f.Reason}, {"src_ip", f.SrcIP}, {"dest_ip", f.DestIP}} {
		if kv.v != "" {
			b = append(b, `,"`...)
			b = append(b, kv.k...)
			b = append(b, `":`...)
			b = appendString(b, kv.v)
		}
	}
	if f.SrcPort != 0 {
		b = append(b, `,"src_port":`...)
		b = strconv.AppendUint(b, uint64(f.SrcPort), 10)
	}
	if f.DestPort != 0 {
		b = append(b, `,"dest_port":`...)
		b = strconv.AppendUint(b, uint64(f.DestPort), 10)
	}
	return append(b, '}')
}

func (r *Rasentry) appendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"labels":[`...)
	for i, l := range r.Labels {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, l)
	}
	b = append(b, ']')
	var err error
	if len(r.Confidence) > 0 {
		b = append(b, `,"confidence":`...)
		if b, err = appendMarshal(b, r.Confidence); err != nil {
			return nil, err
		}
	}
	if r.Session != "" {
		b = append(b, `,"session":`...)
		b = appendString(b, r.Session)
		b = append(b, `,"mode":`...)
		b = appendString(b, r.Mode)
	}
	if r.Decision != "" {
		b = append(b, `,"decision":`...)
		b = appendString(b, r.Decision)
	}
	if r.Enforced != nil {
		b = append(b, `,"enforced":`...)
		b = strconv.AppendBool(b, *r.Enforced)
	}
	if r.PolicyRule != "" {
		b = append(b, `,"policy_rule":`...)
		b = appendString(b, r.PolicyRule)
	}
	if r.NetworkDirection != "" {
		b = append(b, `,"network_direction":`...)
		b = appendString(b, r.NetworkDirection)
	}
	if r.Evidence != nil {
		r.Evidence.Each(func(name string, v any) {
			if err != nil {
				return
			}
			b = append(b, ',')
			b = appendString(b, name)
			b = append(b, ':')
			b, err = appendMarshal(b, v)
		})
		if err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendMarshal appends v through encoding/json with HTML escaping off (the
// rare parts: evidence, tunnels).
func appendMarshal(b []byte, v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return appendUnescapeHTML(b, raw), nil
}

// appendUnescapeHTML copies encoding/json output, turning its \u003c,
// \u003e and \u0026 back into <, > and &, as an encoder with
// SetEscapeHTML(false) writes them.
func appendUnescapeHTML(b, raw []byte) []byte {
	for i := 0; i < len(raw); i++ {
		if raw[i] == '\\' && i+5 < len(raw) && raw[i+1] == 'u' && raw[i+2] == '0' && raw[i+3] == '0' {
			switch string(raw[i+4 : i+6]) {
			case "3c":
				b = append(b, '<')
				i += 5
				continue
			case "3e":
				b = append(b, '>')
				i += 5
				continue
			case "26":
				b = append(b, '&')
				i += 5
				continue
			}
		}
		if raw[i] == '\\' && i+1 < len(raw) {
			b = append(b, raw[i], raw[i+1])
			i++
			continue
		}
		b = append(b, raw[i])
	}
	return b
}

func appendTime(b []byte, t time.Time) []byte {
	if y := t.UTC().Year(); y >= 0 && y <= 9999 {
		return appendTimeFast(b, t)
	}
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, TimeFormat)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string the way encoding/json does with
// HTML escaping off: control characters, quote and backslash escaped,
// invalid UTF-8 replaced by U+FFFD, U+2028 and U+2029 escaped.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
