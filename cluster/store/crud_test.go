package store

import (
	"testing"

	"github.com/moby/moby/api/types/swarm"
)

// kindOps are the typed store calls for one kind, so that one lifecycle
// test covers every kind.
type kindOps[T any] struct {
	create func(Tx, *T) error
	get    func(ReadTx, string) (*T, error)
	update func(Tx, *T) error
	remove func(Tx, string) error // nil: the kind cannot be deleted
	list   func(ReadTx) (int, error)
	// labels returns the object's label map, the field the test changes.
	labels func(*T) *map[string]string
}

// lifecycle creates obj, reads it back, updates a label, deletes it, and
// checks what a user would see after each step.
func lifecycle[T any](t *testing.T, s *Store, obj *T, ops kindOps[T]) {
	t.Helper()
	rec, _, err := describe(obj)
	if err != nil {
		t.Fatal(err)
	}
	update(t, s, func(tx Tx) error { return ops.create(tx, obj) })

	var got *T
	err = s.View(func(tx ReadTx) error {
		if got, err = ops.get(tx, rec.ID); err != nil {
			return err
		}
		n, err := ops.list(tx)
		if err == nil && n != 1 {
			t.Errorf("list: %d objects, want 1", n)
		}
		return err
	})
	if err != nil {
		t.Fatalf("read %s after create: %v", rec.Kind, err)
	}
	_, meta, _ := describe(got)
	if meta.Version.Index == 0 || meta.CreatedAt.IsZero() || !meta.CreatedAt.Equal(meta.UpdatedAt) {
		t.Errorf("%s meta after create = %+v, want index and equal timestamps", rec.Kind, *meta)
	}
	created := *meta

	(*ops.labels(got))["changed"] = "yes"
	update(t, s, func(tx Tx) error { return ops.update(tx, got) })
	err = s.View(func(tx ReadTx) error {
		got, err = ops.get(tx, rec.ID)
		return err
	})
	if err != nil {
		t.Fatalf("read %s after update: %v", rec.Kind, err)
	}
	_, meta, _ = describe(got)
	if (*ops.labels(got))["changed"] != "yes" {
		t.Errorf("%s update lost: labels %v", rec.Kind, *ops.labels(got))
	}
	if meta.Version.Index <= created.Version.Index || !meta.CreatedAt.Equal(created.CreatedAt) ||
		meta.UpdatedAt.Before(created.UpdatedAt) {
		t.Errorf("%s meta after update = %+v, created %+v", rec.Kind, *meta, created)
	}

	if ops.remove == nil {
		return
	}
	update(t, s, func(tx Tx) error { return ops.remove(tx, rec.ID) })
	err = s.View(func(tx ReadTx) error {
		_, err := ops.get(tx, rec.ID)
		return err
	})
	if !IsNotFound(err) {
		t.Errorf("read %s after delete: err = %v, want NotFound", rec.Kind, err)
	}
	err = s.Update(testContext(t), func(tx Tx) error { return ops.update(tx, got) })
	if !IsNotFound(err) {
		t.Errorf("update deleted %s: err = %v, want NotFound", rec.Kind, err)
	}
}

func count[T any](items []*T, err error) (int, error) { return len(items), err }

func TestLifecycleOfEveryKind(t *testing.T) {
	s := newStore(t)
	t.Run("cluster", func(t *testing.T) {
		c := &swarm.Swarm{ClusterInfo: swarm.ClusterInfo{ID: NewID()}}
		c.Spec.Name = "default"
		c.Spec.Labels = map[string]string{}
		lifecycle(t, s, c, kindOps[swarm.Swarm]{
			create: Tx.CreateCluster, update: Tx.UpdateCluster,
			get: func(tx ReadTx, _ string) (*swarm.Swarm, error) { return tx.Cluster() },
			list: func(tx ReadTx) (int, error) {
				_, err := tx.Cluster()
				return 1, err
			},
			labels: func(c *swarm.Swarm) *map[string]string { return &c.Spec.Labels },
		})
	})
	t.Run("node", func(t *testing.T) {
		n := &swarm.Node{ID: NewID(), Spec: swarm.NodeSpec{Role: swarm.NodeRoleManager}}
		n.Spec.Labels = map[string]string{}
		lifecycle(t, s, n, kindOps[swarm.Node]{
			create: Tx.CreateNode, get: ReadTx.Node, update: Tx.UpdateNode, remove: Tx.DeleteNode,
			list:   func(tx ReadTx) (int, error) { return count(tx.Nodes()) },
			labels: func(n *swarm.Node) *map[string]string { return &n.Spec.Labels },
		})
	})
	t.Run("service", func(t *testing.T) {
		lifecycle(t, s, newService("web"), kindOps[swarm.Service]{
			create: Tx.CreateService, get: ReadTx.Service, update: Tx.UpdateService, remove: Tx.DeleteService,
			list:   func(tx ReadTx) (int, error) { return count(tx.Services()) },
			labels: func(s *swarm.Service) *map[string]string { return &s.Spec.Labels },
		})
	})
	t.Run("task", func(t *testing.T) {
		tk := newTask("svc", "node")
		tk.Labels = map[string]string{}
		lifecycle(t, s, tk, kindOps[swarm.Task]{
			create: Tx.CreateTask, get: ReadTx.Task, update: Tx.UpdateTask, remove: Tx.DeleteTask,
			list:   func(tx ReadTx) (int, error) { return count(tx.Tasks()) },
			labels: func(t *swarm.Task) *map[string]string { return &t.Labels },
		})
	})
	t.Run("network", func(t *testing.T) {
		n := &swarm.Network{ID: NewID()}
		n.Spec.Name, n.Spec.Labels = "backend", map[string]string{}
		lifecycle(t, s, n, kindOps[swarm.Network]{
			create: Tx.CreateNetwork, get: ReadTx.Network, update: Tx.UpdateNetwork, remove: Tx.DeleteNetwork,
			list:   func(tx ReadTx) (int, error) { return count(tx.Networks()) },
			labels: func(n *swarm.Network) *map[string]string { return &n.Spec.Labels },
		})
	})
	t.Run("secret", func(t *testing.T) {
		sec := &swarm.Secret{ID: NewID()}
		sec.Spec.Name, sec.Spec.Labels, sec.Spec.Data = "db-password", map[string]string{}, []byte("hunter2")
		lifecycle(t, s, sec, kindOps[swarm.Secret]{
			create: Tx.CreateSecret, get: ReadTx.Secret, update: Tx.UpdateSecret, remove: Tx.DeleteSecret,
			list:   func(tx ReadTx) (int, error) { return count(tx.Secrets()) },
			labels: func(s *swarm.Secret) *map[string]string { return &s.Spec.Labels },
		})
	})
	t.Run("config", func(t *testing.T) {
		c := &swarm.Config{ID: NewID()}
		c.Spec.Name, c.Spec.Labels, c.Spec.Data = "nginx.conf", map[string]string{}, []byte("server {}")
		lifecycle(t, s, c, kindOps[swarm.Config]{
			create: Tx.CreateConfig, get: ReadTx.Config, update: Tx.UpdateConfig, remove: Tx.DeleteConfig,
			list:   func(tx ReadTx) (int, error) { return count(tx.Configs()) },
			labels: func(c *swarm.Config) *map[string]string { return &c.Spec.Labels },
		})
	})
}

func TestLookupsByNameServiceAndNode(t *testing.T) {
	s := newStore(t)
	web, db := newService("Web"), newService("db")
	tasks := []*swarm.Task{newTask(web.ID, "n1"), newTask(web.ID, "n2"), newTask(db.ID, "n1")}
	update(t, s, func(tx Tx) error {
		for _, svc := range []*swarm.Service{web, db} {
			if err := tx.CreateService(svc); err != nil {
				return err
			}
		}
		for _, tk := range tasks {
			if err := tx.CreateTask(tk); err != nil {
				return err
			}
		}
		return nil
	})
	err := s.View(func(tx ReadTx) error {
		got, err := tx.ServiceByName("web")
		if err != nil {
			return err
		}
		if got.ID != web.ID {
			t.Errorf("ServiceByName(web) = %s, want %s (names match case-insensitively)", got.ID, web.ID)
		}
		if _, err := tx.ServiceByName("nope"); !IsNotFound(err) {
			t.Errorf("ServiceByName(nope): err = %v, want NotFound", err)
		}
		byService, err := tx.TasksByService(web.ID)
		if err != nil {
			return err
		}
		byNode, err := tx.TasksByNode("n1")
		if err != nil {
			return err
		}
		if len(byService) != 2 || len(byNode) != 2 {
			t.Errorf("TasksByService = %d tasks, TasksByNode = %d tasks; want 2 and 2", len(byService), len(byNode))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestReadsReturnCopies(t *testing.T) {
	s := newStore(t)
	svc := newService("web")
	update(t, s, func(tx Tx) error { return tx.CreateService(svc) })
	got := getService(t, s, svc.ID)
	got.Spec.Labels["app"] = "mutated"
	if again := getService(t, s, svc.ID); again.Spec.Labels["app"] != "web" {
		t.Errorf("mutating a read object changed the store: label = %q", again.Spec.Labels["app"])
	}
}
