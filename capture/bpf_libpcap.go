//go:build libpcap && cgo

package capture

import (
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcap"
	"golang.org/x/net/bpf"
)

// compileExpr compiles a pcap-filter(7) expression with libpcap (built with
// -tags libpcap: links libpcap, needs libpcap-dev to build).
func compileExpr(expr, _ string, linkType, snaplen int) ([]bpf.RawInstruction, error) {
	ins, err := pcap.CompileBPFFilter(layers.LinkType(linkType), snaplen, expr)
	if err != nil {
		return nil, err
	}
	prog := make([]bpf.RawInstruction, len(ins))
	for i, in := range ins {
		prog[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	return prog, nil
}
