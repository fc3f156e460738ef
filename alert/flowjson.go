package alert

import (
	"crypto/sha1"
	"encoding/base64"
	"strconv"
	"time"

	"github.com/rasentry/rasentry/classify"
)

// AppendFlow appends the EVE flow record of f, byte for byte what
// NewFlowRecord(f, o).AppendJSON writes, without building the record: a
// replay writes hundreds of thousands of these, and the intermediate
// record's dozen allocations per flow were a fifth of replay time.
func AppendFlow(b []byte, f *classify.Flow, o Options) ([]byte, error) {
	b = append(b, `{"timestamp":`...)
	b = appendTimeFast(b, f.Last())
	b = append(b, `,"flow_id":`...)
	b = strconv.AppendUint(b, f.ID, 10)
	if o.Interface != "" {
		b = append(b, `,"in_iface":`...)
		b = appendString(b, o.Interface)
	}
	b = append(b, `,"event_type":"flow"`...)
	if f.VLAN != 0 {
		b = append(b, `,"vlan":[`...)
		b = strconv.AppendUint(b, uint64(f.VLAN), 10)
		b = append(b, ']')
	}
	ports := f.Proto == classify.ProtoTCP || f.Proto == classify.ProtoUDP || f.Proto == classify.ProtoSCTP
	b = append(b, `,"src_ip":"`...)
	b = f.Client.Addr().Unmap().AppendTo(b)
	b = append(b, '"')
	if ports {
		b = append(b, `,"src_port":`...)
		b = strconv.AppendUint(b, uint64(f.Client.Port()), 10)
	}
	b = append(b, `,"dest_ip":"`...)
	b = f.Server.Addr().Unmap().AppendTo(b)
	b = append(b, '"')
	if ports {
		b = append(b, `,"dest_port":`...)
		b = strconv.AppendUint(b, uint64(f.Server.Port()), 10)
	}
	b = append(b, `,"proto":`...)
	b = appendString(b, classify.ProtoName(f.Proto))
	if f.Proto == classify.ProtoICMP || f.Proto == classify.ProtoICMPv6 {
		b = append(b, `,"icmp_type":`...)
		b = strconv.AppendUint(b, uint64(f.ICMPType), 10)
		b = append(b, `,"icmp_code":`...)
		b = strconv.AppendUint(b, uint64(f.ICMPCode), 10)
	}
	b = append(b, `,"community_id":"`...)
	b = appendCommunityID(b, f, o.CommunityIDSeed)
	b = append(b, '"')
	if a := f.AppProto.String(); a != "" {
		b = append(b, `,"app_proto":`...)
		b = appendString(b, a)
	}
	b = append(b, `,"flow":{"pkts_toserver":`...)
	b = strconv.AppendUint(b, f.Pkts[classify.ToServer], 10)
	b = append(b, `,"pkts_toclient":`...)
	b = strconv.AppendUint(b, f.Pkts[classify.ToClient], 10)
	b = append(b, `,"bytes_toserver":`...)
	b = strconv.AppendUint(b, f.Bytes[classify.ToServer], 10)
	b = append(b, `,"bytes_toclient":`...)
	b = strconv.AppendUint(b, f.Bytes[classify.ToClient], 10)
	b = append(b, `,"start":`...)
	b = appendTimeFast(b, f.Start())
	b = append(b, `,"end":`...)
	b = appendTimeFast(b, f.Last())
	b = append(b, `,"age":`...)
	b = strconv.AppendInt(b, int64(f.Age()/time.Second), 10)
	if f.Proto == classify.ProtoTCP {
		b = append(b, `,"state":`...)
		b = appendString(b, f.State.String())
	}
	if r := f.Reason.String(); r != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, r)
	}
	b = append(b, '}')
	x := f.Extension()
	if x == nil {
		b = append(b, `,"rasentry":{"labels":[`...)
		b = appendLabels(b, f.Labels)
		return append(b, "]}}"...), nil
	}
	var err error
	if x.Tunnel != nil {
		b = append(b, `,"tunnel":`...)
		if b, err = appendMarshal(b, x.Tunnel); err != nil {
			return nil, err
		}
	}
	b = append(b, `,"rasentry":`...)
	r := rasentryOf(f)
	if b, err = r.appendJSON(b); err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

func appendLabels(b []byte, s classify.LabelSet) []byte {
	first := true
	for _, l := range classify.AllLabels() {
		if s.Has(l) {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = append(b, '"')
			b = append(b, l.String()...)
			b = append(b, '"')
		}
	}
	return b
}

// appendCommunityID appends the flow's Community ID without allocating.
func appendCommunityID(b []byte, f *classify.Flow, seed uint16) []byte {
	var in [2 + 16 + 16 + 1 + 1 + 2 + 2]byte
	sport, dport := f.Client.Port(), f.Server.Port()
	if f.Proto == classify.ProtoICMP || f.Proto == classify.ProtoICMPv6 {
		sport, dport = uint16(f.ICMPType), uint16(f.ICMPCode)
	}
	n := classify.CommunityIDInput(in[:], seed, f.Client.Addr(), f.Server.Addr(), sport, dport, f.Proto)
	sum := sha1.Sum(in[:n])
	b = append(b, "1:"...)
	return base64.StdEncoding.AppendEncode(b, sum[:])
}

// appendTimeFast writes t (UTC, years 0 to 9999) in TimeFormat,
// 2006-01-02T15:04:05.000000+0000, digit by digit (time.AppendFormat
// interprets the layout each call).
func appendTimeFast(b []byte, t time.Time) []byte {
	t = t.UTC()
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	us := t.Nanosecond() / 1000
	b = append(b, '"')
	b = appendDigits(b, y, 4)
	b = append(b, '-')
	b = appendDigits(b, int(mo), 2)
	b = append(b, '-')
	b = appendDigits(b, d, 2)
	b = append(b, 'T')
	b = appendDigits(b, h, 2)
	b = append(b, ':')
	b = appendDigits(b, mi, 2)
	b = append(b, ':')
	b = appendDigits(b, s, 2)
	b = append(b, '.')
	b = appendDigits(b, us, 6)
	return append(b, `+0000"`...)
}

func appendDigits(b []byte, v, width int) []byte {
	var buf [8]byte
	for i := width - 1; i >= 0; i-- {
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, buf[:width]...)
}
