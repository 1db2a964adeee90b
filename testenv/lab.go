package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"time"
)

// DefaultLabRoot holds one directory per lab: its state, namespaces and nodes.
const DefaultLabRoot = "/run/shoal-lab"

// cgroupPrefix starts the cgroup parent of every lab node: shoal-lab-<lab>-<node>.
// Lab names hold no dash, so the prefix of one lab never matches another's.
const cgroupPrefix = "shoal-lab-"

// labNameRE is what a lab name may be: short, and safe in paths and cgroup names.
var labNameRE = regexp.MustCompile(`^[a-z0-9]{1,16}$`)

// LabOptions describe a lab to start.
type LabOptions struct {
	// Nodes is how many nodes the lab has (3 when zero; 254 at most). Node i
	// (from 1) is named node<i> and has the address 10.99.0.<i>.
	Nodes int
	// Name names the lab: its directory under Root and the prefix of its
	// cgroups. Lowercase letters and digits, 16 at most; random when empty.
	Name string
	// Root is the directory that holds labs (DefaultLabRoot when empty).
	Root string
	// Binary is the shoal binary. NewLab and SharedLab default it to Binary(tb).
	Binary string
	// Args are extra `shoal daemon` flags for every node.
	Args []string
	// Command, when set, is the daemon every node runs instead of `shoal
	// daemon` (dockerd, say): its program and arguments, in which {name},
	// {addr}, {dir}, {socket}, {data}, {exec} and {cgroup} stand for the node's
	// name, address, directory, API socket, data root, exec root and cgroup
	// parent. The daemon must answer the Docker API's /_ping on {socket}.
	// Binary and Args are unused then.
	Command []string
	// Detached daemons outlive the process that starts them (the lab command);
	// otherwise they die with it, and a later lab removes what they left.
	Detached bool
}

// Lab is several nodes of one (future) swarm on this machine, each a shoal daemon
// in network and UTS namespaces of its own that outlive the daemon, all plugged
// into one switch: a bridge in a namespace of its own. Its methods return errors;
// Use binds it to a test.
type Lab struct {
	// Name is the lab's name; Dir its directory.
	Name string
	Dir  string

	state    labState
	machines []*Machine

	// lease is held by the test using the lab (see Use); used tells whether
	// a test has had it, so that the next one gets it reset.
	lease sync.Mutex
	used  bool
}

// StartLab builds the lab's switch and nodes and starts every node's daemon. On
// error it removes whatever it had made. Close removes the lab.
func StartLab(ctx context.Context, opts LabOptions) (*Lab, error) {
	if opts.Nodes == 0 {
		opts.Nodes = 3
	}
	if opts.Nodes < 1 || opts.Nodes > 254 {
		return nil, fmt.Errorf("start lab: %d nodes: want 1 to 254", opts.Nodes)
	}
	if opts.Root == "" {
		opts.Root = DefaultLabRoot
	}
	if opts.Name == "" {
		opts.Name = "t" + randomSuffix()
	}
	if !labNameRE.MatchString(opts.Name) {
		return nil, fmt.Errorf("start lab: name %q: want 1 to 16 lowercase letters and digits", opts.Name)
	}
	var binary string
	if len(opts.Command) == 0 {
		if opts.Binary == "" {
			return nil, errors.New("start lab: no shoal binary")
		}
		var err error
		if binary, err = filepath.Abs(opts.Binary); err != nil {
			return nil, fmt.Errorf("start lab: %w", err)
		}
		if _, err := os.Stat(binary); err != nil {
			return nil, fmt.Errorf("start lab: shoal binary: %w", err)
		}
	}
	root, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, fmt.Errorf("start lab: %w", err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("start lab: %w", err)
	}
	sweepOrphans(root)
	dir := filepath.Join(root, opts.Name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("start lab %s: %s exists (remove it with: go run ./testenv/cmd/lab down --name %s)", opts.Name, dir, opts.Name)
		}
		return nil, fmt.Errorf("start lab %s: %w", opts.Name, err)
	}
	state := labState{Name: opts.Name, Binary: binary, Args: opts.Args, Command: opts.Command, Detached: opts.Detached}
	for i := 1; i <= opts.Nodes; i++ {
		state.Nodes = append(state.Nodes, nodeState{Name: fmt.Sprintf("node%d", i), Addr: fmt.Sprintf("10.99.0.%d", i)})
	}
	if !opts.Detached {
		self := os.Getpid()
		start, _ := procStart(self)
		state.Owner = &owner{Pid: self, Start: start}
	}
	l := newLab(dir, state)
	if err := l.start(ctx); err != nil {
		if cerr := l.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, fmt.Errorf("start lab %s: %w", opts.Name, err)
	}
	return l, nil
}

// start writes the lab's state, builds its network and starts its daemons.
func (l *Lab) start(ctx context.Context) error {
	if err := l.state.write(l.Dir); err != nil {
		return err
	}
	if err := l.build(); err != nil {
		return err
	}
	errs := make([]error, len(l.machines))
	var wg sync.WaitGroup
	for i, m := range l.machines {
		wg.Go(func() {
			if err := m.Start(ctx); err != nil {
				errs[i] = fmt.Errorf("%w\n%s daemon log:\n%s", err, m.Name, tail(m.Log(), 30))
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// OpenLab opens a lab that StartLab made (in this process or another, the lab
// command's `up` say): its daemons are found by their pid files.
func OpenLab(root, name string) (*Lab, error) {
	if root == "" {
		root = DefaultLabRoot
	}
	dir := filepath.Join(root, name)
	state, err := readLabState(dir)
	if err != nil {
		return nil, fmt.Errorf("open lab %s: %w", name, err)
	}
	l := newLab(dir, state)
	for _, m := range l.machines {
		m.proc = readPidFile(m.pidPath())
	}
	return l, nil
}

// newLab lays out the lab's machines in dir.
func newLab(dir string, state labState) *Lab {
	l := &Lab{Name: state.Name, Dir: dir, state: state}
	for _, ns := range state.Nodes {
		m := newMachine(ns.Name, filepath.Join(dir, ns.Name), cgroupPrefix+state.Name+"-"+ns.Name, state.Binary, state.Args)
		m.addr = ns.Addr
		m.netNS = filepath.Join(m.Dir, "netns")
		m.utsNS = filepath.Join(m.Dir, "utsns")
		m.detached = state.Detached
		m.template = state.Command
		l.machines = append(l.machines, m)
	}
	return l
}

// Machines are the lab's nodes, node1 first.
func (l *Lab) Machines() []*Machine { return l.machines }

// Machine is the lab's node of that name.
func (l *Lab) Machine(name string) (*Machine, error) {
	for _, m := range l.machines {
		if m.Name == name {
			return m, nil
		}
	}
	return nil, fmt.Errorf("lab %s has no node %q", l.Name, name)
}

// Close kills every daemon of the lab and removes all the lab made: containers,
// mounts, cgroups, namespaces with their links and rules, and files.
func (l *Lab) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	for _, m := range l.machines {
		// Killing the daemons this process started lets it reap them.
		wg.Go(func() { _ = m.Kill(ctx) })
	}
	wg.Wait()
	return DestroyLab(filepath.Dir(l.Dir), l.Name)
}
