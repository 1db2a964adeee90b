// Package compose turns Compose Spec files into the Engine API specs of a
// swarm stack: services, networks, secrets and configs, named and labelled
// as the docker CLI's `stack deploy` names and labels them. It is pure: it
// reads files and returns specs, and never calls an Engine API; the client
// that deploys a Stack lives beside the `shoal stack` command.
package compose

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"
)

// NamespaceLabel marks every object of a stack with the stack's name, as the
// docker CLI does; `docker stack ls/ps/rm` filter on it.
const NamespaceLabel = "com.docker.stack.namespace"

// ImageLabel keeps a service's image as the file names it, as the docker
// CLI does: the stored image may be pinned to a digest since, and
// `--resolve-image changed` compares the file with this label.
const ImageLabel = "com.docker.stack.image"

// Options says which files to load and how to resolve them.
type Options struct {
	// Files are merged in order, later ones overriding earlier ones.
	Files []string
	// WorkingDir resolves relative paths (bind mounts, env_file, secret
	// files); empty means the directory of the first file.
	WorkingDir string
	// Env is the environment that interpolation and `environment:` secrets
	// and configs read. A `.env` file in WorkingDir fills in what it lacks.
	Env map[string]string
	// Profiles enables services that name one of them.
	Profiles []string
	// ProjectName is the stack's name; empty takes the file's `name:`.
	ProjectName string
}

// Stack is what deploying a set of compose files creates.
type Stack struct {
	// Name is the stack's name, the prefix of every object's name.
	Name string
	// Services are in start order: a service comes after those it depends on.
	Services []Service
	// Networks are those the services use, sorted by name.
	Networks []Network
	// Secrets and Configs are those the stack creates (not external ones),
	// sorted by name.
	Secrets []swarm.SecretSpec
	Configs []swarm.ConfigSpec
	// Warnings name the keys that were read but that shoal does not honour.
	Warnings []Warning
}

// Service is one service of a stack.
type Service struct {
	// Name is the service's key in the compose file, without the stack prefix.
	Name string
	Spec swarm.ServiceSpec
	// DependsOn are the services this one starts after, sorted by name.
	DependsOn []Dependency
}

// Dependency is one entry of a service's depends_on.
type Dependency struct {
	// Service is the short name of the service depended on.
	Service string
	// Healthy is set when the dependent must wait for the dependency to be
	// healthy (condition: service_healthy), not only started.
	Healthy bool
	// Completed is set for condition: service_completed_successfully.
	Completed bool
}

// Network is a network a stack's services attach to.
type Network struct {
	// Key is the network's key in the compose file ("default" for the
	// stack's default network).
	Key string
	// External networks must exist already; Create then holds only their name.
	External bool
	Create   network.CreateRequest
}

// Warning is a key that was read but is not honoured.
type Warning struct {
	// Service is the service the key belongs to; empty for top-level keys.
	Service string
	// Key is the key's path, e.g. "services.web.build".
	Key string
}

func (w Warning) String() string {
	if w.Service == "" {
		return fmt.Sprintf("%s: not supported by shoal, ignored", w.Key)
	}
	return fmt.Sprintf("service %s: %s: not supported by shoal, ignored", w.Service, w.Key)
}

// Load reads, merges and resolves the compose files and converts them to the
// specs of a stack. A malformed file, an unknown key or a missing required
// variable is an error; keys shoal does not honour are Warnings.
func Load(ctx context.Context, opts Options) (*Stack, error) {
	if len(opts.Files) == 0 {
		return nil, errors.New("load compose files: no file given")
	}
	project, warnings, err := loadProject(ctx, opts)
	if err != nil {
		return nil, err
	}
	st, err := convert(project)
	if err != nil {
		return nil, fmt.Errorf("convert stack %s: %w", project.Name, err)
	}
	st.Warnings = append(warnings, st.Warnings...)
	return st, nil
}

func loadProject(ctx context.Context, opts Options) (*types.Project, []Warning, error) {
	// Absolute, so that every error names a file the same way: compose-go's
	// schema errors name them absolute.
	files := make([]string, len(opts.Files))
	for i, f := range opts.Files {
		abs, err := filepath.Abs(f)
		if err != nil {
			return nil, nil, fmt.Errorf("load compose file %s: %w", f, err)
		}
		files[i] = abs
	}
	opts.Files = files
	wd := opts.WorkingDir
	if wd == "" {
		wd = filepath.Dir(opts.Files[0])
	}
	env := make([]string, 0, len(opts.Env))
	for k, v := range opts.Env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)

	var warnings []Warning
	report := func(found []loader.UnsupportedAttribute) {
		for _, f := range found {
			warnings = append(warnings, newWarning(f.Path))
		}
	}
	fns := []cli.ProjectOptionsFn{
		cli.WithWorkingDirectory(wd),
		cli.WithEnv(env),
		cli.WithProfiles(opts.Profiles),
		cli.WithName(opts.ProjectName),
		cli.WithLoadOptions(loader.WithSupportedAttributes(supportedPaths(), report)),
	}
	if dotEnv := filepath.Join(wd, ".env"); isFile(dotEnv) {
		fns = append(fns, cli.WithEnvFiles(dotEnv), cli.WithDotEnv)
	}
	po, err := cli.NewProjectOptions(opts.Files, fns...)
	if err != nil {
		return nil, nil, fmt.Errorf("load compose files: %w", err)
	}
	project, err := po.LoadProject(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("load compose files: %w", locate(err, opts.Files))
	}
	return project, warnings, nil
}

func isFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// Model reads, merges and resolves the compose files as Load does and
// returns the resolved Compose model, as YAML or, with asJSON, as JSON: what
// `shoal stack config` prints.
func Model(ctx context.Context, opts Options, asJSON bool) ([]byte, []Warning, error) {
	if len(opts.Files) == 0 {
		return nil, nil, errors.New("load compose files: no file given")
	}
	project, warnings, err := loadProject(ctx, opts)
	if err != nil {
		return nil, nil, err
	}
	var out []byte
	if asJSON {
		out, err = project.MarshalJSON()
	} else {
		out, err = project.MarshalYAML()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("encode the compose model: %w", err)
	}
	return out, warnings, nil
}
