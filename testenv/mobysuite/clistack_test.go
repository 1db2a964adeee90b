package mobysuite

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/shoal-project/shoal/runtime/image/imagetest"
	"github.com/shoal-project/shoal/testenv"
)

// cliVersion is the docker CLI release the project tests with; its e2e/stack
// tests run against shoal.
const cliVersion = "v28.2.2+incompatible"

// TestCLIStack runs docker/cli's e2e/stack tests against one shoal daemon in
// swarm mode, as the CLI's own CI runs them against a dockerd: the CLI on PATH
// talks to it through DOCKER_HOST. The image the stacks name
// (registry:5000/alpine:frozen, from the CI's local registry) is busybox loaded
// under that name: no registry is reached. Its log and summary go to
// MOBYSUITE_OUT as cli-e2e-stack.log.
func TestCLIStack(t *testing.T) {
	if os.Getenv("SHOAL_MOBYSUITE") != "1" {
		t.Skip("runs with SHOAL_MOBYSUITE=1 (make conformance)")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: the daemon runs containers")
	}
	// The CLI's vendor.mod pins moby at a pseudo-version of the v28.2.2 commit
	// that the module proxy does not serve; the release is the same source.
	tree := moduleTree(t, "github.com/docker/cli", cliVersion, "cli",
		"github.com/docker/docker => github.com/docker/docker "+mobyVersion)
	bin := filepath.Join(tree, "e2e-stack.test")
	goCmd(t, tree, "test", "-c", "-o", bin, "./e2e/stack")

	node := testenv.StartNode(t, "clistack", testenv.Options{})
	node.MustDocker("swarm", "init", "--advertise-addr", "127.0.0.1")
	archive := imagetest.BusyboxArchive(t, t.TempDir(), "registry:5000/alpine:frozen")
	node.MustDocker("load", "-i", archive)

	out := os.Getenv("MOBYSUITE_OUT")
	if out == "" {
		out = t.TempDir()
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(out, "cli-e2e-stack.log")
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-test.v")
	cmd.Dir = filepath.Join(tree, "e2e", "stack")
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+node.Socket, "TEST_DOCKER_HOST=unix://"+node.Socket)
	cmd.Stdout, cmd.Stderr = log, log
	runErr := cmd.Run()
	log.Close()
	results, err := parseResults("cli/e2e/stack", logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("docker/cli %s e2e/stack against shoal: %s (exit: %v); log %s", cliVersion, tally(results), runErr, logPath)
	for _, r := range results {
		t.Logf("%-6s %s %s", r.Outcome, r.Name, r.Reason)
	}
}
