package classify

// TEMPORARY stand-in until the capture helper's SLL2/NFLOG layers land.

import (
	"errors"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

var (
	LayerTypeSLL2  = gopacket.RegisterLayerType(1800, gopacket.LayerTypeMetadata{Name: "SLL2"})
	LayerTypeNFLOG = gopacket.RegisterLayerType(1801, gopacket.LayerTypeMetadata{Name: "NFLOG"})
)

type SLL2 struct {
	payload []byte
	next    gopacket.LayerType
}

func (s *SLL2) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	if len(data) < 20 {
		return errors.New("short")
	}
	s.payload = data[20:]
	switch uint16(data[0])<<8 | uint16(data[1]) {
	case 0x0800:
		s.next = layers.LayerTypeIPv4
	case 0x86dd:
		s.next = layers.LayerTypeIPv6
	default:
		s.next = gopacket.LayerTypePayload
	}
	return nil
}
func (s *SLL2) NextLayerType() gopacket.LayerType { return s.next }
func (s *SLL2) LayerPayload() []byte              { return s.payload }

type NFLOG struct {
	payload []byte
	next    gopacket.LayerType
}

func (s *NFLOG) DecodeFromBytes(data []byte, df gopacket.DecodeFeedback) error {
	return errors.New("todo")
}
func (s *NFLOG) NextLayerType() gopacket.LayerType { return s.next }
func (s *NFLOG) LayerPayload() []byte              { return s.payload }
