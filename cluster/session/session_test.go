package session

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

// fakeServer is a manager's session server that leads, or names the leader.
type fakeServer struct {
	mu       sync.Mutex
	leader   string // "": this one leads
	reports  []StatusUpdate
	beats    int
	messages chan Message
}

func (f *fakeServer) Open(ctx context.Context, nodeID string, hello Hello) (string, <-chan Message, error) {
	if nodeID == "gone" {
		return "", nil, UnknownNodeError{NodeID: nodeID}
	}
	out := make(chan Message)
	go func() {
		defer close(out)
		out <- Message{SessionID: "s-" + nodeID, HeartbeatPeriod: time.Second, Managers: []string{"m1:2377", "m2:2377"}}
		for {
			select {
			case m := <-f.messages:
				select {
				case out <- m:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return "s-" + nodeID, out, nil
}

func (f *fakeServer) UpdateTaskStatus(_ context.Context, nodeID, sessionID string, updates []StatusUpdate) error {
	if sessionID != "s-"+nodeID {
		return ErrInvalidSession
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reports = append(f.reports, updates...)
	return nil
}

func (f *fakeServer) Heartbeat(_ context.Context, nodeID, sessionID string) error {
	if sessionID != "s-"+nodeID {
		return ErrInvalidSession
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.beats++
	return nil
}

// manager serves srv over HTTP; the calling node is named by a header (the
// control port names it by its certificate).
func manager(t *testing.T, srv *fakeServer, leader string) string {
	t.Helper()
	h := Handler(func() (Server, error) {
		if leader != "" {
			return nil, NotLeaderError{Leader: leader}
		}
		return srv, nil
	}, func(r *http.Request) (string, error) { return r.Header.Get("Node"), nil })
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return strings.TrimPrefix(ts.URL, "http://")
}

// nodeClient speaks plain HTTP to the test managers, as node n.
func nodeClient(n string) *http.Client {
	return &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.URL.Scheme = "http"
		r.Header.Set("Node", n)
		return http.DefaultTransport.RoundTrip(r)
	})}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestFollowerFindsTheLeader opens a session through a manager that does not
// lead: the node follows it to the leader, hears its messages and the
// managers, and its reports and heartbeats arrive.
func TestFollowerFindsTheLeader(t *testing.T) {
	srv := &fakeServer{messages: make(chan Message, 1)}
	leader := manager(t, srv, "")
	follower := manager(t, nil, leader)
	var kept []string
	f := NewFollower(FollowerConfig{NodeID: "n1", Client: nodeClient("n1"), Managers: []string{"127.0.0.1:1", follower},
		OnManagers: func(l []string) { kept = l }})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := f.Open(ctx, Hello{Description: swarm.NodeDescription{Hostname: "n1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if m := <-s.Messages(); m.SessionID != "s-n1" {
		t.Fatalf("first message %+v", m)
	}
	if len(kept) != 2 || f.Managers()[0] != "m1:2377" {
		t.Errorf("managers kept %v, want the session's", kept)
	}
	srv.messages <- Message{Assignments: &AssignmentSet{Removed: []string{"t1"}}}
	if m := <-s.Messages(); m.Assignments == nil || m.Assignments.Removed[0] != "t1" {
		t.Fatalf("second message %+v", m)
	}
	if err := s.UpdateTaskStatus(ctx, []StatusUpdate{{TaskID: "t1", Status: swarm.TaskStatus{State: swarm.TaskStateRunning}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if len(srv.reports) != 1 || srv.beats != 1 {
		t.Fatalf("manager got %d reports and %d heartbeats, want 1 and 1", len(srv.reports), srv.beats)
	}
}

func TestRemovedNodeIsToldSo(t *testing.T) {
	addr := manager(t, &fakeServer{}, "")
	_, err := Remote(nodeClient("gone"), addr).Open(context.Background(), Hello{})
	var un UnknownNodeError
	if !errors.As(err, &un) {
		t.Fatalf("open for a removed node: %v, want UnknownNodeError", err)
	}
}

// A manager that goes silent ends the session after three heartbeat periods.
func TestSilentManagerEndsSession(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"SessionID":"s","HeartbeatPeriod":50000000}` + "\n"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer ts.Close()
	s, err := Remote(nodeClient("n1"), strings.TrimPrefix(ts.URL, "http://")).Open(context.Background(), Hello{})
	if err != nil {
		t.Fatal(err)
	}
	<-s.Messages()
	select {
	case _, ok := <-s.Messages():
		if ok {
			t.Fatal("a message from a silent manager")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("session with a silent manager still open after 5 s")
	}
	if s.Err() == nil {
		t.Fatal("no error for a session ended by silence")
	}
}
