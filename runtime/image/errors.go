package image

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// notFoundError reports a missing image or reference (HTTP 404).
type notFoundError struct{ msg string }

func (e notFoundError) Error() string  { return e.msg }
func (e notFoundError) NotFound() bool { return true }

// conflictError reports an operation refused because of the image's state (HTTP 409).
type conflictError struct{ msg string }

func (e conflictError) Error() string  { return e.msg }
func (e conflictError) Conflict() bool { return true }

// invalidParameterError reports a malformed request (HTTP 400).
type invalidParameterError struct{ msg string }

func (e invalidParameterError) Error() string          { return e.msg }
func (e invalidParameterError) InvalidParameter() bool { return true }

// The registry error types wrap a failure talking to a registry with the class the
// API should answer with; each has exactly one class method.
type (
	registryNotFoundError    struct{ err error }
	registryForbiddenError   struct{ err error }
	registryUnavailableError struct{ err error }
)

func (e registryNotFoundError) Error() string        { return e.err.Error() }
func (e registryNotFoundError) Unwrap() error        { return e.err }
func (e registryNotFoundError) NotFound() bool       { return true }
func (e registryForbiddenError) Error() string       { return e.err.Error() }
func (e registryForbiddenError) Unwrap() error       { return e.err }
func (e registryForbiddenError) Forbidden() bool     { return true }
func (e registryUnavailableError) Error() string     { return e.err.Error() }
func (e registryUnavailableError) Unwrap() error     { return e.err }
func (e registryUnavailableError) Unavailable() bool { return true }

func errNoSuchImage(ref string) error {
	return notFoundError{msg: "No such image: " + ref}
}

func errInvalidReference(ref string, err error) error {
	return invalidParameterError{msg: fmt.Sprintf("invalid reference format: %s: %v", ref, err)}
}

// classifyRegistryError maps an error from talking to a registry onto the API error
// classes: a missing repository or manifest is NotFound, refused credentials are
// Forbidden, and anything that never got an HTTP answer is Unavailable.
func classifyRegistryError(err error) error {
	if err == nil {
		return nil
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusNotFound:
			return registryNotFoundError{err: err}
		case http.StatusUnauthorized, http.StatusForbidden:
			return registryForbiddenError{err: err}
		}
		if terr.StatusCode >= 500 {
			return registryUnavailableError{err: err}
		}
		return err
	}
	var nerr net.Error
	var operr *net.OpError
	if errors.As(err, &nerr) || errors.As(err, &operr) {
		return registryUnavailableError{err: err}
	}
	return err
}

// manifestNotFound is dockerd's message for a pull of a reference the registry
// does not have: "manifest for busybox:nope not found: manifest unknown: ...".
func manifestNotFound(ref string, err error) error {
	detail := "manifest unknown"
	var terr *transport.Error
	if errors.As(err, &terr) && len(terr.Errors) > 0 {
		e := terr.Errors[0]
		detail = strings.ToLower(strings.ReplaceAll(string(e.Code), "_", " ")) + ": " + e.Message
	}
	return registryNotFoundError{err: fmt.Errorf("manifest for %s not found: %s", ref, detail)}
}
