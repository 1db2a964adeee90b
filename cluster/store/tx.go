package store

import (
	"encoding/json"
	"fmt"
	"reflect"

	memdb "github.com/hashicorp/go-memdb"
	"github.com/moby/moby/api/types/swarm"
)

// ReadTx reads one consistent snapshot of the store. Every object it returns
// is a deep copy the caller may change and write back. Lookups of a missing
// object return an error with NotFound() bool.
type ReadTx interface {
	Cluster() (*swarm.Swarm, error)
	Node(id string) (*swarm.Node, error)
	Nodes() ([]*swarm.Node, error)
	Service(id string) (*swarm.Service, error)
	// ServiceByName matches names case-insensitively, as uniqueness does.
	ServiceByName(name string) (*swarm.Service, error)
	Services() ([]*swarm.Service, error)
	Task(id string) (*swarm.Task, error)
	Tasks() ([]*swarm.Task, error)
	TasksByService(serviceID string) ([]*swarm.Task, error)
	TasksByNode(nodeID string) ([]*swarm.Task, error)
	Network(id string) (*swarm.Network, error)
	NetworkByName(name string) (*swarm.Network, error)
	Networks() ([]*swarm.Network, error)
	Secret(id string) (*swarm.Secret, error)
	SecretByName(name string) (*swarm.Secret, error)
	Secrets() ([]*swarm.Secret, error)
	Config(id string) (*swarm.Config, error)
	ConfigByName(name string) (*swarm.Config, error)
	Configs() ([]*swarm.Config, error)
	Peer(nodeID string) (*Peer, error)
	Peers() ([]*Peer, error)
	Root() (*RootCA, error)
	RegistryAuth(serviceID string) (*RegistryAuth, error)
	// Index is the last Raft index applied when the snapshot was taken.
	Index() uint64
}

// Tx is the transaction an Update function writes through. Its reads see
// its own writes. Update and Delete compare-and-set: Update on the
// Version.Index of the object passed, Delete on the version current in the
// transaction; both are checked again when the batch is applied.
type Tx interface {
	ReadTx
	CreateCluster(c *swarm.Swarm) error
	UpdateCluster(c *swarm.Swarm) error
	CreateNode(n *swarm.Node) error
	UpdateNode(n *swarm.Node) error
	DeleteNode(id string) error
	CreateService(s *swarm.Service) error
	UpdateService(s *swarm.Service) error
	DeleteService(id string) error
	CreateTask(t *swarm.Task) error
	UpdateTask(t *swarm.Task) error
	DeleteTask(id string) error
	CreateNetwork(n *swarm.Network) error
	UpdateNetwork(n *swarm.Network) error
	DeleteNetwork(id string) error
	CreateSecret(s *swarm.Secret) error
	UpdateSecret(s *swarm.Secret) error
	DeleteSecret(id string) error
	CreateConfig(c *swarm.Config) error
	UpdateConfig(c *swarm.Config) error
	DeleteConfig(id string) error
	CreatePeer(p *Peer) error
	UpdatePeer(p *Peer) error
	DeletePeer(nodeID string) error
	CreateRoot(r *RootCA) error
	UpdateRoot(r *RootCA) error
	CreateRegistryAuth(a *RegistryAuth) error
	UpdateRegistryAuth(a *RegistryAuth) error
	DeleteRegistryAuth(serviceID string) error
}

// readTx implements ReadTx on a memdb transaction.
type readTx struct {
	txn   *memdb.Txn
	index uint64
}

func one[T any](txn *memdb.Txn, k Kind, index, key string) (*T, error) {
	raw, err := txn.First(string(k), index, key)
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", k, key, err)
	}
	if raw == nil {
		return nil, notFoundError{kind: k, id: key}
	}
	return decodeAs[T](raw.(*record))
}

func all[T any](txn *memdb.Txn, k Kind, index, key string) ([]*T, error) {
	it, err := txn.Get(string(k), index, key)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", k, err)
	}
	var out []*T
	for raw := it.Next(); raw != nil; raw = it.Next() {
		obj, err := decodeAs[T](raw.(*record))
		if err != nil {
			return nil, err
		}
		out = append(out, obj)
	}
	return out, nil
}

func (r *readTx) Index() uint64 { return r.index }

func (r *readTx) Cluster() (*swarm.Swarm, error) {
	return one[swarm.Swarm](r.txn, KindCluster, "id_prefix", "")
}

func (r *readTx) Node(id string) (*swarm.Node, error) {
	return one[swarm.Node](r.txn, KindNode, "id", id)
}
func (r *readTx) Nodes() ([]*swarm.Node, error) {
	return all[swarm.Node](r.txn, KindNode, "id_prefix", "")
}

func (r *readTx) Service(id string) (*swarm.Service, error) {
	return one[swarm.Service](r.txn, KindService, "id", id)
}

func (r *readTx) ServiceByName(name string) (*swarm.Service, error) {
	return one[swarm.Service](r.txn, KindService, "name", name)
}

func (r *readTx) Services() ([]*swarm.Service, error) {
	return all[swarm.Service](r.txn, KindService, "id_prefix", "")
}

func (r *readTx) Task(id string) (*swarm.Task, error) {
	return one[swarm.Task](r.txn, KindTask, "id", id)
}
func (r *readTx) Tasks() ([]*swarm.Task, error) {
	return all[swarm.Task](r.txn, KindTask, "id_prefix", "")
}

func (r *readTx) TasksByService(serviceID string) ([]*swarm.Task, error) {
	return all[swarm.Task](r.txn, KindTask, "service", serviceID)
}

func (r *readTx) TasksByNode(nodeID string) ([]*swarm.Task, error) {
	return all[swarm.Task](r.txn, KindTask, "node", nodeID)
}

func (r *readTx) Network(id string) (*swarm.Network, error) {
	return one[swarm.Network](r.txn, KindNetwork, "id", id)
}

func (r *readTx) NetworkByName(name string) (*swarm.Network, error) {
	return one[swarm.Network](r.txn, KindNetwork, "name", name)
}

func (r *readTx) Networks() ([]*swarm.Network, error) {
	return all[swarm.Network](r.txn, KindNetwork, "id_prefix", "")
}

func (r *readTx) Secret(id string) (*swarm.Secret, error) {
	return one[swarm.Secret](r.txn, KindSecret, "id", id)
}

func (r *readTx) SecretByName(name string) (*swarm.Secret, error) {
	return one[swarm.Secret](r.txn, KindSecret, "name", name)
}

func (r *readTx) Secrets() ([]*swarm.Secret, error) {
	return all[swarm.Secret](r.txn, KindSecret, "id_prefix", "")
}

func (r *readTx) Config(id string) (*swarm.Config, error) {
	return one[swarm.Config](r.txn, KindConfig, "id", id)
}

func (r *readTx) ConfigByName(name string) (*swarm.Config, error) {
	return one[swarm.Config](r.txn, KindConfig, "name", name)
}

func (r *readTx) Configs() ([]*swarm.Config, error) {
	return all[swarm.Config](r.txn, KindConfig, "id_prefix", "")
}

func (r *readTx) Peer(nodeID string) (*Peer, error) {
	return one[Peer](r.txn, KindPeer, "id", nodeID)
}

func (r *readTx) Peers() ([]*Peer, error) {
	return all[Peer](r.txn, KindPeer, "id_prefix", "")
}

func (r *readTx) Root() (*RootCA, error) {
	return one[RootCA](r.txn, KindRoot, "id", RootID)
}

func (r *readTx) RegistryAuth(serviceID string) (*RegistryAuth, error) {
	return one[RegistryAuth](r.txn, KindRegistryAuth, "id", serviceID)
}

// writeTx implements Tx: it applies each write to a private copy of the
// state and records it as an op of the batch Update proposes.
type writeTx struct {
	readTx
	local   applier
	ops     []op
	written []any // the caller's object of each op, nil for removes
}

func (t *writeTx) write(action Action, obj any) error {
	if v := reflect.ValueOf(obj); v.Kind() == reflect.Pointer && v.IsNil() {
		return invalidError{msg: fmt.Sprintf("store: %s of a nil %T", action, obj)}
	}
	rec, meta, err := describe(obj)
	if err != nil {
		return err
	}
	data, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("encode %s %s: %w", rec.Kind, rec.ID, err)
	}
	o := op{Kind: rec.Kind, Action: action, ID: rec.ID, Object: data}
	if action == ActionUpdate {
		o.Version = meta.Version.Index
	}
	return t.record(o, obj)
}

func (t *writeTx) remove(k Kind, id string) error {
	o := op{Kind: k, Action: ActionRemove, ID: id}
	cur, err := t.local.lookup(k, id)
	if err != nil {
		return err
	}
	if cur != nil {
		o.Version = cur.Index
	}
	return t.record(o, nil)
}

func (t *writeTx) record(o op, obj any) error {
	if _, err := t.local.apply(o); err != nil {
		return err
	}
	t.ops = append(t.ops, o)
	t.written = append(t.written, obj)
	return nil
}

func (t *writeTx) CreateCluster(c *swarm.Swarm) error   { return t.write(ActionCreate, c) }
func (t *writeTx) UpdateCluster(c *swarm.Swarm) error   { return t.write(ActionUpdate, c) }
func (t *writeTx) CreateNode(n *swarm.Node) error       { return t.write(ActionCreate, n) }
func (t *writeTx) UpdateNode(n *swarm.Node) error       { return t.write(ActionUpdate, n) }
func (t *writeTx) DeleteNode(id string) error           { return t.remove(KindNode, id) }
func (t *writeTx) CreateService(s *swarm.Service) error { return t.write(ActionCreate, s) }
func (t *writeTx) UpdateService(s *swarm.Service) error { return t.write(ActionUpdate, s) }
func (t *writeTx) DeleteService(id string) error        { return t.remove(KindService, id) }
func (t *writeTx) CreateTask(tk *swarm.Task) error      { return t.write(ActionCreate, tk) }
func (t *writeTx) UpdateTask(tk *swarm.Task) error      { return t.write(ActionUpdate, tk) }
func (t *writeTx) DeleteTask(id string) error           { return t.remove(KindTask, id) }
func (t *writeTx) CreateNetwork(n *swarm.Network) error { return t.write(ActionCreate, n) }
func (t *writeTx) UpdateNetwork(n *swarm.Network) error { return t.write(ActionUpdate, n) }
func (t *writeTx) DeleteNetwork(id string) error        { return t.remove(KindNetwork, id) }
func (t *writeTx) CreateSecret(s *swarm.Secret) error   { return t.write(ActionCreate, s) }
func (t *writeTx) UpdateSecret(s *swarm.Secret) error   { return t.write(ActionUpdate, s) }
func (t *writeTx) DeleteSecret(id string) error         { return t.remove(KindSecret, id) }
func (t *writeTx) CreateConfig(c *swarm.Config) error   { return t.write(ActionCreate, c) }
func (t *writeTx) UpdateConfig(c *swarm.Config) error   { return t.write(ActionUpdate, c) }
func (t *writeTx) DeleteConfig(id string) error         { return t.remove(KindConfig, id) }
func (t *writeTx) CreatePeer(p *Peer) error             { return t.write(ActionCreate, p) }
func (t *writeTx) UpdatePeer(p *Peer) error             { return t.write(ActionUpdate, p) }
func (t *writeTx) DeletePeer(nodeID string) error       { return t.remove(KindPeer, nodeID) }
func (t *writeTx) CreateRoot(r *RootCA) error           { return t.write(ActionCreate, r) }
func (t *writeTx) UpdateRoot(r *RootCA) error           { return t.write(ActionUpdate, r) }
func (t *writeTx) CreateRegistryAuth(a *RegistryAuth) error {
	return t.write(ActionCreate, a)
}
func (t *writeTx) UpdateRegistryAuth(a *RegistryAuth) error {
	return t.write(ActionUpdate, a)
}
func (t *writeTx) DeleteRegistryAuth(serviceID string) error {
	return t.remove(KindRegistryAuth, serviceID)
}
