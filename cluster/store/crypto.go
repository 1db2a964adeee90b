package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/google/renameio/v2"
)

// KeySize is the size in bytes of the key-encryption key and of the data
// encryption key (AES-256).
const KeySize = 32

const (
	kekFile = "kek"
	dekFile = "dek"
)

var (
	aadDEK      = []byte("shoal dek v1")
	aadSnapshot = []byte("shoal snapshot v1")
)

// sealer encrypts with AES-256-GCM. Nonces are random: Raft may rewrite an
// index with other contents, so the index cannot serve as a nonce.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("encryption key: want %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("encryption key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("encryption key: %w", err)
	}
	return &sealer{aead: aead}, nil
}

// seal returns nonce || ciphertext, authenticating aad with it.
func (s *sealer) seal(plain, aad []byte) []byte {
	n := s.aead.NonceSize()
	out := make([]byte, n, n+len(plain)+s.aead.Overhead())
	_, _ = rand.Read(out) // never fails: crypto/rand crashes the program instead
	return s.aead.Seal(out, out, plain, aad)
}

func (s *sealer) open(data, aad []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(data) < n+s.aead.Overhead() {
		return nil, errors.New("decrypt: data too short")
	}
	plain, err := s.aead.Open(nil, data[:n], data[n:], aad)
	if err != nil {
		return nil, fmt.Errorf("decrypt: %w", err)
	}
	return plain, nil
}

// dataKeys is what the dek file holds, wrapped by the KEK: the data key that
// seals new log entries and snapshots and, while a rotation is under way, the
// previous one, which still opens the log entries up to RetireAfter.
type dataKeys struct {
	Current     []byte
	Previous    []byte // nil when no rotation is under way
	RetireAfter uint64 // the last log index that may be sealed with Previous
}

// marshal is the wrapped plaintext: the current key alone (the layout of every
// store before rotation existed), or current, previous and RetireAfter.
func (k dataKeys) marshal() []byte {
	out := append([]byte(nil), k.Current...)
	if k.Previous != nil {
		out = append(out, k.Previous...)
		out = binary.BigEndian.AppendUint64(out, k.RetireAfter)
	}
	return out
}

func unmarshalDataKeys(b []byte) (dataKeys, error) {
	switch len(b) {
	case KeySize:
		return dataKeys{Current: b}, nil
	case 2*KeySize + 8:
		return dataKeys{Current: b[:KeySize], Previous: b[KeySize : 2*KeySize], RetireAfter: binary.BigEndian.Uint64(b[2*KeySize:])}, nil
	}
	return dataKeys{}, fmt.Errorf("%w: the unwrapped data key has %d bytes", ErrCorruptKey, len(b))
}

// wrapDataKeys seals keys under kek.
func wrapDataKeys(kek []byte, keys dataKeys) ([]byte, error) {
	wrap, err := newSealer(kek)
	if err != nil {
		return nil, fmt.Errorf("key-encryption key: %w", err)
	}
	return wrap.seal(keys.marshal(), aadDEK), nil
}

// unwrapDataKeys opens a dek file's contents with kek. A wrong key is
// ErrInvalidKEK, a file that cannot be a wrapped key ErrCorruptKey. It is the
// path a stolen or damaged disk reaches first, so it never panics on any input.
func unwrapDataKeys(kek, wrapped []byte) (dataKeys, error) {
	wrap, err := newSealer(kek)
	if err != nil {
		return dataKeys{}, fmt.Errorf("%w (%v)", ErrInvalidKEK, err)
	}
	min := wrap.aead.NonceSize() + wrap.aead.Overhead() + KeySize
	if n := len(wrapped); n != min && n != min+KeySize+8 {
		return dataKeys{}, fmt.Errorf("%w: the wrapped data key has %d bytes", ErrCorruptKey, n)
	}
	plain, err := wrap.open(wrapped, aadDEK)
	if err != nil {
		return dataKeys{}, fmt.Errorf("%w (%v)", ErrInvalidKEK, err)
	}
	return unmarshalDataKeys(plain)
}

// keyring holds the keys of an open store: the KEK (in memory only, when it
// comes from an unlock key) and the data keys. It seals with the current data
// key and opens with the current or, during a rotation, the previous one.
type keyring struct {
	dir string

	mu   sync.RWMutex // held for reading while a sealed entry is stored
	kek  []byte
	keys dataKeys
	cur  *sealer
	prev *sealer // nil when no rotation is under way
	// snapshotSealed is set once a snapshot has been sealed with cur since
	// the rotation began: with the log compacted past RetireAfter it is the
	// last condition for retiring prev.
	snapshotSealed bool
	generation     int // counts rotations
}

// openKeyring reads the keys kept in dir. With kek nil the KEK is the one in
// dir/kek, created along with a new data key for a new store; a store whose KEK
// is not on disk (autolock) is ErrLocked. A given kek is never written, and a
// kek file it makes stale (left by a crash while autolock was turned on) is
// removed.
func openKeyring(dir string, kek []byte) (*keyring, error) {
	wrapped, err := os.ReadFile(filepath.Join(dir, dekFile))
	if errors.Is(err, fs.ErrNotExist) {
		// A log without its key cannot be read, and a new key would only
		// hide that: refuse, and leave the files as they are.
		if _, serr := os.Stat(filepath.Join(dir, boltFile)); serr == nil {
			return nil, fmt.Errorf("%w: %s has a Raft log but no data key", ErrCorruptKey, dir)
		}
		return newKeyring(dir, kek)
	}
	if err != nil {
		return nil, fmt.Errorf("read data encryption key: %w", err)
	}
	onDisk := kek == nil
	if onDisk {
		kek, err = os.ReadFile(filepath.Join(dir, kekFile))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, ErrLocked
		}
		if err != nil {
			return nil, fmt.Errorf("read key-encryption key: %w", err)
		}
	}
	keys, err := unwrapDataKeys(kek, wrapped)
	if errors.Is(err, ErrInvalidKEK) && onDisk {
		// The DEK was re-wrapped under an unlock key, and the crash came
		// before the kek file was removed.
		return nil, fmt.Errorf("%w (the key-encryption key on disk does not open the data key)", ErrLocked)
	}
	if err != nil {
		return nil, err
	}
	if !onDisk {
		if err := shred(filepath.Join(dir, kekFile)); err != nil {
			return nil, err
		}
	}
	return newOpenKeyring(dir, kek, keys)
}

// newKeyring makes the keys of a new store: a data key wrapped by kek, or by a
// new KEK kept in dir when kek is nil.
func newKeyring(dir string, kek []byte) (*keyring, error) {
	if kek == nil {
		kek = make([]byte, KeySize)
		_, _ = rand.Read(kek)
		if err := writeFileSync(filepath.Join(dir, kekFile), kek); err != nil {
			return nil, fmt.Errorf("store key-encryption key: %w", err)
		}
	}
	keys := dataKeys{Current: make([]byte, KeySize)}
	_, _ = rand.Read(keys.Current)
	k, err := newOpenKeyring(dir, kek, keys)
	if err != nil {
		return nil, err
	}
	if err := k.save(kek, keys); err != nil {
		return nil, err
	}
	return k, nil
}

func newOpenKeyring(dir string, kek []byte, keys dataKeys) (*keyring, error) {
	k := &keyring{dir: dir}
	if err := k.install(kek, keys); err != nil {
		return nil, err
	}
	return k, nil
}

// install makes kek and keys current; callers hold k.mu (or own k alone).
func (k *keyring) install(kek []byte, keys dataKeys) error {
	cur, err := newSealer(keys.Current)
	if err != nil {
		return fmt.Errorf("data encryption key: %w", err)
	}
	var prev *sealer
	if keys.Previous != nil {
		if prev, err = newSealer(keys.Previous); err != nil {
			return fmt.Errorf("previous data encryption key: %w", err)
		}
	}
	k.kek, k.keys, k.cur, k.prev = kek, keys, cur, prev
	return nil
}

// save writes keys wrapped by kek to the dek file, atomically.
func (k *keyring) save(kek []byte, keys dataKeys) error {
	wrapped, err := wrapDataKeys(kek, keys)
	if err != nil {
		return err
	}
	if err := writeFileSync(filepath.Join(k.dir, dekFile), wrapped); err != nil {
		return fmt.Errorf("store data encryption key: %w", err)
	}
	return nil
}

// sealing runs store with a function that seals with the current key, which
// stays current until store returns.
func (k *keyring) sealing(store func(seal func(plain, aad []byte) []byte) error) error {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return store(k.cur.seal)
}

func (k *keyring) open(data, aad []byte) ([]byte, error) {
	k.mu.RLock()
	cur, prev := k.cur, k.prev
	k.mu.RUnlock()
	plain, err := cur.open(data, aad)
	if err != nil && prev != nil {
		if p, perr := prev.open(data, aad); perr == nil {
			return p, nil
		}
	}
	return plain, err
}

// setKEK re-wraps the data keys under kek, or under a new KEK kept on disk
// when kek is nil. The order of the writes leaves, after a crash, either the
// old state or one that openKeyring reads as locked by the new key.
func (k *keyring) setKEK(kek []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	path := filepath.Join(k.dir, kekFile)
	if kek == nil {
		kek = make([]byte, KeySize)
		_, _ = rand.Read(kek)
		if err := writeFileSync(path, kek); err != nil {
			return fmt.Errorf("store key-encryption key: %w", err)
		}
		if err := k.save(kek, k.keys); err != nil {
			return err
		}
		k.kek = kek
		return nil
	}
	if len(kek) != KeySize {
		return fmt.Errorf("key-encryption key: want %d bytes, got %d", KeySize, len(kek))
	}
	if err := k.save(kek, k.keys); err != nil {
		return err
	}
	k.kek = kek
	return shred(path)
}

// rotate makes a new data key current, keeping the old one to open what the
// log holds up to lastIndex (read under the lock, so no entry sealed with the
// old key is stored past it).
func (k *keyring) rotate(lastIndex func() (uint64, error)) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.prev != nil {
		return errors.New("rotate the data encryption key: the previous rotation is still under way (it ends with the next snapshot that compacts the log)")
	}
	last, err := lastIndex()
	if err != nil {
		return fmt.Errorf("rotate the data encryption key: %w", err)
	}
	next := dataKeys{Current: make([]byte, KeySize), Previous: k.keys.Current, RetireAfter: last}
	_, _ = rand.Read(next.Current)
	if err := k.save(k.kek, next); err != nil {
		return err
	}
	k.snapshotSealed = false
	k.generation++
	return k.install(k.kek, next)
}

// sealSnapshot seals a snapshot with the current key; sealed records, once
// the snapshot is stored, that one was (unless the key rotated meanwhile).
func (k *keyring) sealSnapshot(plain []byte) (data []byte, sealed func()) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	gen := k.generation
	return k.cur.seal(plain, aadSnapshot), func() {
		k.mu.Lock()
		defer k.mu.Unlock()
		if k.generation == gen {
			k.snapshotSealed = true
		}
	}
}

// retire forgets the previous data key once nothing on disk needs it: a
// snapshot was sealed with the current key and the log holds nothing at or
// below RetireAfter (first is the log's first index, 0 when empty).
func (k *keyring) retire(first uint64) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.prev == nil || !k.snapshotSealed || (first != 0 && first <= k.keys.RetireAfter) {
		return nil
	}
	keys := dataKeys{Current: k.keys.Current}
	if err := k.save(k.kek, keys); err != nil {
		return err
	}
	return k.install(k.kek, keys)
}

// rotating reports whether a previous data key is still kept.
func (k *keyring) rotating() bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.prev != nil
}

// shred overwrites the file at path with random bytes, syncs it and removes
// it, so that the KEK it held is not left in the file's old blocks. (On a
// copy-on-write or flash file system the old blocks may survive: that is the
// limit of what a program can do.) A missing file is not an error.
func shred(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove key-encryption key: %w", err)
	}
	st, err := f.Stat()
	if err == nil {
		noise := make([]byte, max(st.Size(), KeySize))
		_, _ = rand.Read(noise)
		if _, err = f.WriteAt(noise, 0); err == nil {
			err = f.Sync()
		}
	}
	f.Close()
	if err != nil {
		return fmt.Errorf("overwrite key-encryption key: %w", err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove key-encryption key: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// writeFileSync replaces path with data (mode 0600), synced, so that a crash
// never leaves a truncated key behind.
func writeFileSync(path string, data []byte) error {
	return renameio.WriteFile(path, data, 0o600)
}
