package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"
)

// Node is a Machine bound to a test: its methods fail the test rather than return
// errors, and report the daemon's log when they do.
type Node struct {
	*Machine
	t testing.TB
}

// Options change how a node's daemon starts.
type Options struct {
	// Args are extra `shoal daemon` flags.
	Args []string
	// NoLogLevel leaves out the --log-level debug every node's daemon is
	// given, for a daemon.json that sets the level itself.
	NoLogLevel bool
}

// StartNode starts a shoal daemon in fresh network and UTS namespaces, with the
// hostname name, and waits until its API answers. The node is stopped and every
// trace of it removed when the test ends. Each start of its daemon (after Kill,
// say) gets fresh namespaces.
func StartNode(t testing.TB, name string, opts Options) *Node {
	t.Helper()
	binary := Binary(t)
	dir, err := os.MkdirTemp("", "shoal-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{Machine: newMachine(name, dir, "shoal-test-"+randomSuffix(), binary, opts.Args), t: t}
	n.noLogLevel = opts.NoLogLevel
	t.Cleanup(n.destroy)
	n.Start()
	return n
}

// destroy stops the lone node and removes every trace of it.
func (n *Node) destroy() {
	if n.t.Failed() {
		n.t.Logf("node %s daemon log:\n%s", n.Name, tail(n.Log(), 200))
	}
	if err := n.Machine.remove(context.Background()); err != nil {
		n.t.Logf("node %s: %v", n.Name, err)
	}
}

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// fatal fails the test with err and the end of the daemon's log.
func (n *Node) fatal(err error) {
	n.t.Helper()
	n.t.Fatalf("node %s: %v\ndaemon log:\n%s", n.Name, err, tail(n.Log(), 100))
}

// Start starts the node's daemon (again, after Kill or Stop) and waits for its API.
func (n *Node) Start() {
	n.t.Helper()
	if err := n.Machine.Start(context.Background()); err != nil {
		n.fatal(err)
	}
}

// Kill stops the daemon with SIGKILL, as a crash would; its containers keep running.
func (n *Node) Kill() {
	n.t.Helper()
	if err := n.Machine.Kill(context.Background()); err != nil {
		n.fatal(err)
	}
}

// Stop stops the daemon with SIGTERM and waits for it to exit.
func (n *Node) Stop() {
	n.t.Helper()
	if err := n.Machine.Stop(context.Background()); err != nil {
		n.fatal(err)
	}
}

// Restart kills the daemon (SIGKILL) and starts it again on the same state.
func (n *Node) Restart() {
	n.t.Helper()
	if err := n.Machine.Restart(context.Background()); err != nil {
		n.fatal(err)
	}
}

// Freeze stops the daemon with SIGSTOP, as a hung process; its containers run on.
func (n *Node) Freeze() {
	n.t.Helper()
	if err := n.Machine.Freeze(); err != nil {
		n.fatal(err)
	}
}

// Thaw lets a frozen daemon run again (SIGCONT).
func (n *Node) Thaw() {
	n.t.Helper()
	if err := n.Machine.Thaw(); err != nil {
		n.fatal(err)
	}
}

// Reset kills the daemon and its containers, wipes its state and starts it fresh
// with the same name, address and namespaces.
func (n *Node) Reset() {
	n.t.Helper()
	if err := n.Machine.Reset(context.Background()); err != nil {
		n.fatal(err)
	}
}

// Docker runs the docker CLI against the node and returns its combined output.
func (n *Node) Docker(args ...string) (string, error) {
	return n.DockerContext(context.Background(), args...)
}

// MustDocker is Docker that fails the test on error (with 2 minutes at most).
func (n *Node) MustDocker(args ...string) string {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := n.DockerContext(ctx, args...)
	if err != nil {
		n.t.Fatalf("node %s: %v", n.Name, err)
	}
	return out
}
