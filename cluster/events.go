package cluster

import (
	"context"
	"reflect"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/store"
)

// Events streams swarm object events (services, nodes, secrets, configs, networks)
// as `docker events` shows them, until ctx is done. Before init it streams nothing.
func (c *Cluster) Events(ctx context.Context) <-chan events.Message {
	out := make(chan events.Message, 64)
	s, _, err := c.active()
	if err != nil {
		close(out)
		return out
	}
	feed := s.Watch(ctx, store.KindService, store.KindNode, store.KindSecret, store.KindConfig, store.KindNetwork)
	go func() {
		defer close(out)
		for ev := range feed {
			msg, ok := eventMessage(ev)
			if !ok {
				continue
			}
			select {
			case out <- msg:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// eventMessage translates a store change into a Docker event.
func eventMessage(ev store.Event) (events.Message, bool) {
	now := time.Now()
	msg := events.Message{
		Action:   events.Action(ev.Action),
		Actor:    events.Actor{ID: ev.ID, Attributes: map[string]string{}},
		Scope:    "swarm",
		Time:     now.Unix(),
		TimeNano: now.UnixNano(),
	}
	switch o := ev.Object.(type) {
	case *swarm.Service:
		msg.Type = events.ServiceEventType
		msg.Actor.Attributes["name"] = o.Spec.Name
		if old, ok := ev.Old.(*swarm.Service); ok {
			addServiceChanges(msg.Actor.Attributes, old, o)
		}
	case *swarm.Node:
		msg.Type = events.NodeEventType
		msg.Actor.Attributes["name"] = o.Description.Hostname
		if old, ok := ev.Old.(*swarm.Node); ok {
			if old.Spec.Availability != o.Spec.Availability {
				msg.Actor.Attributes["availability.old"] = string(old.Spec.Availability)
				msg.Actor.Attributes["availability.new"] = string(o.Spec.Availability)
			}
			if old.Status.State != o.Status.State {
				msg.Actor.Attributes["state.old"] = string(old.Status.State)
				msg.Actor.Attributes["state.new"] = string(o.Status.State)
			}
		}
	case *swarm.Secret:
		msg.Type = events.SecretEventType
		msg.Actor.Attributes["name"] = o.Spec.Name
	case *swarm.Config:
		msg.Type = events.ConfigEventType
		msg.Actor.Attributes["name"] = o.Spec.Name
	case *swarm.Network:
		if old, ok := ev.Old.(*swarm.Network); ok && reflect.DeepEqual(old.Spec, o.Spec) {
			// Only its version moved: an address was taken from it (claimAddresses).
			return msg, false
		}
		msg.Type = events.NetworkEventType
		msg.Actor.Attributes["name"] = o.Spec.Name
	default:
		return msg, false
	}
	return msg, true
}

// addServiceChanges names what an update changed, as Docker's service events do.
func addServiceChanges(attrs map[string]string, old, cur *swarm.Service) {
	if oi, ni := imageOf(old), imageOf(cur); oi != ni {
		attrs["image.old"], attrs["image.new"] = oi, ni
	}
	if or, nr := replicasOf(old), replicasOf(cur); or != nr {
		attrs["replicas.old"], attrs["replicas.new"] = or, nr
	}
	var os, ns string
	if old.UpdateStatus != nil {
		os = string(old.UpdateStatus.State)
	}
	if cur.UpdateStatus != nil {
		ns = string(cur.UpdateStatus.State)
	}
	if os != ns {
		attrs["updatestate.old"], attrs["updatestate.new"] = os, ns
	}
}

func imageOf(s *swarm.Service) string {
	if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil {
		return cs.Image
	}
	return ""
}

func replicasOf(s *swarm.Service) string {
	if r := s.Spec.Mode.Replicated; r != nil && r.Replicas != nil {
		return strconv.FormatUint(*r.Replicas, 10)
	}
	return ""
}
