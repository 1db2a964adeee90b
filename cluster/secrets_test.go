package cluster

import (
	"context"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/store"
	"github.com/shoal-project/shoal/cluster/store/storetest"
)

// The create checks answer in swarmkit's words, at swarmkit's bounds.
func TestValidateSecretAndConfigSpecs(t *testing.T) {
	named := func(n string) swarm.Annotations { return swarm.Annotations{Name: n} }
	for _, c := range []struct {
		name string
		spec swarm.SecretSpec
		want string // "" means valid
	}{
		{"ok", swarm.SecretSpec{Annotations: named("db_pass"), Data: []byte("x")}, ""},
		{"dots and dashes", swarm.SecretSpec{Annotations: named("a.b-c_d"), Data: []byte("x")}, ""},
		{"no name", swarm.SecretSpec{Data: []byte("x")}, "name must be provided"},
		{"bad name", swarm.SecretSpec{Annotations: named("-bad"), Data: []byte("x")}, "invalid name, only 64 [a-zA-Z0-9-_.] characters allowed"},
		{"long name", swarm.SecretSpec{Annotations: named(strings.Repeat("a", 65)), Data: []byte("x")}, "invalid name"},
		{"empty", swarm.SecretSpec{Annotations: named("a")}, "secret data must be larger than 0 and less than 512000 bytes"},
		{"500 KiB", swarm.SecretSpec{Annotations: named("a"), Data: make([]byte, 500*1024)}, "less than 512000 bytes"},
		{"just under", swarm.SecretSpec{Annotations: named("a"), Data: make([]byte, 500*1024-1)}, ""},
		{"driver", swarm.SecretSpec{Annotations: named("a"), Data: []byte("x"), Driver: &swarm.Driver{Name: "vault"}}, `secret driver "vault" is not supported`},
		{"template driver", swarm.SecretSpec{Annotations: named("a"), Data: []byte("x"), Templating: &swarm.Driver{Name: "jinja"}}, `template driver "jinja" is not supported`},
		{"golang", swarm.SecretSpec{Annotations: named("a"), Data: []byte("x"), Templating: &swarm.Driver{Name: "golang"}}, ""},
	} {
		err := ValidateSecretSpec(c.spec)
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
		if err != nil && statusClass(err) != "invalid" {
			t.Errorf("%s: %v is not an invalid-parameter error", c.name, err)
		}
	}
	if err := ValidateConfigSpec(swarm.ConfigSpec{Annotations: named("c"), Data: make([]byte, 600*1024)}); err != nil {
		t.Errorf("a 600 KiB config: %v (Docker takes configs up to 1000 KiB)", err)
	}
	if err := ValidateConfigSpec(swarm.ConfigSpec{Annotations: named("c"), Data: make([]byte, 1000*1024)}); err == nil || !strings.Contains(err.Error(), "config data must be larger than 0 and less than 1024000 bytes") {
		t.Errorf("a 1000 KiB config: %v", err)
	}
}

func statusClass(err error) string {
	if e, ok := err.(interface{ InvalidParameter() bool }); ok && e.InvalidParameter() {
		return "invalid"
	}
	return "other"
}

// References are resolved from names to IDs, get the CLI's file defaults, and
// unknown ones are refused by name.
func TestResolveReferences(t *testing.T) {
	s := storetest.Leader(t, "node1")
	ctx := context.Background()
	err := s.Update(ctx, func(tx store.Tx) error {
		if err := tx.CreateSecret(&swarm.Secret{ID: "sec1", Spec: swarm.SecretSpec{Annotations: swarm.Annotations{Name: "db_pass"}, Data: []byte("x")}}); err != nil {
			return err
		}
		return tx.CreateConfig(&swarm.Config{ID: "cfg1", Spec: swarm.ConfigSpec{Annotations: swarm.Annotations{Name: "app_conf"}, Data: []byte("y")}})
	})
	if err != nil {
		t.Fatal(err)
	}
	resolve := func(cs swarm.ContainerSpec) (swarm.ServiceSpec, error) {
		spec := swarm.ServiceSpec{TaskTemplate: swarm.TaskSpec{ContainerSpec: &cs}}
		err := s.View(func(tx store.ReadTx) error { return resolveReferences(tx, &spec) })
		return spec, err
	}

	spec, err := resolve(swarm.ContainerSpec{
		Secrets: []*swarm.SecretReference{{SecretName: "db_pass"}, {SecretID: "sec1", SecretName: "db_pass", File: &swarm.SecretReferenceFileTarget{Name: "/etc/pass", UID: "100", GID: "100", Mode: 0o400}}},
		Configs: []*swarm.ConfigReference{{ConfigName: "app_conf"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := jsonOf(t, spec.TaskTemplate.ContainerSpec)
	want := `{"Secrets":[{"File":{"Name":"db_pass","UID":"0","GID":"0","Mode":292},"SecretID":"sec1","SecretName":"db_pass"},` +
		`{"File":{"Name":"/etc/pass","UID":"100","GID":"100","Mode":256},"SecretID":"sec1","SecretName":"db_pass"}],` +
		`"Configs":[{"File":{"Name":"app_conf","UID":"0","GID":"0","Mode":292},"ConfigID":"cfg1","ConfigName":"app_conf"}]}`
	if got != want {
		t.Errorf("resolved:\n got %s\nwant %s", got, want)
	}

	for _, c := range []struct {
		name string
		cs   swarm.ContainerSpec
		want string
	}{
		{"unknown secret", swarm.ContainerSpec{Secrets: []*swarm.SecretReference{{SecretName: "nope"}}}, "secret not found: nope"},
		{"two unknown", swarm.ContainerSpec{Secrets: []*swarm.SecretReference{{SecretName: "a"}, {SecretName: "b"}}}, "secrets not found: a, b"},
		{"wrong name for ID", swarm.ContainerSpec{Secrets: []*swarm.SecretReference{{SecretID: "sec1", SecretName: "other"}}}, "secret not found: other"},
		{"unknown config", swarm.ContainerSpec{Configs: []*swarm.ConfigReference{{ConfigName: "nope"}}}, "config not found: nope"},
		{"same target", swarm.ContainerSpec{Secrets: []*swarm.SecretReference{{SecretName: "db_pass"}, {SecretName: "db_pass"}}},
			"secret references 'db_pass' and 'db_pass' have a conflicting target: 'db_pass'"},
		{"escaping target", swarm.ContainerSpec{Secrets: []*swarm.SecretReference{{SecretName: "db_pass", File: &swarm.SecretReferenceFileTarget{Name: "../../etc/shadow"}}}}, "invalid target file name"},
		{"malformed", swarm.ContainerSpec{Secrets: []*swarm.SecretReference{{}}}, "malformed secret reference"},
	} {
		_, err := resolve(c.cs)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

// clusterOn is a Cluster whose swarm is the store s (a manager's view).
func clusterOn(s *store.Store) *Cluster {
	return &Cluster{node: &nodeState{NodeID: "node1"}, store: s}
}

// Secrets through the facade: the data never comes back, a name is taken once,
// only labels change, and a secret a service uses stays.
func TestSecretLifecycle(t *testing.T) {
	s := storetest.Leader(t, "node1")
	c := clusterOn(s)
	ctx := context.Background()
	id, err := c.CreateSecret(ctx, swarm.SecretSpec{Annotations: swarm.Annotations{Name: "db_pass", Labels: map[string]string{"a": "b"}}, Data: []byte("hunter2")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateSecret(ctx, swarm.SecretSpec{Annotations: swarm.Annotations{Name: "DB_PASS"}, Data: []byte("x")}); err == nil || !isConflict(err) ||
		err.Error() != "rpc error: code = AlreadyExists desc = secret DB_PASS already exists" {
		t.Errorf("a taken name: %v", err)
	}
	// A secret-kind object an older shoal kept registry credentials in is no user's.
	err = s.Update(ctx, func(tx store.Tx) error {
		return tx.CreateSecret(&swarm.Secret{ID: "svc9.registry-auth", Spec: swarm.SecretSpec{Annotations: swarm.Annotations{Name: "svc9.registry-auth"}, Data: []byte("creds")}})
	})
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.Secrets(ctx)
	if err != nil || len(list) != 1 || list[0].ID != id || list[0].Spec.Data != nil {
		t.Fatalf("Secrets = %+v, %v", list, err)
	}
	if _, err := c.Secret(ctx, "svc9.registry-auth"); err == nil {
		t.Error("the legacy credentials object is found by Secret")
	}
	for _, ref := range []string{id, "db_pass", id[:5]} {
		sec, err := c.Secret(ctx, ref)
		if err != nil || sec.ID != id || sec.Spec.Data != nil {
			t.Errorf("Secret(%s) = %+v, %v", ref, sec, err)
		}
	}

	sec, _ := c.Secret(ctx, id)
	spec := sec.Spec
	spec.Labels = map[string]string{"c": "d"}
	if err := c.UpdateSecret(ctx, id, sec.Version.Index, spec); err != nil {
		t.Fatal(err)
	}
	mid, _ := c.Secret(ctx, id)
	spec.Data = []byte("hunter2")
	if err := c.UpdateSecret(ctx, id, mid.Version.Index, spec); err != nil {
		t.Errorf("an update carrying the same data back: %v", err)
	}
	spec.Data = []byte("new")
	if err := c.UpdateSecret(ctx, id, sec.Version.Index, spec); err == nil || !isConflict(err) {
		t.Errorf("a stale update: %v", err)
	}
	after, _ := c.Secret(ctx, id)
	if err := c.UpdateSecret(ctx, id, after.Version.Index, spec); err == nil || !strings.Contains(err.Error(), "only updates to Labels are allowed") {
		t.Errorf("a data update: %v", err)
	}
	err = s.View(func(tx store.ReadTx) error {
		stored, err := tx.Secret(id)
		if err == nil && (string(stored.Spec.Data) != "hunter2" || stored.Spec.Labels["c"] != "d" || len(stored.Spec.Labels) != 1) {
			t.Errorf("stored after the updates: %+v", stored.Spec)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	err = s.Update(ctx, func(tx store.Tx) error {
		for _, name := range []string{"web", "api"} {
			err := tx.CreateService(&swarm.Service{ID: name, Spec: swarm.ServiceSpec{Annotations: swarm.Annotations{Name: name},
				TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Secrets: []*swarm.SecretReference{{SecretID: id, SecretName: "db_pass"}}}}}})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveSecret(ctx, "db_pass"); err == nil ||
		err.Error() != "rpc error: code = InvalidArgument desc = secret 'db_pass' is in use by the following services: api, web" {
		t.Errorf("removing a secret in use: %v", err)
	}
	err = s.Update(ctx, func(tx store.Tx) error {
		if err := tx.DeleteService("web"); err != nil {
			return err
		}
		return tx.DeleteService("api")
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveSecret(ctx, "db_pass"); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveSecret(ctx, "db_pass"); err == nil || err.Error() != "secret db_pass not found" {
		t.Errorf("removing it again: %v", err)
	}
}
