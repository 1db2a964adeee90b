// Package store is the replicated object store of the shoal control plane.
//
// Every cluster object (the cluster itself, nodes, services, tasks, networks,
// secrets, configs) lives in one in-memory database (go-memdb) that is the
// state machine of a hashicorp/raft cluster; a single-node swarm is a
// one-member Raft cluster. Writers call [Store.Update]: the writes their
// function makes become one batch command, committed in one Raft log entry and
// applied all-or-nothing, with compare-and-set on each object's
// Version.Index. Readers call [Store.View] for an immutable snapshot and
// [Store.Watch] or [Store.ViewAndWatch] for the change feed. The Raft log and
// snapshots are encrypted at rest with a data key wrapped by a key-encryption
// key.
package store
