// Command lab runs a lab of shoal nodes on this machine, by hand: N real `shoal
// daemon`s, each in network and UTS namespaces of its own, plugged into one
// virtual switch (10.99.0.0/24), driven with the docker CLI. It is a thin front
// over testenv's Lab, which the multi-node tests use.
//
//	go run ./testenv/cmd/lab up --nodes 5
//	go run ./testenv/cmd/lab docker node1 swarm init --advertise-addr 10.99.0.1
//	go run ./testenv/cmd/lab partition node1,node2 node3,node4,node5
//	go run ./testenv/cmd/lab down
//
// It needs root.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

const usage = `usage: lab COMMAND [flags] [args]

Runs a lab of shoal nodes on this machine: each node a real shoal daemon in
network and UTS namespaces of its own (hostname node<i>), plugged into one
virtual switch, node<i> at 10.99.0.<i>. The daemons outlive the command; the
lab's state, sockets and logs are under /run/shoal-lab/<name>/. Needs root.

commands:
  up [--nodes 5] [--binary bin/shoal] [-- DAEMON-FLAGS...]
                        start a lab and print each node's DOCKER_HOST
  status                show the nodes, their daemons and the partition
  start|stop|kill|restart|freeze|thaw|reset NODE...
                        start a daemon; stop it (SIGTERM); kill it (SIGKILL, a
                        crash); kill and start it; freeze it (SIGSTOP: a hung
                        daemon, its containers run on); thaw it (SIGCONT);
                        reset it (wipe its state and containers, start fresh)
  partition GROUP GROUP...
                        cut the network between groups (GROUP: node1,node2);
                        nodes in no group still reach all
  heal                  end the partition
  docker NODE ARGS...   run the docker CLI against NODE
  down [--all]          remove the lab (or every lab) and all it left

flags of every command (before its arguments):
  --name NAME           the lab's name (default $SHOAL_LAB, or demo)
  --root DIR            where labs live (default /run/shoal-lab)

Run "lab COMMAND -h" for a command's flags.
`

func main() {
	err := run(os.Args[1:], os.Stdout)
	var exit exitError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.As(err, &exit):
		os.Exit(int(exit))
	default:
		fmt.Fprintln(os.Stderr, "lab:", err)
		os.Exit(1)
	}
}

// exitError is the exit status of a command that lab ran (docker), to pass on.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// run runs one lab command, writing what it reports to out.
func run(args []string, out io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(out, usage)
		if len(args) == 0 {
			return errors.New("no command")
		}
		return flag.ErrHelp
	}
	cmd, ok := commands[args[0]]
	if !ok {
		return fmt.Errorf("unknown command %q (lab -h lists them)", args[0])
	}
	return cmd(args[0], args[1:], out)
}
