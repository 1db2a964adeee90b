package store

import (
	"context"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// raftLogger routes hashicorp/raft's hclog output to slog. Only warnings and
// errors are forwarded by default: raft is chatty at info.
type raftLogger struct {
	log     *slog.Logger
	name    string
	args    []any
	level   hclog.Level
	limiter *repeatLimiter
}

func newRaftLogger(l *slog.Logger) hclog.Logger {
	return &raftLogger{log: l, name: "raft", level: hclog.Warn, limiter: &repeatLimiter{last: map[string]time.Time{}}}
}

// routine are raft's warnings of what happens in normal operation: the first
// election of a new swarm or a restarted manager, a follower that joined and
// catches up. Warnings are for what an operator should act on.
var routine = map[string]bool{
	"heartbeat timeout reached, starting election":  true,
	"appendEntries rejected, sending older logs":    true,
	"failed to get previous log":                    true,
	"Election timeout reached, restarting election": true,
	"no known peers, aborting election":             true,
}

// repeatWindow is how long a warning raft repeats (a peer down is retried
// several times a second) stays at debug level after it was logged once.
const repeatWindow = time.Minute

// repeatLimiter remembers when each message was last logged as a warning.
type repeatLimiter struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// first reports whether msg was not logged within the window, and notes it.
func (r *repeatLimiter) first(msg string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if t, ok := r.last[msg]; ok && now.Sub(t) < repeatWindow {
		return false
	}
	if len(r.last) > 256 {
		clear(r.last)
	}
	r.last[msg] = now
	return true
}

func slogLevel(l hclog.Level) slog.Level {
	switch {
	case l <= hclog.Debug:
		return slog.LevelDebug
	case l == hclog.Info:
		return slog.LevelInfo
	case l == hclog.Warn:
		return slog.LevelWarn
	}
	return slog.LevelError
}

func (r *raftLogger) Log(level hclog.Level, msg string, args ...any) {
	if level == hclog.Off || level < r.level {
		return
	}
	all := append([]any{"logger", r.name}, r.args...)
	lvl := slogLevel(level)
	if lvl >= slog.LevelWarn && (routine[msg] || !r.limiter.first(msg)) {
		lvl = slog.LevelDebug
	}
	r.log.Log(context.Background(), lvl, msg, append(all, args...)...)
}

func (r *raftLogger) Trace(msg string, args ...any) { r.Log(hclog.Trace, msg, args...) }
func (r *raftLogger) Debug(msg string, args ...any) { r.Log(hclog.Debug, msg, args...) }
func (r *raftLogger) Info(msg string, args ...any)  { r.Log(hclog.Info, msg, args...) }
func (r *raftLogger) Warn(msg string, args ...any)  { r.Log(hclog.Warn, msg, args...) }
func (r *raftLogger) Error(msg string, args ...any) { r.Log(hclog.Error, msg, args...) }
func (r *raftLogger) IsTrace() bool                 { return r.level <= hclog.Trace }
func (r *raftLogger) IsDebug() bool                 { return r.level <= hclog.Debug }
func (r *raftLogger) IsInfo() bool                  { return r.level <= hclog.Info }
func (r *raftLogger) IsWarn() bool                  { return r.level <= hclog.Warn }
func (r *raftLogger) IsError() bool                 { return r.level <= hclog.Error }
func (r *raftLogger) ImpliedArgs() []any            { return r.args }
func (r *raftLogger) Name() string                  { return r.name }
func (r *raftLogger) SetLevel(level hclog.Level)    { r.level = level }
func (r *raftLogger) GetLevel() hclog.Level         { return r.level }

func (r *raftLogger) With(args ...any) hclog.Logger {
	c := *r
	c.args = append(append([]any(nil), r.args...), args...)
	return &c
}

func (r *raftLogger) Named(name string) hclog.Logger {
	c := *r
	c.name = r.name + "." + name
	return &c
}

func (r *raftLogger) ResetNamed(name string) hclog.Logger {
	c := *r
	c.name = name
	return &c
}

func (r *raftLogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(r.StandardWriter(opts), "", 0)
}

func (r *raftLogger) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return lineWriter{r}
}

// lineWriter logs each write as one warning.
type lineWriter struct{ r *raftLogger }

func (w lineWriter) Write(p []byte) (int, error) {
	w.r.Warn(strings.TrimSpace(string(p)))
	return len(p), nil
}
