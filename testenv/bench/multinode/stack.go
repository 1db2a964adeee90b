package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The stack measure (issue 8): `docker stack deploy` of a stack of stackServices
// services (busybox stand-ins, one replica each) through node1, to every service
// with its task running; then `docker stack rm` to no container of it left on
// any node.
const (
	stackServices = 20
	stackName     = "bst"
)

// stackFile writes the stack's compose file in a directory of its own and
// returns its path; the caller removes the directory.
func stackFile() (string, error) {
	dir, err := os.MkdirTemp("", "shoalbench-stack-")
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString("version: \"3.8\"\nservices:\n")
	for i := 1; i <= stackServices; i++ {
		fmt.Fprintf(&b, "  s%02d:\n    image: busybox\n    command: [\"sleep\", \"3600\"]\n    stop_signal: SIGKILL\n    deploy:\n      replicas: 1\n", i)
	}
	path := filepath.Join(dir, "stack.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return path, nil
}

// stack measures one deploy and one removal of the stack.
func (b *bench) stack(ctx context.Context, e *engine, run int) error {
	n1 := e.nodes[0]
	file, err := stackFile()
	if err != nil {
		return err
	}
	defer os.RemoveAll(filepath.Dir(file))
	a := newAPI(n1.Socket, 10*time.Second)
	start := time.Now()
	if _, err := e.docker(ctx, n1, "stack", "deploy", "--resolve-image", "never", "-c", file, stackName); err != nil {
		return err
	}
	cli := time.Since(start)
	label := urlFilter(`{"label":{"com.docker.stack.namespace=` + stackName + `":true}}`)
	desired := urlFilter(`{"desired-state":{"running":true}}`)
	converged := 0
	err = pollUntil(ctx, 5*time.Minute, 100*time.Millisecond, func() (bool, error) {
		var svcs []struct{ ID string }
		if err := a.get(ctx, "/services?filters="+label, &svcs); err != nil {
			return false, err
		}
		var ts []taskInfo
		if err := a.get(ctx, "/tasks?filters="+desired, &ts); err != nil {
			return false, err
		}
		running := map[string]bool{}
		for _, t := range ts {
			if t.Status.State == "running" {
				running[t.ServiceID] = true
			}
		}
		converged = 0
		for _, s := range svcs {
			if running[s.ID] {
				converged++
			}
		}
		return converged == stackServices, nil
	})
	took := time.Since(start)
	if err != nil {
		return fmt.Errorf("%d of %d services running: %w", converged, stackServices, err)
	}
	start = time.Now()
	if out, err := e.docker(ctx, n1, "stack", "rm", stackName); err != nil {
		b.rec.note(e.name, "stack", run, "stack rm: "+out)
	}
	left := 0
	err = pollUntil(ctx, 5*time.Minute, 100*time.Millisecond, func() (bool, error) {
		left = 0
		for _, m := range e.nodes {
			n, err := newAPI(m.Socket, 5*time.Second).stackContainers(ctx, stackName)
			if err != nil {
				return false, err
			}
			left += n
		}
		return left == 0, nil
	})
	rm := time.Since(start)
	if err != nil {
		return fmt.Errorf("%d containers of the stack left: %w", left, err)
	}
	b.rec.line("stack", e.name, fmt.Sprintf("run=%d", run), "ms="+ms(took), "cli_ms="+ms(cli), "rm_ms="+ms(rm),
		fmt.Sprintf("services=%d", stackServices), "load="+loadavg())
	// Let the stack's network go before the next deploy makes it again.
	return pollUntil(ctx, time.Minute, 250*time.Millisecond, func() (bool, error) {
		out, err := e.docker(ctx, n1, "network", "ls", "-q", "--filter", "label=com.docker.stack.namespace="+stackName)
		if err == nil && out != "" {
			_, _ = e.docker(ctx, n1, append([]string{"network", "rm"}, strings.Fields(out)...)...)
		}
		return err == nil && out == "", err
	})
}

// stackContainers counts the node's containers of the stack, running or not.
func (a *api) stackContainers(ctx context.Context, stack string) (int, error) {
	f := urlFilter(`{"label":{"com.docker.stack.namespace=` + stack + `":true}}`)
	var cs []struct{ ID string }
	err := a.get(ctx, "/containers/json?all=1&filters="+f, &cs)
	return len(cs), err
}
