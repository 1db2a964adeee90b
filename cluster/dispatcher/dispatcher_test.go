package dispatcher

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/session"
	"github.com/shoal-project/shoal/cluster/store"
	"github.com/shoal-project/shoal/cluster/store/storetest"
)

// serving starts a dispatcher over a store holding nodes n1 and n2, with a
// heartbeat period of period.
func serving(t *testing.T, period time.Duration) (*store.Store, *Dispatcher, context.Context) {
	t.Helper()
	return servingWith(t, period, nil)
}

// servingWith is serving with m told of heartbeats.
func servingWith(t *testing.T, period time.Duration, m Metrics) (*store.Store, *Dispatcher, context.Context) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st := storetest.Leader(t, "n1")
	err := st.Update(ctx, func(tx store.Tx) error {
		cl := &swarm.Swarm{ClusterInfo: swarm.ClusterInfo{ID: "c1"}}
		cl.Spec.Dispatcher.HeartbeatPeriod = period
		if err := tx.CreateCluster(cl); err != nil {
			return err
		}
		for _, id := range []string{"n1", "n2"} {
			n := &swarm.Node{ID: id, Spec: swarm.NodeSpec{Role: swarm.NodeRoleWorker, Availability: swarm.NodeAvailabilityActive}}
			n.Status.State = swarm.NodeStateUnknown
			if err := tx.CreateNode(n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	d := New(Config{Store: st, Managers: func() []string { return []string{"10.0.0.1:2377"} }, CloseGrace: 200 * time.Millisecond, Metrics: m, Logger: slog.New(slog.DiscardHandler)})
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, func() bool { _, err := d.running(); return err == nil })
	return st, d, ctx
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func next(t *testing.T, ch <-chan session.Message) session.Message {
	t.Helper()
	for {
		select {
		case m, ok := <-ch:
			if !ok {
				t.Fatal("session ended")
			}
			if m.Assignments == nil && m.SessionID == "" {
				continue // a keepalive
			}
			return m
		case <-time.After(5 * time.Second):
			t.Fatal("no session message")
		}
	}
}

func nodeState(t *testing.T, st *store.Store, id string) swarm.NodeState {
	t.Helper()
	var state swarm.NodeState
	_ = st.View(func(tx store.ReadTx) error {
		n, err := tx.Node(id)
		if err == nil {
			state = n.Status.State
		}
		return err
	})
	return state
}

func TestAssignmentsAndStatus(t *testing.T) {
	st, d, ctx := serving(t, 5*time.Second)
	svc := &swarm.Service{ID: "s1", Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "web"}}}
	task := &swarm.Task{ID: "t1", ServiceID: "s1", DesiredState: swarm.TaskStateRunning}
	task.Status.State = swarm.TaskStatePending
	err := st.Update(ctx, func(tx store.Tx) error {
		if err := tx.CreateService(svc); err != nil {
			return err
		}
		return tx.CreateTask(task)
	})
	if err != nil {
		t.Fatal(err)
	}
	hello := session.Hello{Addr: "10.0.0.2", ControlAddr: "10.0.0.2:2377", Description: swarm.NodeDescription{Hostname: "w1"}}
	sid, msgs, err := d.Open(ctx, "n1", hello)
	if err != nil {
		t.Fatal(err)
	}
	first := next(t, msgs)
	if first.SessionID != sid || first.Node == nil || first.Node.ID != "n1" || len(first.Managers) != 1 || first.HeartbeatPeriod != 5*time.Second {
		t.Fatalf("first message %+v", first)
	}
	if a := first.Assignments; a == nil || !a.Full || len(a.Tasks) != 0 {
		t.Fatalf("first set %+v, want a full empty set", a)
	}
	if got := nodeState(t, st, "n1"); got != swarm.NodeStateReady {
		t.Fatalf("node state after open %s, want ready", got)
	}
	var peer *store.Peer
	_ = st.View(func(tx store.ReadTx) error { peer, err = tx.Peer("n1"); return err })
	if peer == nil || peer.ControlAddr != "10.0.0.2:2377" {
		t.Fatalf("peer %+v, want the control address of the hello", peer)
	}
	// The scheduler places the task on n1: the node hears of it, with the service name.
	err = st.Update(ctx, func(tx store.Tx) error {
		t, err := tx.Task("t1")
		if err != nil {
			return err
		}
		t.NodeID, t.Status.State = "n1", swarm.TaskStateAssigned
		return tx.UpdateTask(t)
	})
	if err != nil {
		t.Fatal(err)
	}
	m := next(t, msgs)
	if set := m.Assignments; set == nil || len(set.Tasks) != 1 || set.Tasks[0].Task.ID != "t1" || set.Tasks[0].ServiceName != "web" {
		t.Fatalf("assignment %+v", m)
	}

	report := func(node, sess string, state swarm.TaskState) error {
		return d.UpdateTaskStatus(ctx, node, sess, []session.StatusUpdate{{TaskID: "t1", Status: swarm.TaskStatus{State: state}}})
	}
	if err := report("n1", sid, swarm.TaskStateRunning); err != nil {
		t.Fatal(err)
	}
	if err := report("n1", sid, swarm.TaskStateStarting); err != nil { // late, out of order: ignored
		t.Fatal(err)
	}
	if err := report("n1", "stale", swarm.TaskStateFailed); !errors.Is(err, session.ErrInvalidSession) {
		t.Fatalf("report from an unknown session: %v, want ErrInvalidSession", err)
	}
	_, _, err = d.Open(ctx, "n2", hello)
	if err != nil {
		t.Fatal(err)
	}
	var got swarm.TaskState
	_ = st.View(func(tx store.ReadTx) error {
		tk, err := tx.Task("t1")
		got = tk.Status.State
		return err
	})
	if got != swarm.TaskStateRunning {
		t.Fatalf("task state %s, want running (backwards and stale reports ignored)", got)
	}

	// The node's own reports are not echoed back as assignments; a desired state
	// change is, and a deletion arrives as a removal.
	err = st.Update(ctx, func(tx store.Tx) error {
		tk, err := tx.Task("t1")
		if err != nil {
			return err
		}
		tk.DesiredState = swarm.TaskStateShutdown
		return tx.UpdateTask(tk)
	})
	if err != nil {
		t.Fatal(err)
	}
	if m := next(t, msgs); m.Assignments == nil || len(m.Assignments.Tasks) != 1 || m.Assignments.Tasks[0].Task.DesiredState != swarm.TaskStateShutdown {
		t.Fatalf("desired state change %+v", m)
	}
	if err := st.Update(ctx, func(tx store.Tx) error { return tx.DeleteTask("t1") }); err != nil {
		t.Fatal(err)
	}
	if m := next(t, msgs); m.Assignments == nil || len(m.Assignments.Removed) != 1 || m.Assignments.Removed[0] != "t1" {
		t.Fatalf("removal %+v", m)
	}
}

// A node whose session breaks and does not come back within the grace is down;
// one that comes back in time stays ready.
func TestBrokenSessionMarksNodeDown(t *testing.T) {
	st, d, ctx := serving(t, 5*time.Second)
	sctx, end := context.WithCancel(ctx)
	if _, _, err := d.Open(sctx, "n2", session.Hello{Addr: "10.0.0.3"}); err != nil {
		t.Fatal(err)
	}
	end()
	sid, _, err := d.Open(ctx, "n2", session.Hello{Addr: "10.0.0.3"}) // back in time (a daemon restart)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond) // twice the grace: nothing may happen
	if got := nodeState(t, st, "n2"); got != swarm.NodeStateReady {
		t.Fatalf("node that reopened its session is %s, want ready", got)
	}
	if err := d.Heartbeat(ctx, "n2", sid); err != nil {
		t.Fatalf("heartbeat of the current session: %v", err)
	}
	d.mu.Lock()
	d.nodes["n2"].cancel() // the stream breaks for good
	d.mu.Unlock()
	waitFor(t, func() bool { return nodeState(t, st, "n2") == swarm.NodeStateDown })
	if err := d.Heartbeat(ctx, "n2", sid); !errors.Is(err, session.ErrInvalidSession) {
		t.Fatalf("heartbeat of an expired session: %v, want ErrInvalidSession", err)
	}
}

// A node that stops sending heartbeats is down after three periods, though its
// stream stays open (a frozen daemon); heartbeats keep it ready.
func TestSilentNodeIsMarkedDown(t *testing.T) {
	st, d, ctx := serving(t, 100*time.Millisecond)
	beating, _, err := d.Open(ctx, "n1", session.Hello{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Open(ctx, "n2", session.Hello{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for nodeState(t, st, "n2") != swarm.NodeStateDown {
		if err := d.Heartbeat(ctx, "n1", beating); err != nil {
			t.Fatal(err)
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("silent node never marked down")
		}
		time.Sleep(30 * time.Millisecond)
	}
	if elapsed := time.Since(start); elapsed < 250*time.Millisecond {
		t.Errorf("silent node down after %s, before three heartbeat periods", elapsed)
	}
	if got := nodeState(t, st, "n1"); got != swarm.NodeStateReady {
		t.Fatalf("node sending heartbeats is %s, want ready", got)
	}
}

func TestUnknownNodeRefused(t *testing.T) {
	_, d, ctx := serving(t, time.Second)
	_, _, err := d.Open(ctx, "removed", session.Hello{})
	var un session.UnknownNodeError
	if !errors.As(err, &un) {
		t.Fatalf("session of an unknown node: %v, want UnknownNodeError", err)
	}
}

// A node gets a secret or config with the assignment of a task that uses it,
// while the task is wanted; other nodes never get it.
func TestSecretsGoOnlyWithTheirTasks(t *testing.T) {
	st, d, ctx := serving(t, time.Second)
	cs := &swarm.ContainerSpec{Image: "busybox",
		Secrets: []*swarm.SecretReference{{SecretID: "sec1", SecretName: "db_pass", File: &swarm.SecretReferenceFileTarget{Name: "db_pass"}}},
		Configs: []*swarm.ConfigReference{{ConfigID: "cfg1", ConfigName: "app", File: &swarm.ConfigReferenceFileTarget{Name: "/app"}}},
	}
	err := st.Update(ctx, func(tx store.Tx) error {
		if err := tx.CreateSecret(&swarm.Secret{ID: "sec1", Spec: swarm.SecretSpec{Annotations: swarm.Annotations{Name: "db_pass"}, Data: []byte("hunter2")}}); err != nil {
			return err
		}
		if err := tx.CreateSecret(&swarm.Secret{ID: "sec2", Spec: swarm.SecretSpec{Annotations: swarm.Annotations{Name: "unused"}, Data: []byte("other")}}); err != nil {
			return err
		}
		if err := tx.CreateConfig(&swarm.Config{ID: "cfg1", Spec: swarm.ConfigSpec{Annotations: swarm.Annotations{Name: "app"}, Data: []byte("x")}}); err != nil {
			return err
		}
		if err := tx.CreateService(&swarm.Service{ID: "svc1", Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "db", Labels: map[string]string{"a": "b"}}}}); err != nil {
			return err
		}
		return tx.CreateTask(&swarm.Task{ID: "t1", ServiceID: "svc1", NodeID: "n1", DesiredState: swarm.TaskStateRunning,
			Spec: swarm.TaskSpec{ContainerSpec: cs}, Status: swarm.TaskStatus{State: swarm.TaskStateAssigned}})
	})
	if err != nil {
		t.Fatal(err)
	}
	_, n1, err := d.Open(ctx, "n1", session.Hello{})
	if err != nil {
		t.Fatal(err)
	}
	_, n2, err := d.Open(ctx, "n2", session.Hello{})
	if err != nil {
		t.Fatal(err)
	}
	first := next(t, n1).Assignments
	if first == nil || len(first.Tasks) != 1 {
		t.Fatalf("n1's first assignments: %+v", first)
	}
	as := first.Tasks[0]
	if len(as.Secrets) != 1 || string(as.Secrets[0].Spec.Data) != "hunter2" || len(as.Configs) != 1 || as.ServiceLabels["a"] != "b" {
		t.Fatalf("n1's task came with secrets %+v configs %+v labels %v", as.Secrets, as.Configs, as.ServiceLabels)
	}
	if other := next(t, n2).Assignments; other == nil || len(other.Tasks) != 0 {
		t.Fatalf("n2 got assignments %+v", other)
	}
	// Once the task is to stop, its assignment carries no secret any more.
	err = st.Update(ctx, func(tx store.Tx) error {
		tk, err := tx.Task("t1")
		if err != nil {
			return err
		}
		tk.DesiredState = swarm.TaskStateShutdown
		return tx.UpdateTask(tk)
	})
	if err != nil {
		t.Fatal(err)
	}
	m := next(t, n1).Assignments
	if m == nil || len(m.Tasks) != 1 || len(m.Tasks[0].Secrets) != 0 || len(m.Tasks[0].Configs) != 0 {
		t.Fatalf("the stopping task's assignment: %+v", m)
	}
}

// A node that opens a session with a mesh key gets a mesh address of its own,
// kept across sessions; the mesh lists every ready node with its key, endpoint
// and address, and a node without a key is not on it.
func TestMeshAddresses(t *testing.T) {
	st, d, ctx := serving(t, 5*time.Second)
	open := func(node, key string) session.Message {
		t.Helper()
		hello := session.Hello{Addr: "10.0.0.9", ControlAddr: "10.0.0.9:2377", MeshKey: key, MeshEndpoint: "10.0.0.9:51820"}
		_, msgs, err := d.Open(ctx, node, hello)
		if err != nil {
			t.Fatal(err)
		}
		return next(t, msgs)
	}
	open("n1", "key1")
	first := open("n2", "key2")
	if len(first.Mesh) != 2 || first.Mesh[0].NodeID != "n1" || first.Mesh[0].Addr != "10.254.0.1" ||
		first.Mesh[1].Addr != "10.254.0.2" || first.Mesh[1].Key != "key2" || first.Mesh[1].Endpoint != "10.0.0.9:51820" {
		t.Fatalf("mesh %+v, want n1 at 10.254.0.1 and n2 at 10.254.0.2", first.Mesh)
	}
	// A new key (the node restarted) keeps the address.
	again := open("n1", "key1b")
	if again.Mesh[0].Addr != "10.254.0.1" || again.Mesh[0].Key != "key1b" {
		t.Errorf("n1 after a new key: %+v", again.Mesh[0])
	}
	var free string
	_ = st.View(func(tx store.ReadTx) error { free, _ = freeMeshAddr(tx); return nil })
	if free != "10.254.0.3" {
		t.Errorf("next free mesh address %s, want 10.254.0.3", free)
	}
}

// A node's session hears of changes to its own spec and to whether it has a
// manager status (a demoted manager learns the leader took it out of Raft,
// which its own store may never tell it), not of its heartbeats.
func TestNodeChangesSentToItsSession(t *testing.T) {
	d := New(Config{Logger: slog.New(slog.DiscardHandler)})
	manager := swarm.Node{ID: "n1", Spec: swarm.NodeSpec{Role: swarm.NodeRoleManager}, ManagerStatus: &swarm.ManagerStatus{Addr: "10.0.0.1:2377"}}
	demoted := manager
	demoted.Spec.Role = swarm.NodeRoleWorker
	removed := demoted
	removed.ManagerStatus = nil
	beat := removed
	beat.Status.Addr = "10.0.0.9"
	for _, tc := range []struct {
		name     string
		old, new swarm.Node
		sent     bool
	}{
		{"demoted", manager, demoted, true},
		{"taken out of raft", demoted, removed, true},
		{"status only", removed, beat, false},
	} {
		_, sent := d.change(store.Event{Kind: store.KindNode, Action: store.ActionUpdate, ID: "n1", Object: &tc.new, Old: &tc.old}, "n1", nil)
		if sent != tc.sent {
			t.Errorf("%s: sent = %v, want %v", tc.name, sent, tc.sent)
		}
	}
}
