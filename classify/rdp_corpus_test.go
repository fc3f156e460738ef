package classify

// Corpus test for the RDP detector on the shared real captures. It carries
// its own small pcap reader and flow builder (TCP in sequence order with
// retransmissions removed, budget per direction as the classifier applies
// it); the lead replaces it with the real pipeline later.

import (
	"bufio"
	"encoding/json"
	"errors"
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

const rdpRealDir = "../../shared/pcaps/real"

// corpusFlow is one flow as the test helper tracks it.
type corpusFlow struct {
	f        *Flow
	nextSeq  [2]uint32
	seqKnown [2]bool
	index    [2]int
	fed      [2]int
	done     bool
}

// corpusRun feeds every TCP/UDP flow of a capture to one detector and
// returns the flows by (client, server, proto).
func corpusRun(t *testing.T, path string, det Detector) map[string]*corpusFlow {
	t.Helper()
	fh, err := os.Open(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	defer fh.Close()
	var magic [4]byte
	if _, err := io.ReadFull(fh, magic[:]); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if _, err := fh.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	type source interface {
		ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	}
	var src source
	var linkOf func(ci gopacket.CaptureInfo) layers.LinkType
	if magic == [4]byte{0x0a, 0x0d, 0x0d, 0x0a} {
		r, err := pcapgo.NewNgReader(bufio.NewReader(fh), pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		src = r
		linkOf = func(ci gopacket.CaptureInfo) layers.LinkType {
			if ifc, err := r.Interface(ci.InterfaceIndex); err == nil {
				return ifc.LinkType
			}
			return r.LinkType()
		}
	} else {
		r, err := pcapgo.NewReader(bufio.NewReader(fh))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		src = r
		linkOf = func(gopacket.CaptureInfo) layers.LinkType { return r.LinkType() }
	}

	ctx := &Context{Counters: &Counters{}, Expect: NewExpectTable(0, nil), Names: NewNameCache(0, nil)}
	flows := map[string]*corpusFlow{}
	budget := det.Budget()
	for {
		data, ci, err := src.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Logf("%s: stop reading: %v", path, err)
			break
		}
		pkt := corpusDecode(data, linkOf(ci))
		if pkt == nil {
			continue
		}
		var srcIP, dstIP netip.Addr
		switch ip := pkt.NetworkLayer().(type) {
		case *layers.IPv4:
			srcIP, _ = netip.AddrFromSlice(ip.SrcIP.To4())
			dstIP, _ = netip.AddrFromSlice(ip.DstIP.To4())
		case *layers.IPv6:
			srcIP, _ = netip.AddrFromSlice(ip.SrcIP)
			dstIP, _ = netip.AddrFromSlice(ip.DstIP)
		default:
			continue
		}
		var proto uint8
		var sp, dp uint16
		var payload []byte
		var flags uint8
		var seq uint32
		switch l := pkt.TransportLayer().(type) {
		case *layers.TCP:
			proto, sp, dp, payload, seq = ProtoTCP, uint16(l.SrcPort), uint16(l.DstPort), l.Payload, l.Seq
			if l.FIN {
				flags |= TCPFin
			}
			if l.SYN {
				flags |= TCPSyn
			}
			if l.RST {
				flags |= TCPRst
			}
			if l.PSH {
				flags |= TCPPsh
			}
			if l.ACK {
				flags |= TCPAck
			}
		case *layers.UDP:
			proto, sp, dp, payload = ProtoUDP, uint16(l.SrcPort), uint16(l.DstPort), l.Payload
		default:
			continue
		}
		src, dst := netip.AddrPortFrom(srcIP, sp), netip.AddrPortFrom(dstIP, dp)
		key := corpusKey(proto, src, dst)
		cf := flows[key]
		if cf == nil {
			f := &Flow{Proto: proto, Client: src, Server: dst}
			if proto == ProtoTCP && flags&(TCPSyn|TCPAck) == TCPSyn|TCPAck {
				f.Client, f.Server = dst, src
			}
			cf = &corpusFlow{f: f}
			flows[key] = cf
		}
		f := cf.f
		dir := f.Direction(src)
		f.SetTimes(f.Start(), ci.Timestamp)
		f.Pkts[dir]++
		f.TCPFlags[dir] |= flags
		gap := false
		if proto == ProtoTCP {
			if flags&TCPSyn != 0 {
				cf.nextSeq[dir], cf.seqKnown[dir] = seq+1, true
				payload = nil
			}
			if len(payload) > 0 {
				if !cf.seqKnown[dir] {
					cf.nextSeq[dir], cf.seqKnown[dir] = seq, true
				}
				off := int32(cf.nextSeq[dir] - seq)
				switch {
				case off >= int32(len(payload)):
					payload = nil // retransmission
				case off > 0:
					payload = payload[off:]
				case off < 0:
					gap = true
				}
				if len(payload) > 0 {
					cf.nextSeq[dir] = seq + uint32(int32(len(payload))+max(off, 0))
				}
			}
		}
		if len(payload) == 0 || cf.done {
			continue
		}
		if room := budget - cf.fed[dir]; len(payload) > room {
			payload = payload[:room]
		}
		seg := &Segment{Dir: dir, Payload: payload, Time: ci.Timestamp, TCPFlags: flags, Gap: gap, Src: src, Dst: dst, Index: cf.index[dir]}
		cf.index[dir]++
		cf.fed[dir] += len(payload)
		if det.Inspect(ctx, f, seg) == Done || cf.fed[dir] >= budget {
			cf.done = true
			ctx.SetState(f, nil)
		}
	}
	return flows
}

// corpusDecode decodes one frame, handling the link types gopacket leaves
// undecoded here (raw IPv4/IPv6 by number, Linux SLL2, NFLOG).
func corpusDecode(data []byte, lt layers.LinkType) gopacket.Packet {
	opts := gopacket.DecodeOptions{Lazy: true, NoCopy: true}
	ipPacket := func(b []byte) gopacket.Packet {
		if len(b) == 0 {
			return nil
		}
		if b[0]>>4 == 6 {
			return gopacket.NewPacket(b, layers.LayerTypeIPv6, opts)
		}
		return gopacket.NewPacket(b, layers.LayerTypeIPv4, opts)
	}
	switch lt {
	case 228, 229, 12, 14: // IPv4, IPv6, raw (BSD numbers)
		return ipPacket(data)
	case 276 & 0xff: // Linux SLL2 (276; gopacket keeps link types in a byte): 20-byte header
		if len(data) < 20 {
			return nil
		}
		return ipPacket(data[20:])
	case 239: // NFLOG: family, version, resource id, then TLVs (length, type) in host order
		b := data[min(4, len(data)):]
		for len(b) >= 4 {
			l := int(b[0]) | int(b[1])<<8
			typ := int(b[2]) | int(b[3])<<8
			if l < 4 || l > len(b) {
				return nil
			}
			if typ == 9 { // NFULA_PAYLOAD
				return ipPacket(b[4:l])
			}
			b = b[min((l+3)&^3, len(b)):]
		}
		return nil
	}
	return gopacket.NewPacket(data, lt, opts)
}

func corpusKey(proto uint8, a, b netip.AddrPort) string {
	x, y := a.String(), b.String()
	if x > y {
		x, y = y, x
	}
	return string(rune('0'+proto%10)) + "|" + x + "|" + y
}

// oracleRow is one line of an oracles/<family>/<file>.flows.tsv.
type oracleRow struct {
	family, proto, label string
	client, server       netip.AddrPort
}

func readOracle(t *testing.T, path string) []oracleRow {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rows []oracleRow
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		c := strings.Split(line, "\t")
		if i == 0 || len(c) < 5 {
			continue
		}
		cl, err1 := netip.ParseAddrPort(c[2])
		sv, err2 := netip.ParseAddrPort(c[3])
		if err1 != nil || err2 != nil {
			continue
		}
		rows = append(rows, oracleRow{family: c[0], proto: c[1], client: cl, server: sv, label: c[4]})
	}
	return rows
}

func skipWithoutCorpus(t *testing.T) {
	if _, err := os.Stat(rdpRealDir); err != nil {
		t.Skipf("shared captures not found at %s (plain clone): %v", rdpRealDir, err)
	}
}

func rdpLabelled(f *Flow) bool {
	return f.Labels.Has(LabelRDP) || f.Labels.Has(LabelRDPUDP) || f.Labels.Has(LabelRDPRACandidate)
}

func describeRDP(f *Flow) string {
	var parts []string
	for _, l := range f.Labels.Labels() {
		parts = append(parts, l.String()+"/"+f.LabelConfidence(l).String())
	}
	ev, _ := json.Marshal(f.GetEvidence(rdpEvidenceName))
	return strings.Join(parts, ",") + " " + string(ev)
}

// TestRDPCorpusOracles: every RDP flow that tshark decodes in the shared
// captures (all families; "(port-only)" rows are mid-stream and skipped)
// gets rdp or rdp-udp.
func TestRDPCorpusOracles(t *testing.T) {
	skipWithoutCorpus(t)
	oracles, _ := filepath.Glob(filepath.Join(rdpRealDir, "oracles", "*", "*.flows.tsv"))
	det := NewRDPDetector(RDPOptions{})
	checked := 0
	for _, o := range oracles {
		var want []oracleRow
		for _, r := range readOracle(t, o) {
			if r.family == "rdp" && !strings.Contains(r.label, "(port-only)") {
				want = append(want, r)
			}
		}
		if len(want) == 0 {
			continue
		}
		fam := filepath.Base(filepath.Dir(o))
		pcap := filepath.Join(rdpRealDir, fam, strings.TrimSuffix(filepath.Base(o), ".flows.tsv"))
		t.Run(fam+"/"+filepath.Base(pcap), func(t *testing.T) {
			flows := corpusRun(t, pcap, det)
			for _, r := range want {
				proto := ProtoTCP
				if r.proto == "udp" {
					proto = ProtoUDP
				}
				cf := flows[corpusKey(proto, r.client, r.server)]
				if cf == nil {
					t.Errorf("%s %s > %s: flow not found", r.proto, r.client, r.server)
					continue
				}
				checked++
				want := LabelRDP
				if proto == ProtoUDP {
					want = LabelRDPUDP
				}
				if !cf.f.Labels.Has(want) {
					t.Errorf("%s %s > %s (%s): no %s label; got %s", r.proto, r.client, r.server, r.label, want, describeRDP(cf.f))
					continue
				}
				if cf.f.AppProto != AppRDP {
					t.Errorf("%s %s > %s: app_proto %q", r.proto, r.client, r.server, cf.f.AppProto)
				}
				t.Logf("%s %s > %s: %s", r.proto, r.client, r.server, describeRDP(cf.f))
			}
		})
	}
	if checked == 0 {
		t.Fatal("no oracle flows checked")
	}
}

// TestRDPCorpusNoStrayLabels: in every capture, a flow the detector labels
// must be one the oracle lists as RDP (including mid-stream "(port-only)"
// rows); the negative captures must get no RDP label at all.
func TestRDPCorpusNoStrayLabels(t *testing.T) {
	skipWithoutCorpus(t)
	det := NewRDPDetector(RDPOptions{})
	var files []string
	for _, fam := range []string{"rdp", "dcerpc", "teredo", "upnp", "negative", "pnrp", "dns"} {
		m, _ := filepath.Glob(filepath.Join(rdpRealDir, fam, "*.pcap*"))
		files = append(files, m...)
	}
	sort.Strings(files)
	if len(files) == 0 {
		t.Fatal("no captures found")
	}
	for _, pcap := range files {
		fam := filepath.Base(filepath.Dir(pcap))
		t.Run(fam+"/"+filepath.Base(pcap), func(t *testing.T) {
			allowed := map[string]bool{}
			oracle := filepath.Join(rdpRealDir, "oracles", fam, filepath.Base(pcap)+".flows.tsv")
			if fam != "negative" {
				if _, err := os.Stat(oracle); err == nil {
					for _, r := range readOracle(t, oracle) {
						if r.family == "rdp" {
							proto := ProtoTCP
							if r.proto == "udp" {
								proto = ProtoUDP
							}
							allowed[corpusKey(proto, r.client, r.server)] = true
						}
					}
				}
			}
			flows := corpusRun(t, pcap, det)
			n := 0
			for k, cf := range flows {
				if len(cf.f.Labels.Labels()) > 0 {
					n++
				}
				if rdpLabelled(cf.f) && !allowed[k] {
					t.Errorf("%s %v > %v: unexpected %s", fam, cf.f.Client, cf.f.Server, describeRDP(cf.f))
				}
			}
			t.Logf("%s: %d flows, %d labelled", filepath.Base(pcap), len(flows), n)
		})
	}
}

// TestRDPLabCapture prints what the detector makes of captures named in
// RDP_LAB_PCAP (colon-separated), e.g. recordings of real peers made per
// docs/testlab.md. It checks nothing and is skipped without the variable.
func TestRDPLabCapture(t *testing.T) {
	paths := os.Getenv("RDP_LAB_PCAP")
	if paths == "" {
		t.Skip("RDP_LAB_PCAP not set")
	}
	det := NewRDPDetector(RDPOptions{})
	for _, p := range strings.Split(paths, ":") {
		flows := corpusRun(t, p, det)
		keys := make([]string, 0, len(flows))
		for k := range flows {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			f := flows[k].f
			t.Logf("%s: %d %v > %v: %s", filepath.Base(p), f.Proto, f.Client, f.Server, describeRDP(f))
		}
	}
}
