package bridge

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"
)

// state is what a Network persists: enough to adopt its sandboxes and published ports
// after a daemon restart.
type state struct {
	Subnet    netip.Prefix             `json:"subnet"`
	Sandboxes map[string]*sandboxState `json:"sandboxes"`
	// LastIP and LastPort are the allocation cursors, so a released address or port is
	// not handed out again at once.
	LastIP   netip.Addr `json:"lastIP,omitzero"`
	LastPort uint16     `json:"lastPort,omitempty"`
	// Services are the ingress ports of services, by service.
	Services map[string]*serviceState `json:"services,omitempty"`
}

// sandboxState is one sandbox's record in the state file.
type sandboxState struct {
	NetNSPath string        `json:"netnsPath"`
	IP        netip.Addr    `json:"ip"`
	MAC       string        `json:"mac"`
	HostVeth  string        `json:"hostVeth"`
	Ports     []PortMapping `json:"ports,omitempty"`
}

// loadState reads the state file; a missing file is an empty state.
func loadState(path string) (*state, error) {
	st := &state{Sandboxes: map[string]*sandboxState{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("parse state %s: %w", path, err)
	}
	if st.Sandboxes == nil {
		st.Sandboxes = map[string]*sandboxState{}
	}
	return st, nil
}

// save writes the state atomically: a temporary file is synced and renamed over the
// old one, so a crash leaves either the old or the new state, never a torn one.
func (st *state) save(path string) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("encode state: %w", err)
	}
	if err := renameio.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
