package classify

import "encoding/binary"

// ShardKey returns a hash of a frame's outermost IP address pair that is the
// same for both directions, so the sensor can send every packet between two
// hosts to the same worker. Sharding by host pair, not by 5-tuple, keeps
// Offer RA's DCOM, RPC and RDP connections (same two hosts) on one worker.
// Frames without IP get 0. It reads headers only and allocates nothing.
func ShardKey(data []byte, linkType int) uint32 {
	off := 0
	etype := uint16(0)
	switch linkType {
	case 1: // Ethernet
		if len(data) < 14 {
			return 0
		}
		etype, off = binary.BigEndian.Uint16(data[12:14]), 14
		for i := 0; i < 4 && (etype == 0x8100 || etype == 0x88a8 || etype == 0x9100); i++ {
			if len(data) < off+4 {
				return 0
			}
			etype, off = binary.BigEndian.Uint16(data[off+2:off+4]), off+4
		}
		if etype == 0x8864 { // PPPoE session: PPP protocol after 6 bytes
			if len(data) < off+8 {
				return 0
			}
			switch binary.BigEndian.Uint16(data[off+6 : off+8]) {
			case 0x0021:
				etype = 0x0800
			case 0x0057:
				etype = 0x86dd
			}
			off += 8
		}
	case 113: // Linux SLL
		if len(data) < 16 {
			return 0
		}
		etype, off = binary.BigEndian.Uint16(data[14:16]), 16
	case 276: // Linux SLL2
		if len(data) < 20 {
			return 0
		}
		etype, off = binary.BigEndian.Uint16(data[0:2]), 20
	case 0, 108: // BSD loopback: the version nibble tells
		off = 4
	case 12, 14, 101, 228, 229:
		off = 0
	default:
		return 0
	}
	if len(data) <= off {
		return 0
	}
	ip := data[off:]
	switch {
	case etype == 0x0800 || (etype == 0 && ip[0]>>4 == 4):
		if len(ip) < 20 {
			return 0
		}
		a, b := binary.BigEndian.Uint32(ip[12:16]), binary.BigEndian.Uint32(ip[16:20])
		return mix32(a ^ b)
	case etype == 0x86dd || (etype == 0 && ip[0]>>4 == 6):
		if len(ip) < 40 {
			return 0
		}
		var x uint32
		for i := 8; i < 40; i += 4 {
			x ^= binary.BigEndian.Uint32(ip[i : i+4])
		}
		return mix32(x)
	}
	return 0
}

// mix32 spreads the bits of x (a finaliser from MurmurHash3).
func mix32(x uint32) uint32 {
	x ^= x >> 16
	x *= 0x85ebca6b
	x ^= x >> 13
	x *= 0xc2b2ae35
	x ^= x >> 16
	return x
}
