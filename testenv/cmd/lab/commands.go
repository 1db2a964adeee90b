package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shoal-project/shoal/testenv"
)

// commands are lab's commands by name; each gets its name, its arguments and
// where to report.
var commands = map[string]func(cmd string, args []string, out io.Writer) error{
	"up":        up,
	"status":    status,
	"start":     nodes,
	"stop":      nodes,
	"kill":      nodes,
	"restart":   nodes,
	"freeze":    nodes,
	"thaw":      nodes,
	"reset":     nodes,
	"partition": partition,
	"heal":      heal,
	"docker":    docker,
	"down":      down,
}

// labFlags are the flags of every command: which lab.
type labFlags struct {
	name, root string
}

func newFlags(cmd, synopsis string, out io.Writer) (*flag.FlagSet, *labFlags) {
	fs := flag.NewFlagSet("lab "+cmd, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "usage: lab %s [flags] %s\n\nflags:\n", cmd, synopsis)
		fs.PrintDefaults()
	}
	lf := &labFlags{}
	name := os.Getenv("SHOAL_LAB")
	if name == "" {
		name = "demo"
	}
	fs.StringVar(&lf.name, "name", name, "the lab's name (default from $SHOAL_LAB)")
	fs.StringVar(&lf.root, "root", testenv.DefaultLabRoot, "where labs live")
	return fs, lf
}

// open opens the lab that the flags name.
func (lf *labFlags) open() (*testenv.Lab, error) {
	lab, err := testenv.OpenLab(lf.root, lf.name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no lab %s under %s (lab up starts one)", lf.name, lf.root)
	}
	return lab, err
}

// commandContext ends at Ctrl-C or after a minute.
func commandContext() (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	return ctx, func() { cancel(); stop() }
}

func up(cmd string, args []string, out io.Writer) error {
	fs, lf := newFlags(cmd, "[-- DAEMON-FLAGS...]", out)
	count := fs.Int("nodes", 5, "how many nodes")
	binary := fs.String("binary", "bin/shoal", "the shoal binary (make build makes it)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := commandContext()
	defer cancel()
	began := time.Now()
	lab, err := testenv.StartLab(ctx, testenv.LabOptions{
		Nodes: *count, Name: lf.name, Root: lf.root, Binary: *binary, Args: fs.Args(), Detached: true,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "lab %s is up (%s): %d nodes on 10.99.0.0/24; state and daemon logs in %s\n\n",
		lab.Name, time.Since(began).Round(time.Millisecond), len(lab.Machines()), lab.Dir)
	printNodes(out, lab, false)
	fmt.Fprintf(out, "\nlab down%s removes it all.\n", nameFlag(lf))
	return nil
}

// nameFlag is the --name flag to repeat in a hint, if the lab is not the default.
func nameFlag(lf *labFlags) string {
	if lf.name == "demo" && os.Getenv("SHOAL_LAB") == "" {
		return ""
	}
	return " --name " + lf.name
}

func status(cmd string, args []string, out io.Writer) error {
	fs, lf := newFlags(cmd, "", out)
	if err := fs.Parse(args); err != nil {
		return err
	}
	lab, err := lf.open()
	if err != nil {
		if names, _ := testenv.ListLabs(lf.root); len(names) > 0 {
			err = fmt.Errorf("%w; labs: %s", err, strings.Join(names, " "))
		}
		return err
	}
	fmt.Fprintf(out, "lab %s (%s)\n\n", lab.Name, lab.Dir)
	printNodes(out, lab, true)
	groups := lab.Partitioned()
	if groups == nil {
		fmt.Fprintln(out, "\nno partition")
		return nil
	}
	parts := make([]string, len(groups))
	for i, g := range groups {
		parts[i] = strings.Join(g, ",")
	}
	fmt.Fprintf(out, "\npartition: %s\n", strings.Join(parts, " | "))
	return nil
}

// printNodes writes a line per node: name, address, (state,) DOCKER_HOST.
func printNodes(out io.Writer, lab *testenv.Lab, state bool) {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, m := range lab.Machines() {
		fmt.Fprintf(w, "%s\t%s\t", m.Name, m.Addr())
		if state {
			s := m.State()
			if pid := m.Pid(); pid != 0 {
				s += fmt.Sprintf(" (pid %d)", pid)
			}
			fmt.Fprintf(w, "%s\t", s)
		}
		fmt.Fprintf(w, "export DOCKER_HOST=unix://%s\n", m.Socket)
	}
	w.Flush()
}

// nodes runs start, stop, kill, restart, freeze, thaw or reset on each node named.
func nodes(cmd string, args []string, out io.Writer) error {
	fs, lf := newFlags(cmd, "NODE...", out)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("%s: name a node (node1, say)", cmd)
	}
	lab, err := lf.open()
	if err != nil {
		return err
	}
	ctx, cancel := commandContext()
	defer cancel()
	for _, name := range fs.Args() {
		m, err := lab.Machine(name)
		if err != nil {
			return err
		}
		switch cmd {
		case "start":
			err = m.Start(ctx)
		case "stop":
			err = m.Stop(ctx)
		case "kill":
			err = m.Kill(ctx)
		case "restart":
			err = m.Restart(ctx)
		case "freeze":
			err = m.Freeze()
		case "thaw":
			err = m.Thaw()
		case "reset":
			err = m.Reset(ctx)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s: %s\n", m.Name, m.State())
	}
	return nil
}

func partition(cmd string, args []string, out io.Writer) error {
	fs, lf := newFlags(cmd, "GROUP GROUP... (GROUP: node1,node2)", out)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 2 {
		return errors.New("partition: name two groups or more, as node1,node2 node3")
	}
	lab, err := lf.open()
	if err != nil {
		return err
	}
	groups := make([][]*testenv.Machine, fs.NArg())
	for i, arg := range fs.Args() {
		for _, name := range strings.Split(arg, ",") {
			m, err := lab.Machine(name)
			if err != nil {
				return err
			}
			groups[i] = append(groups[i], m)
		}
	}
	ctx, cancel := commandContext()
	defer cancel()
	if err := lab.Partition(ctx, groups...); err != nil {
		return err
	}
	fmt.Fprintf(out, "partitioned: %s\n", strings.Join(fs.Args(), " | "))
	return nil
}

func heal(cmd string, args []string, out io.Writer) error {
	fs, lf := newFlags(cmd, "", out)
	if err := fs.Parse(args); err != nil {
		return err
	}
	lab, err := lf.open()
	if err != nil {
		return err
	}
	ctx, cancel := commandContext()
	defer cancel()
	if err := lab.Heal(ctx); err != nil {
		return err
	}
	fmt.Fprintln(out, "healed")
	return nil
}

// docker runs the docker CLI against a node, on this terminal.
func docker(cmd string, args []string, out io.Writer) error {
	fs, lf := newFlags(cmd, "NODE DOCKER-ARGS...", out)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("docker: name a node (node1, say)")
	}
	lab, err := lf.open()
	if err != nil {
		return err
	}
	m, err := lab.Machine(fs.Arg(0))
	if err != nil {
		return err
	}
	c := m.DockerCommand(context.Background(), "docker", fs.Args()[1:]...)
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, out, os.Stderr
	var exit *exec.ExitError
	if err := c.Run(); errors.As(err, &exit) {
		return exitError(exit.ExitCode())
	} else if err != nil {
		return fmt.Errorf("run docker: %w", err)
	}
	return nil
}

func down(cmd string, args []string, out io.Writer) error {
	fs, lf := newFlags(cmd, "", out)
	all := fs.Bool("all", false, "remove every lab under --root, and leftovers of labs whose directory is gone")
	if err := fs.Parse(args); err != nil {
		return err
	}
	names, err := testenv.ListLabs(lf.root)
	if err != nil {
		return err
	}
	if !*all {
		if !slices.Contains(names, lf.name) {
			fmt.Fprintf(out, "no lab %s\n", lf.name)
			return nil
		}
		names = []string{lf.name}
	}
	var errs []error
	for _, name := range names {
		if err := testenv.DestroyLab(lf.root, name); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(out, "lab %s removed\n", name)
	}
	return errors.Join(errs...)
}
