package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-project/shoal/testenv"
)

// The lab command's round trip: up, status, kill and start, freeze and thaw,
// partition and heal, docker, down. Needs root and the shoal binary, as
// testenv's tests do.
func TestLabCommand(t *testing.T) {
	name := fmt.Sprintf("cli%d", time.Now().UnixNano()%1e6)
	root := testenv.DefaultLabRoot
	t.Cleanup(func() { _ = testenv.DestroyLab(root, name) }) // should the test fail first
	lab := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		cmd := args[0]
		args = append([]string{cmd, "--name", name}, args[1:]...)
		if err := run(args, &out); err != nil {
			t.Fatalf("lab %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}

	out := lab("up", "--nodes", "2", "--binary", testenv.Binary(t))
	sock := filepath.Join(root, name, "node2", "api.sock")
	if !strings.Contains(out, "node2  10.99.0.2  export DOCKER_HOST=unix://"+sock) {
		t.Fatalf("up printed:\n%s", out)
	}
	out = lab("status")
	if !strings.Contains(out, "node1  10.99.0.1  running (pid") || !strings.Contains(out, "no partition") {
		t.Errorf("status after up:\n%s", out)
	}
	if out := lab("docker", "node2", "info", "--format", "{{.Name}}"); strings.TrimSpace(out) != "node2" {
		t.Errorf("docker node2 info says %q", out)
	}

	// A later command (here: the same process, through the state on disk)
	// finds the daemons that up started.
	lab("kill", "node1")
	if out := lab("status"); !strings.Contains(out, "node1  10.99.0.1  stopped") {
		t.Errorf("status after kill:\n%s", out)
	}
	lab("start", "node1")
	lab("freeze", "node2")
	if out := lab("status"); !strings.Contains(out, "node1  10.99.0.1  running") || !strings.Contains(out, "node2  10.99.0.2  frozen") {
		t.Errorf("status after start and freeze:\n%s", out)
	}
	lab("thaw", "node2")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opened, err := testenv.OpenLab(root, name)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range opened.Machines() {
		if err := m.Ping(ctx); err != nil {
			t.Errorf("after start and thaw: %v", err)
		}
	}

	lab("partition", "node1", "node2")
	if out := lab("status"); !strings.Contains(out, "partition: node1 | node2") {
		t.Errorf("status after partition:\n%s", out)
	}
	lab("heal")
	if out := lab("status"); !strings.Contains(out, "no partition") {
		t.Errorf("status after heal:\n%s", out)
	}

	lab("down")
	if _, err := os.Stat(filepath.Join(root, name)); !os.IsNotExist(err) {
		t.Errorf("after down, the lab's directory: %v", err)
	}
	if out := lab("down"); !strings.Contains(out, "no lab "+name) {
		t.Errorf("a second down said %q", out)
	}
}

func TestLabCommandHelp(t *testing.T) {
	var out bytes.Buffer
	if err := run([]string{"-h"}, &out); !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "partition GROUP GROUP") {
		t.Errorf("lab -h: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := run([]string{"up", "-h"}, &out); !errors.Is(err, flag.ErrHelp) || !strings.Contains(out.String(), "-nodes") {
		t.Errorf("lab up -h: %v\n%s", err, out.String())
	}
	if err := run([]string{"frobnicate"}, &out); err == nil {
		t.Error("an unknown command ran")
	}
}
