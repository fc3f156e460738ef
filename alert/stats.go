package alert

import "time"

// StatsRecord is an `"event_type": "stats"` record, written every stats
// interval (Suricata writes the same kind), so a SIEM sees the sensor's
// health next to its alerts.
type StatsRecord struct {
	Timestamp Time   `json:"timestamp"`
	Type      string `json:"event_type"`
	Stats     Stats  `json:"stats"`
}

// EventType returns "stats".
func (*StatsRecord) EventType() string { return "stats" }

// NewStatsRecord builds a stats record of s taken at ts.
func NewStatsRecord(ts time.Time, s Stats) *StatsRecord {
	return &StatsRecord{Timestamp: Time(ts), Type: "stats", Stats: s}
}

// Stats is a snapshot of the sensor's counters since it started. The same
// snapshot feeds the stats record and the Prometheus metrics, so both
// always agree. Counters only grow; gauges (active, depth, bytes) do not.
type Stats struct {
	Uptime   int64             `json:"uptime"` // seconds since start
	Capture  CaptureStats      `json:"capture"`
	Flow     FlowStats         `json:"flow"`
	Labels   map[string]uint64 `json:"labels,omitempty"` // flows per label
	Sessions SessionStats      `json:"ra_session"`
	Alerts   AlertStats        `json:"alert"`
	Verdicts map[string]uint64 `json:"verdicts,omitempty"` // inline: packets per verdict (accept, drop)
	Reloads  ReloadStats       `json:"reloads"`
	Sinks    []SinkStats       `json:"sinks,omitempty"`
}

// CaptureStats counts what the capture delivered and lost.
type CaptureStats struct {
	Packets     uint64 `json:"packets"`
	Bytes       uint64 `json:"bytes"`
	KernelDrops uint64 `json:"kernel_drops"` // dropped by the kernel before rasentry read them (AF_PACKET, NFQUEUE)
	UserDrops   uint64 `json:"user_drops"`   // read but dropped inside rasentry (a worker's queue was full)
}

// FlowStats counts flows.
type FlowStats struct {
	Active  uint64 `json:"active"`  // gauge: flows tracked now
	Ended   uint64 `json:"ended"`   // flows whose record was written
	Evicted uint64 `json:"evicted"` // ended early because the table was full
}

// SessionStats counts Remote Assistance sessions.
type SessionStats struct {
	Formed uint64            `json:"formed"`
	Active uint64            `json:"active"` // gauge
	ByMode map[string]uint64 `json:"by_mode,omitempty"`
}

// AlertStats counts the policy engine's alerts.
type AlertStats struct {
	Total      uint64      `json:"total"`
	Suppressed uint64      `json:"suppressed"` // held back by a rule's suppression window
	ByRule     []RuleStats `json:"by_rule,omitempty"`
}

// RuleStats counts one policy rule's alerts for one action.
type RuleStats struct {
	Rule       string `json:"rule"`
	Action     string `json:"action"` // the decision: log, alert, block
	Alerts     uint64 `json:"alerts"`
	Suppressed uint64 `json:"suppressed"`
}

// ReloadStats counts configuration reloads (SIGHUP).
type ReloadStats struct {
	OK     uint64 `json:"ok"`
	Failed uint64 `json:"failed"` // rejected: the previous configuration kept running
}

// SinkStats is one sink's delivery: its queue, its spool, and what it
// delivered, spooled and dropped.
type SinkStats struct {
	Name          string     `json:"name"`
	Type          string     `json:"type"`
	QueueDepth    int        `json:"queue_depth"`    // gauge: records waiting in memory
	QueueCapacity int        `json:"queue_capacity"` // the bound of the memory queue
	SpoolBytes    int64      `json:"spool_bytes"`    // gauge: bytes on disk in the spool
	SpoolRecords  int64      `json:"spool_records"`  // gauge: records waiting in the spool
	SpoolCapacity int64      `json:"spool_capacity"` // the spool's bound in bytes (0: no spool)
	Written       uint64     `json:"written"`        // records handed to the sink: delivered + dropped + waiting
	Delivered     uint64     `json:"delivered"`      // records the destination accepted
	Spooled       uint64     `json:"spooled"`        // records that went through the spool
	Dropped       DropCounts `json:"dropped"`
	Errors        uint64     `json:"errors"` // failed delivery attempts (each is retried)
	LastError     string     `json:"last_error,omitempty"`
}

// DropCounts counts records lost past every bound, by reason.
type DropCounts struct {
	QueueFull  uint64 `json:"queue_full"`  // memory queue full and no spool configured
	SpoolFull  uint64 `json:"spool_full"`  // memory queue and spool both full
	SpoolError uint64 `json:"spool_error"` // the spool could not be written (disk full, I/O error)
	Corrupt    uint64 `json:"corrupt"`     // spooled records that failed their checksum on replay
	Rejected   uint64 `json:"rejected"`    // records the destination refused for good (too large, invalid)
	Encode     uint64 `json:"encode"`      // a record that could not be encoded
	Closed     uint64 `json:"closed"`      // written after Close, or left undelivered at a shutdown deadline with no spool
}

// Total returns all drops.
func (d DropCounts) Total() uint64 {
	return d.QueueFull + d.SpoolFull + d.SpoolError + d.Corrupt + d.Rejected + d.Encode + d.Closed
}

// Each calls fn for every reason and its count, in a fixed order (metric
// labels).
func (d DropCounts) Each(fn func(reason string, n uint64)) {
	fn("queue_full", d.QueueFull)
	fn("spool_full", d.SpoolFull)
	fn("spool_error", d.SpoolError)
	fn("corrupt", d.Corrupt)
	fn("rejected", d.Rejected)
	fn("encode", d.Encode)
	fn("closed", d.Closed)
}
