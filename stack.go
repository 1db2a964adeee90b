package main

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

// stackOptions are the subcommand and flags of `shoal stack`.
type stackOptions struct {
	sub         string // deploy, config or rm
	files       []string
	name        string
	dryRun      bool
	prune       bool
	format      string // config: yaml or json
	waitTimeout time.Duration
}

const stackUsage = `Usage:
  shoal stack deploy [-c FILE]... [--dry-run] [--prune] [--wait-timeout D] NAME
  shoal stack config [-c FILE]... [--format yaml|json] [NAME]
  shoal stack rm NAME

deploy and config read the Compose Spec with compose-go: several -c files are
merged, .env and env_file are read, include, extends and profiles
(COMPOSE_PROFILES) apply. deploy is a client of the Engine API at DOCKER_HOST
(default ` + client.DefaultHost + `), with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH
as the docker CLI reads them. docker stack ls, services and ps list stacks.

Options:
`

func parseStackFlags(args []string) (stackOptions, error) {
	var o stackOptions
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Print(stackUsage)
		return o, pflag.ErrHelp
	}
	o.sub = args[0]
	fs := pflag.NewFlagSet("shoal stack "+o.sub, pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	maxArgs := 1
	switch o.sub {
	case "deploy", "up":
		o.sub = "deploy"
		fs.StringArrayVarP(&o.files, "compose-file", "c", nil, "compose file, repeatable: later files override earlier ones")
		fs.BoolVar(&o.dryRun, "dry-run", false, "print what would be created, updated (with the fields) or removed, and change nothing")
		fs.BoolVar(&o.prune, "prune", false, "remove the stack's services the files no longer have")
		fs.DurationVar(&o.waitTimeout, "wait-timeout", 5*time.Minute, "how long to wait for a dependency to be healthy (depends_on condition: service_healthy)")
	case "config":
		fs.StringArrayVarP(&o.files, "compose-file", "c", nil, "compose file, repeatable: later files override earlier ones")
		fs.StringVar(&o.format, "format", "yaml", "yaml or json")
	case "rm", "remove", "down":
		o.sub = "rm"
	default:
		fmt.Fprint(os.Stderr, stackUsage)
		return o, fmt.Errorf("unknown stack command %q", o.sub)
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Print(stackUsage + fs.FlagUsages())
		}
		return o, err
	}
	switch {
	case fs.NArg() > maxArgs:
		return o, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args()[1:], " "))
	case fs.NArg() == 1:
		o.name = fs.Arg(0)
	case o.sub != "config":
		return o, errors.New("the stack's NAME is required")
	}
	if o.format != "" && o.format != "yaml" && o.format != "json" {
		return o, fmt.Errorf("invalid --format %q: want yaml or json", o.format)
	}
	return o, nil
}

// runStack runs a parsed `shoal stack` command; warnings and progress that
// are not the command's output go to stderr.
func runStack(ctx context.Context, o stackOptions, stdout, stderr io.Writer) error {
	if o.sub == "rm" {
		eng, err := client.FromEnv(os.Getenv)
		if err != nil {
			return err
		}
		defer eng.Close()
		return deploy.Teardown(ctx, eng, o.name, stdout)
	}
	opts, err := composeOptions(o)
	if err != nil {
		return err
	}
	if o.sub == "config" {
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
	eng, err := client.FromEnv(os.Getenv)
	if err != nil {
		return err
	}
	defer eng.Close()
	cur, err := deploy.Read(ctx, eng, st.Name)
	if err != nil {
		return err
	}
	plan, err := deploy.MakePlan(st, cur, o.prune)
	if err != nil {
		return err
	}
	if o.dryRun {
		return plan.Write(stdout)
	}
	return deploy.Apply(ctx, eng, plan, deploy.Options{Out: stdout, WaitTimeout: o.waitTimeout})
}

// composeOptions are the files (the default ones when no -c names any), the
// process's environment, COMPOSE_PROFILES and the stack's name.
func composeOptions(o stackOptions) (compose.Options, error) {
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
