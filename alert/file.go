package alert

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"
)

// FileConfig is where a file sink writes and how it rotates. Rotation is
// lumberjack's: the full file is renamed with a timestamp
// (eve-2026-01-05T09-00-00.000.json), optionally gzip-compressed, and old
// ones are removed by count and age. logrotate works too: let it move the
// file and send SIGHUP (Reopen), with rotate_size_mb 0.
type FileConfig struct {
	Path string `mapstructure:"path"`
	// RotateSizeMB rotates before the file would grow past this many MiB
	// (0: never by size).
	RotateSizeMB int `mapstructure:"rotate_size_mb"`
	// RotateEvery rotates the file this long after it was opened or last
	// rotated (0: never by age).
	RotateEvery time.Duration `mapstructure:"rotate_every"`
	// KeepFiles is how many rotated files are kept (0: all).
	KeepFiles int `mapstructure:"keep_files"`
	// KeepDays removes rotated files older than this many days (0: never).
	KeepDays int `mapstructure:"keep_days"`
	// Compress gzips rotated files.
	Compress bool `mapstructure:"compress"`
	// LocalTime names rotated files in local time instead of UTC.
	LocalTime bool `mapstructure:"local_time"`
}

// Validate checks the settings.
func (c *FileConfig) Validate() error {
	switch {
	case c.Path == "":
		return fmt.Errorf("path: missing")
	case c.RotateSizeMB < 0:
		return fmt.Errorf("rotate_size_mb: %d is negative", c.RotateSizeMB)
	case c.RotateEvery < 0:
		return fmt.Errorf("rotate_every: %s is negative", c.RotateEvery)
	case c.KeepFiles < 0:
		return fmt.Errorf("keep_files: %d is negative", c.KeepFiles)
	case c.KeepDays < 0:
		return fmt.Errorf("keep_days: %d is negative", c.KeepDays)
	}
	return nil
}

// fileChunk is how much a file sink gathers before writing: whole lines
// only, so that a rotation never splits a record between two files.
const fileChunk = 64 << 10

// FileSink appends JSON lines to a file and rotates it.
type FileSink struct {
	mu     sync.Mutex
	name   string
	cfg    FileConfig
	lj     *lumberjack.Logger
	buf    []byte
	opened time.Time
}

// NewFileSink opens (creating, mode 0640) the file c.Path; name appears in
// errors.
func NewFileSink(name string, c FileConfig) (*FileSink, error) {
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("alert: sink %s: %w", name, err)
	}
	// Create the file now, so a bad path fails at start rather than at the
	// first record.
	if err := os.MkdirAll(filepath.Dir(c.Path), 0o750); err != nil {
		return nil, fmt.Errorf("alert: sink %s: %w", name, err)
	}
	if err := touch(c.Path); err != nil {
		return nil, fmt.Errorf("alert: sink %s: %w", name, err)
	}
	size := c.RotateSizeMB
	if size == 0 {
		size = 1 << 20 // lumberjack has no "never": 1 TiB
	}
	lj := &lumberjack.Logger{Filename: c.Path, MaxSize: size, MaxBackups: c.KeepFiles, MaxAge: c.KeepDays,
		Compress: c.Compress, LocalTime: c.LocalTime}
	return &FileSink{name: name, cfg: c, lj: lj, buf: make([]byte, 0, fileChunk+4096), opened: time.Now()}, nil
}

// Write appends r as one line (buffered: see Flush).
func (s *FileSink) Write(r Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.buf)
	b, err := appendRecord(s.buf, r)
	if err != nil {
		s.buf = s.buf[:n]
		return Reject(fmt.Errorf("alert: sink %s: %w", s.name, err))
	}
	b = append(b, '\n')
	if n > 0 && len(b) > fileChunk {
		// Write what was there before this record; keep the record for
		// the next chunk. On failure the record is not taken, so a retry
		// writes it once.
		line := append([]byte(nil), b[n:]...)
		s.buf = b[:n]
		if err := s.flushLocked(); err != nil {
			return err
		}
		s.buf = append(s.buf, line...)
		return nil
	}
	s.buf = b
	if len(s.buf) >= fileChunk {
		return s.flushLocked()
	}
	return nil
}

// flushLocked writes the gathered lines; what could not be written stays
// for the next try.
func (s *FileSink) flushLocked() error {
	if s.cfg.RotateEvery > 0 && time.Since(s.opened) >= s.cfg.RotateEvery {
		if err := s.lj.Rotate(); err != nil {
			return fmt.Errorf("alert: sink %s: rotating %s: %w", s.name, s.cfg.Path, err)
		}
		s.opened = time.Now()
	}
	if len(s.buf) == 0 {
		return nil
	}
	n, err := s.lj.Write(s.buf)
	if err != nil {
		s.buf = s.buf[:copy(s.buf, s.buf[n:])]
		return fmt.Errorf("alert: sink %s: writing %s: %w", s.name, s.cfg.Path, err)
	}
	s.buf = s.buf[:0]
	return nil
}

// Flush writes out what is gathered (and rotates the file when it is due
// by age).
func (s *FileSink) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flushLocked()
}

// Reopen writes out what is gathered and closes the file; the next write
// opens the path again, creating it if logrotate moved it away.
func (s *FileSink) Reopen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.flushLocked()
	if cerr := s.lj.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("alert: sink %s: closing %s: %w", s.name, s.cfg.Path, cerr)
	}
	if terr := touch(s.cfg.Path); terr != nil && err == nil {
		err = fmt.Errorf("alert: sink %s: %w", s.name, terr)
	}
	s.opened = time.Now()
	return err
}

// touch creates the file at path, mode 0640, if it is missing: lumberjack
// would create it 0600, and keeps the mode of a file that exists.
func touch(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	return f.Close()
}

// Rotate writes out what is gathered and rotates the file now.
func (s *FileSink) Rotate() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.flushLocked(); err != nil {
		return err
	}
	if err := s.lj.Rotate(); err != nil {
		return fmt.Errorf("alert: sink %s: rotating %s: %w", s.name, s.cfg.Path, err)
	}
	s.opened = time.Now()
	return nil
}

// Close writes out what is gathered and closes the file.
func (s *FileSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.flushLocked()
	if cerr := s.lj.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("alert: sink %s: closing %s: %w", s.name, s.cfg.Path, cerr)
	}
	return err
}
