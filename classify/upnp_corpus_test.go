package classify

// A stand-in for the classifier's pipeline, enough to replay the shared
// real captures through the SSDP, UPnP and DNS detectors: pcap/pcapng
// reading, gopacket decoding, flows keyed by 5-tuple, TCP segments in
// sequence order with retransmissions dropped, per-detector budgets and
// expectation matching at flow start. The lead replaces it with the real
// pipeline.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
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

const upnpCorpusRoot = "../../shared/pcaps/real"

type upnpCorpusKey struct {
	a, b  netip.AddrPort
	proto uint8
}

type upnpCorpusFlow struct {
	f        *Flow
	done     []bool
	fed      [][2]int
	index    [2]int
	nextSeq  [2]uint32
	seqKnown [2]bool
}

type upnpCorpusReplay struct {
	ctx       *Context
	detectors []Detector
	flows     map[upnpCorpusKey]*upnpCorpusFlow
	order     []*upnpCorpusFlow
	nextID    uint64
	packets   int // transport packets fed
	records   int // capture records read
}

func newUPnPCorpusReplay(detectors ...Detector) *upnpCorpusReplay {
	c := &Counters{}
	return &upnpCorpusReplay{
		ctx: &Context{
			Expect:   NewExpectTable(0, c),
			Names:    NewNameCache(0, c),
			Counters: c,
		},
		detectors: detectors,
		flows:     map[upnpCorpusKey]*upnpCorpusFlow{},
	}
}

func upnpCorpusFlowKey(src, dst netip.AddrPort, proto uint8) upnpCorpusKey {
	if src.Addr().Less(dst.Addr()) || (src.Addr() == dst.Addr() && src.Port() < dst.Port()) {
		return upnpCorpusKey{src, dst, proto}
	}
	return upnpCorpusKey{dst, src, proto}
}

// packet feeds one transport packet.
func (r *upnpCorpusReplay) packet(ts time.Time, src, dst netip.AddrPort, proto uint8, tcp *layers.TCP, payload []byte) {
	k := upnpCorpusFlowKey(src, dst, proto)
	cf := r.flows[k]
	if cf == nil {
		client, server := src, dst
		// A SYN+ACK makes its sender the server.
		if tcp != nil && tcp.SYN && tcp.ACK {
			client, server = dst, src
		}
		r.nextID++
		cf = &upnpCorpusFlow{
			f:    &Flow{ID: r.nextID, Proto: proto, Client: client, Server: server},
			done: make([]bool, len(r.detectors)),
			fed:  make([][2]int, len(r.detectors)),
		}
		if e := r.ctx.Expect.Match(server.Addr(), server.Port(), proto, ts); e != nil {
			cf.f.Ext().Expected = e
		}
		r.flows[k] = cf
		r.order = append(r.order, cf)
	}
	r.packets++
	f := cf.f
	f.SetTimes(f.Start(), ts)
	dir := f.Direction(src)
	f.Pkts[dir]++
	seg := Segment{Dir: dir, Time: ts, Src: src, Dst: dst, Payload: payload}
	if tcp != nil {
		seg.TCPFlags = upnpCorpusFlags(tcp)
		f.TCPFlags[dir] |= seg.TCPFlags
		seq := tcp.Seq
		if tcp.SYN {
			cf.nextSeq[dir], cf.seqKnown[dir] = seq+1, true
			return
		}
		if len(payload) == 0 {
			return
		}
		if cf.seqKnown[dir] {
			diff := int32(seq - cf.nextSeq[dir])
			switch {
			case diff < 0:
				// Retransmission or overlap: keep only new bytes.
				if int(-diff) >= len(payload) {
					return
				}
				payload = payload[-diff:]
				seq = cf.nextSeq[dir]
			case diff > 0:
				seg.Gap = true
			}
		}
		cf.nextSeq[dir], cf.seqKnown[dir] = seq+uint32(len(payload)), true
		seg.Payload = payload
	}
	if len(payload) == 0 {
		return
	}
	r.ctx.Now = ts
	seg.Index = cf.index[dir]
	cf.index[dir]++
	for i, d := range r.detectors {
		if cf.done[i] {
			continue
		}
		if cf.fed[i][dir] >= d.Budget() {
			continue
		}
		s := seg
		if room := d.Budget() - cf.fed[i][dir]; len(s.Payload) > room {
			s.Payload = s.Payload[:room]
		}
		cf.fed[i][dir] += len(s.Payload)
		r.ctx.Detector = i
		if d.Inspect(r.ctx, f, &s) == Done {
			cf.done[i] = true
			f.SetDetectorState(i, nil)
		}
	}
}

func upnpCorpusFlags(t *layers.TCP) uint8 {
	var f uint8
	if t.FIN {
		f |= TCPFin
	}
	if t.SYN {
		f |= TCPSyn
	}
	if t.RST {
		f |= TCPRst
	}
	if t.PSH {
		f |= TCPPsh
	}
	if t.ACK {
		f |= TCPAck
	}
	return f
}

// replayFile reads a pcap or pcapng file and feeds every UDP and TCP
// packet it can decode (Ethernet, VLAN, PPPoE, SLL, loopback, raw IP).
func (r *upnpCorpusReplay) replayFile(path string) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	br := bufio.NewReader(fh)
	magic, err := br.Peek(4)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	type reader interface {
		ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
	}
	var rd reader
	var link layers.LinkType
	if binary.BigEndian.Uint32(magic) == 0x0A0D0D0A {
		ng, err := pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		rd, link = ng, ng.LinkType()
	} else {
		pr, err := pcapgo.NewReader(br)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		rd, link = pr, pr.LinkType()
	}
	var first gopacket.Decoder = link
	switch link {
	case 228: // LINKTYPE_IPV4
		first = layers.LayerTypeIPv4
	case 229: // LINKTYPE_IPV6
		first = layers.LayerTypeIPv6
	case layers.LinkTypeRaw, 12: // raw IP (DLT_RAW is 12 on some systems)
		first = upnpCorpusRawIP{}
	case 276 & 0xff: // LINKTYPE_LINUX_SLL2 (276, cut to 8 bits by this gopacket): 20-byte header
		first = upnpCorpusSkipHeader(20)
	case 239: // LINKTYPE_NFLOG
		first = upnpCorpusNFLog{}
	}
	for {
		data, ci, err := rd.ReadPacketData()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			// Some corpus files end in a truncated record; what was read counts.
			return nil
		}
		r.records++
		pkt := gopacket.NewPacket(data, first, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
		var src, dst netip.Addr
		if l := pkt.Layer(layers.LayerTypeIPv4); l != nil {
			ip := l.(*layers.IPv4)
			src, _ = netip.AddrFromSlice(ip.SrcIP.To4())
			dst, _ = netip.AddrFromSlice(ip.DstIP.To4())
		} else if l := pkt.Layer(layers.LayerTypeIPv6); l != nil {
			ip := l.(*layers.IPv6)
			src, _ = netip.AddrFromSlice(ip.SrcIP.To16())
			dst, _ = netip.AddrFromSlice(ip.DstIP.To16())
		} else {
			continue
		}
		if l := pkt.Layer(layers.LayerTypeUDP); l != nil {
			u := l.(*layers.UDP)
			r.packet(ci.Timestamp, netip.AddrPortFrom(src, uint16(u.SrcPort)), netip.AddrPortFrom(dst, uint16(u.DstPort)), ProtoUDP, nil, u.Payload)
		} else if l := pkt.Layer(layers.LayerTypeTCP); l != nil {
			t := l.(*layers.TCP)
			r.packet(ci.Timestamp, netip.AddrPortFrom(src, uint16(t.SrcPort)), netip.AddrPortFrom(dst, uint16(t.DstPort)), ProtoTCP, t, t.Payload)
		}
	}
}

// upnpCorpusRawIP decodes a raw IP link by its version nibble.
type upnpCorpusRawIP struct{}

func (upnpCorpusRawIP) Decode(data []byte, p gopacket.PacketBuilder) error {
	var next gopacket.LayerType = layers.LayerTypeIPv4
	if len(data) > 0 && data[0]>>4 == 6 {
		next = layers.LayerTypeIPv6
	}
	return next.Decode(data, p)
}

// upnpCorpusSkipHeader drops a fixed link header before raw IP.
type upnpCorpusSkipHeader int

func (n upnpCorpusSkipHeader) Decode(data []byte, p gopacket.PacketBuilder) error {
	if len(data) < int(n) {
		return errors.New("short link header")
	}
	return upnpCorpusRawIP{}.Decode(data[n:], p)
}

// upnpCorpusNFLog finds the packet TLV (NFULA_PAYLOAD, type 9) of an
// NFLOG record: a 4-byte header, then little-endian length/type TLVs
// padded to 4 bytes.
type upnpCorpusNFLog struct{}

func (upnpCorpusNFLog) Decode(data []byte, p gopacket.PacketBuilder) error {
	off := 4
	for off+4 <= len(data) {
		l := int(binary.LittleEndian.Uint16(data[off:]))
		typ := binary.LittleEndian.Uint16(data[off+2:]) & 0x7fff
		if l < 4 || off+l > len(data) {
			break
		}
		if typ == 9 {
			return upnpCorpusRawIP{}.Decode(data[off+4:off+l], p)
		}
		off += (l + 3) &^ 3
	}
	return errors.New("nflog: no payload")
}

func (r *upnpCorpusReplay) find(client, server netip.AddrPort, proto uint8) *Flow {
	if cf := r.flows[upnpCorpusFlowKey(client, server, proto)]; cf != nil {
		return cf.f
	}
	return nil
}

// upnpOracleFlow is one line of an oracles/<family>/<file>.flows.tsv.
type upnpOracleFlow struct {
	family, proto, label string
	client, server       netip.AddrPort
}

func upnpReadOracle(t *testing.T, path string) []upnpOracleFlow {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("oracle: %v", err)
	}
	var out []upnpOracleFlow
	for i, line := range strings.Split(string(b), "\n") {
		if i == 0 || strings.TrimSpace(line) == "" {
			continue
		}
		c := strings.Split(line, "\t")
		if len(c) < 5 {
			t.Fatalf("%s:%d: %d columns", path, i+1, len(c))
		}
		cl, err1 := netip.ParseAddrPort(c[2])
		sv, err2 := netip.ParseAddrPort(c[3])
		if err1 != nil || err2 != nil {
			t.Fatalf("%s:%d: bad address: %v %v", path, i+1, err1, err2)
		}
		out = append(out, upnpOracleFlow{family: c[0], proto: c[1], client: cl, server: sv, label: c[4]})
	}
	return out
}

func upnpCorpusSkip(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(upnpCorpusRoot); err != nil {
		t.Skipf("shared captures not found at %s (a plain clone has none): %v", upnpCorpusRoot, err)
	}
}

func newUPnPCorpusDetectors() []Detector {
	return []Detector{NewSSDPDetector(SSDPOptions{}), NewUPnPDetector(UPnPOptions{}), NewDNSDetector(DNSOptions{})}
}

// upnpWantLabels turns a tshark oracle label into the labels the detectors
// must give the flow.
func upnpWantLabels(file string, o upnpOracleFlow) LabelSet {
	var s LabelSet
	switch {
	case strings.HasPrefix(o.label, "ssdp"):
		// Plex GDM: a bare "M-SEARCH * HTTP/1.1" line with no SSDP header
		// to UDP 32412 is not UPnP (decision documented in ssdp.go).
		if file == "ndpi-ssdp-m-search.pcap" {
			return 0
		}
		s = s.With(LabelSSDP)
	case strings.HasPrefix(o.label, "upnp-http"):
		s = s.With(LabelUPnPControl)
		if strings.Contains(o.label, "SOAP:AddPortMapping") || strings.Contains(o.label, "SOAP:AddAnyPortMapping") {
			s = s.With(LabelUPnPPortmapAdd)
		}
		if strings.Contains(o.label, "SOAP:DeletePortMapping") {
			s = s.With(LabelUPnPPortmapDelete)
		}
	}
	return s
}

var upnpFamilyLabels = LabelSet(0).With(LabelSSDP).With(LabelSSDPIGDSearch).With(LabelUPnPControl).
	With(LabelUPnPPortmapAdd).With(LabelUPnPPortmapDelete)

var dnsFamilyLabels = LabelSet(0).With(LabelDNSTeredoServer).With(LabelDNSPNRPSeed)

// TestUPnPCorpus replays every UPnP capture and the SSDP flow of the
// SharpRDP capture: each oracle flow must carry the expected labels, and
// no other flow may carry a UPnP label.
func TestUPnPCorpus(t *testing.T) {
	upnpCorpusSkip(t)
	files, _ := filepath.Glob(filepath.Join(upnpCorpusRoot, "upnp", "*.pcap*"))
	files = append(files, filepath.Join(upnpCorpusRoot, "rdp", "pcapattack-lm-rdp-sharprdp.pcapng"))
	for _, path := range files {
		name := filepath.Base(path)
		family := filepath.Base(filepath.Dir(path))
		t.Run(name, func(t *testing.T) {
			r := newUPnPCorpusReplay(newUPnPCorpusDetectors()...)
			if err := r.replayFile(path); err != nil {
				t.Fatal(err)
			}
			oracle := upnpReadOracle(t, filepath.Join(upnpCorpusRoot, "oracles", family, name+".flows.tsv"))
			expected := map[*Flow]bool{}
			for _, o := range oracle {
				if o.family != "upnp" {
					continue
				}
				proto := ProtoUDP
				if o.proto == "tcp" {
					proto = ProtoTCP
				}
				f := r.find(o.client, o.server, proto)
				if f == nil {
					t.Errorf("%s %v > %v: flow not seen", o.proto, o.client, o.server)
					continue
				}
				expected[f] = true
				want := upnpWantLabels(name, o)
				got := f.Labels & upnpFamilyLabels
				if got&want != want || (want == 0 && got != 0) {
					t.Errorf("%s %v > %v (%s): labels %v, want %v", o.proto, o.client, o.server, o.label, got.Strings(), want.Strings())
				}
			}
			extra := 0
			for _, cf := range r.order {
				if !expected[cf.f] && cf.f.Labels&upnpFamilyLabels != 0 {
					// The oracle lists HTTP flows with SOAP or UPnP XML;
					// GENA SUBSCRIBE/UNSUBSCRIBE carry neither but are
					// UPnP control all the same.
					if ev, _ := cf.f.GetEvidence(UPnPEvidenceKey).(*UPnPEvidence); ev != nil && ev.Kind == "gena" &&
						(ev.Method == "SUBSCRIBE" || ev.Method == "UNSUBSCRIBE") && cf.f.Labels&upnpFamilyLabels == LabelSet(0).With(LabelUPnPControl) {
						extra++
						continue
					}
					t.Errorf("flow %v > %v not in the oracle got %v", cf.f.Client, cf.f.Server, cf.f.Labels.Strings())
				}
				if cf.f.Labels&dnsFamilyLabels != 0 {
					t.Errorf("flow %v > %v got DNS labels %v", cf.f.Client, cf.f.Server, cf.f.Labels.Strings())
				}
			}
			if extra > 0 {
				t.Logf("%d GENA SUBSCRIBE flows labelled upnp-control beyond the oracle", extra)
			}
			if testing.Verbose() {
				upnpCorpusLog(t, r)
			}
		})
	}
}

func upnpCorpusLog(t *testing.T, r *upnpCorpusReplay) {
	for _, cf := range r.order {
		f := cf.f
		if f.Labels == 0 {
			continue
		}
		ev := ""
		if e, ok := f.GetEvidence(UPnPEvidenceKey).(*UPnPEvidence); ok {
			ev = fmt.Sprintf("%+v", *e)
			if e.Mapping != nil {
				ev += fmt.Sprintf(" mapping=%+v", *e.Mapping)
			}
		}
		t.Logf("%d %v > %v %v app=%s %s", f.Proto, f.Client, f.Server, f.Labels.Strings(), f.AppProto, ev)
	}
	var ex []string
	r.ctx.Expect.Each(func(e *Expectation) {
		ex = append(ex, fmt.Sprintf("%v:%d/%d %s %q peer=%v met=%d ttl=%v", e.Addr, e.Port, e.Proto, e.Reason, e.Service, e.Peer, e.Met, e.Expires.Sub(e.Created)))
	})
	sort.Strings(ex)
	for _, e := range ex {
		t.Log("expect", e)
	}
}

// TestUPnPCorpusWindowsIGD checks the expectations of the most
// Remote-Assistance-like capture: a Windows 7 host maps UDP 59085 for
// Teredo and then asks for the router's external address.
func TestUPnPCorpusWindowsIGD(t *testing.T) {
	upnpCorpusSkip(t)
	r := newUPnPCorpusReplay(newUPnPCorpusDetectors()...)
	if err := r.replayFile(filepath.Join(upnpCorpusRoot, "upnp", "suricata-verify-output-eve-ftp-data.pcap")); err != nil {
		t.Fatal(err)
	}
	type want struct {
		addr   string
		port   uint16
		proto  uint8
		reason string
	}
	for _, w := range []want{
		{"192.168.0.1", 80, ProtoTCP, "upnp-description"},
		{"192.168.0.1", 59085, ProtoUDP, "upnp-portmap"},
		{"192.168.0.13", 59085, ProtoUDP, "upnp-portmap"},
		{"99.224.90.102", 59085, ProtoUDP, "upnp-portmap"}, // the WAN address from GetExternalIPAddress
	} {
		found := false
		r.ctx.Expect.Each(func(e *Expectation) {
			if e.Addr == netip.MustParseAddr(w.addr) && e.Port == w.port && e.Proto == w.proto && e.Reason == w.reason {
				found = true
				if w.reason == "upnp-portmap" && e.Service != "Teredo" {
					t.Errorf("%v: service %q, want Teredo", w, e.Service)
				}
			}
		})
		if !found {
			t.Errorf("no expectation %v", w)
		}
	}
	// The SOAP flows to port 80 met the LOCATION expectation.
	f := r.find(netip.MustParseAddrPort("192.168.0.13:59885"), netip.MustParseAddrPort("192.168.0.1:80"), ProtoTCP)
	if f == nil || f.Extension() == nil || f.Extension().Expected == nil || f.Extension().Expected.Reason != "upnp-description" {
		t.Errorf("AddPortMapping flow did not meet the upnp-description expectation")
	}
	ev, _ := f.GetEvidence(UPnPEvidenceKey).(*UPnPEvidence)
	if ev == nil || ev.Mapping == nil {
		t.Fatalf("no mapping evidence: %+v", ev)
	}
	m := ev.Mapping
	if ev.SOAPAction != "AddPortMapping" || ev.Status != 200 || m.ExternalPort != 59085 || m.Protocol != "UDP" ||
		m.InternalClient != "192.168.0.13" || m.InternalPort != 59085 || m.Description != "Teredo" ||
		m.LeaseDuration == nil || *m.LeaseDuration != 0 || m.Enabled == nil || !*m.Enabled ||
		ev.UserAgent != "Microsoft-Windows/6.1 UPnP/1.0" || ev.ServiceType != "urn:schemas-upnp-org:service:WANIPConnection:1" {
		t.Errorf("evidence %+v mapping %+v", *ev, *m)
	}
	// The IGD search and the unicast reply from port 1901.
	for _, c := range [][2]string{
		{"192.168.0.13:62923", "239.255.255.250:1900"},
		{"192.168.0.1:1901", "192.168.0.13:62923"},
	} {
		f := r.find(netip.MustParseAddrPort(c[0]), netip.MustParseAddrPort(c[1]), ProtoUDP)
		if f == nil || !f.Labels.Has(LabelSSDPIGDSearch) || f.AppProto != AppSSDP {
			t.Errorf("%v: want ssdp-igd-search", c)
		}
	}
}

// TestUPnPCorpusNegatives replays the negative captures and every other
// family: no SSDP/UPnP label except the SharpRDP SSDP flow, and no DNS
// label anywhere (none of the captures looks up a Teredo or PNRP name).
func TestUPnPCorpusNegatives(t *testing.T) {
	upnpCorpusSkip(t)
	var files []string
	for _, fam := range []string{"negative", "rdp", "dcerpc", "teredo", "dns", "pnrp"} {
		m, _ := filepath.Glob(filepath.Join(upnpCorpusRoot, fam, "*.pcap*"))
		files = append(files, m...)
	}
	dnsFlows := 0
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			r := newUPnPCorpusReplay(newUPnPCorpusDetectors()...)
			if err := r.replayFile(path); err != nil {
				t.Fatal(err)
			}
			t.Logf("%d of %d records decoded to UDP/TCP", r.packets, r.records)
			for _, cf := range r.order {
				f := cf.f
				if f.AppProto == AppDNS {
					dnsFlows++
				}
				if f.Labels&dnsFamilyLabels != 0 {
					t.Errorf("%v > %v: DNS label %v", f.Client, f.Server, f.Labels.Strings())
				}
				if f.Labels&upnpFamilyLabels == 0 {
					continue
				}
				if name == "pcapattack-lm-rdp-sharprdp.pcapng" && f.Server == netip.MustParseAddrPort("239.255.255.250:1900") {
					continue
				}
				t.Errorf("%v > %v: UPnP label %v", f.Client, f.Server, f.Labels.Strings())
			}
		})
	}
	if dnsFlows == 0 {
		t.Errorf("no DNS flow recognised in the whole corpus: the negative DNS files were not read")
	}
	t.Logf("%d DNS flows recognised, none for a listed name", dnsFlows)
}
