package engineapi

import (
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/shoal-project/shoal/cluster"
	ctr "github.com/shoal-project/shoal/runtime/container"
)

// The media types of Docker's output streams.
const (
	mediaTypeRawStream         = "application/vnd.docker.raw-stream"
	mediaTypeMultiplexedStream = "application/vnd.docker.multiplexed-stream"
)

// logTimeFormat is Docker's fixed-width RFC 3339 time for log timestamps: the CLI
// aligns columns on it, so nanoseconds are always printed with nine digits.
const logTimeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// stdStream tags a frame of a multiplexed stream.
type stdStream byte

// The frame tags of Docker's multiplexed stream (moby's stdcopy).
const (
	streamStdout    stdStream = 1
	streamStderr    stdStream = 2
	streamSystemErr stdStream = 3
)

// frameWriter writes each Write as one frame of Docker's multiplexed stream: an
// 8-byte header [stream, 0, 0, 0, size as big-endian uint32] followed by the bytes.
// Writers sharing mu never interleave their frames.
type frameWriter struct {
	w      io.Writer
	stream stdStream
	mu     *sync.Mutex
	flush  func()
}

// Write sends p as one frame (or several, if p exceeds what a frame can carry).
func (f *frameWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	written := 0
	for len(p) > 0 {
		n := len(p)
		if n > 1<<30 {
			n = 1 << 30
		}
		buf := make([]byte, 8+n)
		buf[0] = byte(f.stream)
		binary.BigEndian.PutUint32(buf[4:], uint32(n))
		copy(buf[8:], p[:n])
		if _, err := f.w.Write(buf); err != nil {
			return written, err
		}
		written += n
		p = p[n:]
	}
	if f.flush != nil {
		f.flush()
	}
	return written, nil
}

// lockedWriter serialises raw writes (TTY streams) and flushes after each.
type lockedWriter struct {
	w     io.Writer
	mu    *sync.Mutex
	flush func()
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.w.Write(p)
	if l.flush != nil {
		l.flush()
	}
	return n, err
}

// stdWriters returns the stdout, stderr and system-error writers over w: framed when
// mux, else raw (a TTY has one combined stream).
func stdWriters(w io.Writer, mux bool, flush func()) (stdout, stderr, syserr io.Writer) {
	mu := &sync.Mutex{}
	if !mux {
		raw := &lockedWriter{w: w, mu: mu, flush: flush}
		return raw, raw, raw
	}
	return &frameWriter{w: w, stream: streamStdout, mu: mu, flush: flush},
		&frameWriter{w: w, stream: streamStderr, mu: mu, flush: flush},
		&frameWriter{w: w, stream: streamSystemErr, mu: mu, flush: flush}
}

// logQuery is the query of every logs endpoint (services, tasks, containers).
type logQuery struct {
	Follow     bool
	Stdout     bool
	Stderr     bool
	Timestamps bool
	Details    bool
	Since      time.Time
	Until      time.Time
	Tail       int // -1 for all
}

// parseLogQuery reads and validates the logs query parameters.
func parseLogQuery(c *gin.Context) (logQuery, error) {
	q := logQuery{
		Follow:     queryFlag(c, "follow"),
		Stdout:     queryFlag(c, "stdout"),
		Stderr:     queryFlag(c, "stderr"),
		Timestamps: queryFlag(c, "timestamps"),
		Details:    queryFlag(c, "details"),
		Tail:       -1,
	}
	if !q.Stdout && !q.Stderr {
		return q, badRequest("Bad parameters: you must choose at least one stream")
	}
	var err error
	if q.Since, err = parseTimestamp(c.Query("since")); err != nil {
		return q, badRequest(fmt.Sprintf("invalid value for \"since\": %v", err))
	}
	if q.Until, err = parseTimestamp(c.Query("until")); err != nil {
		return q, badRequest(fmt.Sprintf("invalid value for \"until\": %v", err))
	}
	switch tail := c.Query("tail"); tail {
	case "", "all":
	default:
		n, err := strconv.Atoi(tail)
		if err != nil {
			return q, badRequest(`tail value must be a positive integer or "all"`)
		}
		if n >= 0 {
			q.Tail = n
		}
	}
	return q, nil
}

// clusterOptions is q as the control plane takes it.
func (q logQuery) clusterOptions() cluster.LogOptions {
	return cluster.LogOptions{Follow: q.Follow, Since: q.Since, Until: q.Until, Tail: q.Tail,
		Stdout: q.Stdout, Stderr: q.Stderr, Timestamps: q.Timestamps}
}

// containerOptions is q as the container runtime takes it.
func (q logQuery) containerOptions() ctr.LogOptions {
	return ctr.LogOptions{Follow: q.Follow, Since: q.Since, Until: q.Until, Tail: q.Tail,
		Stdout: q.Stdout, Stderr: q.Stderr}
}

// parseTimestamp parses the time format the docker CLI sends ("<unix seconds>" or
// "<unix seconds>.<nanoseconds>"), and RFC 3339 for hand-written requests.
// "" is the zero time.
func parseTimestamp(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	secs, frac, hasFrac := strings.Cut(v, ".")
	s, err := strconv.ParseInt(secs, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a unix timestamp", v)
	}
	var ns int64
	if hasFrac {
		if len(frac) == 0 || len(frac) > 9 {
			return time.Time{}, fmt.Errorf("%q is not a unix timestamp", v)
		}
		frac += strings.Repeat("0", 9-len(frac))
		if ns, err = strconv.ParseInt(frac, 10, 64); err != nil {
			return time.Time{}, fmt.Errorf("%q is not a unix timestamp", v)
		}
	}
	if s == 0 && ns == 0 {
		return time.Time{}, nil
	}
	return time.Unix(s, ns), nil
}

// logStream writes log lines to an HTTP response the way dockerd does: multiplexed
// unless the source has a TTY, each line optionally prefixed by its timestamp and by
// its details, flushed after every line so that followers see lines as they come.
type logStream struct {
	stdout, stderr, syserr io.Writer
	q                      logQuery
}

// newLogStream sends the response header (200 and the stream's media type) at once,
// as dockerd does, so that a client following an idle source is not left waiting.
func newLogStream(c *gin.Context, q logQuery, tty bool) *logStream {
	w := c.Writer
	contentType := mediaTypeMultiplexedStream
	if tty {
		contentType = mediaTypeRawStream
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(http.StatusOK)
	w.Flush()
	out, errw, sys := stdWriters(w, !tty, w.Flush)
	return &logStream{stdout: out, stderr: errw, syserr: sys, q: q}
}

// write sends one line from stream ("stdout" or "stderr"); details is the
// comma-separated attribute list printed with details=1.
func (l *logStream) write(stream string, at time.Time, details string, line []byte) error {
	var dst io.Writer
	switch {
	case stream == "stdout" && l.q.Stdout:
		dst = l.stdout
	case stream == "stderr" && l.q.Stderr:
		dst = l.stderr
	default:
		return nil
	}
	buf := make([]byte, 0, len(line)+len(logTimeFormat)+len(details)+2)
	if l.q.Timestamps {
		buf = append(buf, at.UTC().Format(logTimeFormat)...)
		buf = append(buf, ' ')
	}
	if l.q.Details {
		buf = append(buf, details...)
		buf = append(buf, ' ')
	}
	buf = append(buf, line...)
	_, err := dst.Write(buf)
	return err
}

// writeError reports a failure after the header went out, in the system-error stream.
func (l *logStream) writeError(err error) {
	_, _ = fmt.Fprintf(l.syserr, "Error grabbing logs: %v\n", err)
}

// swarmLogDetails is the details prefix of a service or task log line: the
// attributes its log driver's options ask for and the swarm context, which the
// docker CLI reads the node, service and task from (`docker service logs`
// refuses lines without them). Keys are sorted, keys and values
// query-escaped, as dockerd writes them.
func swarmLogDetails(m cluster.LogMessage) string {
	attrs := maps.Clone(m.Attrs)
	if attrs == nil {
		attrs = map[string]string{}
	}
	attrs["com.docker.swarm.node.id"] = m.NodeID
	attrs["com.docker.swarm.service.id"] = m.ServiceID
	attrs["com.docker.swarm.task.id"] = m.TaskID
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(attrs)) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(url.QueryEscape(k) + "=" + url.QueryEscape(attrs[k]))
	}
	return b.String()
}

// streamSwarmLogs copies swarm log messages to the client until the channel closes
// or the client goes away.
func streamSwarmLogs(c *gin.Context, msgs <-chan cluster.LogMessage, q logQuery, tty bool) {
	out := newLogStream(c, q, tty)
	ctx := c.Request.Context()
	for {
		select {
		case <-ctx.Done():
			return
		case m, ok := <-msgs:
			if !ok {
				return
			}
			if err := out.write(m.Stream, m.Time, swarmLogDetails(m), m.Line); err != nil {
				return
			}
		}
	}
}

// queryFlag reads a boolean query parameter as dockerd does: absent, "", "0",
// "no", "false" and "none" are false; anything else is true.
func queryFlag(c *gin.Context, key string) bool {
	switch strings.ToLower(strings.TrimSpace(c.Query(key))) {
	case "", "0", "no", "false", "none":
		return false
	}
	return true
}
