// Command shoal is a Docker swarm in one binary: `shoal daemon` serves the Docker
// Engine API that the stock docker CLI drives, keeps the swarm in Raft, and runs
// tasks under runc's libcontainer. main parses flags and wires the parts; it holds
// no logic of its own.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	goruntime "runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/shoal-project/shoal/cluster"
	"github.com/shoal-project/shoal/compose/stackcmd"
	"github.com/shoal-project/shoal/runtime/container"
	"github.com/shoal-project/shoal/runtime/initproc"
	"github.com/spf13/pflag"
)

// version, commit and buildDate are set at build time with -ldflags "-X
// main.version=... -X main.commit=... -X main.buildDate=..." (the Makefile does).
var (
	version   = "0.1.0-dev"
	commit    = ""
	buildDate = ""
)

func main() {
	// Inside a container started with --init, this binary is its docker-init.
	if filepath.Base(os.Args[0]) == initproc.Name {
		os.Exit(initproc.Run(os.Args[1:]))
	}
	// libcontainer re-executes this binary as "shoal init" inside each new container.
	container.RunInit()

	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	switch os.Args[1] {
	case "daemon":
		hup := hangups()
		cfg, err := parseDaemonFlags(os.Args[2:])
		if errors.Is(err, pflag.ErrHelp) {
			fmt.Print(daemonUsage())
			return
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "shoal daemon:", err)
			os.Exit(2)
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		reloads := reloadSource{hangups: hup, load: func() (daemonConfig, error) { return parseDaemonFlags(os.Args[2:]) }}
		if err := runDaemon(ctx, cfg, reloads); err != nil {
			fmt.Fprintln(os.Stderr, "shoal daemon:", err)
			os.Exit(1)
		}
	case "install", "uninstall":
		o, err := parseInstallFlags(os.Args[1], os.Args[2:])
		if errors.Is(err, pflag.ErrHelp) {
			return
		}
		if err == nil && os.Args[1] == "install" {
			err = runInstall(o, os.Stdout)
		} else if err == nil {
			err = runUninstall(o, os.Stdout)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "shoal %s: %v\n", os.Args[1], err)
			os.Exit(1)
		}
	case "stack":
		o, err := stackcmd.Parse(os.Args[2:])
		if errors.Is(err, pflag.ErrHelp) {
			return
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "shoal stack:", err)
			os.Exit(2)
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		if err := stackcmd.Run(ctx, o, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintf(os.Stderr, "shoal stack %s: %v\n", o.Sub, err)
			os.Exit(1)
		}
	case "version", "--version", "-v":
		fmt.Println(versionLine())
	case "help", "-h", "--help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "shoal: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
}

// versionLine is `shoal version`: the version, the commit and the build date,
// from the linker's flags or, for a plain `go build`, from what Go recorded
// of the checkout.
func versionLine() string {
	c, d := commit, buildDate
	if info, ok := debug.ReadBuildInfo(); ok && (c == "" || d == "") {
		for _, s := range info.Settings {
			switch {
			case s.Key == "vcs.revision" && c == "":
				c = s.Value[:min(12, len(s.Value))]
			case s.Key == "vcs.time" && d == "":
				d = s.Value
			}
		}
	}
	if c == "" {
		c = "unknown"
	}
	if d == "" {
		d = "unknown"
	}
	return fmt.Sprintf("shoal version %s, commit %s, built %s, %s/%s", version, c, d, goruntime.GOOS, goruntime.GOARCH)
}

func usage() {
	fmt.Fprint(os.Stderr, `Usage: shoal COMMAND

Commands:
  daemon      run the shoal daemon (a Docker Engine API in swarm mode)
  install     install this binary as /usr/local/bin/shoal with a systemd unit (shoal.service)
  uninstall   remove them (the data root and task containers stay)
  stack       deploy, show, list or remove a stack of Compose Spec files (a client of DOCKER_HOST)
  version     print the version

Run 'shoal daemon --help' for the daemon's flags.
`)
}

// daemonUsage is `shoal daemon --help`: the flags, dockerd's where they are the
// same, with their defaults.
func daemonUsage() string {
	fs, _ := daemonFlagSet(&daemonConfig{})
	return "Usage: shoal daemon [OPTIONS]\n\nRun the shoal daemon: a Docker Engine API in swarm mode.\n\nOptions:\n" + fs.FlagUsages()
}

// daemonConfig is everything `shoal daemon` is told on its command line.
type daemonConfig struct {
	Hosts            []string
	DataRoot         string
	ExecRoot         string
	RegistryMirrors  []string
	InsecureRegistry []string
	LogLevel         slog.Level
	BridgeName       string
	BridgeSubnet     string
	NFTable          string
	CgroupParent     string
	TLSVerify        bool
	TLSCACert        string
	TLSCert          string
	TLSKey           string
	// Labels are the engine's labels (key=value), as `docker info` and the
	// scheduler's engine.labels.* constraints see them.
	Labels map[string]string
	// GenericResources are what the node offers besides CPU and memory
	// (--node-generic-resource kind=name or kind=count).
	GenericResources []swarm.GenericResource
	// MinCertExpiry lowers the shortest certificate lifetime the swarm
	// accepts (Docker's hour), so that a lab sees certificates renew.
	MinCertExpiry time.Duration
	// MeshKeyRotation is how often the node replaces its WireGuard key
	// (0: never while it runs).
	MeshKeyRotation time.Duration
	// ConfigFile is daemon.json (--config-file); its keys were merged into
	// the fields above.
	ConfigFile string
	// MetricsAddr is where Prometheus metrics are served ("": nowhere).
	MetricsAddr string
	// DashboardAddr is where the fleet dashboard is served ("": nowhere).
	DashboardAddr string
	// AddressPools are --default-address-pool values, base=CIDR,size=N.
	AddressPools []string
	// SwarmDefaultAdvertiseAddr is the address (an IP or an interface) swarm
	// init and join advertise when the request names none, as dockerd's flag.
	SwarmDefaultAdvertiseAddr string
}

// listFlag is a flag that may be given many times.
type listFlag struct{ values *[]string }

func (l listFlag) String() string {
	if l.values == nil {
		return ""
	}
	return strings.Join(*l.values, ",")
}

func (l listFlag) Set(v string) error {
	*l.values = append(*l.values, v)
	return nil
}

// Append, Replace and GetSlice let daemon.json give the flag a whole list.
func (l listFlag) Append(v string) error { return l.Set(v) }

// Replace sets the flag's values to vs.
func (l listFlag) Replace(vs []string) error {
	*l.values = append([]string(nil), vs...)
	return nil
}

// GetSlice is the flag's values.
func (l listFlag) GetSlice() []string { return append([]string(nil), *l.values...) }

// Type names the flag's value in --help.
func (l listFlag) Type() string { return "string" }

// daemonFlags holds what the flags parse into before it is checked.
type daemonFlags struct {
	level           *string
	debug, tls      bool
	labels, generic []string
}

// daemonFlagSet declares the daemon's flags, GNU-style as dockerd's
// (--data-root, -H/--host), writing into cfg.
func daemonFlagSet(cfg *daemonConfig) (*pflag.FlagSet, *daemonFlags) {
	var f daemonFlags
	fs := pflag.NewFlagSet("shoal daemon", pflag.ContinueOnError)
	fs.SortFlags = false
	fs.SetOutput(io.Discard) // errors are returned; --help prints daemonUsage
	fs.VarP(listFlag{&cfg.Hosts}, "host", "H", "daemon socket to listen on: unix:///path or tcp://host:port (repeatable; default unix:///run/shoal.sock)")
	fs.StringVar(&cfg.DataRoot, "data-root", "/var/lib/shoal", "root of persistent state")
	fs.StringVar(&cfg.ExecRoot, "exec-root", "/run/shoal", "root of runtime state (container state, network namespaces)")
	fs.Var(listFlag{&cfg.RegistryMirrors}, "registry-mirror", "registry mirror for docker.io (repeatable)")
	fs.Var(listFlag{&cfg.InsecureRegistry}, "insecure-registry", "registry reachable over plain HTTP, or a CIDR of them (repeatable)")
	f.level = fs.StringP("log-level", "l", "info", "log level: debug, info, warn, error, fatal")
	fs.StringVar(&cfg.BridgeName, "bridge", "shoal0", "name of the node-local bridge for task containers")
	fs.StringVar(&cfg.BridgeSubnet, "bip", "172.30.0.0/16", "subnet of the node-local bridge")
	fs.StringVar(&cfg.NFTable, "nftables-table", "shoal", "name of shoal's nftables table")
	fs.StringVar(&cfg.CgroupParent, "cgroup-parent", "shoal", "parent cgroup of task containers")
	fs.BoolVar(&cfg.TLSVerify, "tlsverify", false, "require TLS with client certificates on TCP listeners")
	fs.StringVar(&cfg.TLSCACert, "tlscacert", "", "CA that signs accepted client certificates")
	fs.StringVar(&cfg.TLSCert, "tlscert", "", "server certificate")
	fs.StringVar(&cfg.TLSKey, "tlskey", "", "server key")
	fs.Var(listFlag{&f.labels}, "label", "engine label key=value, for engine.labels.* placement constraints (repeatable)")
	fs.Var(listFlag{&f.generic}, "node-generic-resource", "a resource the node offers: kind=name (a named unit, e.g. gpu=GPU-1) or kind=count (e.g. ssd=2) (repeatable)")
	fs.StringVar(&cfg.SwarmDefaultAdvertiseAddr, "swarm-default-advertise-addr", "", "address or interface swarm init and join advertise when the request names none")
	fs.DurationVar(&cfg.MeshKeyRotation, "mesh-key-rotation", cluster.DefaultMeshKeyRotation, "how often the node replaces its WireGuard key on the swarm's encrypted mesh (0: only when it restarts)")
	fs.DurationVar(&cfg.MinCertExpiry, "min-cert-expiry", cluster.MinCertExpiry, "for labs: the shortest node certificate lifetime that swarm update --cert-expiry accepts")
	addOperationFlags(fs, cfg, &f)
	return fs, &f
}

func parseDaemonFlags(args []string) (daemonConfig, error) {
	cfg := daemonConfig{}
	fs, f := daemonFlagSet(&cfg)
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if err := mergeConfigFile(fs, cfg.ConfigFile); err != nil {
		return cfg, err
	}
	labels, generic, level := f.labels, f.generic, f.level
	if cfg.MinCertExpiry < time.Second {
		return cfg, fmt.Errorf("invalid --min-cert-expiry %s: a second at least", cfg.MinCertExpiry)
	}
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return cfg, fmt.Errorf("invalid --label %q: want key=value", l)
		}
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		cfg.Labels[k] = v
	}
	for _, g := range generic {
		kind, value, ok := strings.Cut(g, "=")
		if !ok || kind == "" || value == "" {
			return cfg, fmt.Errorf("invalid --node-generic-resource %q: want kind=name or kind=count", g)
		}
		if n, err := strconv.ParseInt(value, 10, 64); err == nil && n > 0 {
			cfg.GenericResources = append(cfg.GenericResources, swarm.GenericResource{DiscreteResourceSpec: &swarm.DiscreteGenericResource{Kind: kind, Value: n}})
			continue
		}
		cfg.GenericResources = append(cfg.GenericResources, swarm.GenericResource{NamedResourceSpec: &swarm.NamedGenericResource{Kind: kind, Value: value}})
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	if err := cfg.LogLevel.UnmarshalText([]byte(strings.ReplaceAll(*level, "fatal", "error"))); err != nil {
		return cfg, fmt.Errorf("invalid --log-level %q", *level)
	}
	if f.debug {
		cfg.LogLevel = slog.LevelDebug
	}
	if err := checkOperations(fs, &cfg); err != nil {
		return cfg, err
	}
	if len(cfg.Hosts) == 0 {
		cfg.Hosts = []string{"unix:///run/shoal.sock"}
	}
	for _, h := range cfg.Hosts {
		if err := checkHost(h); err != nil {
			return cfg, err
		}
		if strings.HasPrefix(h, "tcp://") && !cfg.mutualTLS() {
			return cfg, errors.New("a TCP listener needs --tlsverify with --tlscacert, --tlscert and --tlskey: shoal never listens on TCP without mutual TLS")
		}
	}
	var err error
	if cfg.DataRoot, err = filepath.Abs(cfg.DataRoot); err != nil {
		return cfg, err
	}
	if cfg.ExecRoot, err = filepath.Abs(cfg.ExecRoot); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// checkHost refuses, while flags are parsed and so before the daemon touches the
// host, a -H address shoal cannot listen on.
func checkHost(h string) error {
	switch {
	case strings.HasPrefix(h, "fd://"):
		return fmt.Errorf("invalid -H %q: systemd socket activation (fd://) is not supported; use unix:///path or tcp://host:port", h)
	case strings.HasPrefix(h, "unix://") && len(h) > len("unix://"), strings.HasPrefix(h, "tcp://") && len(h) > len("tcp://"):
		return nil
	}
	return fmt.Errorf("invalid -H %q: want unix:///path or tcp://host:port", h)
}
