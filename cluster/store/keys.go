package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"
)

// CheckKEK reports, without opening the store in dir or changing any file,
// whether Open with kek (nil: the KEK on disk) would get past its keys:
// ErrLocked, ErrInvalidKEK or ErrCorruptKey as Open would answer, nil when the
// keys open (or there are none yet).
func CheckKEK(dir string, kek []byte) error {
	wrapped, err := os.ReadFile(filepath.Join(dir, dekFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read data encryption key: %w", err)
	}
	onDisk := kek == nil
	if onDisk {
		if kek, err = os.ReadFile(filepath.Join(dir, kekFile)); errors.Is(err, fs.ErrNotExist) {
			return ErrLocked
		} else if err != nil {
			return fmt.Errorf("read key-encryption key: %w", err)
		}
	}
	_, err = unwrapDataKeys(kek, wrapped)
	if errors.Is(err, ErrInvalidKEK) && onDisk {
		return fmt.Errorf("%w (the key-encryption key on disk does not open the data key)", ErrLocked)
	}
	return err
}

// SetKEK re-wraps the store's data keys under kek, which is then never
// written (autolock: the KEK comes from the unlock key), and removes the KEK
// kept on disk. With kek nil the data keys are re-wrapped under a new KEK
// kept on disk (autolock turned off).
func (s *Store) SetKEK(kek []byte) error {
	if err := s.keys.setKEK(kek); err != nil {
		return fmt.Errorf("re-wrap the data encryption key: %w", err)
	}
	return nil
}

// RotateDataKey makes a new data key seal what the store writes from now on,
// and takes a snapshot that compacts the whole log, so that the swarm's state
// is on disk under the new key alone. The previous key is kept, wrapped beside
// the new one, until a snapshot sealed with the new key exists and the log no
// longer holds entries sealed with the old one; a follower whose state has no
// new entry to snapshot keeps it until its next snapshot.
func (s *Store) RotateDataKey(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.keys.rotate(s.bolt.LastIndex); err != nil {
		return err
	}
	// Trailing logs are kept for slow followers; this one compaction gives
	// them up, as a follower too far behind gets the snapshot instead.
	rc := s.raft.ReloadableConfig()
	compactAll := rc
	compactAll.TrailingLogs = 0
	if err := s.raft.ReloadConfig(compactAll); err != nil {
		return fmt.Errorf("rotate the data encryption key: %w", err)
	}
	err := s.raft.Snapshot().Error()
	if rerr := s.raft.ReloadConfig(rc); rerr != nil {
		s.log.Warn("store: restore the trailing logs setting", "err", rerr)
	}
	if err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return fmt.Errorf("rotate the data encryption key: snapshot: %w", err)
	}
	return nil
}

// DataKeyRotating reports whether a rotated-out data key is still kept because
// the log or the newest snapshot may need it.
func (s *Store) DataKeyRotating() bool { return s.keys.rotating() }
