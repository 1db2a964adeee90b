package dispatcher

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"reflect"
	"slices"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/session"
	"github.com/shoal-project/shoal/cluster/store"
	"github.com/shoal-project/shoal/cluster/taskstate"
)

// stream produces a session's messages: first the session's ID, the heartbeat
// period, the managers, the node object and every task the node has; then each
// change of its tasks or of its node object, and a keepalive every period; the
// managers when they change, with the next overlay view (a node that joins or
// leaves changes the mesh) or keepalive.
func (d *Dispatcher) stream(ctx context.Context, nodeID, sessionID string, period time.Duration) (<-chan session.Message, error) {
	first := session.Message{SessionID: sessionID, HeartbeatPeriod: period, Managers: d.managers(), Peers: d.peers(nodeID), Mesh: d.mesh()}
	d.mu.Lock()
	feed := d.overlay
	d.mu.Unlock()
	if feed == nil {
		feed = newOverlayFeed() // never changes: only in tests that stream without Run
	}
	view, overlayChanged := feed.current()
	first.Overlay = view
	names := map[string]string{}
	events, err := d.store.ViewAndWatchNode(ctx, nodeID, func(tx store.ReadTx) error {
		n, err := tx.Node(nodeID)
		if err != nil {
			return err
		}
		first.Node = n
		set := &session.AssignmentSet{Full: true}
		tasks, err := tx.TasksByNode(nodeID)
		if err != nil {
			return err
		}
		for _, t := range tasks {
			set.Tasks = append(set.Tasks, assignment(tx, names, t))
		}
		first.Assignments = set
		first.CA = caState(tx)
		return nil
	}, store.KindTask, store.KindNode, store.KindRoot)
	if err != nil {
		return nil, err
	}
	out := make(chan session.Message, 16)
	go func() {
		defer close(out)
		send := func(m session.Message) bool {
			select {
			case out <- m:
				return true
			case <-ctx.Done():
				return false
			}
		}
		if !send(first) {
			return
		}
		managers, peers := first.Managers, first.Peers
		keepalive := time.NewTicker(period)
		defer keepalive.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-overlayChanged:
				var now *session.Overlay
				now, overlayChanged = feed.current()
				m := session.Message{}
				if now != view {
					view, m.Overlay = now, now
				}
				// The view changes with the nodes (its mesh): a manager that
				// joins or leaves is learnt now, not at the next keepalive.
				if now := d.managers(); !slices.Equal(now, managers) {
					m.Managers, managers = now, now
				}
				if (m.Overlay != nil || m.Managers != nil) && !send(m) {
					return
				}
			case <-keepalive.C:
				m := session.Message{HeartbeatPeriod: period}
				if now := d.managers(); !slices.Equal(now, managers) {
					m.Managers, managers = now, now
				}
				if now := d.peers(nodeID); !slices.Equal(now, peers) {
					m.Peers, peers = now, now
				}
				// The mesh needs no keepalive: the overlay view carries each
				// change of it to every session at once.
				if !send(m) {
					return
				}
			case ev, ok := <-events:
				if !ok {
					return
				}
				m, ok := d.change(ev, nodeID, names)
				if ok && !send(m) {
					return
				}
			}
		}
	}()
	return out, nil
}

// peers are the control addresses of the ready nodes other than nodeID.
func (d *Dispatcher) peers(nodeID string) []string {
	var out []string
	_ = d.store.View(func(tx store.ReadTx) error {
		peers, err := tx.Peers()
		for _, p := range peers {
			if p.ID == nodeID {
				continue
			}
			if n, err := tx.Node(p.ID); err == nil && n.Status.State == swarm.NodeStateReady {
				out = append(out, p.ControlAddr)
			}
		}
		return err
	})
	slices.Sort(out)
	return out
}

// caState is what node certificates chain to now; nil when the store has no
// CA object yet (a swarm made by an older shoal, until its next change).
func caState(tx store.ReadTx) *session.CAState {
	r, err := tx.Root()
	if err != nil {
		return nil
	}
	return rootState(r)
}

func rootState(r *store.RootCA) *session.CAState {
	block, _ := pem.Decode(r.CertPEM)
	if block == nil {
		return nil
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil
	}
	return &session.CAState{TrustRoots: append(bytes.Clone(r.CertPEM), r.PrevCertPEM...), IssuerKey: cert.RawSubjectPublicKeyInfo}
}

// change turns a store event into a message for nodeID, if it is one.
func (d *Dispatcher) change(ev store.Event, nodeID string, names map[string]string) (session.Message, bool) {
	if ev.Action == store.ActionResync {
		// Changes were lost: the node gets all its assignments again.
		set := session.AssignmentSet{Full: true}
		err := d.store.View(func(tx store.ReadTx) error {
			tasks, err := tx.TasksByNode(nodeID)
			for _, t := range tasks {
				set.Tasks = append(set.Tasks, assignment(tx, names, t))
			}
			return err
		})
		return assignments(set), err == nil
	}
	if r, ok := ev.Object.(*store.RootCA); ok {
		if st := rootState(r); st != nil && ev.Action != store.ActionRemove {
			return session.Message{CA: st}, true
		}
		return session.Message{}, false
	}
	if n, ok := ev.Object.(*swarm.Node); ok {
		if ev.Action == store.ActionRemove || n.ID != nodeID {
			return session.Message{}, false
		}
		// Only the node's spec (role, availability) concerns it, and whether it
		// has a manager status: a demoted manager learns so that the leader
		// took it out of Raft (its own store may never tell it).
		if old, _ := ev.Old.(*swarm.Node); old != nil && reflect.DeepEqual(old.Spec, n.Spec) &&
			(old.ManagerStatus == nil) == (n.ManagerStatus == nil) {
			return session.Message{}, false
		}
		return session.Message{Node: n}, true
	}
	t, ok := ev.Object.(*swarm.Task)
	if !ok {
		return session.Message{}, false
	}
	old, _ := ev.Old.(*swarm.Task)
	switch {
	case ev.Action == store.ActionRemove && t.NodeID == nodeID:
		return assignments(session.AssignmentSet{Removed: []string{t.ID}}), true
	case t.NodeID == nodeID && t.Status.State != swarm.TaskStatePending:
		// Only the manager's changes matter to the node: desired state and
		// placement. The node's own status reports come back as no-ops.
		if old != nil && old.NodeID == t.NodeID && old.DesiredState == t.DesiredState && !taskstate.Less(old.Status.State, swarm.TaskStateAssigned) {
			return session.Message{}, false
		}
		var as session.Assignment
		_ = d.store.View(func(tx store.ReadTx) error {
			as = assignment(tx, names, t)
			return nil
		})
		return assignments(session.AssignmentSet{Tasks: []session.Assignment{as}}), true
	case old != nil && old.NodeID == nodeID && t.NodeID != nodeID:
		return assignments(session.AssignmentSet{Removed: []string{t.ID}}), true
	}
	return session.Message{}, false
}

func assignments(set session.AssignmentSet) session.Message {
	return session.Message{Assignments: &set}
}

// assignment is a task with what its node needs of its service.
func assignment(tx store.ReadTx, names map[string]string, t *swarm.Task) session.Assignment {
	as := session.Assignment{Task: t, ServiceName: serviceName(tx, names, t.ServiceID)}
	// The service's registry credentials reach only the nodes that run its
	// tasks (an older shoal kept them in a secret-kind object).
	if auth, err := tx.RegistryAuth(t.ServiceID); err == nil {
		as.RegistryAuth = auth.Encoded
	} else if old, err := tx.Secret(t.ServiceID + ".registry-auth"); err == nil {
		as.RegistryAuth = string(old.Spec.Data)
	}
	if taskstate.Wanted(t.DesiredState) && t.Spec.ContainerSpec != nil {
		as.Secrets, as.Configs = payloads(tx, t.Spec.ContainerSpec)
		if len(as.Secrets) > 0 || len(as.Configs) > 0 {
			if svc, err := tx.Service(t.ServiceID); err == nil {
				as.ServiceLabels = svc.Spec.Labels
			}
		}
	}
	return as
}

// payloads are the secrets and configs a container spec references, each once;
// one that is gone is left out (the task fails on its node, naming it).
func payloads(tx store.ReadTx, cs *swarm.ContainerSpec) ([]swarm.Secret, []swarm.Config) {
	var secrets []swarm.Secret
	seen := map[string]bool{}
	for _, r := range cs.Secrets {
		if r == nil || seen[r.SecretID] {
			continue
		}
		seen[r.SecretID] = true
		if s, err := tx.Secret(r.SecretID); err == nil {
			secrets = append(secrets, *s)
		}
	}
	var configs []swarm.Config
	seen = map[string]bool{}
	for _, r := range cs.Configs {
		if r == nil || seen[r.ConfigID] {
			continue
		}
		seen[r.ConfigID] = true
		if c, err := tx.Config(r.ConfigID); err == nil {
			configs = append(configs, *c)
		}
	}
	return secrets, configs
}

// serviceName looks a service's name up, remembering it.
func serviceName(tx store.ReadTx, cache map[string]string, id string) string {
	if n, ok := cache[id]; ok {
		return n
	}
	svc, err := tx.Service(id)
	if err != nil {
		return id
	}
	cache[id] = svc.Spec.Name
	return svc.Spec.Name
}

// sameDescription reports whether two node descriptions say the same.
func sameDescription(a, b swarm.NodeDescription) bool { return reflect.DeepEqual(a, b) }
