package conformance

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-project/shoal/runtime/image/imagetest"
	"github.com/shoal-project/shoal/testenv"
)

// recording is set by `make conformance-record`: the corpus runs against dockerd
// and its transcripts are written to testdata/golden.
var recording = os.Getenv("CONFORMANCE_RECORD") == "1"

const (
	scenarioDir    = "testdata/scenarios"
	goldenDir      = "testdata/golden"
	deliberateFile = "deliberate.txt"
)

// TestCorpus runs the corpus against a fresh shoal daemon and compares every
// answer with dockerd's recorded one; a difference fails the test unless
// deliberate.txt lists it. With CONFORMANCE_RECORD=1 it runs the corpus against
// dockerd 20.10 instead and writes the transcripts.
func TestCorpus(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: it starts daemons in namespaces of their own")
	}
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("needs the docker CLI on PATH")
	}
	corpus, err := LoadCorpus(scenarioDir)
	if err != nil {
		t.Fatal(err)
	}
	corpus = withVariants(t, corpus, cli2010Scenarios)
	only := os.Getenv("CONFORMANCE_SCENARIOS")
	if only != "" {
		corpus = selectScenarios(corpus, only, true)
	}
	var node *testenv.Node
	if recording {
		node = testenv.StartDockerd(t, "conformance")
	} else {
		node = testenv.StartNode(t, "conformance", testenv.Options{})
	}
	engine := newEngine(t, node)
	runCorpus(t, corpus, engine, only, true, func() { cleanUp(t, node) })
}

// runCorpus runs each scenario of the corpus against the engine, then
// cleanUp, and writes its transcript (recording) or compares it with the
// recorded one (replaying).
func runCorpus(t *testing.T, corpus []Scenario, engine Engine, only string, wildcards bool, cleanUp func()) {
	t.Helper()
	ctx := context.Background()
	var diffs []Difference
	steps := 0
	for _, sc := range corpus {
		tr, err := Run(ctx, engine.WithCLI(sc.CLI), sc)
		if err != nil {
			t.Fatal(err)
		}
		steps += len(tr.Results)
		cleanUp()
		golden := filepath.Join(goldenDir, sc.Name+".golden")
		if recording {
			if err := os.WriteFile(golden, []byte(tr.Format()), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		data, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("scenario %s has no transcript (make conformance-record): %v", sc.Name, err)
		}
		want, err := ParseTranscript(sc.Name, string(data))
		if err != nil {
			t.Fatal(err)
		}
		diffs = append(diffs, Compare(want, tr)...)
	}
	t.Logf("%d scenarios (%d with the %s CLI), %d steps, %d commands and API calls", len(corpus), countVariant(corpus, CLI2010), CLI2010.Name, steps, countCommands(corpus))
	if recording {
		return
	}
	judge(t, diffs, corpus, only == "", wildcards)
}

// withVariants is the corpus with, after each scenario that matches one of
// the patterns, the same scenario for the 20.10 CLI (when that CLI is
// installed): both then start from the same state.
func withVariants(t *testing.T, corpus []Scenario, patterns []string) []Scenario {
	t.Helper()
	if _, err := exec.LookPath(CLI2010.CLI); err != nil {
		t.Logf("no %s CLI at %s: its variant of the corpus does not run", CLI2010.Name, CLI2010.CLI)
		patterns = nil
	}
	var out []Scenario
	for _, sc := range corpus {
		out = append(out, sc.For(CLI28))
		for _, p := range patterns {
			if ok, _ := path.Match(p, sc.Name); ok {
				out = append(out, sc.For(CLI2010))
				break
			}
		}
	}
	return out
}

// countVariant counts the corpus's scenarios run with the variant's CLI.
func countVariant(corpus []Scenario, v Variant) int {
	n := 0
	for _, sc := range corpus {
		if sc.CLI == v.CLI {
			n++
		}
	}
	return n
}

// selectScenarios keeps the scenarios whose names match the comma-separated
// patterns of CONFORMANCE_SCENARIOS (path.Match), to debug a few, and the
// first (the setup) when setup is set.
func selectScenarios(corpus []Scenario, patterns string, setup bool) []Scenario {
	var kept []Scenario
	for i, sc := range corpus {
		keep := setup && i == 0
		for _, p := range strings.Split(patterns, ",") {
			if ok, _ := path.Match(p, sc.Name); ok {
				keep = true
			}
		}
		if keep {
			kept = append(kept, sc)
		}
	}
	return kept
}

// judge fails the test for every difference that deliberate.txt does not list,
// and, when the whole corpus ran, for every entry of deliberate.txt for one of
// its scenarios (those for every scenario too, with wildcards) that no
// difference needs any more.
func judge(t *testing.T, diffs []Difference, corpus []Scenario, whole, wildcards bool) {
	t.Helper()
	deliberate, err := LoadDeliberate(deliberateFile)
	if err != nil {
		t.Fatal(err)
	}
	used := map[*Deliberate]bool{}
	explain := os.Getenv("CONFORMANCE_EXPLAIN") == "1"
	var unexplained []string
	for _, d := range diffs {
		explained := false
		for _, del := range deliberate {
			if del.Matches(d) {
				used[del], explained = true, true
				if explain {
					t.Logf("deliberate (%s line %d): %s | %s | %s", deliberateFile, del.Line, d.Scenario, d.Step, d.Field)
				}
				break
			}
		}
		if !explained {
			unexplained = append(unexplained, d.String())
		}
	}
	t.Logf("%d differences, %d of them deliberate (%d entries of %s)", len(diffs), len(diffs)-len(unexplained), len(deliberate), deliberateFile)
	for _, del := range deliberate {
		if whole && !used[del] && del.ForAny(corpus, wildcards) {
			t.Errorf("%s line %d matches no difference any more; remove it: %s | %s | %s", deliberateFile, del.Line, del.Scenario, del.Step, del.Field)
		}
	}
	if len(unexplained) > 0 {
		t.Errorf("%d differences from dockerd that %s does not list:\n%s", len(unexplained), deliberateFile, strings.Join(unexplained, "\n"))
	}
}

// countCommands counts the distinct commands and API calls of the corpus,
// each variant's apart.
func countCommands(corpus []Scenario) int {
	seen := map[string]bool{}
	for _, sc := range corpus {
		for _, st := range sc.Steps {
			if st.Kind != Until && st.Kind != File {
				seen[sc.CLI+" "+st.Text] = true
			}
		}
	}
	return len(seen)
}

// newEngine aims the corpus at the node: the busybox image archive (the same
// bytes for every engine, so the image ID is the same) and a scratch directory
// are the scenarios' $ARCHIVE and $TMP.
func newEngine(t *testing.T, n *testenv.Node) Engine {
	t.Helper()
	e, _ := newEngines(t, []*testenv.Node{n})
	return e
}

// newEngines aims a multi-node corpus at nodes: the first is the engine steps
// run on unless they name another ("@node2 docker ..."); they share $ARCHIVE,
// $TMP and the normaliser, which takes every node's directory for <dir>. It
// returns the archive's path too.
func newEngines(t *testing.T, nodes []*testenv.Node) (Engine, string) {
	t.Helper()
	tmp := t.TempDir()
	archive := imagetest.BusyboxArchive(t, tmp, "busybox:latest")
	imageID, err := archiveImageID(archive)
	if err != nil {
		t.Fatal(err)
	}
	version := strings.TrimSpace(nodes[0].MustDocker("version", "--format", "{{.Server.Version}}"))
	vars := strings.NewReplacer("$ARCHIVE", archive, "$TMP", tmp)
	literal := map[string]string{tmp: "<tmp>", imageID: "<busybox-id>", imageID[:12]: "<busybox-id12>", version: "<engine-version>"}
	for _, n := range nodes {
		literal[n.Dir] = "<dir>"
	}
	normaliser := Normaliser{Seen: map[string]bool{}, Literal: literal}
	engineOf := func(n *testenv.Node) Engine {
		return Engine{
			Command: func(ctx context.Context, cli string, args ...string) *exec.Cmd {
				expanded := make([]string, len(args))
				for i, a := range args {
					expanded[i] = vars.Replace(a)
				}
				return n.DockerCommand(ctx, cli, expanded...)
			},
			CLI:        CLI28.CLI,
			Client:     n.HTTPClient(),
			Normaliser: normaliser,
			Scratch:    tmp,
		}
	}
	e := engineOf(nodes[0])
	if len(nodes) > 1 {
		e.Nodes = map[string]Engine{}
		for _, n := range nodes {
			e.Nodes[n.Name] = engineOf(n)
		}
	}
	return e, archive
}

// archiveImageID is the ID (config digest, hex) of the image in a `docker save`
// archive.
func archiveImageID(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("read image archive: %w", err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return "", errors.New("read image archive: no manifest.json")
		}
		if err != nil {
			return "", fmt.Errorf("read image archive: %w", err)
		}
		if h.Name != "manifest.json" {
			continue
		}
		var manifest []struct{ Config string }
		if err := json.NewDecoder(tr).Decode(&manifest); err != nil || len(manifest) != 1 {
			return "", fmt.Errorf("read image archive: manifest.json: %v", err)
		}
		return strings.TrimSuffix(filepath.Base(manifest[0].Config), ".json"), nil
	}
}

// cleanUp removes what a scenario left (services and their containers, volumes,
// secrets and configs)
// so the next one starts from the same state; it is not part of the transcript.
// dockerd 20.10 sometimes keeps the containers of a removed service's finished
// tasks (jobs, say): those are removed by force.
func cleanUp(t *testing.T, n *testenv.Node) {
	t.Helper()
	if ids := fields(n.MustDocker("service", "ls", "-q")); len(ids) > 0 {
		n.MustDocker(append([]string{"service", "rm"}, ids...)...)
	}
	containersGone := func() (bool, string) {
		out, err := n.Docker("ps", "-aq")
		return err == nil && strings.TrimSpace(out) == "", out
	}
	deadline := time.Now().Add(30 * time.Second)
	for ok, _ := containersGone(); !ok && time.Now().Before(deadline); ok, _ = containersGone() {
		time.Sleep(100 * time.Millisecond)
	}
	if ok, left := containersGone(); !ok {
		_, _ = n.Docker(append([]string{"rm", "-f"}, fields(left)...)...)
	}
	testenv.WaitFor(t, 60*time.Second, "task containers gone", containersGone)
	if ids := fields(n.MustDocker("volume", "ls", "-q")); len(ids) > 0 {
		n.MustDocker(append([]string{"volume", "rm", "-f"}, ids...)...)
	}
	for _, kind := range []string{"secret", "config"} {
		if ids := fields(n.MustDocker(kind, "ls", "-q")); len(ids) > 0 {
			n.MustDocker(append([]string{kind, "rm"}, ids...)...)
		}
	}
}

func fields(s string) []string { return strings.Fields(s) }
