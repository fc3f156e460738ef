package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// kafkaRecord is a record with a key, like an alert's community_id.
type kafkaRecord struct {
	Seq         int    `json:"seq"`
	CommunityID string `json:"community_id"`
}

func (kafkaRecord) EventType() string { return "alert" }

func kafkaRec(i int) *Encoded {
	e, _ := eveEncoder.Encode(kafkaRecord{Seq: i, CommunityID: fmt.Sprintf("1:flow%02d", i%16)})
	e.Key = fmt.Sprintf("1:flow%02d", i%16)
	return e
}

// consumeAll reads the topic from the start until want distinct records
// arrived or the time is up; it returns every seq read, duplicates
// included, and the seqs per partition in the order read.
func consumeAll(t *testing.T, addr, topic string, want int, d time.Duration) (all []int, byPart map[int32][]int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	byPart = map[int32][]int{}
	seen := map[int]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for len(seen) < want && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			var x kafkaRecord
			if err := json.Unmarshal(r.Value, &x); err != nil {
				t.Fatalf("record %q: %v", r.Value, err)
			}
			if string(r.Key) != x.CommunityID {
				t.Fatalf("key %q, want the community_id %q", r.Key, x.CommunityID)
			}
			if len(r.Headers) != 1 || r.Headers[0].Key != "event_type" || string(r.Headers[0].Value) != "alert" {
				t.Fatalf("headers %v", r.Headers)
			}
			all = append(all, x.Seq)
			byPart[r.Partition] = append(byPart[r.Partition], x.Seq)
			seen[x.Seq] = true
		})
	}
	return all, byPart
}

func startKafka(t *testing.T, port int, dataDir string) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.DataDir(dataDir), kfake.SeedTopics(4, "rasentry"))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	return c
}

// The broker goes away in the middle of a run and comes back (a restart of
// the same broker, its log on disk). Records written meanwhile wait in the
// queue and the spool; afterwards every one of them is in the topic, each
// flow's records in order. Delivery is at least once: a produce that timed
// out while the broker had already written it is sent again, so
// duplicates are counted (and allowed), losses are not.
func TestKafkaBrokerOutage(t *testing.T) {
	port := freePort(t, "tcp")
	dataDir := t.TempDir()
	cluster := startKafka(t, port, dataDir)
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	ks, err := NewKafkaSink("siem", KafkaConfig{Brokers: []string{addr}, Topic: "rasentry", DeliveryTimeout: 2 * time.Second},
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Buffered(ks, BufferOptions{Name: "siem", Type: SinkKafka, QueueSize: 200, BatchSize: 100,
		SpoolDir: t.TempDir(), RetryMin: 50 * time.Millisecond, RetryMax: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	const n = 6000
	var slowest time.Duration
	write := func(from, to int) {
		for i := from; i < to; i++ {
			start := time.Now()
			b.Write(kafkaRec(i))
			slowest = max(slowest, time.Since(start))
			if i%20 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}
	write(0, 2000)
	waitFor(t, "the first records to reach the broker", 20*time.Second, func() bool { return b.Stats().Delivered > 0 })

	cluster.Close() // the outage
	write(2000, 4000)
	// The outage lasts until attempts have failed (the client gives up at
	// the delivery timeout) and the spool has taken records.
	waitFor(t, "two failed delivery attempts", 30*time.Second, func() bool { return b.Stats().Errors >= 2 })
	write(4000, 4500)
	during := b.Stats()
	cluster = startKafka(t, port, dataDir)
	defer cluster.Close()
	write(4500, n)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := b.CloseContext(ctx); err != nil {
		t.Fatalf("close: %v", err)
	}
	st := b.Stats()
	t.Logf("during the outage: queue %d, spool %d records (%d bytes), %d failed attempts, last error: %s",
		during.QueueDepth, during.SpoolRecords, during.SpoolBytes, during.Errors, during.LastError)
	if during.Errors == 0 || during.SpoolRecords == 0 {
		t.Errorf("the outage did not show: %+v", during)
	}
	if !strings.Contains(during.LastError, "alert: sink siem: kafka "+addr) {
		t.Errorf("the error does not name the sink and the broker: %s", during.LastError)
	}
	if slowest > 2*time.Second {
		t.Errorf("a Write took %s during the outage", slowest)
	}

	all, byPart := consumeAll(t, addr, "rasentry", n, 60*time.Second)
	seen := map[int]int{}
	for _, s := range all {
		seen[s]++
	}
	dups := len(all) - len(seen)
	var missing []int
	for i := range n {
		if seen[i] == 0 {
			missing = append(missing, i)
		}
	}
	t.Logf("Kafka outage: sent %d, spooled %d, delivered %d (sink count), dropped %d; in the topic %d messages, %d distinct, %d duplicates, %d missing; %d failed attempts",
		n, st.Spooled, st.Delivered, st.Dropped.Total(), len(all), len(seen), dups, len(missing), st.Errors)
	if len(missing) > 0 {
		t.Fatalf("%d records never arrived: %v; last error %s", len(missing), missing[:min(20, len(missing))], st.LastError)
	}
	t.Logf("last error: %s", st.LastError)
	if st.Dropped.Total() != 0 || st.Delivered < n {
		t.Errorf("stats %+v", st)
	}
	// Each key maps to one partition; in it, first arrivals are in order.
	for p, seqs := range byPart {
		first := map[int]bool{}
		last := -1
		for _, s := range seqs {
			if first[s] {
				continue // a duplicate
			}
			first[s] = true
			if s < last {
				t.Errorf("partition %d: %d after %d", p, s, last)
				break
			}
			last = s
		}
	}
}

func TestKafkaConfigErrors(t *testing.T) {
	for _, c := range []struct {
		cfg  KafkaConfig
		want string
	}{
		{KafkaConfig{}, "alert: sink k: brokers: missing"},
		{KafkaConfig{Brokers: []string{"a:1"}, Acks: "some"}, `alert: sink k: acks "some": want all, leader or none`},
		{KafkaConfig{Brokers: []string{"a:1"}, Compression: "brotli"}, `alert: sink k: compression "brotli"`},
		{KafkaConfig{Brokers: []string{"a:1"}, SASL: SASLConfig{Mechanism: "gssapi"}}, `alert: sink k: sasl.mechanism "gssapi"`},
		{KafkaConfig{Brokers: []string{"a:1"}, SASL: SASLConfig{Mechanism: "plain"}}, `alert: sink k: sasl.username: missing`},
		{KafkaConfig{Brokers: []string{"a:1"}, TLS: TLSConfig{Enabled: true, CertFile: "c"}}, `alert: sink k: tls: cert_file and key_file go together`},
		{KafkaConfig{Brokers: []string{"a:1"}, TLS: TLSConfig{Enabled: true, CAFile: "/nonexistent/ca.pem"}}, `alert: sink k: tls.ca_file: open /nonexistent/ca.pem`},
		{KafkaConfig{Brokers: []string{"a:1"}, TopicByType: map[string]string{"dns": "x"}}, `alert: sink k: topic_by_type: "dns" is not an event type`},
	} {
		_, err := NewKafkaSink("k", c.cfg)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want %s", c.cfg, err, c.want)
		}
	}
}

// SASL/SCRAM against kfake's authentication, with topic_by_type.
func TestKafkaSASL(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "rasentry", "s3cret"),
		kfake.SeedTopics(1, "rasentry", "rasentry-flows"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addr := c.ListenAddrs()[0]
	ks, err := NewKafkaSink("siem", KafkaConfig{Brokers: []string{addr}, SASL: SASLConfig{Mechanism: "scram-sha-256", Username: "rasentry", Password: "s3cret"},
		TopicByType: map[string]string{"flow": "rasentry-flows"}, DeliveryTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	failed, err := ks.WriteBatch([]Record{kafkaRec(1), rec(2)})
	if err != nil || len(failed) != 0 {
		t.Fatalf("produce: %v (%d failed)", err, len(failed))
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.SASL(scram.Auth{User: "rasentry", Pass: "s3cret"}.AsSha256Mechanism()), kgo.ConsumeTopics("rasentry", "rasentry-flows"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	topics := map[string]int{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for len(topics) < 2 && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { topics[r.Topic]++ })
	}
	if topics["rasentry"] != 1 || topics["rasentry-flows"] != 1 {
		t.Errorf("records per topic %v", topics)
	}
	// A wrong password fails delivery with an error naming the sink.
	bad, err := NewKafkaSink("siem", KafkaConfig{Brokers: []string{addr}, SASL: SASLConfig{Mechanism: "scram-sha-256", Username: "rasentry", Password: "wrong"},
		DeliveryTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	failed, err = bad.WriteBatch([]Record{kafkaRec(3)})
	if err == nil || len(failed) != 1 || !strings.HasPrefix(err.Error(), "alert: sink siem: kafka ") {
		t.Errorf("wrong password: %v (%d failed)", err, len(failed))
	}
}
