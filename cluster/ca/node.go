package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// ClockSkew is how long before its issue a node certificate is valid from,
// so that a node whose clock runs a little behind the manager's accepts it.
const ClockSkew = 5 * time.Minute

// The roles a node certificate names in its organizational unit, as swarmkit
// names them.
const (
	ManagerRole = "swarm-manager"
	WorkerRole  = "swarm-worker"
)

// Identity is who a node certificate says its holder is.
type Identity struct {
	NodeID    string // the subject's common name
	Role      string // ManagerRole or WorkerRole
	ClusterID string // the subject's organization
}

// IsManager reports whether the identity is a manager's.
func (id Identity) IsManager() bool { return id.Role == ManagerRole }

// MinCertLife is the shortest life Issue gives a certificate, whatever it is
// asked: what the swarm accepts (an hour, as Docker; less in labs) is decided
// where `docker swarm update --cert-expiry` is validated.
const MinCertLife = 10 * time.Second

// NewNodeKey makes a node's private key (ECDSA P-256) and returns it with its PEM
// encoding. The key never leaves the node: managers see only its CSR.
func NewNodeKey() (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate node key: %w", err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode node key: %w", err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// NewCSR makes the certificate signing request a node sends when it joins or
// renews. Its subject is left empty: the CA decides who the node is.
func NewCSR(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		return nil, fmt.Errorf("create certificate request: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// maxCSRSize bounds a CSR read from the network.
const maxCSRSize = 16 << 10

// Issue signs a node certificate for the key in csrPEM, naming id, valid from
// now for expiry. The result is PEM: the node certificate, followed by the
// intermediate the root signs through during a rotation, if any.
func (r RootCA) Issue(csrPEM []byte, id Identity, now time.Time, expiry time.Duration) ([]byte, error) {
	if len(csrPEM) > maxCSRSize {
		return nil, errors.New("issue node certificate: certificate request too large")
	}
	if id.NodeID == "" || id.ClusterID == "" || (id.Role != ManagerRole && id.Role != WorkerRole) {
		return nil, fmt.Errorf("issue node certificate: incomplete identity %+v", id)
	}
	if expiry < MinCertLife {
		expiry = MinCertLife
	}
	block, _ := pem.Decode(csrPEM)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("issue node certificate: no PEM certificate request")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("issue node certificate: parse request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("issue node certificate: request signature: %w", err)
	}
	if _, ok := csr.PublicKey.(*ecdsa.PublicKey); !ok {
		return nil, errors.New("issue node certificate: the key must be ECDSA")
	}
	signer, err := r.signer()
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("issue node certificate: serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:         id.NodeID,
			OrganizationalUnit: []string{id.Role},
			Organization:       []string{id.ClusterID},
		},
		// A node's name in TLS is its role and its ID, as in swarmkit.
		DNSNames:    []string{id.Role, id.NodeID},
		NotBefore:   now.Add(-ClockSkew),
		NotAfter:    now.Add(expiry),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer.cert, csr.PublicKey, signer.key)
	if err != nil {
		return nil, fmt.Errorf("issue node certificate: sign: %w", err)
	}
	return append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), r.Intermediate...), nil
}

// CrossSign certifies next's key and subject with this root: the
// intermediate that chains next's certificates to this root during a rotation.
func (r RootCA) CrossSign(next RootCA, now time.Time) ([]byte, error) {
	signer, err := r.signer()
	if err != nil {
		return nil, err
	}
	cert, err := next.Certificate()
	if err != nil {
		return nil, fmt.Errorf("cross-sign: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("cross-sign: serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               cert.Subject,
		RawSubject:            cert.RawSubject,
		SubjectKeyId:          cert.SubjectKeyId,
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              cert.NotAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer.cert, cert.PublicKey, signer.key)
	if err != nil {
		return nil, fmt.Errorf("cross-sign: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// ParseRoot checks a user-given root CA (swarm ca --rotate --ca-cert --ca-key):
// a CA certificate, and its ECDSA key.
func ParseRoot(certPEM, keyPEM []byte) (RootCA, error) {
	r := RootCA{CertPEM: certPEM, KeyPEM: keyPEM}
	cert, err := r.Certificate()
	if err != nil {
		return RootCA{}, fmt.Errorf("invalid CA certificate: %w", err)
	}
	if !cert.IsCA {
		return RootCA{}, errors.New("invalid CA certificate: it is not a CA")
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return RootCA{}, fmt.Errorf("invalid CA key: %w", err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return RootCA{}, errors.New("the CA key does not match the CA certificate")
	}
	return r, nil
}

// signing is the certificate and key that sign node certificates.
type signing struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func (r RootCA) signer() (signing, error) {
	cert, err := r.Certificate()
	if err != nil {
		return signing{}, err
	}
	key, err := parseKey(r.KeyPEM)
	if err != nil {
		return signing{}, fmt.Errorf("root CA key: %w", err)
	}
	return signing{cert: cert, key: key}, nil
}

func parseKey(keyPEM []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("no PEM key")
	}
	return x509.ParseECPrivateKey(block.Bytes)
}

// IdentityOf reads the identity a node certificate names. It does not verify
// the certificate: callers get it from a verified TLS connection.
func IdentityOf(cert *x509.Certificate) (Identity, error) {
	id := Identity{NodeID: cert.Subject.CommonName}
	if len(cert.Subject.OrganizationalUnit) == 1 {
		id.Role = cert.Subject.OrganizationalUnit[0]
	}
	if len(cert.Subject.Organization) == 1 {
		id.ClusterID = cert.Subject.Organization[0]
	}
	if id.NodeID == "" || id.ClusterID == "" || (id.Role != ManagerRole && id.Role != WorkerRole) {
		return Identity{}, errors.New("the certificate does not name a swarm node")
	}
	return id, nil
}

// ParseCertificates reads every certificate of a PEM bundle, in order.
func ParseCertificates(bundle []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, bundle = pem.Decode(bundle)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		out = append(out, cert)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return out, nil
}

// Verify checks that chain (a node certificate and any intermediates) leads to
// one of roots, at now, and returns the identity it names.
func Verify(chain []*x509.Certificate, roots *x509.CertPool, now time.Time) (Identity, error) {
	if len(chain) == 0 {
		return Identity{}, errors.New("no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return Identity{}, fmt.Errorf("verify node certificate: %w", err)
	}
	return IdentityOf(chain[0])
}

// Digest of a PEM root certificate, as join tokens carry it.
func DigestOf(rootPEM []byte) (string, error) {
	return RootCA{CertPEM: rootPEM}.Digest()
}
