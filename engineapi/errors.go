package engineapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"
)

// The error classes of the API. Producers (cluster, runtime) implement one of these
// methods on their error types; the API maps the class to an HTTP status, as moby's
// errdefs does, so no package below the API needs to import it.
type (
	notFound         interface{ NotFound() bool }
	conflict         interface{ Conflict() bool }
	invalidParameter interface{ InvalidParameter() bool }
	unavailable      interface{ Unavailable() bool }
	forbidden        interface{ Forbidden() bool }
	notModified      interface{ NotModified() bool }
	unauthorized     interface{ Unauthorized() bool }
	notImplemented   interface{ NotImplemented() bool }
)

// statusOf returns the HTTP status for err.
func statusOf(err error) int {
	var (
		nf notFound
		cf conflict
		ip invalidParameter
		un unavailable
		fb forbidden
		nm notModified
		ua unauthorized
		ni notImplemented
	)
	switch {
	case errors.As(err, &nf) && nf.NotFound():
		return http.StatusNotFound
	case errors.As(err, &cf) && cf.Conflict():
		return http.StatusConflict
	case errors.As(err, &ip) && ip.InvalidParameter():
		return http.StatusBadRequest
	case errors.As(err, &un) && un.Unavailable():
		return http.StatusServiceUnavailable
	case errors.As(err, &fb) && fb.Forbidden():
		return http.StatusForbidden
	case errors.As(err, &nm) && nm.NotModified():
		return http.StatusNotModified
	case errors.As(err, &ua) && ua.Unauthorized():
		return http.StatusUnauthorized
	case errors.As(err, &ni) && ni.NotImplemented():
		return http.StatusNotImplemented
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// apiError is an error raised by the API layer itself with its status.
type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return e.msg }

// badRequest is a 400 error with a Docker-style message.
func badRequest(msg string) error { return &apiError{status: http.StatusBadRequest, msg: msg} }

// notFoundError is a 404 error with a Docker-style message.
func notFoundError(msg string) error { return &apiError{status: http.StatusNotFound, msg: msg} }

// conflictError is a 409 error with a Docker-style message.
func conflictError(msg string) error { return &apiError{status: http.StatusConflict, msg: msg} }

// bodyTooLarge is the 413 answer to a request body over maxBodyBytes.
func bodyTooLarge(limit int64) error {
	return &apiError{status: http.StatusRequestEntityTooLarge,
		msg: fmt.Sprintf("request body too large: the limit is %d bytes (%d MiB)", limit, limit>>20)}
}

// tooLarge returns bodyTooLarge if err is the body limit being reached, else nil.
func tooLarge(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return bodyTooLarge(mbe.Limit)
	}
	return nil
}

// writeError answers with Docker's error body {"message": ...} and the status of err.
func writeError(c *gin.Context, err error) {
	status := statusOf(err)
	var ae *apiError
	if errors.As(err, &ae) {
		status = ae.status
	}
	if status == http.StatusNotModified {
		c.Status(status)
		return
	}
	// The docker client decodes the message only for exactly "application/json";
	// gin's default adds "; charset=utf-8" and the CLI would print raw JSON.
	c.Header("Content-Type", "application/json")
	c.AbortWithStatusJSON(status, gin.H{"message": err.Error()})
}
