package agent

import (
	"fmt"
	"maps"
	"os"
	"path"
	goruntime "runtime"
	"strconv"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/session"
	"github.com/shoal-project/shoal/runtime/container"
)

// Where Docker puts a secret or config whose target is a bare name.
const (
	secretsDir = "/run/secrets"
	configsDir = "/"
)

// taskFiles are the secrets and configs a task's container gets, as files in
// memory: each at its target (a bare name under /run/secrets for secrets and /
// for configs, as Docker places them), with its owner and mode, rendered first
// when it is a golang template. cs is the task's container spec with its
// templates expanded.
func taskFiles(a session.Assignment, nodeID string, cs *swarm.ContainerSpec) ([]container.File, error) {
	if len(cs.Secrets) == 0 && len(cs.Configs) == 0 {
		return nil, nil
	}
	tc := newPayloadContext(a, nodeID, cs)
	var files []container.File
	for _, r := range cs.Secrets {
		if r == nil || r.File == nil {
			continue
		}
		s := tc.secret(r.SecretID)
		if s == nil {
			return nil, fmt.Errorf("secret %s (%s) was not delivered with the task", r.SecretName, r.SecretID)
		}
		data := s.Spec.Data
		if s.Spec.Templating != nil {
			var err error
			if data, err = tc.render("secret "+s.Spec.Name, data); err != nil {
				return nil, err
			}
		}
		f, err := file(secretsDir, r.File.Name, r.File.UID, r.File.GID, r.File.Mode, data)
		if err != nil {
			return nil, fmt.Errorf("secret %s: %w", r.SecretName, err)
		}
		files = append(files, f)
	}
	for _, r := range cs.Configs {
		if r == nil || r.File == nil {
			continue
		}
		c := tc.config(r.ConfigID)
		if c == nil {
			return nil, fmt.Errorf("config %s (%s) was not delivered with the task", r.ConfigName, r.ConfigID)
		}
		data := c.Spec.Data
		if c.Spec.Templating != nil {
			var err error
			if data, err = tc.render("config "+c.Spec.Name, data); err != nil {
				return nil, err
			}
		}
		f, err := file(configsDir, r.File.Name, r.File.UID, r.File.GID, r.File.Mode, data)
		if err != nil {
			return nil, fmt.Errorf("config %s: %w", r.ConfigName, err)
		}
		files = append(files, f)
	}
	return files, nil
}

// file places one payload: a relative target goes under dir.
func file(dir, target, uid, gid string, mode os.FileMode, data []byte) (container.File, error) {
	u, err := strconv.Atoi(uid)
	if err != nil || u < 0 {
		return container.File{}, fmt.Errorf("invalid uid %q: must be a number", uid)
	}
	g, err := strconv.Atoi(gid)
	if err != nil || g < 0 {
		return container.File{}, fmt.Errorf("invalid gid %q: must be a number", gid)
	}
	p := target
	if !path.IsAbs(p) {
		p = path.Join(dir, target)
	}
	return container.File{Path: p, Data: data, UID: u, GID: g, Mode: mode}, nil
}

// payloadContext is what a templated secret or config sees of its task, as in
// Docker: the service, node and task fields, and the task's secrets, configs
// and environment through the secret, config and env functions.
type payloadContext struct {
	a      session.Assignment
	cs     *swarm.ContainerSpec
	fields object
}

func newPayloadContext(a session.Assignment, nodeID string, cs *swarm.ContainerSpec) *payloadContext {
	t := a.Task
	hostname, _ := os.Hostname()
	slot := t.NodeID
	if t.Slot != 0 {
		slot = strconv.Itoa(t.Slot)
	}
	labels := maps.Clone(a.ServiceLabels)
	if labels == nil {
		labels = map[string]string{}
	}
	return &payloadContext{a: a, cs: cs, fields: object{
		"Service": object{"ID": t.ServiceID, "Name": a.ServiceName, "Labels": labels},
		"Node": object{"ID": nodeID, "Hostname": hostname,
			"Platform": object{"OS": goruntime.GOOS, "Architecture": goruntime.GOARCH}},
		"Task": object{"ID": t.ID, "Name": ContainerName(a.ServiceName, t), "Slot": slot},
	}}
}

func (tc *payloadContext) secret(id string) *swarm.Secret {
	for i := range tc.a.Secrets {
		if tc.a.Secrets[i].ID == id {
			return &tc.a.Secrets[i]
		}
	}
	return nil
}

func (tc *payloadContext) config(id string) *swarm.Config {
	for i := range tc.a.Configs {
		if tc.a.Configs[i].ID == id {
			return &tc.a.Configs[i]
		}
	}
	return nil
}

// secretByTarget is the data of the task's secret whose file target is target
// (the template function secret).
func (tc *payloadContext) secretByTarget(target string) (string, error) {
	for _, r := range tc.cs.Secrets {
		if r != nil && r.File != nil && r.File.Name == target {
			if s := tc.secret(r.SecretID); s != nil {
				return string(s.Spec.Data), nil
			}
		}
	}
	return "", fmt.Errorf("secret target %s not found", target)
}

// configByTarget is secretByTarget for configs (the template function config).
func (tc *payloadContext) configByTarget(target string) (string, error) {
	for _, r := range tc.cs.Configs {
		if r != nil && r.File != nil && r.File.Name == target {
			if c := tc.config(r.ConfigID); c != nil {
				return string(c.Spec.Data), nil
			}
		}
	}
	return "", fmt.Errorf("config target %s not found", target)
}

// env is the value of a variable of the task's environment, "" when it has
// none (the template function env).
func (tc *payloadContext) env(name string) string {
	for _, kv := range tc.cs.Env {
		if k, v, ok := cutEnv(kv); ok && k == name {
			return v
		}
	}
	return ""
}

func cutEnv(kv string) (string, string, bool) {
	for i := 0; i < len(kv); i++ {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return kv, "", false
}
