package capture

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readAllBatches reads s to its end or first error with ReadBatch, into
// batches of about size bytes.
func readAllBatches(t testing.TB, s Source, size int) ([]Packet, error) {
	t.Helper()
	var got []Packet
	b := NewBatch(size)
	for {
		err := ReadBatch(s, b)
		for i, p := range b.Packets {
			got = append(got, Packet{Data: bytes.Clone(b.Bytes(i)), Time: p.Time, Length: p.Length,
				LinkType: p.LinkType, Interface: p.Interface, Number: p.Number})
		}
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		if len(b.Packets) == 0 {
			t.Fatal("ReadBatch returned no packets and no error")
		}
	}
}

// sameAsNext reads data both ways and fails unless the packets, the error
// and the counters agree.
func sameAsNext(t *testing.T, name string, data []byte, size int) {
	t.Helper()
	a, errA := openReader(name, bytes.NewReader(data))
	b, errB := openReader(name, bytes.NewReader(data))
	if (errA == nil) != (errB == nil) {
		t.Fatalf("open: %v / %v", errA, errB)
	}
	if errA != nil {
		return
	}
	want, errNext := readAll(t, a)
	got, errBatch := readAllBatches(t, b, size)
	if msg(errNext) != msg(errBatch) {
		t.Fatalf("Next ends with %q, ReadBatch with %q", msg(errNext), msg(errBatch))
	}
	if len(got) != len(want) {
		t.Fatalf("ReadBatch gave %d packets, Next %d", len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		if !bytes.Equal(w.Data, g.Data) || !w.Time.Equal(g.Time) || w.Length != g.Length || w.LinkType != g.LinkType ||
			w.Interface != g.Interface || w.Number != g.Number {
			t.Fatalf("packet %d: ReadBatch %+v, Next %+v", i+1, g, w)
		}
	}
	if a.Stats() != b.Stats() {
		t.Fatalf("stats: ReadBatch %+v, Next %+v", b.Stats(), a.Stats())
	}
}

func msg(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestReadBatchMatchesNext: reading a file a batch at a time gives the
// packets, the error and the counters that Next gives, for whole files of
// every format, files damaged at every kind of place, and batches that end
// inside a record header or a packet.
func TestReadBatchMatchesNext(t *testing.T) {
	le, be := binary.LittleEndian, binary.BigEndian
	many := makePackets(3000, 21) // several batches
	big := makePackets(8, 22)
	for i := range big {
		big[i].data = bytes.Repeat(big[i].data[:1], maxPacketLen-i) // records as large as allowed
		big[i].origLen = len(big[i].data)
	}
	pcap := pcapBytes(le, false, 65535, 1, many)
	files := map[string][]byte{
		"pcap":            pcap,
		"pcap big-endian": pcapBytes(be, true, 65535, 1, many),
		"largest records": pcapBytes(le, true, maxPacketLen, 1, big),
		"pcap.gz":         gzipBytes(pcap),
		"pcapng":          pcapngWithPcapgo(t, many[:500]),
		"header only":     pcap[:24],
	}
	for i, s := range fuzzSeeds(t) {
		files["seed "+string(rune('a'+i))] = s
	}
	// Cut short inside the header of record 1000 and inside its bytes;
	// damage its captured length.
	rec := 24
	for _, p := range many[:999] {
		rec += 16 + len(p.data)
	}
	files["cut in a header"] = pcap[:rec+7]
	files["cut in a packet"] = pcap[:rec+16+10]
	bad := bytes.Clone(pcap)
	le.PutUint32(bad[rec+8:], maxPacketLen+1)
	files["absurd length"] = bad
	bad = bytes.Clone(pcap)
	le.PutUint32(bad[rec+12:], 1)
	files["captured beyond original"] = bad
	files["corrupt gzip"] = gzipBytes(pcap)[:len(gzipBytes(pcap))/2]
	for name, data := range files {
		for _, size := range []int{0, 1 << 20, 3 << 20} {
			t.Run(name, func(t *testing.T) { sameAsNext(t, name, data, size) })
		}
	}
}

// TestReadBatchThenNext: the two ways of reading are not mixed.
func TestReadBatchThenNext(t *testing.T) {
	s, err := openReader("x.pcap", bytes.NewReader(pcapBytes(binary.LittleEndian, false, 65535, 1, makePackets(3000, 3))))
	if err != nil {
		t.Fatal(err)
	}
	if err := ReadBatch(s, NewBatch(1<<20)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Next(); err == nil || !strings.Contains(err.Error(), "after ReadBatch") {
		t.Fatalf("Next after ReadBatch: %v", err)
	}
}

// TestReadBatchAllocatesNothing: reading into a batch that has grown to
// its size allocates nothing per batch.
func TestReadBatchAllocatesNothing(t *testing.T) {
	path := writeFile(t, "a.pcap", pcapBytes(binary.LittleEndian, false, 65535, 1, makePackets(20000, 4)))
	s, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b := NewBatch(1 << 20)
	if err := ReadBatch(s, b); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(5, func() {
		if err := ReadBatch(s, b); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per batch", allocs)
	}
}

// TestReadBatchRealCaptures: every shared real capture reads the same a
// batch at a time.
func TestReadBatchRealCaptures(t *testing.T) {
	f, err := os.Open(filepath.Join(realDir, "MANIFEST.tsv"))
	if err != nil {
		t.Skipf("shared real captures absent (%v)", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan()
	for sc.Scan() {
		rel, _, _ := strings.Cut(sc.Text(), "\t")
		data, err := os.ReadFile(filepath.Join(realDir, rel))
		if err != nil {
			t.Fatal(err)
		}
		sameAsNext(t, rel, data, 1<<20)
	}
}

// FuzzReadBatch: on any input, ReadBatch and Next agree.
func FuzzReadBatch(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) { sameAsNext(t, "fuzz.pcap", data, 0) })
}
