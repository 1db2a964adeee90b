package ca

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
)

// NodeFiles are a node's TLS material: its certificate (with any intermediate),
// its private key, and the root CA it trusts, all PEM.
type NodeFiles struct {
	CertPEM []byte
	KeyPEM  []byte
	RootPEM []byte
}

// The files a node keeps its TLS material in, named as Docker names them.
const (
	certFile = "swarm-node.crt"
	KeyFile  = "swarm-node.key" // the private key; sealed on an autolocked manager
	rootFile = "swarm-root-ca.crt"
)

// Save writes the node's TLS material into dir (created 0700), each file
// atomically and readable by root only.
func (f NodeFiles) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save node certificates: %w", err)
	}
	for name, data := range map[string][]byte{KeyFile: f.KeyPEM, certFile: f.CertPEM, rootFile: f.RootPEM} {
		if err := renameio.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return fmt.Errorf("save node certificates: %w", err)
		}
	}
	return nil
}

// LoadNodeFiles reads what Save wrote; a missing file is os.ErrNotExist.
func LoadNodeFiles(dir string) (NodeFiles, error) {
	var f NodeFiles
	var errs []error
	for name, dst := range map[string]*[]byte{KeyFile: &f.KeyPEM, certFile: &f.CertPEM, rootFile: &f.RootPEM} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		*dst = data
	}
	if err := errors.Join(errs...); err != nil {
		return NodeFiles{}, fmt.Errorf("load node certificates: %w", err)
	}
	return f, nil
}
