package store

import (
	"encoding/json"
	"fmt"
	"time"

	memdb "github.com/hashicorp/go-memdb"
	"github.com/moby/moby/api/types/swarm"
)

// Kind names a kind of cluster object; it is also the name of its table.
type Kind string

// The kinds of objects the store holds.
const (
	KindCluster Kind = "cluster"
	KindNode    Kind = "node"
	KindService Kind = "service"
	KindTask    Kind = "task"
	KindNetwork Kind = "network"
	KindSecret  Kind = "secret"
	KindConfig  Kind = "config"
	// KindPeer holds how to reach a node (*Peer): store-only, never shown by
	// the API.
	KindPeer Kind = "peer"
	// KindRoot holds the swarm's certificate authority (*RootCA), keys
	// included: store-only, never shown by the API.
	KindRoot Kind = "root"
	// KindRegistryAuth holds a service's registry credentials
	// (*RegistryAuth): store-only, never shown by the API.
	KindRegistryAuth Kind = "registryauth"
)

// RegistryAuth is the registry credentials a service was created or updated
// with (X-Registry-Auth, still encoded), for the nodes that pull its image. Its
// ID is the service's.
type RegistryAuth struct {
	ID string // the service's ID
	swarm.Meta
	Encoded string
}

// RootID is the ID of the one RootCA object.
const RootID = "root"

// RootCA is the swarm's certificate authority: the root that signs node
// certificates and, while the root rotates, the previous root (still trusted)
// and the new root's certificate signed by the previous one, which chains
// certificates of the new root to nodes that trust only the old.
type RootCA struct {
	ID string // RootID
	swarm.Meta
	CertPEM []byte
	KeyPEM  []byte
	// PrevCertPEM and CrossSignedPEM are set while a rotation is under way.
	PrevCertPEM    []byte `json:",omitempty"`
	CrossSignedPEM []byte `json:",omitempty"`
	// UnlockKey is the key of the managers of an autolocked swarm (nil
	// without autolock). It lives here, with the CA's key, because every
	// manager must learn it and the API must never show it.
	UnlockKey []byte `json:",omitempty"`
}

// Peer is what nodes need to reach one another, kept for every node beside its
// node object. The API never shows it.
type Peer struct {
	ID string // the node's ID
	swarm.Meta
	// ControlAddr is the host:port of the node's control port, where its logs
	// and images are served.
	ControlAddr string
	// MeshKey and MeshEndpoint are the node's WireGuard public key (base64)
	// and data plane host:port, as its last session said; MeshAddr is its
	// address on the mesh, given once and kept.
	MeshKey      string `json:",omitempty"`
	MeshEndpoint string `json:",omitempty"`
	MeshAddr     string `json:",omitempty"`
}

// Action says what a change did to an object.
type Action string

// The actions of a change.
const (
	ActionCreate Action = "create"
	ActionUpdate Action = "update"
	ActionRemove Action = "remove"
	// ActionResync says changes were dropped (the subscriber fell too far
	// behind): it carries no object; the subscriber reads the state afresh.
	ActionResync Action = "resync"
)

// kinds lists every kind, in the order snapshots are written.
func kinds() []Kind {
	return []Kind{KindCluster, KindNode, KindService, KindTask, KindNetwork, KindSecret, KindConfig, KindPeer, KindRoot, KindRegistryAuth}
}

// named reports whether objects of kind k must have unique names.
func (k Kind) named() bool {
	switch k {
	case KindService, KindNetwork, KindSecret, KindConfig:
		return true
	}
	return false
}

// record is the stored form of one object: its index keys, the Raft index
// of its last change and its JSON encoding. Records are immutable once
// inserted; readers decode Data, which makes every result a deep copy.
type record struct {
	Kind      Kind
	ID        string
	Name      string `json:",omitempty"`
	ServiceID string `json:",omitempty"`
	NodeID    string `json:",omitempty"`
	Index     uint64
	// CreatedAt is kept out of Data so updates need not decode the old value.
	CreatedAt time.Time `json:",omitempty"`
	Data      json.RawMessage
}

// schema returns the memdb schema: one table per kind, indexed by ID, by
// (case-insensitive) name for named kinds, and by service and node for tasks.
func schema() *memdb.DBSchema {
	tables := make(map[string]*memdb.TableSchema)
	for _, k := range kinds() {
		indexes := map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
		}
		if k.named() {
			indexes["name"] = &memdb.IndexSchema{Name: "name", Unique: true, AllowMissing: true,
				Indexer: &memdb.StringFieldIndex{Field: "Name", Lowercase: true}}
		}
		if k == KindTask {
			indexes["service"] = &memdb.IndexSchema{Name: "service", AllowMissing: true,
				Indexer: &memdb.StringFieldIndex{Field: "ServiceID"}}
			indexes["node"] = &memdb.IndexSchema{Name: "node", AllowMissing: true,
				Indexer: &memdb.StringFieldIndex{Field: "NodeID"}}
		}
		tables[string(k)] = &memdb.TableSchema{Name: string(k), Indexes: indexes}
	}
	return &memdb.DBSchema{Tables: tables}
}

// describe returns the kind, index keys and Meta of an object passed by a
// writer.
func describe(obj any) (record, *swarm.Meta, error) {
	switch o := obj.(type) {
	case *swarm.Swarm:
		return record{Kind: KindCluster, ID: o.ID}, &o.Meta, nil
	case *swarm.Node:
		return record{Kind: KindNode, ID: o.ID}, &o.Meta, nil
	case *swarm.Service:
		return record{Kind: KindService, ID: o.ID, Name: o.Spec.Name}, &o.Meta, nil
	case *swarm.Task:
		return record{Kind: KindTask, ID: o.ID, ServiceID: o.ServiceID, NodeID: o.NodeID}, &o.Meta, nil
	case *swarm.Network:
		return record{Kind: KindNetwork, ID: o.ID, Name: o.Spec.Name}, &o.Meta, nil
	case *swarm.Secret:
		return record{Kind: KindSecret, ID: o.ID, Name: o.Spec.Name}, &o.Meta, nil
	case *swarm.Config:
		return record{Kind: KindConfig, ID: o.ID, Name: o.Spec.Name}, &o.Meta, nil
	case *Peer:
		return record{Kind: KindPeer, ID: o.ID}, &o.Meta, nil
	case *RootCA:
		return record{Kind: KindRoot, ID: o.ID}, &o.Meta, nil
	case *RegistryAuth:
		return record{Kind: KindRegistryAuth, ID: o.ID}, &o.Meta, nil
	}
	return record{}, nil, invalidError{msg: fmt.Sprintf("store: unsupported object type %T", obj)}
}

// newObject returns a new zero object of kind k.
func newObject(k Kind) (any, error) {
	switch k {
	case KindCluster:
		return new(swarm.Swarm), nil
	case KindNode:
		return new(swarm.Node), nil
	case KindService:
		return new(swarm.Service), nil
	case KindTask:
		return new(swarm.Task), nil
	case KindNetwork:
		return new(swarm.Network), nil
	case KindSecret:
		return new(swarm.Secret), nil
	case KindConfig:
		return new(swarm.Config), nil
	case KindPeer:
		return new(Peer), nil
	case KindRoot:
		return new(RootCA), nil
	case KindRegistryAuth:
		return new(RegistryAuth), nil
	}
	return nil, invalidError{msg: fmt.Sprintf("store: unknown kind %q", k)}
}

// decodeObject returns a fresh copy of the object encoded in data.
func decodeObject(k Kind, data []byte) (any, error) {
	obj, err := newObject(k)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, obj); err != nil {
		return nil, fmt.Errorf("decode %s: %w", k, err)
	}
	return obj, nil
}

// decodeAs decodes a record into a fresh *T.
func decodeAs[T any](rec *record) (*T, error) {
	obj := new(T)
	if err := json.Unmarshal(rec.Data, obj); err != nil {
		return nil, fmt.Errorf("decode %s %s: %w", rec.Kind, rec.ID, err)
	}
	return obj, nil
}
