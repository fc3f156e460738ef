package alert

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
)

// Sink delivers records somewhere: a terminal, a file, a SIEM.
type Sink interface {
	// Write delivers one record, or says why it could not.
	Write(Record) error
	// Close flushes what is buffered and releases the sink.
	Close() error
}

// WriterSink writes records as JSON lines to an io.Writer, buffered.
type WriterSink struct {
	mu     sync.Mutex
	name   string
	w      *bufio.Writer
	closer io.Closer
	enc    *json.Encoder
	buf    []byte
}

// NewWriterSink writes JSON lines to w; name appears in error messages.
// If w is an io.Closer, Close closes it.
func NewWriterSink(name string, w io.Writer) *WriterSink {
	bw := bufio.NewWriterSize(w, 1<<20)
	s := &WriterSink{name: name, w: bw, enc: json.NewEncoder(bw)}
	s.enc.SetEscapeHTML(false)
	if c, ok := w.(io.Closer); ok && w != os.Stdout && w != os.Stderr {
		s.closer = c
	}
	return s
}

// OpenFileSink appends JSON lines to the file at path, creating it.
func OpenFileSink(path string) (*WriterSink, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("alert: eve file: %w", err)
	}
	return NewWriterSink(path, f), nil
}

// Write encodes r as one JSON line.
func (s *WriterSink) Write(r Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := r.(appender); ok {
		b, err := a.AppendJSON(s.buf[:0])
		if err != nil {
			return fmt.Errorf("alert: %s: %w", s.name, err)
		}
		s.buf = append(b, '\n')
		if _, err := s.w.Write(s.buf); err != nil {
			return fmt.Errorf("alert: %s: %w", s.name, err)
		}
		return nil
	}
	if err := s.enc.Encode(r); err != nil {
		return fmt.Errorf("alert: %s: %w", s.name, err)
	}
	return nil
}

// Flush writes out what is buffered.
func (s *WriterSink) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.w.Flush(); err != nil {
		return fmt.Errorf("alert: %s: %w", s.name, err)
	}
	return nil
}

// Close flushes and closes the underlying writer.
func (s *WriterSink) Close() error {
	err := s.Flush()
	if s.closer != nil {
		if cerr := s.closer.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("alert: %s: %w", s.name, cerr)
		}
	}
	return err
}

// MemorySink keeps records in memory (tests, and the summary's counts).
type MemorySink struct {
	mu      sync.Mutex
	Records []Record
}

// Write appends r.
func (m *MemorySink) Write(r Record) error {
	m.mu.Lock()
	m.Records = append(m.Records, r)
	m.mu.Unlock()
	return nil
}

// Close does nothing.
func (m *MemorySink) Close() error { return nil }

// The interfaces below are optional: a sink implements those that fit it,
// and the queue (Buffered), the fan-out (Multi) and the sensor find them
// by type assertion.

// BatchWriter is a sink that delivers many records in one exchange (Kafka).
type BatchWriter interface {
	// WriteBatch delivers rs and returns, in their order, the records it
	// could not deliver, with the reason; they are retried.
	WriteBatch(rs []Record) (failed []Record, err error)
}

// Flusher is a sink that holds written records in a buffer until Flush.
type Flusher interface {
	Flush() error
}

// Reopener is a sink that writes a file another program may move away
// (logrotate): Reopen closes the file and opens its path again (SIGHUP).
type Reopener interface {
	Reopen() error
}

// ContextCloser is a sink whose Close may take time (flushing a queue):
// CloseContext gives up when ctx is done.
type ContextCloser interface {
	CloseContext(ctx context.Context) error
}

// StatsReporter is a sink that reports its delivery counters.
type StatsReporter interface {
	SinkStats() []SinkStats
}

// Interrupter is a sink whose writes can hang longer than a shutdown may
// wait (a Kafka produce waiting for a broker): Interrupt fails the write in
// progress, and the sink is then closed.
type Interrupter interface {
	Interrupt()
}
