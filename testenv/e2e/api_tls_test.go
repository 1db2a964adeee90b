package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-project/shoal/testenv"
)

// The Engine API over TCP takes TLS as dockerd's does (-H tcp://... --tlsverify
// --tlscacert --tlscert --tlskey): the docker CLI with a client certificate the
// CA signed is served; without a certificate, or with one another CA signed, it
// is refused during the handshake, as is plain HTTP.
func TestAPIOverTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, caKey := newTestCA(t, "shoal test CA")
	other, otherKey := newTestCA(t, "someone else's CA")
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", ca.Raw)
	issueTestCert(t, dir, "server", ca, caKey, x509.ExtKeyUsageServerAuth)
	issueTestCert(t, dir, "client", ca, caKey, x509.ExtKeyUsageClientAuth)
	issueTestCert(t, dir, "stranger", other, otherKey, x509.ExtKeyUsageClientAuth)

	n := testenv.StartNode(t, "tlsapi", testenv.Options{Args: []string{
		"-H", "tcp://127.0.0.1:2376", "--tlsverify",
		"--tlscacert", filepath.Join(dir, "ca.pem"),
		"--tlscert", filepath.Join(dir, "server-cert.pem"), "--tlskey", filepath.Join(dir, "server-key.pem"),
	}})
	docker := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := n.Command(ctx, "docker", append([]string{"-H", "tcp://127.0.0.1:2376"}, args...)...)
		cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+t.TempDir())
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	tlsArgs := func(who string) []string {
		return []string{"--tlsverify", "--tlscacert", filepath.Join(dir, "ca.pem"),
			"--tlscert", filepath.Join(dir, who+"-cert.pem"), "--tlskey", filepath.Join(dir, who+"-key.pem")}
	}

	out, err := docker(append(tlsArgs("client"), "swarm", "init", "--advertise-addr", "127.0.0.1")...)
	if err != nil {
		t.Fatalf("swarm init over TLS: %v\n%s", err, out)
	}
	out, err = docker(append(tlsArgs("client"), "info", "--format", "{{.Swarm.LocalNodeState}}")...)
	if err != nil || strings.TrimSpace(out) != "active" {
		t.Fatalf("info over TLS: %v %q", err, out)
	}

	for _, c := range []struct {
		name, want string
		args       []string
	}{
		{"no client certificate", "certificate required", []string{"--tls", "--tlscacert", filepath.Join(dir, "ca.pem"), "version"}},
		{"a certificate of another CA", "certificate required", append(tlsArgs("stranger"), "version")},
		{"plain HTTP", "", []string{"version"}},
	} {
		out, err := docker(c.args...)
		if err == nil || !strings.Contains(out, c.want) {
			t.Errorf("%s: %v, want refused (%q):\n%s", c.name, err, c.want, out)
		}
	}
	if err := n.Ping(context.Background()); err != nil {
		t.Errorf("the unix socket after the refusals: %v", err)
	}
}

// newTestCA makes a self-signed ECDSA CA.
func newTestCA(t *testing.T, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// issueTestCert writes <name>-cert.pem and <name>-key.pem into dir, signed by
// ca, for 127.0.0.1.
func issueTestCert(t *testing.T, dir, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, usage x509.ExtKeyUsage) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, name+"-cert.pem"), "CERTIFICATE", der)
	writePEM(t, filepath.Join(dir, name+"-key.pem"), "EC PRIVATE KEY", keyDER)
}

func writePEM(t *testing.T, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
