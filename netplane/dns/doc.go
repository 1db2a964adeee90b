// Package dns is shoal's embedded DNS server for task containers, the counterpart of
// Docker's resolver at 127.0.0.11: every task's resolv.conf names it, and it answers
// inside the task's own network namespace.
//
// Vocabulary:
//   - a sandbox is one task's network namespace; Serve binds 127.0.0.11:53 (UDP and
//     TCP) inside it and records the networks the sandbox is attached to;
//   - the Table maps each network to its names (service names, aliases,
//     "tasks.<service>", task names) and their IPv4 addresses; the agent replaces it
//     wholesale whenever its view of the cluster changes;
//   - an upstream is one of the node's own resolvers, to which every query the Table
//     does not answer is forwarded.
//
// The flow of one query:
//
//	socket in the sandbox -> Server.Answer -> Table, the sandbox's networks in order
//	                                        \-> not found: forward to the upstreams
//
// The answering logic is a pure function of the Table, the sandbox's networks and the
// query, so it is tested and measured without sockets; only the sockets live in the
// sandbox's namespace, every goroutine runs in the host's.
package dns
