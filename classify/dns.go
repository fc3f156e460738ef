package classify

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// DNS (RFC 1035) lookups of the servers Remote Assistance's NAT traversal
// depends on: Teredo servers (protocols.md §3.9) and the PNRP Global cloud
// seeds (§5.1, [MS-PNRP] §3.1.4.2.1). Such a lookup is only a precursor
// (§6.1: medium confidence), but its answers name the addresses that the
// Teredo and PNRP flows then talk to, so they go into the name cache.
//
// Every DNS message first passes an allocation-free check of the header and
// a walk of its names; only a message that names a listed server is parsed
// with github.com/miekg/dns.

// DefaultTeredoServerNames are the Teredo server names looked for by
// default. The Microsoft names are those of protocols.md §3.9 (Windows
// defaults by release: teredo.ipv6.microsoft.com on Vista/7, win8, win10,
// win1710, win1711, win1901, win1910...; nDPI's host list adds the nsatc.net
// alias); the others are the public servers miredo clients used
// (teredo.remlab.net, teredo-debian.remlab.net as Debian's miredo.conf
// sets, teredo.trex.fi, teredo.iks-jena.de).
var DefaultTeredoServerNames = []string{
	"teredo.ipv6.microsoft.com",
	"teredo.ipv6.microsoft.com.nsatc.net",
	"win*.ipv6.microsoft.com",
	"teredo.remlab.net",
	"teredo2.remlab.net",
	"teredo-debian.remlab.net",
	"teredo.trex.fi",
	"teredo.iks-jena.de",
}

// DefaultPNRPSeedNames are the PNRP seed server names: the Global cloud
// seeds of [MS-PNRP] §3.1.4.2.1, and Windows XP's PNRP v1 seed
// (protocols.md §5.1, unconfirmed).
var DefaultPNRPSeedNames = []string{
	"pnrpv2.ipv6.microsoft.com",
	"pnrpv21.ipv6.microsoft.com",
	"pnrp.ipv6.microsoft.com",
}

// DNSOptions configures the DNS detector.
//
// Names are matched case-insensitively, without the trailing dot. A
// pattern may hold '*' (any run of characters) and '?' (one character)
// within a label; wildcards never cross a dot, so "win*.ipv6.microsoft.com"
// matches "win10.ipv6.microsoft.com" but not "a.b.ipv6.microsoft.com", and
// "*.ipv6.microsoft.com" matches exactly one label in front.
type DNSOptions struct {
	// TeredoNames are the Teredo server names; nil means
	// DefaultTeredoServerNames, an empty slice none.
	TeredoNames []string
	// PNRPNames are the PNRP seed names; nil means DefaultPNRPSeedNames.
	PNRPNames []string
	// CacheAllNames puts every A/AAAA answer into the name cache, not only
	// the listed names. It costs a full parse of every DNS response.
	CacheAllNames bool
	// MinTTL and MaxTTL bound how long a cached answer is kept, whatever its
	// TTL says (defaults 1 minute and 24 hours): a TTL of 0 must still name
	// the server of a Teredo qualification a second later.
	MinTTL, MaxTTL time.Duration
}

// Validate reports the first pattern that cannot match a DNS name.
func (o DNSOptions) Validate() error {
	for _, list := range []struct {
		what  string
		names []string
	}{{"teredo_names", o.TeredoNames}, {"pnrp_names", o.PNRPNames}} {
		for i, n := range list.names {
			if err := dnsValidPattern(n); err != nil {
				return fmt.Errorf("dns: %s[%d] %q: %w", list.what, i, n, err)
			}
		}
	}
	if o.MinTTL < 0 || o.MaxTTL < 0 || (o.MaxTTL > 0 && o.MinTTL > o.MaxTTL) {
		return fmt.Errorf("dns: min_ttl %v and max_ttl %v: need 0 <= min <= max", o.MinTTL, o.MaxTTL)
	}
	return nil
}

func dnsValidPattern(p string) error {
	p = strings.TrimSuffix(p, ".")
	if p == "" {
		return errors.New("empty name")
	}
	if len(p) > 253 {
		return errors.New("longer than 253 characters")
	}
	for _, label := range strings.Split(p, ".") {
		if label == "" {
			return errors.New("empty label")
		}
		if len(label) > 63 {
			return errors.New("label longer than 63 characters")
		}
		for _, c := range []byte(label) {
			ok := c == '-' || c == '_' || c == '*' || c == '?' ||
				('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
			if !ok {
				return fmt.Errorf("character %q not allowed", c)
			}
		}
	}
	return nil
}

// DNSDetector labels DNS queries and answers for Teredo server names
// ("dns-teredo-server") and PNRP seed names ("dns-pnrp-seed"), over UDP and
// TCP on any port, and fills the name cache from their answers.
type DNSDetector struct {
	teredo, pnrp   [][]byte // lower-case patterns, no trailing dot
	cacheAll       bool
	minTTL, maxTTL time.Duration
}

// NewDNSDetector returns a DNS detector. Invalid patterns (see
// DNSOptions.Validate) are skipped.
func NewDNSDetector(opts DNSOptions) *DNSDetector {
	d := &DNSDetector{cacheAll: opts.CacheAllNames, minTTL: opts.MinTTL, maxTTL: opts.MaxTTL}
	teredo, pnrp := opts.TeredoNames, opts.PNRPNames
	if teredo == nil {
		teredo = DefaultTeredoServerNames
	}
	if pnrp == nil {
		pnrp = DefaultPNRPSeedNames
	}
	d.teredo = dnsCompile(teredo)
	d.pnrp = dnsCompile(pnrp)
	if d.minTTL <= 0 {
		d.minTTL = time.Minute
	}
	if d.maxTTL <= 0 {
		d.maxTTL = 24 * time.Hour
	}
	if d.maxTTL < d.minTTL {
		d.maxTTL = d.minTTL
	}
	return d
}

func dnsCompile(names []string) [][]byte {
	out := make([][]byte, 0, len(names))
	for _, n := range names {
		if dnsValidPattern(n) != nil {
			continue
		}
		out = append(out, []byte(strings.ToLower(strings.TrimSuffix(n, "."))))
	}
	return out
}

// Name returns "dns".
func (d *DNSDetector) Name() string { return "dns" }

// Budget covers a few dozen messages per direction: a resolver's upstream
// flow carries many queries on one port pair.
func (d *DNSDetector) Budget() int { return 8 << 10 }

// DNSEvidence is what the DNS detector records under "rasentry.dns", in
// the shape of Suricata's EVE dns object.
type DNSEvidence struct {
	Queries []DNSQuery  `json:"queries,omitempty"`
	Answers []DNSAnswer `json:"answers,omitempty"`
	Rcode   string      `json:"rcode,omitempty"` // of the last response
}

// DNSQuery is one question.
type DNSQuery struct {
	RRName string `json:"rrname"`
	RRType string `json:"rrtype"`
}

// DNSAnswer is one answer record.
type DNSAnswer struct {
	RRName string `json:"rrname"`
	RRType string `json:"rrtype"`
	RData  string `json:"rdata,omitempty"`
	TTL    uint32 `json:"ttl"`
}

// Bounds of the detector's work and evidence.
const (
	dnsMaxMessages   = 32   // messages per direction of one flow
	dnsMaxTCPMessage = 4096 // longer TCP messages are not followed
	dnsMaxQueries    = 8
	dnsMaxAnswers    = 16
	dnsMaxWalkRRs    = 32 // answer records whose owner names are checked
	dnsMaxPointers   = 32 // compression pointers followed in one name
	dnsMaxChain      = 8  // CNAME hops followed back to a listed name
	dnsMaxRData      = 256
)

// Inspect reads one UDP datagram or TCP segment.
func (d *DNSDetector) Inspect(ctx *Context, f *Flow, seg *Segment) Status {
	switch f.Proto {
	case ProtoUDP:
		if !d.message(ctx, f, seg.Payload) && seg.Index == 0 && seg.Dir == ToServer {
			// The flow's first datagram is not DNS. (A later stray one
			// in a DNS flow is only skipped.)
			return Done
		}
		if seg.Index+1 >= dnsMaxMessages {
			return Done
		}
		return Continue
	case ProtoTCP:
		return d.inspectTCP(ctx, f, seg)
	}
	return Done
}

// dnsTCPFlow holds a TCP DNS message split over segments (RFC 1035 §4.2.2:
// each message is preceded by a two-byte length).
type dnsTCPFlow struct {
	partial [2][]byte
}

func (d *DNSDetector) inspectTCP(ctx *Context, f *Flow, seg *Segment) Status {
	if seg.Gap {
		return Done
	}
	// Both directions must frame DNS messages from their first byte; a
	// server banner or any other protocol fails the length or header
	// check at once.
	st, _ := ctx.State(f).(*dnsTCPFlow)
	p := seg.Payload
	for len(p) > 0 {
		if st != nil && len(st.partial[seg.Dir]) > 0 {
			b := st.partial[seg.Dir]
			if len(b) < 2 {
				b = append(b, p[0])
				p = p[1:]
				st.partial[seg.Dir] = b
				if len(b) < 2 {
					return Continue
				}
				if !dnsTCPLengthOK(b) {
					return Done
				}
			}
			want := 2 + dnsBE16(b)
			take := min(want-len(b), len(p))
			b = append(b, p[:take]...)
			p = p[take:]
			st.partial[seg.Dir] = b
			if len(b) < want {
				return Continue
			}
			ok := d.message(ctx, f, b[2:])
			st.partial[seg.Dir] = b[:0]
			if !ok {
				return Done
			}
			continue
		}
		if len(p) >= 2 {
			if !dnsTCPLengthOK(p) {
				return Done
			}
			n := dnsBE16(p)
			if len(p) >= 2+n {
				if !d.message(ctx, f, p[2:2+n]) {
					return Done
				}
				p = p[2+n:]
				continue
			}
			if len(p) >= 2+12 && !dnsHeaderPlausible(p[2:]) {
				return Done
			}
		}
		// The rest of this message comes in later segments.
		if st == nil {
			st = &dnsTCPFlow{}
			ctx.SetState(f, st)
		}
		buf := st.partial[seg.Dir]
		if buf == nil {
			buf = make([]byte, 0, 512)
		}
		st.partial[seg.Dir] = append(buf[:0], p...)
		return Continue
	}
	if seg.Index+1 >= dnsMaxMessages {
		return Done
	}
	return Continue
}

func dnsTCPLengthOK(p []byte) bool {
	n := dnsBE16(p)
	return n >= 12 && n <= dnsMaxTCPMessage
}

func dnsBE16(b []byte) int { return int(b[0])<<8 | int(b[1]) }

// dnsHeaderPlausible checks the fixed header fields (RFC 1035 §4.1.1)
// that do not depend on the message length.
func dnsHeaderPlausible(m []byte) bool {
	if len(m) < 12 {
		return false
	}
	flags := dnsBE16(m[2:])
	qr := flags >> 15
	opcode := (flags >> 11) & 0xF
	if opcode != 0 { // only standard queries name servers
		return false
	}
	if flags&0x0040 != 0 { // Z must be zero
		return false
	}
	if qr == 0 && flags&0xF != 0 { // a query carries no RCODE
		return false
	}
	qd, an, ns, ar := dnsBE16(m[4:]), dnsBE16(m[6:]), dnsBE16(m[8:]), dnsBE16(m[10:])
	if qd > 16 || an > 256 || ns > 256 || ar > 256 {
		return false
	}
	// Queries ask something; mDNS responses may carry answers only.
	return qd > 0 || (qr == 1 && an > 0)
}

// dnsHeaderOK adds the check that the counts fit the message: every
// question takes at least 5 bytes and every record 11.
func dnsHeaderOK(m []byte) bool {
	if !dnsHeaderPlausible(m) {
		return false
	}
	qd, rrs := dnsBE16(m[4:]), dnsBE16(m[6:])+dnsBE16(m[8:])+dnsBE16(m[10:])
	return 12+qd*5+rrs*11 <= len(m)
}

// dnsReadName decodes the name at off into buf, lower-cased, labels joined
// by dots, no trailing dot. It follows at most dnsMaxPointers compression
// pointers (RFC 1035 §4.1.4), so a pointer loop fails instead of spinning.
// It returns the name's length in buf and the offset after the name.
func dnsReadName(msg []byte, off int, buf *[256]byte) (n, next int, ok bool) {
	next = -1
	ptrs := 0
	for {
		if off >= len(msg) {
			return 0, 0, false
		}
		l := int(msg[off])
		switch l & 0xC0 {
		case 0x00:
			if l == 0 {
				if next < 0 {
					next = off + 1
				}
				return n, next, true
			}
			if off+1+l > len(msg) {
				return 0, 0, false
			}
			if n > 0 {
				buf[n] = '.'
				n++
			}
			if n+l > 254 {
				return 0, 0, false
			}
			for _, c := range msg[off+1 : off+1+l] {
				if 'A' <= c && c <= 'Z' {
					c += 'a' - 'A'
				}
				buf[n] = c
				n++
			}
			off += 1 + l
		case 0xC0:
			if off+1 >= len(msg) {
				return 0, 0, false
			}
			if next < 0 {
				next = off + 2
			}
			if ptrs++; ptrs > dnsMaxPointers {
				return 0, 0, false
			}
			off = (l&0x3F)<<8 | int(msg[off+1])
		default: // 0x40 and 0x80 label types are obsolete (RFC 6891 §5)
			return 0, 0, false
		}
	}
}

// dnsMatch says which list a name is on.
type dnsMatch uint8

const (
	dnsMatchNone dnsMatch = iota
	dnsMatchTeredo
	dnsMatchPNRP
)

func (d *DNSDetector) lookup(name []byte) dnsMatch {
	for _, p := range d.pnrp {
		if dnsGlobName(p, name) {
			return dnsMatchPNRP
		}
	}
	for _, p := range d.teredo {
		if dnsGlobName(p, name) {
			return dnsMatchTeredo
		}
	}
	return dnsMatchNone
}

// dnsGlobName matches a name label by label.
func dnsGlobName(pat, name []byte) bool {
	for {
		pi, ni := dnsIndexDot(pat), dnsIndexDot(name)
		pl, nl := pat, name
		if pi >= 0 {
			pl = pat[:pi]
		}
		if ni >= 0 {
			nl = name[:ni]
		}
		if !dnsGlobLabel(pl, nl) {
			return false
		}
		if pi < 0 || ni < 0 {
			return pi < 0 && ni < 0
		}
		pat, name = pat[pi+1:], name[ni+1:]
	}
}

func dnsIndexDot(b []byte) int {
	for i, c := range b {
		if c == '.' {
			return i
		}
	}
	return -1
}

// dnsGlobLabel matches one label against '*' and '?' wildcards (the
// classic backtracking to the last star, linear in practice).
func dnsGlobLabel(p, s []byte) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// dnsWalk is what the allocation-free walk of a message found.
type dnsWalk struct {
	response bool
	match    dnsMatch // the strongest list any question or answer name is on
	answers  int
}

// walk checks the question section and the owner names of the answers.
func (d *DNSDetector) walk(m []byte, w *dnsWalk) bool {
	var buf [256]byte
	w.response = m[2]&0x80 != 0
	qd, an := dnsBE16(m[4:]), dnsBE16(m[6:])
	w.answers = an
	off := 12
	for i := 0; i < qd; i++ {
		n, next, ok := dnsReadName(m, off, &buf)
		if !ok || next+4 > len(m) {
			return false
		}
		switch dnsBE16(m[next+2:]) & 0x7FFF { // the top bit is mDNS's unicast-response flag
		case dns.ClassINET, dns.ClassCHAOS, dns.ClassHESIOD, dns.ClassNONE, dns.ClassANY:
		default:
			return false
		}
		if k := d.lookup(buf[:n]); k > w.match {
			w.match = k
		}
		off = next + 4
	}
	if !w.response {
		return true
	}
	for i := 0; i < an && i < dnsMaxWalkRRs; i++ {
		n, next, ok := dnsReadName(m, off, &buf)
		if !ok || next+10 > len(m) {
			return false
		}
		rdlen := dnsBE16(m[next+8:])
		if next+10+rdlen > len(m) {
			return false
		}
		if k := d.lookup(buf[:n]); k > w.match {
			w.match = k
		}
		off = next + 10 + rdlen
	}
	return true
}

func dnsPortHint(f *Flow) bool {
	for _, p := range [2]uint16{f.Client.Port(), f.Server.Port()} {
		if p == 53 || p == 5353 || p == 5355 {
			return true
		}
	}
	return false
}

// message handles one DNS message and reports whether it is DNS.
func (d *DNSDetector) message(ctx *Context, f *Flow, m []byte) bool {
	if !dnsHeaderOK(m) {
		if len(m) >= 12 && dnsPortHint(f) {
			ctx.Counters.CountMalformed(d.Name())
		}
		return false
	}
	var w dnsWalk
	if !d.walk(m, &w) {
		if dnsPortHint(f) {
			ctx.Counters.CountMalformed(d.Name())
		}
		return false
	}
	hint := dnsPortHint(f)
	if hint && f.AppProto == AppNone {
		f.AppProto = AppDNS
	}
	cache := d.cacheAll && w.response && w.answers > 0 && ctx.Names != nil
	if w.match == dnsMatchNone && !cache {
		return true
	}
	d.parse(ctx, f, m, &w)
	return true
}

// parse is the match path: the whole message through miekg/dns.
func (d *DNSDetector) parse(ctx *Context, f *Flow, raw []byte, w *dnsWalk) {
	msg := new(dns.Msg)
	if err := msg.Unpack(raw); err != nil {
		// The walk passed but a record did not (a broken RDATA, a pointer
		// loop inside one): keep what was read.
		ctx.Counters.CountMalformed(d.Name())
	}
	if w.match != dnsMatchNone {
		switch w.match {
		case dnsMatchTeredo:
			f.AddLabel(LabelDNSTeredoServer, ConfidenceMedium)
		case dnsMatchPNRP:
			f.AddLabel(LabelDNSPNRPSeed, ConfidenceMedium)
		}
		if f.AppProto == AppNone {
			f.AppProto = AppDNS
		}
		d.evidence(f, msg, w)
	}
	if w.response && msg.Rcode == dns.RcodeSuccess && ctx.Names != nil {
		d.cacheNames(ctx, msg)
	}
}

func (d *DNSDetector) evidence(f *Flow, msg *dns.Msg, w *dnsWalk) {
	ev, _ := f.GetEvidence(d.Name()).(*DNSEvidence)
	if ev == nil {
		ev = &DNSEvidence{}
		f.SetEvidence(d.Name(), ev)
	}
	for _, q := range msg.Question {
		if len(ev.Queries) >= dnsMaxQueries {
			break
		}
		dq := DNSQuery{RRName: strings.TrimSuffix(q.Name, "."), RRType: dnsTypeString(q.Qtype)}
		dup := false
		for _, e := range ev.Queries {
			if e == dq {
				dup = true
				break
			}
		}
		if !dup {
			ev.Queries = append(ev.Queries, dq)
		}
	}
	if !w.response {
		return
	}
	ev.Rcode = dnsRcodeString(msg.Rcode)
	for _, rr := range msg.Answer {
		if len(ev.Answers) >= dnsMaxAnswers {
			break
		}
		h := rr.Header()
		a := DNSAnswer{
			RRName: strings.TrimSuffix(h.Name, "."),
			RRType: dnsTypeString(h.Rrtype),
			RData:  dnsRData(rr),
			TTL:    h.Ttl,
		}
		dup := false
		for _, e := range ev.Answers {
			if e == a {
				dup = true
				break
			}
		}
		if !dup {
			ev.Answers = append(ev.Answers, a)
		}
	}
}

func dnsTypeString(t uint16) string {
	if s, ok := dns.TypeToString[t]; ok {
		return s
	}
	return fmt.Sprintf("TYPE%d", t)
}

func dnsRcodeString(r int) string {
	if s, ok := dns.RcodeToString[r]; ok {
		return s
	}
	return fmt.Sprintf("RCODE%d", r)
}

func dnsRData(rr dns.RR) string {
	var s string
	switch v := rr.(type) {
	case *dns.A:
		s = v.A.String()
	case *dns.AAAA:
		s = v.AAAA.String()
	case *dns.CNAME:
		s = strings.TrimSuffix(v.Target, ".")
	default:
		s = strings.TrimPrefix(rr.String(), rr.Header().String())
	}
	if len(s) > dnsMaxRData {
		s = s[:dnsMaxRData]
	}
	return s
}

// cacheNames puts the A/AAAA answers of listed names into the name cache
// under the listed name, following CNAME chains back from the address
// record's owner (teredo.ipv6.microsoft.com CNAME
// teredo.ipv6.microsoft.com.nsatc.net A 65.55.158.118 names
// 65.55.158.118 "teredo.ipv6.microsoft.com").
func (d *DNSDetector) cacheNames(ctx *Context, msg *dns.Msg) {
	type alias struct{ owner, target string }
	var aliases [dnsMaxAnswers]alias
	na := 0
	for _, rr := range msg.Answer {
		if c, ok := rr.(*dns.CNAME); ok && na < len(aliases) {
			aliases[na] = alias{dnsNorm(c.Hdr.Name), dnsNorm(c.Target)}
			na++
		}
	}
	for _, rr := range msg.Answer {
		var addr netip.Addr
		switch v := rr.(type) {
		case *dns.A:
			addr, _ = netip.AddrFromSlice(v.A.To4())
		case *dns.AAAA:
			addr, _ = netip.AddrFromSlice(v.AAAA.To16())
		default:
			continue
		}
		if !addr.IsValid() {
			continue
		}
		name := dnsNorm(rr.Header().Name)
		listed := ""
		if d.lookup([]byte(name)) != dnsMatchNone {
			listed = name
		}
		// Walk back towards the question; the name closest to it wins.
		cur := name
		for hop := 0; hop < dnsMaxChain; hop++ {
			prev := ""
			for _, a := range aliases[:na] {
				if a.target == cur {
					prev = a.owner
					break
				}
			}
			if prev == "" || prev == cur {
				break
			}
			cur = prev
			if d.lookup([]byte(cur)) != dnsMatchNone {
				listed = cur
			}
		}
		if listed == "" {
			if !d.cacheAll {
				continue
			}
			listed = cur
		}
		ctx.Names.Add(addr, listed, ctx.Now, d.clampTTL(rr.Header().Ttl))
	}
}

func (d *DNSDetector) clampTTL(ttl uint32) time.Duration {
	t := time.Duration(ttl) * time.Second
	if t < d.minTTL {
		return d.minTTL
	}
	if t > d.maxTTL {
		return d.maxTTL
	}
	return t
}

func dnsNorm(s string) string { return strings.ToLower(strings.TrimSuffix(s, ".")) }
