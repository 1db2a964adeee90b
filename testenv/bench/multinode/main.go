// Command multinode is the multi-node half of `make bench`: it runs shoal and
// Docker Engine (dockerd + containerd) side by side, each as a five-node swarm
// (three managers, two workers) in a testenv lab of its own, times what happens
// when a leader or a worker dies, when a node joins, measures each node's memory
// with 100 tasks on the swarm, and counts leader elections while the swarms idle.
//
//	multinode run     [flags]                       measure; raw figures to -log
//	multinode report  -log LOG -out docs/benchmarks.md   write the Multi-node section
//	multinode cleanup                               remove what a killed run left
//
// Each figure is one raw line of the log ("KIND ENGINE key=value ..."); report
// turns them into Markdown. The labs are named bmshoal and bmdocker (under
// /run/shoal-lab); everything they start is removed when the run ends, also on
// failure or SIGINT/SIGTERM. Needs root.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: multinode run|report|cleanup [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = runCommand(os.Args[2:])
	case "report":
		err = reportCommand(os.Args[2:])
	case "cleanup":
		err = cleanupLabs()
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "multinode:", err)
		os.Exit(1)
	}
}
