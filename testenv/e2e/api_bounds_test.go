package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/testenv"
)

// rawCall sends a request to path as given (with its own version prefix, or none)
// and returns the status and the error message (or the raw body).
func rawCall(t *testing.T, n *testenv.Node, method, path string, body io.Reader) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://shoal"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.HTTPClient().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var e struct{ Message string }
	if json.Unmarshal(data, &e) == nil && e.Message != "" {
		return resp.StatusCode, e.Message
	}
	return resp.StatusCode, string(data)
}

// mustPing fails the test unless the daemon answers /_ping.
func mustPing(t *testing.T, n *testenv.Node, after string) {
	t.Helper()
	if status, body := rawCall(t, n, "GET", "/_ping", nil); status != http.StatusOK || body != "OK" {
		t.Fatalf("/_ping after %s = %d %q", after, status, body)
	}
}

func busyboxSpec(name string) swarm.ServiceSpec {
	return swarm.ServiceSpec{Annotations: swarm.Annotations{Name: name},
		TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: "busybox", Args: []string{"sleep", "1000"}}}}
}

// Each bound and each refused input answers its status with a text that names
// what is wrong (Docker's words where Docker has them), and the daemon goes on
// serving.
func TestBoundsAndClearErrors(t *testing.T) {
	t.Parallel()
	n := testenv.StartNode(t, "bounds", testenv.Options{})

	// Before a swarm: init without an address on a node that has none says
	// dockerd's words, with the CLI's hint once.
	out, err := n.Docker("swarm", "init")
	if want := "Error response from daemon: could not find the system's IP address - specify one with --advertise-addr"; err == nil || strings.TrimSpace(out) != want {
		t.Errorf("swarm init without an address: %v %q, want %q", err, out, want)
	}
	out, err = n.Docker("swarm", "init", "--advertise-addr", "127.0.0.1", "--data-path-addr", "0.0.0.0")
	if err == nil || !strings.Contains(out, "data path address must be a non-zero IP address or network interface (without a port number)") {
		t.Errorf("swarm init --data-path-addr 0.0.0.0: %v %q", err, out)
	}
	out, err = n.Docker("swarm", "init", "--advertise-addr", "127.0.0.1", "--cert-expiry", "15m")
	if err == nil || !strings.Contains(out, "minimum certificate expiry time is: 1h0m0s") {
		t.Errorf("swarm init --cert-expiry 15m: %v %q", err, out)
	}
	if state := strings.TrimSpace(n.MustDocker("info", "--format", "{{.Swarm.LocalNodeState}}")); state != "inactive" {
		t.Errorf("a refused swarm init left the node %s", state)
	}
	mustPing(t, n, "refused swarm inits")

	n.MustDocker("swarm", "init", "--advertise-addr", "127.0.0.1")
	out, err = n.Docker("swarm", "update", "--cert-expiry", "15m")
	if err == nil || strings.TrimSpace(out) != "Error response from daemon: rpc error: code = InvalidArgument desc = minimum certificate expiry time is: 1h0m0s" {
		t.Errorf("swarm update --cert-expiry 15m: %v %q", err, out)
	}

	// CLI-reachable refusals: 400 in the CLI's "Error response from daemon".
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--replicas", "100000000", "busybox"}, "ServiceSpec: replicas 100000000 is more than shoal's limit of 10000 tasks per service"},
		{[]string{"--replicas", "18446744073709551615", "busybox"}, "replicas 18446744073709551615 is more than shoal's limit of 10000 tasks per service"},
		{[]string{"--mode", "replicated-job", "--replicas", "20000", "busybox"}, "TotalCompletions 20000 is more than shoal's limit of 10000"},
		{[]string{"UPPER::bad@@"}, `ContainerSpec: "UPPER::bad@@" is not a valid repository/tag`},
		{[]string{"--mount", "type=bind,src=/tmp/../etc,dst=/x", "busybox"}, `ContainerSpec: invalid bind mount source, must not contain "..": /tmp/../etc`},
	} {
		args := append([]string{"service", "create", "-d", "--no-resolve-image", "--name", "bad"}, c.args...)
		if out, err := n.Docker(args...); err == nil || !strings.Contains(out, "Error response from daemon: rpc error: code = InvalidArgument desc = ") || !strings.Contains(out, c.want) {
			t.Errorf("service create %v: %v %q, want %q", c.args, err, out, c.want)
		}
		mustPing(t, n, fmt.Sprint(c.args))
	}

	// API-reachable refusals, with their statuses.
	bigEnv := busyboxSpec("bigenv")
	bigEnv.TaskTemplate.ContainerSpec.Env = []string{"X=" + strings.Repeat("a", 2<<20)}
	badVolume := busyboxSpec("badvolume")
	badVolume.TaskTemplate.ContainerSpec.Mounts = []mount.Mount{{Type: mount.TypeVolume, Source: "../x", Target: "/x"}}
	for _, c := range []struct {
		name, method, path string
		body               io.Reader
		status             int
		want               string
	}{
		{"2 MB environment", "POST", "/v1.51/services/create", jsonBody(t, bigEnv), 400,
			"bytes encoded, more than shoal's limit of 262144 bytes (256 KiB)"},
		{"volume source ..", "POST", "/v1.51/services/create", jsonBody(t, badVolume), 400,
			`ContainerSpec: invalid volume mount source "../x": includes invalid characters for a local volume name`},
		{"a body over the limit", "POST", "/v1.51/services/create",
			strings.NewReader(`{"Name":"huge","Labels":{"x":"` + strings.Repeat("a", 5<<20) + `"}}`), 413,
			"request body too large: the limit is 4194304 bytes (4 MiB)"},
		{"an API version too new", "GET", "/v1.99/_ping", nil, 400,
			"client version 1.99 is too new. Maximum supported API version is 1.51"},
		{"an API version too new, on a route", "GET", "/v1.99/services", nil, 400,
			"client version 1.99 is too new. Maximum supported API version is 1.51"},
	} {
		status, msg := rawCall(t, n, c.method, c.path, c.body)
		if status != c.status || !strings.Contains(msg, c.want) {
			t.Errorf("%s: %d %.300q, want %d with %q", c.name, status, msg, c.status, c.want)
		}
		mustPing(t, n, c.name)
	}

	// A mode change is swarmkit's Unimplemented: 501.
	n.MustDocker("service", "create", "-d", "--no-resolve-image", "--name", "web", "busybox", "sleep", "1000")
	web := storedService(t, n, "web")
	web.Spec.Mode = swarm.ServiceMode{Global: &swarm.GlobalService{}}
	status, msg := rawCall(t, n, "POST", fmt.Sprintf("/v1.51/services/%s/update?version=%d", web.ID, web.Version.Index), jsonBody(t, web.Spec))
	if status != http.StatusNotImplemented || msg != "rpc error: code = Unimplemented desc = service mode change is not allowed" {
		t.Errorf("mode change = %d %q", status, msg)
	}

	// Ten concurrent creates of one name: one 201, nine 409 with Docker's text.
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		answers = map[string]int{}
	)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status, msg := rawCall(t, n, "POST", "/v1.51/services/create", jsonBody(t, busyboxSpec("same")))
			if status == http.StatusCreated {
				msg = "created"
			}
			mu.Lock()
			answers[fmt.Sprintf("%d %s", status, msg)]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	conflict := "409 rpc error: code = AlreadyExists desc = name conflicts with an existing object: service same already exists"
	if len(answers) != 2 || answers["201 created"] != 1 || answers[conflict] != 9 {
		t.Errorf("ten concurrent creates of one name: %v", answers)
	}
	mustPing(t, n, "concurrent creates")

	if ls := strings.Fields(n.MustDocker("service", "ls", "--format", "{{.Name}}")); len(ls) != 2 || !contains(ls, "same") || !contains(ls, "web") {
		t.Errorf("services after the refused requests: %q, want same and web", ls)
	}
}

// A service with many replicas is accepted up to the bound, its tasks are made in
// bounded store entries, and a daemon restart replays it without trouble. The
// tasks cannot be placed (a constraint no node meets), so none runs.
func TestManyReplicasSurviveARestart(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "manyreplicas")
	n.MustDocker("service", "create", "-d", "--no-resolve-image", "--name", "many", "--replicas", "2000",
		"--constraint", "node.labels.nowhere==true", "busybox", "sleep", "1000")
	countTasks := func() (bool, string) {
		out, err := n.Docker("service", "ps", "-q", "many")
		return err == nil && len(strings.Fields(out)) == 2000, fmt.Sprintf("%d tasks %v", len(strings.Fields(out)), err)
	}
	testenv.WaitFor(t, 2*time.Minute, "2000 pending tasks", countTasks)
	n.Restart()
	mustPing(t, n, "a restart with 2000 tasks")
	testenv.WaitFor(t, time.Minute, "2000 tasks after the restart", countTasks)
	waitServiceLs(t, n, "many", "replicated 0/2000")
	n.MustDocker("service", "rm", "many")
	testenv.WaitFor(t, time.Minute, "the tasks gone", func() (bool, string) {
		out, err := n.Docker("service", "ps", "-q", "many")
		return err != nil && strings.Contains(out, "no such service"), out
	})
}

// `shoal daemon -H fd://` is refused while flags are parsed: nothing is made on
// the host, not a bridge, not an nftables table, not a data root.
func TestUnsupportedHostRefusedBeforeTouchingTheHost(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dataRoot := filepath.Join(dir, "data")
	// In a fresh network namespace, so what a wrong start would create stays
	// there; the same shell then lists its links and nftables tables.
	script := fmt.Sprintf(`%s daemon -H fd:// --data-root %s --exec-root %s --bridge fdtest0 --nftables-table fdtest; echo "exit=$?"; ip -o link show; nft list tables`,
		testenv.Binary(t), dataRoot, filepath.Join(dir, "exec"))
	cmd := exec.Command("unshare", "--net", "sh", "-c", script)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got := out.String()
	if !strings.Contains(got, `shoal daemon: invalid -H "fd://": systemd socket activation (fd://) is not supported; use unix:///path or tcp://host:port`) || !strings.Contains(got, "exit=2") {
		t.Errorf("shoal daemon -H fd://:\n%s", got)
	}
	if strings.Contains(got, "fdtest0") || strings.Contains(got, "table") {
		t.Errorf("a refused start left a bridge or an nftables table:\n%s", got)
	}
	if _, err := os.Stat(dataRoot); !os.IsNotExist(err) {
		t.Errorf("a refused start made the data root: %v", err)
	}
}

// --swarm-default-advertise-addr, as dockerd's flag, is what swarm init
// advertises when the request names no address (moby's test daemons start
// with --swarm-default-advertise-addr=lo and init with ListenAddr 0.0.0.0).
func TestSwarmDefaultAdvertiseAddr(t *testing.T) {
	t.Parallel()
	n := testenv.StartNode(t, "defadv", testenv.Options{Args: []string{"--swarm-default-advertise-addr", "lo"}})
	n.MustDocker("swarm", "init", "--listen-addr", "0.0.0.0:2377")
	if got := strings.TrimSpace(n.MustDocker("info", "--format", "{{.Swarm.NodeAddr}}")); got != "127.0.0.1" {
		t.Fatalf("node address after init without an address = %q, want 127.0.0.1 (from lo)", got)
	}
}
