// Package stackcmd is the `shoal stack` command: its flags, and each
// subcommand run against the Engine API at DOCKER_HOST as the docker CLI's
// stack commands are. deploy and config read the Compose Spec with compose;
// deploy and rm go through compose/deploy; ls, services and ps print what
// the docker CLI prints.
package stackcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/shoal-project/shoal/compose"
	"github.com/shoal-project/shoal/compose/deploy"
	"github.com/shoal-project/shoal/engineapi/client"
)

// defaultComposeFiles are looked for in the working directory when no -c is
// given, in this order, as `docker compose` does.
var defaultComposeFiles = []string{"compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml"}

// Options are the subcommand and flags of `shoal stack`.
type Options struct {
	// Sub is the subcommand: deploy, config, rm, ls, services or ps.
	Sub         string
	files       []string
	name        string
	dryRun      bool
	prune       bool
	format      string // config: yaml or json
	waitTimeout time.Duration
	resolve     string // deploy: always, changed or never
	sendAuth    bool   // deploy: --with-registry-auth
	quiet       bool   // services, ps: IDs only
	noTrunc     bool   // ps: IDs, images and errors in full
}

const stackUsage = `Usage:
  shoal stack deploy [-c FILE]... [--dry-run] [--prune] [--resolve-image always|changed|never]
                     [--with-registry-auth] [--wait-timeout D] NAME
  shoal stack config [-c FILE]... [--format yaml|json] [NAME]
  shoal stack rm NAME
  shoal stack ls
  shoal stack services [-q] NAME
  shoal stack ps [-q] [--no-trunc] NAME

deploy and config read the Compose Spec with compose-go: several -c files are
merged, .env and env_file are read, include, extends and profiles
(COMPOSE_PROFILES) apply. deploy is a client of the Engine API at DOCKER_HOST
(default ` + client.DefaultHost + `), with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH
as the docker CLI reads them; --with-registry-auth sends the credentials
'docker login' keeps (DOCKER_CONFIG). ls, services and ps print the docker
CLI's columns.

Options:
`

// Parse reads `shoal stack`'s arguments (those after "stack"). Help is
// printed and returned as pflag.ErrHelp.
func Parse(args []string) (Options, error) {
	var o Options
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Print(stackUsage)
		return o, pflag.ErrHelp
	}
	o.Sub = args[0]
	fs := pflag.NewFlagSet("shoal stack "+o.Sub, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	maxArgs := 1
	switch o.Sub {
	case "deploy", "up":
		o.Sub = "deploy"
		fs.StringArrayVarP(&o.files, "compose-file", "c", nil, "compose file, repeatable: later files override earlier ones")
		fs.BoolVar(&o.dryRun, "dry-run", false, "print what would be created, updated (with the fields) or removed, and change nothing")
		fs.BoolVar(&o.prune, "prune", false, "remove the stack's services the files no longer have")
		fs.DurationVar(&o.waitTimeout, "wait-timeout", 5*time.Minute, "how long to wait for a dependency to be healthy (depends_on condition: service_healthy)")
		fs.StringVar(&o.resolve, "resolve-image", string(deploy.ResolveAlways), "pin images to their registry digest: always, changed (new or changed images only) or never")
		fs.BoolVar(&o.sendAuth, "with-registry-auth", false, "send the registry credentials of the docker CLI's config to the swarm with each service")
	case "config":
		fs.StringArrayVarP(&o.files, "compose-file", "c", nil, "compose file, repeatable: later files override earlier ones")
		fs.StringVar(&o.format, "format", "yaml", "yaml or json")
	case "rm", "remove", "down":
		o.Sub = "rm"
	case "ls", "list":
		o.Sub, maxArgs = "ls", 0
	case "services":
		fs.BoolVarP(&o.quiet, "quiet", "q", false, "print only the services' IDs")
	case "ps":
		fs.BoolVarP(&o.quiet, "quiet", "q", false, "print only the tasks' IDs")
		fs.BoolVar(&o.noTrunc, "no-trunc", false, "do not truncate IDs, images and errors")
	default:
		fmt.Fprint(os.Stderr, stackUsage)
		return o, fmt.Errorf("unknown stack command %q", o.Sub)
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Print(stackUsage + fs.FlagUsages())
		}
		return o, err
	}
	switch {
	case fs.NArg() > maxArgs:
		return o, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args()[maxArgs:], " "))
	case fs.NArg() == 1:
		o.name = fs.Arg(0)
	case o.Sub != "config" && o.Sub != "ls":
		return o, errors.New("the stack's NAME is required")
	}
	if o.format != "" && o.format != "yaml" && o.format != "json" {
		return o, fmt.Errorf("invalid --format %q: want yaml or json", o.format)
	}
	if o.Sub == "deploy" {
		if _, err := deploy.ParseResolveMode(o.resolve); err != nil {
			return o, err
		}
	}
	return o, nil
}

// Run runs a parsed `shoal stack` command; warnings and progress that are
// not the command's output go to stderr.
func Run(ctx context.Context, o Options, stdout, stderr io.Writer) error {
	switch o.Sub {
	case "rm", "ls", "services", "ps":
		eng, err := client.FromEnv(os.Getenv)
		if err != nil {
			return err
		}
		defer eng.Close()
		switch o.Sub {
		case "rm":
			return deploy.Teardown(ctx, eng, o.name, stdout)
		case "ls":
			return listStacks(ctx, eng, stdout)
		case "services":
			return listServices(ctx, eng, o, stdout, stderr)
		}
		return listTasks(ctx, eng, o, stdout)
	}
	opts, err := composeOptions(o)
	if err != nil {
		return err
	}
	if o.Sub == "config" {
		model, warnings, err := compose.Model(ctx, opts, o.format == "json")
		if err != nil {
			return err
		}
		printWarnings(stderr, warnings)
		_, err = stdout.Write(model)
		return err
	}
	st, err := compose.Load(ctx, opts)
	if err != nil {
		return err
	}
	printWarnings(stderr, st.Warnings)
	return deployStack(ctx, st, o, stdout, stderr)
}

// deployStack reads what exists of the stack, pins its images as
// --resolve-image says, plans, and prints the plan or applies it.
func deployStack(ctx context.Context, st *compose.Stack, o Options, stdout, stderr io.Writer) error {
	eng, err := client.FromEnv(os.Getenv)
	if err != nil {
		return err
	}
	defer eng.Close()
	var auth deploy.Auth
	if o.sendAuth {
		creds, err := client.LoadCredentials()
		if err != nil {
			return err
		}
		auth = creds.For
	}
	cur, err := deploy.Read(ctx, eng, st.Name)
	if err != nil {
		return err
	}
	mode, _ := deploy.ParseResolveMode(o.resolve) // checked by Parse
	warnings, err := deploy.ResolveImages(ctx, eng, st, cur, mode, auth)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	plan, err := deploy.MakePlan(st, cur, o.prune)
	if err != nil {
		return err
	}
	if o.sendAuth {
		plan.SendCredentials()
	}
	if o.dryRun {
		return plan.Write(stdout)
	}
	return deploy.Apply(ctx, eng, plan, deploy.Options{Out: stdout, WaitTimeout: o.waitTimeout, Auth: auth})
}

// composeOptions are the files (the default ones when no -c names any), the
// process's environment, COMPOSE_PROFILES and the stack's name.
func composeOptions(o Options) (compose.Options, error) {
	files := o.files
	if len(files) == 0 {
		for _, f := range defaultComposeFiles {
			if _, err := os.Stat(f); err == nil {
				files = []string{f}
				break
			}
		}
		if len(files) == 0 {
			return compose.Options{}, fmt.Errorf("no compose file given (-c) and none of %s here", strings.Join(defaultComposeFiles, ", "))
		}
	}
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	var profiles []string
	if p := env["COMPOSE_PROFILES"]; p != "" {
		profiles = strings.Split(p, ",")
	}
	return compose.Options{Files: files, Env: env, Profiles: profiles, ProjectName: o.name}, nil
}

func printWarnings(w io.Writer, warnings []compose.Warning) {
	for _, x := range warnings {
		fmt.Fprintf(w, "warning: %s\n", x)
	}
}
