// Package sensor is rasentry's pipeline: it reads packets from a capture
// source, shards them over workers by host pair, runs each worker's
// classifier, and turns the classifier's events into records for the sinks.
package sensor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/rasentry/rasentry/alert"
	"github.com/rasentry/rasentry/capture"
	"github.com/rasentry/rasentry/classify"
	"github.com/rasentry/rasentry/rules"
)

// Config is what a sensor is built from.
type Config struct {
	Classify classify.Config
	// Workers is the number of classifier goroutines (1 to MaxWorkers); 1 (the default)
	// gives deterministic output order.
	Workers int
	// Pipeline reads on a goroutine of its own even with one worker, so
	// reading the file and classifying overlap (replay); the output is the
	// same as without it.
	Pipeline bool
	Records  alert.Options
	Sink     alert.Sink
	Logger   *zap.Logger
	// Progress, when set, is called about every second of wall time with the
	// packets and bytes read so far from the current source.
	Progress func(packets, bytes uint64)
	// Policy decides what labelled flows and sessions get; nil writes flow
	// records only.
	Policy *rules.Engine
	// Blocker enforces block decisions; nil means nothing is enforced and
	// block decisions are alerts with action "allowed".
	Blocker Blocker
	// Outputs, when set, encodes flow records in the configured format and
	// reports the sinks' counters in stats.
	Outputs Outputs
	// StatsInterval is how often live and inline write a stats record (0: never).
	StatsInterval time.Duration
	// Reloads counts configuration reloads for the stats.
	Reloads *ReloadCounter
}

// MaxWorkers bounds Config.Workers.
const MaxWorkers = 64

// Sensor runs the pipeline.
type Sensor struct {
	cfg     Config
	log     *zap.Logger
	shared  *classify.Shared
	workers []*worker
	files   int
	errors  int
	packets uint64
	bytes   uint64
	elapsed time.Duration
	// kernel counters of live sources
	kernelDrops, kernelFreezes uint64
	failed                     atomic.Bool
	started                    time.Time
	snapshot                   atomic.Pointer[alert.Stats] // a sink failed: stop reading
	sinkErr                    error
	errOnce                    sync.Once
}

// New returns a sensor.
func New(cfg Config) *Sensor {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	cfg.Workers = min(max(cfg.Workers, 1), MaxWorkers)
	s := &Sensor{cfg: cfg, log: cfg.Logger, started: time.Now()}
	s.shared = classify.NewShared(cfg.Classify)
	cc := cfg.Classify
	cc.Shared = s.shared
	for i := 0; i < cfg.Workers; i++ {
		wc := cc
		if cc.Detectors == nil {
			wc.Detectors = classify.DefaultDetectors()
		}
		s.workers = append(s.workers, &worker{s: s, cls: classify.New(wc)})
	}
	return s
}

// Replay reads src to its end (or until ctx is cancelled), then ends every
// live flow so each gets its record. Packets read before an error are
// processed and reported; the error names the source, the packet number and
// the problem.
func (s *Sensor) Replay(ctx context.Context, src capture.Source) error {
	start := time.Now()
	s.files++
	var readErr error
	if len(s.workers) == 1 && !s.cfg.Pipeline {
		readErr = s.readSerial(ctx, src)
	} else {
		if s.cfg.Outputs != nil {
			for _, w := range s.workers {
				w.startOutput()
			}
		}
		readErr = s.readParallel(ctx, src)
	}
	var end time.Time
	for _, w := range s.workers {
		if t := w.cls.Now(); t.After(end) {
			end = t
		}
	}
	for _, w := range s.workers {
		w.cls.Flush(end, w.handle)
		w.stopOutput()
	}
	st := src.Stats()
	s.packets += st.Packets
	s.bytes += st.Bytes
	s.elapsed += time.Since(start)
	if s.sinkErr != nil {
		return s.sinkErr
	}
	if errors.Is(readErr, io.EOF) {
		readErr = nil
	}
	if readErr != nil && !errors.Is(readErr, context.Canceled) {
		s.errors++
	}
	return readErr
}

// readSerial classifies on the reading goroutine.
func (s *Sensor) readSerial(ctx context.Context, src capture.Source) error {
	w := s.workers[0]
	tick := newTicker(s.cfg.Progress, src)
	for n := uint64(0); ; n++ {
		if n&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
			tick.maybe()
			if s.failed.Load() {
				return nil
			}
		}
		p, err := src.Next()
		if err != nil {
			return err
		}
		w.packet(p.Data, int(p.LinkType), p.Length, p.Time)
	}
}

// A batch is a run of packets read at once, handed to every worker; each
// handles the packets of its shard. The last worker done with it puts it
// back on the free list.
type batch struct {
	capture.Batch
	shards []uint8 // the worker of each packet (unused with one worker)
	refs   atomic.Int32
}

// batchBytes is the size of a batch's buffer: large enough that a regular
// file fills it with one read and a batch costs the workers one channel
// receive per few thousand packets.
const batchBytes = 1 << 20

// readParallel reads batches on this goroutine and shards their packets by
// host pair over the workers.
func (s *Sensor) readParallel(ctx context.Context, src capture.Source) error {
	nw := len(s.workers)
	nb := 2 + 2*nw
	free := make(chan *batch, nb)
	for i := 0; i < nb; i++ {
		free <- &batch{Batch: *capture.NewBatch(batchBytes)}
	}
	ins := make([]chan *batch, nw)
	var wg sync.WaitGroup
	for i, w := range s.workers {
		ins[i] = make(chan *batch, nb)
		wg.Add(1)
		go func(w *worker, me uint8, in <-chan *batch) {
			defer wg.Done()
			for b := range in {
				for i := 0; i < len(b.Packets); {
					i = w.batchFrom(b, me, i)
				}
				if b.refs.Add(-1) == 0 {
					free <- b
				}
				w.sendOutput()
			}
		}(w, uint8(i), ins[i])
	}
	tick := newTicker(s.cfg.Progress, src)
	var err error
	for {
		if err = ctx.Err(); err != nil {
			break
		}
		tick.maybe()
		if s.failed.Load() {
			break
		}
		b := <-free
		err = capture.ReadBatch(src, &b.Batch)
		if len(b.Packets) == 0 {
			free <- b
		} else {
			if nw > 1 {
				b.shards = b.shards[:0]
				for i := range b.Packets {
					b.shards = append(b.shards, uint8(classify.ShardKey(b.Bytes(i), int(b.Packets[i].LinkType))%uint32(nw)))
				}
			}
			b.refs.Store(int32(nw))
			for _, in := range ins {
				in <- b
			}
		}
		if err != nil {
			break
		}
	}
	for _, in := range ins {
		close(in)
	}
	wg.Wait()
	return err
}

// ticker calls a progress function about once a second.
type ticker struct {
	fn   func(uint64, uint64)
	src  capture.Source
	last time.Time
}

func newTicker(fn func(uint64, uint64), src capture.Source) *ticker {
	return &ticker{fn: fn, src: src, last: time.Now()}
}

func (t *ticker) maybe() {
	if t.fn != nil && time.Since(t.last) > time.Second {
		st := t.src.Stats()
		t.fn(st.Packets, st.Bytes)
		t.last = time.Now()
	}
}

// sinkFailed records the first sink error and stops the reader.
func (s *Sensor) sinkFailed(err error) {
	s.errOnce.Do(func() {
		s.sinkErr = err
		s.failed.Store(true)
		s.log.Error("sink failed", zap.Error(err))
	})
}

// Summary returns what the sensor has done so far.
func (s *Sensor) Summary() Summary {
	sum := Summary{Files: s.files, Errors: s.errors, Packets: s.packets, Bytes: s.bytes, Elapsed: s.elapsed,
		KernelDrops: s.kernelDrops, KernelFreezes: s.kernelFreezes}
	if s.cfg.Policy != nil {
		st := s.cfg.Policy.Stats()
		sum.Policy = &st
	}
	for _, w := range s.workers {
		sum.add(&w.sum)
		sum.Classifier.Add(w.cls.Stats())
	}
	return sum
}

// worker is one classifier and the handling of its events.
type worker struct {
	s   *Sensor
	cls *classify.Classifier
	sum Summary

	// The output stage (replay with a reader goroutine): records go in
	// order to a goroutine that encodes plain flow records and writes, so
	// that the worker only classifies. nil out: the worker writes itself.
	out     chan *outBatch
	outFree chan *outBatch
	outDone chan struct{}
	pending *outBatch
}

// outItem is an encoded record, or (rec nil) an ended flow to encode.
type outItem struct {
	rec  *alert.Encoded
	flow classify.Flow
}

type outBatch struct{ items []outItem }

const outBatchItems = 256

// startOutput starts the worker's output goroutine.
func (w *worker) startOutput() {
	w.out = make(chan *outBatch, 4)
	w.outFree = make(chan *outBatch, 8)
	w.outDone = make(chan struct{})
	for i := 0; i < cap(w.outFree); i++ {
		w.outFree <- &outBatch{items: make([]outItem, 0, outBatchItems)}
	}
	w.pending = <-w.outFree
	go func() {
		defer close(w.outDone)
		for ob := range w.out {
			for i := range ob.items {
				it := &ob.items[i]
				if it.rec != nil {
					w.writeNow(it.rec)
				} else {
					w.writeNow(w.flowRecord(&it.flow))
				}
				*it = outItem{}
			}
			ob.items = ob.items[:0]
			w.outFree <- ob
		}
	}()
}

// queue hands it to the output goroutine.
func (w *worker) queue(it outItem) {
	w.pending.items = append(w.pending.items, it)
	if len(w.pending.items) == outBatchItems {
		w.sendOutput()
	}
}

// sendOutput hands the pending records to the output goroutine.
func (w *worker) sendOutput() {
	if w.out == nil || len(w.pending.items) == 0 {
		return
	}
	w.out <- w.pending
	w.pending = <-w.outFree
}

// stopOutput writes what is pending and waits for the output goroutine;
// the worker writes itself from then on.
func (w *worker) stopOutput() {
	if w.out == nil {
		return
	}
	w.sendOutput()
	close(w.out)
	<-w.outDone
	w.out = nil
}

func (w *worker) packet(data []byte, link, wire int, ts time.Time) {
	// Traffic is written by attackers: a parser bug must cost one packet,
	// not the process and the records it has not written yet. The panic is
	// counted and logged (rate-limited) with the packet's time.
	defer func() {
		if r := recover(); r != nil {
			w.panicked(r, ts, len(data))
		}
	}()
	_, events := w.cls.Packet(data, link, wire, ts)
	if len(events) > 0 {
		w.handle(events)
	}
}

// batchFrom handles the packets of b from the i-th on that are the
// worker's (shard me) and returns len(b.Packets), or, when one of them
// panics, skips that packet (as packet does) and returns the index of the
// next. One deferred recover per batch instead of one per packet.
func (w *worker) batchFrom(b *batch, me uint8, i int) (next int) {
	defer func() {
		if r := recover(); r != nil {
			p := &b.Packets[i]
			w.panicked(r, p.Time, p.Len)
			next = i + 1
		}
	}()
	sharded := len(w.s.workers) > 1
	for ; i < len(b.Packets); i++ {
		if sharded && b.shards[i] != me {
			continue
		}
		p := &b.Packets[i]
		if _, events := w.cls.Packet(b.Data[p.Off:p.Off+p.Len], int(p.LinkType), p.Length, p.Time); len(events) > 0 {
			w.handle(events)
		}
	}
	return i
}

func (w *worker) panicked(r any, ts time.Time, n int) {
	w.sum.Panics++
	if w.sum.Panics <= 10 || w.sum.Panics%1000 == 0 {
		w.s.log.Error("packet handling panicked; packet skipped", zap.Any("panic", r),
			zap.Time("packet_time", ts), zap.Int("bytes", n), zap.Uint64("panics", w.sum.Panics))
	}
}

// handle turns classifier events into records.
func (w *worker) handle(events []classify.Event) {
	for i := range events {
		ev := &events[i]
		switch ev.Kind {
		case classify.EventFlowEnded:
			w.flowEnded(ev.Flow)
		case classify.EventLabelled:
			w.decideFlow(ev.Flow, ev.Dir, ev.Time)
		case classify.EventSession:
			w.sum.Sessions++
			if w.sum.SessionModes == nil {
				w.sum.SessionModes = map[string]uint64{}
			}
			w.sum.SessionModes[string(ev.Session.Mode)]++
			w.write(alert.NewSessionRecord(ev.Session, ev.Flow, ev.Time, w.s.cfg.Records))
			w.decideSession(ev.Session, ev.Flow, ev.Dir, ev.Time)
		}
	}
}

func (w *worker) flowEnded(f *classify.Flow) {
	w.sum.Flows++
	if f.Reason == classify.EndEvicted {
		w.sum.FlowsEvicted++
	}
	for _, l := range f.Labels.Labels() {
		w.sum.countLabel(l)
	}
	if w.out != nil && f.Extension() == nil {
		// Most ended flows carry nothing but counters: their records are
		// encoded on the output goroutine, from a copy.
		w.queue(outItem{flow: f.Detached()})
		return
	}
	w.write(w.flowRecord(f))
}

// flowRecord returns the record of ended flow f. Flow records are the bulk
// of the output: they are encoded straight from the flow into one buffer
// (alert.AppendFlow), not built as a record.
func (w *worker) flowRecord(f *classify.Flow) alert.Record {
	if o := w.s.cfg.Outputs; o != nil {
		if e, err := o.Encoder().EncodeFlow(f, w.s.cfg.Records); err == nil {
			return e
		}
	}
	b, err := alert.AppendFlow(make([]byte, 0, 512), f, w.s.cfg.Records)
	if err != nil {
		return alert.NewFlowRecord(f, w.s.cfg.Records)
	}
	return &alert.Encoded{Type: "flow", Time: f.Last(), JSON: b}
}

// write writes r, through the output goroutine when there is one (so that
// records keep their order).
func (w *worker) write(r alert.Record) {
	if w.out == nil {
		w.writeNow(r)
		return
	}
	// r may point into flows and sessions the worker goes on changing:
	// it is encoded here, only the writing waits.
	e, err := w.s.cfg.Outputs.Encoder().Encode(r)
	if err != nil {
		w.writeNow(r) // the sink counts and logs what it cannot encode
		return
	}
	w.queue(outItem{rec: e})
}

func (w *worker) writeNow(r alert.Record) {
	sink := w.s.cfg.Sink
	if sink == nil || w.s.failed.Load() {
		return
	}
	if err := sink.Write(r); err != nil {
		w.s.sinkFailed(fmt.Errorf("sensor: writing %s record: %w", r.EventType(), err))
	}
}
