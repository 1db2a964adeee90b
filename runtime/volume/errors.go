package volume

import (
	"fmt"
	"strings"
)

// notFoundError is returned for a volume that does not exist (HTTP 404).
type notFoundError struct{ msg string }

func (e notFoundError) Error() string  { return e.msg }
func (e notFoundError) NotFound() bool { return true }

// conflictError is returned when a volume is in use (HTTP 409).
type conflictError struct{ msg string }

func (e conflictError) Error() string  { return e.msg }
func (e conflictError) Conflict() bool { return true }

// invalidError is returned for a name or option the local driver refuses (HTTP 400).
type invalidError struct{ msg string }

func (e invalidError) Error() string          { return e.msg }
func (e invalidError) InvalidParameter() bool { return true }

// errNoSuchVolume reads as dockerd's volume store says it.
func errNoSuchVolume(name string) error {
	return notFoundError{msg: fmt.Sprintf("get %s: no such volume", name)}
}

func errInvalidf(format string, args ...any) error {
	return invalidError{msg: fmt.Sprintf(format, args...)}
}

func errInUse(name string, users []string) error {
	return conflictError{msg: fmt.Sprintf("remove %s: volume is in use - [%s]", name, strings.Join(users, ", "))}
}
