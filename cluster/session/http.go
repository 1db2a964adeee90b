package session

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Bounds of what a session request may carry.
const (
	maxHelloSize  = 1 << 20
	maxStatusSize = 8 << 20
	sessionHeader = "Shoal-Session"
)

// Error codes of the session protocol's error bodies.
const (
	codeNotLeader      = "not_leader"
	codeInvalidSession = "invalid_session"
	codeUnknownNode    = "unknown_node"
)

type errorBody struct {
	Message  string
	Code     string   `json:",omitempty"`
	Leader   string   `json:",omitempty"`
	Managers []string `json:",omitempty"`
}

// Handler serves sessions on the control port. server returns this manager's
// Server while it leads, else an error (a NotLeaderError names the leader);
// peer names the calling node from its certificate.
func Handler(server func() (Server, error), peer func(*http.Request) (string, error)) http.Handler {
	h := &handler{server: server, peer: peer}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /session/open", h.open)
	mux.HandleFunc("POST /session/status", h.status)
	mux.HandleFunc("POST /session/heartbeat", h.heartbeat)
	return mux
}

type handler struct {
	server func() (Server, error)
	peer   func(*http.Request) (string, error)
}

// begin finds the caller and this manager's Server, or answers the error.
func (h *handler) begin(w http.ResponseWriter, r *http.Request) (Server, string, bool) {
	nodeID, err := h.peer(r)
	if err != nil {
		writeError(w, err)
		return nil, "", false
	}
	srv, err := h.server()
	if err != nil {
		writeError(w, err)
		return nil, "", false
	}
	return srv, nodeID, true
}

func (h *handler) open(w http.ResponseWriter, r *http.Request) {
	srv, nodeID, ok := h.begin(w, r)
	if !ok {
		return
	}
	var hello Hello
	if err := json.NewDecoder(io.LimitReader(r.Body, maxHelloSize)).Decode(&hello); err != nil {
		writeError(w, fmt.Errorf("read hello: %w", err))
		return
	}
	_, msgs, err := srv.Open(r.Context(), nodeID, hello)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	for m := range msgs {
		if err := enc.Encode(m); err != nil {
			return
		}
		if flusher != nil {
			flusher.Flush()
		}
	}
}

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	srv, nodeID, ok := h.begin(w, r)
	if !ok {
		return
	}
	var updates []StatusUpdate
	if err := json.NewDecoder(io.LimitReader(r.Body, maxStatusSize)).Decode(&updates); err != nil {
		writeError(w, fmt.Errorf("read status updates: %w", err))
		return
	}
	if err := srv.UpdateTaskStatus(r.Context(), nodeID, r.Header.Get(sessionHeader), updates); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *handler) heartbeat(w http.ResponseWriter, r *http.Request) {
	srv, nodeID, ok := h.begin(w, r)
	if !ok {
		return
	}
	if err := srv.Heartbeat(r.Context(), nodeID, r.Header.Get(sessionHeader)); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func writeError(w http.ResponseWriter, err error) {
	body := errorBody{Message: err.Error()}
	status := http.StatusInternalServerError
	var nl NotLeaderError
	var un UnknownNodeError
	switch {
	case errors.As(err, &nl):
		status, body.Code, body.Leader, body.Managers = http.StatusMisdirectedRequest, codeNotLeader, nl.Leader, nl.Managers
	case errors.Is(err, ErrInvalidSession):
		status, body.Code = http.StatusGone, codeInvalidSession
	case errors.As(err, &un):
		status, body.Code = http.StatusForbidden, codeUnknownNode
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// readError turns an error answer back into the error it stands for.
func readError(resp *http.Response) error {
	var body errorBody
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(data, &body) != nil || body.Message == "" {
		body.Message = fmt.Sprintf("%s: %s", resp.Status, bytes.TrimSpace(data))
	}
	switch body.Code {
	case codeNotLeader:
		return NotLeaderError{Leader: body.Leader, Managers: body.Managers}
	case codeInvalidSession:
		return ErrInvalidSession
	case codeUnknownNode:
		return UnknownNodeError{}
	}
	return errors.New(body.Message)
}

// Remote is the manager at addr (host:port of its control port), reached with
// client (which speaks the control port's RPC protocol).
func Remote(client *http.Client, addr string) Dispatcher {
	return &remoteDispatcher{client: client, addr: addr}
}

type remoteDispatcher struct {
	client *http.Client
	addr   string
}

func (d *remoteDispatcher) url(path string) string { return "https://" + d.addr + path }

// silenceFactor times the heartbeat period is how long a session may stay
// silent before the node takes its manager for gone.
const silenceFactor = 3

func (d *remoteDispatcher) Open(ctx context.Context, hello Hello) (Session, error) {
	body, err := json.Marshal(hello)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url("/session/open"), bytes.NewReader(body))
	if err != nil {
		cancel()
		return nil, err
	}
	resp, err := d.client.Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("open session with %s: %w", d.addr, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		defer cancel()
		return nil, readError(resp)
	}
	dec := json.NewDecoder(resp.Body)
	var first Message
	if err := dec.Decode(&first); err != nil {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("open session with %s: %w", d.addr, err)
	}
	s := &remoteSession{d: d, id: first.SessionID, msgs: make(chan Message, 16), cancel: cancel}
	go s.read(ctx, resp.Body, dec, first)
	return s, nil
}

type remoteSession struct {
	d      *remoteDispatcher
	id     string
	msgs   chan Message
	cancel context.CancelFunc

	mu  sync.Mutex
	err error
}

// read forwards the stream's messages until it ends or stays silent for too
// long (the manager froze, or the network between went quiet).
func (s *remoteSession) read(ctx context.Context, body io.ReadCloser, dec *json.Decoder, first Message) {
	defer close(s.msgs)
	defer body.Close()
	defer s.cancel()
	period := first.HeartbeatPeriod
	if period <= 0 {
		period = 5 * time.Second
	}
	silence := time.AfterFunc(silenceFactor*period, func() {
		s.setErr(errors.New("session: the manager went silent"))
		s.cancel()
	})
	defer silence.Stop()
	m := first
	for {
		if m.HeartbeatPeriod > 0 {
			period = m.HeartbeatPeriod
		}
		select {
		case s.msgs <- m:
		case <-ctx.Done():
			return
		}
		m = Message{}
		if err := dec.Decode(&m); err != nil {
			if ctx.Err() == nil {
				s.setErr(fmt.Errorf("session with %s: %w", s.d.addr, err))
			}
			return
		}
		silence.Reset(silenceFactor * period)
	}
}

func (s *remoteSession) setErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

func (s *remoteSession) Messages() <-chan Message { return s.msgs }

func (s *remoteSession) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *remoteSession) Close() { s.cancel() }

func (s *remoteSession) UpdateTaskStatus(ctx context.Context, updates []StatusUpdate) error {
	return s.post(ctx, "/session/status", updates)
}

func (s *remoteSession) Heartbeat(ctx context.Context) error {
	return s.post(ctx, "/session/heartbeat", nil)
}

// postTimeout bounds a status report or a heartbeat.
const postTimeout = 15 * time.Second

func (s *remoteSession) post(ctx context.Context, path string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, postTimeout)
	defer cancel()
	var body io.Reader = http.NoBody
	if v != nil {
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.d.url(path), body)
	if err != nil {
		return err
	}
	req.Header.Set(sessionHeader, s.id)
	resp, err := s.d.client.Do(req)
	if err != nil {
		return fmt.Errorf("session with %s: %w", s.d.addr, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return readError(resp)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	return nil
}
