// Package torture drives a real shoal daemon with concurrent clients, kills it
// with SIGKILL at random moments and starts it again, and checks after every
// round that nothing acknowledged was lost, that every service converges, and
// that every container, cgroup, mount, veth and runtime state directory on the
// node belongs to a live task.
//
// The rounds are drawn from a seed that the test prints, so a failure replays:
//
//	SHOAL_TORTURE_SEED=1234 SHOAL_TORTURE_ROUNDS=20 go test ./testenv/torture/
//
// `make test` runs a short form (20 rounds); `make torture` the long one (500).
package torture
