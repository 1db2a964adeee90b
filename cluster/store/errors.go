package store

import (
	"errors"
	"fmt"
)

// ErrOutOfSequence is returned when an update or delete carries a
// Version.Index that is not the stored one: somebody else changed the object
// since the writer read it.
var ErrOutOfSequence = errors.New("update out of sequence")

// ErrNotLeader is returned by Update when this node is not the Raft leader
// (or stops being it before the change commits). It implements
// Unavailable() bool.
var ErrNotLeader error = unavailableError{msg: "this node is not the swarm leader"}

// ErrHasState is returned by Bootstrap when this node already has Raft state.
// It implements Unavailable() bool, as Docker answers "swarm init" on a node
// that is already in a swarm.
var ErrHasState error = unavailableError{msg: `This node is already part of a swarm. Use "docker swarm leave" to leave this swarm and join another one.`}

// ErrInvalidKEK is returned by Open when the key-encryption key does not
// unwrap the data encryption key stored in Dir.
var ErrInvalidKEK = errors.New("swarm could not be unlocked: invalid key-encryption key")

// ErrLocked is returned by Open, without a KEK in Config, when the store's
// key-encryption key is not on disk: the swarm is autolocked and only its
// unlock key opens it.
var ErrLocked = errors.New("the store is locked: its key-encryption key is not on this disk")

// ErrCorruptKey is returned by Open when the wrapped data key on disk is not
// one (truncated, or written by something else).
var ErrCorruptKey = errors.New("the wrapped data encryption key is corrupt")

type unavailableError struct{ msg string }

func (e unavailableError) Error() string     { return e.msg }
func (e unavailableError) Unavailable() bool { return true }

type notFoundError struct {
	kind Kind
	id   string
}

func (e notFoundError) Error() string {
	if e.kind == KindCluster {
		return "cluster not found"
	}
	return fmt.Sprintf("%s %s not found", e.kind, e.id)
}

func (e notFoundError) NotFound() bool { return true }

type conflictError struct{ msg string }

func (e conflictError) Error() string  { return e.msg }
func (e conflictError) Conflict() bool { return true }

func errNameConflict(kind Kind, name string) error {
	return conflictError{msg: fmt.Sprintf("name conflicts with an existing object: %s %s already exists", kind, name)}
}

func errIDConflict(kind Kind, id string) error {
	return conflictError{msg: fmt.Sprintf("object already exists: %s %s", kind, id)}
}

type invalidError struct{ msg string }

func (e invalidError) Error() string          { return e.msg }
func (e invalidError) InvalidParameter() bool { return true }

// IsNotFound reports whether err says an object does not exist: the store's own
// not-found errors, and any error of the NotFound class (a NotFound() bool method).
func IsNotFound(err error) bool {
	var nf interface{ NotFound() bool }
	return errors.As(err, &nf) && nf.NotFound()
}
