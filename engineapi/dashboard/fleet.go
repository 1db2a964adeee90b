package dashboard

import (
	"cmp"
	"slices"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/swarm"
)

// Fleet is what the page shows: the swarm's nodes, each with its tasks, and its
// services. Error says why there is nothing to show (not a swarm manager, say).
type Fleet struct {
	Error    string    `json:"error,omitempty"`
	Nodes    []Node    `json:"nodes"`
	Services []Service `json:"services"`
	Time     time.Time `json:"time"`
}

// Node is one node with its health and its load: the tasks it runs and what
// they reserve of its CPUs and memory.
type Node struct {
	ID           string  `json:"id"`
	Hostname     string  `json:"hostname"`
	Role         string  `json:"role"`
	State        string  `json:"state"`
	Availability string  `json:"availability"`
	Manager      string  `json:"manager,omitempty"` // leader, reachable, unreachable
	Addr         string  `json:"addr"`
	CPUs         float64 `json:"cpus"`
	MemoryBytes  int64   `json:"memoryBytes"`
	ReservedCPUs float64 `json:"reservedCpus"`
	ReservedMem  int64   `json:"reservedMemoryBytes"`
	Running      int     `json:"running"`
	Tasks        []Task  `json:"tasks"`
}

// Service is one service with its replicas and the progress of its update.
type Service struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Image   string `json:"image"`
	Mode    string `json:"mode"`
	Running uint64 `json:"running"`
	Desired uint64 `json:"desired"`
	// Updated counts the tasks meant to run that run the service's current
	// image: an update's progress, Desired of Desired once done.
	Updated       int    `json:"updated"`
	UpdateState   string `json:"updateState,omitempty"`
	UpdateMessage string `json:"updateMessage,omitempty"`
}

// Task is one task meant to run, or that ran and is not yet shut down.
type Task struct {
	ID      string `json:"id"`
	Name    string `json:"name"` // service.slot, as docker service ps
	Service string `json:"service"`
	Image   string `json:"image"`
	State   string `json:"state"`
	Desired string `json:"desired"`
	Message string `json:"message,omitempty"`
}

// load is what a node's running tasks are and reserve.
type load struct {
	running int
	cpus    float64
	memory  int64
}

// assemble joins the API's nodes, services and tasks into a Fleet: a pure
// function, so that what the page shows is tested without a daemon.
func assemble(nodes []swarm.Node, services []swarm.Service, tasks []swarm.Task, now time.Time) Fleet {
	f := Fleet{Nodes: []Node{}, Services: []Service{}, Time: now}
	names := map[string]string{}
	images := map[string]string{}
	updated := map[string]int{}
	for _, s := range services {
		names[s.ID] = s.Spec.Name
		if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil {
			images[s.ID] = cs.Image
		}
	}
	byNode := map[string][]Task{}
	loads := map[string]*load{}
	for _, t := range tasks {
		if t.Status.State == swarm.TaskStateRunning {
			l := loads[t.NodeID]
			if l == nil {
				l = &load{}
				loads[t.NodeID] = l
			}
			l.running++
			if r := t.Spec.Resources; r != nil && r.Reservations != nil {
				l.cpus += float64(r.Reservations.NanoCPUs) / 1e9
				l.memory += r.Reservations.MemoryBytes
			}
		}
		if t.DesiredState == swarm.TaskStateShutdown && t.Status.State != swarm.TaskStateRunning {
			continue
		}
		image := ""
		if t.Spec.ContainerSpec != nil {
			image = t.Spec.ContainerSpec.Image
		}
		if t.DesiredState == swarm.TaskStateRunning && image == images[t.ServiceID] {
			updated[t.ServiceID]++
		}
		byNode[t.NodeID] = append(byNode[t.NodeID], Task{
			ID: t.ID, Name: taskName(names[t.ServiceID], t), Service: names[t.ServiceID], Image: image,
			State: string(t.Status.State), Desired: string(t.DesiredState), Message: cmp.Or(t.Status.Err, t.Status.Message),
		})
	}
	for _, n := range nodes {
		f.Nodes = append(f.Nodes, node(n, byNode[n.ID], loads[n.ID]))
	}
	slices.SortFunc(f.Nodes, func(a, b Node) int { return cmp.Compare(a.Hostname, b.Hostname) })
	for _, s := range services {
		f.Services = append(f.Services, service(s, images[s.ID], updated[s.ID]))
	}
	slices.SortFunc(f.Services, func(a, b Service) int { return cmp.Compare(a.Name, b.Name) })
	return f
}

// node is one node of the fleet, with its tasks and the load of its running ones.
func node(n swarm.Node, tasks []Task, l *load) Node {
	out := Node{
		ID: n.ID, Hostname: n.Description.Hostname, Role: string(n.Spec.Role), State: string(n.Status.State),
		Availability: string(n.Spec.Availability), Addr: n.Status.Addr,
		CPUs: float64(n.Description.Resources.NanoCPUs) / 1e9, MemoryBytes: n.Description.Resources.MemoryBytes,
		Tasks: tasks,
	}
	if l != nil {
		out.Running, out.ReservedCPUs, out.ReservedMem = l.running, l.cpus, l.memory
	}
	if out.Tasks == nil {
		out.Tasks = []Task{}
	}
	if m := n.ManagerStatus; m != nil {
		out.Manager = string(m.Reachability)
		if m.Leader {
			out.Manager = "leader"
		}
	}
	slices.SortFunc(out.Tasks, func(a, b Task) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// service is one service of the fleet.
func service(s swarm.Service, image string, updated int) Service {
	out := Service{ID: s.ID, Name: s.Spec.Name, Image: image, Mode: mode(s.Spec.Mode), Updated: updated}
	if st := s.ServiceStatus; st != nil {
		out.Running, out.Desired = st.RunningTasks, st.DesiredTasks
	}
	if u := s.UpdateStatus; u != nil {
		out.UpdateState, out.UpdateMessage = string(u.State), u.Message
	}
	return out
}

func mode(m swarm.ServiceMode) string {
	switch {
	case m.Global != nil:
		return "global"
	case m.ReplicatedJob != nil:
		return "replicated job"
	case m.GlobalJob != nil:
		return "global job"
	}
	return "replicated"
}

// taskName is a task's name as docker service ps shows it: service.slot, or
// service.node for a global service's.
func taskName(service string, t swarm.Task) string {
	if t.Slot > 0 {
		return service + "." + strconv.Itoa(t.Slot)
	}
	return service + "." + t.NodeID
}
