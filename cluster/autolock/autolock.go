// Package autolock holds the keys of an autolocked swarm's managers: the
// unlock key the user keeps (printed as Docker prints it, SWMKEY-1-...), the
// key-encryption key derived from it, and the sealing of the node's TLS
// private key under that KEK, so that a locked manager's disk reveals neither
// the swarm's state nor the node's identity.
package autolock

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// prefix is Docker's, so that keys read and paste the same.
const prefix = "SWMKEY-1-"

// keySize is the size of a new unlock key and of the KEK.
const keySize = 32

// ErrFormat is the answer to a string that is not an unlock key, in
// dockerd's words.
var ErrFormat = errors.New("invalid key string")

// ErrWrongKey is returned when a KEK does not open a sealed node key.
var ErrWrongKey = errors.New("the key does not open the sealed node key")

// Key is an unlock key.
type Key []byte

// NewKey returns a new random unlock key.
func NewKey() Key {
	k := make(Key, keySize)
	_, _ = rand.Read(k) // never fails: crypto/rand crashes the program instead
	return k
}

// Parse reads a key as String writes it. Any decodable key parses (as in
// Docker); one of the wrong size simply opens nothing.
func Parse(s string) (Key, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), prefix)
	if !ok {
		return nil, ErrFormat
	}
	raw, err := base64.RawStdEncoding.DecodeString(rest)
	if err != nil || len(raw) == 0 {
		return nil, ErrFormat
	}
	return raw, nil
}

// String is the key as the user sees it: SWMKEY-1-<base64>.
func (k Key) String() string { return prefix + base64.RawStdEncoding.EncodeToString(k) }

// KEK is the key-encryption key derived from the unlock key (HKDF-SHA256): the
// unlock key itself is never used to encrypt anything. No key (nil) has no
// KEK (nil).
func (k Key) KEK() []byte {
	if k == nil {
		return nil
	}
	kek, err := hkdf.Key(sha256.New, k, nil, "shoal swarm kek v1", keySize)
	if err != nil { // only for lengths HKDF cannot produce; keySize is not one
		panic(fmt.Sprintf("autolock: derive the key-encryption key: %v", err))
	}
	return kek
}

// sealedType is the PEM type of a node key sealed under a KEK.
const sealedType = "SHOAL SEALED PRIVATE KEY"

var aadNodeKey = []byte("shoal node key v1")

// Seal returns keyPEM sealed under kek (AES-256-GCM), as one PEM block.
func Seal(kek, keyPEM []byte) ([]byte, error) {
	aead, err := newAEAD(kek)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce)
	sealed := aead.Seal(nonce, nonce, keyPEM, aadNodeKey)
	return pem.EncodeToMemory(&pem.Block{Type: sealedType, Headers: sealedHeaders, Bytes: sealed}), nil
}

// sealedHeaders mark a sealed key as encrypted the way PEM has long said it
// (RFC 1421's Proc-Type and DEK-Info), which tools, swarmkit's and moby's
// tests among them, read to tell an encrypted key from a plain one. Open
// does not read them: the block's type says it is sealed.
var sealedHeaders = map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-GCM"}

// IsSealed reports whether data is a node key sealed by Seal.
func IsSealed(data []byte) bool {
	b, _ := pem.Decode(data)
	return b != nil && b.Type == sealedType
}

// Open returns the key Seal sealed; a wrong kek is ErrWrongKey.
func Open(kek, data []byte) ([]byte, error) {
	b, _ := pem.Decode(data)
	if b == nil || b.Type != sealedType {
		return nil, errors.New("open the node key: not a sealed key")
	}
	aead, err := newAEAD(kek)
	if err != nil {
		return nil, err
	}
	n := aead.NonceSize()
	if len(b.Bytes) < n+aead.Overhead() {
		return nil, errors.New("open the node key: sealed key too short")
	}
	plain, err := aead.Open(nil, b.Bytes[:n], b.Bytes[n:], aadNodeKey)
	if err != nil {
		return nil, ErrWrongKey
	}
	return plain, nil
}

func newAEAD(kek []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("key-encryption key: %w", err)
	}
	return cipher.NewGCM(block)
}
