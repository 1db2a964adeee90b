package engineapi

import (
	"fmt"
	"net/http"
	"testing"
)

type notImplementedErr struct{}

func (notImplementedErr) Error() string {
	return "rpc error: code = Unimplemented desc = service mode change is not allowed"
}
func (notImplementedErr) NotImplemented() bool { return true }

// swarmkit's Unimplemented (a mode change, a rename) is dockerd's 501.
func TestNotImplementedIs501(t *testing.T) {
	if got := statusOf(fmt.Errorf("update service: %w", notImplementedErr{})); got != http.StatusNotImplemented {
		t.Fatalf("status %d, want 501", got)
	}
}
