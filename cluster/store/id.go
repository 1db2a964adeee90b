package store

import (
	"crypto/rand"
	"math/big"
	"strings"
)

// idLength is the length of base-36 128-bit numbers: 36^25 > 2^128.
const idLength = 25

// NewID returns a new random object ID: 128 random bits written as 25
// lowercase base-36 digits, like swarmkit's IDs.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails on Linux (crypto/rand panics instead)
	id := new(big.Int).SetBytes(b[:]).Text(36)
	return strings.Repeat("0", idLength-len(id)) + id
}
