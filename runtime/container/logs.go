package container

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// LogOptions selects log records.
type LogOptions struct {
	Follow       bool      // keep streaming until the container exits
	Since, Until time.Time // zero means unbounded
	Tail         int       // only the last Tail records of the history; -1 means all
	Stdout       bool
	Stderr       bool
}

// LogEntry is one record of container output.
type LogEntry struct {
	Stream string // "stdout" or "stderr"
	Time   time.Time
	Line   []byte // includes the trailing "\n" unless the line was split or unterminated
}

// Logs streams the container's output records. The channel is closed at the end
// (or when ctx is done); with Follow it streams until the container is not running
// and all its output is sent.
func (m *Manager) Logs(ctx context.Context, ref string, opts LogOptions) (<-chan LogEntry, error) {
	c, err := m.lookup(ref)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(logPath(c.dir, c.rec.ID))
	if err != nil {
		return nil, fmt.Errorf("open logs of %s: %w", ref, err)
	}
	if !opts.Stdout && !opts.Stderr {
		opts.Stdout, opts.Stderr = true, true
	}
	ch := make(chan LogEntry, 64)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer close(ch)
		defer f.Close()
		if err := m.streamLogs(ctx, c, f, opts, ch); err != nil && !errors.Is(err, context.Canceled) {
			m.log.Warn("stream logs", "id", c.rec.ID, "err", err)
		}
	}()
	return ch, nil
}

func (m *Manager) streamLogs(ctx context.Context, c *container, f *os.File, opts LogOptions, ch chan<- LogEntry) error {
	r := &recordReader{f: f}
	send := func(e LogEntry) error {
		select {
		case ch <- e:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-m.ctx.Done():
			return m.ctx.Err()
		}
	}
	if err := sendHistory(r, opts, send); err != nil || !opts.Follow {
		return err
	}
	for {
		changed := m.logs.watchLog(c)
		m.mu.Lock()
		running := c.run != nil && !c.removed
		m.mu.Unlock()
		for {
			e, ok, err := r.next()
			if err != nil || !ok {
				if err != nil {
					return err
				}
				break
			}
			if !opts.Until.IsZero() && e.Time.After(opts.Until) {
				return nil
			}
			if opts.keep(e) {
				if err := send(e); err != nil {
					return err
				}
			}
		}
		if !running || changed == nil {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		case <-m.ctx.Done():
			return m.ctx.Err()
		}
	}
}

// sendHistory sends the records already in the log, trimmed to opts.Tail.
func sendHistory(r *recordReader, opts LogOptions, send func(LogEntry) error) error {
	var tail []LogEntry
	for {
		e, ok, err := r.next()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		if !opts.keep(e) {
			continue
		}
		if opts.Tail < 0 {
			if err := send(e); err != nil {
				return err
			}
			continue
		}
		tail = append(tail, e)
		if len(tail) > opts.Tail {
			tail = tail[1:]
		}
	}
	for _, e := range tail {
		if err := send(e); err != nil {
			return err
		}
	}
	return nil
}

// keep reports whether e passes the stream and time filters.
func (opts LogOptions) keep(e LogEntry) bool {
	return (e.Stream == "stdout" && opts.Stdout || e.Stream == "stderr" && opts.Stderr) &&
		(opts.Since.IsZero() || !e.Time.Before(opts.Since)) && (opts.Until.IsZero() || !e.Time.After(opts.Until))
}

// recordReader reads json-file records, leaving an incomplete last line for
// the next call.
type recordReader struct {
	f       *os.File
	br      *bufio.Reader
	partial []byte
}

func (r *recordReader) next() (LogEntry, bool, error) {
	if r.br == nil {
		r.br = bufio.NewReaderSize(r.f, 64<<10)
	}
	for {
		line, err := r.br.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] != '\n' {
			r.partial = append(r.partial, line...)
			line = nil
		}
		if errors.Is(err, io.EOF) && len(line) == 0 {
			return LogEntry{}, false, nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return LogEntry{}, false, fmt.Errorf("read log: %w", err)
		}
		if len(r.partial) > 0 {
			line = append(r.partial, line...)
			r.partial = nil
		}
		var rec jsonLogRecord
		if err := json.Unmarshal(bytes.TrimSpace(line), &rec); err != nil {
			continue // a torn record after a crash; skip it
		}
		return LogEntry{Stream: rec.Stream, Time: rec.Time, Line: []byte(rec.Log)}, true, nil
	}
}
