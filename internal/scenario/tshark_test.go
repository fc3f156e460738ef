package scenario

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rasentry/rasentry/internal/testutil"
)

// What tshark must see in each scenario. Decode-as options point tshark at
// the dynamic ports (it only knows RDP on 3389 and DCE/RPC on 135).
var tsharkExpect = map[string]struct {
	args      []string
	protocols []string
}{
	"basic":           {nil, []string{"http", "dns", "icmp", "icmpv6", "vlan", "smtp"}},
	"offer":           {[]string{"-d", "tcp.port==49800,tpkt", "-d", "tcp.port==49703,dcerpc"}, []string{"dcerpc", "rdp", "t124"}},
	"invitation-mail": {[]string{"-d", "tcp.port==49800,tpkt"}, []string{"smtp", "imf", "rdp"}},
	"upnp":            {[]string{"-d", "tcp.port==49800,tpkt", "-d", "tcp.port==5000,http"}, []string{"ssdp", "http", "xml", "rdp"}},
	"rdp-plain":       {nil, []string{"rdp", "tpkt"}},
	"dcom-wmi":        {[]string{"-d", "tcp.port==49668,dcerpc"}, []string{"dcerpc"}},
	// tshark 4.0's PNRP dissector flags every message malformed after its
	// first field (a bug in the dissector), but it does recognise them.
	"easy-connect": {[]string{"-o", "teredo.heuristic_teredo:TRUE", "-d", "tcp.port==49800,tpkt"}, []string{"dns", "teredo", "icmpv6", "pnrp", "rdp"}},
}

// TestTsharkDissectsScenarios has tshark (Wireshark's dissectors, an
// independent implementation of the specifications) read every generated
// capture and checks it finds the intended protocols.
func TestTsharkDissectsScenarios(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark is not installed (apt-get install tshark): scenario dissection check skipped")
	}
	for _, s := range List() {
		t.Run(s.Name, func(t *testing.T) {
			want, ok := tsharkExpect[s.Name]
			if !ok {
				t.Fatalf("no tshark expectation for scenario %q", s.Name)
			}
			frames, err := Build(s.Name, Options{Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), s.Name+".pcap")
			if err := testutil.WritePcap(path, frames); err != nil {
				t.Fatal(err)
			}
			args := append([]string{"-n", "-r", path, "-T", "fields", "-e", "frame.protocols"}, want.args...)
			out, err := exec.Command(tshark, args...).Output()
			if err != nil {
				t.Fatalf("tshark: %v", err)
			}
			seen := map[string]bool{}
			for _, line := range strings.Split(string(out), "\n") {
				for _, p := range strings.Split(strings.TrimSpace(line), ":") {
					seen[p] = true
				}
			}
			for _, p := range want.protocols {
				if !seen[p] {
					t.Errorf("tshark did not see %s in %s (saw %v)", p, s.Name, keys(seen))
				}
			}
		})
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
