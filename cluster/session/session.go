// Package session is the contract between a node's agent and the manager that
// dispatches to it: what a session carries (assignments down; task status and
// heartbeats up), and the two ways to hold one: in-process, when the node's own
// manager leads the swarm, and over the control port otherwise. Everything here
// is plain data that serialises to JSON; neither side's internals leak into it.
package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

// Assignment is one task given to a node, with what the worker needs to know of
// its service.
type Assignment struct {
	Task        *swarm.Task
	ServiceName string
	// RegistryAuth is the credentials the service was created with for pulling
	// its image (X-Registry-Auth, still encoded); "" pulls anonymously.
	RegistryAuth string `json:",omitempty"`
	// Secrets and Configs are the objects the task's container spec references,
	// with their data, while the task is wanted (desired ready or running): a
	// node gets a secret only while it has a task that uses it, and keeps it in
	// memory only.
	Secrets []swarm.Secret `json:",omitempty"`
	Configs []swarm.Config `json:",omitempty"`
	// ServiceLabels are the service's labels, for templated secrets and
	// configs ({{.Service.Labels}}); sent with them only.
	ServiceLabels map[string]string `json:",omitempty"`
}

// AssignmentSet is a change to a node's assignments. The first set of a session
// is Full: every task the node has; later ones carry only what changed.
type AssignmentSet struct {
	Full    bool         `json:",omitempty"`
	Tasks   []Assignment `json:",omitempty"`
	Removed []string     `json:",omitempty"` // IDs of tasks no longer assigned
}

// StatusUpdate is a task state change observed on a node.
type StatusUpdate struct {
	TaskID string
	Status swarm.TaskStatus
}

// Hello is what a node says of itself when it opens a session.
type Hello struct {
	Description swarm.NodeDescription
	// Addr is the IP address other nodes reach this one at (the node's
	// Status.Addr).
	Addr string
	// ControlAddr is the host:port of the node's control port, where its logs
	// and images are served.
	ControlAddr string
	// MeshKey is the public key of the node's WireGuard interface (base64),
	// and MeshEndpoint the host:port its data plane listens on; empty when
	// the node has no interface.
	MeshKey      string `json:",omitempty"`
	MeshEndpoint string `json:",omitempty"`
}

// MeshPeer is a node of the swarm's WireGuard mesh: its key, where its data
// plane listens, and its address on the mesh.
type MeshPeer struct {
	NodeID   string
	Key      string // base64 public key
	Endpoint string // host:port
	Addr     string // the node's mesh address, e.g. 10.254.0.3
}

// Message is one message of a session, from the manager to the node.
type Message struct {
	// SessionID names the session; the first message carries it.
	SessionID string `json:",omitempty"`
	// Assignments is a change of the node's tasks.
	Assignments *AssignmentSet `json:",omitempty"`
	// HeartbeatPeriod is how often the node must send a heartbeat.
	HeartbeatPeriod time.Duration `json:",omitempty"`
	// Managers are the control addresses of the swarm's managers, the leader
	// first; sent when the session opens and whenever they change.
	Managers []string `json:",omitempty"`
	// Peers are the control addresses of the swarm's other ready nodes, where
	// their images can be fetched; sent when the session opens and whenever
	// they change.
	Peers []string `json:",omitempty"`
	// Mesh is every ready node of the WireGuard mesh, this one included (its
	// entry gives it its mesh address); sent when the session opens, and its
	// changes come with the overlay view (Overlay.Mesh).
	Mesh []MeshPeer `json:",omitempty"`
	// Overlay is the swarm's overlay networks, services and task addresses;
	// sent when the session opens and whenever they change.
	Overlay *Overlay `json:",omitempty"`
	// CA is what a node's certificate should chain to; sent when the session
	// opens and whenever the swarm's root changes (a rotation).
	CA *CAState `json:",omitempty"`
	// Node is the node's own object (spec and role) as the managers keep it;
	// sent when the session opens and whenever it changes.
	Node *swarm.Node `json:",omitempty"`
}

// CAState says what node certificates chain to now.
type CAState struct {
	// TrustRoots are the roots nodes trust (PEM; two while the root rotates).
	TrustRoots []byte
	// IssuerKey is the signing root's public key (SubjectPublicKeyInfo, DER):
	// a node whose certificate another key signed asks for a new one.
	IssuerKey []byte
}

// Dispatcher is the manager side of a session, as the node sees it.
type Dispatcher interface {
	// Open starts a session. Its messages flow until ctx is done, the session
	// is closed, or the manager goes away.
	Open(ctx context.Context, hello Hello) (Session, error)
}

// Session is one open session.
type Session interface {
	// Messages delivers the manager's messages; it is closed when the session
	// ends, and Err then says why.
	Messages() <-chan Message
	Err() error
	// UpdateTaskStatus records observed task states; a state never moves
	// backwards, and a report about a task not on this node is ignored.
	UpdateTaskStatus(ctx context.Context, updates []StatusUpdate) error
	// Heartbeat tells the manager the node is alive.
	Heartbeat(ctx context.Context) error
	// Close ends the session.
	Close()
}

// Server is what the manager offers sessions: it serves one node at a time,
// named by the caller (from the peer's certificate, never from the request).
type Server interface {
	Open(ctx context.Context, nodeID string, hello Hello) (sessionID string, messages <-chan Message, err error)
	UpdateTaskStatus(ctx context.Context, nodeID, sessionID string, updates []StatusUpdate) error
	Heartbeat(ctx context.Context, nodeID, sessionID string) error
}

// ErrInvalidSession means the manager no longer knows the session (it was
// replaced, or leadership moved): the node opens a new one.
var ErrInvalidSession = errors.New("session: the manager does not know this session")

// NotLeaderError says the node asked does not lead, and which manager does
// (Leader is "" when none is known right now); Managers are the managers it
// knows of, for a node whose own list is out of date.
type NotLeaderError struct {
	Leader   string
	Managers []string `json:",omitempty"`
}

func (e NotLeaderError) Error() string {
	if e.Leader == "" {
		return "session: this manager is not the leader, and no leader is known"
	}
	return fmt.Sprintf("session: this manager is not the leader; the leader is %s", e.Leader)
}

// UnknownNodeError says the manager does not know the node: it was removed from
// the swarm, and its certificate is no longer good for anything.
type UnknownNodeError struct{ NodeID string }

func (e UnknownNodeError) Error() string {
	return fmt.Sprintf("session: node %s is not part of the swarm", e.NodeID)
}
