package orchestrator

import (
	"github.com/moby/moby/api/types/swarm"
)

// MaxReplicas bounds the tasks one service asks for: the replicas of a replicated
// service, the MaxConcurrent and TotalCompletions of a replicated job. The API
// refuses more (docs/design.md says why 10000); a service stored with more (by an
// older shoal) gets MaxReplicas tasks, so a restart never runs out of memory on
// state it accepted.
const MaxReplicas = 10000

// bounded is n as a count of tasks, at most MaxReplicas.
func bounded(n uint64) int {
	return int(min(n, MaxReplicas))
}

// replicaCount is the number of slots of a replicated service: its replicas (1
// when unset), at most MaxReplicas.
func replicaCount(svc *swarm.Service) int {
	if m := svc.Spec.Mode.Replicated; m != nil && m.Replicas != nil {
		return bounded(*m.Replicas)
	}
	return 1
}
