package alert

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/rasentry/rasentry/classify"
)

// Format names the layout records are written in.
type Format string

// Record layouts.
const (
	// FormatEVE is Suricata's EVE JSON (the default): existing Suricata
	// pipelines ingest it unchanged.
	FormatEVE Format = "eve"
	// FormatECS is the Elastic Common Schema, for Elastic users.
	FormatECS Format = "ecs"
)

// ParseFormat checks a --format value.
func ParseFormat(s string) (Format, error) {
	switch Format(s) {
	case "", FormatEVE:
		return FormatEVE, nil
	case FormatECS:
		return FormatECS, nil
	}
	return "", fmt.Errorf("%q is not a record format (want eve or ecs)", s)
}

// EncoderOptions shape records beyond their format.
type EncoderOptions struct {
	// ECS only: the observer, as ECS's observer.* fields describe it.
	ObserverHostname string
	ObserverVersion  string
}

// Encoder turns records into Encoded ones in one format. It is safe for
// concurrent use.
type Encoder struct {
	format Format
	opts   EncoderOptions
}

// NewEncoder returns an encoder for format f ("" is EVE).
func NewEncoder(f Format, o EncoderOptions) *Encoder {
	if f == "" {
		f = FormatEVE
	}
	return &Encoder{format: f, opts: o}
}

// Format returns the encoder's format.
func (e *Encoder) Format() Format { return e.format }

// Encode writes r as JSON. An Encoded record passes through unchanged,
// unless it is EVE and the encoder writes ECS: that is refused (a record
// written too early cannot change layout; see EncodeFlow).
func (e *Encoder) Encode(r Record) (*Encoded, error) {
	if x, ok := r.(*Encoded); ok {
		if e.format == FormatECS && bytes.HasPrefix(x.JSON, []byte(`{"timestamp":`)) {
			return nil, fmt.Errorf("alert: a %s record already written as EVE cannot be written as ECS (encode it with the output's Encoder)", x.Type)
		}
		return x, nil
	}
	out := &Encoded{Type: r.EventType()}
	switch x := r.(type) {
	case *FlowRecord:
		out.Key, out.Time = x.CommunityID, time.Time(x.Timestamp)
	case *AlertRecord:
		out.Key, out.Time, out.Severity = x.CommunityID, time.Time(x.Timestamp), x.Alert.Severity
	case *SessionRecord:
		out.Key, out.Time = x.CommunityID, time.Time(x.Timestamp)
	case *StatsRecord:
		out.Time = time.Time(x.Timestamp)
	default:
		out.Time = time.Now()
	}
	var err error
	if e.format == FormatECS {
		out.JSON, err = ECS(r, e.opts)
	} else {
		out.JSON, err = appendRecord(nil, r)
	}
	if err != nil {
		return nil, fmt.Errorf("alert: encoding %s record as %s: %w", out.Type, e.format, err)
	}
	return out, nil
}

// EncodeFlow writes the record of ended flow f: in EVE straight from the
// flow (AppendFlow, the replay's hot path), in ECS through its FlowRecord.
// The sensor calls it instead of building the record, so that --format
// applies to flow records too.
func (e *Encoder) EncodeFlow(f *classify.Flow, o Options) (*Encoded, error) {
	if e.format == FormatECS {
		return e.Encode(NewFlowRecord(f, o))
	}
	b, err := AppendFlow(make([]byte, 0, 512), f, o)
	if err != nil {
		return nil, fmt.Errorf("alert: encoding flow %d: %w", f.ID, err)
	}
	return &Encoded{Type: "flow", Time: f.Last(), JSON: b, keyInJSON: true}, nil
}

// CommunityIDOf returns the community_id of an EVE record's JSON ("" when
// it has none): the Kafka key of a record encoded elsewhere.
func CommunityIDOf(eve []byte) string {
	const field = `"community_id":"`
	i := bytes.Index(eve, []byte(field))
	if i < 0 {
		return ""
	}
	rest := eve[i+len(field):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return ""
	}
	return string(rest[:j])
}

// appendRecord appends r's EVE JSON: by hand where the record knows how,
// else through encoding/json with HTML escaping off (as WriterSink writes).
func appendRecord(b []byte, r Record) ([]byte, error) {
	if a, ok := r.(appender); ok {
		return a.AppendJSON(b)
	}
	return appendMarshalNoHTML(b, r)
}

// appendMarshalNoHTML appends v as encoding/json's Encoder writes it with
// SetEscapeHTML(false), without the newline.
func appendMarshalNoHTML(b []byte, v any) ([]byte, error) {
	buf := bytes.NewBuffer(b)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	out := buf.Bytes()
	return out[:len(out)-1], nil
}
