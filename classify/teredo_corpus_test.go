package classify

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// This file replays the shared real captures through the Teredo and PNRP
// detectors with a small stand-in for the classifier's flow table: flows
// keyed by 5-tuple (client = sender of the first packet), GTP-U and 6in4
// decoded by gopacket, and Teredo decapsulation of flows the detector marks,
// so inner IPv6/UDP flows reach the detectors too. The lead may replace it
// with the real pipeline.

const teredoRealCaptures = "../../shared/pcaps/real"

// tpCorpusFlow is a flow of the replay and the detectors still looking at it.
type tpCorpusFlow struct {
	f    *Flow
	done [2]bool
	fed  [2][2]int // [detector][direction]
}

type tpReplay struct {
	ctx   *Context
	dets  []Detector
	flows map[string]*tpCorpusFlow
	order []*tpCorpusFlow
}

func newTPReplay() *tpReplay {
	return &tpReplay{ctx: tpContext(),
		dets:  []Detector{NewTeredoDetector(TeredoOptions{}), NewPNRPDetector(PNRPOptions{})},
		flows: map[string]*tpCorpusFlow{}}
}

func tpFlowKey(src, dst netip.AddrPort, depth uint8) string {
	a, b := src.String(), dst.String()
	if b < a {
		a, b = b, a
	}
	return a + "|" + b + "|" + string('0'+depth)
}

// datagram runs one UDP datagram through the flow table and detectors, and
// decapsulates it when its flow is Teredo.
func (r *tpReplay) datagram(src, dst netip.AddrPort, payload []byte, depth uint8) {
	k := tpFlowKey(src, dst, depth)
	cf := r.flows[k]
	if cf == nil {
		cf = &tpCorpusFlow{f: &Flow{Proto: ProtoUDP, Client: src, Server: dst, Depth: depth}}
		r.flows[k] = cf
		r.order = append(r.order, cf)
	}
	f := cf.f
	dir := f.Direction(src)
	decap := f.Decapsulation() == DecapTeredo // decided by an earlier packet
	if len(payload) > 0 {
		seg := &Segment{Dir: dir, Payload: payload, Src: src, Dst: dst, Index: int(f.Pkts[dir])}
		for i, d := range r.dets {
			if cf.done[i] || cf.fed[i][dir] >= d.Budget() {
				continue
			}
			r.ctx.Detector = i
			if d.Inspect(r.ctx, f, seg) == Done {
				cf.done[i] = true
			}
			cf.fed[i][dir] += len(payload)
		}
	}
	f.Pkts[dir]++
	if decap && depth < 2 {
		if p, ok := ParseTeredo(payload); ok && p.NextHeader == ProtoUDP && len(p.IPv6) >= 48 {
			udp := p.IPv6[40:]
			s := netip.AddrPortFrom(p.Src, binary.BigEndian.Uint16(udp))
			d := netip.AddrPortFrom(p.Dst, binary.BigEndian.Uint16(udp[2:]))
			r.datagram(s, d, udp[8:], depth+1)
		}
	}
}

// replayFile decodes every packet of a pcap or pcapng file. It returns the
// number of packets it could not decode to IP.
func (r *tpReplay) replayFile(t *testing.T, path string) (undecoded int) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type source interface {
		ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	}
	var src source
	var lt layers.LinkType
	if bytes.HasPrefix(data, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		ng, err := pcapgo.NewNgReader(bytes.NewReader(data), pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		src, lt = ng, ng.LinkType()
	} else {
		pr, err := pcapgo.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		src, lt = pr, pr.LinkType()
	}
	for {
		tpPkt, _, err := src.ReadPacketData()
		if err == io.EOF {
			return undecoded
		}
		if err != nil {
			t.Logf("%s: %v", path, err)
			return undecoded
		}
		p := gopacket.NewPacket(tpPkt, lt, gopacket.NoCopy)
		// The innermost UDP datagram and the IP header before it (GTP-U
		// and 6in4 tunnels are decoded by gopacket).
		var ip gopacket.Layer
		var udp *layers.UDP
		sawIP := false
		for _, l := range p.Layers() {
			switch l := l.(type) {
			case *layers.IPv4, *layers.IPv6:
				ip, sawIP = l, true
			case *layers.UDP:
				if ip != nil {
					udp = l
				}
			}
		}
		if !sawIP {
			undecoded++
			continue
		}
		if udp == nil {
			continue
		}
		var s, d netip.Addr
		switch ip := ip.(type) {
		case *layers.IPv4:
			s, _ = netip.AddrFromSlice(ip.SrcIP.To4())
			d, _ = netip.AddrFromSlice(ip.DstIP.To4())
		case *layers.IPv6:
			s, _ = netip.AddrFromSlice(ip.SrcIP)
			d, _ = netip.AddrFromSlice(ip.DstIP)
		}
		r.datagram(netip.AddrPortFrom(s, uint16(udp.SrcPort)), netip.AddrPortFrom(d, uint16(udp.DstPort)), udp.Payload, 0)
	}
}

// tpOracleFlow is one line of an oracles/<family>/<file>.flows.tsv.
type tpOracleFlow struct {
	family, client, server, label string
}

func tpReadOracle(t *testing.T, path string) []tpOracleFlow {
	fh, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		t.Fatal(err)
	}
	defer fh.Close()
	var out []tpOracleFlow
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		c := strings.Split(sc.Text(), "\t")
		if len(c) < 5 || c[0] == "family" {
			continue
		}
		out = append(out, tpOracleFlow{family: c[0], client: c[2], server: c[3], label: c[4]})
	}
	return out
}

// TestTeredoCorpus replays every shared real capture: each Teredo flow the
// oracles list must be labelled teredo (and teredo-qualification exactly
// where tshark saw RS/RA), and no other flow anywhere may carry a Teredo or
// PNRP label (negatives include 6in4, QUIC, DNS, SSDP, RDP-UDP and more).
func TestTeredoCorpus(t *testing.T) {
	if _, err := os.Stat(teredoRealCaptures); err != nil {
		t.Skipf("real captures not found at %s (a plain clone has no ../shared): %v", teredoRealCaptures, err)
	}
	var files []string
	for _, fam := range []string{"teredo", "upnp", "negative", "rdp", "dcerpc"} {
		m, _ := filepath.Glob(filepath.Join(teredoRealCaptures, fam, "*.pcap*"))
		files = append(files, m...)
	}
	sort.Strings(files)
	if len(files) == 0 {
		t.Skip("no captures")
	}
	matched := 0
	for _, path := range files {
		rel, _ := filepath.Rel(teredoRealCaptures, path)
		t.Run(rel, func(t *testing.T) {
			r := newTPReplay()
			if n := r.replayFile(t, path); n > 0 {
				t.Logf("%d packets not decodable to IP by gopacket (link type)", n)
			}
			fam := filepath.Base(filepath.Dir(path))
			want := map[string]tpOracleFlow{}
			for _, o := range tpReadOracle(t, filepath.Join(teredoRealCaptures, "oracles", fam, filepath.Base(path)+".flows.tsv")) {
				if o.family == "teredo" {
					want[tpFlowKey(netip.MustParseAddrPort(o.client), netip.MustParseAddrPort(o.server), 0)] = o
				}
			}
			for k, o := range want {
				cf := r.flows[k]
				if cf == nil {
					t.Errorf("oracle flow %s > %s not seen", o.client, o.server)
					continue
				}
				f := cf.f
				if !f.Labels.Has(LabelTeredo) {
					t.Errorf("%s > %s (%s): labels %v, want teredo", o.client, o.server, o.label, f.Labels.Strings())
					continue
				}
				matched++
				qual := strings.Contains(o.label, "qualification(RS/RA)")
				if f.Labels.Has(LabelTeredoQualification) != qual {
					t.Errorf("%s > %s (%s): teredo-qualification %v, want %v", o.client, o.server, o.label, !qual, qual)
				}
				ev := f.GetEvidence("teredo").(*TeredoEvidence)
				t.Logf("teredo %s > %s: server=%v client=%v mapped=%v:%d bubbles=%d qual=%v origin=%v inner=%v",
					f.Client, f.Server, ev.Server, ev.ClientTeredoAddr, ev.MappedAddr, ev.MappedPort, ev.Bubbles,
					ev.Qualification, ev.OriginIndication, ev.InnerProtocols)
			}
			for k, cf := range r.flows {
				f := cf.f
				if f.Labels.Has(LabelPNRP) || f.Labels.Has(LabelPNRPRAEasyConnect) {
					t.Errorf("%s > %s (depth %d): PNRP label on a capture without PNRP", f.Client, f.Server, f.Depth)
				}
				if _, ok := want[k]; !ok && (f.Labels.Has(LabelTeredo) || f.Labels.Has(LabelTeredoQualification)) {
					t.Errorf("%s > %s (depth %d): labelled %v, not a Teredo flow of the oracle", f.Client, f.Server, f.Depth, f.Labels.Strings())
				}
				if f.Depth > 0 {
					t.Logf("inner flow %s > %s", f.Client, f.Server)
				}
			}
		})
	}
	t.Logf("%d oracle Teredo flows labelled", matched)
}

// TestTeredoLabCapture replays a capture recorded from real Teredo peers
// (miredo-server and two miredo clients in network namespaces, testlab.md
// §2c, with PNRP messages from internal/testutil sent between the clients'
// Teredo addresses) named by $TEREDO_LAB_PCAP. Every UDP flow of it is
// Teredo; the qualification flows, the direct client-to-client flow and the
// PNRP flows inside must be found.
func TestTeredoLabCapture(t *testing.T) {
	path := os.Getenv("TEREDO_LAB_PCAP")
	if path == "" {
		t.Skip("TEREDO_LAB_PCAP not set (a capture from the miredo lab)")
	}
	r := newTPReplay()
	r.replayFile(t, path)
	var qual, direct, pnrp, ra int
	for _, cf := range r.order {
		f := cf.f
		t.Logf("depth %d %s > %s: %v %v", f.Depth, f.Client, f.Server, f.Labels.Strings(), tpEvidenceJSON(f))
		switch {
		case f.Depth > 0:
			if f.Labels.Has(LabelPNRP) {
				pnrp++
			}
			if f.Labels.Has(LabelPNRPRAEasyConnect) {
				ra++
			}
		case !f.Labels.Has(LabelTeredo):
			t.Errorf("%s > %s not labelled teredo", f.Client, f.Server)
		case f.Labels.Has(LabelTeredoQualification):
			qual++
		case !onTeredoPort(f):
			direct++
		}
	}
	if qual == 0 || direct == 0 || pnrp == 0 || ra == 0 {
		t.Errorf("qualification flows %d, direct flows %d, inner PNRP flows %d, Easy Connect %d: want each > 0", qual, direct, pnrp, ra)
	}
}

func tpEvidenceJSON(f *Flow) string {
	var parts []string
	if x := f.Extension(); x != nil {
		x.Evidence.Each(func(name string, v any) {
			b, _ := json.Marshal(v)
			parts = append(parts, name+"="+string(b))
		})
	}
	return strings.Join(parts, " ")
}
