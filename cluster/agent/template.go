package agent

import (
	"fmt"
	"os"
	goruntime "runtime"
	"strings"
	"text/template"

	"github.com/moby/moby/api/types/swarm"
)

// templateContext is what a service's Go templates may name, as in Docker:
// {{.Service.Name}}, {{.Node.Hostname}}, {{.Task.Slot}} and so on.
type templateContext struct {
	Service struct{ ID, Name string }
	Node    struct {
		ID, Hostname string
		Platform     struct{ OS, Architecture string }
	}
	Task struct {
		ID, Name string
		Slot     string
	}
}

// expandTemplates returns a copy of the task's container spec whose hostname,
// environment and mount paths have their templates expanded, as swarmkit does.
func expandTemplates(a Assignment, nodeID string) (*swarm.ContainerSpec, error) {
	t := a.Task
	var ctx templateContext
	ctx.Service.ID, ctx.Service.Name = t.ServiceID, a.ServiceName
	ctx.Node.ID = nodeID
	ctx.Node.Hostname, _ = os.Hostname()
	ctx.Node.Platform.OS, ctx.Node.Platform.Architecture = goruntime.GOOS, goruntime.GOARCH
	ctx.Task.ID, ctx.Task.Name = t.ID, ContainerName(a.ServiceName, t)
	if t.Slot != 0 {
		ctx.Task.Slot = fmt.Sprint(t.Slot)
	} else {
		ctx.Task.Slot = t.NodeID
	}

	cs := *t.Spec.ContainerSpec
	var err error
	if cs.Hostname, err = expand("hostname", cs.Hostname, &ctx); err != nil {
		return nil, err
	}
	if len(cs.Env) > 0 {
		env := make([]string, len(cs.Env))
		for i, e := range cs.Env {
			if env[i], err = expand("env", e, &ctx); err != nil {
				return nil, err
			}
		}
		cs.Env = env
	}
	if len(cs.Mounts) > 0 {
		mounts := append(cs.Mounts[:0:0], cs.Mounts...)
		for i := range mounts {
			if mounts[i].Source, err = expand("mount source", mounts[i].Source, &ctx); err != nil {
				return nil, err
			}
			if mounts[i].Target, err = expand("mount target", mounts[i].Target, &ctx); err != nil {
				return nil, err
			}
		}
		cs.Mounts = mounts
	}
	return &cs, nil
}

// expand executes s as a Go template on ctx; text without "{{" is returned as is.
func expand(field, s string, ctx *templateContext) (string, error) {
	if !strings.Contains(s, "{{") {
		return s, nil
	}
	tmpl, err := template.New(field).Option("missingkey=error").Parse(s)
	if err != nil {
		return "", fmt.Errorf("failed to parse %s template %q: %w", field, s, err)
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, ctx); err != nil {
		return "", fmt.Errorf("failed to expand %s template %q: %w", field, s, err)
	}
	return b.String(), nil
}
