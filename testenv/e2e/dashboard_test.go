package e2e

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/shoal-project/shoal/engineapi/dashboard"
	"github.com/shoal-project/shoal/runtime/image/imagetest"
	"github.com/shoal-project/shoal/testenv"
)

const dashboardURL = "http://127.0.0.1:9324/"

// A daemon with --dashboard-addr serves the fleet dashboard: its JSON says what
// the swarm runs, and the page, in headless Chromium, shows the node with its
// tasks and the service with its replicas, follows the event stream, and shows
// a scale-up. The screenshot is a test artifact (go test -artifacts).
func TestDashboard(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("chromium"); err != nil {
		t.Fatalf("chromium is needed (make deps installs it): %v", err)
	}
	n := testenv.StartNode(t, "dashboard", testenv.Options{Args: []string{"--dashboard-addr", "127.0.0.1:9324"}})
	f := readFleet(t, n)
	if !strings.Contains(f.Error, "not a swarm manager") {
		t.Errorf("before swarm init the dashboard says %q", f.Error)
	}
	n.MustDocker("swarm", "init", "--advertise-addr", "127.0.0.1")
	n.MustDocker("load", "-i", imagetest.BusyboxArchive(t, t.TempDir(), "busybox:latest"))
	n.MustDocker("service", "create", "--detach", "--name", "web", "--replicas", "2", "--reserve-cpu", "0.25", "busybox", "sleep", "3600")
	waitRunning(t, n, "web", 2)

	f = readFleet(t, n)
	if len(f.Nodes) != 1 || f.Nodes[0].Hostname != "dashboard" || f.Nodes[0].State != "ready" || f.Nodes[0].Manager != "leader" ||
		f.Nodes[0].Running != 2 || f.Nodes[0].ReservedCPUs != 0.5 || len(f.Nodes[0].Tasks) != 2 {
		t.Errorf("the fleet's nodes: %+v", f.Nodes)
	}
	if len(f.Services) != 1 || f.Services[0].Name != "web" || f.Services[0].Running != 2 || f.Services[0].Desired != 2 || f.Services[0].Updated != 2 {
		t.Errorf("the fleet's services: %+v", f.Services)
	}

	ctx := browse(t, n)
	if err := chromedp.Do(ctx,
		chromedp.EmulateViewport(1280, 800),
		chromedp.Navigate(dashboardURL),
		chromedp.WaitVisible(`.node[data-hostname="dashboard"] .task`),
		chromedp.WaitVisible(`#live.on`),
	); err != nil {
		t.Fatalf("browse the dashboard: %v", err)
	}
	card := pageText(t, ctx, `.node[data-hostname="dashboard"]`)
	replicas := pageText(t, ctx, `.service[data-name="web"] .replicas`)
	live := pageText(t, ctx, `#live`)
	for _, want := range []string{"dashboard", "leader", "ready", "web.1", "web.2", "running", "2 running"} {
		if !strings.Contains(card, want) {
			t.Errorf("the node's card lacks %q:\n%s", want, card)
		}
	}
	if strings.TrimSpace(replicas) != "2/2" || live != "live" {
		t.Errorf("web's replicas %q, stream %q; want 2/2 and live", replicas, live)
	}

	n.MustDocker("service", "scale", "--detach", "web=3")
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](
		`document.querySelector('.service[data-name="web"] .replicas').textContent.startsWith("3/3") &&
		 document.querySelectorAll('.node[data-hostname="dashboard"] .task').length === 3`,
		chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		t.Errorf("the page never showed web at 3/3 with three tasks: %v", err)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	path := filepath.Join(t.ArtifactDir(), "dashboard.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(shot))
}

// pageText is the text of the page's element that sel selects.
func pageText(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	text, err := chromedp.Run(ctx, chromedp.Text(sel))
	if err != nil {
		t.Fatalf("read %s on the page: %v", sel, err)
	}
	return text
}

// readFleet reads the dashboard's JSON from inside the node's namespace.
func readFleet(t *testing.T, n *testenv.Node) dashboard.Fleet {
	t.Helper()
	resp, err := n.HTTPGet(context.Background(), dashboardURL+"fleet")
	if err != nil {
		t.Fatalf("GET /fleet: %v", err)
	}
	defer resp.Body.Close()
	var f dashboard.Fleet
	if err := json.NewDecoder(resp.Body).Decode(&f); err != nil {
		t.Fatalf("decode /fleet: %v", err)
	}
	return f
}

// browse returns a chromedp context driving headless Chromium, which runs inside
// the node's network namespace (so that it reaches the dashboard on the node's
// loopback, and nothing outside it) and speaks DevTools over the pipes chromedp
// gives it, which nsenter passes on. Chromium is killed when the test ends.
func browse(t *testing.T, n *testenv.Node) context.Context {
	t.Helper()
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		t.Fatal(err)
	}
	profile := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.UserDataDir(profile),
		chromedp.Env("HOME="+profile), chromedp.ExecPath("chromium"),
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			cmd.Args = append([]string{"nsenter", "--net=" + n.NetNS(), "--", cmd.Path}, cmd.Args[1:]...)
			cmd.Path = nsenter
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		}))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(alloc)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

// The dashboard off the loopback takes the API's mutual TLS: a client with a
// certificate the CA signed gets the page; one without is refused, as is plain
// HTTP.
func TestDashboardOverMutualTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, caKey := newTestCA(t, "shoal test CA")
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", ca.Raw)
	issueTestCert(t, dir, "server", ca, caKey, x509.ExtKeyUsageServerAuth)
	issueTestCert(t, dir, "client", ca, caKey, x509.ExtKeyUsageClientAuth)
	n := testenv.StartNode(t, "dashtls", testenv.Options{Args: []string{
		"--dashboard-addr", "0.0.0.0:9324", "--tlsverify", "--tlscacert", filepath.Join(dir, "ca.pem"),
		"--tlscert", filepath.Join(dir, "server-cert.pem"), "--tlskey", filepath.Join(dir, "server-key.pem"),
	}})
	out, err := curl(n, "--cacert", filepath.Join(dir, "ca.pem"), "--cert", filepath.Join(dir, "client-cert.pem"),
		"--key", filepath.Join(dir, "client-key.pem"), "https://127.0.0.1:9324/")
	if err != nil || !strings.Contains(out, "<title>shoal fleet</title>") {
		t.Errorf("the dashboard with a client certificate: %v\n%s", err, out)
	}
	for _, args := range [][]string{
		{"--cacert", filepath.Join(dir, "ca.pem"), "https://127.0.0.1:9324/fleet"},
		{"http://127.0.0.1:9324/fleet"},
	} {
		if out, err := curl(n, args...); err == nil {
			t.Errorf("curl %v was served:\n%s", args, out)
		}
	}
}
