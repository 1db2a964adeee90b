package stackcmd

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/compose"
	"github.com/shoal-project/shoal/engineapi/client"
)

// Lister is the part of the Engine API that ls, services and ps read;
// *client.Client is one.
type Lister interface {
	Services(ctx context.Context, f client.Filters) ([]swarm.Service, error)
	ServicesWithStatus(ctx context.Context, f client.Filters) ([]swarm.Service, error)
	Tasks(ctx context.Context, f client.Filters) ([]swarm.Task, error)
	Nodes(ctx context.Context, f client.Filters) ([]swarm.Node, error)
}

// table writes rows in the docker CLI's table layout: columns at least 10
// wide, 3 spaces apart.
func table(w io.Writer, header string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
	fmt.Fprintln(tw, header)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

func stackFilter(name string) client.Filters {
	return client.Filters{"label": {compose.NamespaceLabel + "=" + name}}
}

// listStacks prints each stack (a namespace label on services) with how many
// services it has, by name, as `docker stack ls`.
func listStacks(ctx context.Context, eng Lister, w io.Writer) error {
	services, err := eng.Services(ctx, client.Filters{"label": {compose.NamespaceLabel}})
	if err != nil {
		return fmt.Errorf("list services: %w", err)
	}
	count := map[string]int{}
	for _, s := range services {
		count[s.Spec.Labels[compose.NamespaceLabel]]++
	}
	var rows [][]string
	for _, name := range slices.Sorted(maps.Keys(count)) {
		rows = append(rows, []string{name, fmt.Sprint(count[name])})
	}
	return table(w, "NAME\tSERVICES", rows)
}

// listServices prints the stack's services as `docker stack services`: a
// stack with none is said on stderr, and is no error.
func listServices(ctx context.Context, eng Lister, o Options, stdout, stderr io.Writer) error {
	services, err := eng.ServicesWithStatus(ctx, stackFilter(o.name))
	if err != nil {
		return fmt.Errorf("list services of stack %s: %w", o.name, err)
	}
	if len(services) == 0 {
		fmt.Fprintln(stderr, "Nothing found in stack:", o.name)
		return nil
	}
	slices.SortFunc(services, func(a, b swarm.Service) int { return cmp.Compare(a.Spec.Name, b.Spec.Name) })
	if o.quiet { // IDs cut to 12 characters, as the docker CLI's are
		for _, s := range services {
			fmt.Fprintln(stdout, shortID(s.ID))
		}
		return nil
	}
	rows := make([][]string, 0, len(services))
	for _, s := range services {
		var image string
		if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil {
			image = shortImage(cs.Image)
		}
		rows = append(rows, []string{shortID(s.ID), s.Spec.Name, modeName(s.Spec.Mode), replicas(s), image, servicePorts(s.Endpoint.Ports)})
	}
	return table(stdout, "ID\tNAME\tMODE\tREPLICAS\tIMAGE\tPORTS", rows)
}

// listTasks prints the stack's tasks as `docker stack ps`: by service and
// slot, the newest first, earlier ones of a slot indented under it.
func listTasks(ctx context.Context, eng Lister, o Options, w io.Writer) error {
	tasks, err := eng.Tasks(ctx, stackFilter(o.name))
	if err != nil {
		return fmt.Errorf("list tasks of stack %s: %w", o.name, err)
	}
	if len(tasks) == 0 {
		return fmt.Errorf("nothing found in stack: %s", o.name)
	}
	services, err := eng.Services(ctx, stackFilter(o.name))
	if err != nil {
		return fmt.Errorf("list services of stack %s: %w", o.name, err)
	}
	nodes, err := eng.Nodes(ctx, nil)
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	return writeTasks(w, tasks, services, nodes, o, time.Now())
}

// taskRow is a task with the names ps shows it by.
type taskRow struct {
	task    swarm.Task
	service string
	slot    string // the slot, or the node's ID for a global service's task
}

func writeTasks(w io.Writer, tasks []swarm.Task, services []swarm.Service, nodes []swarm.Node, o Options, now time.Time) error {
	serviceNames := map[string]string{}
	for _, s := range services {
		serviceNames[s.ID] = s.Spec.Name
	}
	nodeNames := map[string]string{}
	for _, n := range nodes {
		nodeNames[n.ID] = n.Description.Hostname
	}
	rows := make([]taskRow, 0, len(tasks))
	for _, t := range tasks {
		r := taskRow{task: t, service: cmp.Or(serviceNames[t.ServiceID], t.ServiceID), slot: t.NodeID}
		if t.Slot != 0 {
			r.slot = fmt.Sprint(t.Slot)
		}
		rows = append(rows, r)
	}
	slices.SortStableFunc(rows, func(a, b taskRow) int {
		return cmp.Or(cmp.Compare(a.service, b.service), compareSlots(a.slot, b.slot),
			b.task.CreatedAt.Compare(a.task.CreatedAt))
	})
	if o.quiet {
		for _, r := range rows {
			if o.noTrunc {
				fmt.Fprintln(w, r.task.ID)
			} else {
				fmt.Fprintln(w, shortID(r.task.ID))
			}
		}
		return nil
	}
	out := make([][]string, 0, len(rows))
	prev := ""
	for _, r := range rows {
		t := r.task
		name := r.service + "." + r.slot
		shown := name
		if name == prev {
			shown = ` \_ ` + name
		}
		prev = name
		id, image, taskErr := shortID(t.ID), "", t.Status.Err
		if t.Spec.ContainerSpec != nil {
			image = shortImage(t.Spec.ContainerSpec.Image)
		}
		if o.noTrunc {
			id = t.ID
			if t.Spec.ContainerSpec != nil {
				image = t.Spec.ContainerSpec.Image
			}
		} else {
			taskErr = ellipsis(taskErr, 30)
		}
		if taskErr != "" {
			taskErr = `"` + taskErr + `"`
		}
		state := fmt.Sprintf("%s %s ago", pretty(string(t.Status.State)), strings.ToLower(units.HumanDuration(now.Sub(t.Status.Timestamp))))
		out = append(out, []string{id, shown, image, nodeNames[t.NodeID], pretty(string(t.DesiredState)), state, taskErr, taskPorts(t.Status.PortStatus.Ports)})
	}
	return table(w, "ID\tNAME\tIMAGE\tNODE\tDESIRED STATE\tCURRENT STATE\tERROR\tPORTS", out)
}

// compareSlots orders slots by number, node IDs (global tasks) by text.
func compareSlots(a, b string) int {
	var x, y int
	_, errA := fmt.Sscan(a, &x)
	_, errB := fmt.Sscan(b, &y)
	if errA == nil && errB == nil {
		return cmp.Compare(x, y)
	}
	return cmp.Compare(a, b)
}

func modeName(m swarm.ServiceMode) string {
	switch {
	case m.Global != nil:
		return "global"
	case m.Replicated != nil:
		return "replicated"
	case m.ReplicatedJob != nil:
		return "replicated job"
	case m.GlobalJob != nil:
		return "global job"
	}
	return ""
}

// replicas is "running/desired", with the jobs' progress or the replicated
// services' per-node maximum, as `docker service ls` shows them.
func replicas(s swarm.Service) string {
	var running, desired, completed uint64
	if st := s.ServiceStatus; st != nil {
		running, desired, completed = st.RunningTasks, st.DesiredTasks, st.CompletedTasks
	}
	m := s.Spec.Mode
	switch {
	case m.ReplicatedJob != nil && m.ReplicatedJob.TotalCompletions != nil:
		return fmt.Sprintf("%d/%d (%d/%d completed)", running, desired, completed, *m.ReplicatedJob.TotalCompletions)
	case m.GlobalJob != nil:
		return fmt.Sprintf("%d/%d (%d/%d completed)", running, desired, completed, desired+completed)
	case m.Replicated != nil && s.Spec.TaskTemplate.Placement != nil && s.Spec.TaskTemplate.Placement.MaxReplicas > 0:
		return fmt.Sprintf("%d/%d (max %d per node)", running, desired, s.Spec.TaskTemplate.Placement.MaxReplicas)
	}
	return fmt.Sprintf("%d/%d", running, desired)
}

// shortImage drops a pinned image's digest for display, keeping its tag.
func shortImage(image string) string {
	ref, err := reference.ParseNormalizedNamed(image)
	if err != nil {
		return image
	}
	if nt, ok := ref.(reference.NamedTagged); ok {
		if t, err := reference.WithTag(reference.TrimNamed(nt), nt.Tag()); err == nil {
			return reference.FamiliarString(t)
		}
	}
	return image
}

// servicePorts are the ports published on the ingress network, sorted by
// protocol and published port, as the docker CLI shows them: ports that
// follow each other on both sides, or several published ports onto one
// target, are one range (*:8080-8081->80-81/tcp, *:8080-8081->80/tcp).
func servicePorts(ports []swarm.PortConfig) string {
	ports = slices.Clone(ports)
	slices.SortFunc(ports, func(a, b swarm.PortConfig) int {
		return cmp.Or(cmp.Compare(a.Protocol, b.Protocol), cmp.Compare(a.PublishedPort, b.PublishedPort))
	})
	type portRange struct {
		pubFrom, pubTo, tgtFrom, tgtTo uint32
		proto                          network.IPProtocol
	}
	var ranges []portRange
	for _, p := range ports {
		if p.PublishMode != swarm.PortConfigPublishModeIngress {
			continue
		}
		if n := len(ranges); n > 0 {
			r := &ranges[n-1]
			step := func(to, next uint32) bool { return next == to || next == to+1 }
			targetsRange := r.tgtTo > r.tgtFrom
			if p.Protocol == r.proto && step(r.pubTo, p.PublishedPort) && step(r.tgtTo, p.TargetPort) &&
				!(targetsRange && p.TargetPort <= r.tgtTo) {
				r.pubTo, r.tgtTo = p.PublishedPort, p.TargetPort
				continue
			}
		}
		ranges = append(ranges, portRange{p.PublishedPort, p.PublishedPort, p.TargetPort, p.TargetPort, p.Protocol})
	}
	span := func(from, to uint32) string {
		if to > from {
			return fmt.Sprintf("%d-%d", from, to)
		}
		return fmt.Sprint(from)
	}
	out := make([]string, 0, len(ranges))
	for _, r := range ranges {
		out = append(out, fmt.Sprintf("*:%s->%s/%s", span(r.pubFrom, r.pubTo), span(r.tgtFrom, r.tgtTo), r.proto))
	}
	return strings.Join(out, ", ")
}

// taskPorts are a task's host-mode ports.
func taskPorts(ports []swarm.PortConfig) string {
	out := make([]string, 0, len(ports))
	for _, p := range ports {
		out = append(out, fmt.Sprintf("*:%d->%d/%s", p.PublishedPort, p.TargetPort, p.Protocol))
	}
	return strings.Join(out, ",")
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// pretty is a state as the docker CLI shows it: "running" is "Running".
func pretty(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// ellipsis cuts s to max runes, the last one "…".
func ellipsis(s string, max int) string {
	r := []rune(s)
	if len(r) <= max {
		return s
	}
	return string(r[:max-1]) + "…"
}
