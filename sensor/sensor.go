// Package sensor is rasentry's pipeline: it reads packets from a capture
// source, runs them through the classifier, and turns the classifier's
// events into records for the sinks.
package sensor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"

	"github.com/rasentry/rasentry/alert"
	"github.com/rasentry/rasentry/capture"
	"github.com/rasentry/rasentry/classify"
)

// Config is what a sensor is built from.
type Config struct {
	Classify classify.Config
	Records  alert.Options
	Sink     alert.Sink
	Logger   *zap.Logger
	// Progress, when set, is called about every second of wall time with the
	// packets and bytes read so far from the current source.
	Progress func(packets, bytes uint64)
}

// Sensor runs the pipeline. It is used from one goroutine.
type Sensor struct {
	cfg     Config
	cls     *classify.Classifier
	log     *zap.Logger
	summary Summary
	sinkErr error
}

// New returns a sensor.
func New(cfg Config) *Sensor {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	return &Sensor{cfg: cfg, cls: classify.New(cfg.Classify), log: cfg.Logger}
}

// Classifier returns the sensor's classifier (for stats).
func (s *Sensor) Classifier() *classify.Classifier { return s.cls }

// Replay reads src to its end (or until ctx is cancelled), then ends every
// live flow so each gets its record. Packets read before an error are
// processed and reported; the error names the source, the packet number and
// the problem.
func (s *Sensor) Replay(ctx context.Context, src capture.Source) error {
	start := time.Now()
	s.summary.Files++
	defer func() {
		st := src.Stats()
		s.summary.Packets += st.Packets
		s.summary.Bytes += st.Bytes
		s.summary.Elapsed += time.Since(start)
	}()
	var readErr error
	lastProgress := start
	for n := uint64(0); ; n++ {
		if n&1023 == 0 {
			if ctx.Err() != nil {
				readErr = ctx.Err()
				break
			}
			if s.cfg.Progress != nil && time.Since(lastProgress) > time.Second {
				st := src.Stats()
				s.cfg.Progress(st.Packets, st.Bytes)
				lastProgress = time.Now()
			}
		}
		p, err := src.Next()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				readErr = err
			}
			break
		}
		_, events := s.cls.Packet(p.Data, p.LinkType, p.Length, p.Time)
		if len(events) > 0 {
			s.handle(events)
		}
		if s.sinkErr != nil {
			break
		}
	}
	s.cls.Flush(s.handle)
	if s.sinkErr != nil {
		return s.sinkErr
	}
	if readErr != nil && !errors.Is(readErr, context.Canceled) {
		s.summary.Errors++
	}
	return readErr
}

// handle turns classifier events into records.
func (s *Sensor) handle(events []classify.Event) {
	for i := range events {
		ev := &events[i]
		switch ev.Kind {
		case classify.EventFlowEnded:
			s.flowEnded(ev.Flow)
		case classify.EventLabelled:
			// The policy engine decides here (issue 6); labels are counted at flow end.
		}
	}
}

func (s *Sensor) flowEnded(f *classify.Flow) {
	s.summary.Flows++
	if f.Reason == classify.EndEvicted {
		s.summary.FlowsEvicted++
	}
	for _, l := range f.Labels.Labels() {
		s.summary.countLabel(l)
	}
	s.write(alert.NewFlowRecord(f, s.cfg.Records))
}

func (s *Sensor) write(r alert.Record) {
	if s.cfg.Sink == nil || s.sinkErr != nil {
		return
	}
	if err := s.cfg.Sink.Write(r); err != nil {
		s.sinkErr = fmt.Errorf("sensor: writing %s record: %w", r.EventType(), err)
		s.log.Error("sink failed", zap.Error(err))
	}
}

// Summary returns what the sensor has done so far.
func (s *Sensor) Summary() Summary {
	sum := s.summary
	sum.Classifier = s.cls.Stats()
	return sum
}
