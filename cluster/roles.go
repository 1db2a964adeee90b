package cluster

import (
	"context"
	"os"

	"github.com/shoal-project/shoal/cluster/ca"
	"github.com/shoal-project/shoal/cluster/store"
	"github.com/shoal-project/shoal/cluster/transport"
)

// claim marks an init or join under way on a node in no swarm; release ends
// it. The work itself runs without c.mu: a joining manager's control port must
// answer the leader meanwhile.
func (c *Cluster) claim() (release func(), err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.node != nil || c.busy {
		return nil, unavailableError{msgInSwarm}
	}
	c.busy = true
	return func() {
		c.mu.Lock()
		c.busy = false
		c.mu.Unlock()
	}, nil
}

// becomeManager sets this node up as a manager: its certificates, control port
// and store; setup makes the store part of a swarm (bootstrap, or join). On
// success the node state is written and the manager starts; on failure nothing
// is left. The caller holds the claim.
func (c *Cluster) becomeManager(ctx context.Context, st *nodeState, files ca.NodeFiles, setup func(*store.Store, *transport.Credentials) error) error {
	creds, err := transport.NewCredentials(files)
	if err != nil {
		return err
	}
	port, err := c.listen(st, creds)
	if err != nil {
		return err
	}
	s, err := c.openStore(ctx, st, creds, port, nil)
	if err != nil {
		port.Close()
		return err
	}
	fail := func(err error) error {
		_ = s.Destroy()
		port.Close()
		_ = os.RemoveAll(c.certDir())
		return err
	}
	if err := setup(s, creds); err != nil {
		return fail(err)
	}
	if err := files.Save(c.certDir()); err != nil {
		return fail(err)
	}
	if err := writeNodeState(c.statePath(), st); err != nil {
		return fail(err)
	}
	c.install(st, creds, port, s)
	return nil
}

// becomeWorker sets this node up as a worker: certificates, control port and
// agent. The caller holds the claim.
func (c *Cluster) becomeWorker(st *nodeState, files ca.NodeFiles) error {
	creds, err := transport.NewCredentials(files)
	if err != nil {
		return err
	}
	port, err := c.listen(st, creds)
	if err != nil {
		return err
	}
	if err := files.Save(c.certDir()); err != nil {
		port.Close()
		return err
	}
	if err := writeNodeState(c.statePath(), st); err != nil {
		port.Close()
		_ = os.RemoveAll(c.certDir())
		return err
	}
	c.install(st, creds, port, nil)
	return nil
}

// install makes the parts of a node in a swarm current and starts them.
func (c *Cluster) install(st *nodeState, creds *transport.Credentials, port *transport.Listener, s *store.Store) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.node, c.creds, c.port, c.store = st, creds, port, s
	c.start()
}
