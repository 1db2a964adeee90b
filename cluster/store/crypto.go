package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

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

// loadKEK returns the key-encryption key kept in dir, creating it (0600) if
// it does not exist yet.
func loadKEK(dir string) ([]byte, error) {
	path := filepath.Join(dir, kekFile)
	kek, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		kek = make([]byte, KeySize)
		if _, err := rand.Read(kek); err != nil {
			return nil, fmt.Errorf("generate key-encryption key: %w", err)
		}
		if err := writeFileSync(path, kek); err != nil {
			return nil, fmt.Errorf("store key-encryption key: %w", err)
		}
		return kek, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read key-encryption key: %w", err)
	}
	return kek, nil
}

// loadDEK returns the data encryption key stored in dir wrapped by kek,
// creating it if it does not exist yet.
func loadDEK(dir string, kek []byte) ([]byte, error) {
	wrap, err := newSealer(kek)
	if err != nil {
		return nil, fmt.Errorf("key-encryption key: %w", err)
	}
	path := filepath.Join(dir, dekFile)
	wrapped, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		dek := make([]byte, KeySize)
		if _, err := rand.Read(dek); err != nil {
			return nil, fmt.Errorf("generate data encryption key: %w", err)
		}
		if err := writeFileSync(path, wrap.seal(dek, aadDEK)); err != nil {
			return nil, fmt.Errorf("store data encryption key: %w", err)
		}
		return dek, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read data encryption key: %w", err)
	}
	dek, err := wrap.open(wrapped, aadDEK)
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", ErrInvalidKEK, err)
	}
	return dek, nil
}

// writeFileSync replaces path with data (mode 0600), synced, so that a crash
// never leaves a truncated key behind.
func writeFileSync(path string, data []byte) error {
	return renameio.WriteFile(path, data, 0o600)
}
