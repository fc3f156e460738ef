package alert

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

// SyslogConfig is where a syslog sink sends its messages. Messages follow
// RFC 5424: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG`, with
// the record's event type as MSGID and its JSON as MSG.
type SyslogConfig struct {
	// Network is udp (RFC 5426: one message per datagram), tcp (framed by
	// octet counting, RFC 6587 3.4.1) or unix (a datagram socket, as
	// /dev/log).
	Network string `mapstructure:"network"`
	// Address is host:port for udp and tcp (default port 514), a socket
	// path for unix (default /dev/log).
	Address string `mapstructure:"address"`
	// Facility is the syslog facility by name: kern, user, mail, daemon,
	// auth, syslog, lpr, news, uucp, cron, authpriv, ftp, local0 … local7.
	Facility string `mapstructure:"facility"`
	AppName  string `mapstructure:"app_name"` // APP-NAME (default rasentry)
	Hostname string `mapstructure:"hostname"` // HOSTNAME (default: this host's name)
	// Timeout bounds connecting and each write (default 5 s).
	Timeout time.Duration `mapstructure:"timeout"`
}

var syslogFacilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
	"uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// Validate checks the settings and fills in the defaults.
func (c *SyslogConfig) Validate() error {
	switch c.Network {
	case "":
		c.Network = "udp"
	case "udp", "tcp", "unix":
	default:
		return fmt.Errorf("network %q: want udp, tcp or unix", c.Network)
	}
	if c.Network == "unix" {
		if c.Address == "" {
			c.Address = "/dev/log"
		}
	} else {
		if c.Address == "" {
			return fmt.Errorf("address: missing (host:port)")
		}
		if _, _, err := net.SplitHostPort(c.Address); err != nil {
			c.Address = net.JoinHostPort(c.Address, "514")
		}
	}
	if c.Facility == "" {
		c.Facility = "local5"
	}
	if _, ok := syslogFacilities[c.Facility]; !ok {
		return fmt.Errorf("facility %q: want kern, user, mail, daemon, auth, syslog, lpr, news, uucp, cron, authpriv, ftp or local0 to local7", c.Facility)
	}
	if c.AppName == "" {
		c.AppName = "rasentry"
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	if c.Timeout < 0 {
		return fmt.Errorf("timeout: %s is negative", c.Timeout)
	}
	return nil
}

// Syslog severities (RFC 5424 6.2.1).
const (
	sevCrit    = 2
	sevErr     = 3
	sevWarning = 4
	sevNotice  = 5
	sevInfo    = 6
)

// syslogSeverity maps a record to a syslog severity: alerts by their EVE
// severity (1 critical, 2 error, 3 warning, others notice), every other
// record informational.
func syslogSeverity(e *Encoded) int {
	if e.Type != "alert" {
		return sevInfo
	}
	switch e.Severity {
	case 1:
		return sevCrit
	case 2:
		return sevErr
	case 3:
		return sevWarning
	}
	return sevNotice
}

// maxDatagram is the largest message a UDP or unix datagram carries here.
const maxDatagram = 65507

// SyslogSink sends records to a syslog server. It connects on first use
// and again after an error; the queue in front of it (Buffered) retries.
type SyslogSink struct {
	mu       sync.Mutex
	name     string
	cfg      SyslogConfig
	facility int
	hostname string
	procid   string
	buf      []byte
	cmu      sync.Mutex // guards conn, which Interrupt reaches while a write holds mu
	conn     net.Conn
}

// NewSyslogSink returns a sink sending to the server c names; name appears
// in errors. It does not connect yet.
func NewSyslogSink(name string, c SyslogConfig) (*SyslogSink, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("alert: sink %s: %w", name, err)
	}
	host := c.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	return &SyslogSink{name: name, cfg: c, facility: syslogFacilities[c.Facility],
		hostname: headerField(host, 255), procid: strconv.Itoa(os.Getpid())}, nil
}

// headerField makes s a valid RFC 5424 header field: printable US-ASCII,
// no spaces, at most n characters, "-" when empty.
func headerField(s string, n int) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s) && len(b) < n; i++ {
		if c := s[i]; c > 32 && c < 127 {
			b = append(b, c)
		}
	}
	if len(b) == 0 {
		return "-"
	}
	return string(b)
}

// appendMessage appends e's RFC 5424 message.
func (s *SyslogSink) appendMessage(b []byte, e *Encoded) []byte {
	b = append(b, '<')
	b = strconv.AppendInt(b, int64(s.facility*8+syslogSeverity(e)), 10)
	b = append(b, ">1 "...)
	t := e.Time
	if t.IsZero() {
		t = time.Now()
	}
	b = t.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000Z")
	b = append(b, ' ')
	b = append(b, s.hostname...)
	b = append(b, ' ')
	b = append(b, headerField(s.cfg.AppName, 48)...)
	b = append(b, ' ')
	b = append(b, s.procid...)
	b = append(b, ' ')
	b = append(b, headerField(e.Type, 32)...)
	b = append(b, " - "...)
	return append(b, e.JSON...)
}

func (s *SyslogSink) errf(format string, args ...any) error {
	return fmt.Errorf("alert: sink %s: syslog %s %s: "+format, append([]any{s.name, s.cfg.Network, s.cfg.Address}, args...)...)
}

func (s *SyslogSink) connect() error {
	if s.conn != nil {
		return nil
	}
	network := s.cfg.Network
	if network == "unix" {
		network = "unixgram"
	}
	c, err := net.DialTimeout(network, s.cfg.Address, s.cfg.Timeout)
	if err != nil {
		return s.errf("%w", err)
	}
	s.cmu.Lock()
	s.conn = c
	s.cmu.Unlock()
	return nil
}

func (s *SyslogSink) drop() {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}

// Interrupt makes a write in progress fail now (shutdown deadline).
func (s *SyslogSink) Interrupt() {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	if s.conn != nil {
		s.conn.SetDeadline(time.Now())
	}
}

// Write sends one record.
func (s *SyslogSink) Write(r Record) error {
	failed, err := s.WriteBatch([]Record{r})
	var rej *RejectedError
	if errors.As(err, &rej) && len(failed) == 0 {
		return Reject(err)
	}
	return err
}

// WriteBatch sends records: over tcp in one write of octet-counted frames
// (a failed write retries the frames not wholly written), over datagrams
// one each. A message too large for a datagram is rejected.
func (s *SyslogSink) WriteBatch(rs []Record) ([]Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.connect(); err != nil {
		return rs, err
	}
	if s.cfg.Network == "tcp" {
		return s.writeStream(rs)
	}
	var rejected []Record
	var rejErr error
	for i, r := range rs {
		e, err := asEncoded(r)
		if err != nil {
			rejected, rejErr = append(rejected, r), s.errf("%w", err)
			continue
		}
		s.buf = s.appendMessage(s.buf[:0], e)
		if len(s.buf) > maxDatagram {
			rejected = append(rejected, r)
			rejErr = s.errf("%s record of %d bytes is larger than a datagram (%d)", e.Type, len(s.buf), maxDatagram)
			continue
		}
		s.conn.SetWriteDeadline(time.Now().Add(s.cfg.Timeout))
		if _, err := s.conn.Write(s.buf); err != nil {
			s.drop()
			return rs[i:], s.withRejected(rejected, rejErr, s.errf("%w", err))
		}
	}
	if len(rejected) > 0 {
		return nil, &RejectedError{Records: rejected, Err: rejErr}
	}
	return nil, nil
}

// withRejected reports both the records rejected so far and the error
// that stopped the batch.
func (s *SyslogSink) withRejected(rejected []Record, rejErr, err error) error {
	if len(rejected) == 0 {
		return err
	}
	return &RejectedError{Records: rejected, Err: errors.Join(rejErr, err)}
}

func (s *SyslogSink) writeStream(rs []Record) ([]Record, error) {
	s.buf = s.buf[:0]
	ends := make([]int, 0, len(rs))
	var rejected []Record
	var rejErr error
	for _, r := range rs {
		e, err := asEncoded(r)
		if err != nil {
			rejected, rejErr = append(rejected, r), s.errf("%w", err)
			ends = append(ends, len(s.buf))
			continue
		}
		// Octet counting (RFC 6587 3.4.1): MSG-LEN SP SYSLOG-MSG.
		start := len(s.buf)
		s.buf = append(s.buf, "0000000000 "...)
		msgStart := len(s.buf)
		s.buf = s.appendMessage(s.buf, e)
		n := strconv.AppendInt(nil, int64(len(s.buf)-msgStart), 10)
		copy(s.buf[start:], n)
		s.buf[start+len(n)] = ' '
		s.buf = append(s.buf[:start+len(n)+1], s.buf[msgStart:]...)
		ends = append(ends, len(s.buf))
	}
	s.conn.SetWriteDeadline(time.Now().Add(s.cfg.Timeout))
	wrote, err := s.conn.Write(s.buf)
	if err != nil {
		s.drop()
		i := 0
		for i < len(ends) && ends[i] <= wrote {
			i++
		}
		return rs[i:], s.withRejected(rejected, rejErr, s.errf("%w", err))
	}
	if len(rejected) > 0 {
		return nil, &RejectedError{Records: rejected, Err: rejErr}
	}
	return nil, nil
}

// asEncoded returns r as written JSON: an Encoded as it is, any other
// record in EVE.
func asEncoded(r Record) (*Encoded, error) {
	if e, ok := r.(*Encoded); ok {
		return e, nil
	}
	return eveEncoder.Encode(r)
}

var eveEncoder = NewEncoder(FormatEVE, EncoderOptions{})

// Close closes the connection.
func (s *SyslogSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.drop()
	return nil
}
