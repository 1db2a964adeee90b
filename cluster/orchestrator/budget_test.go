package orchestrator

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/store"
)

// entrySizes creates spec and counts, per store entry (Raft index), the tasks
// created and their encoded bytes, until want tasks exist.
func (l *lab) entrySizes(spec swarm.ServiceSpec, want int) (counts, bytes map[uint64]int) {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(l.ctx, 60*time.Second)
	defer cancel()
	events := l.store.Watch(ctx, store.KindTask)
	l.createService(spec)
	counts, bytes = map[uint64]int{}, map[uint64]int{}
	for n := 0; n < want; {
		select {
		case ev := <-events:
			if ev.Action == store.ActionCreate {
				counts[ev.Index]++
				bytes[ev.Index] += encodedSize(ev.Object)
				n++
			}
		case <-ctx.Done():
			l.t.Fatalf("%d of %d tasks created", n, want)
		}
	}
	return counts, bytes
}

// Thousands of replicas are created in bounded store entries, not in one.
func TestManyReplicasAreCreatedInBoundedEntries(t *testing.T) {
	l := newLab(t)
	counts, _ := l.entrySizes(replicated(2000), 2000)
	if len(counts) < 2000/maxWritesPerEntry {
		t.Errorf("2000 tasks created in %d entries", len(counts))
	}
	for index, n := range counts {
		if n > maxWritesPerEntry {
			t.Errorf("entry %d created %d tasks, more than %d", index, n, maxWritesPerEntry)
		}
	}
}

// Large task templates make entries of fewer tasks: an entry stays within its
// byte bound (one task may always be written).
func TestLargeTemplatesMakeSmallEntries(t *testing.T) {
	l := newLab(t)
	spec := replicated(12)
	spec.TaskTemplate.ContainerSpec.Env = []string{"BIG=" + strings.Repeat("x", 200<<10)}
	_, bytes := l.entrySizes(spec, 12)
	for index, n := range bytes {
		if n > maxBytesPerEntry {
			t.Errorf("entry %d holds %d bytes of tasks, more than %d", index, n, maxBytesPerEntry)
		}
	}
}

// A service stored with more replicas than MaxReplicas (by an older shoal) gets
// MaxReplicas tasks and no more, so a restart does not exhaust memory.
func TestStoredReplicasAreBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("creates MaxReplicas tasks")
	}
	l := newLab(t)
	spec := replicated(1<<64 - 1)
	id := l.createService(spec)
	l.waitTasksFor(id, 60*time.Second, "MaxReplicas tasks", func(ts []*swarm.Task) bool { return len(ts) == MaxReplicas })
	time.Sleep(200 * time.Millisecond) // give a task past the bound the chance to appear
	if n := len(l.tasks(id)); n != MaxReplicas {
		t.Fatalf("%d tasks, want %d", n, MaxReplicas)
	}
}
