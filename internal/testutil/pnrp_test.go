package testutil

import (
	"bytes"
	"crypto/sha1"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// pnrpCase is one message the builders make, and what Wireshark must read
// in its fields: per field ID, tshark field names and values.
type pnrpCase struct {
	name   string
	data   []byte
	typ    uint8
	checks map[uint16][][2]string
}

var (
	nodeA   = netip.MustParseAddr("2001:db8:1::a")
	nodeB   = netip.MustParseAddr("2001:db8:2::b")
	teredoA = netip.MustParseAddr("2001:0:4136:e378:8000:63bf:34ff:8efa") // protocols.md §3.4
)

func hexOf(b []byte) string { return fmt.Sprintf("%x", b) }

// pnrpCases builds one of each message the builders make.
func pnrpCases() []pnrpCase {
	var nonce [16]byte
	for i := range nonce {
		nonce[i] = byte(i)
	}
	hn := sha1.Sum(nonce[:])
	idA := PNRPIDFor("0", "alice", [16]byte{1})
	idB := PNRPIDFor("0", "bob", [16]byte{2})
	hex32 := "0123456789ABCDEF0123456789ABCDEF"
	target := PNRPIDFor("0", hex32, [16]byte{})
	unsecured := PNRPAuthorityBuffer{
		Classifier:      hex32,
		ExtendedPayload: pnFiller(96),
		CPA:             &PNRPCPA{Flags: PNRPCPAPayload, Endpoints: []netip.AddrPort{netip.AddrPortFrom(nodeB, 3389)}},
	}.Encode()
	acked := func(id string) [][2]string { return [][2]string{{"pnrp.segment.headerAck", id}} }
	ids := func(v ...[32]byte) [][2]string {
		var s []string
		for _, id := range v {
			s = append(s, hexOf(id[:]))
		}
		return [][2]string{{"pnrp.segment.pnrpID", strings.Join(s, ",")}}
	}
	authChecks := map[uint16][][2]string{
		PNRPFieldHeaderAcked:     acked("0x00000105"),
		PNRPFieldSplitControls:   nil, // tshark reassembles the buffer and reads its fields
		PNRPFieldFlags:           {{"pnrp.segment.authority.flags", "0x0000"}},
		PNRPFieldClassifier:      {{"pnrp.segment.classifier.string", "RAContact"}},
		PNRPFieldExtendedPayload: {{"pnrp.segment.length", "68"}},
		PNRPFieldValidateCPA: {{"pnrp.encodedCPA.flags", "0x36"}, {"pnrp.encodedCPA.friendlyName", "324"},
			{"pnrp.encodedCPA.binaryAuthority", "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3"},
			{"pnrp.signature.data", strings.Repeat("00", 16)}},
	}
	return []pnrpCase{
		{"solicit", PNRPSolicitMessage(0x100, nonce), PNRPSolicit, map[uint16][][2]string{
			PNRPFieldSolicitControls: {{"pnrp.segment.solicitType", "0"}},
			PNRPFieldHashedNonce:     {{"pnrp.segment.hashednonce", hexOf(hn[:])}},
		}},
		{"advertise", PNRPAdvertiseMessage(0x101, 0x100, nonce, idA, idB), PNRPAdvertise, map[uint16][][2]string{
			PNRPFieldHeaderAcked: acked("0x00000100"),
			PNRPFieldIDArray:     append(ids(idA, idB), [2]string{"pnrp.segment.idArray.NumEntries", "2"}),
			PNRPFieldHashedNonce: {{"pnrp.segment.hashednonce", hexOf(hn[:])}},
		}},
		{"request", PNRPRequestMessage(0x102, nonce, idB), PNRPRequest, map[uint16][][2]string{
			PNRPFieldNonce:   {{"pnrp.segment.nonce", hexOf(nonce[:])}},
			PNRPFieldIDArray: ids(idB),
		}},
		{"flood", PNRPFloodMessage(0x103, idB, 3540, nodeB, netip.AddrPortFrom(nodeA, 3540)), PNRPFlood, map[uint16][][2]string{
			PNRPFieldFloodControls: {{"pnrp.segment.flood.flags.Dbit", "0"}},
			PNRPFieldValidateID:    ids(idB),
			PNRPFieldRoutingEntry: {{"pnrp.segment.pnrpID", hexOf(idB[:])}, {"pnrp.segment.routeEntry.portNumber", "3540"},
				{"pnrp.segment.routeEntry.addressCount", "1"}, {"pnrp.segment.ipv6Address", nodeB.String()}},
			PNRPFieldIPv6EndpointArray: {{"pnrp.segment.ipv6EndpointArray.NumberOfEntries", "1"}, {"pnrp.segment.ipv6Address", nodeA.String()}},
		}},
		{"lookup", PNRPLookupMessage(0x104, PNRPLookupSpec{Classifier: hex32, ResolveCriteria: 1, ReasonCode: 1, Validate: idA,
			Path: []netip.AddrPort{netip.AddrPortFrom(nodeA, 3540), netip.AddrPortFrom(nodeB, 3540)}}), PNRPLookup, map[uint16][][2]string{
			PNRPFieldLookupControls: {{"pnrp.lookupControls.resolveCriteria", "0x01"}, {"pnrp.lookupControls.reasonCode", "0x01"}},
			PNRPFieldTargetID:       ids(target),
			PNRPFieldValidateID:     ids(idA),
			PNRPFieldIPv6EndpointArray: {{"pnrp.segment.ipv6EndpointArray.NumberOfEntries", "2"},
				{"pnrp.segment.ipv6Address", nodeA.String() + "," + nodeB.String()}},
		}},
		{"inquire", PNRPInquireMessage(0x105, PNRPInquireWantCPA|PNRPInquireWantPayload|PNRPInquireWantCertChain, idB), PNRPInquire, map[uint16][][2]string{
			PNRPFieldFlags:      {{"pnrp.segment.inquire.flags", "0x001c"}},
			PNRPFieldValidateID: ids(idB),
		}},
		{"authority-racontact", PNRPRAContactAuthority(0x106, 0x105, 64), PNRPAuthority, authChecks},
		{"ack", PNRPAckMessage(0x107, 0x106), PNRPAck, map[uint16][][2]string{PNRPFieldHeaderAcked: acked("0x00000106")}},
		{"authority-hex32", PNRPAuthorityMessages(0x108, 0x105, unsecured)[0], PNRPAuthority, map[uint16][][2]string{
			PNRPFieldHeaderAcked:     acked("0x00000105"),
			PNRPFieldSplitControls:   nil,
			PNRPFieldFlags:           {{"pnrp.segment.authority.flags", "0x0000"}},
			PNRPFieldClassifier:      {{"pnrp.segment.classifier.string", hex32}},
			PNRPFieldExtendedPayload: {{"pnrp.segment.length", "100"}},
			PNRPFieldValidateCPA: {{"pnrp.encodedCPA.flags", "0x20"}, {"pnrp.encodedCPA.number_of_service_addresses", "1"},
				{"pnrp.segment.ipv6Address", nodeB.String()}, {"pnrp.signature.data", strings.Repeat("00", 16)}},
		}},
	}
}

// pnrpFields splits a built message into its fields, each with its padding,
// walking an AUTHORITY's first buffer fragment too; inBuffer marks those.
func pnrpFields(t *testing.T, msg []byte) (fields [][]byte, inBuffer []bool) {
	buf := false
	for off := 12; off < len(msg); {
		if len(msg)-off < 4 {
			t.Fatalf("% x: %d stray bytes at %d", msg, len(msg)-off, off)
		}
		id, l := binary.BigEndian.Uint16(msg[off:]), int(binary.BigEndian.Uint16(msg[off+2:]))
		end := min(off+(l+3)&^3, len(msg))
		if id == PNRPFieldSplitControls {
			end = off + l
		}
		fields = append(fields, msg[off:end])
		inBuffer = append(inBuffer, buf)
		if id == PNRPFieldSplitControls {
			buf = true
		}
		off = end
	}
	return fields, inBuffer
}

// TestPNRPBuildersTshark checks the builders against Wireshark's PNRP
// dissector. It writes a pcap with every message (Ethernet/IPv6/UDP 3540,
// and two inside Teredo over IPv4/UDP 3544) and, because tshark 4.0's
// dissector throws an exception after the first field of every message (its
// forward-progress check is inverted: the §5.7 ACK vector, taken from the
// specification, is "malformed" too), one probe per field: the message's
// header followed by that field alone (fields of an AUTHORITY_BUFFER behind
// a SPLIT_CONTROLS announcing just that field, which tshark reassembles and
// reads from offset 0). tshark must report the message type of every frame,
// read each field's values, and report no expert information other than that
// one known exception.
func TestPNRPBuildersTshark(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed: cannot cross-check the PNRP builders")
	}
	type frame struct {
		name   string
		data   []byte
		typ    uint8
		checks [][2]string
		teredo bool
		nth    int // which pnrp.segment.type/length occurrence is the probed field's
	}
	var frames []frame
	// The §5.7 ACK vector first: it tells whether this tshark has the defect.
	vector := unhexs("00 10 00 0c 51 04 00 09 11 22 33 44 00 18 00 08 aa bb cc dd")
	frames = append(frames, frame{name: "ack-vector", data: vector, typ: PNRPAck,
		checks: [][2]string{{"pnrp.segment.headerAck", "0xaabbccdd"}}})
	probeID := uint32(0x5000)
	for _, c := range pnrpCases() {
		if got := headerType(c.data); got != c.typ {
			t.Fatalf("%s: built type %d, want %d", c.name, got, c.typ)
		}
		frames = append(frames, frame{name: c.name, data: c.data, typ: c.typ})
		fields, inBuf := pnrpFields(t, c.data)
		for i, fd := range fields {
			id := binary.BigEndian.Uint16(fd)
			checks, ok := c.checks[id]
			if !ok {
				t.Errorf("%s: no tshark check for field 0x%04x", c.name, id)
				continue
			}
			if id == PNRPFieldSplitControls {
				continue
			}
			probeID++
			var probe []byte
			if inBuf[i] {
				split := append(pnBE16(uint16(len(fd))), 0, 0)
				probe = PNRPMessage(c.typ, probeID, PNRPField(PNRPFieldSplitControls, split))
				probe = append(probe, fd...)
			} else {
				probe = append(PNRPMessage(c.typ, probeID), fd...)
			}
			checks = append([][2]string{{"pnrp.segment.type", fmt.Sprintf("0x%04x", id)}}, checks...)
			nth := 0
			if inBuf[i] {
				nth = 1 // after the SPLIT_CONTROLS
			}
			frames = append(frames, frame{name: fmt.Sprintf("%s/field-0x%04x", c.name, id), data: probe, typ: c.typ, checks: checks, nth: nth})
		}
	}
	cases := pnrpCases()
	frames = append(frames,
		frame{name: "teredo-lookup", data: cases[4].data, typ: PNRPLookup, teredo: true},
		frame{name: "teredo-authority", data: cases[6].data, typ: PNRPAuthority, teredo: true})

	path := filepath.Join(t.TempDir(), "pnrp.pcap")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	enc := TeredoEncap{Src: teredoA, Dst: nodeB, HopLimit: 21}
	for i, fr := range frames {
		var data []byte
		switch {
		case fr.teredo:
			// client 192.0.2.45:40000 (the mapping teredoA encodes) <-> relay 198.51.100.1:3544
			data = ethIPv4UDP(t, "192.0.2.45", "198.51.100.1", 40000, 3544, TeredoUDP(enc, 3540, 3540, fr.data))
		case i%2 == 0:
			data = ethIPv6UDP(t, nodeA, nodeB, 3540, 3540, fr.data)
		default:
			data = ethIPv6UDP(t, nodeB, nodeA, 3540, 3540, fr.data)
		}
		ts = ts.Add(time.Millisecond)
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(data), Length: len(data)}, data); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if d := os.Getenv("PNRP_PCAP_COPY"); d != "" {
		b, _ := os.ReadFile(path)
		_ = os.WriteFile(d, b, 0o644)
	}

	names := []string{"frame.protocols", "pnrp.messageType", "_ws.expert.message"}
	for _, fr := range frames {
		for _, c := range fr.checks {
			if !slices.Contains(names, c[0]) {
				names = append(names, c[0])
			}
		}
	}
	args := []string{"-n", "-r", path, "-d", "udp.port==3544,teredo", "-T", "fields",
		"-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=,"}
	for _, n := range names {
		args = append(args, "-e", n)
	}
	out, err := exec.Command(tshark, args...).Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(frames) {
		t.Fatalf("tshark printed %d lines for %d frames:\n%s", len(lines), len(frames), out)
	}
	const defect = "Malformed Packet (Exception occurred)"
	allowed := ""
	for i, line := range lines {
		col := strings.Split(line, "|")
		fr := frames[i]
		if len(col) != len(names) {
			t.Errorf("%s: odd tshark line %q", fr.name, line)
			continue
		}
		val := map[string]string{}
		for j, n := range names {
			val[n] = col[j]
		}
		if i == 0 {
			if val["_ws.expert.message"] == defect {
				allowed = defect
				t.Logf("this tshark's PNRP dissector fails after the first field even on the spec's ACK vector; probing field by field")
			} else if val["_ws.expert.message"] != "" {
				t.Fatalf("ACK vector: unexpected expert info %q", val["_ws.expert.message"])
			}
		}
		want := "eth:ethertype:ipv6:udp:pnrp"
		if fr.teredo {
			want = "eth:ethertype:ip:udp:teredo:ipv6:udp:pnrp"
		}
		if val["frame.protocols"] != want {
			t.Errorf("%s: protocols %q, want %q", fr.name, val["frame.protocols"], want)
		}
		if val["pnrp.messageType"] != fmt.Sprint(fr.typ) {
			t.Errorf("%s: pnrp.messageType %q, want %d", fr.name, val["pnrp.messageType"], fr.typ)
		}
		if e := val["_ws.expert.message"]; e != "" && e != allowed {
			t.Errorf("%s: tshark expert info %q", fr.name, e)
		}
		for _, c := range fr.checks {
			got := val[c[0]]
			if c[0] == "pnrp.segment.type" || c[0] == "pnrp.segment.length" {
				// the probed field's own, not the CLASSIFIER's WCHAR
				if v := strings.Split(got, ","); fr.nth < len(v) {
					got = v[fr.nth]
				}
			}
			if got != c[1] {
				t.Errorf("%s: %s = %q, want %q", fr.name, c[0], got, c[1])
			}
		}
	}
}

// headerType returns the message type of a built message (0 when the
// header is not PNRP's).
func headerType(b []byte) uint8 {
	if len(b) < 12 || b[0] != 0 || b[1] != 0x10 || b[4] != 0x51 {
		return 0
	}
	return b[7]
}

func ethIPv6UDP(t *testing.T, src, dst netip.Addr, sport, dport uint16, payload []byte) []byte {
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv6}
	ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP, SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	return serialize(t, eth, ip, udp, gopacket.Payload(payload))
}

func ethIPv4UDP(t *testing.T, src, dst string, sport, dport uint16, payload []byte) []byte {
	eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.ParseIP(src).To4(), DstIP: net.ParseIP(dst).To4()}
	udp := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
	if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
		t.Fatal(err)
	}
	return serialize(t, eth, ip, udp, gopacket.Payload(payload))
}

func serialize(t *testing.T, ls ...gopacket.SerializableLayer) []byte {
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(buf.Bytes())
}

// TestPNRPVectors checks the builders reproduce the protocols.md §5.7 vectors.
func TestPNRPVectors(t *testing.T) {
	ack := PNRPAckMessage(0x11223344, 0xaabbccdd)
	if want := unhexs("00 10 00 0c 51 04 00 09 11 22 33 44 00 18 00 08 aa bb cc dd"); !bytes.Equal(ack, want) {
		t.Errorf("ACK\n got % x\nwant % x", ack, want)
	}
	var nonce [16]byte
	for i := range nonce {
		nonce[i] = byte(i)
	}
	sol := PNRPSolicitMessage(0x01020304, nonce)
	if want := unhexs("00 10 00 0c 51 04 00 01 01 02 03 04 00 44 00 06 00 00 00 00 " +
		"00 92 00 18 56 17 8b 86 a5 7f ac 22 89 9a 99 64 18 5c 2c c9 6e 7d a5 89"); !bytes.Equal(sol, want) {
		t.Errorf("SOLICIT\n got % x\nwant % x", sol, want)
	}
	buf := PNRPAuthorityBuffer{Classifier: "RAContact"}.Encode()
	auth := PNRPAuthorityMessages(0x55667788, 0x01020304, buf)
	want := unhexs("00 10 00 0c 51 04 00 08 55 66 77 88 00 18 00 08 01 02 03 04 00 98 00 08 00 28 00 00 " +
		"00 40 00 06 00 00 00 00 00 85 00 1e 00 09 00 1a 00 84 00 02 " +
		"00 52 00 41 00 43 00 6f 00 6e 00 74 00 61 00 63 00 74 00 00")
	if len(auth) != 1 || !bytes.Equal(auth[0], want) {
		t.Errorf("AUTHORITY\n got % x\nwant % x", auth, want)
	}
}

func unhexs(s string) []byte {
	var b []byte
	for _, f := range strings.Fields(s) {
		b = append(b, pnUnhex(f[0])<<4|pnUnhex(f[1]))
	}
	return b
}
