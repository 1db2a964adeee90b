package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-project/shoal/testenv"
)

// The inputs a hostile or unlucky client sends that api_bounds_test.go and
// api_errors_test.go do not: each answers its status with a text that says
// what is wrong, and the daemon answers /_ping after each.
func TestAPIBadInputs(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "badinput")
	n.MustDocker("service", "create", "-d", "--no-resolve-image", "--name", "web", "busybox", "sleep", "1000")
	task := taskContainer(t, n, "web")

	nested := `{"Name":"deep","Labels":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`
	for _, c := range []struct {
		name, method, path, body string
		status                   int
		want                     string
	}{
		{"malformed JSON", "POST", "/v1.51/services/create", `{"Name":`, 400, "invalid JSON: unexpected EOF"},
		{"JSON of the wrong shape", "POST", "/v1.51/services/create", `["a"]`, 400, "invalid JSON: cannot unmarshal array"},
		{"deeply nested JSON", "POST", "/v1.51/services/create", nested, 400, "invalid JSON: invalid character '[' exceeded max depth"},
		{"a negative replica count", "POST", "/v1.51/services/create",
			`{"Name":"neg","Mode":{"Replicated":{"Replicas":-1}},"TaskTemplate":{"ContainerSpec":{"Image":"busybox"}}}`, 400, "cannot unmarshal number -1"},
		{"a replica count past 2^64-1", "POST", "/v1.51/services/create",
			`{"Name":"big","Mode":{"Replicated":{"Replicas":18446744073709551616}},"TaskTemplate":{"ContainerSpec":{"Image":"busybox"}}}`, 400, "cannot unmarshal number 18446744073709551616"},
		{"an illegal service name", "POST", "/v1.51/services/create",
			`{"Name":"bad name!","TaskTemplate":{"ContainerSpec":{"Image":"busybox"}}}`, 400, `name must be valid as a DNS name component: "bad name!"`},
		{"a service name with a slash", "POST", "/v1.51/services/create",
			`{"Name":"../etc","TaskTemplate":{"ContainerSpec":{"Image":"busybox"}}}`, 400, `name must be valid as a DNS name component: "../etc"`},
		{"a wrong content type", "POST", "/v1.51/services/create", `name=x`, 400, "unsupported Content-Type header (text/plain)"},
		// Routes with a single ID segment see the decoded slashes as more
		// segments: no such route, as dockerd answers it.
		{"path traversal in a container ID", "GET", "/v1.51/containers/..%2F..%2Fetc%2Fpasswd/json", "", 404, "page not found"},
		{"path traversal in an image name", "GET", "/v1.51/images/..%2F..%2Fetc%2Fpasswd/json", "", 404, "No such image: ../../etc/passwd"},
		{"path traversal in a service ID", "GET", "/v1.51/services/..%2F..%2Fetc", "", 404, "page not found"},
		{"a filter that is not JSON", "GET", "/v1.51/services?filters=%7Bbad", "", 400, "invalid filter"},
		{"a filter of the wrong shape", "GET", "/v1.51/tasks?filters=%7B%22name%22%3A1%7D", "", 400, "invalid filter"},
		{"a filter of an unknown key", "GET", "/v1.51/containers/json?filters=%7B%22nope%22%3A%5B%22x%22%5D%7D", "", 400, "invalid filter 'nope'"},
	} {
		req, err := http.NewRequest(c.method, "http://shoal"+c.path, strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if c.name == "a wrong content type" {
			req.Header.Set("Content-Type", "text/plain")
		}
		status, msg := send(t, n, req)
		if status != c.status || !strings.Contains(msg, c.want) {
			t.Errorf("%s: %d %.300q, want %d with %q", c.name, status, msg, c.status, c.want)
		}
		mustPing(t, n, c.name)
	}

	// docker cp with a path that climbs out stays in the container's root.
	dst := filepath.Join(t.TempDir(), "hostname")
	n.MustDocker("cp", task+":/../../../../etc/hostname", dst)
	got, err := os.ReadFile(dst)
	if want := n.MustDocker("exec", task, "cat", "/etc/hostname"); err != nil || string(got) != want {
		t.Errorf("docker cp of /../../../../etc/hostname = %q, %v; want the container's %q", got, err, want)
	}
	mustPing(t, n, "docker cp with ..")

	// Headers over the server's limit are refused, not read on and on.
	req, _ := http.NewRequest("GET", "http://shoal/_ping", nil)
	req.Header.Set("X-Huge", strings.Repeat("a", 2<<20))
	if status, msg := send(t, n, req); status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a 2 MiB header: %d %.200q, want 431", status, msg)
	}
	mustPing(t, n, "a 2 MiB header")

	// Slowloris: many connections that send half a request header and then
	// nothing do not keep the daemon from answering others.
	var held []net.Conn
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	for range 200 {
		c, err := net.Dial("unix", n.Socket)
		if err != nil {
			t.Fatalf("connection %d: %v", len(held), err)
		}
		held = append(held, c)
		if _, err := c.Write([]byte("GET /_ping HTTP/1.1\r\nHost: shoal\r\nX-Slow: ")); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	mustPing(t, n, "200 half-sent requests")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("/_ping took %s with 200 half-sent requests open", d)
	}
	// The held connections are still open: none was answered in the meantime.
	_ = held[0].SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := bufio.NewReader(held[0]).ReadByte(); err == nil {
		t.Error("a half-sent request was answered")
	}
}

// send sends req to the node and returns the status and the error message (or
// the raw body).
func send(t *testing.T, n *testenv.Node, req *http.Request) (int, string) {
	t.Helper()
	resp, err := n.HTTPClient().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var e struct{ Message string }
	if json.Unmarshal(data, &e) == nil && e.Message != "" {
		return resp.StatusCode, e.Message
	}
	return resp.StatusCode, string(data)
}
