package engineapi

import (
	"net/http"
	"strings"
	"testing"
)

// Versions outside 1.24..APIVersion are refused with dockerd's words and status,
// on every route, /_ping included; the bounds themselves are served.
func TestAPIVersionBounds(t *testing.T) {
	api := startSystemAPI(t, Config{})
	for _, c := range []struct {
		path   string
		status int
		want   string
	}{
		{"/v1.99/_ping", 400, `{"message":"client version 1.99 is too new. Maximum supported API version is ` + APIVersion + `"}` + "\n"},
		{"/v1.99/services", 400, "client version 1.99 is too new. Maximum supported API version is " + APIVersion},
		{"/v2.0/version", 400, "client version 2.0 is too new"},
		{"/v1.23/_ping", 400, "client version 1.23 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"},
		{"/v" + APIVersion + "/_ping", 200, "OK"},
		{"/v1.24/_ping", 200, "OK"},
		{"/_ping", 200, "OK"},
	} {
		status, body, h := api.do(t, http.MethodGet, c.path, "", "")
		if status != c.status || !strings.Contains(body, c.want) {
			t.Errorf("GET %s = %d %q; want %d with %q", c.path, status, body, c.status, c.want)
		}
		if got := h.Get("Api-Version"); got != APIVersion {
			t.Errorf("GET %s: Api-Version %q", c.path, got)
		}
	}
}

// A JSON body over the limit answers 413 with the limit, on the endpoints that
// decode a body and on those that take an optional one.
func TestBodyOverTheLimit(t *testing.T) {
	api := startSystemAPI(t, Config{Swarm: newSwarmFake("n1", "host1")})
	huge := `{"Name":"huge","Labels":{"x":"` + strings.Repeat("a", maxBodyBytes) + `"}}`
	for _, path := range []string{"/v1.51/services/create", "/v1.51/swarm/init"} {
		status, body, _ := api.do(t, http.MethodPost, path, "application/json", huge)
		if status != http.StatusRequestEntityTooLarge || !strings.Contains(body, "request body too large: the limit is 4194304 bytes (4 MiB)") {
			t.Errorf("POST %s with %d bytes = %d %q", path, len(huge), status, body)
		}
	}
}
