package session

import (
	"context"
	"sync"
)

// Local binds a Server in this process to one node: the session of a manager's
// own agent while that manager leads.
func Local(srv Server, nodeID string) Dispatcher { return localDispatcher{srv: srv, nodeID: nodeID} }

type localDispatcher struct {
	srv    Server
	nodeID string
}

func (d localDispatcher) Open(ctx context.Context, hello Hello) (Session, error) {
	ctx, cancel := context.WithCancel(ctx)
	id, msgs, err := d.srv.Open(ctx, d.nodeID, hello)
	if err != nil {
		cancel()
		return nil, err
	}
	return &localSession{srv: d.srv, nodeID: d.nodeID, id: id, msgs: msgs, cancel: cancel}, nil
}

type localSession struct {
	srv    Server
	nodeID string
	id     string
	msgs   <-chan Message
	cancel context.CancelFunc
	once   sync.Once
}

func (s *localSession) Messages() <-chan Message { return s.msgs }
func (s *localSession) Err() error               { return nil }
func (s *localSession) Close()                   { s.once.Do(s.cancel) }

func (s *localSession) UpdateTaskStatus(ctx context.Context, updates []StatusUpdate) error {
	return s.srv.UpdateTaskStatus(ctx, s.nodeID, s.id, updates)
}

func (s *localSession) Heartbeat(ctx context.Context) error {
	return s.srv.Heartbeat(ctx, s.nodeID, s.id)
}
