package alert

import "time"

// Encoded is a record already written as JSON: what queues and spools hold,
// so a record is encoded once, however many times its delivery is tried.
// Every sink writes it verbatim.
type Encoded struct {
	Type string    // the record's event_type
	Key  string    // its community_id (the Kafka key), or "" when it has none
	Time time.Time // its timestamp (the syslog header's)
	// Severity is an alert's severity (1 highest, as in EVE), 0 for the
	// other record types.
	Severity int
	JSON     []byte // one JSON object, no newline
}

// EventType returns the record's event_type.
func (e *Encoded) EventType() string { return e.Type }

// AppendJSON appends the JSON as it is.
func (e *Encoded) AppendJSON(b []byte) ([]byte, error) { return append(b, e.JSON...), nil }

// MarshalJSON returns the JSON as it is.
func (e *Encoded) MarshalJSON() ([]byte, error) { return e.JSON, nil }
