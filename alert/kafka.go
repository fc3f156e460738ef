package alert

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// KafkaConfig is where a Kafka sink produces. Each record is one message:
// the value its JSON, the key its community_id (so a flow's records land
// in one partition, in order, and join with Zeek's and Suricata's), and a
// header event_type.
type KafkaConfig struct {
	Brokers []string `mapstructure:"brokers"` // host:port of one or more brokers to start from
	Topic   string   `mapstructure:"topic"`   // default rasentry
	// TopicByType sends some event types elsewhere, e.g. {flow: rasentry-flows}.
	TopicByType map[string]string `mapstructure:"topic_by_type"`
	ClientID    string            `mapstructure:"client_id"` // default rasentry
	// Acks is all (default: every in-sync replica; needed for idempotent,
	// unduplicated produce), leader, or none.
	Acks string `mapstructure:"acks"`
	// Compression is none, gzip, snappy (default), lz4 or zstd.
	Compression string `mapstructure:"compression"`
	// DeliveryTimeout bounds one delivery attempt of a batch (default 10 s);
	// what failed is retried by the queue in front.
	DeliveryTimeout time.Duration `mapstructure:"delivery_timeout"`
	DialTimeout     time.Duration `mapstructure:"dial_timeout"` // default 5 s
	TLS             TLSConfig     `mapstructure:"tls"`
	SASL            SASLConfig    `mapstructure:"sasl"`
}

// TLSConfig is a client's TLS.
type TLSConfig struct {
	Enabled            bool   `mapstructure:"enabled"`
	CAFile             string `mapstructure:"ca_file"`     // PEM roots (default: the system's)
	CertFile           string `mapstructure:"cert_file"`   // PEM client certificate (mutual TLS)
	KeyFile            string `mapstructure:"key_file"`    // its PEM key
	ServerName         string `mapstructure:"server_name"` // default: the broker's host
	InsecureSkipVerify bool   `mapstructure:"insecure_skip_verify"`
}

// SASLConfig is a client's SASL authentication.
type SASLConfig struct {
	// Mechanism is plain, scram-sha-256 or scram-sha-512 ("": none).
	Mechanism string `mapstructure:"mechanism"`
	Username  string `mapstructure:"username"`
	Password  string `mapstructure:"password"`
	// PasswordFile holds the password (first line), to keep it out of the
	// configuration file.
	PasswordFile string `mapstructure:"password_file"`
}

// Validate checks the settings and fills in the defaults.
func (c *KafkaConfig) Validate() error {
	if len(c.Brokers) == 0 {
		return fmt.Errorf("brokers: missing")
	}
	for _, b := range c.Brokers {
		if b == "" || strings.ContainsAny(b, " /") {
			return fmt.Errorf("brokers: %q is not host:port", b)
		}
	}
	if c.Topic == "" {
		c.Topic = "rasentry"
	}
	for t, topic := range c.TopicByType {
		switch t {
		case "flow", "alert", "ra_session", "stats":
		default:
			return fmt.Errorf("topic_by_type: %q is not an event type (flow, alert, ra_session, stats)", t)
		}
		if topic == "" {
			return fmt.Errorf("topic_by_type: %s: empty topic", t)
		}
	}
	if c.ClientID == "" {
		c.ClientID = "rasentry"
	}
	switch c.Acks {
	case "":
		c.Acks = "all"
	case "all", "leader", "none":
	default:
		return fmt.Errorf("acks %q: want all, leader or none", c.Acks)
	}
	switch c.Compression {
	case "":
		c.Compression = "snappy"
	case "none", "gzip", "snappy", "lz4", "zstd":
	default:
		return fmt.Errorf("compression %q: want none, gzip, snappy, lz4 or zstd", c.Compression)
	}
	if c.DeliveryTimeout == 0 {
		c.DeliveryTimeout = 10 * time.Second
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.DeliveryTimeout < 0 || c.DialTimeout < 0 {
		return fmt.Errorf("delivery_timeout and dial_timeout must not be negative")
	}
	switch c.SASL.Mechanism {
	case "":
	case "plain", "scram-sha-256", "scram-sha-512":
		if c.SASL.Username == "" {
			return fmt.Errorf("sasl.username: missing")
		}
		if c.SASL.Password != "" && c.SASL.PasswordFile != "" {
			return fmt.Errorf("sasl: password and password_file both set")
		}
	default:
		return fmt.Errorf("sasl.mechanism %q: want plain, scram-sha-256 or scram-sha-512", c.SASL.Mechanism)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return fmt.Errorf("tls: cert_file and key_file go together")
	}
	return nil
}

// ClientConfig builds the TLS client configuration (nil when disabled).
func (c *TLSConfig) ClientConfig() (*tls.Config, error) {
	if !c.Enabled {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file %s: no PEM certificate in it", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file/key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// KafkaSink produces records to Kafka with franz-go.
//
// After an attempt in which records failed, the client is closed and the
// next attempt starts a new one: a producer whose broker restarted, or
// whose requests were cut off mid-flight, can be left waiting on a
// sequence the broker no longer knows, and a new client (a new producer
// id) is the reliable way out. An attempt the client does not end by
// itself within the delivery timeout is ended the same way.
type KafkaSink struct {
	name   string
	cfg    KafkaConfig
	opts   []kgo.Opt
	mu     sync.Mutex // guards client
	client *kgo.Client
	ctx    context.Context // cancelled by Interrupt and Close
	cancel context.CancelFunc
	once   sync.Once
}

// NewKafkaSink returns a sink producing to the brokers c names; name
// appears in errors. The client connects in the background; a broker that
// is down shows as delivery errors, retried, not as a failure here.
func NewKafkaSink(name string, c KafkaConfig, extra ...kgo.Opt) (*KafkaSink, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("alert: sink %s: %w", name, err)
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.Brokers...),
		kgo.ClientID(c.ClientID),
		kgo.DefaultProduceTopic(c.Topic),
		kgo.DialTimeout(c.DialTimeout),
		kgo.RecordDeliveryTimeout(c.DeliveryTimeout),
		kgo.ProducerLinger(5 * time.Millisecond),
	}
	switch c.Acks {
	case "all":
		// Idempotent produce, whose client would rather wait forever than
		// fail a record the broker may have written: allow it to fail at
		// the delivery timeout, so an outage shows as errors and the
		// records wait in the queue and spool; the price is a possible
		// duplicate of a record whose acknowledgement was lost.
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()), kgo.AllowIdempotentProduceCancellation())
	case "leader":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "none":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	}
	switch c.Compression {
	case "none":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.NoCompression()))
	case "gzip":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.GzipCompression()))
	case "snappy":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.SnappyCompression()))
	case "lz4":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.Lz4Compression()))
	case "zstd":
		opts = append(opts, kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	}
	tc, err := c.TLS.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("alert: sink %s: %w", name, err)
	}
	if tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if m := c.SASL.Mechanism; m != "" {
		pass := c.SASL.Password
		if c.SASL.PasswordFile != "" {
			b, err := os.ReadFile(c.SASL.PasswordFile)
			if err != nil {
				return nil, fmt.Errorf("alert: sink %s: sasl.password_file: %w", name, err)
			}
			pass = strings.TrimRight(strings.SplitN(string(b), "\n", 2)[0], "\r")
		}
		switch m {
		case "plain":
			opts = append(opts, kgo.SASL(plain.Auth{User: c.SASL.Username, Pass: pass}.AsMechanism()))
		case "scram-sha-256":
			opts = append(opts, kgo.SASL(scram.Auth{User: c.SASL.Username, Pass: pass}.AsSha256Mechanism()))
		case "scram-sha-512":
			opts = append(opts, kgo.SASL(scram.Auth{User: c.SASL.Username, Pass: pass}.AsSha512Mechanism()))
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	k := &KafkaSink{name: name, cfg: c, opts: append(opts, extra...), ctx: ctx, cancel: cancel}
	if _, err := k.currentClient(); err != nil {
		cancel()
		return nil, err
	}
	return k, nil
}

// currentClient returns the client, starting one if there is none.
func (k *KafkaSink) currentClient() (*kgo.Client, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.client == nil {
		if k.ctx.Err() != nil {
			return nil, fmt.Errorf("alert: sink %s: kafka: closed", k.name)
		}
		cl, err := kgo.NewClient(k.opts...)
		if err != nil {
			return nil, fmt.Errorf("alert: sink %s: kafka client: %w", k.name, err)
		}
		k.client = cl
	}
	return k.client, nil
}

// dropClient closes cl (failing what it holds) so the next attempt starts
// a new one.
func (k *KafkaSink) dropClient(cl *kgo.Client) {
	k.mu.Lock()
	if k.client == cl {
		k.client = nil
	}
	k.mu.Unlock()
	cl.Close()
}

// Write produces one record and waits for the broker's acknowledgement.
func (k *KafkaSink) Write(r Record) error {
	failed, err := k.WriteBatch([]Record{r})
	var rej *RejectedError
	if errors.As(err, &rej) && len(failed) == 0 {
		return Reject(err)
	}
	return err
}

// WriteBatch produces records and waits until every one is acknowledged
// or has failed; it returns the failed ones, in order, to be retried.
// Records the broker refuses for good (too large, invalid) are rejected.
func (k *KafkaSink) WriteBatch(rs []Record) ([]Record, error) {
	recs := make([]*kgo.Record, 0, len(rs))
	index := make(map[*kgo.Record]int, len(rs))
	var rejected []Record
	var rejErr error
	for i, r := range rs {
		e, err := asEncoded(r)
		if err != nil {
			rejected, rejErr = append(rejected, r), fmt.Errorf("alert: sink %s: %w", k.name, err)
			continue
		}
		// The message timestamp is left to the client (the produce time):
		// franz-go measures the delivery timeout from it, and a record's
		// own time (a replayed capture's, or one that waited in the spool)
		// would time it out at once. The record's time is in its JSON.
		kr := &kgo.Record{Value: e.JSON, Topic: k.cfg.Topic,
			Headers: []kgo.RecordHeader{{Key: "event_type", Value: []byte(e.Type)}}}
		if t, ok := k.cfg.TopicByType[e.Type]; ok {
			kr.Topic = t
		}
		if k := e.PartitionKey(); k != "" {
			kr.Key = []byte(k)
		}
		index[kr] = i
		recs = append(recs, kr)
	}
	cl, err := k.currentClient()
	if err != nil {
		return rs, err
	}
	ctx, cancel := context.WithTimeout(k.ctx, k.cfg.DeliveryTimeout)
	defer cancel()
	done := make(chan kgo.ProduceResults, 1)
	go func() { done <- cl.ProduceSync(ctx, recs...) }()
	var results kgo.ProduceResults
	stuck := false
	watchdog := time.NewTimer(k.cfg.DeliveryTimeout + 2*time.Second)
	select {
	case results = <-done:
		watchdog.Stop()
	case <-watchdog.C:
		// The client did not give up by itself: closing it fails what it holds.
		stuck = true
		k.dropClient(cl)
		results = <-done
	}
	failedAt := make([]bool, len(rs))
	var firstErr error
	nfailed := 0
	for _, res := range results {
		if res.Err == nil {
			continue
		}
		i := index[res.Record]
		if isPermanentKafkaError(res.Err) {
			rejected = append(rejected, rs[i])
			rejErr = fmt.Errorf("alert: sink %s: kafka topic %s: %w", k.name, res.Record.Topic, res.Err)
			continue
		}
		failedAt[i] = true
		nfailed++
		if firstErr == nil {
			err := res.Err
			if stuck {
				err = fmt.Errorf("no acknowledgement within the delivery timeout (%s): %w", k.cfg.DeliveryTimeout, err)
			}
			firstErr = fmt.Errorf("alert: sink %s: kafka %s topic %s: %w", k.name, strings.Join(k.cfg.Brokers, ","), res.Record.Topic, err)
		}
	}
	var failed []Record
	if nfailed > 0 {
		k.dropClient(cl)
		failed = make([]Record, 0, nfailed)
		for i, f := range failedAt {
			if f {
				failed = append(failed, rs[i])
			}
		}
	}
	if len(rejected) > 0 {
		err := rejErr
		if firstErr != nil {
			err = errors.Join(rejErr, firstErr)
		}
		return failed, &RejectedError{Records: rejected, Err: err}
	}
	return failed, firstErr
}

// isPermanentKafkaError reports errors that retrying the same record cannot
// cure.
func isPermanentKafkaError(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.InvalidRecord) ||
		errors.Is(err, kerr.CorruptMessage)
}

// Interrupt fails the produce in progress and closes the client: the queue
// in front calls it when its close deadline has passed.
func (k *KafkaSink) Interrupt() {
	k.once.Do(func() {
		k.cancel()
		k.mu.Lock()
		cl := k.client
		k.client = nil
		k.mu.Unlock()
		if cl != nil {
			cl.Close()
		}
	})
}

// CloseContext waits until what is buffered is acknowledged, or ctx is
// done, then closes the client.
func (k *KafkaSink) CloseContext(ctx context.Context) error {
	var err error
	k.once.Do(func() {
		k.mu.Lock()
		cl := k.client
		k.client = nil
		k.mu.Unlock()
		k.cancel()
		if cl == nil {
			return
		}
		if ferr := cl.Flush(ctx); ferr != nil {
			err = fmt.Errorf("alert: sink %s: kafka flush: %w", k.name, ferr)
		}
		cl.Close()
	})
	return err
}

// Close closes within 10 seconds.
func (k *KafkaSink) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return k.CloseContext(ctx)
}
