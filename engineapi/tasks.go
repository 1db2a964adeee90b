package engineapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/orchestrator"
)

// registerTaskRoutes serves /tasks: list, inspect, logs.
func (s *Server) registerTaskRoutes(r gin.IRouter) {
	r.GET("/tasks", s.listTasks)
	r.GET("/tasks/:id", s.inspectTask)
	r.GET("/tasks/:id/logs", s.taskLogs)
}

// taskStates are the states a "desired-state" filter may name.
var taskStates = []swarm.TaskState{
	swarm.TaskStateNew, swarm.TaskStateAllocated, swarm.TaskStatePending, swarm.TaskStateAssigned,
	swarm.TaskStateAccepted, swarm.TaskStatePreparing, swarm.TaskStateReady, swarm.TaskStateStarting,
	swarm.TaskStateRunning, swarm.TaskStateComplete, swarm.TaskStateShutdown, swarm.TaskStateFailed,
	swarm.TaskStateRejected, swarm.TaskStateRemove, swarm.TaskStateOrphaned,
}

func (s *Server) listTasks(c *gin.Context) {
	ctx := c.Request.Context()
	f, ok := queryFilters(c, "id", "name", "label", "service", "node", "desired-state", "_up-to-date", "runtime")
	if !ok {
		return
	}
	q, err := s.resolveTaskFilters(ctx, f)
	if err != nil {
		writeError(c, err)
		return
	}
	tasks, err := s.cfg.Swarm.Tasks(ctx)
	if err != nil {
		writeError(c, err)
		return
	}
	services, err := s.cfg.Swarm.Services(ctx, false)
	if err != nil {
		writeError(c, err)
		return
	}
	byID := make(map[string]swarm.Service, len(services))
	for _, svc := range services {
		byID[svc.ID] = svc
	}
	out := make([]swarm.Task, 0, len(tasks))
	for _, t := range tasks {
		svc, ok := byID[t.ServiceID]
		if q.matches(t, svc, ok) {
			out = append(out, apiTask(t))
		}
	}
	respondJSON(c, http.StatusOK, out)
}

// apiTask is t as Docker shows it: a task's PortStatus lists only the ports it
// publishes on its node (host mode). shoal also keeps the service's ingress ports
// there, for the node that balances them; Docker shows those on the service's
// Endpoint only, and `docker service ps` would print them as the task's.
func apiTask(t swarm.Task) swarm.Task {
	var host []swarm.PortConfig
	for _, p := range t.Status.PortStatus.Ports {
		if p.PublishMode == swarm.PortConfigPublishModeHost {
			host = append(host, p)
		}
	}
	t.Status.PortStatus.Ports = host
	return t
}

// taskQuery is a task list filter with service and node names resolved to IDs.
type taskQuery struct {
	f        filters
	upToDate bool
}

// resolveTaskFilters turns the service and node filter values (IDs, ID prefixes or
// names: the CLI sends either) into IDs, checks desired states, and defaults the
// runtime filter to container tasks, as dockerd does.
func (s *Server) resolveTaskFilters(ctx context.Context, f filters) (taskQuery, error) {
	q := taskQuery{f: filters{}}
	for k, vs := range f {
		q.f[k] = append([]string(nil), vs...)
	}
	for i, v := range q.f["service"] {
		svc, err := s.cfg.Swarm.Service(ctx, v, false)
		if err != nil {
			return q, err
		}
		q.f["service"][i] = svc.ID
	}
	for i, v := range q.f["node"] {
		n, err := s.cfg.Swarm.Node(ctx, v)
		if err != nil {
			return q, err
		}
		q.f["node"][i] = n.ID
	}
	for i, v := range q.f["desired-state"] {
		state, ok := parseTaskState(v)
		if !ok {
			return q, badRequest(fmt.Sprintf("Invalid desired-state filter: '%s'", v))
		}
		q.f["desired-state"][i] = string(state)
	}
	if !q.f.has("runtime") {
		q.f["runtime"] = []string{string(swarm.RuntimeContainer)}
	}
	q.upToDate = len(f["_up-to-date"]) > 0
	return q, nil
}

func parseTaskState(v string) (swarm.TaskState, bool) {
	for _, s := range taskStates {
		if strings.EqualFold(v, string(s)) {
			return s, true
		}
	}
	return "", false
}

// matches reports whether task t (of service svc, if found) passes every filter.
// Labels are matched against the service's labels overlaid with the task's own, as
// swarm tasks carry their service's annotations.
func (q taskQuery) matches(t swarm.Task, svc swarm.Service, found bool) bool {
	labels := make(map[string]string, len(svc.Spec.Labels)+len(t.Labels))
	for k, v := range svc.Spec.Labels {
		labels[k] = v
	}
	for k, v := range t.Labels {
		labels[k] = v
	}
	return q.f.matchPrefix("id", t.ID) &&
		q.f.matchPrefix("name", taskName(t, svc)) &&
		q.f.matchLabels("label", labels) &&
		q.f.match("service", t.ServiceID) &&
		q.f.match("node", t.NodeID) &&
		q.f.match("desired-state", string(t.DesiredState)) &&
		q.f.match("runtime", taskRuntime(t.Spec)) &&
		(!q.upToDate || (found && taskUpToDate(t, svc)))
}

// taskName is the name docker shows for a task: its own name if it has one, else
// "<service>.<slot>.<task id>" (replicated) or "<service>.<node id>.<task id>" (global).
func taskName(t swarm.Task, svc swarm.Service) string {
	if t.Name != "" {
		return t.Name
	}
	slot := t.NodeID
	if t.Slot != 0 {
		slot = strconv.Itoa(t.Slot)
	}
	return svc.Spec.Name + "." + slot + "." + t.ID
}

// taskUpToDate reports whether t was made from svc's current spec: what the CLI's
// private "_up-to-date" filter asks while it waits for `docker service
// create/update` to converge. It is the orchestrator's own rule, so the CLI sees
// converged exactly when the rolling updater has nothing left to replace.
func taskUpToDate(t swarm.Task, svc swarm.Service) bool {
	return orchestrator.UpToDate(&t, &svc)
}

func (s *Server) inspectTask(c *gin.Context) {
	t, err := s.cfg.Swarm.Task(c.Request.Context(), c.Param("id"))
	if err != nil {
		writeError(c, err)
		return
	}
	respondJSON(c, http.StatusOK, apiTask(t))
}

func (s *Server) taskLogs(c *gin.Context) {
	q, err := parseLogQuery(c)
	if err != nil {
		writeError(c, err)
		return
	}
	ctx := c.Request.Context()
	t, err := s.cfg.Swarm.Task(ctx, c.Param("id"))
	if err != nil {
		writeError(c, err)
		return
	}
	msgs, err := s.cfg.Swarm.TaskLogs(ctx, t.ID, q.clusterOptions())
	if err != nil {
		writeError(c, err)
		return
	}
	cs := t.Spec.ContainerSpec
	streamSwarmLogs(c, msgs, q, cs != nil && cs.TTY)
}
