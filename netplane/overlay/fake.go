package overlay

import (
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync"
)

// Fake is an in-memory Plane for unit tests of its users (the agent): it
// checks and records what it is asked, as a Plane would take it, and touches
// no kernel. The zero value is ready to use.
type Fake struct {
	mu        sync.Mutex
	endpoints map[string]map[string]fakeEndpoint // sandbox, network
	state     State
	applies   int
	closed    bool
	tornDown  bool
	err       error
}

type fakeEndpoint struct {
	ep  Endpoint
	att Attachment
}

// FailWith makes every later call return err (nil: succeed again), as a
// kernel that refuses would.
func (f *Fake) FailWith(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// Attach records the attachment and returns the Endpoint a Plane would: the
// same host end name, a MAC derived from it.
func (f *Fake) Attach(ctx context.Context, sandboxID, nsPath string, a Attachment) (Endpoint, error) {
	if a.MTU == 0 {
		a.MTU = DefaultMTU
	}
	if err := validateAttachment(sandboxID, a); err != nil {
		return Endpoint{}, fmt.Errorf("attach %s to %s: %w", sandboxID, a.NetworkID, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.usable(ctx); err != nil {
		return Endpoint{}, fmt.Errorf("attach %s to %s: %w", sandboxID, a.NetworkID, err)
	}
	name := hostEndName(sandboxID, a.NetworkID)
	sum := sha256.Sum256([]byte(name))
	mac := net.HardwareAddr{0x02, sum[0], sum[1], sum[2], sum[3], sum[4]} // locally administered
	ep := Endpoint{HostIfName: name, IfName: a.IfName, MAC: mac, Addr: a.Addr, NetworkID: a.NetworkID}
	if f.endpoints == nil {
		f.endpoints = map[string]map[string]fakeEndpoint{}
	}
	if f.endpoints[sandboxID] == nil {
		f.endpoints[sandboxID] = map[string]fakeEndpoint{}
	}
	a.Routes = slices.Clone(a.Routes)
	f.endpoints[sandboxID][a.NetworkID] = fakeEndpoint{ep: ep, att: a}
	return ep, nil
}

// Detach forgets the sandbox's endpoints.
func (f *Fake) Detach(ctx context.Context, sandboxID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.usable(ctx); err != nil {
		return fmt.Errorf("detach %s: %w", sandboxID, err)
	}
	delete(f.endpoints, sandboxID)
	return nil
}

// Apply records s, sorted as a Plane keeps it.
func (f *Fake) Apply(ctx context.Context, s State) error {
	s = normalize(s)
	if err := validateState(s); err != nil {
		return fmt.Errorf("apply overlay state: %w", err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.usable(ctx); err != nil {
		return fmt.Errorf("apply overlay state: %w", err)
	}
	f.state = s
	f.applies++
	return nil
}

// Teardown forgets everything and closes the Fake.
func (f *Fake) Teardown(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.usable(ctx); err != nil {
		return fmt.Errorf("tear down overlay plane: %w", err)
	}
	f.endpoints, f.state = nil, State{}
	f.closed, f.tornDown = true, true
	return nil
}

// Close closes the Fake and keeps what it recorded, as a Plane keeps the
// kernel's state.
func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

func (f *Fake) usable(ctx context.Context) error {
	switch {
	case f.closed:
		return errClosed
	case f.err != nil:
		return f.err
	}
	return ctx.Err()
}

// Endpoints returns the sandbox's endpoints, sorted by network.
func (f *Fake) Endpoints(sandboxID string) []Endpoint {
	f.mu.Lock()
	defer f.mu.Unlock()
	var eps []Endpoint
	for _, nw := range slices.Sorted(maps.Keys(f.endpoints[sandboxID])) {
		eps = append(eps, f.endpoints[sandboxID][nw].ep)
	}
	return eps
}

// Attachment returns what the sandbox was last attached to the network with.
func (f *Fake) Attachment(sandboxID, networkID string) (Attachment, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.endpoints[sandboxID][networkID]
	return e.att, ok
}

// State returns the last state applied and how many times Apply succeeded.
func (f *Fake) State() (State, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state, f.applies
}

// TornDown tells whether Teardown ran.
func (f *Fake) TornDown() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tornDown
}
