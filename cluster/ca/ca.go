// Package ca is the cluster's certificate authority: the root CA made at swarm
// init, and the join tokens that pin it. A joining node checks the CA it is shown
// against the digest inside its token before it trusts anything else.
package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// RootCA is the cluster's root certificate and its signing key, both PEM.
// While the root rotates, Intermediate is the new root's certificate signed by
// the previous root: it goes with every node certificate issued, so nodes that
// still trust only the previous root accept them.
type RootCA struct {
	CertPEM      []byte
	KeyPEM       []byte
	Intermediate []byte
}

// rootValidity is how long a root CA lasts (Docker: 20 years).
const rootValidity = 20 * 365 * 24 * time.Hour

// NewRootCA makes a self-signed ECDSA P-256 root CA.
func NewRootCA(now time.Time) (RootCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return RootCA{}, fmt.Errorf("generate root CA key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return RootCA{}, fmt.Errorf("generate root CA serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "swarm-ca"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(rootValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return RootCA{}, fmt.Errorf("sign root CA: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return RootCA{}, fmt.Errorf("encode root CA key: %w", err)
	}
	return RootCA{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// Certificate parses the root certificate.
func (r RootCA) Certificate() (*x509.Certificate, error) {
	b, _ := pem.Decode(r.CertPEM)
	if b == nil {
		return nil, fmt.Errorf("root CA: no PEM certificate")
	}
	return x509.ParseCertificate(b.Bytes)
}

// Digest is the base-36 SHA-256 digest of the root certificate, as join tokens carry it.
func (r RootCA) Digest() (string, error) {
	cert, err := r.Certificate()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(cert.Raw)
	return fmt.Sprintf("%050s", new(big.Int).SetBytes(sum[:]).Text(36)), nil
}

// NewJoinToken makes a join token for the root CA: SWMTKN-1-<CA digest>-<secret>.
// Worker and manager tokens differ by their secret.
func NewJoinToken(r RootCA) (string, error) {
	digest, err := r.Digest()
	if err != nil {
		return "", err
	}
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return "", fmt.Errorf("generate join secret: %w", err)
	}
	return fmt.Sprintf("SWMTKN-1-%s-%025s", digest, new(big.Int).SetBytes(secret).Text(36)), nil
}

// Redigest gives a join token the digest of root, keeping its secret (the
// tokens of a swarm whose root rotated).
func Redigest(token string, root RootCA) (string, error) {
	_, secret, err := ParseJoinToken(token)
	if err != nil {
		return "", err
	}
	digest, err := root.Digest()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("SWMTKN-1-%s-%s", digest, secret), nil
}

// ParseJoinToken splits a token into the CA digest and secret.
func ParseJoinToken(token string) (digest, secret string, err error) {
	parts := strings.Split(token, "-")
	if len(parts) != 4 || parts[0] != "SWMTKN" || parts[1] != "1" || len(parts[2]) != 50 || len(parts[3]) != 25 {
		return "", "", fmt.Errorf("invalid join token")
	}
	return parts[2], parts[3], nil
}
