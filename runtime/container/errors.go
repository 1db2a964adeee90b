package container

import "fmt"

// notFoundError is returned when a container or image does not exist (HTTP 404).
type notFoundError struct{ msg string }

func (e notFoundError) Error() string  { return e.msg }
func (e notFoundError) NotFound() bool { return true }

// conflictError is returned when the request conflicts with the container's state
// or with another container (HTTP 409).
type conflictError struct{ msg string }

func (e conflictError) Error() string  { return e.msg }
func (e conflictError) Conflict() bool { return true }

// invalidError is returned for a request that cannot be satisfied as written (HTTP 400).
type invalidError struct{ msg string }

func (e invalidError) Error() string          { return e.msg }
func (e invalidError) InvalidParameter() bool { return true }

// notModifiedError is returned when the container is already in the asked state (HTTP 304).
type notModifiedError struct{ msg string }

func (e notModifiedError) Error() string     { return e.msg }
func (e notModifiedError) NotModified() bool { return true }

func errNoSuchContainer(ref string) error {
	return notFoundError{msg: "No such container: " + ref}
}

func errInvalidf(format string, args ...any) error {
	return invalidError{msg: fmt.Sprintf(format, args...)}
}

func errConflictf(format string, args ...any) error {
	return conflictError{msg: fmt.Sprintf(format, args...)}
}
