package cluster

import (
	"encoding/json"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/orchestrator"
)

// What one service may weigh (docs/design.md says why these numbers). Every task
// carries a copy of its service's task template, in memory and in the Raft log, so
// both the spec and the spec times its tasks are bounded; a restart replays what
// was accepted within these bounds.
const (
	// MaxSpecBytes bounds a service spec, JSON-encoded as stored.
	MaxSpecBytes = 256 << 10
	// MaxServiceTaskBytes bounds a service's tasks (replicas, or job
	// completions) times the encoded size of its spec.
	MaxServiceTaskBytes = 64 << 20
)

// validateWeight refuses a spec heavier than MaxSpecBytes, or whose tasks would
// hold more than MaxServiceTaskBytes, with a 400 that names the limit.
func validateWeight(spec *swarm.ServiceSpec) error {
	data, err := json.Marshal(spec)
	if err != nil {
		return errInvalidf("rpc error: code = InvalidArgument desc = ServiceSpec: cannot be encoded: %v", err)
	}
	size := len(data)
	if size > MaxSpecBytes {
		return errInvalidf("rpc error: code = InvalidArgument desc = ServiceSpec: the spec is %d bytes encoded, more than shoal's limit of %d bytes (256 KiB): keep large data (environment, labels, arguments) in the image, a volume or a file", size, MaxSpecBytes)
	}
	if tasks := taskCount(spec.Mode); tasks*uint64(size) > MaxServiceTaskBytes {
		return errInvalidf("rpc error: code = InvalidArgument desc = ServiceSpec: %d tasks of a %d-byte spec would hold %d bytes, more than shoal's limit of %d bytes (64 MiB) per service: use fewer replicas or a smaller spec", tasks, size, tasks*uint64(size), MaxServiceTaskBytes)
	}
	return nil
}

// taskCount is how many tasks a replicated service or job keeps (its history
// aside), at most orchestrator.MaxReplicas; 1 for global modes (one per node).
func taskCount(m swarm.ServiceMode) uint64 {
	var n uint64 = 1
	switch {
	case m.Replicated != nil && m.Replicated.Replicas != nil:
		n = *m.Replicated.Replicas
	case m.ReplicatedJob != nil && m.ReplicatedJob.TotalCompletions != nil:
		n = *m.ReplicatedJob.TotalCompletions
	}
	return min(n, orchestrator.MaxReplicas)
}
