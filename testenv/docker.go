package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// DockerCommand is a docker CLI command aimed at the machine's API socket, with a
// docker config directory of the machine's own.
func (m *Machine) DockerCommand(ctx context.Context, cli string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, cli, args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST=unix://"+m.Socket, "DOCKER_CONFIG="+filepath.Join(m.Dir, "docker-config"))
	return cmd
}

// DockerContext runs the docker CLI against the machine and returns its combined
// output; ctx bounds the command.
func (m *Machine) DockerContext(ctx context.Context, args ...string) (string, error) {
	return m.RunCLI(ctx, "docker", args...)
}

// RunCLI runs a docker CLI binary (another version than the one first on PATH, say)
// against the machine and returns its combined output.
func (m *Machine) RunCLI(ctx context.Context, cli string, args ...string) (string, error) {
	cmd := m.DockerCommand(ctx, cli, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", cli, strings.Join(args, " "), err, out.String())
	}
	return out.String(), nil
}

// shellJoin quotes args for sh -c.
func shellJoin(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(quoted, " ")
}
