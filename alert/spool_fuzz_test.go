package alert

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzSpoolSegment: whatever a spool segment holds (a torn write, a
// damaged disk, another program's file), opening the spool and reading it
// never panics, and what it returns are whole records whose checksum held.
func FuzzSpoolSegment(f *testing.F) {
	good := encodeSpoolEntry(nil, &Encoded{Type: "alert", Key: "1:abc=", Severity: 2, Time: time.Unix(1767603600, 0), JSON: []byte(`{"a":1}`)})
	f.Add(good)
	f.Add(append(append([]byte(nil), good...), good[:20]...))
	f.Add([]byte("00000005 00000000 hello\n"))
	f.Add([]byte("ffffffff ffffffff "))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segName(spoolFirstSeq)), data, 0o640); err != nil {
			t.Fatal(err)
		}
		s, err := openSpool(dir, "fuzz", 1<<20, 64<<10, func(string) {})
		if err != nil {
			return
		}
		defer s.close()
		for range 100 {
			recs, pos := s.read(16)
			for _, e := range recs {
				if e.Type == "" || e.JSON == nil {
					t.Fatalf("a record without type or JSON: %+v", e)
				}
			}
			if len(recs) == 0 {
				break
			}
			s.commit(pos)
		}
		// The spool still takes records after whatever it held.
		if err := s.append(&Encoded{Type: "flow", JSON: []byte(`{}`)}); err != nil {
			t.Fatalf("append after reading: %v", err)
		}
		recs, _ := s.read(1 << 20)
		if len(recs) == 0 || string(recs[len(recs)-1].JSON) != `{}` {
			t.Fatalf("the appended record was not read back: %d records", len(recs))
		}
	})
}
