//go:build !(libpcap && cgo)

package capture

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/bpf"
)

// compileExpr compiles a pcap-filter(7) expression by running
// `tcpdump -ddd` on the interface: tcpdump's compiler is libpcap's, so the
// program is the one libpcap would attach, without linking libpcap into
// rasentry (build with -tags libpcap to compile in-process instead).
func compileExpr(expr, ifname string, _, snaplen int) ([]bpf.RawInstruction, error) {
	path, err := exec.LookPath("tcpdump")
	if err != nil {
		return nil, fmt.Errorf("compiling %q needs tcpdump (or a rasentry built with -tags libpcap), "+
			"or give the filter as `tcpdump -ddd` output", expr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, path, "-ddd", "-i", ifname, "-s", strconv.Itoa(snaplen), expr)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("compiling %q: tcpdump: %v: %s", expr, err, strings.TrimSpace(errb.String()))
	}
	prog, ok, err := parseRawBPF(out.String())
	if !ok || err != nil {
		return nil, fmt.Errorf("compiling %q: unexpected tcpdump output: %v", expr, err)
	}
	return prog, nil
}
