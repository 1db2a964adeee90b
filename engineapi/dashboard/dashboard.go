// Package dashboard is the fleet dashboard that `shoal daemon --dashboard-addr`
// serves: one embedded page (no outside assets) showing the swarm's nodes with
// their health and load, its services with their replicas and update progress,
// and the tasks on each node. It is a client of the daemon's own Engine API,
// called in-process: /fleet joins GET /nodes, /services and /tasks into one JSON
// document, and /events relays the API's event stream to the page as
// server-sent events, on each of which the page reads /fleet again.
package dashboard

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

//go:embed index.html
var page []byte

// Config is what the dashboard reads from.
type Config struct {
	// API is the daemon's Engine API; the dashboard calls it in-process.
	API    http.Handler
	Logger *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Dashboard is the dashboard as an http.Handler: GET / (the page), /fleet
// (JSON) and /events (server-sent events).
type Dashboard struct {
	cfg Config
	mux *http.ServeMux
}

// New builds the dashboard over cfg.API.
func New(cfg Config) *Dashboard {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	d := &Dashboard{cfg: cfg, mux: http.NewServeMux()}
	d.mux.HandleFunc("GET /{$}", d.servePage)
	d.mux.HandleFunc("GET /fleet", d.serveFleet)
	d.mux.HandleFunc("GET /events", d.serveEvents)
	return d
}

// ServeHTTP serves the page and its two endpoints.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'")
	d.mux.ServeHTTP(w, r)
}

func (d *Dashboard) servePage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(page)
}

func (d *Dashboard) serveFleet(w http.ResponseWriter, r *http.Request) {
	f, err := d.fleet(r)
	if err != nil {
		f = Fleet{Error: err.Error(), Nodes: []Node{}, Services: []Service{}, Time: d.cfg.Now()}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(f)
}

// fleet reads the nodes, services (with their task counts) and tasks from the
// Engine API and joins them.
func (d *Dashboard) fleet(r *http.Request) (Fleet, error) {
	var nodes []swarm.Node
	var services []swarm.Service
	var tasks []swarm.Task
	for _, q := range []struct {
		path string
		into any
	}{{"/nodes", &nodes}, {"/services?status=true", &services}, {"/tasks", &tasks}} {
		if err := d.get(r, q.path, q.into); err != nil {
			return Fleet{}, err
		}
	}
	return assemble(nodes, services, tasks, d.cfg.Now()), nil
}

// get calls the Engine API in-process and decodes its JSON answer into v; an
// error answer becomes an error with the API's message.
func (d *Dashboard) get(r *http.Request, path string, v any) error {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	d.cfg.API.ServeHTTP(rec, req)
	if rec.status != http.StatusOK {
		var msg struct{ Message string }
		if json.Unmarshal(rec.body.Bytes(), &msg) == nil && msg.Message != "" {
			return errors.New(msg.Message)
		}
		return fmt.Errorf("GET %s: %d", path, rec.status)
	}
	if err := json.Unmarshal(rec.body.Bytes(), v); err != nil {
		return fmt.Errorf("decode GET %s: %w", path, err)
	}
	return nil
}

// recorder is a ResponseWriter that keeps one answer of the Engine API.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(status int)      { r.status = status }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }

// eventFilters are the events that change what the page shows.
var eventFilters = url.QueryEscape(`{"type":["node","service","container"]}`)

// serveEvents relays the Engine API's event stream (GET /events, in-process, for
// as long as the page's request lasts) as server-sent events, one per event.
func (d *Dashboard) serveEvents(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, "/events?filters="+eventFilters, nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprint(w, ": shoal events\n\n")
	flusher.Flush()
	d.cfg.API.ServeHTTP(&eventRelay{w: w, flusher: flusher, header: http.Header{}}, req)
	d.cfg.Logger.Debug("dashboard event stream ended", "remote", r.RemoteAddr)
}

// eventRelay is the ResponseWriter the Engine API's event stream writes to: each
// whole line (one JSON event) goes on to the page as one server-sent event.
type eventRelay struct {
	w       http.ResponseWriter
	flusher http.Flusher
	header  http.Header
	partial []byte
}

func (e *eventRelay) Header() http.Header { return e.header }
func (e *eventRelay) WriteHeader(int)     {}
func (e *eventRelay) Flush()              {}

func (e *eventRelay) Write(b []byte) (int, error) {
	e.partial = append(e.partial, b...)
	for {
		i := bytes.IndexByte(e.partial, '\n')
		if i < 0 {
			return len(b), nil
		}
		line := bytes.TrimSpace(e.partial[:i])
		e.partial = e.partial[i+1:]
		if len(line) == 0 {
			continue
		}
		if _, err := fmt.Fprintf(e.w, "data: %s\n\n", line); err != nil {
			return 0, err
		}
		e.flusher.Flush()
	}
}
