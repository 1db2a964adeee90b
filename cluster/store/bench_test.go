package store

import (
	"context"
	"strconv"
	"testing"

	"github.com/moby/moby/api/types/swarm"
)

// BenchmarkUpdateTask measures one task status update through Raft: read,
// compare-and-set write, commit to the encrypted bolt log with fsync, apply.
func BenchmarkUpdateTask(b *testing.B) {
	s := newStore(b)
	tk := newTask(NewID(), NewID())
	update(b, s, func(tx Tx) error { return tx.CreateTask(tk) })
	ctx := context.Background()
	states := []swarm.TaskState{swarm.TaskStateRunning, swarm.TaskStateStarting}
	for i := 0; b.Loop(); i++ {
		err := s.Update(ctx, func(tx Tx) error {
			cur, err := tx.Task(tk.ID)
			if err != nil {
				return err
			}
			cur.Status.State = states[i%2]
			return tx.UpdateTask(cur)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUpdateTaskParallel measures the same update from concurrent
// writers, each on its own task, where Raft batches entries per fsync.
func BenchmarkUpdateTaskParallel(b *testing.B) {
	s := newStore(b)
	ctx := context.Background()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		tk := newTask(NewID(), NewID())
		if err := s.Update(ctx, func(tx Tx) error { return tx.CreateTask(tk) }); err != nil {
			b.Error(err)
			return
		}
		for pb.Next() {
			tk.Status.Message = "tick"
			if err := s.Update(ctx, func(tx Tx) error { return tx.UpdateTask(tk) }); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkForwardedWrite is a write through a follower of three members on
// an in-memory network, until the follower has applied it: what a `docker
// service update` on a follower waits for.
func BenchmarkForwardedWrite(b *testing.B) {
	_, followers := threeManagers(b)
	svc := newService("fwd")
	update(b, followers[0], func(tx Tx) error { return tx.CreateService(svc) })
	b.ResetTimer()
	for i := range b.N {
		svc.Spec.Labels = map[string]string{"i": strconv.Itoa(i)}
		update(b, followers[0], func(tx Tx) error { return tx.UpdateService(svc) })
	}
}
