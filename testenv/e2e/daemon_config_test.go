package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-project/shoal/testenv"
)

// A daemon started with --config-file applies daemon.json (labels and registries
// in `docker info`, the log level in its log), and SIGHUP reloads the labels,
// registries and level from the rewritten file, warning of a key only a restart
// applies.
func TestDaemonConfigFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "daemon.json")
	writeFile(t, path, `{
		"labels": ["zone=east"],
		"log-level": "warn",
		"registry-mirrors": ["http://127.0.0.1:5000"],
		"insecure-registries": ["10.1.0.0/16"]
	}`)
	n := testenv.StartNode(t, "daemonjson", testenv.Options{Args: []string{"--config-file", path}, NoLogLevel: true})

	info := func() string {
		return n.MustDocker("info", "--format", "{{json .Labels}} {{json .RegistryConfig.Mirrors}} {{json .RegistryConfig.InsecureRegistryCIDRs}}")
	}
	if got := info(); !strings.Contains(got, `["zone=east"]`) || !strings.Contains(got, `["http://127.0.0.1:5000"]`) || !strings.Contains(got, `"10.1.0.0/16"`) {
		t.Fatalf("docker info: %s, want the file's labels, mirror and insecure CIDR", got)
	}
	n.MustDocker("swarm", "init", "--advertise-addr", "127.0.0.1")
	if got := n.MustDocker("node", "inspect", "self", "--format", "{{json .Description.Engine.Labels}}"); !strings.Contains(got, `"zone":"east"`) {
		t.Errorf("node engine labels: %s, want zone=east", got)
	}
	if log := n.Log(); strings.Contains(log, "level=INFO") || strings.Contains(log, "level=DEBUG") {
		t.Fatalf("the file's log-level warn let lower levels through:\n%s", log)
	}

	writeFile(t, path, `{
		"labels": ["zone=west", "tier=edge"],
		"log-level": "info",
		"registry-mirrors": ["http://127.0.0.1:5001"],
		"insecure-registries": ["10.1.0.0/16"],
		"nftables-table": "elsewhere"
	}`)
	if err := syscall.Kill(n.Pid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 20*time.Second, "the reloaded labels and mirror in docker info", func() (bool, string) {
		got := info()
		return strings.Contains(got, `["tier=edge","zone=west"]`) && strings.Contains(got, `["http://127.0.0.1:5001"]`), got
	})
	log := n.Log()
	if !strings.Contains(log, `msg="reloaded configuration"`) || !strings.Contains(log, "changed=\"[log-level labels registry-mirrors]\"") {
		t.Errorf("no info line of the reload naming what changed:\n%s", log)
	}
	if !strings.Contains(log, "level=WARN") || !strings.Contains(log, "nftables-table") {
		t.Errorf("no warning that nftables-table needs a restart:\n%s", log)
	}
	if err := n.Ping(context.Background()); err != nil {
		t.Fatalf("the daemon after SIGHUP: %v", err)
	}
}

// A daemon.json key also given as a flag, a key no option matches, and a named
// file that is not there each stop the daemon before it starts, with dockerd's
// words and a non-zero exit.
func TestDaemonConfigRefused(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, file, want string
		args             []string
	}{
		{"a flag and a key", `{"log-level": "warn", "labels": ["zone=east"]}`,
			"unable to configure the daemon with file %s: the following directives are specified both as a flag and in the configuration file: log-level: (from flag: debug, from file: warn)",
			[]string{"--log-level", "debug"}},
		{"a list flag and its plural key", `{"hosts": ["unix:///run/elsewhere.sock"]}`,
			"hosts: (from flag: [unix://%[2]s/api.sock], from file: [unix:///run/elsewhere.sock])", nil},
		{"unknown keys", `{"storage-driver": "overlay2", "iptables": false}`,
			"the following directives don't match any configuration option: iptables, storage-driver", nil},
		{"bad JSON", "{\n  \"labels\": [\"zone=east\",]\n}", "%s: line 2, column 26: invalid character ']'", nil},
		{"a named file that is not there", "", "read configuration file: open %s: no such file or directory", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "daemon.json")
			if c.file != "" {
				writeFile(t, path, c.file)
			}
			out, code := runRefusedDaemon(t, dir, append([]string{"--config-file", path}, c.args...))
			want := strings.ReplaceAll(strings.ReplaceAll(c.want, "%[2]s", dir), "%s", path)
			if code == 0 || !strings.Contains(out, want) {
				t.Fatalf("exit %d, output:\n%s\nwant a non-zero exit and %q", code, out, want)
			}
		})
	}
}

// runRefusedDaemon runs `shoal daemon` with roots and socket under dir, in a
// network namespace of its own so that a daemon that starts against expectation
// touches nothing of the host, and returns its output and exit code.
func runRefusedDaemon(t *testing.T, dir string, args []string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	daemon := append([]string{"--net", testenv.Binary(t), "daemon", "-H", "unix://" + dir + "/api.sock",
		"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--cgroup-parent", "shoal-test-refused"}, args...)
	out, err := exec.CommandContext(ctx, "unshare", daemon...).CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("the daemon ran instead of refusing its configuration:\n%s", out)
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(out), exit.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}
