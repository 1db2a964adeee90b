package e2e

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shoal-project/shoal/testenv"
)

// The README's quick start, run as written on a fresh node: every command of its
// first block with `docker swarm init` runs in a directory that sees the
// repository's files (so `make busybox.tar` works there), with DOCKER_HOST aimed
// at the node, and each must exit 0 and say what a user would look for. Only the
// daemon's start (`make run`) is replaced, by the node. A command this test has
// no expectation for fails it: a changed quick start needs its test changed too.
func TestReadmeQuickStart(t *testing.T) {
	t.Parallel()
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(repo, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := codeBlocks(string(readme))
	start, ok := blockWith(blocks, "make run")
	if !ok {
		t.Fatal("README.md has no code block with the daemon's start, make run")
	}
	quick, ok := blockWith(blocks, "docker swarm init")
	if !ok {
		t.Fatal("README.md has no quick start (a code block with docker swarm init)")
	}
	work := repoView(t, repo)
	n := testenv.StartNode(t, "quickstart", testenv.Options{})
	withDefaultRoute(t, n)
	env := map[string]string{}
	for _, line := range quick {
		for _, command := range splitCommands(stripComment(line)) {
			if name, value, ok := strings.Cut(strings.TrimPrefix(command, "export "), "="); ok && strings.HasPrefix(command, "export ") {
				env[name] = value
				checkExport(t, name, value, start)
				continue
			}
			check, ok := quickStartChecks[command]
			if !ok {
				t.Fatalf("the README's quick start has %q, which this test has no expectation for", command)
			}
			out, err := runQuickStart(n, work, command)
			if err != nil {
				t.Fatalf("README quick start: %s: %v\n%s", command, err, lastLines(out, 30))
			}
			check(t, n, work, out)
		}
	}
	if env["DOCKER_HOST"] == "" {
		t.Error("the quick start never sets DOCKER_HOST")
	}
}

// checkExport makes sure an exported DOCKER_HOST is the socket the README's
// daemon start listens on; the commands that follow it are aimed at the node.
func checkExport(t *testing.T, name, value string, start []string) {
	t.Helper()
	if name != "DOCKER_HOST" {
		t.Fatalf("the quick start exports %s, which this test has no expectation for", name)
	}
	if !strings.Contains(strings.Join(start, "\n"), value) {
		t.Errorf("the quick start's DOCKER_HOST=%s is not where the README's make run listens:\n%s", value, strings.Join(start, "\n"))
	}
}

// withDefaultRoute gives the node what any machine has and a lone test node
// lacks: an interface with an address and a default route through it, which
// `docker swarm init` with no --advertise-addr advertises. The interface is one
// end of a veth pair whose both ends are in the node's own network namespace:
// nothing sent there leaves it.
func withDefaultRoute(t *testing.T, n *testenv.Node) {
	t.Helper()
	for _, args := range [][]string{
		{"link", "add", "eth0", "type", "veth", "peer", "name", "eth0-peer"},
		{"addr", "add", "192.0.2.10/24", "dev", "eth0"},
		{"link", "set", "eth0-peer", "up"},
		{"link", "set", "eth0", "up"},
		{"route", "add", "default", "via", "192.0.2.1"},
	} {
		if out, err := n.Command(context.Background(), "ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// runQuickStart runs one command with bash in work, with DOCKER_HOST aimed at n.
func runQuickStart(n *testenv.Node, work, command string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := n.DockerCommand(ctx, "bash", "-c", command)
	cmd.Dir = work
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// quickStartChecks is what each quick start command must say, and what the
// swarm must then show.
var quickStartChecks = map[string]func(t *testing.T, n *testenv.Node, work, out string){
	"make busybox.tar": func(t *testing.T, n *testenv.Node, work, out string) {
		if fi, err := os.Stat(filepath.Join(work, "busybox.tar")); err != nil || fi.Size() == 0 {
			t.Fatalf("make busybox.tar made no busybox.tar: %v", err)
		}
	},
	"docker swarm init": func(t *testing.T, n *testenv.Node, work, out string) {
		wantOutput(t, out, "Swarm initialized", "docker swarm join --token SWMTKN-1-")
	},
	"docker load -i busybox.tar": func(t *testing.T, n *testenv.Node, work, out string) {
		wantOutput(t, out, "Loaded image: busybox:latest")
	},
	"docker service create --name web --replicas 3 busybox httpd -f -p 8080": func(t *testing.T, n *testenv.Node, work, out string) {
		wantOutput(t, out, "3 out of 3 tasks", "converged")
	},
	"docker service ls": func(t *testing.T, n *testenv.Node, work, out string) {
		wantOutput(t, out, "web", "replicated", "3/3", "busybox:latest")
	},
	"docker service ps web": func(t *testing.T, n *testenv.Node, work, out string) {
		if got := strings.Count(out, "Running"); got != 6 { // DESIRED and CURRENT STATE of three tasks
			t.Errorf("docker service ps web shows %d Running, want 3 tasks desired and running:\n%s", got, out)
		}
	},
	"docker service logs web": func(t *testing.T, n *testenv.Node, work, out string) {}, // httpd -f logs nothing; exit 0 is the point
	"docker service scale web=5": func(t *testing.T, n *testenv.Node, work, out string) {
		wantOutput(t, out, "web scaled to 5", "5 out of 5 tasks", "converged")
		waitRunning(t, n, "web", 5)
	},
	"docker tag busybox busybox:2": func(t *testing.T, n *testenv.Node, work, out string) {
		wantOutput(t, n.MustDocker("image", "ls", "busybox"), "latest", "2 ")
	},
	"docker service update --image busybox:2 web": func(t *testing.T, n *testenv.Node, work, out string) {
		wantOutput(t, out, "5 out of 5 tasks", "converged")
		wantImage(t, n, "busybox:2")
	},
	"docker service rollback web": func(t *testing.T, n *testenv.Node, work, out string) {
		wantOutput(t, out, "rollback: manually requested rollback", "converged")
		wantImage(t, n, "busybox:latest")
	},
	"docker service rm web": func(t *testing.T, n *testenv.Node, work, out string) {
		wantOutput(t, out, "web")
		if ls := n.MustDocker("service", "ls", "-q"); strings.TrimSpace(ls) != "" {
			t.Errorf("docker service ls after rm:\n%s", ls)
		}
	},
}

func wantOutput(t *testing.T, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, lastLines(out, 30))
		}
	}
}

// lastLines is the end of a command's output: the CLI's progress display,
// without a terminal, prints a line per refresh.
func lastLines(out string, n int) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// wantImage checks that every running task of web runs image.
func wantImage(t *testing.T, n *testenv.Node, image string) {
	t.Helper()
	spec := n.MustDocker("service", "inspect", "--format", "{{.Spec.TaskTemplate.ContainerSpec.Image}}", "web")
	if !strings.HasPrefix(strings.TrimSpace(spec), image) {
		t.Errorf("web's image is %q, want %s", spec, image)
	}
	for _, r := range serviceTasks(t, n, "web", "--filter", "desired-state=running") {
		if !strings.HasPrefix(r.Image, image) {
			t.Errorf("task %s runs %s, want %s", r.Name, r.Image, image)
		}
	}
}

// repoView is a fresh directory with a symlink to each of the repository's
// top-level entries but its build outputs, as a user's checkout before the
// quick start: make runs there and writes busybox.tar there.
func repoView(t *testing.T, repo string) string {
	t.Helper()
	work := t.TempDir()
	entries, err := os.ReadDir(repo)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		switch e.Name() {
		case "busybox.tar", "bin", "dist":
			continue
		}
		if err := os.Symlink(filepath.Join(repo, e.Name()), filepath.Join(work, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	return work
}

// codeBlocks are the Markdown file's indented code blocks, each as its lines
// without the indent.
func codeBlocks(md string) [][]string {
	var blocks [][]string
	var cur []string
	prevBlank := true
	for _, line := range strings.Split(md, "\n") {
		switch {
		case strings.HasPrefix(line, "    ") && (cur != nil || prevBlank):
			cur = append(cur, strings.TrimPrefix(line, "    "))
		case strings.TrimSpace(line) == "" && cur != nil:
			cur = append(cur, "")
		default:
			if cur != nil {
				blocks = append(blocks, cur)
				cur = nil
			}
		}
		prevBlank = strings.TrimSpace(line) == ""
	}
	if cur != nil {
		blocks = append(blocks, cur)
	}
	return blocks
}

// blockWith is the first block with a line that starts with prefix.
func blockWith(blocks [][]string, prefix string) ([]string, bool) {
	for _, b := range blocks {
		for _, l := range b {
			if strings.HasPrefix(strings.TrimSpace(l), prefix) {
				return b, true
			}
		}
	}
	return nil, false
}

var comment = regexp.MustCompile(`(^|\s)#\s.*$`)

// stripComment drops a shell comment (" # ...") from a line.
func stripComment(line string) string {
	return strings.TrimSpace(comment.ReplaceAllString(line, ""))
}

// splitCommands splits a shell line at the semicolons outside quotes, each
// command trimmed; empty ones are dropped.
func splitCommands(line string) []string {
	var cmds []string
	var quote rune
	startAt := 0
	for i, r := range line {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote == 0 && (r == '\'' || r == '"'):
			quote = r
		case quote == 0 && r == ';':
			cmds = append(cmds, line[startAt:i])
			startAt = i + 1
		}
	}
	cmds = append(cmds, line[startAt:])
	var out []string
	for _, c := range cmds {
		if c = strings.TrimSpace(c); c != "" {
			out = append(out, c)
		}
	}
	return out
}
