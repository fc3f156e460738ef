package alert

import (
	"bufio"
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
