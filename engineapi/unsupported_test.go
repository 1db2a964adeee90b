package engineapi

import (
	"net/http"
	"strings"
	"testing"
)

// Docker endpoints shoal does not serve answer 501 with what to do instead;
// anything else is Docker's 404 "page not found".
func TestUnsupportedEndpoints(t *testing.T) {
	_, _, api := ctrFixture(t)
	for _, tc := range []struct {
		method, path string
		status       int
		msg          string
	}{
		{"GET", "/v1.50/secrets", http.StatusServiceUnavailable, "This node is not a swarm manager"},
		{"GET", "/v1.50/configs/app", http.StatusServiceUnavailable, "This node is not a swarm manager"},
		{"GET", "/plugins", http.StatusNotImplemented, "plugins are not supported"},
		{"POST", "/v1.50/build", http.StatusNotImplemented, "shoal does not build images"},
		{"GET", "/v1.50/containers/web.1.task1/changes", http.StatusNotImplemented, "not supported by shoal"},
		{"POST", "/v1.50/containers/web.1.task1/wait", http.StatusNotImplemented, "not supported by shoal"},
		{"GET", "/v1.50/nothing/here", http.StatusNotFound, "page not found"},
	} {
		resp, body := api.call(t, tc.method, tc.path, nil, nil)
		if resp.StatusCode != tc.status || !strings.Contains(string(body), tc.msg) {
			t.Errorf("%s %s = %d %s, want %d %q", tc.method, tc.path, resp.StatusCode, body, tc.status, tc.msg)
		}
	}
	_, errOut, err := api.docker(t, "", "plugin", "ls")
	if err == nil || !strings.Contains(errOut, "plugins are not supported by shoal") {
		t.Errorf("docker plugin ls: %v %q", err, errOut)
	}
}
