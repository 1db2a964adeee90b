package metrics

import (
	"github.com/moby/moby/api/types/swarm"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-project/shoal/cluster"
)

// taskStates are the states a task can be in, each reported (at zero when no
// task is in it) so that a dashboard's series do not come and go.
var taskStates = []swarm.TaskState{
	swarm.TaskStateNew, swarm.TaskStatePending, swarm.TaskStateAssigned, swarm.TaskStateAccepted,
	swarm.TaskStatePreparing, swarm.TaskStateReady, swarm.TaskStateStarting, swarm.TaskStateRunning,
	swarm.TaskStateComplete, swarm.TaskStateShutdown, swarm.TaskStateFailed, swarm.TaskStateRejected,
	swarm.TaskStateRemove, swarm.TaskStateOrphaned,
}

// nodeStates are the statuses a node can have, each reported.
var nodeStates = []swarm.NodeState{swarm.NodeStateUnknown, swarm.NodeStateDown, swarm.NodeStateReady, swarm.NodeStateDisconnected}

var (
	descManager = prometheus.NewDesc("shoal_swarm_manager",
		"1 when this node is a manager of a swarm (and the metrics below are reported), else 0.", nil, nil)
	descLeader = prometheus.NewDesc("shoal_raft_leader", "1 when this manager leads the swarm's Raft, else 0.", nil, nil)
	descIndex  = prometheus.NewDesc("shoal_raft_index",
		"Raft log indexes: last (in the log), commit (known committed), applied (to the store).", []string{"kind"}, nil)
	descEntries = prometheus.NewDesc("shoal_raft_log_entries", "Entries the Raft log keeps (a snapshot trims it).", nil, nil)
	descDBBytes = prometheus.NewDesc("shoal_raft_db_bytes", "Size of the Raft log's file on disk.", nil, nil)
	descTasks   = prometheus.NewDesc("shoal_tasks",
		"The swarm's tasks by current state, from this manager's replica of the store.", []string{"state"}, nil)
	descPending = prometheus.NewDesc("shoal_scheduler_pending_tasks", "Tasks waiting for a node.", nil, nil)
	descNodes   = prometheus.NewDesc("shoal_nodes", "The swarm's nodes by status.", []string{"state"}, nil)
)

// swarmCollector reads the swarm's state when metrics are scraped: nothing is
// counted as the swarm changes, so its cost is one read per scrape.
type swarmCollector struct {
	stats func() cluster.Stats
}

// Describe sends the descriptions of every metric Collect may send.
func (c swarmCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descManager, descLeader, descIndex, descEntries, descDBBytes, descTasks, descPending, descNodes} {
		ch <- d
	}
}

// Collect reads the stats once and sends them.
func (c swarmCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	if !s.Manager {
		gauge(descManager, 0)
		return
	}
	gauge(descManager, 1)
	gauge(descLeader, boolValue(s.Raft.Leader))
	gauge(descIndex, float64(s.Raft.LastIndex), "last")
	gauge(descIndex, float64(s.Raft.CommitIndex), "commit")
	gauge(descIndex, float64(s.Raft.AppliedIndex), "applied")
	gauge(descEntries, float64(s.Raft.LogEntries))
	gauge(descDBBytes, float64(s.Raft.DBBytes))
	for _, st := range taskStates {
		gauge(descTasks, float64(s.Tasks[st]), string(st))
	}
	gauge(descPending, float64(s.PendingTasks))
	for _, st := range nodeStates {
		gauge(descNodes, float64(s.Nodes[st]), string(st))
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
