package conformance

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/shoal-project/shoal/testenv"
)

// multiNodeDir holds the scenarios that need several engines: a lab of
// multiNodes nodes (node1 ... at 10.99.0.1 ...), steps on node1 unless they
// name another ("@node2 docker swarm join ...").
const (
	multiNodeDir = "testdata/multinode"
	multiNodes   = 3
)

// TestMultiNodeCorpus runs the multi-node scenarios against a lab of shoal
// daemons and compares every answer with the one recorded from a lab of
// dockerd 20.10 daemons (CONFORMANCE_RECORD=1 records it), as TestCorpus does
// for one engine. Each scenario starts with no swarm and the busybox image on
// every node; after it every node leaves whatever swarm it is in.
func TestMultiNodeCorpus(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: it starts daemons in namespaces of their own")
	}
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("needs the docker CLI on PATH")
	}
	corpus, err := LoadCorpus(multiNodeDir)
	if err != nil {
		t.Fatal(err)
	}
	corpus = withVariants(t, corpus, cli2010MultiNode)
	only := os.Getenv("CONFORMANCE_SCENARIOS")
	if only != "" {
		corpus = selectScenarios(corpus, only, false)
	}
	opts := testenv.LabOptions{Nodes: multiNodes}
	if recording {
		opts.Command = testenv.LabDockerd
	}
	lab := testenv.NewLab(t, opts)
	engine, archive := newEngines(t, lab.Nodes)
	for _, n := range lab.Nodes {
		n.MustDocker("load", "-i", archive)
	}
	runCorpus(t, corpus, engine, only, false, func() { leaveSwarms(t, lab.Nodes) })
}

// leaveSwarms takes every node out of its swarm, workers first, and waits
// until no task container is left on any.
func leaveSwarms(t *testing.T, nodes []*testenv.Node) {
	t.Helper()
	for i := len(nodes) - 1; i >= 0; i-- {
		_, _ = nodes[i].Docker("swarm", "leave", "--force")
	}
	for _, n := range nodes {
		testenv.WaitFor(t, 60*time.Second, n.Name+": task containers gone", func() (bool, string) {
			out, err := n.Docker("ps", "-aq")
			return err == nil && strings.TrimSpace(out) == "", out
		})
	}
}
