// Package corpus reads the shared corpus of real captures
// (../shared/pcaps/real): its MANIFEST.tsv and the tshark oracles beside it.
package corpus

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
)

// Entry is one row of MANIFEST.tsv.
type Entry struct {
	Path     string // relative to the corpus root
	Family   string
	LinkType string
	Flows    []string // flows_of_interest, split on ';' ("none" gives nil)
	Notes    string
}

// Root returns the corpus directory (../shared/pcaps/real beside the
// checkout), or "" when it is absent, as in a plain clone.
func Root() string {
	if r := os.Getenv("RASENTRY_CORPUS"); r != "" {
		return r
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	repo := filepath.Join(filepath.Dir(file), "..", "..")
	dir := filepath.Join(repo, "..", "shared", "pcaps", "real")
	if st, err := os.Stat(filepath.Join(dir, "MANIFEST.tsv")); err == nil && !st.IsDir() {
		return dir
	}
	return ""
}

// Manifest reads MANIFEST.tsv under root.
func Manifest(root string) ([]Entry, error) {
	f, err := os.Open(filepath.Join(root, "MANIFEST.tsv"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var out []Entry
	header := true
	for sc.Scan() {
		if header {
			header = false
			continue
		}
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) < 11 {
			return nil, fmt.Errorf("MANIFEST.tsv: row %q has %d columns, want 11", cols[0], len(cols))
		}
		e := Entry{Path: cols[0], Family: cols[1], LinkType: cols[7], Notes: cols[10]}
		if cols[8] != "none" && cols[8] != "" {
			e.Flows = strings.Split(cols[8], ";")
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// Conversation is one line of a tshark conversation table.
type Conversation struct {
	Proto string // "TCP" or "UDP"
	A, B  netip.AddrPort
}

var convLine = regexp.MustCompile(`^(\S+)\s+<->\s+(\S+)\s+\d`)

// Conversations reads oracles/<family>/<file>.tshark-conv.txt for a capture.
func Conversations(root string, e Entry) ([]Conversation, error) {
	name := filepath.Join(root, "oracles", e.Family, filepath.Base(e.Path)+".tshark-conv.txt")
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Conversation
	proto := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "TCP Conversations"):
			proto = "TCP"
			continue
		case strings.HasPrefix(line, "UDP Conversations"):
			proto = "UDP"
			continue
		}
		m := convLine.FindStringSubmatch(line)
		if m == nil || proto == "" {
			continue
		}
		a, err1 := parseEndpoint(m[1])
		b, err2 := parseEndpoint(m[2])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%s: cannot parse %q", name, line)
		}
		out = append(out, Conversation{Proto: proto, A: a, B: b})
	}
	return out, sc.Err()
}

// parseEndpoint reads tshark's "addr:port", where an IPv6 address is not
// bracketed: the port follows the last colon.
func parseEndpoint(s string) (netip.AddrPort, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return netip.AddrPort{}, fmt.Errorf("no port in %q", s)
	}
	a, err := netip.ParseAddr(s[:i])
	if err != nil {
		return netip.AddrPort{}, err
	}
	var port uint16
	if _, err := fmt.Sscanf(s[i+1:], "%d", &port); err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(a, port), nil
}

// PairKey names an unordered endpoint pair of a transport, for matching.
func PairKey(proto string, a, b netip.AddrPort) string {
	x, y := a.String(), b.String()
	if y < x {
		x, y = y, x
	}
	return proto + " " + x + " " + y
}

// OracleFlow is one row of oracles/<family>/<file>.flows.tsv: a flow of
// interest as tshark labelled it.
type OracleFlow struct {
	Family, Proto  string // proto: "tcp" or "udp"
	Client, Server netip.AddrPort
	TsharkLabel    string
	NDPILabel      string
}

// PortOnly reports whether the oracle knows the flow only by its port
// (no dissector recognised it).
func (o OracleFlow) PortOnly() bool { return strings.Contains(o.TsharkLabel, "(port-only)") }

// Kind is the tshark label's protocol word: rdp, rdp-udp, dcerpc, teredo,
// ssdp, upnp-http.
func (o OracleFlow) Kind() string {
	k := o.TsharkLabel
	if i := strings.IndexAny(k, "([ "); i >= 0 {
		k = k[:i]
	}
	return k
}

// Flows reads the flows-of-interest oracle of a capture (nil when it has none).
func Flows(root string, e Entry) ([]OracleFlow, error) {
	name := filepath.Join(root, "oracles", e.Family, filepath.Base(e.Path)+".flows.tsv")
	f, err := os.Open(name)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []OracleFlow
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	first := true
	for sc.Scan() {
		if first {
			first = false
			continue
		}
		c := strings.Split(sc.Text(), "\t")
		if len(c) < 6 {
			continue
		}
		cl, err1 := parseEndpoint(strings.Trim(c[2], "[]"))
		sv, err2 := parseEndpoint(strings.Trim(c[3], "[]"))
		if err1 != nil || err2 != nil {
			cl, err1 = parseBracketed(c[2])
			sv, err2 = parseBracketed(c[3])
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("%s: cannot parse endpoints %q %q", name, c[2], c[3])
			}
		}
		out = append(out, OracleFlow{Family: c[0], Proto: c[1], Client: cl, Server: sv, TsharkLabel: c[4], NDPILabel: c[5]})
	}
	return out, sc.Err()
}

// parseBracketed reads "[v6addr]:port".
func parseBracketed(s string) (netip.AddrPort, error) { return netip.ParseAddrPort(s) }
