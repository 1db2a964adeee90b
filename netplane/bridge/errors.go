package bridge

import "fmt"

// notFoundError reports a sandbox that does not exist; the API maps it to 404.
type notFoundError struct{ msg string }

func (e notFoundError) Error() string  { return e.msg }
func (e notFoundError) NotFound() bool { return true }

// conflictError reports a resource already taken, such as a host port; the API maps
// it to 409.
type conflictError struct{ msg string }

func (e conflictError) Error() string  { return e.msg }
func (e conflictError) Conflict() bool { return true }

// invalidParameterError reports a bad request from the caller; the API maps it to 400.
type invalidParameterError struct{ msg string }

func (e invalidParameterError) Error() string          { return e.msg }
func (e invalidParameterError) InvalidParameter() bool { return true }

// unavailableError reports a resource that ran out or a closed Network; the API maps
// it to 503.
type unavailableError struct{ msg string }

func (e unavailableError) Error() string     { return e.msg }
func (e unavailableError) Unavailable() bool { return true }

func errNoSuchSandbox(id string) error {
	return notFoundError{msg: fmt.Sprintf("No such sandbox: %s", id)}
}

func errPortAllocated(proto string, port uint16) error {
	return conflictError{msg: fmt.Sprintf("Bind for 0.0.0.0:%d failed: port is already allocated (%s)", port, proto)}
}

func errInvalid(format string, args ...any) error {
	return invalidParameterError{msg: fmt.Sprintf(format, args...)}
}

func errClosed() error {
	return unavailableError{msg: "bridge network is closed"}
}
