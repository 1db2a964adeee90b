package store_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/moby/moby/api/types/swarm"
	"github.com/shoal-project/shoal/cluster/store"
)

// A single-node swarm: open, bootstrap, write a service, read it back.
func Example() {
	dir, err := os.MkdirTemp("", "store-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	s, err := store.Open(ctx, store.Config{Dir: dir, NodeID: store.NewID()})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if err := s.Bootstrap(ctx); err != nil {
		log.Fatal(err)
	}
	if err := s.WaitLeader(ctx); err != nil {
		log.Fatal(err)
	}

	svc := &swarm.Service{ID: store.NewID()}
	svc.Spec.Name = "web"
	err = s.Update(ctx, func(tx store.Tx) error { return tx.CreateService(svc) })
	if err != nil {
		log.Fatal(err)
	}
	err = s.View(func(tx store.ReadTx) error {
		got, err := tx.ServiceByName("web")
		if err != nil {
			return err
		}
		fmt.Println(got.Spec.Name, got.ID == svc.ID, got.Version.Index == svc.Version.Index)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output: web true true
}
