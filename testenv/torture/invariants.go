package torture

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/testenv"
)

// Labels the agent puts on task containers.
const (
	labelTaskID    = "com.docker.swarm.task.id"
	labelServiceID = "com.docker.swarm.service.id"
)

// snapshot is what the daemon says at one moment.
type snapshot struct {
	services   []swarm.Service
	tasks      []swarm.Task
	containers []ctypes.Summary
}

func takeSnapshot(ctx context.Context, c *client) (snapshot, error) {
	var s snapshot
	var err error
	if s.services, err = c.services(ctx); err != nil {
		return s, fmt.Errorf("list services: %w", err)
	}
	if s.tasks, err = c.tasks(ctx); err != nil {
		return s, fmt.Errorf("list tasks: %w", err)
	}
	if s.containers, err = c.containers(ctx); err != nil {
		return s, fmt.Errorf("list containers: %w", err)
	}
	return s, nil
}

// unconverged lists what keeps the node from its desired state: a service
// without its replicas running from its current spec, a slot running two
// tasks, a task running that should not, a container stuck `created` or
// belonging to no task.
func (s snapshot) unconverged() []string {
	var bad []string
	tasks := map[string]swarm.Task{}
	for _, t := range s.tasks {
		tasks[t.ID] = t
	}
	for _, svc := range s.services {
		want := replicasOf(svc.Spec)
		env := envOf(svc.Spec)
		slots := map[int]int{}
		current := 0
		for _, t := range s.tasks {
			if t.ServiceID != svc.ID || t.Status.State != swarm.TaskStateRunning {
				continue
			}
			slots[t.Slot]++
			if t.DesiredState != swarm.TaskStateRunning {
				bad = append(bad, fmt.Sprintf("task %s of %s: running, desired %s", t.ID, svc.Spec.Name, t.DesiredState))
				continue
			}
			if t.Spec.ContainerSpec == nil || envOf(swarm.ServiceSpec{TaskTemplate: t.Spec}) != env {
				bad = append(bad, fmt.Sprintf("task %s of %s: running from an old spec", t.ID, svc.Spec.Name))
				continue
			}
			current++
		}
		for slot, n := range slots {
			if n > 1 {
				bad = append(bad, fmt.Sprintf("service %s slot %d: %d tasks running", svc.Spec.Name, slot, n))
			}
		}
		if uint64(current) != want {
			update := ""
			if us := svc.UpdateStatus; us != nil {
				update = fmt.Sprintf(" (update %s: %s)", us.State, us.Message)
			}
			bad = append(bad, fmt.Sprintf("service %s: %d of %d tasks running%s%s", svc.Spec.Name, current, want, update, s.taskStates(svc.ID)))
		}
	}
	for _, c := range s.containers {
		t, ok := tasks[c.Labels[labelTaskID]]
		switch {
		case !ok:
			bad = append(bad, fmt.Sprintf("container %s (%s): no such task %q", c.ID[:12], c.State, c.Labels[labelTaskID]))
		case c.State == ctypes.StateCreated:
			bad = append(bad, fmt.Sprintf("container %s of task %s: created, never started (task %s, desired %s)", c.ID[:12], t.ID, t.Status.State, t.DesiredState))
		case c.State == ctypes.StateRunning && t.DesiredState != swarm.TaskStateRunning:
			bad = append(bad, fmt.Sprintf("container %s of task %s: running, task desired %s", c.ID[:12], t.ID, t.DesiredState))
		}
	}
	sort.Strings(bad)
	return bad
}

// taskStates describes a service's tasks that are desired running or have
// not ended, with their desired and observed states.
func (s snapshot) taskStates(serviceID string) string {
	var b strings.Builder
	for _, t := range s.tasks {
		if t.ServiceID == serviceID && (t.DesiredState == swarm.TaskStateRunning || !terminalState(t.Status.State)) {
			fmt.Fprintf(&b, " [%s slot %d desired %s, %s %s]", t.ID, t.Slot, t.DesiredState, t.Status.State, t.Status.Err)
		}
	}
	return b.String()
}

// converge waits up to bound for the node to reach its desired state with
// nothing left over on the host, and returns what still kept it from it then
// (nothing once it did).
func converge(ctx context.Context, c *client, m *testenv.Machine, bound time.Duration) (snapshot, []string) {
	deadline := time.Now().Add(bound)
	for {
		s, err := takeSnapshot(ctx, c)
		var bad []string
		if err != nil {
			bad = []string{err.Error()}
		} else if bad = append(s.unconverged(), leftovers(ctx, m, s)...); len(bad) == 0 {
			return s, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return s, append([]string{fmt.Sprintf("not converged within %s:", bound)}, bad...)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// leftovers lists what the node holds on the host that no live task owns: a
// runtime state directory, cgroup or rootfs mount of a container that is not
// running, a network namespace or veth of a task that is not to run.
func leftovers(ctx context.Context, m *testenv.Machine, s snapshot) []string {
	running, live := map[string]bool{}, map[string]bool{}
	for _, c := range s.containers {
		if c.State == ctypes.StateRunning || c.State == ctypes.StatePaused {
			running[c.ID] = true
		}
	}
	for _, t := range s.tasks {
		if t.DesiredState == swarm.TaskStateRunning && !terminalState(t.Status.State) {
			live[t.ID] = true
		}
	}
	var bad []string
	for _, id := range runtimeStateDirs(m) {
		if !running[id] {
			bad = append(bad, "runtime state dir of a container not running: "+id)
		}
	}
	for _, dir := range containerCgroups(m) {
		if !running[filepath.Base(dir)] {
			bad = append(bad, "cgroup of a container not running: "+dir)
		}
	}
	points, types := mountsUnder(m.Dir)
	for i, p := range points {
		switch {
		case types[i] == "overlay" && strings.HasPrefix(p, filepath.Join(m.DataRoot, "containers")+"/"):
			if id := filepath.Base(filepath.Dir(p)); !running[id] {
				bad = append(bad, "rootfs mount of a container not running: "+p)
			}
		case types[i] == "nsfs" && filepath.Dir(p) == filepath.Join(m.ExecRoot, "netns"):
			if !live[filepath.Base(p)] {
				bad = append(bad, "network namespace of a task that is not to run: "+p)
			}
		default:
			bad = append(bad, fmt.Sprintf("unexpected mount %s (%s)", p, types[i]))
		}
	}
	sandboxes, err := bridgeSandboxes(m)
	if err != nil {
		return append(bad, err.Error())
	}
	tasks := map[string]swarm.Task{}
	for _, t := range s.tasks {
		tasks[t.ID] = t
	}
	for task := range sandboxes {
		if !live[task] {
			t, ok := tasks[task]
			state := "no such task"
			if ok {
				state = fmt.Sprintf("task %s, desired %s, %q", t.Status.State, t.DesiredState, t.Status.Err)
			}
			bad = append(bad, fmt.Sprintf("network sandbox of a task that is not to run: %s (%s)", task, state))
		}
	}
	veths, err := hostVeths(ctx, m)
	if err != nil {
		return append(bad, err.Error())
	}
	owned := map[string]bool{}
	for _, v := range sandboxes {
		owned[v] = true
	}
	for _, v := range veths {
		if !owned[v] {
			bad = append(bad, "veth of no sandbox: "+v)
		}
	}
	sort.Strings(bad)
	return bad
}

// terminalState reports whether a task in state s has ended.
func terminalState(s swarm.TaskState) bool {
	switch s {
	case swarm.TaskStateComplete, swarm.TaskStateShutdown, swarm.TaskStateFailed,
		swarm.TaskStateRejected, swarm.TaskStateRemove, swarm.TaskStateOrphaned:
		return true
	}
	return false
}

// runtimeStateDirs lists the containers with libcontainer state.
func runtimeStateDirs(m *testenv.Machine) []string {
	entries, _ := os.ReadDir(filepath.Join(m.ExecRoot, "runc"))
	var ids []string
	for _, e := range entries {
		ids = append(ids, e.Name())
	}
	return ids
}

// containerCgroups lists the containers' cgroups under the node's cgroup
// parent, in every hierarchy.
func containerCgroups(m *testenv.Machine) []string {
	v1, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", m.CgroupParent, "*"))
	v2, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", m.CgroupParent, "*"))
	var dirs []string
	for _, d := range append(v1, v2...) {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			dirs = append(dirs, d)
		}
	}
	return dirs
}

// mountsUnder lists the mount points at or below dir with their filesystem types.
func mountsUnder(dir string) (points, fstypes []string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := fields[4]
		if mp != dir && !strings.HasPrefix(mp, dir+"/") {
			continue
		}
		fstype := ""
		for i, f := range fields {
			if f == "-" && i+1 < len(fields) {
				fstype = fields[i+1]
				break
			}
		}
		points, fstypes = append(points, mp), append(fstypes, fstype)
	}
	return points, fstypes
}

// bridgeSandboxes maps task IDs to the host veths the node's bridge state
// records for them.
func bridgeSandboxes(m *testenv.Machine) (map[string]string, error) {
	files, _ := filepath.Glob(filepath.Join(m.DataRoot, "network", "*.json"))
	out := map[string]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read bridge state: %w", err)
		}
		var st struct {
			Sandboxes map[string]struct {
				HostVeth string `json:"hostVeth"`
			} `json:"sandboxes"`
		}
		if err := json.Unmarshal(data, &st); err != nil {
			return nil, fmt.Errorf("decode bridge state %s: %w", f, err)
		}
		for id, sb := range st.Sandboxes {
			out[id] = sb.HostVeth
		}
	}
	return out, nil
}

// hostVeths lists the veths in the node's network namespace.
func hostVeths(ctx context.Context, m *testenv.Machine) ([]string, error) {
	out, err := m.Command(ctx, "ip", "-o", "link", "show", "type", "veth").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("list veths: %v: %s", err, out)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		// "12: shoal0-abc@if2: <...>"
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(fields[1], ":"), "@")
		names = append(names, name)
	}
	return names, nil
}
