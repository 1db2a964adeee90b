package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/shoal-project/shoal/cluster/store"
	"github.com/shoal-project/shoal/runtime/container"
)

// A task's logs are on the node that ran it. A manager reads another node's
// through that node's control port: GET /logs streams a container's records as
// JSON lines. Only managers may ask (they answer `docker service logs`).

// logsRequest encodes opts as the query of GET /logs for a container.
func logsRequest(containerID string, opts container.LogOptions) url.Values {
	q := url.Values{"container": {containerID}, "tail": {strconv.Itoa(opts.Tail)}}
	if opts.Follow {
		q.Set("follow", "1")
	}
	if opts.Stdout {
		q.Set("stdout", "1")
	}
	if opts.Stderr {
		q.Set("stderr", "1")
	}
	if !opts.Since.IsZero() {
		q.Set("since", opts.Since.Format(time.RFC3339Nano))
	}
	if !opts.Until.IsZero() {
		q.Set("until", opts.Until.Format(time.RFC3339Nano))
	}
	return q
}

// serveLogs streams a task container's logs to a manager.
func (c *Cluster) serveLogs(w http.ResponseWriter, r *http.Request) {
	peer, err := peerIdentity(r)
	if err != nil || !peer.IsManager() {
		writeRPCError(w, http.StatusForbidden, errors.New("only managers read other nodes' logs"))
		return
	}
	q := r.URL.Query()
	opts := container.LogOptions{Follow: q.Get("follow") == "1", Stdout: q.Get("stdout") == "1", Stderr: q.Get("stderr") == "1", Tail: -1}
	if n, err := strconv.Atoi(q.Get("tail")); err == nil {
		opts.Tail = n
	}
	for key, dst := range map[string]*time.Time{"since": &opts.Since, "until": &opts.Until} {
		if v := q.Get(key); v != "" {
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				writeRPCError(w, http.StatusBadRequest, fmt.Errorf("invalid %s: %w", key, err))
				return
			}
			*dst = t
		}
	}
	entries, err := c.localLogs(r.Context(), q.Get("container"), opts)
	if err != nil {
		writeRPCError(w, http.StatusNotFound, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	enc := json.NewEncoder(w)
	for e := range entries {
		if err := enc.Encode(e); err != nil {
			return
		}
		if flusher != nil && len(entries) == 0 {
			flusher.Flush()
		}
	}
}

// remoteLogs reads a container's logs on node nodeID.
func (c *Cluster) remoteLogs(ctx context.Context, s *store.Store, nodeID, containerID string, opts container.LogOptions) (<-chan container.LogEntry, error) {
	var addr string
	err := s.View(func(tx store.ReadTx) error {
		p, err := tx.Peer(nodeID)
		if err != nil {
			return err
		}
		addr = p.ControlAddr
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("find node %s: %w", nodeID, err)
	}
	c.mu.RLock()
	creds := c.creds
	c.mu.RUnlock()
	u := url.URL{Scheme: "https", Host: addr, Path: "/logs", RawQuery: logsRequest(containerID, opts).Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := creds.HTTPClient(true).Do(req)
	if err != nil {
		return nil, fmt.Errorf("read logs on node %s: %w", nodeID, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("read logs on node %s: %s: %s", nodeID, resp.Status, body)
	}
	out := make(chan container.LogEntry, 64)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		for {
			var e container.LogEntry
			if err := dec.Decode(&e); err != nil {
				return
			}
			select {
			case out <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}
