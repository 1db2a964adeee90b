package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
	"github.com/moby/moby/api/types/swarm"

	"github.com/shoal-project/shoal/cluster/autolock"
	"github.com/shoal-project/shoal/cluster/ca"
	"github.com/shoal-project/shoal/cluster/store"
	"github.com/shoal-project/shoal/cluster/transport"
)

// Autolock, as Docker's: the swarm's unlock key lives in the replicated store
// (beside the CA's key, on the RootCA record), so that every manager learns it
// and a rotated key reaches them all. Each manager follows it: with autolock
// on, it re-wraps its own data key under the KEK derived from the unlock key
// and seals its TLS private key under the same KEK, leaving no KEK on disk; a
// restarted manager then comes up locked until `docker swarm unlock`. Workers
// never lock (Docker's rule): they hold no swarm state.

// Docker's words for a locked manager.
const (
	msgLocked      = "Swarm is encrypted and needs to be unlocked before it can be used. Please use \"docker swarm unlock\" to unlock it."
	msgLeaveLocked = "Swarm is encrypted and locked. Please unlock it first or use `--force` to ignore this message."
)

// errLocked is what every swarm call answers on a locked manager (503).
var errLocked = unavailableError{msgLocked}

// invalidUnlockKey is dockerd's answer to an unlock key that opens nothing.
type invalidUnlockKey struct{}

func (invalidUnlockKey) Error() string      { return "swarm could not be unlocked: invalid key provided" }
func (invalidUnlockKey) Unauthorized() bool { return true }

// lockError is the answer to a store that does not open with key: locked
// without one, refused with the wrong one.
func lockError(err error, key autolock.Key) error {
	switch {
	case errors.Is(err, store.ErrLocked):
		return errLocked
	case errors.Is(err, store.ErrInvalidKEK) && key != nil:
		return invalidUnlockKey{}
	}
	return err
}

// wantLocked is the lock a manager must apply, read from its store: the unlock
// key, or nil when autolock is off. ok is false while the swarm's objects are
// not in the store yet.
func wantLocked(tx store.ReadTx) (key autolock.Key, ok bool) {
	cl, err := tx.Cluster()
	if err != nil {
		return nil, false
	}
	root, err := tx.Root()
	if err != nil {
		return nil, false
	}
	if !cl.Spec.EncryptionConfig.AutoLockManagers || len(root.UnlockKey) == 0 {
		return nil, true
	}
	return autolock.Key(root.UnlockKey), true
}

// followLock applies the swarm's lock to this manager whenever it changes,
// until ctx is done. It waits for the store's replay first, so that an old
// state read half-way through the log never writes a KEK back to disk.
func (c *Cluster) followLock(ctx context.Context, s *store.Store, replayed <-chan struct{}) {
	if replayed != nil {
		select {
		case <-replayed:
		case <-ctx.Done():
			return
		}
	}
	var want autolock.Key
	var known bool
	read := func(tx store.ReadTx) error {
		want, known = wantLocked(tx)
		return nil
	}
	events, err := s.ViewAndWatch(ctx, read, store.KindCluster, store.KindRoot)
	if err != nil {
		c.log.Warn("follow the swarm's autolock", "err", err)
		return
	}
	for {
		if known {
			if err := c.applyLock(ctx, s, want); err != nil && ctx.Err() == nil {
				c.log.Error("apply the swarm's autolock to this manager", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case _, ok := <-events:
			if !ok {
				return
			}
			_ = s.View(read)
		}
	}
}

// syncLock applies the lock the store holds now: an init or update that
// changed it returns once this manager's disk says so.
func (c *Cluster) syncLock(ctx context.Context, s *store.Store) error {
	var want autolock.Key
	var known bool
	_ = s.View(func(tx store.ReadTx) error {
		want, known = wantLocked(tx)
		return nil
	})
	if !known {
		return nil
	}
	return c.applyLock(ctx, s, want)
}

// applyLock makes this manager's keys follow want (nil: autolock off). The
// order of the writes leaves, after a crash at any point, a node that either
// opens by itself or opens with the unlock key it was told.
// Callers hold no lock: c.mu may be held while c.lockMu is taken (resume,
// Leave, forceNewCluster), never the other way round.
func (c *Cluster) applyLock(ctx context.Context, s *store.Store, want autolock.Key) error {
	c.mu.RLock()
	creds, current := c.creds, c.store
	c.mu.RUnlock()
	if creds == nil || current != s {
		return nil // the store was closed or replaced meanwhile
	}
	c.lockMu.Lock()
	defer c.lockMu.Unlock()
	if bytes.Equal(c.lockKey, want) {
		return nil
	}
	files := creds.Files()
	if want == nil {
		// The node key first: a crash before the store's KEK is back on
		// disk leaves a manager locked by the key it had, which unlocks it.
		if err := c.writeNodeKey(files.KeyPEM, nil); err != nil {
			return err
		}
		if err := s.SetKEK(nil); err != nil {
			return err
		}
		c.lockKey = nil
		c.log.Info("autolock off: the key-encryption key is kept on disk again")
		return nil
	}
	kek := want.KEK()
	// The node key sealed under the new KEK goes beside the current one
	// until the store is re-wrapped: a crash in between leaves a node that
	// the old key (both old files) or the new one (the new store and the
	// staged key) unlocks.
	if err := c.stageNodeKey(files.KeyPEM, kek); err != nil {
		return err
	}
	if err := s.SetKEK(kek); err != nil {
		return err
	}
	if err := os.Rename(c.stagedKeyPath(), c.keyPath()); err != nil {
		return fmt.Errorf("install the sealed node key: %w", err)
	}
	c.lockKey = want
	c.log.Info("autolock: this manager's keys are wrapped by the unlock key")
	// The data key was wrapped by a key on this disk, or by a key that is
	// being replaced because it may have leaked: replace the data key too,
	// so that what the old key could open stops at what the disk held then.
	if err := s.RotateDataKey(ctx); err != nil {
		c.log.Warn("rotate the data encryption key after an unlock key change", "err", err)
	}
	return nil
}

func (c *Cluster) keyPath() string       { return filepath.Join(c.certDir(), ca.KeyFile) }
func (c *Cluster) stagedKeyPath() string { return c.keyPath() + ".next" }

// writeNodeKey writes the node's TLS private key, sealed under kek, or plain
// when kek is nil. Callers hold c.lockMu.
func (c *Cluster) writeNodeKey(keyPEM, kek []byte) error {
	if kek != nil {
		if err := c.stageNodeKey(keyPEM, kek); err != nil {
			return err
		}
		if err := os.Rename(c.stagedKeyPath(), c.keyPath()); err != nil {
			return fmt.Errorf("write the node key: %w", err)
		}
		return nil
	}
	if err := renameio.WriteFile(c.keyPath(), keyPEM, 0o600); err != nil {
		return fmt.Errorf("write the node key: %w", err)
	}
	return removeIfExists(c.stagedKeyPath())
}

// stageNodeKey writes the node key sealed under kek beside the current one.
func (c *Cluster) stageNodeKey(keyPEM, kek []byte) error {
	sealed, err := autolock.Seal(kek, keyPEM)
	if err != nil {
		return fmt.Errorf("seal the node key: %w", err)
	}
	if err := renameio.WriteFile(c.stagedKeyPath(), sealed, 0o600); err != nil {
		return fmt.Errorf("write the sealed node key: %w", err)
	}
	return nil
}

// saveCredentials keeps renewed TLS material (sealed while this manager is
// locked) and makes it the node's, as one step against a lock being applied.
func (c *Cluster) saveCredentials(creds *transport.Credentials, files ca.NodeFiles) error {
	c.lockMu.Lock()
	defer c.lockMu.Unlock()
	if err := files.Save(c.certDir()); err != nil {
		return err
	}
	if c.lockKey != nil {
		if err := c.writeNodeKey(files.KeyPEM, c.lockKey.KEK()); err != nil {
			return err
		}
	}
	return creds.Set(files)
}

// forgetLock is called when this node's store goes (demotion, leave): what
// it writes next is a worker's, never locked.
func (c *Cluster) forgetLock() {
	c.lockMu.Lock()
	defer c.lockMu.Unlock()
	c.lockKey = nil
}

// openNodeKey returns files with the node key opened by key when it is
// sealed (a sealed key without one means the node is locked), trying the key
// staged by an unlock-key change that a crash interrupted.
func (c *Cluster) openNodeKey(files ca.NodeFiles, key autolock.Key) (ca.NodeFiles, error) {
	if !autolock.IsSealed(files.KeyPEM) {
		return files, nil
	}
	if key == nil {
		return files, errLocked
	}
	plain, err := autolock.Open(key.KEK(), files.KeyPEM)
	if errors.Is(err, autolock.ErrWrongKey) {
		if staged, rerr := os.ReadFile(c.stagedKeyPath()); rerr == nil {
			if p, serr := autolock.Open(key.KEK(), staged); serr == nil {
				plain, err = p, nil
			}
		}
	}
	if errors.Is(err, autolock.ErrWrongKey) {
		return files, invalidUnlockKey{}
	}
	if err != nil {
		return files, err
	}
	files.KeyPEM = plain
	return files, nil
}

// Unlock unlocks a locked manager with the swarm's unlock key (POST
// /swarm/unlock): its node key and store open, and the node starts as it
// would have at boot.
func (c *Cluster) Unlock(ctx context.Context, keyText string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.node == nil:
		return unavailableError{msgNotManager}
	case !c.locked && c.store == nil:
		return unavailableError{msgWorker}
	case !c.locked:
		return conflictError{"swarm is not locked"}
	case c.busy:
		return unavailableError{"another swarm operation is under way on this node"}
	}
	key, err := autolock.Parse(keyText)
	if err != nil {
		return errInvalidf("%v", err)
	}
	// A wrong key is refused before the control port opens (resume checks
	// the keys first): nothing is started, and nothing closed, under c.mu.
	st := c.node
	c.node = nil
	undo, err := c.resume(ctx, st, key)
	if err != nil {
		c.node, c.busy = st, true
		c.mu.Unlock()
		undo()
		c.mu.Lock()
		c.busy = false
		if errors.Is(err, errLocked) {
			return invalidUnlockKey{}
		}
		return err
	}
	c.locked = false
	c.log.Info("swarm unlocked", "node", st.NodeID)
	return nil
}

// lockedInfo is `docker info`'s Swarm section on a locked manager.
func lockedInfo(st *nodeState) swarm.Info {
	return swarm.Info{
		NodeAddr:       hostOf(st.AdvertiseAddr),
		LocalNodeState: swarm.LocalNodeStateLocked,
		Error:          msgLocked,
	}
}

// removeIfExists is os.Remove without the error for a missing file.
func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
