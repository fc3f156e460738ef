// Package capture yields packets to the sensor: from capture files (pcap,
// pcapng, gzip-compressed either), and from live sources. Every source
// implements Source; the classifier sees only Packet values.
package capture

import (
	"errors"
	"strconv"
	"time"
)

// Packet is one captured frame. Data is valid only until the next call to Next.
type Packet struct {
	// Data is the frame as captured, starting with the link-layer header
	// named by LinkType. It is owned by the source and reused: copy it to
	// keep it past the next call to Next.
	Data []byte
	// Time is when the frame was captured (UTC).
	Time time.Time
	// Length is the original length on the wire (may exceed len(Data)
	// when snapped).
	Length int
	// LinkType is the tcpdump.org LINKTYPE_ value of Data. It is a
	// capture.LinkType, not a gopacket layers.LinkType: the pinned
	// gopacket declares layers.LinkType as uint8, which cannot hold
	// LINKTYPE_LINUX_SLL2 (276).
	LinkType LinkType
	// Interface is the interface index within the source: for pcapng, the
	// position of the packet's Interface Description Block counted over
	// all sections of the file; else 0.
	Interface int
	// Number is the 1-based packet number within the source, for error
	// messages and records.
	Number uint64
	// Verdict is nil for passive sources; inline sources set it and
	// expect exactly one call to Accept or Drop.
	Verdict Verdict
}

// Verdict lets an inline source receive the decision on a packet.
type Verdict interface {
	// Accept lets the packet through.
	Accept() error
	// Drop discards the packet.
	Drop() error
}

// Source yields packets. Next returns io.EOF at the end of a file.
type Source interface {
	// Next returns the next packet. At the end of a file it returns
	// io.EOF; after any error it keeps returning that error. Packets read
	// before an error are returned normally.
	Next() (Packet, error)
	// Stats returns the counters so far.
	Stats() Stats
	// Close releases the source. Next after Close returns an error.
	Close() error
	// Name is the file path or interface name, for messages.
	Name() string
}

// Stats counts what a source has done.
type Stats struct {
	// Packets is the number of packets returned by Next.
	Packets uint64
	// Bytes is the number of captured bytes returned (sum of len(Data)).
	Bytes uint64
	// KernelDrops is the number of packets the kernel dropped before the
	// source could read them (live sources; 0 for files).
	KernelDrops uint64
	// KernelFreezes is the number of times the kernel's ring was frozen
	// because the sensor fell behind (AF_PACKET TPACKET_V3; 0 elsewhere).
	KernelFreezes uint64
	// Errors is the number of errors Next has reported other than io.EOF;
	// a file stops at its first error, so a file counts at most one.
	Errors uint64
}

// Errors a caller can test for with errors.Is. The errors a source returns
// wrap one of these with the file name, the packet number and the problem
// (see FileError).
var (
	// ErrNotCapture means the input is not a capture file at all: its
	// magic number matches no supported format.
	ErrNotCapture = errors.New("capture: not a capture file")
	// ErrTruncated means the input ends in the middle of a header, a
	// block or a packet.
	ErrTruncated = errors.New("capture: truncated capture")
	// ErrUnsupportedLinkType means the capture (or one of its pcapng
	// interfaces) carries a link-layer type the sensor cannot decode.
	ErrUnsupportedLinkType = errors.New("capture: unsupported link type")
	// ErrMalformed means a header, block or record holds values that cannot
	// be right (an absurd snap length, a block length that does not fit,
	// a packet longer than its block).
	ErrMalformed = errors.New("capture: malformed capture")
)

// LinkType is a link-layer header type as numbered in capture files: a
// tcpdump.org LINKTYPE_ value (https://www.tcpdump.org/linktypes.html).
type LinkType uint16

// The link types the sensor decodes. This list, with supportedLinkTypes
// below, is the one place that defines the supported set.
const (
	// LinkTypeNull is BSD loopback: a 4-byte address family in the byte
	// order of the capturing host (LINKTYPE_NULL).
	LinkTypeNull LinkType = 0
	// LinkTypeEthernet is IEEE 802.3 Ethernet (LINKTYPE_ETHERNET).
	LinkTypeEthernet LinkType = 1
	// LinkTypeRaw is raw IP, IPv4 or IPv6 by the version nibble
	// (LINKTYPE_RAW). Files that carry the platform values of DLT_RAW (12,
	// or 14 on OpenBSD) are reported as LinkTypeRaw too.
	LinkTypeRaw LinkType = 101
	// LinkTypeLoop is OpenBSD loopback: a 4-byte address family in network
	// byte order (LINKTYPE_LOOP).
	LinkTypeLoop LinkType = 108
	// LinkTypeLinuxSLL is Linux "cooked" capture v1, 16-byte header
	// (LINKTYPE_LINUX_SLL).
	LinkTypeLinuxSLL LinkType = 113
	// LinkTypeIPv4 is raw IPv4 (LINKTYPE_IPV4).
	LinkTypeIPv4 LinkType = 228
	// LinkTypeIPv6 is raw IPv6 (LINKTYPE_IPV6).
	LinkTypeIPv6 LinkType = 229
	// LinkTypeNFLOG is Linux netfilter NFLOG messages (LINKTYPE_NFLOG).
	LinkTypeNFLOG LinkType = 239
	// LinkTypeLinuxSLL2 is Linux "cooked" capture v2, 20-byte header
	// (LINKTYPE_LINUX_SLL2).
	LinkTypeLinuxSLL2 LinkType = 276
)

// dltRaw12 and dltRaw14 are the platform DLT_RAW values that leak into
// some capture files in place of LINKTYPE_RAW (libpcap pcap/dlt.h: 12 on
// most systems, 14 on OpenBSD).
const (
	dltRaw12 = 12
	dltRaw14 = 14
)

// supportedLinkTypes is the supported set, each with its LINKTYPE_ name.
var supportedLinkTypes = [...]struct {
	lt   LinkType
	name string
}{
	{LinkTypeNull, "NULL"},
	{LinkTypeEthernet, "ETHERNET"},
	{LinkTypeRaw, "RAW"},
	{LinkTypeLoop, "LOOP"},
	{LinkTypeLinuxSLL, "LINUX_SLL"},
	{LinkTypeIPv4, "IPV4"},
	{LinkTypeIPv6, "IPV6"},
	{LinkTypeNFLOG, "NFLOG"},
	{LinkTypeLinuxSLL2, "LINUX_SLL2"},
}

// otherLinkTypeNames names link types the sensor does not decode, so that
// an error can say what a file holds ("unsupported link type 105
// (IEEE802_11)"). From the tcpdump.org registry; not exhaustive.
var otherLinkTypeNames = map[LinkType]string{
	3: "AX25", 6: "IEEE802_5", 7: "ARCNET_BSD", 8: "SLIP", 9: "PPP", 10: "FDDI",
	50: "PPP_HDLC", 51: "PPP_ETHER", 100: "ATM_RFC1483", 104: "C_HDLC",
	105: "IEEE802_11", 107: "FRELAY", 114: "LTALK", 117: "PFLOG",
	119: "IEEE802_11_PRISM", 122: "IP_OVER_FC", 123: "SUNATM",
	127: "IEEE802_11_RADIOTAP", 129: "ARCNET_LINUX", 138: "APPLE_IP_OVER_IEEE1394",
	139: "MTP2_WITH_PHDR", 140: "MTP2", 141: "MTP3", 142: "SCCP", 143: "DOCSIS",
	144: "LINUX_IRDA", 163: "IEEE802_11_AVS", 165: "BACNET_MS_TP", 166: "PPP_PPPD",
	169: "GPRS_LLC", 177: "LINUX_LAPD", 187: "BLUETOOTH_HCI_H4", 189: "USB_LINUX",
	192: "PPI", 195: "IEEE802_15_4_WITHFCS", 197: "ERF",
	201: "BLUETOOTH_HCI_H4_WITH_PHDR", 220: "USB_LINUX_MMAPPED", 226: "IPNET",
	227: "CAN_SOCKETCAN", 230: "IEEE802_15_4_NOFCS", 231: "DBUS",
	240: "NETANALYZER", 241: "NETANALYZER_TRANSPARENT", 242: "IPOIB",
	243: "MPEG_2_TS", 247: "INFINIBAND", 248: "SCTP", 249: "USBPCAP",
	251: "BLUETOOTH_LE_LL", 253: "NETLINK", 254: "BLUETOOTH_LINUX_MONITOR",
	256: "BLUETOOTH_LE_LL_WITH_PHDR", 258: "PKTAP", 266: "USB_DARWIN",
	271: "VSOCK", 272: "NORDIC_BLE", 274: "ETHERNET_MPACKET",
	281: "DSA_TAG_BRCM", 284: "DSA_TAG_DSA", 285: "DSA_TAG_EDSA",
}

// Supported reports whether the sensor decodes this link type.
func (l LinkType) Supported() bool {
	for _, s := range supportedLinkTypes {
		if s.lt == l {
			return true
		}
	}
	return false
}

// String returns the LINKTYPE_ name without its prefix ("ETHERNET",
// "LINUX_SLL2", "USER0"), or the number for types it does not know.
func (l LinkType) String() string {
	for _, s := range supportedLinkTypes {
		if s.lt == l {
			return s.name
		}
	}
	if l >= 147 && l <= 162 {
		return "USER" + strconv.Itoa(int(l-147))
	}
	if name, ok := otherLinkTypeNames[l]; ok {
		return name
	}
	return strconv.Itoa(int(l))
}

// normalizeLinkType maps the platform DLT_RAW values found in some files
// to LinkTypeRaw; every other value is returned as it is.
func normalizeLinkType(v uint32) LinkType {
	switch v {
	case dltRaw12, dltRaw14:
		return LinkTypeRaw
	}
	return LinkType(v)
}
