package capture

import (
	"bufio"
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"time"

	"github.com/google/gopacket/pcapgo"
)

const (
	// readBufferSize is the read buffer over the file. 1 MiB doubled
	// pcapgo's read rate over its default 4 KiB buffer. It is also the
	// window within which the file source checks a record or block before
	// it or pcapgo reads it.
	readBufferSize = 1 << 20

	// maxPacketLen is the largest captured packet accepted: libpcap's
	// MAXIMUM_SNAPLEN, the largest snap length it allows for any of the
	// supported link types.
	maxPacketLen = 262144

	// maxHeaderSnaplen is the largest snap length a file or interface
	// header may declare. Larger values are absurd: no capture tool writes
	// them, and pcapgo would allocate a packet buffer of that size.
	maxHeaderSnaplen = 1 << 24
)

// File format magic numbers, as the first four bytes of the file read in
// big-endian order.
const (
	magicPcapMicroLE = 0xd4c3b2a1 // a1b2c3d4 written little-endian
	magicPcapMicroBE = 0xa1b2c3d4
	magicPcapNanoLE  = 0x4d3cb2a1 // a1b23c4d written little-endian
	magicPcapNanoBE  = 0xa1b23c4d
	magicPcapng      = 0x0a0d0d0a // the Section Header Block type
	gzipID1, gzipID2 = 0x1f, 0x8b // RFC 1952 section 2.3.1
)

// pcapng block types and sizes (draft-ietf-opsawg-pcapng section 4).
const (
	ngBlockIDB = 0x00000001 // Interface Description Block
	ngBlockPB  = 0x00000002 // Packet Block (obsolete, still read)
	ngBlockSPB = 0x00000003 // Simple Packet Block
	ngBlockISB = 0x00000005 // Interface Statistics Block
	ngBlockEPB = 0x00000006 // Enhanced Packet Block
	ngBlockSHB = 0x0a0d0d0a // Section Header Block

	ngByteOrderMagic = 0x1a2b3c4d

	// Smallest total length of each block: type, length, fixed fields,
	// trailing length.
	ngMinSHB = 28
	ngMinIDB = 20
	ngMinISB = 24
	ngMinEPB = 32
	ngMinPB  = 32
	ngMinSPB = 16

	// Interface Description Block options the pcapgo reader interprets
	// numerically (section 4.2).
	ngOptTsresol  = 9
	ngOptTsoffset = 14
)

// FileError is the error a file source returns: it names the file, the
// packet being read (when past the header) and the problem. errors.Is
// matches both its kind (ErrTruncated, ErrNotCapture,
// ErrUnsupportedLinkType, ErrMalformed) and its cause, if any.
type FileError struct {
	// Path is the file as given to OpenFile.
	Path string
	// Packet is the 1-based number of the packet being read when the
	// problem was found; 0 for problems in the file header.
	Packet uint64
	// Kind is one of the package's sentinel errors, or nil when Err says
	// it all (an I/O error).
	Kind error
	// Err is the underlying error, if any.
	Err error
	// Detail says what is wrong, e.g. "truncated packet (wanted 1514
	// bytes, got 60)".
	Detail string
}

// Error returns "capture: file PATH: packet N: DETAIL".
func (e *FileError) Error() string {
	s := "capture: file " + e.Path
	if e.Packet > 0 {
		s += ": packet " + strconv.FormatUint(e.Packet, 10)
	}
	switch {
	case e.Detail != "":
		s += ": " + e.Detail
	case e.Err != nil:
		s += ": " + e.Err.Error()
	case e.Kind != nil:
		s += ": " + e.Kind.Error()
	}
	return s
}

// Unwrap returns the kind and the cause, so that errors.Is and errors.As
// see both.
func (e *FileError) Unwrap() []error {
	switch {
	case e.Kind != nil && e.Err != nil:
		return []error{e.Kind, e.Err}
	case e.Kind != nil:
		return []error{e.Kind}
	case e.Err != nil:
		return []error{e.Err}
	}
	return nil
}

// errReaderPanic marks a panic inside the pcap readers that Next turned
// into an error. The checks before each read are meant to make it
// impossible; the fuzz test fails if it ever appears.
var errReaderPanic = errors.New("capture: reader failure")

// ngInterface is what the file source keeps of a pcapng Interface
// Description Block.
type ngInterface struct {
	linkType LinkType
	snaplen  uint32
}

// fileSource reads a pcap or pcapng file, possibly gzip-compressed.
//
// Classic pcap records are read here, in place in the read buffer: a record
// is a 16-byte header and the bytes, and pcapgo's reader would parse each
// header a second time and copy every packet out of the buffer, which cost
// a quarter of a replay's reading time. pcapgo reads pcapng. Before each
// of its reads the source looks ahead in its own buffer (bufio.Reader.Peek)
// at the blocks pcapgo is about to consume, and rejects anything that would
// make pcapgo fail obscurely, allocate without bound, mistake a truncated
// block for the end of the file, or panic. That works because pcapgo wraps
// its input in bufio.NewReader, which returns our *bufio.Reader itself when
// it is at least 4096 bytes: both read from the same buffer.
type fileSource struct {
	path   string
	closer io.Closer // the file; nil for sources opened on a reader
	gz     *gzip.Reader
	br     *bufio.Reader
	input  io.Reader // what br reads: the file, or the gzip stream

	// Classic pcap.
	pcapBig  bool
	pcapNano bool // fractions of a second are nanoseconds
	linkType LinkType
	consumed int    // bytes of the last record still in the buffer
	carry    []byte // ReadBatch: the start of a record the last batch could not hold
	batched  bool   // ReadBatch was used (Next must not be)

	// pcapng.
	ng        *pcapgo.NgReader
	ngBig     bool          // byte order of the current section
	ifaces    []ngInterface // interfaces of the current section
	ifaceBase int           // interfaces in earlier sections

	n     uint64 // packets returned
	stats Stats
	err   error // sticky: io.EOF or the first error
}

// OpenFile opens a capture file. The format is chosen by the file's magic
// number, never its name: classic pcap (microsecond or nanosecond, either
// byte order), pcapng, or either of them gzip-compressed. A classic pcap
// with an unsupported link type is refused here; a pcapng interface with an
// unsupported link type fails at its first packet.
func OpenFile(path string) (Source, error) {
	f, err := os.Open(path)
	if err != nil {
		detail := err.Error()
		var pe *fs.PathError
		if errors.As(err, &pe) {
			detail = "cannot open: " + pe.Err.Error()
		}
		return nil, &FileError{Path: path, Err: err, Detail: detail}
	}
	s, err := openReader(path, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	s.closer = f
	return s, nil
}

// openReader builds a file source over r; path names it in messages.
func openReader(path string, r io.Reader) (src *fileSource, err error) {
	s := &fileSource{path: path}
	defer func() {
		if p := recover(); p != nil {
			src, err = nil, s.errorf(0, ErrMalformed, errReaderPanic, "reader failure on the file header: %v", p)
		}
	}()
	s.br, s.input = bufio.NewReaderSize(r, readBufferSize), r
	head, _ := s.br.Peek(2)
	if len(head) == 2 && head[0] == gzipID1 && head[1] == gzipID2 {
		s.gz, err = gzip.NewReader(s.br)
		if err != nil {
			return nil, s.readError(0, err, "gzip header")
		}
		s.br, s.input = bufio.NewReaderSize(s.gz, readBufferSize), s.gz
	}
	head, err = s.br.Peek(4)
	if len(head) < 4 {
		if len(head) == 0 && err == io.EOF {
			return nil, s.errorf(0, ErrNotCapture, nil, "not a capture file (empty)")
		}
		if err != io.EOF {
			return nil, s.readError(0, err, "file header")
		}
		return nil, s.errorf(0, ErrTruncated, nil, "truncated file header (wanted 4 bytes, got %d)", len(head))
	}
	switch magic := binary.BigEndian.Uint32(head); magic {
	case magicPcapMicroLE, magicPcapNanoLE, magicPcapMicroBE, magicPcapNanoBE:
		err = s.openPcap(magic == magicPcapMicroBE || magic == magicPcapNanoBE, magic == magicPcapNanoLE || magic == magicPcapNanoBE)
	case magicPcapng:
		err = s.openPcapng()
	default:
		return nil, s.errorf(0, ErrNotCapture, nil, "not a capture file (unknown magic 0x%08x)", magic)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// openPcap checks the classic pcap file header. Header layout: magic,
// version major and minor, thiszone, sigfigs, snaplen, link type (24
// bytes).
func (s *fileSource) openPcap(big, nano bool) error {
	h, err := s.peek(24)
	if len(h) < 24 {
		return s.shortRead(0, err, len(h), "truncated pcap file header (wanted 24 bytes, got %d)", len(h))
	}
	s.pcapBig, s.pcapNano = big, nano
	major, minor := s.u16(big, h[4:]), s.u16(big, h[6:])
	if major != 2 || minor != 4 {
		// Only version 2.4 is read (as pcapgo does): current writers use it.
		return s.errorf(0, ErrMalformed, nil, "unsupported pcap version %d.%d (want 2.4)", major, minor)
	}
	if snaplen := s.u32(big, h[16:]); snaplen > maxHeaderSnaplen {
		return s.errorf(0, ErrMalformed, nil, "absurd snap length %d (limit %d)", snaplen, maxHeaderSnaplen)
	}
	// The low 16 bits are the link type; the upper bits carry FCS
	// information we do not use.
	s.linkType = normalizeLinkType(s.u32(big, h[20:]) & 0xffff)
	if !s.linkType.Supported() {
		return s.errorf(0, ErrUnsupportedLinkType, nil, "unsupported link type %s", describeLinkType(s.linkType))
	}
	// Records longer than the header's snap length are accepted, as
	// tcpdump and Wireshark do; the source applies its own limit.
	s.consumed = 24
	return nil
}

// openPcapng checks the first Section Header Block and hands the file to
// pcapgo.
func (s *fileSource) openPcapng() error {
	total, err := s.ngBlockHeader(0, 0)
	if err != nil {
		if err == io.EOF {
			err = s.errorf(0, ErrTruncated, nil, "truncated pcapng section header")
		}
		return err
	}
	if err := s.ngSection(0, 0, total); err != nil {
		return err
	}
	// WantMixedLinkType: interfaces may differ in link type; the source
	// takes each packet's link type from its own interface table.
	s.ng, err = pcapgo.NewNgReader(s.br, pcapgo.NgReaderOptions{WantMixedLinkType: true})
	if err != nil {
		return s.errorf(0, ErrMalformed, err, "pcapng section header: %v", err)
	}
	return nil
}

// Next returns the next packet; see Source.
func (s *fileSource) Next() (p Packet, err error) {
	if s.err != nil {
		return Packet{}, s.err
	}
	defer func() {
		if r := recover(); r != nil {
			p = Packet{}
			err = s.fail(s.errorf(s.n+1, ErrMalformed, errReaderPanic, "reader failure: %v", r))
		}
	}()
	if s.ng != nil {
		p, err = s.nextPcapng()
	} else if s.batched {
		return Packet{}, s.fail(errors.New("capture: Next called after ReadBatch"))
	} else {
		p, err = s.nextPcap()
	}
	if err != nil {
		return Packet{}, s.fail(err)
	}
	s.n++
	p.Number = s.n
	s.stats.Packets++
	s.stats.Bytes += uint64(len(p.Data))
	return p, nil
}

// nextPcap reads one classic pcap record: a 16-byte header (seconds,
// fraction, captured length, original length) and the captured bytes.
// The packet's bytes stay in the read buffer until the next call, which
// discards them.
func (s *fileSource) nextPcap() (Packet, error) {
	num := s.n + 1
	if s.consumed > 0 {
		// Peek has shown these bytes, so Discard cannot fall short.
		s.br.Discard(s.consumed)
		s.consumed = 0
	}
	h, err := s.br.Peek(16)
	if len(h) < 16 {
		if len(h) == 0 && err == io.EOF {
			return Packet{}, io.EOF
		}
		return Packet{}, s.shortRead(num, err, len(h), "truncated packet header (wanted 16 bytes, got %d)", len(h))
	}
	capLen, origLen, err := s.pcapLengths(num, h)
	if err != nil {
		return Packet{}, err
	}
	want := 16 + int(capLen)
	rec, err := s.br.Peek(want)
	if len(rec) < want {
		return Packet{}, s.shortRead(num, err, len(rec), "truncated packet (wanted %d bytes, got %d)", capLen, len(rec)-16)
	}
	s.consumed = want
	return Packet{Data: rec[16:want:want], Time: s.pcapTime(rec), Length: int(origLen), LinkType: s.linkType}, nil
}

// ReadBatch reads the next packets into b; see BatchReader. Classic pcap
// is read from the file straight into b, records parsed in place; pcapng
// packets are copied in from Next.
func (s *fileSource) ReadBatch(b *Batch) (err error) {
	if s.ng != nil {
		return fillFromNext(s.Next, b)
	}
	b.Reset()
	if s.err != nil {
		return s.err
	}
	defer func() {
		if r := recover(); r != nil {
			err = s.fail(s.errorf(s.n+1, ErrMalformed, errReaderPanic, "reader failure: %v", r))
		}
	}()
	if !s.batched {
		s.batched = true
		if s.consumed > 0 {
			s.br.Discard(s.consumed)
			s.consumed = 0
		}
	}
	if cap(b.Data) < 2*(16+maxPacketLen) {
		b.Data = make([]byte, 0, 2*(16+maxPacketLen))
	}
	b.Data = append(b.Data, s.carry...)
	s.carry = s.carry[:0]
	readErr := s.fill(b)
	off := 0
	for {
		rest := b.Data[off:]
		num := s.n + 1
		if len(rest) < 16 {
			if readErr == nil {
				break // read on in the next batch
			}
			if len(rest) == 0 && readErr == io.EOF {
				return s.fail(io.EOF)
			}
			return s.fail(s.shortRead(num, readErr, len(rest), "truncated packet header (wanted 16 bytes, got %d)", len(rest)))
		}
		capLen, origLen, err := s.pcapLengths(num, rest)
		if err != nil {
			return s.fail(err)
		}
		want := 16 + int(capLen)
		if len(rest) < want {
			if readErr == nil {
				break
			}
			return s.fail(s.shortRead(num, readErr, len(rest), "truncated packet (wanted %d bytes, got %d)", capLen, len(rest)-16))
		}
		s.n++
		s.stats.Packets++
		s.stats.Bytes += uint64(capLen)
		b.Packets = append(b.Packets, BatchPacket{Off: off + 16, Len: int(capLen), Time: s.pcapTime(rest),
			Length: int(origLen), LinkType: s.linkType, Number: s.n})
		off += want
	}
	// The buffer holds at least two records of the largest size, so a
	// batch that ends early always holds a packet.
	s.carry = append(s.carry, b.Data[off:]...)
	b.Data = b.Data[:off]
	return nil
}

// fill reads into the free space of b.Data until it is full or the input
// fails or ends: first what the read buffer still holds, then from the
// input directly (a regular file fills it in one read, with no copy
// through the read buffer).
func (s *fileSource) fill(b *Batch) error {
	zeros := 0
	for len(b.Data) < cap(b.Data) {
		r := s.input
		if s.br.Buffered() > 0 {
			r = s.br
		}
		n, err := r.Read(b.Data[len(b.Data):cap(b.Data)])
		b.Data = b.Data[:len(b.Data)+n]
		if err != nil {
			return err
		}
		if n > 0 {
			zeros = 0
		} else if zeros++; zeros == 100 {
			return io.ErrNoProgress
		}
	}
	return nil
}

// pcapLengths reads and checks the captured and original lengths of the
// classic pcap record header at h.
func (s *fileSource) pcapLengths(num uint64, h []byte) (capLen, origLen uint32, err error) {
	capLen, origLen = s.u32(s.pcapBig, h[8:]), s.u32(s.pcapBig, h[12:])
	if capLen > maxPacketLen {
		return 0, 0, s.errorf(num, ErrMalformed, nil, "captured length %d exceeds the %d-byte limit", capLen, maxPacketLen)
	}
	if capLen > origLen {
		// pcapgo refuses these records.
		return 0, 0, s.errorf(num, ErrMalformed, nil, "captured length %d exceeds original length %d", capLen, origLen)
	}
	return capLen, origLen, nil
}

// pcapTime returns the time of the record header at h. time.Unix carries
// a fraction of a second or more into the seconds, as pcapgo and libpcap
// do.
func (s *fileSource) pcapTime(h []byte) time.Time {
	sec, frac := int64(s.u32(s.pcapBig, h[0:])), int64(s.u32(s.pcapBig, h[4:]))
	if !s.pcapNano {
		frac *= 1000
	}
	return time.Unix(sec, frac)
}

// nextPcapng checks the blocks up to the next packet block and lets pcapgo
// read them.
func (s *fileSource) nextPcapng() (Packet, error) {
	num := s.n + 1
	iface, capLen, err := s.ngAhead(num)
	if err != nil {
		return Packet{}, err
	}
	data, ci, err := s.ng.ZeroCopyReadPacketData()
	if err != nil {
		return Packet{}, s.errorf(num, ErrMalformed, err, "%v", err)
	}
	if len(data) != capLen || ci.InterfaceIndex != iface {
		return Packet{}, s.errorf(num, ErrMalformed, errReaderPanic,
			"reader out of step (read %d bytes on interface %d, expected %d on %d)", len(data), ci.InterfaceIndex, capLen, iface)
	}
	length := ci.Length
	if length < len(data) {
		length = len(data)
	}
	return Packet{
		Data:      data,
		Time:      ci.Timestamp,
		Length:    length,
		LinkType:  s.ifaces[iface].linkType,
		Interface: s.ifaceBase + iface,
	}, nil
}

// ngAhead walks the pcapng blocks from the read position up to and
// including the next packet block, checking each and keeping the section's
// byte order and interface table in step with what pcapgo will read. It
// returns the packet's interface (within its section) and captured length,
// or io.EOF at a clean end of file. Unknown block types are skipped, as the
// pcapng specification asks; one at the read position is discarded here,
// so it may be of any size.
func (s *fileSource) ngAhead(num uint64) (iface, capLen int, err error) {
	off := 0
	for {
		total, err := s.ngBlockHeader(num, off)
		if err != nil {
			return 0, 0, err
		}
		b, _ := s.br.Peek(off + 8)
		typ := s.u32(s.ngBig, b[off:]) // the SHB type reads the same in both orders
		switch typ {
		case ngBlockSHB:
			err = s.ngSection(num, off, total)
		case ngBlockIDB:
			err = s.ngInterface(num, off, total)
		case ngBlockISB:
			err = s.ngStatistics(num, off, total)
		case ngBlockEPB, ngBlockPB, ngBlockSPB:
			return s.ngPacket(num, off, typ, total)
		default:
			if off == 0 {
				if n, err := s.br.Discard(total); n < total {
					return 0, 0, s.shortRead(num, err, n, "truncated pcapng %s (wanted %d bytes, got %d)", ngBlockName(typ), total, n)
				}
				continue
			}
			_, err = s.ngBlock(num, off, total, typ)
		}
		if err != nil {
			return 0, 0, err
		}
		off += total
	}
}

// ngBlockHeader reads the type and total length of the block at off and
// checks the length. For a Section Header Block it also sets the byte
// order, which the block declares for itself. It returns io.EOF when the
// file ends cleanly at off.
func (s *fileSource) ngBlockHeader(num uint64, off int) (int, error) {
	if off+12 > readBufferSize {
		return 0, s.errorf(num, ErrMalformed, nil, "pcapng blocks before the packet do not fit the %d-byte read window", readBufferSize)
	}
	b, err := s.peek(off + 12)
	if len(b) < off+8 {
		if len(b) == off && (err == io.EOF || err == nil) {
			return 0, io.EOF
		}
		got := max(len(b)-off, 0)
		return 0, s.shortRead(num, err, got, "truncated pcapng block header (wanted 8 bytes, got %d)", got)
	}
	b = b[off:]
	isSHB := b[0] == 0x0a && b[1] == 0x0d && b[2] == 0x0d && b[3] == 0x0a
	if isSHB {
		if len(b) < 12 {
			return 0, s.shortRead(num, err, len(b), "truncated pcapng section header (wanted 12 bytes, got %d)", len(b))
		}
		switch {
		case binary.BigEndian.Uint32(b[8:]) == ngByteOrderMagic:
			s.ngBig = true
		case binary.LittleEndian.Uint32(b[8:]) == ngByteOrderMagic:
			s.ngBig = false
		default:
			return 0, s.errorf(num, ErrMalformed, nil, "pcapng section header has no byte-order magic (0x%08x)", binary.BigEndian.Uint32(b[8:]))
		}
	}
	total := s.u32(s.ngBig, b[4:])
	if total < 12 || total%4 != 0 || total > 1<<30 {
		return 0, s.errorf(num, ErrMalformed, nil, "pcapng %s has a bad length %d", ngBlockName(s.u32(s.ngBig, b)), total)
	}
	return int(total), nil
}

// ngBlock returns the whole block at off, total bytes long, or an error if
// it is shorter than minLen, does not fit the read window or is truncated.
func (s *fileSource) ngBlock(num uint64, off, total int, typ uint32) ([]byte, error) {
	if off+total > readBufferSize {
		return nil, s.errorf(num, ErrMalformed, nil,
			"pcapng %s of %d bytes at offset %d before the packet does not fit the %d-byte read window", ngBlockName(typ), total, off, readBufferSize)
	}
	b, err := s.peek(off + total)
	if len(b) < off+total {
		got := len(b) - off
		return nil, s.shortRead(num, err, got, "truncated pcapng %s (wanted %d bytes, got %d)", ngBlockName(typ), total, got)
	}
	return b[off : off+total], nil
}

// ngSection checks a Section Header Block (section 4.1) and starts a new
// section: interface numbering restarts.
func (s *fileSource) ngSection(num uint64, off, total int) error {
	if total < ngMinSHB {
		return s.errorf(num, ErrMalformed, nil, "pcapng section header of %d bytes (minimum %d)", total, ngMinSHB)
	}
	b, err := s.ngBlock(num, off, total, ngBlockSHB)
	if err != nil {
		return err
	}
	major, minor := s.u16(s.ngBig, b[12:]), s.u16(s.ngBig, b[14:])
	if major != 1 || minor != 0 {
		return s.errorf(num, ErrMalformed, nil, "unsupported pcapng version %d.%d (want 1.0)", major, minor)
	}
	if err := s.ngOptions(num, b[24:total-4], false); err != nil {
		return err
	}
	s.ifaceBase += len(s.ifaces)
	s.ifaces = s.ifaces[:0]
	return nil
}

// ngInterface checks an Interface Description Block (section 4.2) and adds
// the interface to the section's table.
func (s *fileSource) ngInterface(num uint64, off, total int) error {
	if total < ngMinIDB {
		return s.errorf(num, ErrMalformed, nil, "pcapng interface description of %d bytes (minimum %d)", total, ngMinIDB)
	}
	b, err := s.ngBlock(num, off, total, ngBlockIDB)
	if err != nil {
		return err
	}
	id := len(s.ifaces)
	snaplen := s.u32(s.ngBig, b[12:])
	if snaplen > maxHeaderSnaplen {
		return s.errorf(num, ErrMalformed, nil, "interface %d: absurd snap length %d (limit %d)", s.ifaceBase+id, snaplen, maxHeaderSnaplen)
	}
	if err := s.ngOptions(num, b[16:total-4], true); err != nil {
		return err
	}
	s.ifaces = append(s.ifaces, ngInterface{
		linkType: normalizeLinkType(uint32(s.u16(s.ngBig, b[8:]))),
		snaplen:  snaplen,
	})
	return nil
}

// ngStatistics checks an Interface Statistics Block (section 4.6).
func (s *fileSource) ngStatistics(num uint64, off, total int) error {
	if total < ngMinISB {
		return s.errorf(num, ErrMalformed, nil, "pcapng interface statistics of %d bytes (minimum %d)", total, ngMinISB)
	}
	b, err := s.ngBlock(num, off, total, ngBlockISB)
	if err != nil {
		return err
	}
	if id := s.u32(s.ngBig, b[8:]); id >= uint32(len(s.ifaces)) {
		return s.errorf(num, ErrMalformed, nil, "pcapng statistics for interface %d, but the section describes %d", id, len(s.ifaces))
	}
	return s.ngOptions(num, b[20:total-4], false)
}

// ngOptions checks that the options in b (section 3.5) tile it the way
// pcapgo walks them, and, in an Interface Description Block, that the
// options pcapgo computes with hold sane values.
func (s *fileSource) ngOptions(num uint64, b []byte, idb bool) error {
	for len(b) > 0 {
		if len(b) < 4 {
			return s.errorf(num, ErrMalformed, nil, "pcapng option header cut short")
		}
		code, olen := s.u16(s.ngBig, b), int(s.u16(s.ngBig, b[2:]))
		if code == 0 {
			if olen != 0 {
				return s.errorf(num, ErrMalformed, nil, "pcapng end-of-options with length %d", olen)
			}
			return nil
		}
		// pcapgo adds the padding in 16 bits: a length above 0xfffc
		// would wrap.
		size := 4 + (olen+3)&^3
		if olen > 0xfffc || size > len(b) {
			return s.errorf(num, ErrMalformed, nil, "pcapng option %d of %d bytes overruns its block", code, olen)
		}
		if idb {
			switch code {
			case ngOptTsresol:
				// pcapgo divides by 10^e or 2^e; beyond these
				// exponents the divisor overflows to garbage or zero.
				if olen < 1 || (b[4]&0x80 == 0 && b[4] > 19) || (b[4]&0x80 != 0 && b[4]&0x7f > 63) {
					return s.errorf(num, ErrMalformed, nil, "interface %d: bad timestamp resolution", s.ifaceBase+len(s.ifaces))
				}
			case ngOptTsoffset:
				if olen != 8 {
					return s.errorf(num, ErrMalformed, nil, "interface %d: bad timestamp offset option", s.ifaceBase+len(s.ifaces))
				}
			}
		}
		b = b[size:]
	}
	return nil
}

// ngPacket checks an Enhanced (section 4.3), obsolete (appendix A) or
// Simple (section 4.4) Packet Block at off, and returns its interface and
// captured length.
func (s *fileSource) ngPacket(num uint64, off int, typ uint32, total int) (iface, capLen int, err error) {
	var fixed, minLen int
	switch typ {
	case ngBlockEPB:
		fixed, minLen = 28, ngMinEPB
	case ngBlockPB:
		fixed, minLen = 28, ngMinPB
	default:
		fixed, minLen = 12, ngMinSPB
	}
	name := ngBlockName(typ)
	if total < minLen {
		return 0, 0, s.errorf(num, ErrMalformed, nil, "pcapng %s of %d bytes (minimum %d)", name, total, minLen)
	}
	b, err := s.peek(off + fixed)
	if len(b) < off+fixed {
		got := len(b) - off
		return 0, 0, s.shortRead(num, err, got, "truncated pcapng %s (wanted %d bytes, got %d)", name, total, got)
	}
	b = b[off:]
	if len(s.ifaces) == 0 {
		return 0, 0, s.errorf(num, ErrMalformed, nil, "pcapng packet before any interface description")
	}
	var c uint32
	switch typ {
	case ngBlockEPB:
		iface = -1
		if id := s.u32(s.ngBig, b[8:]); id < uint32(len(s.ifaces)) {
			iface = int(id)
		}
		c = s.u32(s.ngBig, b[20:])
	case ngBlockPB:
		iface = int(s.u16(s.ngBig, b[8:]))
		if iface >= len(s.ifaces) {
			iface = -1
		}
		c = s.u32(s.ngBig, b[20:])
	default:
		// The Simple Packet Block holds only the original length; the
		// captured length is that, cut to the first interface's snap
		// length (section 4.4), as pcapgo computes it.
		c = s.u32(s.ngBig, b[8:])
		if sl := s.ifaces[0].snaplen; sl != 0 && c > sl {
			c = sl
		}
	}
	if iface < 0 {
		return 0, 0, s.errorf(num, ErrMalformed, nil, "pcapng packet on interface %d, but the section describes %d", s.u32(s.ngBig, b[8:]), len(s.ifaces))
	}
	if c > maxPacketLen {
		return 0, 0, s.errorf(num, ErrMalformed, nil, "captured length %d exceeds the %d-byte limit", c, maxPacketLen)
	}
	capLen = int(c)
	if fixed+capLen+4 > total {
		return 0, 0, s.errorf(num, ErrMalformed, nil, "captured length %d does not fit its %d-byte %s", capLen, total, name)
	}
	if lt := s.ifaces[iface].linkType; !lt.Supported() {
		return 0, 0, s.errorf(num, ErrUnsupportedLinkType, nil, "interface %d: unsupported link type %s", s.ifaceBase+iface, describeLinkType(lt))
	}
	if off+total > readBufferSize {
		return 0, 0, s.errorf(num, ErrMalformed, nil, "pcapng %s of %d bytes does not fit the %d-byte read window", name, total, readBufferSize)
	}
	if rec, err := s.peek(off + total); len(rec) < off+total {
		got := len(rec) - off
		if got < fixed+capLen {
			return 0, 0, s.shortRead(num, err, got, "truncated packet (wanted %d bytes, got %d)", capLen, max(got-fixed, 0))
		}
		return 0, 0, s.shortRead(num, err, got, "truncated pcapng %s (wanted %d bytes, got %d)", name, total, got)
	}
	return iface, capLen, nil
}

// peek returns up to n bytes from the read position without consuming
// them; n must not exceed readBufferSize.
func (s *fileSource) peek(n int) ([]byte, error) {
	b, err := s.br.Peek(n)
	if err == bufio.ErrBufferFull && len(b) < readBufferSize {
		// Fewer bytes than asked and the buffer not full: the input ended.
		err = io.EOF
	}
	return b, err
}

// fail makes err sticky and counts it.
func (s *fileSource) fail(err error) error {
	s.err = err
	if err != io.EOF {
		s.stats.Errors++
	}
	return err
}

// errorf builds a FileError for packet num (0: the file header).
func (s *fileSource) errorf(num uint64, kind, cause error, format string, args ...any) error {
	return &FileError{Path: s.path, Packet: num, Kind: kind, Err: cause, Detail: fmt.Sprintf(format, args...)}
}

// shortRead reports input that ended (or failed) after got of the bytes
// wanted: truncation when it simply ended, otherwise the read error.
func (s *fileSource) shortRead(num uint64, err error, got int, format string, args ...any) error {
	if err == nil || err == io.EOF {
		return s.errorf(num, ErrTruncated, nil, format, args...)
	}
	return s.readError(num, err, fmt.Sprintf(format, args...))
}

// readError reports an error from the input: from the file, or from the
// gzip layer (a corrupt or cut-short compressed stream).
func (s *fileSource) readError(num uint64, err error, what string) error {
	var corrupt flate.CorruptInputError
	switch {
	case err == io.ErrUnexpectedEOF || err == io.EOF:
		return s.errorf(num, ErrTruncated, err, "%s: compressed stream ends early", what)
	case errors.Is(err, gzip.ErrHeader), errors.Is(err, gzip.ErrChecksum), errors.As(err, &corrupt):
		return s.errorf(num, ErrMalformed, err, "%s: corrupt gzip stream: %v", what, err)
	}
	return s.errorf(num, nil, err, "%s: read error: %v", what, err)
}

// u16 and u32 read an integer in the file's (or section's) byte order.
func (s *fileSource) u16(big bool, b []byte) uint16 {
	if big {
		return binary.BigEndian.Uint16(b)
	}
	return binary.LittleEndian.Uint16(b)
}

func (s *fileSource) u32(big bool, b []byte) uint32 {
	if big {
		return binary.BigEndian.Uint32(b)
	}
	return binary.LittleEndian.Uint32(b)
}

// describeLinkType says "147 (USER0)", or just the number when the type has
// no known name.
func describeLinkType(l LinkType) string {
	name := l.String()
	if name == strconv.Itoa(int(l)) {
		return name
	}
	return strconv.Itoa(int(l)) + " (" + name + ")"
}

// Stats returns the counters so far; see Source.
func (s *fileSource) Stats() Stats { return s.stats }

// Name returns the file path.
func (s *fileSource) Name() string { return s.path }

// Close closes the file. Next after Close returns an error.
func (s *fileSource) Close() error {
	if s.err == nil || s.err == io.EOF {
		s.err = &FileError{Path: s.path, Err: fs.ErrClosed, Detail: "source closed"}
	}
	var err error
	if s.gz != nil {
		s.gz.Close()
		s.gz = nil
	}
	if s.closer != nil {
		err = s.closer.Close()
		s.closer = nil
	}
	return err
}

// ngBlockName names a block type for messages.
func ngBlockName(typ uint32) string {
	switch typ {
	case ngBlockSHB:
		return "section header block"
	case ngBlockIDB:
		return "interface description block"
	case ngBlockISB:
		return "interface statistics block"
	case ngBlockEPB:
		return "enhanced packet block"
	case ngBlockPB:
		return "packet block"
	case ngBlockSPB:
		return "simple packet block"
	}
	return fmt.Sprintf("block type 0x%08x", typ)
}
