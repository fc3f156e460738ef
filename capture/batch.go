package capture

import "time"

// Batch is a run of packets read at once: their bytes back to back in Data
// and, in Packets, where each one is. A batch is the caller's, and stays
// valid until the caller reuses it: sources that read into it directly save
// a copy of every packet, and the batch can be handed to another goroutine.
type Batch struct {
	Data    []byte
	Packets []BatchPacket
}

// BatchPacket is one packet of a Batch: Packet without the bytes, which are
// Data[Off:Off+Len].
type BatchPacket struct {
	Off, Len  int
	Time      time.Time
	Length    int // original length on the wire
	LinkType  LinkType
	Interface int
	Number    uint64
}

// Bytes returns the bytes of packet i.
func (b *Batch) Bytes(i int) []byte {
	p := &b.Packets[i]
	return b.Data[p.Off : p.Off+p.Len : p.Off+p.Len]
}

// Reset empties b, keeping its buffers.
func (b *Batch) Reset() { b.Data, b.Packets = b.Data[:0], b.Packets[:0] }

// NewBatch returns a batch with room for about size bytes of packets.
func NewBatch(size int) *Batch {
	return &Batch{Data: make([]byte, 0, size), Packets: make([]BatchPacket, 0, size/64)}
}

// BatchReader is a source that reads many packets at once straight into a
// caller's batch (classic pcap files).
type BatchReader interface {
	// ReadBatch empties b and fills it with the next packets. With an
	// error (io.EOF at the end of a file) it returns the packets read
	// before it in b too; after an error it keeps returning it. Do not mix
	// ReadBatch and Next on one source.
	ReadBatch(b *Batch) error
}

// ReadBatch empties b and fills it with the next packets of src: through
// src's own ReadBatch when it has one, else by copying packets from Next
// while b has room for a packet of the largest size (and for at least one).
// Errors are as BatchReader's.
func ReadBatch(src Source, b *Batch) error {
	if br, ok := src.(BatchReader); ok {
		return br.ReadBatch(b)
	}
	return fillFromNext(src.Next, b)
}

func fillFromNext(next func() (Packet, error), b *Batch) error {
	b.Reset()
	for len(b.Packets) == 0 || cap(b.Data)-len(b.Data) >= maxPacketLen && len(b.Packets) < cap(b.Packets) {
		p, err := next()
		if err != nil {
			return err
		}
		b.add(p.Data, p)
	}
	return nil
}

// add appends p (whose bytes are data) to b.
func (b *Batch) add(data []byte, p Packet) {
	b.Packets = append(b.Packets, BatchPacket{Off: len(b.Data), Len: len(data), Time: p.Time, Length: p.Length,
		LinkType: p.LinkType, Interface: p.Interface, Number: p.Number})
	b.Data = append(b.Data, data...)
}
