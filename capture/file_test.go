package capture

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// testPacket is a packet a test writes into a capture and expects back.
type testPacket struct {
	data     []byte
	ts       time.Time
	origLen  int
	iface    int
	linkType LinkType
}

// makePackets returns n packets of varied sizes (54..1514 bytes) with
// distinct contents and increasing times.
func makePackets(n int, seed uint64) []testPacket {
	r := rand.New(rand.NewPCG(seed, 1))
	base := time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC)
	pkts := make([]testPacket, n)
	for i := range pkts {
		size := 54 + r.IntN(1461)
		d := make([]byte, size)
		for j := range d {
			d[j] = byte(r.Uint32())
		}
		binary.BigEndian.PutUint32(d, uint32(i))
		pkts[i] = testPacket{
			data:     d,
			ts:       base.Add(time.Duration(i)*time.Millisecond + time.Duration(r.IntN(1000))*time.Nanosecond),
			origLen:  size,
			linkType: LinkTypeEthernet,
		}
	}
	return pkts
}

// pcapBytes writes a classic pcap by hand, in either byte order, micro- or
// nanosecond resolution (pcapgo's writer only writes little-endian).
func pcapBytes(order binary.ByteOrder, nano bool, snaplen, linkType uint32, pkts []testPacket) []byte {
	var b bytes.Buffer
	h := make([]byte, 24)
	magic := uint32(0xa1b2c3d4)
	if nano {
		magic = 0xa1b23c4d
	}
	order.PutUint32(h[0:], magic)
	order.PutUint16(h[4:], 2)
	order.PutUint16(h[6:], 4)
	order.PutUint32(h[16:], snaplen)
	order.PutUint32(h[20:], linkType)
	b.Write(h)
	for _, p := range pkts {
		b.Write(pcapRecord(order, nano, p.ts, p.data, p.origLen))
	}
	return b.Bytes()
}

// pcapRecord is one classic pcap record.
func pcapRecord(order binary.ByteOrder, nano bool, ts time.Time, data []byte, origLen int) []byte {
	r := make([]byte, 16, 16+len(data))
	frac := ts.Nanosecond() / 1000
	if nano {
		frac = ts.Nanosecond()
	}
	order.PutUint32(r[0:], uint32(ts.Unix()))
	order.PutUint32(r[4:], uint32(frac))
	order.PutUint32(r[8:], uint32(len(data)))
	order.PutUint32(r[12:], uint32(origLen))
	return append(r, data...)
}

// pcapgoBytes writes a little-endian pcap with pcapgo's own writer.
func pcapgoBytes(t testing.TB, nano bool, linkType layers.LinkType, pkts []testPacket) []byte {
	t.Helper()
	var b bytes.Buffer
	w := pcapgo.NewWriter(&b)
	if nano {
		w = pcapgo.NewWriterNanos(&b)
	}
	if err := w.WriteFileHeader(65536, linkType); err != nil {
		t.Fatal(err)
	}
	for _, p := range pkts {
		ci := gopacket.CaptureInfo{Timestamp: p.ts, CaptureLength: len(p.data), Length: p.origLen}
		if err := w.WritePacket(ci, p.data); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// pcapngWithPcapgo writes a pcapng with two interfaces of different link
// types through pcapgo's writer; packets alternate between them.
func pcapngWithPcapgo(t testing.TB, pkts []testPacket) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := pcapgo.NewNgWriterInterface(&b, pcapgo.NgInterface{Name: "eth0", LinkType: layers.LinkTypeEthernet, SnapLength: 65535}, pcapgo.DefaultNgWriterOptions)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.AddInterface(pcapgo.NgInterface{Name: "tun0", LinkType: layers.LinkTypeRaw, SnapLength: 0}); err != nil {
		t.Fatal(err)
	}
	for i := range pkts {
		pkts[i].iface = i % 2
		pkts[i].linkType = []LinkType{LinkTypeEthernet, LinkTypeRaw}[i%2]
		ci := gopacket.CaptureInfo{Timestamp: pkts[i].ts, CaptureLength: len(pkts[i].data), Length: pkts[i].origLen, InterfaceIndex: pkts[i].iface}
		if err := w.WritePacket(ci, pkts[i].data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// ngBuilder writes pcapng blocks by hand, for byte orders, link types and
// damage pcapgo's writer cannot produce.
type ngBuilder struct {
	b     bytes.Buffer
	order binary.ByteOrder
}

func (n *ngBuilder) u16(v uint16) []byte { b := make([]byte, 2); n.order.PutUint16(b, v); return b }
func (n *ngBuilder) u32(v uint32) []byte { b := make([]byte, 4); n.order.PutUint32(b, v); return b }

// block writes a block: type, total length, body padded to 4, total length.
func (n *ngBuilder) block(typ uint32, body ...[]byte) {
	var bb []byte
	for _, x := range body {
		bb = append(bb, x...)
	}
	for len(bb)%4 != 0 {
		bb = append(bb, 0)
	}
	total := uint32(12 + len(bb))
	n.b.Write(n.u32(typ))
	n.b.Write(n.u32(total))
	n.b.Write(bb)
	n.b.Write(n.u32(total))
}

// opt is one option, padded; code 0 with nil value ends the list.
func (n *ngBuilder) opt(code uint16, val []byte) []byte {
	o := append(n.u16(code), n.u16(uint16(len(val)))...)
	o = append(o, val...)
	for len(o)%4 != 0 {
		o = append(o, 0)
	}
	return o
}

func (n *ngBuilder) shb() {
	n.block(ngBlockSHB, n.u32(ngByteOrderMagic), n.u16(1), n.u16(0), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
}

func (n *ngBuilder) idb(lt uint16, snaplen uint32, opts ...[]byte) {
	body := [][]byte{n.u16(lt), n.u16(0), n.u32(snaplen)}
	if len(opts) > 0 {
		body = append(body, opts...)
		body = append(body, n.opt(0, nil))
	}
	n.block(ngBlockIDB, body...)
}

// epb writes an Enhanced Packet Block with a microsecond time (the default
// resolution).
func (n *ngBuilder) epb(iface uint32, ts time.Time, data []byte, origLen int) {
	us := uint64(ts.UnixMicro())
	n.block(ngBlockEPB, n.u32(iface), n.u32(uint32(us>>32)), n.u32(uint32(us)), n.u32(uint32(len(data))), n.u32(uint32(origLen)), data)
}

func (n *ngBuilder) bytes() []byte { return bytes.Clone(n.b.Bytes()) }

func gzipBytes(b []byte) []byte {
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	w.Close()
	return out.Bytes()
}

func writeFile(t testing.TB, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// readAll reads a source to its end or first error.
func readAll(t testing.TB, s Source) ([]Packet, error) {
	t.Helper()
	var got []Packet
	for {
		p, err := s.Next()
		if err != nil {
			if err == io.EOF {
				return got, nil
			}
			return got, err
		}
		p.Data = bytes.Clone(p.Data)
		got = append(got, p)
	}
}

func TestOpenFileFormats(t *testing.T) {
	micro := func(pkts []testPacket) []testPacket {
		out := make([]testPacket, len(pkts))
		for i, p := range pkts {
			p.ts = p.ts.Truncate(time.Microsecond)
			out[i] = p
		}
		return out
	}
	base := makePackets(40, 1)
	twoIfaces := makePackets(40, 2)
	ngFile := pcapngWithPcapgo(t, twoIfaces)

	// A big-endian pcapng written by hand, with an SLL2 interface (which
	// pcapgo's writer cannot express) beside an NFLOG one, snapped packets,
	// and a second section whose interfaces are numbered on from the first.
	be := &ngBuilder{order: binary.BigEndian}
	be.shb()
	be.idb(uint16(LinkTypeLinuxSLL2), 96)
	be.idb(uint16(LinkTypeNFLOG), 0)
	var beWant []testPacket
	for i, p := range micro(makePackets(6, 3)) {
		p.iface = i % 2
		p.linkType = []LinkType{LinkTypeLinuxSLL2, LinkTypeNFLOG}[i%2]
		p.origLen = len(p.data)
		if p.iface == 0 {
			p.data = p.data[:96] // snapped: Length keeps the wire length
		}
		be.epb(uint32(p.iface), p.ts, p.data, p.origLen)
		beWant = append(beWant, p)
	}
	be.shb()
	be.idb(uint16(LinkTypeIPv6), 0)
	p := micro(makePackets(1, 4))[0]
	p.iface, p.linkType = 2, LinkTypeIPv6
	be.epb(0, p.ts, p.data, p.origLen)
	beWant = append(beWant, p)

	// DLT_RAW's platform value 12 is reported as LINKTYPE_RAW.
	raw12 := micro(makePackets(3, 5))
	for i := range raw12 {
		raw12[i].linkType = LinkTypeRaw
	}

	cases := []struct {
		name string
		file string
		data []byte
		want []testPacket
	}{
		{"pcap micro little-endian (pcapgo writer)", "le-micro.pcap", pcapgoBytes(t, false, layers.LinkTypeEthernet, base), micro(base)},
		{"pcap nano little-endian (pcapgo writer)", "le-nano.pcap", pcapgoBytes(t, true, layers.LinkTypeEthernet, base), base},
		{"pcap micro big-endian", "be-micro.pcap", pcapBytes(binary.BigEndian, false, 65535, 1, base), micro(base)},
		{"pcap nano big-endian", "be-nano.pcap", pcapBytes(binary.BigEndian, true, 65535, 1, base), base},
		{"pcap DLT_RAW 12", "raw12.pcap", pcapBytes(binary.LittleEndian, false, 65535, 12, raw12), raw12},
		{"pcap gzip", "x.pcap.gz", gzipBytes(pcapBytes(binary.BigEndian, true, 65535, 1, base)), base},
		{"pcap named .txt", "notes.txt", pcapgoBytes(t, true, layers.LinkTypeEthernet, base), base},
		{"pcapng two interfaces (pcapgo writer)", "two.pcapng", ngFile, twoIfaces},
		{"pcapng named .pcap", "two.pcap", ngFile, twoIfaces},
		{"pcapng gzip", "two.pcapng.gz", gzipBytes(ngFile), twoIfaces},
		{"pcapng big-endian SLL2+NFLOG, two sections", "be.pcapng", be.bytes(), beWant},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.file, tc.data)
			s, err := OpenFile(path)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if s.Name() != path {
				t.Errorf("Name() = %q, want %q", s.Name(), path)
			}
			got, err := readAll(t, s)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("read %d packets, want %d", len(got), len(tc.want))
			}
			var bytesWant uint64
			for i, w := range tc.want {
				g := got[i]
				if !bytes.Equal(g.Data, w.data) {
					t.Fatalf("packet %d: data differs (len %d, want %d)", i+1, len(g.Data), len(w.data))
				}
				if !g.Time.Equal(w.ts) {
					t.Errorf("packet %d: time %v, want %v", i+1, g.Time, w.ts)
				}
				if g.Length != w.origLen || g.LinkType != w.linkType || g.Interface != w.iface || g.Number != uint64(i+1) || g.Verdict != nil {
					t.Errorf("packet %d: length %d linktype %v iface %d number %d, want %d %v %d %d",
						i+1, g.Length, g.LinkType, g.Interface, g.Number, w.origLen, w.linkType, w.iface, i+1)
				}
				bytesWant += uint64(len(w.data))
			}
			if st := s.Stats(); st != (Stats{Packets: uint64(len(tc.want)), Bytes: bytesWant}) {
				t.Errorf("Stats() = %+v", st)
			}
			// io.EOF is sticky.
			if _, err := s.Next(); err != io.EOF {
				t.Errorf("Next after EOF = %v", err)
			}
		})
	}
}

// TestPcapngUnknownBlocks: blocks the reader does not know (Name Resolution,
// Decryption Secrets, Custom, and one larger than the read window) are
// skipped, wherever they stand, and statistics blocks are read past.
func TestPcapngUnknownBlocks(t *testing.T) {
	n := &ngBuilder{order: binary.LittleEndian}
	n.shb()
	n.block(0x00000004, make([]byte, 16)) // Name Resolution Block before any interface
	n.idb(1, 0, n.opt(2, []byte("eth0"))) // with an option
	n.block(0x0000000a, make([]byte, 40)) // Decryption Secrets Block between IDB and packet
	pkts := makePackets(5, 7)
	for i, p := range pkts {
		n.epb(0, p.ts, p.data, p.origLen)
		switch i {
		case 0:
			n.block(0x00000bad, make([]byte, 3*readBufferSize)) // Custom Block larger than the window
		case 1:
			n.block(0x40000bad, []byte("custom, not to be copied"))
		case 2:
			n.block(ngBlockISB, n.u32(0), n.u32(0), n.u32(0))
		}
	}
	n.block(ngBlockISB, n.u32(0), n.u32(0), n.u32(0)) // trailing statistics
	path := writeFile(t, "unknown.pcapng", n.bytes())
	s, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := readAll(t, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(pkts) {
		t.Fatalf("read %d packets, want %d", len(got), len(pkts))
	}
	for i := range pkts {
		if !bytes.Equal(got[i].Data, pkts[i].data) {
			t.Errorf("packet %d differs", i+1)
		}
	}
}

func TestOpenFileErrors(t *testing.T) {
	le := binary.LittleEndian
	good := makePackets(3, 9)
	goodPcap := pcapBytes(le, false, 65535, 1, good)
	withRecord := func(rec []byte) []byte { return append(bytes.Clone(goodPcap), rec...) }
	hdr := func(snaplen, lt uint32, major, minor uint16) []byte {
		h := pcapBytes(le, false, snaplen, lt, nil)
		le.PutUint16(h[4:], major)
		le.PutUint16(h[6:], minor)
		return h
	}
	ts := good[0].ts
	gz := gzipBytes(pcapBytes(le, false, 65535, 1, makePackets(200, 10)))
	corruptGz := bytes.Clone(gz)
	for i := len(corruptGz) / 2; i < len(corruptGz)/2+64; i++ {
		corruptGz[i] ^= 0x5a
	}

	// pcapng builders.
	ng := func(f func(n *ngBuilder)) []byte {
		n := &ngBuilder{order: le}
		n.shb()
		f(n)
		return n.bytes()
	}
	ngPkt := func(n *ngBuilder, iface uint32) { n.epb(iface, ts, good[0].data, len(good[0].data)) }

	cases := []struct {
		name    string
		file    string
		data    []byte
		packets int   // packets read before the error
		kind    error // errors.Is target
		want    string
	}{
		{"text file", "y.txt", []byte("HTTP/1.1 200 OK\r\n\r\n"), 0, ErrNotCapture, "capture: file %s: not a capture file (unknown magic 0x48545450)"},
		{"empty file", "empty.pcap", nil, 0, ErrNotCapture, "capture: file %s: not a capture file (empty)"},
		{"gzip of text", "t.gz", gzipBytes([]byte("hello world")), 0, ErrNotCapture, "unknown magic 0x68656c6c"},
		{"two bytes", "two.pcap", []byte{0xd4, 0xc3}, 0, ErrTruncated, "capture: file %s: truncated file header (wanted 4 bytes, got 2)"},
		{"truncated pcap header", "h.pcap", goodPcap[:14], 0, ErrTruncated, "capture: file %s: truncated pcap file header (wanted 24 bytes, got 14)"},
		{"absurd snaplen", "snap.pcap", hdr(0xffffffff, 1, 2, 4), 0, ErrMalformed, "capture: file %s: absurd snap length 4294967295 (limit 16777216)"},
		{"pcap version 2.3", "v.pcap", hdr(65535, 1, 2, 3), 0, ErrMalformed, "unsupported pcap version 2.3"},
		{"unsupported link type", "z.pcap", hdr(65535, 147, 2, 4), 0, ErrUnsupportedLinkType, "capture: file %s: unsupported link type 147 (USER0)"},
		{"unnamed unsupported link type", "z.pcap", hdr(65535, 999, 2, 4), 0, ErrUnsupportedLinkType, "unsupported link type 999"},
		{"802.11 link type", "w.pcap", hdr(65535, 105, 2, 4), 0, ErrUnsupportedLinkType, "unsupported link type 105 (IEEE802_11)"},
		{"truncated record", "x.pcap", withRecord(pcapRecord(le, false, ts, make([]byte, 1514), 1514)[:16+60]), 3, ErrTruncated,
			"capture: file %s: packet 4: truncated packet (wanted 1514 bytes, got 60)"},
		{"truncated record, no data", "x.pcap", withRecord(pcapRecord(le, false, ts, make([]byte, 100), 100)[:16]), 3, ErrTruncated,
			"packet 4: truncated packet (wanted 100 bytes, got 0)"},
		{"truncated record header", "x.pcap", withRecord(make([]byte, 7)), 3, ErrTruncated, "packet 4: truncated packet header (wanted 16 bytes, got 7)"},
		{"record over the limit", "x.pcap", withRecord(pcapRecord(le, false, ts, make([]byte, 300000), 300000)), 3, ErrMalformed,
			"packet 4: captured length 300000 exceeds the 262144-byte limit"},
		{"captured longer than original", "x.pcap", withRecord(pcapRecord(le, false, ts, make([]byte, 100), 60)), 3, ErrMalformed,
			"packet 4: captured length 100 exceeds original length 60"},
		{"gzip cut short", "c.pcap.gz", gz[:len(gz)/2], -1, ErrTruncated, "compressed stream ends early"},
		{"gzip corrupt", "c.pcap.gz", corruptGz, -1, ErrMalformed, "gzip"},

		{"pcapng truncated section header", "n.pcapng", ng(func(*ngBuilder) {})[:20], 0, ErrTruncated, "truncated pcapng section header block (wanted 28 bytes, got 20)"},
		{"pcapng bad byte-order magic", "n.pcapng", func() []byte {
			b := ng(func(*ngBuilder) {})
			copy(b[8:], "XXXX")
			return b
		}(), 0, ErrMalformed, "no byte-order magic"},
		{"pcapng version 2.0", "n.pcapng", func() []byte {
			b := ng(func(*ngBuilder) {})
			le.PutUint16(b[12:], 2)
			return b
		}(), 0, ErrMalformed, "unsupported pcapng version 2.0"},
		{"pcapng unsupported interface", "n.pcapng", ng(func(n *ngBuilder) {
			n.idb(1, 0)
			n.idb(147, 0)
			ngPkt(n, 0)
			ngPkt(n, 1)
		}), 1, ErrUnsupportedLinkType, "capture: file %s: packet 2: interface 1: unsupported link type 147 (USER0)"},
		{"pcapng truncated packet", "n.pcapng", func() []byte {
			b := ng(func(n *ngBuilder) { n.idb(1, 0); ngPkt(n, 0); n.epb(0, ts, make([]byte, 100), 100) })
			return b[:len(b)-(32+100)+28+10]
		}(), 1, ErrTruncated, "packet 2: truncated packet (wanted 100 bytes, got 10)"},
		{"pcapng truncated block trailer", "n.pcapng", func() []byte {
			b := ng(func(n *ngBuilder) { n.idb(1, 0); ngPkt(n, 0) })
			return b[:len(b)-2]
		}(), 0, ErrTruncated, "packet 1: truncated pcapng enhanced packet block"},
		{"pcapng truncated unknown block", "n.pcapng", func() []byte {
			// pcapgo alone reports a clean end of file here.
			b := ng(func(n *ngBuilder) { n.idb(1, 0); ngPkt(n, 0); n.block(0x0bad, make([]byte, 64)) })
			return b[:len(b)-20]
		}(), 1, ErrTruncated, "packet 2: truncated pcapng block type 0x00000bad (wanted 76 bytes, got 56)"},
		{"pcapng block length not a multiple of 4", "n.pcapng", func() []byte {
			b := ng(func(n *ngBuilder) { n.idb(1, 0); ngPkt(n, 0) })
			le.PutUint32(b[28+20+4:], 33)
			return b
		}(), 0, ErrMalformed, "packet 1: pcapng enhanced packet block has a bad length 33"},
		{"pcapng block length below 12", "n.pcapng", ng(func(n *ngBuilder) {
			n.idb(1, 0)
			n.b.Write([]byte{0xad, 0x0b, 0, 0, 8, 0, 0, 0})
		}), 0, ErrMalformed, "has a bad length 8"},
		{"pcapng packet longer than its block", "n.pcapng", func() []byte {
			b := ng(func(n *ngBuilder) { n.idb(1, 0); ngPkt(n, 0) })
			le.PutUint32(b[28+20+20:], 5000)
			return b
		}(), 0, ErrMalformed, "packet 1: captured length 5000 does not fit its"},
		{"pcapng packet on a missing interface", "n.pcapng", ng(func(n *ngBuilder) { n.idb(1, 0); ngPkt(n, 3) }), 0, ErrMalformed,
			"packet 1: pcapng packet on interface 3, but the section describes 1"},
		{"pcapng packet before any interface", "n.pcapng", ng(func(n *ngBuilder) { ngPkt(n, 0) }), 0, ErrMalformed, "before any interface"},
		{"pcapng statistics for a missing interface", "n.pcapng", ng(func(n *ngBuilder) {
			n.idb(1, 0)
			n.block(ngBlockISB, n.u32(9), n.u32(0), n.u32(0))
			ngPkt(n, 0)
		}), 0, ErrMalformed, "statistics for interface 9"},
		{"pcapng absurd interface snaplen", "n.pcapng", ng(func(n *ngBuilder) { n.idb(1, 0xfffffff0); ngPkt(n, 0) }), 0, ErrMalformed,
			"interface 0: absurd snap length 4294967280"},
		{"pcapng timestamp resolution 2^-127", "n.pcapng", ng(func(n *ngBuilder) {
			// pcapgo divides by 1<<127, which is 0 in 64 bits: a panic.
			n.idb(1, 0, n.opt(ngOptTsresol, []byte{0xff}))
			ngPkt(n, 0)
		}), 0, ErrMalformed, "interface 0: bad timestamp resolution"},
		{"pcapng option overruns its block", "n.pcapng", ng(func(n *ngBuilder) {
			n.block(ngBlockIDB, n.u16(1), n.u16(0), n.u32(0), n.u16(2), n.u16(200), []byte("eth0"))
			ngPkt(n, 0)
		}), 0, ErrMalformed, "option 2 of 200 bytes overruns its block"},
		{"pcapng oversized block between an interface and its packet", "n.pcapng", ng(func(n *ngBuilder) {
			// pcapgo must read the interface and the packet in one call,
			// so everything between them must fit the read window.
			n.idb(1, 0)
			n.block(0x0bad, make([]byte, 2*readBufferSize))
			ngPkt(n, 0)
		}), 0, ErrMalformed, "packet 1: pcapng block type 0x00000bad of 2097164 bytes at offset 20 before the packet does not fit the 1048576-byte read window"},
		{"pcapng packet over the limit", "n.pcapng", ng(func(n *ngBuilder) { n.idb(1, 0); n.epb(0, ts, make([]byte, 300000), 300000) }), 0, ErrMalformed,
			"captured length 300000 exceeds the 262144-byte limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.file, tc.data)
			want := tc.want
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, path)
			}
			s, err := OpenFile(path)
			var got []Packet
			if err == nil {
				got, err = readAll(t, s)
				if err != nil {
					// Sticky: the same error again, counted once.
					if _, err2 := s.Next(); err2 != err {
						t.Errorf("second Next = %v, want the same error", err2)
					}
					if st := s.Stats(); st.Errors != 1 || st.Packets != uint64(len(got)) {
						t.Errorf("Stats() = %+v", st)
					}
				}
				s.Close()
			}
			if err == nil {
				t.Fatalf("no error; read %d packets", len(got))
			}
			t.Logf("%v (after %d packets)", err, len(got))
			if !errors.Is(err, tc.kind) {
				t.Errorf("error %q is not %v", err, tc.kind)
			}
			if errors.Is(err, errReaderPanic) {
				t.Errorf("reader failure: %v", err)
			}
			if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q\n  does not contain %q", err, want)
			}
			if tc.packets >= 0 && len(got) != tc.packets {
				t.Errorf("read %d packets before the error, want %d", len(got), tc.packets)
			}
			for i, p := range got {
				if tc.packets > 0 && !bytes.Equal(p.Data, good[i].data) {
					t.Errorf("packet %d before the error differs", i+1)
				}
			}
		})
	}
}

func TestOpenFileMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nope.pcap")
	_, err := OpenFile(path)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
	if want := "capture: file " + path + ": cannot open: no such file or directory"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
}

func TestClose(t *testing.T) {
	path := writeFile(t, "c.pcap", pcapBytes(binary.LittleEndian, false, 65535, 1, makePackets(3, 11)))
	s, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Next(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Next(); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Next after Close = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// TestLinkTypes pins the supported set and the names used in messages.
func TestLinkTypes(t *testing.T) {
	supported := map[LinkType]string{0: "NULL", 1: "ETHERNET", 101: "RAW", 108: "LOOP", 113: "LINUX_SLL",
		228: "IPV4", 229: "IPV6", 239: "NFLOG", 276: "LINUX_SLL2"}
	for lt := LinkType(0); lt < 400; lt++ {
		name, ok := supported[lt]
		if lt.Supported() != ok {
			t.Errorf("%d: Supported() = %v", lt, !ok)
		}
		if ok && lt.String() != name {
			t.Errorf("%d: String() = %q, want %q", lt, lt.String(), name)
		}
	}
	if s := LinkType(162).String(); s != "USER15" {
		t.Errorf("162: %q", s)
	}
	if normalizeLinkType(12) != LinkTypeRaw || normalizeLinkType(14) != LinkTypeRaw || normalizeLinkType(101) != LinkTypeRaw {
		t.Error("DLT_RAW values not normalised")
	}
}

// TestNextAllocatesNothing: the steady state of every format reads without
// allocating.
func TestNextAllocatesNothing(t *testing.T) {
	const runs = 2000
	pkts := makePackets(3000, 12)
	files := map[string][]byte{
		"pcap":    pcapgoBytes(t, false, layers.LinkTypeEthernet, pkts),
		"pcap-be": pcapBytes(binary.BigEndian, true, 65535, 1, pkts),
		"pcap.gz": gzipBytes(pcapgoBytes(t, true, layers.LinkTypeEthernet, pkts)),
		"pcapng":  pcapngWithPcapgo(t, pkts),
	}
	sll2 := &ngBuilder{order: binary.LittleEndian}
	sll2.shb()
	sll2.idb(uint16(LinkTypeLinuxSLL2), 65535)
	for _, p := range pkts {
		sll2.epb(0, p.ts, p.data, p.origLen)
	}
	files["pcapng-sll2"] = sll2.bytes()
	// compress/flate allocates Huffman link tables (inflate.go) each time
	// it starts a dynamic block with codes longer than 9 bits: per block
	// of input, not per packet, and outside the source (190 in 2000
	// packets of this incompressible data).
	maxAllocs := map[string]uint64{"pcap.gz": runs / 5}
	for name, data := range files {
		t.Run(name, func(t *testing.T) {
			s, err := OpenFile(writeFile(t, "a."+name, data))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			for range 200 { // warm up: the first packets size the buffers
				if _, err := s.Next(); err != nil {
					t.Fatal(err)
				}
			}
			// testing.AllocsPerRun rounds down; count every allocation.
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for range runs {
				if _, err := s.Next(); err != nil {
					t.Fatal(err)
				}
			}
			runtime.ReadMemStats(&after)
			allocs := after.Mallocs - before.Mallocs
			t.Logf("%d allocations in %d packets", allocs, runs)
			if allocs > maxAllocs[name] {
				t.Errorf("%d allocations in %d packets, want at most %d", allocs, runs, maxAllocs[name])
			}
		})
	}
}

// realDir holds the shared real-world captures; tests skip without it.
const realDir = "../../shared/pcaps/real"

// TestRealCaptures opens every capture listed in the shared MANIFEST.tsv
// and reads it to the end: the packet count and link type must match.
func TestRealCaptures(t *testing.T) {
	f, err := os.Open(filepath.Join(realDir, "MANIFEST.tsv"))
	if err != nil {
		t.Skipf("shared real captures absent (%v)", err)
	}
	defer f.Close()
	linkTypes := map[string]LinkType{
		"Ethernet": LinkTypeEthernet, "NULL/Loopback": LinkTypeNull, "Raw IPv4": LinkTypeIPv4,
		"Raw IP": LinkTypeRaw, "NFLOG": LinkTypeNFLOG,
		"Linux cooked-mode capture v1": LinkTypeLinuxSLL, "Linux cooked-mode capture v2": LinkTypeLinuxSLL2,
	}
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	n := 0
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) < 8 {
			continue
		}
		rel, wantLT := cols[0], cols[7]
		wantPackets, err := strconv.Atoi(cols[5])
		if err != nil {
			t.Fatalf("%s: packets column %q", rel, cols[5])
		}
		n++
		t.Run(rel, func(t *testing.T) {
			s, err := OpenFile(filepath.Join(realDir, rel))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			count := 0
			for {
				p, err := s.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("after %d packets: %v", count, err)
				}
				count++
				if lt, ok := linkTypes[wantLT]; ok && p.LinkType != lt {
					t.Fatalf("packet %d: link type %v, manifest says %s", p.Number, p.LinkType, wantLT)
				}
				if p.Time.IsZero() || len(p.Data) == 0 || p.Length < len(p.Data) {
					t.Fatalf("packet %d: time %v, %d bytes of %d", p.Number, p.Time, len(p.Data), p.Length)
				}
			}
			if count != wantPackets {
				t.Errorf("read %d packets, manifest says %d", count, wantPackets)
			}
		})
	}
	if n == 0 {
		t.Fatal("MANIFEST.tsv lists no captures")
	}
}

// BenchmarkFileSource reads a generated 10,000-packet file per iteration,
// a packet at a time (Next) and a batch at a time (ReadBatch).
func BenchmarkFileSource(b *testing.B) {
	const n = 10000
	pkts := makePackets(n, 13)
	files := []struct {
		name string
		data []byte
	}{
		{"pcap", pcapgoBytes(b, false, layers.LinkTypeEthernet, pkts)},
		{"pcapng", pcapngWithPcapgo(b, pkts)},
		{"pcap.gz", gzipBytes(pcapgoBytes(b, false, layers.LinkTypeEthernet, pkts))},
	}
	// Each way of reading returns the number of packets read and the
	// error that ended the call (io.EOF at the end).
	byPacket := func(s Source) (int, error) {
		_, err := s.Next()
		if err != nil {
			return 0, err
		}
		return 1, nil
	}
	batch := NewBatch(1 << 20)
	byBatch := func(s Source) (int, error) {
		err := ReadBatch(s, batch)
		return len(batch.Packets), err
	}
	for _, f := range files {
		for _, way := range []struct {
			name string
			read func(Source) (int, error)
		}{{f.name, byPacket}, {f.name + "/batches", byBatch}} {
			b.Run(way.name, func(b *testing.B) {
				path := writeFile(b, "bench."+f.name, f.data)
				b.ReportAllocs()
				b.SetBytes(int64(len(f.data)))
				for b.Loop() {
					s, err := OpenFile(path)
					if err != nil {
						b.Fatal(err)
					}
					count := 0
					for {
						k, err := way.read(s)
						count += k
						if err == io.EOF {
							break
						}
						if err != nil {
							b.Fatal(err)
						}
					}
					s.Close()
					if count != n {
						b.Fatalf("read %d packets", count)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/packet")
			})
		}
	}
}

// fuzzSeeds are valid and damaged files of each format.
func fuzzSeeds(t testing.TB) [][]byte {
	pkts := makePackets(4, 14)
	for i := range pkts {
		pkts[i].data = pkts[i].data[:60]
		pkts[i].origLen = 60
	}
	pcap := pcapBytes(binary.LittleEndian, false, 65535, 1, pkts)
	pcapBE := pcapBytes(binary.BigEndian, true, 96, 276, pkts)
	ng := &ngBuilder{order: binary.BigEndian}
	ng.shb()
	ng.idb(1, 0, ng.opt(ngOptTsresol, []byte{6}), ng.opt(ngOptTsoffset, make([]byte, 8)))
	ng.idb(239, 128)
	ng.block(0x0bad, []byte("unknown"))
	for i, p := range pkts {
		ng.epb(uint32(i%2), p.ts, p.data, p.origLen)
	}
	ng.block(ngBlockSPB, ng.u32(60), pkts[0].data)
	ng.block(ngBlockISB, ng.u32(1), ng.u32(0), ng.u32(0))
	ngLE := pcapngWithPcapgo(t, pkts[:2])
	return [][]byte{
		pcap, pcapBE, ng.bytes(), ngLE,
		gzipBytes(pcap), gzipBytes(ngLE),
		pcap[:40], ng.bytes()[:100], []byte("HTTP/1.1 200 OK"), {},
	}
}

// FuzzFile feeds arbitrary bytes to the file source: it must never panic
// (not even a panic caught inside Next), and must return packets or one of
// the package's errors, sticky.
func FuzzFile(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := openReader("fuzz.pcap", bytes.NewReader(data))
		if err != nil {
			checkFuzzError(t, err)
			return
		}
		for i := 0; ; i++ {
			p, err := s.Next()
			if err == io.EOF {
				return
			}
			if err != nil {
				checkFuzzError(t, err)
				if !strings.Contains(err.Error(), fmt.Sprintf("packet %d", i+1)) && !strings.Contains(err.Error(), "read error") {
					t.Fatalf("error %q does not name packet %d", err, i+1)
				}
				if _, err2 := s.Next(); err2 != err {
					t.Fatalf("error not sticky: %v then %v", err, err2)
				}
				return
			}
			if len(p.Data) > maxPacketLen || p.Length < len(p.Data) || !p.LinkType.Supported() || p.Number != uint64(i+1) {
				t.Fatalf("bad packet %+v", p)
			}
		}
	})
}

func checkFuzzError(t *testing.T, err error) {
	t.Helper()
	if errors.Is(err, errReaderPanic) {
		t.Fatalf("reader failure: %v", err)
	}
	var fe *FileError
	if !errors.As(err, &fe) || fe.Path != "fuzz.pcap" {
		t.Fatalf("error %v is not a FileError for the file", err)
	}
	if !errors.Is(err, ErrNotCapture) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupportedLinkType) {
		t.Fatalf("error %v has no kind", err)
	}
}
