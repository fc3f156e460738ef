// Package schema holds the JSON Schemas (draft 2020-12) of rasentry's
// records: one per EVE record type (flow.json, alert.json,
// ra_session.json, stats.json, their shared definitions in common.json,
// and record.json, which picks the right one by event_type), and ecs.json
// for the ECS layout (--format ecs). SIEM engineers can load them to
// check a pipeline; the tests validate every golden record against them.
package schema

import "embed"

// Files holds the schemas, by file name.
//
//go:embed *.json
var Files embed.FS

// BaseURL is the common prefix of the schemas' $id: a schema's $id is
// BaseURL + its file name, and their $refs are relative to it.
const BaseURL = "https://github.com/rasentry/rasentry/schema/"
