package capture

import "time"

// Packet is one captured frame. Data is valid only until the next call to Next.
type Packet struct {
	Data      []byte
	Time      time.Time
	Length    int // original length on the wire
	LinkType  int // LINKTYPE_* number of Data
	Interface int
	Number    uint64
	Verdict   Verdict
}

// Verdict lets an inline source receive the decision on a packet.
type Verdict interface {
	Accept() error
	Drop() error
}

// Source yields packets. Next returns io.EOF at the end of a file.
type Source interface {
	Next() (Packet, error)
	Stats() Stats
	Close() error
	Name() string
}

// Stats are a source's counters.
type Stats struct {
	Packets, Bytes, KernelDrops, KernelFreezes, Errors uint64
}
