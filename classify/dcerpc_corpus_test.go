package classify

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// A small stand-in for the classifier pipeline, enough to replay the shared
// real captures through the DCE/RPC detector alone: flows keyed by 5-tuple,
// client = SYN sender (else first sender), TCP payloads in sequence order
// with retransmissions cut and gaps flagged, the per-direction budget, and
// the expectation lookup on a new flow's server. The lead's pipeline
// replaces it.

const dcerpcRealDir = "../../shared/pcaps/real"

type dcerpcCorpusKey struct {
	a, b  netip.AddrPort
	proto uint8
}

func dcerpcMakeKey(src, dst netip.AddrPort, proto uint8) dcerpcCorpusKey {
	if src.Addr().Less(dst.Addr()) || (src.Addr() == dst.Addr() && src.Port() < dst.Port()) {
		return dcerpcCorpusKey{src, dst, proto}
	}
	return dcerpcCorpusKey{dst, src, proto}
}

type dcerpcCorpusFlow struct {
	f        *Flow
	state    any
	done     bool
	fed      [2]int
	nextSeq  [2]uint32
	seqKnown [2]bool
	index    [2]int
}

type dcerpcCorpus struct {
	det    *DCERPCDetector
	ctx    Context
	ctrs   Counters
	flows  map[dcerpcCorpusKey]*dcerpcCorpusFlow
	order  []*dcerpcCorpusFlow
	nextID uint64
}

func newDCERPCCorpus(det *DCERPCDetector) *dcerpcCorpus {
	c := &dcerpcCorpus{det: det, flows: map[dcerpcCorpusKey]*dcerpcCorpusFlow{}}
	c.ctx = Context{Expect: NewExpectTable(0, &c.ctrs), Names: NewNameCache(0, &c.ctrs), Counters: &c.ctrs}
	return c
}

// dcerpcOpenPcap returns a packet reader for a pcap or pcapng file.
func dcerpcOpenPcap(path string) (func() ([]byte, gopacket.CaptureInfo, error), layers.LinkType, func(), error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, 0, nil, err
	}
	br := bufio.NewReader(fh)
	magic, err := br.Peek(4)
	if err != nil {
		fh.Close()
		return nil, 0, nil, err
	}
	if binary.LittleEndian.Uint32(magic) == 0x0a0d0d0a {
		r, err := pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			fh.Close()
			return nil, 0, nil, err
		}
		return r.ReadPacketData, r.LinkType(), func() { fh.Close() }, nil
	}
	r, err := pcapgo.NewReader(br)
	if err != nil {
		fh.Close()
		return nil, 0, nil, err
	}
	return r.ReadPacketData, r.LinkType(), func() { fh.Close() }, nil
}

// dcerpcLinkPacket decodes a frame of the given link type.
func dcerpcLinkPacket(data []byte, lt layers.LinkType) gopacket.Packet {
	first := gopacket.LayerType(0)
	switch lt {
	case layers.LinkTypeEthernet:
		first = layers.LayerTypeEthernet
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		first = layers.LayerTypeLoopback
	case layers.LinkTypeLinuxSLL:
		first = layers.LayerTypeLinuxSLL
	case layers.LinkType(276 & 0xff): // Linux SLL2 (276; gopacket keeps link types in a byte): 20-byte header
		if len(data) < 20 {
			return nil
		}
		data = data[20:]
	case 239: // NFLOG: 4-byte header, then TLVs; type 9 holds the packet
		if len(data) < 4 {
			return nil
		}
		p := data[4:]
		data = nil
		for len(p) >= 4 {
			l, typ := int(binary.LittleEndian.Uint16(p)), binary.LittleEndian.Uint16(p[2:])
			if l < 4 || l > len(p) {
				break
			}
			if typ == 9 {
				data = p[4:l]
				break
			}
			p = p[min(len(p), (l+3)&^3):]
		}
	}
	if first == 0 {
		if len(data) == 0 {
			return nil
		}
		switch data[0] >> 4 {
		case 4:
			first = layers.LayerTypeIPv4
		case 6:
			first = layers.LayerTypeIPv6
		default:
			return nil
		}
	}
	return gopacket.NewPacket(data, first, gopacket.DecodeOptions{Lazy: false, NoCopy: true})
}

// replay feeds every TCP/UDP payload of a capture to the detector.
func (c *dcerpcCorpus) replay(path string) error {
	read, lt, closeFn, err := dcerpcOpenPcap(path)
	if err != nil {
		return err
	}
	defer closeFn()
	for {
		data, ci, err := read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		pkt := dcerpcLinkPacket(data, lt)
		if pkt == nil {
			continue
		}
		var src, dst netip.Addr
		var sport, dport uint16
		var proto, flags uint8
		var seq uint32
		var payload []byte
		found := false
		for _, l := range pkt.Layers() {
			switch v := l.(type) {
			case *layers.IPv4:
				src, _ = netip.AddrFromSlice(v.SrcIP)
				dst, _ = netip.AddrFromSlice(v.DstIP)
			case *layers.IPv6:
				src, _ = netip.AddrFromSlice(v.SrcIP)
				dst, _ = netip.AddrFromSlice(v.DstIP)
			case *layers.TCP:
				sport, dport, proto, seq, payload, found = uint16(v.SrcPort), uint16(v.DstPort), ProtoTCP, v.Seq, v.Payload, true
				if v.FIN {
					flags |= TCPFin
				}
				if v.SYN {
					flags |= TCPSyn
				}
				if v.RST {
					flags |= TCPRst
				}
				if v.ACK {
					flags |= TCPAck
				}
			case *layers.UDP:
				sport, dport, proto, payload, found = uint16(v.SrcPort), uint16(v.DstPort), ProtoUDP, v.Payload, true
			}
			if found {
				break
			}
		}
		if !found || !src.IsValid() {
			continue
		}
		c.packet(ci.Timestamp, netip.AddrPortFrom(src.Unmap(), sport), netip.AddrPortFrom(dst.Unmap(), dport), proto, flags, seq, payload)
	}
}

func (c *dcerpcCorpus) packet(ts time.Time, src, dst netip.AddrPort, proto, flags uint8, seq uint32, payload []byte) {
	c.ctx.Now = ts
	k := dcerpcMakeKey(src, dst, proto)
	cf := c.flows[k]
	if cf == nil {
		c.nextID++
		f := &Flow{ID: c.nextID, Proto: proto, Client: src, Server: dst}
		if proto == ProtoTCP && flags&(TCPSyn|TCPAck) == TCPSyn|TCPAck {
			f.Client, f.Server = dst, src
		}
		if e := c.ctx.Expect.Match(f.Server.Addr(), f.Server.Port(), proto, ts); e != nil {
			f.Ext().Expected = e
		}
		cf = &dcerpcCorpusFlow{f: f}
		c.flows[k] = cf
		c.order = append(c.order, cf)
	}
	f := cf.f
	f.SetTimes(f.Start(), ts)
	dir := f.Direction(src)
	f.Pkts[dir]++
	if proto == ProtoTCP {
		if flags&TCPSyn != 0 {
			seq++
		}
		if !cf.seqKnown[dir] {
			cf.seqKnown[dir], cf.nextSeq[dir] = true, seq
		}
	}
	if len(payload) == 0 || cf.done {
		return
	}
	gap := false
	if proto == ProtoTCP {
		diff := int32(seq - cf.nextSeq[dir])
		switch {
		case diff < 0:
			if int(-diff) >= len(payload) {
				return
			}
			payload = payload[-diff:]
			cf.nextSeq[dir] += uint32(len(payload))
		case diff > 0:
			gap = true
			cf.nextSeq[dir] = seq + uint32(len(payload))
		default:
			cf.nextSeq[dir] = seq + uint32(len(payload))
		}
	}
	if cf.fed[dir] >= c.det.Budget() {
		cf.done = true
		return
	}
	seg := Segment{Dir: dir, Payload: payload, Time: ts, TCPFlags: flags, Gap: gap, Src: src, Dst: dst, Index: cf.index[dir]}
	cf.index[dir]++
	c.ctx.Detector = 0
	if f.ext != nil && len(f.ext.detectState) > 0 {
		cf.state = f.ext.detectState[0]
	}
	if c.det.Inspect(&c.ctx, f, &seg) == Done {
		cf.done = true
		if f.ext != nil && len(f.ext.detectState) > 0 {
			f.ext.detectState[0] = nil
		}
	}
	cf.fed[dir] += len(payload)
}

// find returns the flow between two endpoints.
func (c *dcerpcCorpus) find(proto uint8, a, b netip.AddrPort) *Flow {
	if cf := c.flows[dcerpcMakeKey(a, b, proto)]; cf != nil {
		return cf.f
	}
	return nil
}

// dcerpcOracleFlow is one line of an oracles/<family>/<file>.flows.tsv.
type dcerpcOracleFlow struct {
	family, proto, label string
	client, server       netip.AddrPort
}

func dcerpcReadOracle(t *testing.T, path string) []dcerpcOracleFlow {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("oracle %s: %v", path, err)
	}
	var out []dcerpcOracleFlow
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if i == 0 || line == "" {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) < 5 {
			t.Fatalf("oracle %s line %d: %d columns", path, i+1, len(cols))
		}
		cl, err1 := netip.ParseAddrPort(cols[2])
		sv, err2 := netip.ParseAddrPort(cols[3])
		if err1 != nil || err2 != nil {
			t.Fatalf("oracle %s line %d: bad endpoints %q %q", path, i+1, cols[2], cols[3])
		}
		out = append(out, dcerpcOracleFlow{family: cols[0], proto: cols[1], label: cols[4], client: cl, server: sv})
	}
	return out
}

func dcerpcProto(s string) uint8 {
	if s == "udp" {
		return ProtoUDP
	}
	return ProtoTCP
}

// dcerpcIsSlammer reports whether an oracle line is one of the two SQL
// Slammer datagrams that tshark's heuristic calls DCE/RPC (README.md).
func dcerpcIsSlammer(file string, o dcerpcOracleFlow) bool {
	return strings.HasPrefix(file, "markofu-ppa-evilprogram") && o.proto == "udp" && o.server.Port() == 1434
}

// TestDCERPCCorpus replays every shared real capture: each DCE/RPC flow the
// oracles list (except port-only ones and the Slammer near-miss) must be
// labelled dcerpc, activation flows dcom-activation, and no other flow of any
// capture — the negatives above all — may be labelled dcerpc.
func TestDCERPCCorpus(t *testing.T) {
	if _, err := os.Stat(dcerpcRealDir); err != nil {
		t.Skipf("shared real captures not found at %s: %v", dcerpcRealDir, err)
	}
	var files []string
	for _, fam := range []string{"dcerpc", "rdp", "teredo", "upnp", "negative", "pnrp", "dns"} {
		m, _ := filepath.Glob(filepath.Join(dcerpcRealDir, fam, "*.pcap*"))
		files = append(files, m...)
	}
	sort.Strings(files)
	if len(files) == 0 {
		t.Skip("no captures in " + dcerpcRealDir)
	}
	matched := 0
	for _, path := range files {
		rel, _ := filepath.Rel(dcerpcRealDir, path)
		t.Run(rel, func(t *testing.T) {
			c := newDCERPCCorpus(NewDCERPCDetector(DCERPCOptions{}))
			if err := c.replay(path); err != nil {
				t.Fatalf("replay: %v", err)
			}
			if len(c.flows) == 0 {
				t.Fatalf("no TCP/UDP flow decoded")
			}
			fam, file := filepath.Dir(rel), filepath.Base(rel)
			want := map[dcerpcCorpusKey]bool{}
			oracle := filepath.Join(dcerpcRealDir, "oracles", fam, file+".flows.tsv")
			if _, err := os.Stat(oracle); err == nil {
				for _, o := range dcerpcReadOracle(t, oracle) {
					if o.family != "dcerpc" || strings.Contains(o.label, "(port-only)") {
						continue
					}
					p := dcerpcProto(o.proto)
					f := c.find(p, o.client, o.server)
					if dcerpcIsSlammer(file, o) {
						if f != nil && f.Labels.Has(LabelDCERPC) {
							t.Errorf("%s %v > %v: SQL Slammer datagram labelled dcerpc", o.proto, o.client, o.server)
						}
						continue
					}
					want[dcerpcMakeKey(o.client, o.server, p)] = true
					if f == nil {
						t.Errorf("%s %v > %v: flow not found in capture", o.proto, o.client, o.server)
						continue
					}
					if !f.Labels.Has(LabelDCERPC) {
						t.Errorf("%s %v > %v (%s): not labelled dcerpc", o.proto, o.client, o.server, o.label)
						continue
					}
					matched++
					if f.AppProto != AppDCERPC {
						t.Errorf("%s %v > %v: app_proto %q", o.proto, o.client, o.server, f.AppProto)
					}
					if (strings.Contains(o.label, "ISystemActivator.") || strings.Contains(o.label, "IActivation.")) && !f.Labels.Has(LabelDCOMActivation) {
						t.Errorf("%s %v > %v (%s): not labelled dcom-activation", o.proto, o.client, o.server, o.label)
					}
					if f.Labels.Has(LabelRADCOMOffer) {
						t.Errorf("%s %v > %v: ra-dcom-offer on a capture without Remote Assistance", o.proto, o.client, o.server)
					}
					if testing.Verbose() {
						ev, _ := json.Marshal(f.GetEvidence(dcerpcName))
						t.Logf("%s %v > %v %v: %s", o.proto, o.client, o.server, f.Labels.Strings(), ev)
					}
				}
			}
			ndpi, _ := os.ReadFile(filepath.Join(dcerpcRealDir, "oracles", fam, file+".ndpi.txt"))
			for k, cf := range c.flows {
				if cf.f.Labels.Has(LabelDCERPC) && !want[k] && !dcerpcNDPISays(ndpi, cf.f) {
					ev, _ := json.Marshal(cf.f.GetEvidence(dcerpcName))
					t.Errorf("unexpected dcerpc label on %v > %v: %s", cf.f.Client, cf.f.Server, ev)
				}
			}
		})
	}
	t.Logf("%d oracle DCE/RPC flows labelled", matched)
}

// dcerpcNDPISays reports whether nDPI's per-flow output calls the flow
// DCE_RPC: the second oracle, for flows tshark could not dissect (it marks
// the mid-stream MAPI flows of zeek-dce-rpc-mapi.pcap malformed).
func dcerpcNDPISays(ndpi []byte, f *Flow) bool {
	a, b := f.Client.String(), f.Server.String()
	for _, line := range strings.Split(string(ndpi), "\n") {
		if strings.Contains(line, "/DCE_RPC]") && strings.Contains(line, a) && strings.Contains(line, b) {
			return true
		}
	}
	return false
}

// TestDCERPCCorpusExpectations checks the listeners announced in real
// captures and that the follow-on connections carry expected_from.
func TestDCERPCCorpusExpectations(t *testing.T) {
	cases := []struct {
		file     string
		server   string // the follow-on connection's server
		reason   string
		announce bool // the announcing flow's answer is readable
	}{
		// ept_map answers in clear, then the service's dynamic port.
		{"dcerpc/suricata-verify-dcerpc-zerologon.pcap", "172.16.5.58:49668", "epm-map", true},
		{"dcerpc/otrf-empire-psexec-dcerpc-tcp-svcctl-ws5.pcap", "172.18.39.6:49726", "epm-map", true},
		{"dcerpc/pcapattack-lm-psexec-smb-dcerpc-epm-svcctl.pcapng", "172.16.66.36:49688", "epm-map", true},
		{"dcerpc/zeek-dce-rpc-mapi.pcap", "192.168.0.2:4997", "epm-map", true},
		// An unauthenticated activation whose answer names host[60283];
		// the capture starts after the binds.
		{"dcerpc/pcapattack-lm-dcom-mmc20-application.pcapng", "172.16.66.36:60283", "dcom-activation", true},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			path := filepath.Join(dcerpcRealDir, tc.file)
			if _, err := os.Stat(path); err != nil {
				t.Skipf("capture not found: %v", err)
			}
			c := newDCERPCCorpus(NewDCERPCDetector(DCERPCOptions{}))
			if err := c.replay(path); err != nil {
				t.Fatal(err)
			}
			srv := netip.MustParseAddrPort(tc.server)
			var follow *Flow
			announced := false
			for _, cf := range c.order {
				ev, _ := cf.f.GetEvidence(dcerpcName).(*DCERPCEvidence)
				if ev == nil {
					continue
				}
				for _, a := range ev.Announced {
					if a.Port == srv.Port() && a.Addr == srv.Addr().String() && a.Reason == tc.reason {
						announced = true
					}
				}
				if cf.f.Server == srv && follow == nil {
					follow = cf.f
				}
			}
			if announced != tc.announce {
				t.Errorf("announced %v = %v, want %v", srv, announced, tc.announce)
			}
			if follow == nil {
				t.Fatalf("no flow to %v", srv)
			}
			ev, _ := follow.GetEvidence(dcerpcName).(*DCERPCEvidence)
			if ev == nil || ev.ExpectedFrom == nil || ev.ExpectedFrom.Reason != tc.reason {
				b, _ := json.Marshal(ev)
				t.Errorf("follow-on flow %v > %v: expected_from missing or wrong: %s", follow.Client, follow.Server, b)
			} else if testing.Verbose() {
				b, _ := json.Marshal(ev)
				t.Logf("follow-on %v > %v: %s", follow.Client, follow.Server, b)
			}
		})
	}
}
