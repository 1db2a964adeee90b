package bridge

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
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
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("sync state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("replace state: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
