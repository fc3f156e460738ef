package capture

// TEMPORARY minimal reader until the capture helper's file.go lands.

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"os"

	"github.com/google/gopacket/pcapgo"
)

type fileSource struct {
	f    *os.File
	r    *pcapgo.Reader
	ng   *pcapgo.NgReader
	name string
	n    uint64
	st   Stats
}

// OpenFile opens a capture file.
func OpenFile(path string) (Source, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("capture: %w", err)
	}
	br := bufio.NewReaderSize(f, 1<<20)
	m, _ := br.Peek(4)
	s := &fileSource{f: f, name: path}
	var rd interface {
		Peek(int) ([]byte, error)
		Read([]byte) (int, error)
	} = br
	if len(m) >= 2 && m[0] == 0x1f && m[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, err
		}
		rd = bufio.NewReaderSize(gz, 1<<20)
		m, _ = rd.Peek(4)
	}
	if len(m) == 4 && m[0] == 0x0a && m[1] == 0x0d && m[2] == 0x0d && m[3] == 0x0a {
		s.ng, err = pcapgo.NewNgReader(rd, pcapgo.DefaultNgReaderOptions)
	} else {
		s.r, err = pcapgo.NewReader(rd)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("capture: file %s: %w", path, err)
	}
	return s, nil
}

func (s *fileSource) Next() (Packet, error) {
	var p Packet
	if s.ng != nil {
		d, ci, err := s.ng.ZeroCopyReadPacketData()
		if err != nil {
			return p, err
		}
		ifc, _ := s.ng.Interface(ci.InterfaceIndex)
		p = Packet{Data: d, Time: ci.Timestamp, Length: ci.Length, LinkType: int(ifc.LinkType), Interface: ci.InterfaceIndex}
	} else {
		d, ci, err := s.r.ZeroCopyReadPacketData()
		if err != nil {
			return p, err
		}
		p = Packet{Data: d, Time: ci.Timestamp, Length: ci.Length, LinkType: int(s.r.LinkType())}
	}
	s.n++
	p.Number = s.n
	s.st.Packets++
	s.st.Bytes += uint64(len(p.Data))
	return p, nil
}

func (s *fileSource) Stats() Stats { return s.st }
func (s *fileSource) Close() error { return s.f.Close() }
func (s *fileSource) Name() string { return s.name }
