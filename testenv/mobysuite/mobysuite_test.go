// Package mobysuite runs moby's own integration tests (integration/service,
// integration/secret, integration/config of the moby release that matches the
// docker CLI shoal is tested with) against shoal, as an outside judge.
//
// moby's tests start a dockerd per test through testutil/daemon, which looks
// "dockerd" up on PATH: the harness puts a wrapper of that name first
// (./dockerd), which execs `shoal daemon` with the flags shoal shares with
// dockerd and a bridge, nftables table, subnet and cgroup parent of its own.
// Each package's test binary runs in a fresh network namespace (a
// testenv.Sandbox), so the daemons of one test reach each other on its
// loopback. The "main" daemon the tests read their environment from and save
// busybox from (DOCKER_HOST) is Debian's dockerd, started by testenv.
//
// It runs only with SHOAL_MOBYSUITE=1 (make conformance). MOBYSUITE_PACKAGES
// picks packages (comma-separated, default service,secret,config);
// MOBYSUITE_RUN is passed to -test.run; MOBYSUITE_OUT is a directory that
// keeps each package's log and the summary. See docs/conformance.md.
package mobysuite

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/shoal-project/shoal/runtime/image/imagetest"
	"github.com/shoal-project/shoal/testenv"
)

// mobyVersion is the moby release of the docker CLI the project tests with.
const mobyVersion = "v28.2.2+incompatible"

// packageTimeout bounds one package's run.
const packageTimeout = 45 * time.Minute

func TestMobySuite(t *testing.T) {
	if os.Getenv("SHOAL_MOBYSUITE") != "1" {
		t.Skip("runs with SHOAL_MOBYSUITE=1 (make conformance)")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: the daemons run containers")
	}
	shoal := testenv.Binary(t)
	moby := mobyTree(t)
	sbx := testenv.NewSandbox(t)
	bin := filepath.Join(sbx.Dir, "bin")
	goCmd(t, "", "build", "-o", filepath.Join(bin, "dockerd"), "./dockerd")

	main := testenv.StartDockerd(t, "mobymain")
	archive := imagetest.BusyboxArchive(t, t.TempDir(), "busybox:latest", imagetest.WithLayer(busyboxGroups))
	main.MustDocker("load", "-i", archive)
	// The images moby's environment wants ("frozen"); without them it pulls.
	// busybox stands in for each: tests that run another image's program fail.
	for _, frozen := range []string{"busybox:glibc", "hello-world:frozen", "debian:bookworm-slim", "hello-world:amd64", "hello-world:arm64"} {
		main.MustDocker("tag", "busybox:latest", frozen)
	}
	mainSocket := apiVersionProxy(t, main.Socket, filepath.Join(sbx.Dir, "main.sock"))

	out := os.Getenv("MOBYSUITE_OUT")
	if out == "" {
		out = t.TempDir()
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	var all []result
	for _, pkg := range packages() {
		name, dir := packageDir(pkg)
		testBin := filepath.Join(moby, name+".test")
		goCmd(t, moby, "test", "-c", "-o", testBin, "./"+dir)
		args := []string{testBin, "-test.v", "-test.timeout", packageTimeout.String()}
		if run := os.Getenv("MOBYSUITE_RUN"); run != "" {
			args = append(args, "-test.run", run)
		}
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = filepath.Join(moby, dir)
		cmd.Env = append(os.Environ(),
			"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
			"DOCKER_HOST=unix://"+mainSocket,
			"DEST="+filepath.Join(sbx.Dir, "dest", name),
			"TMPDIR="+filepath.Join(sbx.Dir, "tmp"),
			"MOBYSUITE_SHOAL="+shoal,
			"MOBYSUITE_CGROUP_PREFIX="+sbx.CgroupPrefix,
		)
		if err := os.MkdirAll(filepath.Join(sbx.Dir, "tmp"), 0o755); err != nil {
			t.Fatal(err)
		}
		logPath := filepath.Join(out, name+".log")
		log, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), packageTimeout+time.Minute)
		start := time.Now()
		runErr := sbx.Run(ctx, cmd, log)
		cancel()
		log.Close()
		keepDaemonLogs(t, filepath.Join(sbx.Dir, "dest", name), filepath.Join(out, name+"-daemons"))
		results, err := parseResults(pkg, logPath)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %s in %s (exit: %v); log %s", pkg, tally(results), time.Since(start).Round(time.Second), runErr, logPath)
		all = append(all, results...)
	}
	summary := summarise(all)
	if err := os.WriteFile(filepath.Join(out, "summary.txt"), []byte(summary), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("moby %s against shoal:\n%s", mobyVersion, summary)
}

// busyboxGroups is the official busybox image's /etc/group, in the part
// moby's tests name (TestSwarmServiceWithGroup runs `--group wheel --group
// audio --group staff`; root is a member of wheel): the test busybox has only
// root and nogroup.
var busyboxGroups = imagetest.File("etc/group",
	"root:x:0:\nwheel:x:10:root\naudio:x:29:\nstaff:x:50:\nusers:x:100:\nnogroup:x:65534:\n", 0o644)

// apiVersionProxy serves, on a unix socket at path, the API of the daemon at
// upstream with every request's API version made 1.41: moby's test clients
// speak 1.50 without negotiating (to the main daemon too), and the main daemon
// is dockerd 20.10. It stops when the test ends.
func apiVersionProxy(t *testing.T, upstream, path string) string {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	versioned := regexp.MustCompile(`^/v1\.\d+/`)
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.Out.URL.Scheme, r.Out.URL.Host = "http", "docker"
			r.Out.URL.Path = versioned.ReplaceAllString(r.In.URL.Path, "/v1.41/")
			r.Out.URL.RawPath = ""
		},
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", upstream)
		}},
	}
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return path
}

// keepDaemonLogs copies the log of each daemon a package's tests started
// (<dest>/<test>/<id>/docker.log, or a level deeper for a suite's tests, as
// integration-cli's TestDockerSwarmSuite/<test>) to out as <test>-<id>.log,
// before the sandbox goes.
func keepDaemonLogs(t *testing.T, dest, out string) {
	t.Helper()
	logs, _ := filepath.Glob(filepath.Join(dest, "*", "*", "docker.log"))
	deeper, _ := filepath.Glob(filepath.Join(dest, "*", "*", "*", "docker.log"))
	logs = append(logs, deeper...)
	if len(logs) == 0 {
		return
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, l := range logs {
		id := filepath.Base(filepath.Dir(l))
		test := filepath.Base(filepath.Dir(filepath.Dir(l)))
		data, err := os.ReadFile(l)
		if err == nil {
			err = os.WriteFile(filepath.Join(out, test+"-"+id+".log"), data, 0o644)
		}
		if err != nil {
			t.Logf("keep daemon log %s: %v", l, err)
		}
	}
}

// packages are the moby integration packages to run.
func packages() []string {
	if p := os.Getenv("MOBYSUITE_PACKAGES"); p != "" {
		return strings.Split(p, ",")
	}
	return []string{"service", "secret", "config"}
}

// packageDir is where a package of MOBYSUITE_PACKAGES is in moby's tree (a
// name under integration/, such as network/overlay, or integration-cli) and
// the name its binary and logs take.
func packageDir(pkg string) (name, dir string) {
	name = strings.ReplaceAll(pkg, "/", "-")
	if pkg == "integration-cli" {
		return name, pkg
	}
	return name, filepath.Join("integration", pkg)
}

// mobyTree is moby's source at mobyVersion, from the Go module cache, made a
// module of its own: moby has no go.mod but a vendor.mod that pins its
// dependencies (and its tests need a newer language version than a module
// without go.mod gets). It is kept in the user's cache directory.
func mobyTree(t *testing.T) string {
	return moduleTree(t, "github.com/docker/docker", mobyVersion, "moby")
}

// moduleTree is the source of module at version (moby or docker/cli, both
// without a go.mod but with a vendor.mod), copied from the Go module cache
// into the user's cache directory as <name>-<version> and made a module by its
// vendor.mod and vendor.sum, with replace directives added ("old => new v").
func moduleTree(t *testing.T, module, version, name string, replaces ...string) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(cache, "shoal-mobysuite", name+"-"+strings.TrimSuffix(version, "+incompatible"))
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
		return dir
	}
	var mod struct{ Dir, Error string }
	data := goCmd(t, "", "mod", "download", "-json", module+"@"+version)
	if err := json.Unmarshal([]byte(data), &mod); err != nil || mod.Dir == "" {
		t.Fatalf("download %s %s: %v %s", module, version, err, mod.Error)
	}
	tmp := dir + ".tmp"
	_ = os.RemoveAll(tmp)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command("cp", "-r", mod.Dir, tmp).CombinedOutput(); err != nil {
		t.Fatalf("copy %s's source: %v: %s", module, err, b)
	}
	if b, err := exec.Command("chmod", "-R", "u+w", tmp).CombinedOutput(); err != nil {
		t.Fatalf("make %s's source writable: %v: %s", module, err, b)
	}
	for from, to := range map[string]string{"vendor.mod": "go.mod", "vendor.sum": "go.sum"} {
		data, err := os.ReadFile(filepath.Join(tmp, from))
		if err == nil {
			err = os.WriteFile(filepath.Join(tmp, to), data, 0o644)
		}
		if err != nil {
			t.Fatalf("make %s a module: %v", module, err)
		}
	}
	if len(replaces) > 0 {
		f, err := os.OpenFile(filepath.Join(tmp, "go.mod"), os.O_APPEND|os.O_WRONLY, 0)
		if err == nil {
			for _, r := range replaces {
				if _, err = fmt.Fprintf(f, "replace %s\n", r); err != nil {
					break
				}
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			t.Fatalf("make %s a module: %v", module, err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// goCmd runs the go command in dir (the package's when empty) and returns its
// output; moby's dependencies come from the module proxy as its go.mod pins
// them.
func goCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return string(out)
}

// result is one top-level test of moby's and how it ended.
type result struct {
	Package, Name, Outcome string // PASS, FAIL, SKIP
	// Reason is a skip's reason, or a failure's first message.
	Reason string
}

var (
	runLine     = regexp.MustCompile(`^=== RUN\s+([^/\s]+)`)
	endLine     = regexp.MustCompile(`^--- (PASS|FAIL|SKIP): (\S+) `)
	messageLine = regexp.MustCompile(`^\s+\S+\.go:\d+: (.*)$`)
	failure     = regexp.MustCompile(`(?i)assertion failed|error|expected|timeout|panic`)
)

// parseResults reads `go test -v` output: each top-level test's outcome, with
// a skip's reason (its last message) or a failure's first assertion.
func parseResults(pkg, path string) ([]result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s results: %w", pkg, err)
	}
	defer f.Close()
	var results []result
	messages := map[string][]string{} // by top-level test, in order
	current := ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := runLine.FindStringSubmatch(line); m != nil {
			current = m[1]
			continue
		}
		if m := messageLine.FindStringSubmatch(line); m != nil && current != "" {
			messages[current] = append(messages[current], m[1])
			continue
		}
		m := endLine.FindStringSubmatch(line)
		if m == nil || strings.Contains(m[2], "/") {
			continue
		}
		r := result{Package: pkg, Name: m[2], Outcome: m[1]}
		msgs := messages[r.Name]
		switch r.Outcome {
		case "SKIP":
			if len(msgs) > 0 {
				r.Reason = msgs[len(msgs)-1]
			}
		case "FAIL":
			for _, msg := range msgs {
				if failure.MatchString(msg) {
					r.Reason = msg
					break
				}
			}
		}
		results = append(results, r)
	}
	return results, sc.Err()
}

func tally(results []result) string {
	n := map[string]int{}
	for _, r := range results {
		n[r.Outcome]++
	}
	return fmt.Sprintf("%d passed, %d failed, %d skipped", n["PASS"], n["FAIL"], n["SKIP"])
}

// summarise lists every test with its outcome, failures and skips with their
// first message.
func summarise(results []result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "total: %s\n", tally(results))
	sort.SliceStable(results, func(i, j int) bool { return results[i].Outcome < results[j].Outcome })
	for _, r := range results {
		fmt.Fprintf(&b, "%s %s/%s", r.Outcome, r.Package, r.Name)
		if r.Reason != "" {
			fmt.Fprintf(&b, ": %s", r.Reason)
		}
		b.WriteString("\n")
	}
	return b.String()
}
