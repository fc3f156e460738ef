package alert

import "time"

// Encoded is a record already written as JSON: what queues and spools hold,
// so a record is encoded once, however many times its delivery is tried.
// Every sink writes it verbatim.
type Encoded struct {
	Type string // the record's event_type
	// Key is its community_id (the Kafka key), or "" when it has none or
	// it is still in JSON (see PartitionKey).
	Key  string
	Time time.Time // its timestamp (the syslog header's)
	// Severity is an alert's severity (1 highest, as in EVE), 0 for the
	// other record types.
	Severity int
	JSON     []byte // one JSON object, no newline
	// keyInJSON says Key was left for PartitionKey to read from the EVE
	// JSON: most flow records only go to a file, which needs no key.
	keyInJSON bool
}

// PartitionKey returns the record's community_id, the key of a Kafka
// message and of a spooled record ("" when it has none). It does not
// change e: several sinks may hold the same record.
func (e *Encoded) PartitionKey() string {
	if e.Key == "" && e.keyInJSON {
		return CommunityIDOf(e.JSON)
	}
	return e.Key
}

// EventType returns the record's event_type.
func (e *Encoded) EventType() string { return e.Type }

// AppendJSON appends the JSON as it is.
func (e *Encoded) AppendJSON(b []byte) ([]byte, error) { return append(b, e.JSON...), nil }

// MarshalJSON returns the JSON as it is.
func (e *Encoded) MarshalJSON() ([]byte, error) { return e.JSON, nil }
