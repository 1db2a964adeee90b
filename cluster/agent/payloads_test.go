package agent

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/session"
)

func payloadAssignment(cs *swarm.ContainerSpec, secrets []swarm.Secret, configs []swarm.Config) session.Assignment {
	return session.Assignment{
		Task: &swarm.Task{ID: "task1", ServiceID: "svc1", NodeID: "node1", Slot: 2,
			Spec: swarm.TaskSpec{ContainerSpec: cs}},
		ServiceName: "web", ServiceLabels: map[string]string{"tier": "front"},
		Secrets: secrets, Configs: configs,
	}
}

// Secrets go under /run/secrets and configs under / unless their target is
// absolute, with their owner and mode.
func TestTaskFilesPlacement(t *testing.T) {
	cs := &swarm.ContainerSpec{
		Secrets: []*swarm.SecretReference{
			{SecretID: "s1", SecretName: "db_pass", File: &swarm.SecretReferenceFileTarget{Name: "db_pass", UID: "0", GID: "0", Mode: 0o444}},
			{SecretID: "s1", SecretName: "db_pass", File: &swarm.SecretReferenceFileTarget{Name: "/etc/app/pass", UID: "100", GID: "101", Mode: 0o400}},
		},
		Configs: []*swarm.ConfigReference{
			{ConfigID: "c1", ConfigName: "app_conf", File: &swarm.ConfigReferenceFileTarget{Name: "app_conf", UID: "0", GID: "0", Mode: 0o444}},
		},
	}
	a := payloadAssignment(cs,
		[]swarm.Secret{{ID: "s1", Spec: swarm.SecretSpec{Data: []byte("hunter2")}}},
		[]swarm.Config{{ID: "c1", Spec: swarm.ConfigSpec{Data: []byte("port=1")}}})
	files, err := taskFiles(a, "node1", cs)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.Path+" "+string(f.Data)+" "+strconv.Itoa(f.UID)+":"+strconv.Itoa(f.GID)+" "+f.Mode.String())
	}
	want := []string{"/run/secrets/db_pass hunter2 0:0 -r--r--r--", "/etc/app/pass hunter2 100:101 -r--------", "/app_conf port=1 0:0 -r--r--r--"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("files:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	missing := payloadAssignment(cs, nil, nil)
	if _, err := taskFiles(missing, "node1", cs); err == nil || !strings.Contains(err.Error(), "secret db_pass") {
		t.Errorf("a secret not delivered: %v", err)
	}
	bad := &swarm.ContainerSpec{Secrets: []*swarm.SecretReference{{SecretID: "s1", SecretName: "db_pass", File: &swarm.SecretReferenceFileTarget{Name: "x", UID: "www", GID: "0"}}}}
	if _, err := taskFiles(payloadAssignment(bad, a.Secrets, nil), "node1", bad); err == nil || !strings.Contains(err.Error(), `invalid uid "www"`) {
		t.Errorf("a named uid: %v", err)
	}
}

// Templated configs render as Docker renders them, with the task's context and
// the secret, config and env functions.
func TestTemplatedPayloads(t *testing.T) {
	hostname, _ := os.Hostname()
	cs := &swarm.ContainerSpec{
		Env: []string{"MODE=prod"},
		Secrets: []*swarm.SecretReference{
			{SecretID: "s1", SecretName: "db_pass", File: &swarm.SecretReferenceFileTarget{Name: "db_pass", UID: "0", GID: "0", Mode: 0o444}},
		},
		Configs: []*swarm.ConfigReference{
			{ConfigID: "c1", ConfigName: "tmpl", File: &swarm.ConfigReferenceFileTarget{Name: "/app.conf", UID: "0", GID: "0", Mode: 0o444}},
			{ConfigID: "c2", ConfigName: "plain", File: &swarm.ConfigReferenceFileTarget{Name: "plain", UID: "0", GID: "0", Mode: 0o444}},
		},
	}
	golang := &swarm.Driver{Name: "golang"}
	for _, c := range []struct {
		name, tmpl, want, err string
	}{
		{"fields", `{{.Service.Name}} {{.Service.ID}} {{.Task.Slot}} {{.Task.ID}} {{.Task.Name}} {{.Node.ID}} {{.Node.Hostname}} {{.Node.Platform.OS}}`,
			"web svc1 2 task1 web.2.task1 node1 " + hostname + " linux", ""},
		{"functions", `pass={{secret "db_pass"}} plain={{config "plain"}} mode={{env "MODE"}} none={{env "NOPE"}}`, "pass=hunter2 plain=x=1 mode=prod none=", ""},
		{"labels", `{{index .Service.Labels "tier"}} {{.Service.Labels.tier}} {{.Service.Labels.nope}}`, "front front <no value>", ""},
		{"pipes and if", `{{if eq (env "MODE") "prod"}}P{{else}}D{{end}} {{"a" | printf "%s-%s" "b"}} {{- /* c */ -}} !`, "P b-a!", ""},
		{"unknown secret", `{{secret "nope"}}`, "", "secret target nope not found"},
		{"unknown field", `{{.Task.Nope}}`, "", "can't evaluate field Nope"},
		{"unknown function", `{{exec "rm"}}`, "", `function "exec" not defined`},
		{"range", `{{range .Service.Labels}}x{{end}}`, "", "only fields, functions and if/else are supported"},
		{"bad syntax", `{{.Task.ID`, "", "failed to parse template"},
	} {
		a := payloadAssignment(cs,
			[]swarm.Secret{{ID: "s1", Spec: swarm.SecretSpec{Data: []byte("hunter2")}}},
			[]swarm.Config{
				{ID: "c1", Spec: swarm.ConfigSpec{Annotations: swarm.Annotations{Name: "tmpl"}, Data: []byte(c.tmpl), Templating: golang}},
				{ID: "c2", Spec: swarm.ConfigSpec{Annotations: swarm.Annotations{Name: "plain"}, Data: []byte("x=1")}},
			})
		files, err := taskFiles(a, "node1", cs)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got := string(files[1].Data); files[1].Path != "/app.conf" || got != c.want {
			t.Errorf("%s: %s = %q, want %q", c.name, files[1].Path, got, c.want)
		}
	}
}
