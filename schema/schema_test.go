package schema

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// compile compiles the schema in file name, with every schema of the
// package loaded under its $id and formats (ipv4, ipv6, date-time)
// asserted.
func compile(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	files, err := fs.Glob(Files, "*.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := Files.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var head struct {
			ID string `json:"$id"`
		}
		json.Unmarshal(b, &head)
		if head.ID != BaseURL+f {
			t.Fatalf("%s: $id %q, want %q", f, head.ID, BaseURL+f)
		}
		if err := c.AddResource(head.ID, doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	s, err := c.Compile(BaseURL + name)
	if err != nil {
		t.Fatalf("compiling %s: %v", name, err)
	}
	return s
}

// validateLines validates every line of a JSON-lines file and returns the
// count by event type.
func validateLines(t *testing.T, s *jsonschema.Schema, path string) map[string]int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	counts := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for n := 1; sc.Scan(); n++ {
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(sc.Bytes()))
		if err != nil {
			t.Fatalf("%s:%d: not JSON: %v", path, n, err)
		}
		if err := s.Validate(v); err != nil {
			t.Errorf("%s:%d: %v\n%s", path, n, err, sc.Text())
			continue
		}
		var head struct {
			EventType string `json:"event_type"`
			Event     struct {
				Dataset string `json:"dataset"`
			} `json:"event"`
		}
		json.Unmarshal(sc.Bytes(), &head)
		counts[head.EventType+head.Event.Dataset]++
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return counts
}

// Every golden record of the repository — the pipeline's (pcaps/*.golden.jsonl
// and, per policy preset, pcaps/golden/*.jsonl) and the record shapes of
// package alert in both formats — is valid.
func TestGoldenRecordsValidate(t *testing.T) {
	eve, ecs := compile(t, "record.json"), compile(t, "ecs.json")
	goldens, _ := filepath.Glob(filepath.Join("..", "pcaps", "*.golden.jsonl"))
	if len(goldens) == 0 {
		t.Fatal("no pcaps/*.golden.jsonl")
	}
	perPolicy, _ := filepath.Glob(filepath.Join("..", "pcaps", "golden", "*.jsonl"))
	goldens = append(goldens, perPolicy...)
	goldens = append(goldens, filepath.Join("..", "alert", "testdata", "records.eve.jsonl"))
	all := map[string]int{}
	for _, g := range goldens {
		for k, v := range validateLines(t, eve, g) {
			all[k] += v
		}
	}
	for _, typ := range []string{"flow", "alert", "ra_session", "stats"} {
		if all[typ] == 0 {
			t.Errorf("no %s record among the golden files: the schema of it went untested", typ)
		}
	}
	t.Logf("EVE records validated: %v", all)
	got := validateLines(t, ecs, filepath.Join("..", "alert", "testdata", "records.ecs.jsonl"))
	for _, ds := range []string{"rasentry.flow", "rasentry.alert", "rasentry.ra_session", "rasentry.stats"} {
		if got[ds] == 0 {
			t.Errorf("no ECS %s record validated", ds)
		}
	}
	t.Logf("ECS records validated: %v", got)
}

// The schemas reject what they must: the test proves they are not vacuous.
func TestSchemasReject(t *testing.T) {
	eve, ecs := compile(t, "record.json"), compile(t, "ecs.json")
	flow := `{"timestamp":"2026-01-05T09:00:00.009000+0000","flow_id":1,"event_type":"flow","src_ip":"10.0.0.1","src_port":1,"dest_ip":"10.0.0.2","dest_port":80,"proto":"TCP","community_id":"1:4RLwuXaZH0rXS2kw2Sr9/hSJPvk=","flow":{"pkts_toserver":1,"pkts_toclient":1,"bytes_toserver":1,"bytes_toclient":1,"start":"2026-01-05T09:00:00.000000+0000","end":"2026-01-05T09:00:00.009000+0000","age":0,"reason":"closed"},"rasentry":{"labels":[]}}`
	valid := func(s *jsonschema.Schema, doc string) error {
		v, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
		if err != nil {
			t.Fatalf("bad test JSON %s: %v", doc, err)
		}
		return s.Validate(v)
	}
	if err := valid(eve, flow); err != nil {
		t.Fatalf("the base flow record is invalid: %v", err)
	}
	for name, c := range map[string][2]string{
		"timestamp layout":         {`"timestamp":"2026-01-05T09:00:00.009000+0000"`, `"timestamp":"2026-01-05 09:00:00"`},
		"no community_id":          {`"community_id":"1:4RLwuXaZH0rXS2kw2Sr9/hSJPvk=",`, ``},
		"bad ip":                   {`"src_ip":"10.0.0.1"`, `"src_ip":"10.0.0.256"`},
		"unknown field":            {`"proto":"TCP"`, `"proto":"TCP","protocol":"tcp"`},
		"unknown event type":       {`"event_type":"flow"`, `"event_type":"dns"`},
		"flow_id past 51 bits":     {`"flow_id":1,`, `"flow_id":2251799813685248,`},
		"bad end reason":           {`"reason":"closed"`, `"reason":"gone"`},
		"evidence not an object":   {`"labels":[]`, `"labels":[],"rdp":"cookie"`},
		"label not in label style": {`"labels":[]`, `"labels":["RDP"]`},
	} {
		doc := strings.Replace(flow, c[0], c[1], 1)
		if doc == flow {
			t.Fatalf("%s: the replacement did not apply", name)
		}
		if err := valid(eve, doc); err == nil {
			t.Errorf("%s: accepted %s", name, doc)
		}
	}
	ecsFlow := `{"@timestamp":"2026-01-05T09:00:01.000000Z","ecs":{"version":"8.17.0"},"event":{"kind":"event","module":"rasentry","dataset":"rasentry.flow","start":"2026-01-05T09:00:00.000000Z","end":"2026-01-05T09:00:01.000000Z","duration":1,"reason":"timeout"},"source":{"ip":"10.0.0.1","bytes":0,"packets":0},"destination":{"ip":"10.0.0.2","bytes":0,"packets":0},"network":{"transport":"udp","community_id":"1:u2vMS3HiWth2lIMKHB1fjELshpQ=","bytes":0,"packets":0},"observer":{"product":"rasentry","vendor":"rasentry","type":"ids"},"related":{"ip":["10.0.0.1"]},"rasentry":{"flow_id":17,"labels":[]}}`
	if err := valid(ecs, ecsFlow); err != nil {
		t.Fatalf("the base ECS flow is invalid: %v", err)
	}
	for name, c := range map[string][2]string{
		"kind alert on a flow":  {`"kind":"event"`, `"kind":"alert"`},
		"no flow_id":            {`"flow_id":17,`, ``},
		"EVE time in ECS":       {`"@timestamp":"2026-01-05T09:00:01.000000Z"`, `"@timestamp":"2026-01-05T09:00:01.000000+0000"`},
		"unknown dataset":       {`"dataset":"rasentry.flow"`, `"dataset":"rasentry.dns"`},
		"no network on a flow":  {`"network":{"transport":"udp","community_id":"1:u2vMS3HiWth2lIMKHB1fjELshpQ=","bytes":0,"packets":0},`, ``},
		"bad network direction": {`"transport":"udp"`, `"transport":"udp","direction":"sideways"`},
	} {
		doc := strings.Replace(ecsFlow, c[0], c[1], 1)
		if doc == ecsFlow {
			t.Fatalf("%s: the replacement did not apply", name)
		}
		if err := valid(ecs, doc); err == nil {
			t.Errorf("%s: accepted %s", name, doc)
		}
	}
}
