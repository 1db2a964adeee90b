package cluster

import (
	"errors"
	"fmt"
)

// Docker's own words for the states a request can find the node in.
const (
	msgNotManager = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again."
	msgInSwarm    = "This node is already part of a swarm. Use \"docker swarm leave\" to leave this swarm and join another one."
	msgNotInSwarm = "This node is not part of a swarm"
	msgLeaveLast  = "You are attempting to leave the swarm on a node that is participating as a manager. Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message."
	msgWorker     = "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager."
	msgWorkerNet  = "Cannot create a multi-host network from a worker node. Please create the network from a manager node."
)

type unavailableError struct{ msg string }

func (e unavailableError) Error() string     { return e.msg }
func (e unavailableError) Unavailable() bool { return true }

// forbiddenError is what dockerd answers 403 for.
type forbiddenError struct{ msg string }

func (e forbiddenError) Error() string   { return e.msg }
func (e forbiddenError) Forbidden() bool { return true }

type notFoundError struct{ msg string }

func (e notFoundError) Error() string  { return e.msg }
func (e notFoundError) NotFound() bool { return true }

type invalidError struct{ msg string }

func (e invalidError) Error() string          { return e.msg }
func (e invalidError) InvalidParameter() bool { return true }

type conflictError struct{ msg string }

func (e conflictError) Error() string  { return e.msg }
func (e conflictError) Conflict() bool { return true }

func errInvalidf(format string, args ...any) error {
	return invalidError{fmt.Sprintf(format, args...)}
}

func errNotFoundf(format string, args ...any) error {
	return notFoundError{fmt.Sprintf(format, args...)}
}

func errUnavailablef(format string, args ...any) error {
	return unavailableError{fmt.Sprintf(format, args...)}
}

// unknownError is a refusal dockerd answers 500 for: swarmkit's errors that
// carry no gRPC code (code Unknown), as some of its checks of a spec do. It has
// no class: the API's default status is 500.
type unknownError struct{ msg string }

func (e unknownError) Error() string { return e.msg }

func errUnknownf(format string, args ...any) error {
	return unknownError{"rpc error: code = Unknown desc = " + fmt.Sprintf(format, args...)}
}

// notImplementedError is what dockerd answers 501 for (swarmkit's Unimplemented).
type notImplementedError struct{ msg string }

func (e notImplementedError) Error() string        { return e.msg }
func (e notImplementedError) NotImplemented() bool { return true }

func errNotImplementedf(format string, args ...any) error {
	return notImplementedError{fmt.Sprintf(format, args...)}
}

// errServiceExists is Docker's answer to a service name that is taken.
func errServiceExists(name string) error {
	return conflictError{"rpc error: code = AlreadyExists desc = name conflicts with an existing object: service " + name + " already exists"}
}

// isConflict reports whether err is of the Conflict class.
func isConflict(err error) bool {
	var cf interface{ Conflict() bool }
	return errors.As(err, &cf) && cf.Conflict()
}

// isNotFound reports whether err is of the NotFound class.
func isNotFound(err error) bool {
	var nf interface{ NotFound() bool }
	return errors.As(err, &nf) && nf.NotFound()
}
