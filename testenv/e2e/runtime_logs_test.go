package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoal-project/shoal/testenv"
)

// dockerCmd is the docker CLI aimed at the node, for when a test needs the
// process itself (separate streams, stdin, a command that keeps running).
func dockerCmd(ctx context.Context, n *testenv.Node, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+n.Socket, "DOCKER_CONFIG="+filepath.Join(n.Dir, "docker-config"))
	return cmd
}

// syncBuffer is a bytes.Buffer safe to read while a process writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines splits output into its non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

// docker service logs and docker logs show what a task wrote, on both streams,
// with the options people use: tail, timestamps, since, follow, raw.
func TestRuntimeLogs(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "logs")
	n.MustDocker("service", "create", "-d", "--name", "talker", "--stop-grace-period", "1s",
		"busybox", "sh", "-c", `echo out1; echo err1 >&2; sleep 0.05; echo out2; echo out3; while [ ! -f /tmp/go ]; do sleep 0.1; done; echo later; exec sleep 300`)
	n.MustDocker("service", "create", "-d", "--name", "silent", "--stop-grace-period", "1s", "busybox", "sleep", "300")
	c := taskContainer(t, n, "talker")
	taskID := strings.Split(c, ".")[2]

	testenv.WaitFor(t, 30*time.Second, "the first lines in service logs", func() (bool, string) {
		out, err := n.Docker("service", "logs", "--raw", "talker")
		return err == nil && strings.Contains(out, "out3"), out
	})

	// Plain: every line with the task and node it came from.
	plain := lines(n.MustDocker("service", "logs", "talker"))
	prefix := regexp.MustCompile(`^talker\.1\.` + taskID[:12] + `@logs +\| (.*)$`)
	var msgs []string
	for _, l := range plain {
		m := prefix.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("service logs line %q has no task@node prefix", l)
		}
		msgs = append(msgs, m[1])
	}
	if strings.Join(msgs, ",") != "out1,err1,out2,out3" {
		t.Errorf("service logs messages = %q", msgs)
	}
	// --no-resolve names the service and node by ID, --no-trunc in full.
	serviceID := strings.TrimSpace(n.MustDocker("service", "inspect", "--format", "{{.ID}}", "talker"))
	nodeID := strings.TrimSpace(n.MustDocker("node", "inspect", "--format", "{{.ID}}", "self"))
	if full := n.MustDocker("service", "logs", "--no-trunc", "--no-resolve", "talker"); !strings.HasPrefix(full, serviceID+".1."+taskID+"@"+nodeID+" ") {
		t.Errorf("service logs --no-trunc --no-resolve = %q", full)
	}
	if bare := lines(n.MustDocker("service", "logs", "--no-task-ids", "talker")); len(bare) != 4 || !strings.HasPrefix(bare[0], "talker.1@logs") {
		t.Errorf("service logs --no-task-ids = %q", bare)
	}

	// stdout and stderr arrive on their own streams.
	var stdout, stderr bytes.Buffer
	cmd := dockerCmd(context.Background(), n, "service", "logs", "--raw", "talker")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("service logs: %v %s", err, stderr.String())
	}
	if stdout.String() != "out1\nout2\nout3\n" || stderr.String() != "err1\n" {
		t.Errorf("service logs --raw: stdout %q stderr %q", stdout.String(), stderr.String())
	}
	stdout.Reset()
	stderr.Reset()
	cmd = dockerCmd(context.Background(), n, "logs", c)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("docker logs: %v %s", err, stderr.String())
	}
	if stdout.String() != "out1\nout2\nout3\n" || stderr.String() != "err1\n" {
		t.Errorf("docker logs: stdout %q stderr %q", stdout.String(), stderr.String())
	}

	if tail := n.MustDocker("service", "logs", "--raw", "--tail", "2", "talker"); tail != "out2\nout3\n" {
		t.Errorf("service logs --tail 2 = %q", tail)
	}
	if tail := n.MustDocker("logs", "--tail", "1", c); tail != "out3\n" {
		t.Errorf("docker logs --tail 1 = %q", tail)
	}
	stamped := lines(n.MustDocker("service", "logs", "--timestamps", "--raw", "talker"))
	var last time.Time
	for _, l := range stamped {
		ts, _, _ := strings.Cut(l, " ")
		at, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil || time.Since(at) > time.Minute || at.Before(last) {
			t.Errorf("service logs --timestamps line %q: %v", l, err)
		}
		last = at
	}

	// Follow sees a line written later; --since leaves out what came before.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var followed syncBuffer
	follow := dockerCmd(ctx, n, "service", "logs", "-f", "--raw", "talker")
	follow.Stdout, follow.Stderr = &followed, &followed
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = follow.Wait() })
	testenv.WaitFor(t, 20*time.Second, "follow shows what was there", func() (bool, string) {
		return strings.Contains(followed.String(), "out3"), followed.String()
	})
	since := time.Now()
	mustExec(t, n, c, "touch /tmp/go")
	testenv.WaitFor(t, 20*time.Second, "follow shows a later line", func() (bool, string) {
		return strings.HasSuffix(followed.String(), "out3\nlater\n"), followed.String()
	})
	sinceArg := fmt.Sprintf("%d.%09d", since.Unix(), since.Nanosecond())
	if got := n.MustDocker("service", "logs", "--raw", "--since", sinceArg, "talker"); got != "later\n" {
		t.Errorf("service logs --since %s = %q", sinceArg, got)
	}
	if got := n.MustDocker("logs", "--since", sinceArg, c); got != "later\n" {
		t.Errorf("docker logs --since %s = %q", sinceArg, got)
	}

	// A task that printed nothing has empty logs, returned at once.
	start := time.Now()
	if got := n.MustDocker("service", "logs", "silent"); got != "" {
		t.Errorf("service logs of a silent task = %q", got)
	}
	if got := n.MustDocker("logs", taskContainer(t, n, "silent")); got != "" {
		t.Errorf("docker logs of a silent task = %q", got)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("logs of a silent task took %s", d)
	}
}
