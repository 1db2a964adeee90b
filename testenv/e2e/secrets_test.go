package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/testenv"
)

// secretValue is a random value no file holds by chance.
func secretValue(t *testing.T) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "s3cr3t-" + hex.EncodeToString(b)
}

// dockerStdin runs the docker CLI with stdin (docker secret create NAME -).
func dockerStdin(t *testing.T, n *testenv.Node, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := n.DockerCommand(ctx, "docker", args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// execIn runs a shell script in a container and returns its output.
func execIn(t *testing.T, n *testenv.Node, ctr, script string) string {
	t.Helper()
	return n.MustDocker("exec", ctr, "sh", "-c", script)
}

// filesMounts are the host's tmpfs mounts of task files under the node's data root.
func filesMounts(t *testing.T, n *testenv.Node) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && strings.HasPrefix(f[4], n.DataRoot) && filepath.Base(f[4]) == "files" {
			out = append(out, f[4])
		}
	}
	return out
}

// A secret's value is readable in the task's container at its path, with its
// owner and mode, on a tmpfs, read-only; inspect never shows it; it cannot be
// removed while a service uses it; a rotation through service update delivers
// the new value; a daemon killed and restarted leaves the live tasks their
// files; and once the service is gone, so is the tmpfs.
func TestSecretsDelivered(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "secrets")
	v1, v2 := secretValue(t), secretValue(t)
	id := strings.TrimSpace(mustStdin(t, n, v1, "secret", "create", "--label", "env=prod", "db_pass", "-"))
	mustStdin(t, n, v2, "secret", "create", "db_pass_v2", "-")
	conf := filepath.Join(t.TempDir(), "app.conf")
	if err := os.WriteFile(conf, []byte("port=8080\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n.MustDocker("config", "create", "app_conf", conf)

	// inspect, ls and the raw API never show the value.
	var sec swarm.Secret
	inspect(t, n, "secret", "db_pass", &sec)
	if sec.ID != id || sec.Spec.Name != "db_pass" || sec.Spec.Labels["env"] != "prod" || len(sec.Spec.Data) != 0 {
		t.Fatalf("secret inspect: %+v (created %s)", sec, id)
	}
	for _, path := range []string{"/secrets", "/secrets/" + id, "/secrets/db_pass"} {
		status, body := apiCall(t, n, "GET", path, nil)
		if status != http.StatusOK || strings.Contains(body, v1) || strings.Contains(body, base64.StdEncoding.EncodeToString([]byte(v1))) {
			t.Fatalf("GET %s = %d, shows the value: %s", path, status, body)
		}
	}

	n.MustDocker("service", "create", "-d", "--name", "db", "--stop-grace-period", "1s",
		"--secret", "db_pass",
		"--secret", "source=db_pass,target=/etc/app/pass,uid=100,gid=101,mode=0400",
		"--config", "source=app_conf,target=/etc/app/app.conf",
		"busybox", "sleep", "1d")
	ctr := taskContainer(t, n, "db")
	got := execIn(t, n, ctr, `cat /run/secrets/db_pass; echo; cat /etc/app/pass; echo
stat -c '%u:%g:%a' /run/secrets/db_pass /etc/app/pass /etc/app/app.conf
for p in /run/secrets/db_pass /etc/app/pass /etc/app/app.conf; do grep " $p " /proc/mounts | cut -d' ' -f3,4 | cut -d, -f1; done
(echo x > /run/secrets/db_pass) 2>/dev/null && echo WRITABLE; cat /etc/app/app.conf`)
	want := v1 + "\n" + v1 + "\n0:0:444\n100:101:400\n0:0:444\ntmpfs ro\ntmpfs ro\ntmpfs ro\nport=8080\n"
	if got != want {
		t.Fatalf("in the task's container:\n%s\nwant:\n%s", got, want)
	}
	// While the task runs, the value is on its tmpfs only: not in the container's
	// record, the runtime's state, the store or the daemon's log.
	tmpfs := filesMounts(t, n)
	if len(tmpfs) != 1 {
		t.Fatalf("task tmpfs mounts: %v", tmpfs)
	}
	if hit := findInFiles(t, n.Dir, v1); !strings.HasPrefix(hit, tmpfs[0]+"/") {
		t.Fatalf("the scan finds the secret in %q, not on the task's tmpfs %s", hit, tmpfs[0])
	}
	if hit := findInFiles(t, n.Dir, v1, tmpfs...); hit != "" {
		t.Fatalf("the secret is on disk in %s while the task runs", hit)
	}

	// inspect shows the references with the defaults Docker fills.
	var svc swarm.Service
	inspect(t, n, "service", "db", &svc)
	refs := svc.Spec.TaskTemplate.ContainerSpec.Secrets
	files := map[swarm.SecretReferenceFileTarget]bool{} // the CLI sends them in no set order
	for _, r := range refs {
		if r.SecretID == id && r.SecretName == "db_pass" && r.File != nil {
			files[*r.File] = true
		}
	}
	if len(refs) != 2 || !files[swarm.SecretReferenceFileTarget{Name: "db_pass", UID: "0", GID: "0", Mode: 0o444}] ||
		!files[swarm.SecretReferenceFileTarget{Name: "/etc/app/pass", UID: "100", GID: "101", Mode: 0o400}] {
		t.Fatalf("service inspect secrets: %s", jsonString(refs))
	}
	if cfgs := svc.Spec.TaskTemplate.ContainerSpec.Configs; len(cfgs) != 1 || cfgs[0].ConfigName != "app_conf" || cfgs[0].File.Name != "/etc/app/app.conf" {
		t.Fatalf("service inspect configs: %s", jsonString(cfgs))
	}

	// In use: refused with Docker's words.
	if out, err := n.Docker("secret", "rm", "db_pass"); err == nil || !strings.Contains(out, "rpc error: code = InvalidArgument desc = secret 'db_pass' is in use by the following service: db") {
		t.Fatalf("secret rm in use: %v %s", err, out)
	}
	if out, err := n.Docker("config", "rm", "app_conf"); err == nil || !strings.Contains(out, "config 'app_conf' is in use by the following service: db") {
		t.Fatalf("config rm in use: %v %s", err, out)
	}

	// A SIGKILLed daemon leaves the task its files; the restarted one re-adopts it.
	n.Restart()
	if again := taskContainer(t, n, "db"); again != ctr {
		t.Fatalf("task container after the restart: %s, before %s", again, ctr)
	}
	if got := execIn(t, n, ctr, "cat /etc/app/pass"); got != v1 {
		t.Fatalf("the secret after the daemon restarted: %q", got)
	}
	// After the restart, with both secrets in the store, no file the daemon
	// wrote (the Raft log and snapshots, container records, the log) holds
	// either value in plain text, base64 or hex: only the task's tmpfs does.
	for _, v := range []string{v1, v2} {
		for _, enc := range []string{v, base64.StdEncoding.EncodeToString([]byte(v)), hex.EncodeToString([]byte(v))} {
			if hit := findInFiles(t, n.Dir, enc, filesMounts(t, n)...); hit != "" {
				t.Errorf("after the restart a secret value is on disk in %s", hit)
			}
		}
	}

	// Rotation: the new secret under the old target.
	n.MustDocker("service", "update", "--secret-rm", "db_pass", "--secret-add", "source=db_pass_v2,target=db_pass", "db")
	rotated := taskContainer(t, n, "db")
	if rotated == ctr {
		t.Fatal("the rotation did not replace the task")
	}
	if got := execIn(t, n, rotated, "cat /run/secrets/db_pass"); got != v2 {
		t.Fatalf("after the rotation /run/secrets/db_pass = %q", got)
	}
	testenv.WaitFor(t, 30*time.Second, "one task's tmpfs left", func() (bool, string) {
		m := filesMounts(t, n)
		return len(m) == 1, strings.Join(m, "\n")
	})
	n.MustDocker("secret", "rm", "db_pass") // no service uses it now

	n.MustDocker("service", "rm", "db")
	testenv.WaitFor(t, 30*time.Second, "the tasks' tmpfs gone", func() (bool, string) {
		m := filesMounts(t, n)
		return len(m) == 0, strings.Join(m, "\n")
	})
	n.MustDocker("secret", "rm", "db_pass_v2")
	n.MustDocker("config", "rm", "app_conf")
	if ls := n.MustDocker("secret", "ls", "-q"); strings.TrimSpace(ls) != "" {
		t.Fatalf("secret ls after rm: %q", ls)
	}

	// Nothing the daemon wrote holds a value: its data root (the tmpfs mounts
	// are gone) and its log.
	for _, v := range []string{v1, v2} {
		for _, enc := range []string{v, base64.StdEncoding.EncodeToString([]byte(v)), hex.EncodeToString([]byte(v))} {
			if hit := findInFiles(t, n.Dir, enc); hit != "" {
				t.Errorf("a secret value is on disk in %s", hit)
			}
		}
	}
}

func mustStdin(t *testing.T, n *testenv.Node, stdin string, args ...string) string {
	t.Helper()
	out, err := dockerStdin(t, n, stdin, args...)
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// findInFiles returns a regular file under root, outside the skipped
// directories, that contains s, or "".
func findInFiles(t *testing.T, root, s string, skip ...string) string {
	t.Helper()
	var hit string
	_ = filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil || hit != "" {
			return nil
		}
		if info.IsDir() && slices.Contains(skip, p) {
			return filepath.SkipDir
		}
		if info.Mode().IsRegular() && info.Size() < 256<<20 {
			if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(s)) {
				hit = p
			}
		}
		return nil
	})
	return hit
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// docker secret and config: ls with Docker's filters and formats, inspect
// (configs with their data), labels-only updates, and Docker's refusals of
// bad input, with nothing stored by a refused create.
func TestSecretAndConfigCommands(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "secretcli")
	idA := strings.TrimSpace(mustStdin(t, n, "a", "secret", "create", "--label", "tier=db", "--label", "x", "alpha", "-"))
	mustStdin(t, n, "b", "secret", "create", "--label", "tier=web", "alphabet", "-")
	mustStdin(t, n, "c", "secret", "create", "beta", "-")

	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "alpha alphabet beta"},
		{[]string{"--filter", "name=alpha"}, "alpha alphabet"},
		{[]string{"--filter", "label=tier"}, "alpha alphabet"},
		{[]string{"--filter", "label=tier=db"}, "alpha"},
		{[]string{"--filter", "id=" + idA[:6]}, "alpha"},
		{[]string{"--filter", "name=beta", "--filter", "name=alphabet"}, "alphabet beta"},
	} {
		out := n.MustDocker(append(append([]string{"secret", "ls"}, c.args...), "--format", "{{.Name}}")...)
		if got := strings.Join(strings.Fields(out), " "); got != c.want {
			t.Errorf("secret ls %v = %q, want %q", c.args, got, c.want)
		}
	}
	status, body := apiCall(t, n, "GET", `/secrets?filters={"names":{"alpha":true}}`, nil)
	var list []swarm.Secret
	if status != http.StatusOK || json.Unmarshal([]byte(body), &list) != nil || len(list) != 1 || list[0].Spec.Name != "alpha" {
		t.Errorf("names filter: %d %s", status, body)
	}
	if out, err := n.Docker("secret", "ls", "--filter", "color=red"); err == nil || !strings.Contains(out, "invalid filter 'color'") {
		t.Errorf("unknown filter: %v %s", err, out)
	}
	if out := n.MustDocker("secret", "ls", "--format", "json", "--filter", "name=beta"); !strings.Contains(out, `"Name":"beta"`) {
		t.Errorf("secret ls --format json = %s", out)
	}

	// Docker's refusals, and nothing stored by them.
	for _, c := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{strings.Repeat("x", 500*1024), []string{"secret", "create", "big", "-"}, "secret data must be larger than 0 and less than 512000 bytes"},
		{"x", []string{"secret", "create", "--", "-bad", "-"}, "invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end character must be [a-zA-Z0-9]"},
		{"x", []string{"secret", "create", "alpha", "-"}, "secret alpha already exists"},
		{"", []string{"secret", "create", "--driver", "vault", "vaulted"}, `secret driver "vault" is not supported by shoal`},
		{"x", []string{"secret", "create", "--template-driver", "jinja", "jinja", "-"}, `template driver "jinja" is not supported by shoal`},
		{"x", []string{"config", "create", "--template-driver", "jinja", "jinja", "-"}, `template driver "jinja" is not supported by shoal`},
	} {
		out, err := dockerStdin(t, n, c.stdin, c.args...)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("docker %s: %v %s, want %q", strings.Join(c.args, " "), err, out, c.want)
		}
	}
	// The CLI refuses empty data itself; the API in swarmkit's words.
	for _, c := range []struct{ path, body, want string }{
		{"/secrets/create", `{"Name":"empty"}`, "rpc error: code = InvalidArgument desc = secret data must be larger than 0 and less than 512000 bytes"},
		{"/configs/create", `{"Name":"empty","Data":""}`, "rpc error: code = InvalidArgument desc = config data must be larger than 0 and less than 1024000 bytes"},
		{"/secrets/create", `{"Data":"eA=="}`, "rpc error: code = InvalidArgument desc = name must be provided"},
		{"/secrets/create", `{"Name":"x","Data":"not base64!"}`, "invalid JSON: illegal base64 data at input byte 3"},
	} {
		if status, body := apiCall(t, n, "POST", c.path, strings.NewReader(c.body)); status != http.StatusBadRequest || body != c.want {
			t.Errorf("POST %s %s = %d %s, want 400 %q", c.path, c.body, status, body, c.want)
		}
	}
	if got := strings.Join(strings.Fields(n.MustDocker("secret", "ls", "--format", "{{.Name}}")), " "); got != "alpha alphabet beta" {
		t.Errorf("secrets after refused creates: %q", got)
	}
	status, body = apiCall(t, n, "POST", "/services/create", strings.NewReader(`{"Name":"web","TaskTemplate":{"ContainerSpec":{"Image":"busybox","Secrets":[{"SecretID":"nope","SecretName":"nope","File":{"Name":"nope"}}]}}}`))
	if status != http.StatusBadRequest || body != "rpc error: code = InvalidArgument desc = secret not found: nope" {
		t.Errorf("service with an unknown secret: %d %s", status, body)
	}
	if out, err := n.Docker("service", "create", "--secret", "nope", "busybox"); err == nil || !strings.Contains(out, "nope") {
		t.Errorf("docker service create --secret nope: %v %s", err, out)
	}

	// Labels-only updates, compare-and-set on the version.
	var sec swarm.Secret
	inspect(t, n, "secret", "alpha", &sec)
	upd := func(version uint64, spec any) (int, string) {
		b, _ := json.Marshal(spec)
		return apiCall(t, n, "POST", fmt.Sprintf("/secrets/%s/update?version=%d", sec.ID, version), bytes.NewReader(b))
	}
	spec := sec.Spec
	spec.Labels = map[string]string{"tier": "cache"}
	if status, body := upd(sec.Version.Index, spec); status != http.StatusOK {
		t.Fatalf("label update: %d %s", status, body)
	}
	if status, body := upd(sec.Version.Index, spec); status == http.StatusOK || !strings.Contains(body, "update out of sequence") {
		t.Errorf("stale update: %d %s", status, body)
	}
	var after swarm.Secret
	inspect(t, n, "secret", "alpha", &after)
	if len(after.Spec.Labels) != 1 || after.Spec.Labels["tier"] != "cache" || after.Version.Index <= sec.Version.Index ||
		sec.CreatedAt.IsZero() || !after.CreatedAt.Equal(sec.CreatedAt) || !after.UpdatedAt.After(sec.UpdatedAt) {
		t.Errorf("after the label update: %+v", after)
	}
	spec.Data = []byte("new")
	if status, body := upd(after.Version.Index, spec); status != http.StatusBadRequest || !strings.Contains(body, "only updates to Labels are allowed") {
		t.Errorf("data update: %d %s", status, body)
	}
	spec.Data, spec.Name = nil, "renamed"
	if status, body := upd(after.Version.Index, spec); status != http.StatusBadRequest || !strings.Contains(body, "only updates to Labels are allowed") {
		t.Errorf("rename: %d %s", status, body)
	}

	// Configs show their data; inspect and rm by name, ID or ID prefix.
	cfgID := strings.TrimSpace(mustStdin(t, n, "listen 80\n", "config", "create", "--label", "a=b", "nginx_conf", "-"))
	if out := n.MustDocker("config", "inspect", "--format", "{{printf \"%s\" .Spec.Data}}|{{.Spec.Labels.a}}", "nginx_conf"); out != "listen 80\n|b\n" {
		t.Errorf("config inspect = %q", out)
	}
	if out := n.MustDocker("config", "ls", "--filter", "label=a=b", "--format", "{{.ID}}"); strings.TrimSpace(out) != cfgID {
		t.Errorf("config ls by label = %q, want %s", out, cfgID)
	}
	if out, err := n.Docker("config", "inspect", "nope"); err == nil || !strings.Contains(out, "config nope not found") {
		t.Errorf("config inspect nope: %v %s", err, out)
	}
	n.MustDocker("config", "rm", cfgID[:8])
	n.MustDocker("secret", "rm", "alpha", "alphabet", idA[:0]+"beta")
	if out, err := n.Docker("secret", "rm", "alpha"); err == nil || !strings.Contains(out, "secret alpha not found") {
		t.Errorf("secret rm of a removed secret: %v %s", err, out)
	}
}

// A golang-templated config is rendered for each task, as Docker renders it:
// the task's context and the secret, config and env functions.
func TestTemplatedConfig(t *testing.T) {
	t.Parallel()
	n := newSwarm(t, "tmplconf")
	pass := secretValue(t)
	mustStdin(t, n, pass, "secret", "create", "db_pass", "-")
	mustStdin(t, n, "plain\n", "config", "create", "plain", "-")
	mustStdin(t, n, `svc={{.Service.Name}} slot={{.Task.Slot}} task={{.Task.Name}} host={{.Node.Hostname}} tier={{index .Service.Labels "tier"}}
pass={{secret "db_pass"}} plain={{config "plain"}}mode={{env "MODE"}}{{if eq (env "MODE") "prod"}} (production){{end}}
`, "config", "create", "--template-driver", "golang", "app_tmpl", "-")
	var cfg swarm.Config
	inspect(t, n, "config", "app_tmpl", &cfg)
	if cfg.Spec.Templating == nil || cfg.Spec.Templating.Name != "golang" {
		t.Fatalf("config inspect templating: %+v", cfg.Spec.Templating)
	}
	n.MustDocker("service", "create", "-d", "--name", "app", "--label", "tier=front", "--env", "MODE=prod",
		"--secret", "db_pass", "--config", "plain", "--config", "source=app_tmpl,target=/etc/app.conf,mode=0440",
		"busybox", "sleep", "1d")
	ctr := taskContainer(t, n, "app")
	taskID := strings.TrimSpace(n.MustDocker("service", "ps", "-q", "--no-trunc", "app"))
	got := execIn(t, n, ctr, "cat /etc/app.conf; stat -c %a /etc/app.conf /plain")
	want := fmt.Sprintf("svc=app slot=1 task=app.1.%s host=tmplconf tier=front\npass=%s plain=plain\nmode=prod (production)\n440\n444\n", taskID, pass)
	if got != want {
		t.Fatalf("rendered config:\n%s\nwant:\n%s", got, want)
	}

	// Configs rotate as secrets do: another config under the same target.
	mustStdin(t, n, "v2 on {{.Node.Hostname}}\n", "config", "create", "--template-driver", "golang", "app_tmpl_v2", "-")
	n.MustDocker("service", "update", "--config-rm", "app_tmpl", "--config-add", "source=app_tmpl_v2,target=/etc/app.conf", "app")
	next := taskContainer(t, n, "app")
	if got := execIn(t, n, next, "cat /etc/app.conf"); next == ctr || got != "v2 on tmplconf\n" {
		t.Fatalf("after the rotation (%s, was %s): %q", next, ctr, got)
	}
	n.MustDocker("config", "rm", "app_tmpl")
}

// memFiles maps the tmpfs mounts of task files under a node's data root to the
// contents of their files (read from the host, as root).
func memFiles(t *testing.T, n *testenv.Node) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, dir := range filesMounts(t, n) {
		entries, _ := os.ReadDir(dir)
		var data []string
		for _, e := range entries {
			b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
			data = append(data, string(b))
		}
		out[dir] = strings.Join(data, "\n")
	}
	return out
}

// In a swarm of a manager and two workers, a secret is on a worker only while a
// task that uses it runs there, in a tmpfs: moving the task moves the secret,
// and removing the service leaves it on no node.
func TestMultiNodeSecretFollowsItsTask(t *testing.T) {
	t.Parallel()
	nodes := multiSwarm(t, 1, 2)
	m := nodes[0]
	value := secretValue(t)
	mustStdin(t, m, value, "secret", "create", "db_pass", "-")
	m.MustDocker("service", "create", "-d", "--name", "db", "--stop-grace-period", "1s",
		"--constraint", "node.hostname=="+nodes[1].Name, "--secret", "db_pass", "busybox", "sleep", "1d")

	holders := func() (map[string]int, string) {
		by := map[string]int{}
		var seen []string
		for _, n := range nodes {
			for dir, data := range memFiles(t, n) {
				if strings.Contains(data, value) {
					by[n.Name]++
					seen = append(seen, n.Name+": "+dir)
				}
			}
		}
		return by, strings.Join(seen, "\n")
	}
	waitHeld := func(what string, want map[string]int) {
		t.Helper()
		testenv.WaitFor(t, 60*time.Second, what, func() (bool, string) {
			by, seen := holders()
			if len(by) != len(want) {
				return false, seen
			}
			for k, v := range want {
				if by[k] != v {
					return false, seen
				}
			}
			return true, seen
		})
	}
	waitRunningOn(t, m, "db", 1, 60*time.Second, nil)
	waitHeld("the secret on "+nodes[1].Name+" only", map[string]int{nodes[1].Name: 1})
	if got := nodes[1].MustDocker("exec", taskContainer(t, nodes[1], "db"), "cat", "/run/secrets/db_pass"); got != value {
		t.Fatalf("the secret in the task on %s = %q", nodes[1].Name, got)
	}

	m.MustDocker("service", "update", "-d", "--constraint-rm", "node.hostname=="+nodes[1].Name,
		"--constraint-add", "node.hostname=="+nodes[2].Name, "db")
	waitHeld("the secret moved to "+nodes[2].Name, map[string]int{nodes[2].Name: 1})

	m.MustDocker("service", "rm", "db")
	waitHeld("the secret on no node", map[string]int{})
}
