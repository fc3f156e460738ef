package alert

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"go.uber.org/zap"
)

// OutputConfig is the "output" section of rasentry.yaml: the record format
// and the sinks records go to, all at once.
//
//	output:
//	  format: eve                    # or ecs
//	  spool_dir: /var/lib/rasentry/spool
//	  close_timeout: 10s
//	  sinks:
//	    - type: file
//	      path: /var/log/rasentry/eve.json
//	    - type: kafka
//	      brokers: [kafka1:9092]
//	      queue: {size: 20000, spool_max_bytes: 1GiB}
type OutputConfig struct {
	Format Format
	// SpoolDir holds one spool directory per sink (SpoolDir/<name>); ""
	// spools nothing.
	SpoolDir string
	// CloseTimeout bounds the flush of every sink at shutdown (and of a
	// sink removed by a reload).
	CloseTimeout time.Duration
	Sinks        []SinkConfig
}

// SinkConfig is one sink: its type, its destination, and its queue.
type SinkConfig struct {
	Name   string // unique; default: the type; names the spool directory and the metrics
	Type   string // stdout, file, syslog, kafka
	Queue  QueueConfig
	File   *FileConfig   // type file
	Syslog *SyslogConfig // type syslog
	Kafka  *KafkaConfig  // type kafka
}

// QueueConfig bounds a sink's memory queue and spool.
type QueueConfig struct {
	Size      int `mapstructure:"size"`       // records held in memory (default 10000)
	BatchSize int `mapstructure:"batch_size"` // records per delivery (default 256)
	// Spool lets records past the memory queue wait on disk (default: on
	// for file, syslog and kafka when output.spool_dir is set; off for
	// stdout).
	Spool         *bool         `mapstructure:"spool"`
	SpoolMaxBytes ByteSize      `mapstructure:"spool_max_bytes"` // default 256MiB
	RetryMax      time.Duration `mapstructure:"retry_max"`       // longest wait between attempts (default 30s)
}

// ByteSize is a size in bytes, written as a number or with a unit: 512KiB,
// 256MiB, 1GiB (or KB, MB, GB, also powers of 1024).
type ByteSize int64

// ParseByteSize reads a size.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	i := len(t)
	for i > 0 && (t[i-1] < '0' || t[i-1] > '9') {
		i--
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t[:i]), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("size %q: want a number of bytes, optionally with KiB, MiB or GiB", s)
	}
	mult := int64(1)
	switch strings.ToLower(strings.TrimSpace(t[i:])) {
	case "", "b":
	case "k", "kb", "kib":
		mult = 1 << 10
	case "m", "mb", "mib":
		mult = 1 << 20
	case "g", "gb", "gib":
		mult = 1 << 30
	default:
		return 0, fmt.Errorf("size %q: unknown unit (want KiB, MiB or GiB)", s)
	}
	return ByteSize(n * mult), nil
}

// Sink types.
const (
	SinkStdout = "stdout"
	SinkFile   = "file"
	SinkSyslog = "syslog"
	SinkKafka  = "kafka"
)

// DefaultOutputConfig is the output with nothing configured: EVE to stdout.
func DefaultOutputConfig() OutputConfig {
	return OutputConfig{Format: FormatEVE, CloseTimeout: 10 * time.Second, Sinks: []SinkConfig{{Name: SinkStdout, Type: SinkStdout}}}
}

var sinkName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// DecodeOutputConfig reads the "output" section as viper gives it
// (v.GetStringMap("output"), or v.Get("output")), applies the defaults and
// validates it. Keys it does not know inside a sink are errors; at the top
// level, keys other settings own (eve, community_id_seed) are left alone.
// Errors name the setting: output.sinks[1] (kafka "siem"): brokers: missing.
func DecodeOutputConfig(raw map[string]any) (OutputConfig, error) {
	c := DefaultOutputConfig()
	if v, ok := raw["format"]; ok && v != nil {
		f, err := ParseFormat(fmt.Sprint(v))
		if err != nil {
			return c, fmt.Errorf("output.format: %w", err)
		}
		c.Format = f
	}
	if v, ok := raw["spool_dir"]; ok && v != nil {
		c.SpoolDir = fmt.Sprint(v)
	}
	if v, ok := raw["close_timeout"]; ok && v != nil {
		if err := decodeStrict(v, &c.CloseTimeout); err != nil {
			return c, fmt.Errorf("output.close_timeout %q: %w", fmt.Sprint(v), err)
		}
	}
	if v, ok := raw["sinks"]; ok && v != nil {
		list, ok := v.([]any)
		if !ok {
			return c, fmt.Errorf("output.sinks: want a list of sinks, got %T", v)
		}
		c.Sinks = nil
		for i, item := range list {
			m, ok := item.(map[string]any)
			if !ok {
				if mi, ok2 := item.(map[any]any); ok2 {
					m = make(map[string]any, len(mi))
					for k, v := range mi {
						m[fmt.Sprint(k)] = v
					}
				} else {
					return c, fmt.Errorf("output.sinks[%d]: want a mapping (type: ..., ...), got %T", i, item)
				}
			}
			sc, err := decodeSink(m)
			if err != nil {
				return c, fmt.Errorf("output.sinks[%d]%s: %w", i, sinkLabel(sc), err)
			}
			c.Sinks = append(c.Sinks, sc)
		}
	}
	return c, c.Validate()
}

func sinkLabel(sc SinkConfig) string {
	switch {
	case sc.Type == "":
		return ""
	case sc.Name == "" || sc.Name == sc.Type:
		return " (" + sc.Type + ")"
	}
	return fmt.Sprintf(" (%s %q)", sc.Type, sc.Name)
}

func decodeSink(m map[string]any) (SinkConfig, error) {
	var sc SinkConfig
	rest := make(map[string]any, len(m))
	var queue any
	for k, v := range m {
		switch strings.ToLower(k) {
		case "type":
			sc.Type = strings.ToLower(fmt.Sprint(v))
		case "name":
			sc.Name = fmt.Sprint(v)
		case "queue":
			queue = v
		default:
			rest[strings.ToLower(k)] = v
		}
	}
	if sc.Name == "" {
		sc.Name = sc.Type
	}
	if queue != nil {
		if err := decodeStrict(queue, &sc.Queue); err != nil {
			return sc, fmt.Errorf("queue: %w", err)
		}
	}
	var target any
	switch sc.Type {
	case "":
		return sc, fmt.Errorf("type: missing (stdout, file, syslog or kafka)")
	case SinkStdout:
	case SinkFile:
		sc.File = &FileConfig{RotateSizeMB: 100, KeepFiles: 10, Compress: true}
		target = sc.File
	case SinkSyslog:
		sc.Syslog = &SyslogConfig{}
		target = sc.Syslog
	case SinkKafka:
		sc.Kafka = &KafkaConfig{}
		target = sc.Kafka
	default:
		return sc, fmt.Errorf("type %q: want stdout, file, syslog or kafka", sc.Type)
	}
	if target == nil {
		if len(rest) > 0 {
			return sc, fmt.Errorf("unknown setting(s) %s for a %s sink", keysOf(rest), sc.Type)
		}
		return sc, nil
	}
	if err := decodeStrict(rest, target); err != nil {
		return sc, err
	}
	return sc, nil
}

func keysOf(m map[string]any) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, strconv.Quote(k))
	}
	sort.Strings(ks)
	return strings.Join(ks, ", ")
}

// decodeStrict decodes in into out, rejecting unknown keys; durations and
// sizes may be strings ("10s", "256MiB").
func decodeStrict(in, out any) error {
	d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		Result: out, ErrorUnused: true, WeaklyTypedInput: true,
		DecodeHook: mapstructure.ComposeDecodeHookFunc(mapstructure.StringToTimeDurationHookFunc(), byteSizeHook),
	})
	if err != nil {
		return err
	}
	if err := d.Decode(in); err != nil {
		return cleanDecodeError(err)
	}
	return nil
}

// cleanDecodeError drops mapstructure's "decoding failed due to the
// following error(s):" preamble, keeping the part that names the setting.
func cleanDecodeError(err error) error {
	msg := err.Error()
	if i := strings.Index(msg, "error(s):"); i >= 0 {
		msg = strings.TrimSpace(msg[i+len("error(s):"):])
	}
	msg = strings.ReplaceAll(msg, "\n", "; ")
	msg = unknownKeys.ReplaceAllString(msg, "${1}unknown setting(s) $2")
	msg = namedKey.ReplaceAllString(msg, "$1: ")
	msg = strings.ReplaceAll(msg, "'' ", "")
	return errors.New(strings.ReplaceAll(msg, "* ", ""))
}

var (
	unknownKeys = regexp.MustCompile(`'([^']*)' has invalid keys: (.*)`)
	namedKey    = regexp.MustCompile(`'([A-Za-z0-9_.\[\]]+)' `)
)

var byteSizeType = reflect.TypeOf(ByteSize(0))

func byteSizeHook(from, to reflect.Type, data any) (any, error) {
	if to != byteSizeType {
		return data, nil
	}
	if from.Kind() == reflect.String {
		return ParseByteSize(data.(string))
	}
	return data, nil
}

// Validate checks the whole section: each sink's settings, and that names
// are unique and fit a directory name.
func (c *OutputConfig) Validate() error {
	if _, err := ParseFormat(string(c.Format)); err != nil {
		return fmt.Errorf("output.format: %w", err)
	}
	if c.CloseTimeout <= 0 {
		return fmt.Errorf("output.close_timeout: %s: want a positive duration", c.CloseTimeout)
	}
	if len(c.Sinks) == 0 {
		return fmt.Errorf("output.sinks: empty; give at least one sink (type: stdout, file, syslog or kafka)")
	}
	seen := map[string]int{}
	for i := range c.Sinks {
		sc := &c.Sinks[i]
		where := fmt.Sprintf("output.sinks[%d]%s", i, sinkLabel(*sc))
		if !sinkName.MatchString(sc.Name) {
			return fmt.Errorf("%s: name %q: use letters, digits, '.', '_' or '-' (it names the sink's spool directory)", where, sc.Name)
		}
		if j, dup := seen[sc.Name]; dup {
			return fmt.Errorf("%s: name %q is already output.sinks[%d]'s: give each sink its own name", where, sc.Name, j)
		}
		seen[sc.Name] = i
		if err := sc.validate(); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	return nil
}

func (sc *SinkConfig) validate() error {
	q := &sc.Queue
	if q.Size < 0 || q.BatchSize < 0 || q.SpoolMaxBytes < 0 || q.RetryMax < 0 {
		return fmt.Errorf("queue: sizes and durations must not be negative")
	}
	if q.SpoolMaxBytes > 0 && q.SpoolMaxBytes < 64<<10 {
		return fmt.Errorf("queue.spool_max_bytes: %d is below the 64KiB minimum", q.SpoolMaxBytes)
	}
	var err error
	switch sc.Type {
	case SinkStdout:
	case SinkFile:
		if sc.File == nil {
			return fmt.Errorf("path: missing")
		}
		err = sc.File.Validate()
	case SinkSyslog:
		if sc.Syslog == nil {
			sc.Syslog = &SyslogConfig{}
		}
		err = sc.Syslog.Validate()
	case SinkKafka:
		if sc.Kafka == nil {
			return fmt.Errorf("brokers: missing")
		}
		err = sc.Kafka.Validate()
	default:
		return fmt.Errorf("type %q: want stdout, file, syslog or kafka", sc.Type)
	}
	return err
}

// spoolDir returns the sink's spool directory ("" for none).
func (c *OutputConfig) spoolDir(sc *SinkConfig) string {
	on := sc.Type != SinkStdout
	if sc.Queue.Spool != nil {
		on = *sc.Queue.Spool
	}
	if !on || c.SpoolDir == "" {
		return ""
	}
	return filepath.Join(c.SpoolDir, sc.Name)
}

// OpenOptions are what Open needs besides the configuration.
type OpenOptions struct {
	Logger  *zap.Logger
	Encoder EncoderOptions // ECS observer fields
	// Block makes every sink's Write wait for room instead of spooling or
	// dropping (replay: back-pressure, so no record is lost).
	Block bool
	// Stdout is where stdout sinks write (default os.Stdout).
	Stdout io.Writer
}

// Outputs is the set of sinks a configuration names, each behind its
// queue and spool, written to all at once. Reload swaps in a new
// configuration without losing records.
type Outputs struct {
	*Multi
	mu      sync.Mutex // serialises Reload and Close
	cfg     OutputConfig
	opts    OpenOptions
	bufs    map[string]*BufferedSink
	specs   map[string]SinkConfig
	enc     atomic.Pointer[Encoder]
	closing sync.WaitGroup // sinks a reload removed, still flushing
}

// Open builds every sink of c and starts delivering. On error nothing is
// left open.
func Open(c OutputConfig, o OpenOptions) (*Outputs, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	out := &Outputs{Multi: NewMulti(), cfg: c, opts: o, bufs: map[string]*BufferedSink{}, specs: map[string]SinkConfig{}}
	var sinks []Sink
	for i := range c.Sinks {
		sc := c.Sinks[i]
		b, err := out.openSink(&c, &sc)
		if err != nil {
			for _, s := range sinks {
				s.Close()
			}
			return nil, err
		}
		out.bufs[sc.Name], out.specs[sc.Name] = b, sc
		sinks = append(sinks, b)
	}
	out.Set(sinks)
	out.enc.Store(NewEncoder(c.Format, o.Encoder))
	return out, nil
}

// Encoder returns an encoder in the configured format: the sensor encodes
// flow records with it (EncodeFlow) before writing them. A reload that
// changes the format changes it.
func (o *Outputs) Encoder() *Encoder { return o.enc.Load() }

func (o *Outputs) bufferOptions(c *OutputConfig, sc *SinkConfig) BufferOptions {
	return BufferOptions{
		Name: sc.Name, Type: sc.Type, Encoder: NewEncoder(c.Format, o.opts.Encoder),
		QueueSize: sc.Queue.Size, BatchSize: sc.Queue.BatchSize, Block: o.opts.Block,
		SpoolDir: c.spoolDir(sc), SpoolMaxBytes: int64(sc.Queue.SpoolMaxBytes), RetryMax: sc.Queue.RetryMax,
		Logger: o.opts.Logger,
	}
}

// newDestination builds the sink itself, without its queue.
func (o *Outputs) newDestination(sc *SinkConfig) (Sink, error) {
	switch sc.Type {
	case SinkStdout:
		return NewWriterSink(sc.Name, o.opts.Stdout), nil
	case SinkFile:
		return NewFileSink(sc.Name, *sc.File)
	case SinkSyslog:
		return NewSyslogSink(sc.Name, *sc.Syslog)
	case SinkKafka:
		return NewKafkaSink(sc.Name, *sc.Kafka)
	}
	return nil, fmt.Errorf("alert: sink %s: type %q: want stdout, file, syslog or kafka", sc.Name, sc.Type)
}

func (o *Outputs) openSink(c *OutputConfig, sc *SinkConfig) (*BufferedSink, error) {
	dest, err := o.newDestination(sc)
	if err != nil {
		return nil, err
	}
	b, err := Buffered(dest, o.bufferOptions(c, sc))
	if err != nil {
		dest.Close()
		return nil, err
	}
	return b, nil
}

// Reload applies a new configuration: sinks kept by name take their new
// settings (a changed destination replaces the old one between two
// batches, and what is queued or spooled goes to the new one), new sinks
// start, removed sinks are closed in the background within CloseTimeout.
// Writes go on throughout. When anything in c fails (validation, a file
// that cannot be opened, a spool that cannot be opened), nothing changes
// and the error says why.
func (o *Outputs) Reload(c OutputConfig) error {
	if err := c.Validate(); err != nil {
		return err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	type change struct {
		sc      SinkConfig
		buf     *BufferedSink // existing, reconfigured
		dest    Sink          // its new destination (nil: same destination)
		created *BufferedSink // new sink
	}
	var changes []change
	undo := func() {
		for _, ch := range changes {
			if ch.dest != nil {
				ch.dest.Close()
			}
			if ch.created != nil {
				ch.created.Close()
			}
		}
	}
	for i := range c.Sinks {
		sc := c.Sinks[i]
		old, ok := o.bufs[sc.Name]
		if ok && o.cfg.spoolDir(ptr(o.specs[sc.Name])) == c.spoolDir(&sc) {
			ch := change{sc: sc, buf: old}
			if !sameDestination(o.specs[sc.Name], sc) {
				dest, err := o.newDestination(&sc)
				if err != nil {
					undo()
					return err
				}
				ch.dest = dest
			}
			changes = append(changes, ch)
			continue
		}
		b, err := o.openSink(&c, &sc)
		if err != nil {
			undo()
			return err
		}
		changes = append(changes, change{sc: sc, created: b})
	}
	// Everything is built: apply.
	sinks := make([]Sink, 0, len(changes))
	bufs := map[string]*BufferedSink{}
	specs := map[string]SinkConfig{}
	for _, ch := range changes {
		b := ch.created
		if b == nil {
			b = ch.buf
			if err := b.Reconfigure(ch.dest, o.bufferOptions(&c, &ch.sc)); err != nil {
				o.opts.Logger.Error("reload: sink kept its previous settings", zap.String("sink", ch.sc.Name), zap.Error(err))
			}
			if ch.dest == nil {
				if err := b.Reopen(); err != nil {
					o.opts.Logger.Warn("reload: reopening", zap.String("sink", ch.sc.Name), zap.Error(err))
				}
			}
		}
		sinks = append(sinks, b)
		bufs[ch.sc.Name], specs[ch.sc.Name] = b, ch.sc
	}
	var removed []Sink
	for name, b := range o.bufs {
		if bufs[name] != b {
			removed = append(removed, b)
		}
	}
	o.enc.Store(NewEncoder(c.Format, o.opts.Encoder))
	o.Set(sinks)
	o.bufs, o.specs, o.cfg = bufs, specs, c
	if len(removed) > 0 {
		timeout := c.CloseTimeout
		log := o.opts.Logger
		o.closing.Add(1)
		go func() {
			defer o.closing.Done()
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			if err := closeAll(ctx, removed, false); err != nil {
				log.Warn("reload: closing removed sinks", zap.Error(err))
			}
		}()
	}
	return nil
}

// ptr returns a pointer to a copy of v.
func ptr[T any](v T) *T { return &v }

// sameDestination reports whether two configurations of a sink deliver to
// the same place in the same way (only the queue may differ).
func sameDestination(a, b SinkConfig) bool {
	a.Queue, b.Queue = QueueConfig{}, QueueConfig{}
	return reflect.DeepEqual(a, b)
}

// Config returns the configuration in force.
func (o *Outputs) Config() OutputConfig {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.cfg
}

// Close flushes every sink within the configured close_timeout.
func (o *Outputs) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), o.Config().CloseTimeout)
	defer cancel()
	return o.CloseContext(ctx)
}

// CloseContext flushes every sink at once, all within ctx; what is left
// stays in the spools for the next start.
func (o *Outputs) CloseContext(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	err := o.Multi.CloseContext(ctx)
	// Sinks a reload removed have the same deadline.
	done := make(chan struct{})
	go func() { o.closing.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	return err
}
