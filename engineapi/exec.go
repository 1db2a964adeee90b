package engineapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"

	"github.com/gin-gonic/gin"
	"github.com/moby/moby/api/types/container"

	ctr "github.com/shoal-project/shoal/runtime/container"
)

// maxExecs bounds the exec table: beyond it the oldest finished execs are forgotten.
const maxExecs = 1024

// execTable holds the exec instances created through the API: created by POST
// /containers/{id}/exec, run once by POST /exec/{id}/start, inspected afterwards for
// their exit code (the CLI reads it to set its own).
type execTable struct {
	mu    sync.Mutex
	byID  map[string]*execInstance
	order []string // creation order, oldest first
}

// execInstance is one exec: its request and what became of it.
type execInstance struct {
	id          string
	containerID string
	req         container.ExecCreateRequest

	console *ctr.Console // the terminal of a Tty exec, resized through the API

	mu       sync.Mutex
	started  bool
	running  bool
	pid      int
	exitCode *int
}

func newExecTable() *execTable {
	return &execTable{byID: map[string]*execInstance{}}
}

// add stores a new exec for containerID and returns it.
func (t *execTable) add(containerID string, req container.ExecCreateRequest) (*execInstance, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, fmt.Errorf("generate exec ID: %w", err)
	}
	e := &execInstance{id: hex.EncodeToString(raw[:]), containerID: containerID, req: req}
	if req.Tty {
		e.console = ctr.NewConsole(consoleSize(req.ConsoleSize))
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.byID[e.id] = e
	t.order = append(t.order, e.id)
	t.evictLocked()
	return e, nil
}

// evictLocked forgets the oldest finished execs while the table is over maxExecs.
func (t *execTable) evictLocked() {
	kept := t.order[:0]
	excess := len(t.order) - maxExecs
	for _, id := range t.order {
		e := t.byID[id]
		if excess > 0 && e.finished() {
			delete(t.byID, id)
			excess--
			continue
		}
		kept = append(kept, id)
	}
	t.order = kept
}

// get returns the exec with id, or dockerd's 404.
func (t *execTable) get(id string) (*execInstance, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.byID[id]
	if !ok {
		return nil, notFoundError("No such exec instance: " + id)
	}
	return e, nil
}

func (e *execInstance) finished() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.exitCode != nil
}

// begin marks e started; an exec runs only once.
func (e *execInstance) begin() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.running:
		return conflictError(fmt.Sprintf("Error: Exec command %s is already running", e.id))
	case e.started:
		return conflictError(fmt.Sprintf("exec command %s has already run", e.id))
	}
	e.started, e.running = true, true
	return nil
}

// setPID records the PID of e's process, once it runs.
func (e *execInstance) setPID(pid int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.pid = pid
}

func (e *execInstance) finish(code int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.running = false
	e.exitCode = &code
}

// inspect is e as GET /exec/{id}/json shows it.
func (e *execInstance) inspect() container.ExecInspectResponse {
	e.mu.Lock()
	defer e.mu.Unlock()
	pc := &container.ExecProcessConfig{Tty: e.req.Tty, User: e.req.User, Privileged: &e.req.Privileged}
	if len(e.req.Cmd) > 0 {
		pc.Entrypoint, pc.Arguments = e.req.Cmd[0], append([]string{}, e.req.Cmd[1:]...)
	}
	return container.ExecInspectResponse{
		ID: e.id, Running: e.running, ExitCode: e.exitCode, ProcessConfig: pc, Pid: e.pid,
		OpenStdin: e.req.AttachStdin, OpenStdout: e.req.AttachStdout, OpenStderr: e.req.AttachStderr,
		ContainerID: e.containerID, DetachKeys: []byte(e.req.DetachKeys),
	}
}

func (s *Server) createExec(c *gin.Context) {
	var req container.ExecCreateRequest
	if err := decodeJSONBody(c, &req); err != nil {
		writeError(c, err)
		return
	}
	if len(req.Cmd) == 0 {
		writeError(c, badRequest("No exec command specified"))
		return
	}
	ins, err := s.cfg.Containers.Inspect(c.Request.Context(), c.Param("id"))
	if err != nil {
		writeError(c, err)
		return
	}
	if ins.State == nil || !ins.State.Running {
		writeError(c, conflictError(fmt.Sprintf("container %s is not running", ins.ID)))
		return
	}
	if ins.State.Paused {
		writeError(c, conflictError(fmt.Sprintf("container %s is paused, unpause the container before exec", ins.ID)))
		return
	}
	e, err := s.execs.add(ins.ID, req)
	if err != nil {
		writeError(c, err)
		return
	}
	respondJSON(c, http.StatusCreated, container.ExecCreateResponse{ID: e.id})
}

func (s *Server) inspectExec(c *gin.Context) {
	e, err := s.execs.get(c.Param("id"))
	if err != nil {
		writeError(c, err)
		return
	}
	respondJSON(c, http.StatusOK, e.inspect())
}

// resizeExec sets the size of a Tty exec's terminal; an exec without one ignores it.
func (s *Server) resizeExec(c *gin.Context) {
	e, err := s.execs.get(c.Param("id"))
	if err != nil {
		writeError(c, err)
		return
	}
	var size [2]uint16
	for i, k := range []string{"h", "w"} {
		v, err := strconv.ParseUint(c.Query(k), 10, 16)
		if err != nil {
			writeError(c, badRequest(fmt.Sprintf("invalid resize %s: %q", k, c.Query(k))))
			return
		}
		size[i] = uint16(v)
	}
	if e.console != nil {
		if err := e.console.Resize(size[0], size[1]); err != nil {
			writeError(c, err)
			return
		}
	}
	c.Status(http.StatusOK)
}

// startExec runs the exec. Like dockerd it takes over the connection (answering 101
// UPGRADED when the client asked to upgrade), streams the output (multiplexed unless
// Tty) and reads stdin from the same connection until the client half-closes it.
// Detached execs answer at once and run in the background.
func (s *Server) startExec(c *gin.Context) {
	e, err := s.execs.get(c.Param("id"))
	if err != nil {
		writeError(c, err)
		return
	}
	var req container.ExecStartRequest
	if c.Request.ContentLength != 0 {
		if err := decodeJSONBody(c, &req); err != nil {
			writeError(c, err)
			return
		}
	}
	if err := e.begin(); err != nil {
		writeError(c, err)
		return
	}
	if e.console != nil && req.ConsoleSize != nil {
		_ = e.console.Resize(consoleSize(req.ConsoleSize))
	}
	cfg := ctr.ExecConfig{Cmd: e.req.Cmd, Env: e.req.Env, User: e.req.User,
		WorkingDir: e.req.WorkingDir, Privileged: e.req.Privileged,
		Console: e.console, Started: e.setPID}
	if req.Detach {
		// The exec outlives the request, as a detached exec does under dockerd; it
		// ends when its process does.
		go func() {
			code, err := s.cfg.Containers.Exec(context.WithoutCancel(c.Request.Context()), e.containerID, cfg, nil, io.Discard, io.Discard)
			if err != nil {
				s.log.Warn("detached exec failed", "exec", e.id, "container", e.containerID, "err", err)
				code = 126
			}
			e.finish(code)
		}()
		c.Status(http.StatusOK)
		return
	}
	s.attachExec(c, e, cfg)
}

// attachExec hijacks the connection and runs e with its streams wired to it.
func (s *Server) attachExec(c *gin.Context, e *execInstance, cfg ctr.ExecConfig) {
	conn, brw, err := c.Writer.Hijack()
	if err != nil {
		e.finish(126)
		writeError(c, fmt.Errorf("attach to exec %s: %w", e.id, err))
		return
	}
	defer conn.Close()
	tty := e.req.Tty
	head := "HTTP/1.1 200 OK\r\nContent-Type: " + mediaTypeRawStream + "\r\n"
	if _, upgrade := c.Request.Header["Upgrade"]; upgrade {
		contentType := mediaTypeRawStream
		if !tty && !versionLess(requestVersion(c), "1.42") {
			contentType = mediaTypeMultiplexedStream
		}
		head = "HTTP/1.1 101 UPGRADED\r\nContent-Type: " + contentType + "\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
	}
	if _, err := io.WriteString(conn, head); err == nil {
		_ = c.Writer.Header().WriteSubset(conn, map[string]bool{"Content-Type": true, "Content-Length": true})
		_, _ = io.WriteString(conn, "\r\n")
	}
	stdout, stderr, _ := stdWriters(conn, !tty, nil)
	var stdin io.Reader
	if e.req.AttachStdin {
		// Whatever the client sent after the request is buffered; the rest is read
		// from the connection itself: net/http cancels the request's context when a
		// read through its own reader sees the client's half-close (stdin EOF).
		buffered, _ := brw.Reader.Peek(brw.Reader.Buffered())
		stdin = io.MultiReader(bytes.NewReader(bytes.Clone(buffered)), conn)
	}
	if !e.req.AttachStdout {
		stdout = io.Discard
	}
	if !e.req.AttachStderr {
		stderr = io.Discard
	}
	code, err := s.cfg.Containers.Exec(c.Request.Context(), e.containerID, cfg, stdin, stdout, stderr)
	if err != nil {
		// dockerd reports a failed start on the output stream and exit code 126.
		_, _ = io.WriteString(stdout, err.Error()+"\r\n")
		if code != 127 { // 127: the command was not found, as with dockerd
			code = 126
		}
	}
	e.finish(code)
}

// consoleSize reads an API console size ([height, width]); nil is zero.
func consoleSize(size *[2]uint) (height, width uint16) {
	if size == nil {
		return 0, 0
	}
	return uint16(min(size[0], 65535)), uint16(min(size[1], 65535))
}
