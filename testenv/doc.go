// Package testenv runs real `shoal daemon`s on this machine for end-to-end tests,
// each in network and UTS namespaces of its own, driven by the real docker CLI.
//
// There are two ways to get daemons:
//
//   - StartNode starts a lone node: fresh namespaces with only a loopback, gone
//     when the daemon goes. Most single-node tests use it.
//   - A Lab is several machines on one virtual switch (10.99.0.0/24), with
//     namespaces that outlive their daemons, so that tests can kill, freeze,
//     restart and partition nodes of one swarm. NewLab starts one for a test,
//     SharedLab lets the tests of a package share one, and StartLab/OpenLab serve
//     TestMain and the lab command (testenv/cmd/lab).
//
// A Machine is one daemon with its directories, cgroup parent and namespaces; its
// methods return errors. A Node is a Machine bound to a test: the same methods
// fail the test instead. testenv depends on nothing of shoal but the binary it
// starts, and removes everything it made (processes, containers, mounts, cgroups,
// namespaces, firewall rules, files), even when a test fails. README.md beside
// this file walks through the lab.
package testenv
