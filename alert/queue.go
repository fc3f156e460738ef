package alert

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// BufferOptions configure a Buffered sink.
type BufferOptions struct {
	Name string // the sink's name in errors, logs and metrics
	Type string // the sink's type (stdout, file, syslog, kafka), for stats

	// Encoder writes records before they are queued (nil: EVE).
	Encoder *Encoder

	// QueueSize bounds the memory queue, in records (default 10000).
	QueueSize int
	// BatchSize is the most records handed to the sink at once (default 256).
	BatchSize int
	// Block makes Write wait for room in the memory queue instead of
	// spooling or dropping: the back-pressure a replay wants from its
	// output, never for live traffic.
	Block bool

	// SpoolDir holds the on-disk spool ("": no spool; records past the
	// memory queue are dropped and counted).
	SpoolDir string
	// SpoolMaxBytes bounds the spool (default 256 MiB).
	SpoolMaxBytes int64
	// SpoolSegmentBytes is the size of one spool file (default
	// SpoolMaxBytes/16, between 64 KiB and 16 MiB); delivered records free
	// their space a whole segment at a time.
	SpoolSegmentBytes int64

	// RetryMin and RetryMax bound the wait between delivery attempts
	// (doubling from RetryMin; defaults 100 ms and 30 s).
	RetryMin, RetryMax time.Duration
	// FlushInterval is how often a sink that buffers (a file) is flushed
	// while records keep coming (default 1 s); an idle sink is flushed at
	// once.
	FlushInterval time.Duration

	// Logger receives delivery errors and drops, at most once per
	// LogInterval of each kind (default 10 s), with running counts.
	Logger      *zap.Logger
	LogInterval time.Duration
}

func (o *BufferOptions) defaults() {
	if o.QueueSize <= 0 {
		o.QueueSize = 10000
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 256
	}
	if o.SpoolMaxBytes <= 0 {
		o.SpoolMaxBytes = 256 << 20
	}
	if o.SpoolSegmentBytes <= 0 {
		o.SpoolSegmentBytes = min(max(o.SpoolMaxBytes/16, 64<<10), 16<<20)
	}
	if o.RetryMin <= 0 {
		o.RetryMin = 100 * time.Millisecond
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = max(30*time.Second, o.RetryMin)
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = time.Second
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.LogInterval <= 0 {
		o.LogInterval = 10 * time.Second
	}
	if o.Encoder == nil {
		o.Encoder = NewEncoder(FormatEVE, EncoderOptions{})
	}
}

// BufferedSink puts a bounded queue, and optionally a bounded on-disk
// spool, in front of a sink, and delivers from them on its own goroutine,
// so that a slow or dead destination never stalls packet processing:
//
//   - Write encodes the record and queues it in memory; it never waits
//     (unless Block is set) and never fails because of the destination.
//   - When the memory queue is full, records go to the spool; from then on
//     every record goes to the spool until it has been delivered, so that
//     delivery keeps the order records were written in.
//   - A failed delivery is retried, with backoff, until it succeeds; the
//     records behind it wait. A sink that fails part of a batch (Kafka)
//     has only that part retried.
//   - Past the queue and the spool, a record is dropped, counted by
//     reason, and logged (rate-limited).
//   - Records left in the spool by a previous run are delivered first.
//
// Delivery is at least once: a record is repeated only when a destination
// took it but failed to say so (a Kafka produce that timed out), or when
// the process died between a delivery and the spool's cursor update.
type BufferedSink struct {
	name, typ string
	log       *zap.Logger
	enc       atomic.Pointer[Encoder]

	mu       sync.Mutex
	space    *sync.Cond // Block: a writer waits for room
	ring     []*Encoded
	head, n  int
	spooling bool // the spool holds records older than any new one
	closed   bool
	spool    *spool
	spoolDir string
	opts     atomic.Pointer[BufferOptions] // replaced whole on Reconfigure
	lastErr  atomic.Pointer[string]

	wake    chan struct{} // there is work, or Close was called
	replace chan Sink     // a new destination (reload)
	abort   chan struct{} // Close's deadline passed: stop retrying
	done    chan struct{} // the delivery goroutine has ended
	// inner is the destination: used by the delivery goroutine, which
	// alone replaces it (under innerMu, so Reopen can read it meanwhile).
	inner   Sink
	innerMu sync.Mutex

	written, delivered, spooled, failures atomic.Uint64
	drops                                 dropCounters
	lastLog                               [3]atomic.Int64 // unix ns of the last log line of each kind
}

type dropCounters struct {
	queueFull, spoolFull, spoolError, corrupt, rejected, encode, closed atomic.Uint64
}

func (d *dropCounters) snapshot() DropCounts {
	return DropCounts{QueueFull: d.queueFull.Load(), SpoolFull: d.spoolFull.Load(), SpoolError: d.spoolError.Load(),
		Corrupt: d.corrupt.Load(), Rejected: d.rejected.Load(), Encode: d.encode.Load(), Closed: d.closed.Load()}
}

// Buffered wraps inner in a queue and, when o.SpoolDir is set, a spool,
// and starts delivering. The spool's leftovers from a previous run are
// delivered before anything new. It fails only when the spool cannot be
// opened.
func Buffered(inner Sink, o BufferOptions) (*BufferedSink, error) {
	o.defaults()
	if o.Name == "" {
		o.Name = "sink"
	}
	b := &BufferedSink{
		name: o.Name, typ: o.Type, log: o.Logger.With(zap.String("sink", o.Name)),
		ring: make([]*Encoded, o.QueueSize), spoolDir: o.SpoolDir, inner: inner,
		wake: make(chan struct{}, 1), replace: make(chan Sink, 1),
		abort: make(chan struct{}), done: make(chan struct{}),
	}
	b.space = sync.NewCond(&b.mu)
	b.enc.Store(o.Encoder)
	b.opts.Store(&o)
	if o.SpoolDir != "" {
		sp, err := openSpool(o.SpoolDir, o.Name, o.SpoolMaxBytes, o.SpoolSegmentBytes, b.spoolCorrupt)
		if err != nil {
			return nil, err
		}
		b.spool = sp
		if _, n := sp.stats(); n > 0 {
			b.spooling = true
			b.log.Info("delivering records spooled by a previous run", zap.Int64("records", n), zap.String("spool", o.SpoolDir))
		}
	}
	go b.run()
	return b, nil
}

// Name returns the sink's name.
func (b *BufferedSink) Name() string { return b.name }

// Write queues r for delivery. It does not wait for the destination and
// returns nil even when the record had to be dropped (that is counted and
// logged): a sink's trouble must not stop packet processing.
func (b *BufferedSink) Write(r Record) error {
	b.written.Add(1)
	e, err := b.enc.Load().Encode(r)
	if err != nil {
		b.drops.encode.Add(1)
		b.logEvery(0, "record dropped: cannot encode it", zap.Error(err))
		return nil
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		b.drops.closed.Add(1)
		b.logEvery(0, "record dropped: sink closed", zap.String("event_type", e.Type))
		return nil
	}
	block := b.opts.Load().Block
	if block {
		for !b.closed && !b.spooling && b.n == len(b.ring) {
			b.space.Wait()
		}
	}
	if !b.spooling && b.n < len(b.ring) {
		b.ring[(b.head+b.n)%len(b.ring)] = e
		b.n++
		b.mu.Unlock()
		b.signal()
		return nil
	}
	if b.closed && block {
		b.mu.Unlock()
		b.drops.closed.Add(1)
		return nil
	}
	b.toSpoolLocked(e)
	b.mu.Unlock()
	b.signal()
	return nil
}

// toSpoolLocked spools e, or drops and counts it. b.mu is held.
func (b *BufferedSink) toSpoolLocked(e *Encoded) {
	if b.spool == nil {
		b.drops.queueFull.Add(1)
		b.logEvery(0, "record dropped: memory queue full and no spool configured",
			zap.Int("queue_size", len(b.ring)), zap.Uint64("dropped_queue_full", b.drops.queueFull.Load()))
		return
	}
	err := b.spool.append(e)
	switch {
	case err == nil:
		if !b.spooling {
			b.logEvery(2, "memory queue full: spooling records to disk until the destination catches up",
				zap.Int("queue_size", len(b.ring)), zap.String("spool", b.spoolDir))
		}
		b.spooling = true
		b.spooled.Add(1)
	case errors.Is(err, ErrSpoolFull):
		b.drops.spoolFull.Add(1)
		size, _ := b.spool.stats()
		b.logEvery(0, "record dropped: memory queue and spool full",
			zap.Int64("spool_bytes", size), zap.Int64("spool_max_bytes", b.opts.Load().SpoolMaxBytes),
			zap.Uint64("dropped_spool_full", b.drops.spoolFull.Load()))
	default:
		b.drops.spoolError.Add(1)
		b.setLastErr(err)
		b.logEvery(0, "record dropped: cannot write the spool", zap.Error(err),
			zap.Uint64("dropped_spool_error", b.drops.spoolError.Load()))
	}
}

func (b *BufferedSink) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// logEvery logs at most once per LogInterval for kind (0 drops, 1
// delivery errors, 2 spooling starts).
func (b *BufferedSink) logEvery(kind int, msg string, fields ...zap.Field) {
	now := time.Now().UnixNano()
	last := b.lastLog[kind].Load()
	if last != 0 && now-last < int64(b.opts.Load().LogInterval) || !b.lastLog[kind].CompareAndSwap(last, now) {
		return
	}
	b.log.Warn(msg, fields...)
}

func (b *BufferedSink) spoolCorrupt(msg string) {
	b.drops.corrupt.Add(1)
	b.log.Error("spooled records damaged: "+msg, zap.String("spool", b.spoolDir))
}

func (b *BufferedSink) setLastErr(err error) {
	msg := err.Error()
	b.lastErr.Store(&msg)
}

// run delivers records until the sink is closed and drained, or Close's
// deadline passes.
func (b *BufferedSink) run() {
	defer close(b.done)
	lastFlush := time.Now()
	dirty := false
	for {
		batch, pos, fromSpool, ok := b.next(&dirty)
		if !ok {
			return
		}
		undelivered := b.deliver(batch)
		if undelivered != nil {
			b.saveUndelivered(undelivered, fromSpool)
			return
		}
		dirty = true
		if fromSpool {
			if err := b.spool.commit(pos); err != nil {
				b.setLastErr(err)
				b.logEvery(1, "spool cursor not saved: these records may be delivered again after a restart", zap.Error(err))
			}
		}
		if time.Since(lastFlush) >= b.opts.Load().FlushInterval {
			b.flush()
			dirty = false
			lastFlush = time.Now()
		}
	}
}

// next waits for the next batch: from the memory queue first, then from
// the spool. It returns ok=false when the sink is closed and nothing is
// left, or when Close's deadline passed.
func (b *BufferedSink) next(dirty *bool) (batch []Record, pos spoolPos, fromSpool, ok bool) {
	for {
		select {
		case s := <-b.replace:
			b.swapInner(s)
		case <-b.abort:
			b.mu.Lock()
			b.spoolRingLocked()
			b.mu.Unlock()
			return nil, pos, false, false
		default:
		}
		batchSize := b.opts.Load().BatchSize
		b.mu.Lock()
		if b.n > 0 {
			k := min(b.n, batchSize)
			batch = make([]Record, k)
			for i := range k {
				j := (b.head + i) % len(b.ring)
				batch[i] = b.ring[j]
				b.ring[j] = nil
			}
			b.head = (b.head + k) % len(b.ring)
			b.n -= k
			b.space.Broadcast()
			b.mu.Unlock()
			return batch, pos, false, true
		}
		spooling := b.spooling
		b.mu.Unlock()
		if spooling {
			recs, p := b.spool.read(batchSize)
			if len(recs) > 0 {
				batch = make([]Record, len(recs))
				for i, e := range recs {
					batch[i] = e
				}
				return batch, p, true, true
			}
			b.mu.Lock()
			if b.spool.empty() {
				// Writers append to the spool only under b.mu: it is truly
				// empty, and new records may go to the memory queue again.
				b.spooling = false
				if err := b.spool.commit(p); err != nil {
					b.setLastErr(err)
				}
				b.log.Info("spool drained: delivering from memory again")
			}
			b.mu.Unlock()
			continue
		}
		b.mu.Lock()
		closed := b.closed && b.n == 0 && !b.spooling
		b.mu.Unlock()
		if closed {
			return nil, pos, false, false
		}
		if *dirty {
			b.flush()
			*dirty = false
		}
		select {
		case <-b.wake:
		case s := <-b.replace:
			b.swapInner(s)
		case <-b.abort:
		}
	}
}

// deliver hands batch to the destination until it is all delivered, and
// returns nil; or, when Close's deadline passes first, what is left.
func (b *BufferedSink) deliver(batch []Record) []Record {
	pending := batch
	o := b.opts.Load()
	wait := o.RetryMin
	attempts := 0
	for {
		n, failed, err := b.writeInner(pending)
		b.delivered.Add(uint64(n))
		if len(failed) == 0 && err == nil {
			if attempts > 0 {
				b.log.Info("destination recovered", zap.Int("failed_attempts", attempts))
			}
			return nil
		}
		if err == nil {
			err = fmt.Errorf("alert: sink %s: %d records not delivered", b.name, len(failed))
		}
		attempts++
		b.failures.Add(1)
		b.setLastErr(err)
		b.logEvery(1, "delivery failed; retrying", zap.Error(err), zap.Int("attempt", attempts),
			zap.Duration("retry_in", wait), zap.Int("undelivered", len(failed)))
		pending = failed
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case s := <-b.replace:
			t.Stop()
			b.swapInner(s)
		case <-b.abort:
			t.Stop()
			return pending
		}
		o = b.opts.Load()
		wait = max(min(wait*2, o.RetryMax), o.RetryMin)
	}
}

// writeInner delivers rs to the destination and returns how many it
// delivered and those to retry. Records the destination rejects for good
// are dropped and counted.
func (b *BufferedSink) writeInner(rs []Record) (delivered int, failed []Record, err error) {
	if bw, ok := b.inner.(BatchWriter); ok {
		failed, err = bw.WriteBatch(rs)
		var rej *RejectedError
		if errors.As(err, &rej) {
			b.rejected(len(rej.Records), rej)
			if len(failed) == 0 {
				err = nil
			}
			return len(rs) - len(failed) - len(rej.Records), failed, err
		}
		return len(rs) - len(failed), failed, err
	}
	for i, r := range rs {
		if err := b.inner.Write(r); err != nil {
			var rej *RejectedError
			if errors.As(err, &rej) {
				b.rejected(1, rej)
				continue
			}
			return delivered, rs[i:], err
		}
		delivered++
	}
	return delivered, nil, nil
}

func (b *BufferedSink) rejected(n int, err error) {
	b.drops.rejected.Add(uint64(n))
	b.setLastErr(err)
	b.logEvery(0, "record dropped: the destination rejected it", zap.Error(err), zap.Int("records", n),
		zap.Uint64("dropped_rejected", b.drops.rejected.Load()))
}

// RejectedError is a sink's answer for records its destination will
// never take (too large for a datagram, refused by the broker as
// invalid): retrying cannot help, so they are dropped and counted
// instead of holding up the records behind them.
type RejectedError struct {
	Records []Record // for WriteBatch: the records rejected (not among the failed ones)
	Err     error
}

// Error returns the reason.
func (e *RejectedError) Error() string { return e.Err.Error() }

// Unwrap returns the reason.
func (e *RejectedError) Unwrap() error { return e.Err }

// Reject marks err as a permanent refusal of rs (of the record being
// written, for Write).
func Reject(err error, rs ...Record) error { return &RejectedError{Records: rs, Err: err} }

func (b *BufferedSink) flush() {
	if f, ok := b.inner.(Flusher); ok {
		if err := f.Flush(); err != nil {
			b.failures.Add(1)
			b.setLastErr(err)
			b.logEvery(1, "flush failed; retrying", zap.Error(err))
		}
	}
}

// swapInner makes s the destination; the old one is flushed and closed.
func (b *BufferedSink) swapInner(s Sink) {
	old := b.inner
	b.innerMu.Lock()
	b.inner = s
	b.innerMu.Unlock()
	if old == nil || old == s {
		return
	}
	if f, ok := old.(Flusher); ok {
		_ = f.Flush()
	}
	if err := old.Close(); err != nil {
		b.log.Warn("closing the replaced destination", zap.Error(err))
	}
}

// saveUndelivered keeps what Close's deadline left undelivered: records
// read from the spool stay there (their cursor did not move); records from
// memory go to the spool, in front of what it holds, since they are older.
func (b *BufferedSink) saveUndelivered(rs []Record, fromSpool bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var es []*Encoded
	if !fromSpool {
		for _, r := range rs {
			es = append(es, r.(*Encoded))
		}
	}
	b.keepLocked(append(es, b.takeRingLocked()...), true)
}

// spoolRingLocked moves the memory queue to the spool (shutdown).
func (b *BufferedSink) spoolRingLocked() {
	b.keepLocked(b.takeRingLocked(), true)
}

// takeRingLocked empties the memory queue and returns its records, oldest first.
func (b *BufferedSink) takeRingLocked() []*Encoded {
	es := make([]*Encoded, 0, b.n)
	for b.n > 0 {
		es = append(es, b.ring[b.head])
		b.ring[b.head] = nil
		b.head = (b.head + 1) % len(b.ring)
		b.n--
	}
	b.space.Broadcast()
	return es
}

// keepLocked spools records that were in memory (shutdown, or a queue made
// smaller by a reload). They are older than anything in the spool, so they
// go in front of it; what does not fit is dropped and counted.
func (b *BufferedSink) keepLocked(es []*Encoded, closing bool) {
	if len(es) == 0 {
		return
	}
	if b.spool == nil {
		if closing {
			b.drops.closed.Add(uint64(len(es)))
		} else {
			b.drops.queueFull.Add(uint64(len(es)))
		}
		return
	}
	left, err := b.spool.prepend(es)
	if kept := len(es) - len(left); kept > 0 {
		b.spooled.Add(uint64(kept))
		b.spooling = true
	}
	switch {
	case err == nil:
	case errors.Is(err, ErrSpoolFull):
		b.drops.spoolFull.Add(uint64(len(left)))
	default:
		b.drops.spoolError.Add(uint64(len(left)))
		b.setLastErr(err)
		b.log.Error("records from memory could not be spooled", zap.Error(err), zap.Int("records", len(left)))
	}
}

// Reconfigure applies new options (a reload) and, when inner is not nil,
// makes it the destination from the next batch on (the old one is closed).
// The spool directory cannot change: that is a new sink.
func (b *BufferedSink) Reconfigure(inner Sink, o BufferOptions) error {
	o.defaults()
	if o.SpoolDir != b.spoolDir {
		return fmt.Errorf("alert: sink %s: the spool directory cannot change on reload (%q to %q)", b.name, b.spoolDir, o.SpoolDir)
	}
	b.enc.Store(o.Encoder)
	b.mu.Lock()
	if o.QueueSize != len(b.ring) {
		es := b.takeRingLocked()
		b.ring = make([]*Encoded, o.QueueSize)
		k := copy(b.ring, es)
		b.head, b.n = 0, k
		// A smaller queue: the newest records go to the spool, in front of
		// what it holds.
		b.keepLocked(es[k:], false)
	}
	if b.spool != nil {
		b.spool.mu.Lock()
		b.spool.maxBytes = o.SpoolMaxBytes
		b.spool.segBytes = o.SpoolSegmentBytes
		b.spool.mu.Unlock()
	}
	o.Name, o.Type = b.name, b.typ
	b.opts.Store(&o)
	b.mu.Unlock()
	if inner != nil {
		for {
			select {
			case b.replace <- inner:
				b.signal()
				return nil
			case old := <-b.replace:
				_ = old.Close() // superseded before it was used
			}
		}
	}
	return nil
}

// Reopen reopens the destination's file, if it writes one (SIGHUP after
// logrotate moved it).
func (b *BufferedSink) Reopen() error {
	b.innerMu.Lock()
	inner := b.inner
	b.innerMu.Unlock()
	if r, ok := inner.(Reopener); ok {
		return r.Reopen()
	}
	return nil
}

// Close delivers what is queued and spooled within 10 seconds; see CloseContext.
func (b *BufferedSink) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return b.CloseContext(ctx)
}

// CloseContext stops taking records, delivers what is queued and spooled
// until ctx is done, then moves what is left in memory to the spool (kept
// for the next start), closes the destination and reports what could not
// be delivered.
func (b *BufferedSink) CloseContext(ctx context.Context) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		<-b.done
		return nil
	}
	b.closed = true
	b.space.Broadcast()
	b.mu.Unlock()
	b.signal()
	var errs []error
	select {
	case <-b.done:
	case <-ctx.Done():
		close(b.abort)
		b.innerMu.Lock()
		inner := b.inner
		b.innerMu.Unlock()
		if in, ok := inner.(Interrupter); ok {
			in.Interrupt()
		}
		grace := time.NewTimer(2 * time.Second)
		select {
		case <-b.done:
			grace.Stop()
		case <-grace.C:
			// The destination is stuck inside a write (no deadline of its
			// own): give up on the batch it holds.
			b.mu.Lock()
			b.spoolRingLocked()
			b.mu.Unlock()
			return fmt.Errorf("alert: sink %s: still blocked writing to its destination after the close deadline; its last batch may be lost", b.name)
		}
	}
	// Drain a replacement that arrived too late to be used.
	select {
	case s := <-b.replace:
		_ = s.Close()
	default:
	}
	if f, ok := b.inner.(Flusher); ok {
		if err := f.Flush(); err != nil {
			errs = append(errs, err)
		}
	}
	if cc, ok := b.inner.(ContextCloser); ok {
		errs = append(errs, cc.CloseContext(ctx))
	} else if b.inner != nil {
		errs = append(errs, b.inner.Close())
	}
	if b.spool != nil {
		if size, n := b.spool.stats(); n > 0 {
			b.log.Warn("records kept in the spool for the next start", zap.Int64("records", n), zap.Int64("bytes", size), zap.String("spool", b.spoolDir))
		}
		errs = append(errs, b.spool.close())
	}
	if d := b.drops.closed.Load(); d > 0 {
		errs = append(errs, fmt.Errorf("alert: sink %s: %d records dropped at shutdown (no spool to keep them)", b.name, d))
	}
	return errors.Join(errs...)
}

// Stats returns the sink's counters.
func (b *BufferedSink) Stats() SinkStats {
	b.mu.Lock()
	st := SinkStats{Name: b.name, Type: b.typ, QueueDepth: b.n, QueueCapacity: len(b.ring)}
	b.mu.Unlock()
	if b.spool != nil {
		st.SpoolBytes, st.SpoolRecords = b.spool.stats()
		st.SpoolCapacity = b.opts.Load().SpoolMaxBytes
	}
	st.Written = b.written.Load()
	st.Delivered = b.delivered.Load()
	st.Spooled = b.spooled.Load()
	st.Dropped = b.drops.snapshot()
	st.Errors = b.failures.Load()
	if p := b.lastErr.Load(); p != nil {
		st.LastError = *p
	}
	return st
}

// SinkStats returns the sink's counters (StatsReporter).
func (b *BufferedSink) SinkStats() []SinkStats { return []SinkStats{b.Stats()} }
