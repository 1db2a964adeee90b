package container

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/storage"
)

// Inspect returns the container as `docker inspect` shows it.
func (m *Manager) Inspect(ctx context.Context, ref string) (ctypes.InspectResponse, error) {
	c, err := m.lookup(ref)
	if err != nil {
		return ctypes.InspectResponse{}, err
	}
	m.mu.Lock()
	rec, run := c.rec, c.run
	st := rec.State
	var health *ctypes.Health
	if st.Health != nil {
		h := *st.Health
		h.Log = slices.Clone(h.Log)
		health = &h
	}
	m.mu.Unlock()
	paused := run != nil && run.paused()

	mps := listedMounts(rec)
	cfg, hc := rec.Config, hostConfigView(rec.HostConfig)
	ports := rec.HostConfig.PortBindings
	if ports == nil {
		ports = network.PortMap{}
	}
	return ctypes.InspectResponse{
		ID:      rec.ID,
		Created: rec.Created.Format(time.RFC3339Nano),
		Path:    rec.Path,
		Args:    rec.Args,
		State: &ctypes.State{
			Status: shownStatus(st.Status, paused), Running: st.Status == statusRunning, Paused: paused, Pid: st.Pid,
			ExitCode: st.ExitCode, OOMKilled: st.OOMKilled, Error: st.Error, Dead: false,
			StartedAt: timeString(st.StartedAt), FinishedAt: timeString(st.FinishedAt), Health: health,
		},
		Image:          rec.ImageID,
		ResolvConfPath: filepath.Join(c.dir, "resolv.conf"),
		HostnamePath:   filepath.Join(c.dir, "hostname"),
		HostsPath:      filepath.Join(c.dir, "hosts"),
		LogPath:        logPath(c.dir, rec.ID),
		Name:           "/" + rec.Name,
		RestartCount:   st.RestartCount,
		Driver:         graphDriver,
		Platform:       "linux",
		HostConfig:     &hc,
		GraphDriver:    graphDriverData(c.dir, rec.LowerDirs),
		Config:         &cfg,
		Mounts:         mps,
		NetworkSettings: &ctypes.NetworkSettings{
			SandboxID:  sandboxID(rec.NetNSPath),
			SandboxKey: rec.NetNSPath,
			Networks:   endpoints(rec),
			Ports:      ports,
		},
	}, nil
}

// graphDriver is the storage driver name Docker gives the layout shoal uses: image
// layers as overlayfs lower dirs, the container's changes in its upper dir.
const graphDriver = "overlay2"

// graphDriverData is inspect's GraphDriver: where the container's file system lives.
func graphDriverData(dir string, lower []string) *storage.DriverData {
	rev := make([]string, len(lower))
	for i, l := range lower {
		rev[len(lower)-1-i] = l
	}
	return &storage.DriverData{Name: graphDriver, Data: map[string]string{
		"LowerDir":  strings.Join(rev, ":"),
		"MergedDir": filepath.Join(dir, "rootfs"),
		"UpperDir":  filepath.Join(dir, "upper"),
		"WorkDir":   filepath.Join(dir, "work"),
	}}
}

// hostConfigView is the host configuration inspect shows: what the container was
// created with, and where that left a field unset, what the runtime applies.
func hostConfigView(hc ctypes.HostConfig) ctypes.HostConfig {
	if hc.LogConfig.Type == "" {
		hc.LogConfig.Type = "json-file"
	}
	if hc.LogConfig.Config == nil {
		hc.LogConfig.Config = map[string]string{}
	}
	if hc.NetworkMode == "" {
		hc.NetworkMode = "default"
	}
	if hc.IpcMode == "" {
		hc.IpcMode = "private" // every container gets its own IPC namespace
	}
	if hc.CgroupnsMode == "" {
		hc.CgroupnsMode = "host" // no cgroup namespace is created
	}
	if hc.ShmSize <= 0 {
		hc.ShmSize = defaultShmSize
	}
	if hc.Runtime == "" {
		hc.Runtime = "runc"
	}
	if hc.MaskedPaths == nil {
		hc.MaskedPaths = slices.Clone(defaultMaskedPaths)
	}
	if hc.ReadonlyPaths == nil {
		hc.ReadonlyPaths = slices.Clone(defaultReadonlyPaths)
	}
	if hc.PortBindings == nil {
		hc.PortBindings = network.PortMap{}
	}
	if hc.Isolation == "" {
		hc.Isolation = "default"
	}
	if hc.Ulimits == nil {
		hc.Ulimits = []*ctypes.Ulimit{}
	}
	return hc
}

// List returns `docker ps` rows, newest first; all includes stopped containers.
func (m *Manager) List(ctx context.Context, all bool) ([]ctypes.Summary, error) {
	m.mu.Lock()
	recs := make([]record, 0, len(m.byID))
	runs := map[string]*running{}
	for _, c := range m.byID {
		if all || c.rec.State.Status == statusRunning {
			recs = append(recs, c.rec)
			runs[c.rec.ID] = c.run
		}
	}
	m.mu.Unlock()
	slices.SortFunc(recs, func(a, b record) int { return b.Created.Compare(a.Created) })
	out := make([]ctypes.Summary, 0, len(recs))
	for _, rec := range recs {
		paused := runs[rec.ID] != nil && runs[rec.ID].paused()
		s := ctypes.Summary{
			ID: rec.ID, Names: []string{"/" + rec.Name}, Image: rec.Config.Image, ImageID: rec.ImageID,
			Command: commandLine(rec), Created: rec.Created.Unix(), Labels: rec.Config.Labels,
			State: shownStatus(rec.State.Status, paused), Status: statusLine(rec.State, time.Now()),
			NetworkSettings: &ctypes.NetworkSettingsSummary{Networks: endpoints(rec)},
			Ports:           portSummaries(rec.HostConfig.PortBindings),
			Mounts:          listedMounts(rec),
		}
		// As dockerd lists them: the network mode named, no port or mount a
		// [] rather than null.
		s.HostConfig.NetworkMode = string(hostConfigView(rec.HostConfig).NetworkMode)
		if h := rec.State.Health; h != nil {
			s.Health = &ctypes.HealthSummary{Status: h.Status, FailingStreak: h.FailingStreak}
		}
		if paused {
			s.Status = pausedStatusLine(rec.State, time.Now())
		}
		out = append(out, s)
	}
	return out, nil
}

// listedMounts are the container's mounts as inspect and the list show them;
// none is [], as dockerd writes it.
func listedMounts(rec record) []ctypes.MountPoint {
	mps := []ctypes.MountPoint{}
	for _, mp := range rec.Mounts {
		mps = append(mps, mp.MountPoint)
	}
	return mps
}

// portSummaries are the PORTS column of `docker ps` for the published ports the
// container was created with.
func portSummaries(pm network.PortMap) []ctypes.PortSummary {
	out := []ctypes.PortSummary{}
	for port, bindings := range pm {
		for _, b := range bindings {
			pub, _ := strconv.ParseUint(b.HostPort, 10, 16)
			out = append(out, ctypes.PortSummary{IP: b.HostIP, PrivatePort: port.Num(), PublicPort: uint16(pub), Type: string(port.Proto())})
		}
	}
	slices.SortFunc(out, func(a, b ctypes.PortSummary) int { return int(a.PrivatePort) - int(b.PrivatePort) })
	return out
}

// commandLine is the COMMAND column of `docker ps`: as dockerd writes it, an
// argument holding a space is put in single quotes.
func commandLine(rec record) string {
	parts := []string{rec.Path}
	for _, a := range rec.Args {
		if strings.Contains(a, " ") {
			a = "'" + a + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

func timeString(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.Format(time.RFC3339Nano)
}

// statusLine is the STATUS column of `docker ps`.
func statusLine(st runState, at time.Time) string {
	switch st.Status {
	case statusRunning:
		s := "Up " + humanDuration(at.Sub(st.StartedAt))
		if h := st.Health; h != nil {
			if h.Status == ctypes.Starting {
				s += " (health: starting)"
			} else {
				s += " (" + string(h.Status) + ")"
			}
		}
		return s
	case statusExited:
		return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, humanDuration(at.Sub(st.FinishedAt)))
	default:
		return "Created"
	}
}

// humanDuration reads like Docker's: "Less than a second", "3 seconds", "2 hours".
func humanDuration(d time.Duration) string {
	switch s := int(d.Seconds()); {
	case s < 1:
		return "Less than a second"
	case s == 1:
		return "1 second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	case d.Minutes() < 2:
		return "About a minute"
	case d.Minutes() < 60:
		return fmt.Sprintf("%d minutes", int(d.Minutes()))
	case d.Hours() < 2:
		return "About an hour"
	case d.Hours() < 48:
		return fmt.Sprintf("%d hours", int(d.Hours()))
	case d.Hours() < 24*14:
		return fmt.Sprintf("%d days", int(d.Hours()/24))
	case d.Hours() < 24*60:
		return fmt.Sprintf("%d weeks", int(d.Hours()/24/7))
	case d.Hours() < 24*365*2:
		return fmt.Sprintf("%d months", int(d.Hours()/24/30))
	default:
		return fmt.Sprintf("%d years", int(d.Hours()/24/365))
	}
}
