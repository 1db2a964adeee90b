package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// labState is what lab.json in the lab's directory records: enough for another
// process to open the lab, and for a later one to tell whether it was abandoned.
type labState struct {
	Name     string      `json:"name"`
	Binary   string      `json:"binary"`
	Args     []string    `json:"args,omitempty"`
	Command  []string    `json:"command,omitempty"`
	Nodes    []nodeState `json:"nodes"`
	Detached bool        `json:"detached"`
	// Owner is the process whose lab dies with it (a test binary); nil for a
	// detached lab.
	Owner *owner `json:"owner,omitempty"`
}

type nodeState struct {
	Name string `json:"name"`
	Addr string `json:"addr"`
}

type owner struct {
	Pid   int    `json:"pid"`
	Start uint64 `json:"start"`
}

const stateFile = "lab.json"

func (s labState) write(dir string) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("write lab state: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, stateFile), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write lab state: %w", err)
	}
	return nil
}

func readLabState(dir string) (labState, error) {
	var s labState
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return s, fmt.Errorf("read lab state: %w", err)
	}
	if err := json.Unmarshal(data, &s); err != nil {
		return s, fmt.Errorf("read lab state: %w", err)
	}
	return s, nil
}

// DestroyLab removes the lab called name under root, whatever state it is in: a
// lab that Close would remove, or what a crashed test or lab command left. It
// finds the lab's processes by their pid files and by the namespaces pinned in its
// directory, its containers and cgroups by the lab's cgroup prefix.
func DestroyLab(root, name string) error {
	if !labNameRE.MatchString(name) {
		return fmt.Errorf("destroy lab: name %q: want 1 to 16 lowercase letters and digits", name)
	}
	if root == "" {
		root = DefaultLabRoot
	}
	dir := filepath.Join(root, name)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pidFiles, _ := filepath.Glob(filepath.Join(dir, "*", "daemon.pid"))
	for _, f := range pidFiles {
		if p := readPidFile(f); p != nil {
			_ = p.signal(syscall.SIGKILL)
			_ = p.wait(ctx)
		}
	}
	killInNamespaces(pinnedNamespaces(dir))
	dataRoots, _ := filepath.Glob(filepath.Join(dir, "*", "data"))
	for _, d := range dataRoots {
		removeMeshSocket(d)
	}
	cgroups := cgroupPrefix + name + "-*"
	killCgroup(cgroups)
	// The namespaces go with their pins, and with the switch's the bridge,
	// the veths and the partition rules.
	unmountUnder(dir)
	removeCgroup(cgroups)
	var errs []error
	if err := os.RemoveAll(dir); err != nil {
		errs = append(errs, fmt.Errorf("destroy lab %s: %w", name, err))
	}
	if left := cgroupDirs(cgroups); len(left) > 0 {
		errs = append(errs, fmt.Errorf("destroy lab %s: cgroups left: %s", name, strings.Join(left, " ")))
	}
	return errors.Join(errs...)
}

// ListLabs names the labs under root, and those whose cgroups are left over from
// a lab whose directory is gone.
func ListLabs(root string) ([]string, error) {
	if root == "" {
		root = DefaultLabRoot
	}
	seen := map[string]bool{}
	entries, err := os.ReadDir(root)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("list labs: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() && labNameRE.MatchString(e.Name()) {
			seen[e.Name()] = true
		}
	}
	for _, dir := range cgroupDirs(cgroupPrefix + "*-*") {
		base := filepath.Base(dir)
		if name, _, ok := strings.Cut(strings.TrimPrefix(base, cgroupPrefix), "-"); ok && strings.HasPrefix(base, cgroupPrefix) && labNameRE.MatchString(name) {
			seen[name] = true
		}
	}
	names := make([]string, 0, len(seen))
	for name := range seen {
		names = append(names, name)
	}
	sort.Strings(names)
	return names, nil
}

// sweepOrphans destroys the labs under root whose owner (a test binary) has died
// without closing them. Detached labs have no owner and stay until `lab down`.
func sweepOrphans(root string) {
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		state, err := readLabState(filepath.Join(root, e.Name()))
		if err != nil || state.Owner == nil || state.Name != e.Name() {
			continue
		}
		if adoptProcess(state.Owner.Pid, state.Owner.Start) == nil {
			_ = DestroyLab(root, state.Name)
		}
	}
}
