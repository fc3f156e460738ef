package sensor

import (
	"net/netip"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/rasentry/rasentry/classify"
	"github.com/rasentry/rasentry/internal/corpus"
)

// oracleLabel maps tshark's protocol word in flows.tsv to the label a flow
// must carry, and the detector that gives it.
var oracleLabel = map[string]struct {
	label    classify.Label
	detector string
}{
	"rdp":       {classify.LabelRDP, "rdp"},
	"rdp-udp":   {classify.LabelRDPUDP, "rdp"},
	"dcerpc":    {classify.LabelDCERPC, "dcerpc"},
	"teredo":    {classify.LabelTeredo, "teredo"},
	"ssdp":      {classify.LabelSSDP, "ssdp"},
	"upnp-http": {classify.LabelUPnPControl, "upnp"},
}

// Oracle rows that are wrong, with the reason (see the corpus README).
var oracleErrors = map[string]string{
	"dcerpc/markofu-ppa-evilprogram.pcap udp 1434": "SQL Slammer, not DCE/RPC: tshark's connectionless heuristic is wrong",
	// A bare "M-SEARCH * HTTP/1.1" line with none of SSDP's headers (ST, MAN)
	// to UDP 32412: Plex GDM discovery borrowing the start line, not SSDP.
	"upnp/ndpi-ssdp-m-search.pcap udp 32412": "Plex GDM discovery, not SSDP",
}

func oracleErrorFor(e corpus.Entry, o corpus.OracleFlow) (string, bool) {
	r, ok := oracleErrors[e.Path+" "+o.Proto+" "+strconv.Itoa(int(o.Server.Port()))]
	return r, ok
}

// TestCorpusLabels replays every corpus capture through the whole pipeline
// and checks that each flow of interest tshark recognised (not port-only)
// carries its family's label, and that no negative capture gets any label.
func TestCorpusLabels(t *testing.T) {
	root := corpus.Root()
	if root == "" {
		t.Skip("../shared/pcaps/real is absent (a plain clone): corpus test skipped")
	}
	entries, err := corpus.Manifest(root)
	if err != nil {
		t.Fatal(err)
	}
	registered := map[string]bool{}
	for _, d := range classify.DefaultDetectors() {
		registered[d.Name()] = true
	}
	type tally struct{ listed, labelled int }
	perKind := map[string]*tally{}
	negFlows, negLabelled := 0, 0
	for _, e := range entries {
		recs, err := replayFile(t, filepath.Join(root, e.Path))
		if err != nil {
			t.Errorf("%s: %v", e.Path, err)
		}
		byPair := map[string][]*flowRecord{}
		for _, fr := range flowRecords(t, recs) {
			if fr.SrcPort == nil {
				continue
			}
			a := netip.AddrPortFrom(netip.MustParseAddr(fr.SrcIP), *fr.SrcPort)
			b := netip.AddrPortFrom(netip.MustParseAddr(fr.DestIP), *fr.DestPort)
			k := corpus.PairKey(fr.Proto, a, b)
			byPair[k] = append(byPair[k], fr)
			if e.Family == "negative" {
				negFlows++
				if len(fr.Rasentry.Labels) > 0 {
					negLabelled++
					t.Errorf("negative %s: flow %s labelled %v", e.Path, k, fr.Rasentry.Labels)
				}
			}
		}
		oracle, err := corpus.Flows(root, e)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range oracle {
			if o.PortOnly() {
				continue
			}
			want, ok := oracleLabel[o.Kind()]
			if !ok {
				t.Errorf("%s: unknown oracle kind %q", e.Path, o.TsharkLabel)
				continue
			}
			if !registered[want.detector] {
				continue // that family's detector has not landed yet
			}
			k := corpus.PairKey(strings.ToUpper(o.Proto), o.Client, o.Server)
			has := false
			for _, fr := range byPair[k] {
				for _, l := range fr.Rasentry.Labels {
					if l == want.label.String() {
						has = true
					}
				}
			}
			if reason, isErr := oracleErrorFor(e, o); isErr {
				if has {
					t.Errorf("%s: %s labelled %s although %s", e.Path, k, want.label, reason)
				}
				continue
			}
			tl := perKind[o.Kind()]
			if tl == nil {
				tl = &tally{}
				perKind[o.Kind()] = tl
			}
			tl.listed++
			if has {
				tl.labelled++
			} else {
				t.Errorf("%s: %s (tshark: %s) lacks label %s", e.Path, k, o.TsharkLabel, want.label)
			}
		}
	}
	kinds := make([]string, 0, len(perKind))
	for k := range perKind {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		t.Logf("corpus %-9s %d/%d flows labelled", k, perKind[k].labelled, perKind[k].listed)
	}
	t.Logf("corpus negatives: %d labelled of %d flows", negLabelled, negFlows)
}
