package agent

import (
	"fmt"
	"os"
	"regexp"
	goruntime "runtime"
	"strings"

	"github.com/moby/moby/api/types/swarm"
	"github.com/shoal-project/shoal/cluster/session"
)

// templateFields are the placeholders a service's templates may name, as in
// Docker: {{.Service.Name}}, {{.Node.Hostname}}, {{.Task.Slot}} and so on.
//
// They are substituted directly rather than run through text/template: that
// package's reflection keeps every method of every type in the binary (about 9 MB
// of a static shoal), and these placeholders are what services use.
type templateFields map[string]string

var placeholder = regexp.MustCompile(`\{\{\s*(\.[A-Za-z.]+)\s*\}\}`)

// expandTemplates returns a copy of the task's container spec whose hostname,
// environment and mount paths have their templates expanded, as swarmkit does.
func expandTemplates(a session.Assignment, nodeID string) (*swarm.ContainerSpec, error) {
	t := a.Task
	hostname, _ := os.Hostname()
	slot := t.NodeID
	if t.Slot != 0 {
		slot = fmt.Sprint(t.Slot)
	}
	ctx := templateFields{
		".Service.ID": t.ServiceID, ".Service.Name": a.ServiceName,
		".Node.ID": nodeID, ".Node.Hostname": hostname,
		".Node.Platform.OS": goruntime.GOOS, ".Node.Platform.Architecture": goruntime.GOARCH,
		".Task.ID": t.ID, ".Task.Name": ContainerName(a.ServiceName, t), ".Task.Slot": slot,
	}

	cs := *t.Spec.ContainerSpec
	var err error
	if cs.Hostname, err = expand("hostname", cs.Hostname, ctx); err != nil {
		return nil, err
	}
	if len(cs.Env) > 0 {
		env := make([]string, len(cs.Env))
		for i, e := range cs.Env {
			if env[i], err = expand("env", e, ctx); err != nil {
				return nil, err
			}
		}
		cs.Env = env
	}
	if len(cs.Mounts) > 0 {
		mounts := append(cs.Mounts[:0:0], cs.Mounts...)
		for i := range mounts {
			if mounts[i].Source, err = expand("mount source", mounts[i].Source, ctx); err != nil {
				return nil, err
			}
			if mounts[i].Target, err = expand("mount target", mounts[i].Target, ctx); err != nil {
				return nil, err
			}
		}
		cs.Mounts = mounts
	}
	return &cs, nil
}

// expand substitutes the placeholders in s; text without "{{" is returned as is.
// Anything else between braces (functions, pipelines) is refused by name.
func expand(field, s string, ctx templateFields) (string, error) {
	if !strings.Contains(s, "{{") {
		return s, nil
	}
	var bad string
	out := placeholder.ReplaceAllStringFunc(s, func(m string) string {
		key := placeholder.FindStringSubmatch(m)[1]
		v, ok := ctx[key]
		if !ok && bad == "" {
			bad = key
		}
		return v
	})
	if bad != "" {
		return "", fmt.Errorf("failed to expand %s template %q: unknown field %s", field, s, bad)
	}
	if strings.Contains(out, "{{") {
		return "", fmt.Errorf("failed to expand %s template %q: only placeholders such as {{.Task.Slot}} are supported", field, s)
	}
	return out, nil
}
