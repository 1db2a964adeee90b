package dispatcher

import (
	"context"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/session"
	"github.com/shoal-project/shoal/cluster/store"
	"github.com/shoal-project/shoal/cluster/taskstate"
)

// overlaySettle is how long the overlay feed lets a burst of changes gather
// before it sends one view: short against the second a stopped task has to
// leave its service's balancing, long against a burst of task reports.
const overlaySettle = 100 * time.Millisecond

// overlayFeed keeps the current overlay view and wakes the sessions that send
// it when it changes. One goroutine (run) rebuilds it from the store; it costs
// a read of the networks, services and tasks per settled change, not per
// session.
type overlayFeed struct {
	mu      sync.Mutex
	view    *session.Overlay
	changed chan struct{} // closed and replaced when view changes
}

func newOverlayFeed() *overlayFeed { return &overlayFeed{changed: make(chan struct{})} }

// current is the view (nil before the first build) and a channel closed at the
// next change.
func (f *overlayFeed) current() (*session.Overlay, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.view, f.changed
}

// publish installs v if it differs from the current view.
func (f *overlayFeed) publish(v *session.Overlay) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.view != nil && sameOverlay(f.view, v) {
		return
	}
	if f.view != nil {
		v.Version = f.view.Version + 1
	} else {
		v.Version = uint64(time.Now().UnixNano()) // a new leader's views still grow
	}
	f.view = v
	close(f.changed)
	f.changed = make(chan struct{})
}

func sameOverlay(a, b *session.Overlay) bool {
	x, y := *a, *b
	x.Version, y.Version = 0, 0
	return reflect.DeepEqual(x, y)
}

// run rebuilds the view whenever networks, services or tasks change, until ctx
// is done.
func (f *overlayFeed) run(ctx context.Context, st *store.Store, log *slog.Logger) {
	var events <-chan store.Event
	build := func() {
		var v *session.Overlay
		read := func(tx store.ReadTx) error {
			var err error
			v, err = readOverlay(tx)
			return err
		}
		var err error
		if events == nil {
			events, err = st.ViewAndWatch(ctx, read, store.KindNetwork, store.KindService, store.KindTask, store.KindPeer, store.KindNode)
		} else {
			err = st.View(read)
		}
		if err != nil {
			log.Warn("overlay view", "err", err)
			return
		}
		f.publish(v)
	}
	build()
	if events == nil {
		return
	}
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	pending := false
	for {
		select {
		case <-ctx.Done():
			settle.Stop()
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			if !pending && overlayRelevant(ev) {
				pending = true
				settle.Reset(overlaySettle)
			}
		case <-settle.C:
			pending = false
			build()
		}
	}
}

// overlayRelevant reports whether a change can change the view: any network or
// service change; a task's allocation, node, or whether it runs.
func overlayRelevant(ev store.Event) bool {
	t, ok := ev.Object.(*swarm.Task)
	if !ok {
		return true
	}
	old, _ := ev.Old.(*swarm.Task)
	if old == nil || ev.Action == store.ActionRemove {
		return len(t.NetworksAttachments) > 0
	}
	return len(t.NetworksAttachments) != len(old.NetworksAttachments) || t.NodeID != old.NodeID ||
		taskRunning(t) != taskRunning(old) || holds(t) != holds(old)
}

func taskRunning(t *swarm.Task) bool {
	return t.Status.State == swarm.TaskStateRunning && t.DesiredState == swarm.TaskStateRunning
}

func holds(t *swarm.Task) bool { return !taskstate.Terminal(t.Status.State) }

// readOverlay is the view of the store: every overlay network, the services
// attached to one, and the tasks that hold an address.
func readOverlay(tx store.ReadTx) (*session.Overlay, error) {
	v := &session.Overlay{}
	networks, err := tx.Networks()
	if err != nil {
		return nil, err
	}
	for _, n := range networks {
		on := session.OverlayNetwork{ID: n.ID, Name: n.Spec.Name, Internal: n.Spec.Internal, Ingress: n.Spec.Ingress,
			Attachable: n.Spec.Attachable, Labels: n.Spec.Labels, Created: n.CreatedAt}
		if n.IPAMOptions != nil && len(n.IPAMOptions.Configs) > 0 {
			on.Subnet, on.Gateway = n.IPAMOptions.Configs[0].Subnet, n.IPAMOptions.Configs[0].Gateway
		}
		if n.Spec.DriverConfiguration != nil && len(n.Spec.DriverConfiguration.Options) > 0 {
			on.Options = n.Spec.DriverConfiguration.Options
		}
		v.Networks = append(v.Networks, on)
	}
	services, err := tx.Services()
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	for _, s := range services {
		if ep, ok := serviceEndpoint(s); ok {
			v.Services = append(v.Services, ep)
			names[s.ID] = true
		}
	}
	tasks, err := tx.Tasks()
	if err != nil {
		return nil, err
	}
	for _, t := range tasks {
		if !holds(t) || len(t.NetworksAttachments) == 0 || t.NodeID == "" {
			continue
		}
		te := session.TaskEndpoint{ID: t.ID, ServiceID: t.ServiceID, NodeID: t.NodeID, Slot: t.Slot, Running: taskRunning(t), Addrs: map[string]netip.Addr{}}
		for _, na := range t.NetworksAttachments {
			if len(na.Addresses) > 0 {
				te.Addrs[na.Network.ID] = na.Addresses[0].Addr()
			}
		}
		v.Tasks = append(v.Tasks, te)
	}
	if v.Mesh, err = meshOf(tx); err != nil {
		return nil, err
	}
	slices.SortFunc(v.Networks, func(a, b session.OverlayNetwork) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(v.Services, func(a, b session.ServiceEndpoint) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(v.Tasks, func(a, b session.TaskEndpoint) int { return strings.Compare(a.ID, b.ID) })
	return v, nil
}

// serviceEndpoint is how a service is reached, if it joins an overlay network
// or publishes through the routing mesh.
func serviceEndpoint(s *swarm.Service) (session.ServiceEndpoint, bool) {
	ep := session.ServiceEndpoint{ID: s.ID, Name: s.Spec.Name, VIPs: map[string]netip.Addr{}, Aliases: map[string][]string{}}
	ep.DNSRR = s.Endpoint.Spec.Mode == swarm.ResolutionModeDNSRR ||
		(s.Spec.EndpointSpec != nil && s.Spec.EndpointSpec.Mode == swarm.ResolutionModeDNSRR)
	for _, vip := range s.Endpoint.VirtualIPs {
		if vip.Addr.IsValid() {
			ep.VIPs[vip.NetworkID] = vip.Addr.Addr()
		}
	}
	for _, na := range s.Spec.TaskTemplate.Networks {
		if len(na.Aliases) > 0 {
			ep.Aliases[na.Target] = na.Aliases
		}
	}
	for _, p := range s.Endpoint.Ports {
		if p.PublishMode != swarm.PortConfigPublishModeIngress || p.PublishedPort == 0 {
			continue
		}
		proto := string(p.Protocol)
		if proto == "" {
			proto = "tcp"
		}
		ep.Ports = append(ep.Ports, session.IngressPort{Protocol: proto, Published: uint16(p.PublishedPort), Target: uint16(p.TargetPort)})
	}
	ep.KeepClientSource = len(ep.Ports) > 0 && s.Spec.Labels[session.ClientSourceLabel] == session.ClientSourcePreserve
	return ep, len(s.Spec.TaskTemplate.Networks) > 0 || len(ep.VIPs) > 0 || len(ep.Ports) > 0
}
