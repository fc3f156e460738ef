package alert

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The spool holds the records a sink could not take in time, on disk, in
// order, bounded in bytes, and surviving a restart. It is a directory of
// segment files (<seq>.spool, 16 hex digits) written one after the other,
// a cursor file naming the first record not yet delivered, and a lock
// file so two processes never share it.
//
// A record is one line: its payload's length and CRC-32C (Castagnoli) as
// 8 hex digits each, then the payload, then a newline:
//
//	00000131 5e1c09aa alert 1767603600009000000 2 1:4RLwuXaZH0rXS2kw2Sr9/hSJPvk= {"timestamp":...}
//
// The payload is the event type, the record's time in Unix nanoseconds,
// its severity, its key ("-" for none) and its JSON, separated by single
// spaces. Lines
// keep the spool readable with less and grep; the length and checksum
// find a torn write after a crash or a damaged disk.

// spoolFirstSeq numbers the first segment of a new spool, leaving room
// below it for segments put in front (prepend).
const spoolFirstSeq = 1 << 32

// ErrSpoolFull is returned when a record does not fit in the spool's bound.
var ErrSpoolFull = errors.New("spool full")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const (
	spoolHeaderLen = 18 // "%08x %08x "
	spoolExt       = ".spool"
	spoolMaxRecord = 64 << 20
)

type spoolSeg struct {
	seq  uint64
	size int64
}

// spoolPos is a place in the spool: a segment and an offset in it.
type spoolPos struct {
	seq uint64
	off int64
}

type spool struct {
	mu       sync.Mutex
	dir      string
	name     string // the sink's, for errors
	maxBytes int64
	segBytes int64
	lock     *os.File

	segs  []spoolSeg // oldest first; the last one is written to
	w     *os.File   // the last segment, open for appending (nil until needed)
	wbad  bool       // the last segment could not be repaired after a failed write
	size  int64      // bytes of all segments
	count int64      // records not yet read

	r    *os.File // the segment being read
	rbuf *bufio.Reader
	rpos spoolPos // the next record to read

	scratch  []byte           // an encoded record being appended
	rscratch []byte           // a record being read
	corrupt  func(msg string) // told of damaged records skipped (log and count)
}

// openSpool opens (creating) the spool in dir and finds where delivery
// stopped last time; records left by a previous run are read first.
func openSpool(dir, name string, maxBytes, segBytes int64, corrupt func(string)) (*spool, error) {
	s := &spool{dir: dir, name: name, maxBytes: maxBytes, segBytes: segBytes, corrupt: corrupt}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, s.errf("%w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, s.errf("%w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, s.errf("in use by another process (%v)", err)
	}
	s.lock = lock
	if err := s.load(); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

func (s *spool) errf(format string, args ...any) error {
	return fmt.Errorf("alert: sink %s: spool %s: "+format, append([]any{s.name, s.dir}, args...)...)
}

func segName(seq uint64) string { return fmt.Sprintf("%016x%s", seq, spoolExt) }

func (s *spool) segPath(seq uint64) string { return filepath.Join(s.dir, segName(seq)) }

// load lists the segments, reads the cursor, removes what was delivered,
// and counts (and checks) what was not.
func (s *spool) load() error {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return s.errf("%w", err)
	}
	for _, e := range ents {
		n := e.Name()
		if !strings.HasSuffix(n, spoolExt) || e.IsDir() {
			continue
		}
		seq, err := strconv.ParseUint(strings.TrimSuffix(n, spoolExt), 16, 64)
		if err != nil {
			continue
		}
		info, err := e.Info()
		if err != nil {
			return s.errf("%w", err)
		}
		s.segs = append(s.segs, spoolSeg{seq: seq, size: info.Size()})
	}
	sort.Slice(s.segs, func(i, j int) bool { return s.segs[i].seq < s.segs[j].seq })
	cur := spoolPos{seq: spoolFirstSeq}
	if b, err := os.ReadFile(filepath.Join(s.dir, "cursor")); err == nil {
		if _, err := fmt.Sscanf(string(b), "%x %d", &cur.seq, &cur.off); err != nil {
			s.corrupt(fmt.Sprintf("cursor file unreadable (%v): replaying every segment", err))
			cur = spoolPos{}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return s.errf("%w", err)
	}
	// Segments wholly before the cursor were delivered.
	for len(s.segs) > 0 && s.segs[0].seq < cur.seq {
		if err := os.Remove(s.segPath(s.segs[0].seq)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return s.errf("%w", err)
		}
		s.segs = s.segs[1:]
	}
	if len(s.segs) == 0 || s.segs[0].seq != cur.seq {
		cur.off = 0
	}
	if len(s.segs) > 0 {
		cur.seq = s.segs[0].seq
	}
	s.rpos = cur
	for i := range s.segs {
		s.size += s.segs[i].size
		from := int64(0)
		if i == 0 {
			from = cur.off
		}
		n, good, err := s.scan(s.segs[i].seq, from)
		if err != nil {
			return err
		}
		s.count += n
		if good < s.segs[i].size && i == len(s.segs)-1 {
			// A torn last write (the process died in it): cut it off so
			// appends go on after the last whole record.
			if err := os.Truncate(s.segPath(s.segs[i].seq), good); err != nil {
				return s.errf("repairing %s: %w", segName(s.segs[i].seq), err)
			}
			s.corrupt(fmt.Sprintf("segment %s: %d bytes of a torn record at the end removed", segName(s.segs[i].seq), s.segs[i].size-good))
			s.size -= s.segs[i].size - good
			s.segs[i].size = good
		}
	}
	return nil
}

// scan counts the whole, valid records of a segment from offset from and
// returns the offset after the last of them.
func (s *spool) scan(seq uint64, from int64) (n, good int64, err error) {
	f, err := os.Open(s.segPath(seq))
	if err != nil {
		return 0, 0, s.errf("%w", err)
	}
	defer f.Close()
	if _, err := f.Seek(from, io.SeekStart); err != nil {
		return 0, 0, s.errf("%w", err)
	}
	br := bufio.NewReaderSize(f, 64<<10)
	good = from
	var scratch []byte
	for {
		var size int
		scratch, size, err = readSpoolEntry(br, scratch)
		if err != nil {
			return n, good, nil
		}
		n++
		good += int64(size)
	}
}

// readSpoolEntry reads one record line into buf and returns its payload
// (aliasing buf) and its size on disk.
func readSpoolEntry(br *bufio.Reader, buf []byte) ([]byte, int, error) {
	var hdr [spoolHeaderLen]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		if err == io.ErrUnexpectedEOF {
			return buf, 0, errTorn
		}
		return buf, 0, err // io.EOF: the end
	}
	if hdr[8] != ' ' || hdr[17] != ' ' {
		return buf, 0, errBadHeader
	}
	n, err1 := strconv.ParseUint(string(hdr[0:8]), 16, 32)
	sum, err2 := strconv.ParseUint(string(hdr[9:17]), 16, 32)
	if err1 != nil || err2 != nil || n > spoolMaxRecord {
		return buf, 0, errBadHeader
	}
	if cap(buf) < int(n)+1 {
		buf = make([]byte, int(n)+1)
	}
	buf = buf[:n+1]
	if _, err := io.ReadFull(br, buf); err != nil {
		return buf, 0, errTorn
	}
	if buf[n] != '\n' || crc32.Checksum(buf[:n], castagnoli) != uint32(sum) {
		return buf, 0, errChecksum
	}
	return buf[:n], spoolHeaderLen + int(n) + 1, nil
}

var (
	errTorn      = errors.New("record cut short")
	errBadHeader = errors.New("bad record header")
	errChecksum  = errors.New("checksum mismatch")
)

// encodeSpoolEntry appends e's record line to b.
func encodeSpoolEntry(b []byte, e *Encoded) []byte {
	start := len(b)
	b = append(b, "00000000 00000000 "...)
	p := len(b)
	b = append(b, e.Type...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, e.Time.UnixNano(), 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(e.Severity), 10)
	b = append(b, ' ')
	if k := e.PartitionKey(); k == "" {
		b = append(b, '-')
	} else {
		b = append(b, k...)
	}
	b = append(b, ' ')
	b = append(b, e.JSON...)
	n := len(b) - p
	sum := crc32.Checksum(b[p:], castagnoli)
	putHex8(b[start:], uint32(n))
	putHex8(b[start+9:], sum)
	return append(b, '\n')
}

func putHex8(b []byte, v uint32) {
	for i := 7; i >= 0; i-- {
		b[i] = hexDigits[v&0xf]
		v >>= 4
	}
}

// decodeSpoolPayload splits a payload back into a record.
func decodeSpoolPayload(p []byte) (*Encoded, error) {
	parts := bytes.SplitN(p, []byte{' '}, 5)
	if len(parts) != 5 {
		return nil, errBadHeader
	}
	ns, err1 := strconv.ParseInt(string(parts[1]), 10, 64)
	sev, err2 := strconv.Atoi(string(parts[2]))
	if err1 != nil || err2 != nil {
		return nil, errBadHeader
	}
	e := &Encoded{Type: string(parts[0]), Time: time.Unix(0, ns), Severity: sev, JSON: bytes.Clone(parts[4])}
	if k := string(parts[3]); k != "-" {
		e.Key = k
	}
	return e, nil
}

// append writes e at the end of the spool, or says why it cannot: the
// bound (ErrSpoolFull) or the disk. A failed write leaves no partial
// record behind.
func (s *spool) append(e *Encoded) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appendLocked(e)
}

func (s *spool) appendLocked(e *Encoded) error {
	s.scratch = encodeSpoolEntry(s.scratch[:0], e)
	n := int64(len(s.scratch))
	if s.size+n > s.maxBytes {
		return ErrSpoolFull
	}
	if s.w == nil || s.wbad || (s.segs[len(s.segs)-1].size > 0 && s.segs[len(s.segs)-1].size+n > s.segBytes) {
		if err := s.startSegment(); err != nil {
			return err
		}
	}
	last := &s.segs[len(s.segs)-1]
	wrote, err := s.w.Write(s.scratch)
	if err != nil {
		if wrote > 0 {
			// Cut the torn record off, so the segment stays readable.
			if terr := s.w.Truncate(last.size); terr != nil {
				s.wbad = true
				last.size += int64(wrote)
				s.size += int64(wrote)
			}
		}
		return s.errf("writing %s: %w", segName(last.seq), err)
	}
	last.size += n
	s.size += n
	s.count++
	return nil
}

// startSegment closes the segment being written and starts the next.
func (s *spool) startSegment() error {
	if s.w != nil {
		s.w.Close()
		s.w = nil
	}
	seq := s.rpos.seq
	if len(s.segs) > 0 {
		last := s.segs[len(s.segs)-1]
		if last.size == 0 && !s.wbad {
			// Reuse an empty last segment.
			f, err := os.OpenFile(s.segPath(last.seq), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
			if err != nil {
				return s.errf("%w", err)
			}
			s.w = f
			return nil
		}
		seq = last.seq + 1
	}
	f, err := os.OpenFile(s.segPath(seq), os.O_CREATE|os.O_WRONLY|os.O_APPEND|os.O_EXCL, 0o640)
	if err != nil {
		return s.errf("%w", err)
	}
	s.w, s.wbad = f, false
	s.segs = append(s.segs, spoolSeg{seq: seq})
	return nil
}

// prepend puts es in front of every record not yet read, so they are read
// first (shutdown: the records still in memory are older than the spooled
// ones). It writes a new first segment holding es and the unread rest of
// the current first segment, which it then removes. Records that do not
// fit in the bound are returned, newest last, with ErrSpoolFull.
func (s *spool) prepend(es []*Encoded) ([]*Encoded, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(es) == 0 {
		return nil, nil
	}
	if len(s.segs) == 0 || s.atEnd() || s.segs[0].seq == 0 || s.rpos.seq != s.segs[0].seq {
		for i, e := range es {
			if err := s.appendLocked(e); err != nil {
				return es[i:], err
			}
		}
		return nil, nil
	}
	head := s.segs[0]
	seq := head.seq - 1
	var buf []byte
	n := 0
	for _, e := range es {
		before := len(buf)
		buf = encodeSpoolEntry(buf, e)
		if s.size+int64(len(buf)) > s.maxBytes {
			buf = buf[:before]
			break
		}
		n++
	}
	var left []*Encoded
	var leftErr error
	if n < len(es) {
		left, leftErr = es[n:], ErrSpoolFull
	}
	if n == 0 {
		return left, leftErr
	}
	fail := func(err error) ([]*Encoded, error) {
		os.Remove(s.segPath(seq))
		return es, s.errf("writing %s: %w", segName(seq), err)
	}
	f, err := os.OpenFile(s.segPath(seq), os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o640)
	if err != nil {
		return es, s.errf("%w", err)
	}
	if _, err := f.Write(buf); err != nil {
		f.Close()
		return fail(err)
	}
	// The unread rest of the first segment follows.
	src, err := os.Open(s.segPath(head.seq))
	if err == nil {
		_, err = src.Seek(s.rpos.off, io.SeekStart)
		if err == nil {
			_, err = io.Copy(f, src)
		}
		src.Close()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail(err)
	}
	rest := head.size - s.rpos.off
	if s.r != nil {
		s.r.Close()
		s.r, s.rbuf = nil, nil
	}
	if len(s.segs) == 1 && s.w != nil {
		s.w.Close()
		s.w = nil
	}
	newSeg := spoolSeg{seq: seq, size: int64(len(buf)) + rest}
	s.size += newSeg.size - head.size
	s.segs[0] = newSeg
	s.count += int64(n)
	s.rpos = spoolPos{seq: seq}
	if err := s.writeCursor(s.rpos); err != nil {
		return left, err
	}
	if err := os.Remove(s.segPath(head.seq)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return left, s.errf("%w", err)
	}
	return left, leftErr
}

// read returns up to max records from the read position on, and the
// position after them, to commit once they are delivered. Damaged records
// are skipped with the rest of their segment, and reported.
func (s *spool) read(max int) ([]*Encoded, spoolPos) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Encoded
	for len(out) < max && len(s.segs) > 0 {
		i := s.segIndex(s.rpos.seq)
		if i < 0 {
			// The read segment is gone (removed after corruption): go on with the next.
			if !s.advanceRead() {
				break
			}
			continue
		}
		if s.r == nil {
			f, err := os.Open(s.segPath(s.rpos.seq))
			if err != nil {
				s.corrupt(fmt.Sprintf("segment %s: %v: skipped", segName(s.rpos.seq), err))
				if !s.advanceRead() {
					break
				}
				continue
			}
			if _, err := f.Seek(s.rpos.off, io.SeekStart); err != nil {
				f.Close()
				s.corrupt(fmt.Sprintf("segment %s: %v: skipped", segName(s.rpos.seq), err))
				if !s.advanceRead() {
					break
				}
				continue
			}
			s.r = f
			s.rbuf = bufio.NewReaderSize(f, 64<<10)
		}
		payload, size, err := readSpoolEntry(s.rbuf, s.rscratch)
		s.rscratch = payload[:0]
		if err == nil {
			var e *Encoded
			if e, err = decodeSpoolPayload(payload); err == nil {
				out = append(out, e)
				s.rpos.off += int64(size)
				s.count--
				continue
			}
		}
		last := i == len(s.segs)-1
		if err == io.EOF {
			if last {
				break // everything written has been read
			}
			s.advanceRead()
			continue
		}
		s.corrupt(fmt.Sprintf("segment %s at offset %d: %v: rest of the segment (%d bytes) skipped",
			segName(s.rpos.seq), s.rpos.off, err, s.segs[i].size-s.rpos.off))
		if !last {
			s.advanceRead()
			continue
		}
		// Nothing after the damage can be trusted: appends go to a new
		// segment, and reading resumes there.
		s.wbad = true
		s.rpos.off = s.segs[i].size
		s.r.Close()
		s.r, s.rbuf = nil, nil
		break
	}
	if len(out) == 0 && s.atEnd() {
		s.count = 0
	}
	return out, s.rpos
}

func (s *spool) segIndex(seq uint64) int {
	for i := range s.segs {
		if s.segs[i].seq == seq {
			return i
		}
	}
	return -1
}

// advanceRead moves the read position to the start of the next segment.
func (s *spool) advanceRead() bool {
	if s.r != nil {
		s.r.Close()
		s.r, s.rbuf = nil, nil
	}
	for _, sg := range s.segs {
		if sg.seq > s.rpos.seq {
			s.rpos = spoolPos{seq: sg.seq}
			return true
		}
	}
	return false
}

// atEnd reports whether everything written has been read.
func (s *spool) atEnd() bool {
	if len(s.segs) == 0 {
		return true
	}
	last := s.segs[len(s.segs)-1]
	return s.rpos.seq == last.seq && s.rpos.off >= last.size ||
		s.rpos.seq > last.seq
}

// commit records that everything before pos was delivered: the cursor
// moves, and segments wholly delivered are removed, freeing their bytes.
func (s *spool) commit(pos spoolPos) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var removeErr error
	for len(s.segs) > 0 && s.segs[0].seq < pos.seq {
		if err := os.Remove(s.segPath(s.segs[0].seq)); err != nil && !errors.Is(err, os.ErrNotExist) && removeErr == nil {
			removeErr = s.errf("%w", err)
		}
		s.size -= s.segs[0].size
		s.segs = s.segs[1:]
	}
	// All delivered and nothing more written: start afresh, so the bytes
	// of the last segment are freed too.
	if len(s.segs) == 1 && s.segs[0].seq == pos.seq && pos.off >= s.segs[0].size && s.rpos == pos {
		if s.w != nil {
			s.w.Close()
			s.w = nil
		}
		if s.r != nil {
			s.r.Close()
			s.r, s.rbuf = nil, nil
		}
		if err := os.Remove(s.segPath(pos.seq)); err != nil && !errors.Is(err, os.ErrNotExist) && removeErr == nil {
			removeErr = s.errf("%w", err)
		}
		s.size -= s.segs[0].size
		s.segs = s.segs[:0]
		s.wbad = false
		pos = spoolPos{seq: pos.seq + 1}
		s.rpos = pos
	}
	if err := s.writeCursor(pos); err != nil {
		return err
	}
	return removeErr
}

// writeCursor saves pos as the first record not yet delivered.
func (s *spool) writeCursor(pos spoolPos) error {
	tmp := filepath.Join(s.dir, "cursor.tmp")
	err := os.WriteFile(tmp, fmt.Appendf(nil, "%016x %d\n", pos.seq, pos.off), 0o640)
	if err == nil {
		err = os.Rename(tmp, filepath.Join(s.dir, "cursor"))
	}
	if err != nil {
		return s.errf("writing cursor: %w", err)
	}
	return nil
}

// stats returns the spool's bytes on disk and records not yet read.
func (s *spool) stats() (bytes, records int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.size, s.count
}

// empty reports whether every record written has been read.
func (s *spool) empty() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count == 0 || s.atEnd()
}

func (s *spool) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	if s.w != nil {
		err = s.w.Close()
		s.w = nil
	}
	if s.r != nil {
		s.r.Close()
		s.r, s.rbuf = nil, nil
	}
	if s.lock != nil {
		s.lock.Close() // releases the flock
		s.lock = nil
	}
	if err != nil {
		return s.errf("%w", err)
	}
	return nil
}
