package container

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/sys/capability"
	"github.com/opencontainers/cgroups"
	devices "github.com/opencontainers/cgroups/devices/config"
	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	"golang.org/x/sys/unix"
)

// defaultCaps is Docker's default capability set.
var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// Docker's default masked and read-only paths.
var (
	defaultMaskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
		"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
	defaultReadonlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
)

// defaultShmSize is the size of /dev/shm when HostConfig.ShmSize is unset (64 MiB,
// as dockerd's).
const defaultShmSize = 64 << 20

// cpuPeriod is the CFS period used to express NanoCPUs as a quota (as dockerd does).
const cpuPeriod = 100000

// runtimeConfig builds the libcontainer configuration of rec, whose rootfs is
// mounted at rootfs.
func (m *Manager) runtimeConfig(c *container, rootfs string, mounts []mountPoint) (*configs.Config, error) {
	rec := c.rec
	hc := rec.HostConfig
	caps, err := capabilities(hc.CapAdd, hc.CapDrop)
	if err != nil {
		return nil, err
	}
	rlimits, err := rlimitsOf(rec)
	if err != nil {
		return nil, err
	}
	cfg := &configs.Config{
		Rootfs:     rootfs,
		Readonlyfs: hc.ReadonlyRootfs,
		Hostname:   rec.Config.Hostname,
		Domainname: rec.Config.Domainname,
		Namespaces: configs.Namespaces{
			{Type: configs.NEWNS}, {Type: configs.NEWUTS}, {Type: configs.NEWIPC},
			{Type: configs.NEWPID}, {Type: configs.NEWNET, Path: rec.NetNSPath},
		},
		Capabilities:  &configs.Capabilities{Bounding: caps, Effective: caps, Permitted: caps},
		MaskPaths:     defaultMaskedPaths,
		ReadonlyPaths: defaultReadonlyPaths,
		Sysctl:        hc.Sysctls,
		Rlimits:       rlimits,
		Mounts:        append(systemMounts(hc.ShmSize), m.userMounts(c, mounts)...),
		Cgroups:       m.cgroupConfig(rec),
		Labels:        []string{"shoal.container=" + rec.ID},
	}
	if hc.MaskedPaths != nil {
		cfg.MaskPaths = hc.MaskedPaths
	}
	if hc.ReadonlyPaths != nil {
		cfg.ReadonlyPaths = hc.ReadonlyPaths
	}
	switch {
	case rec.HostConfig.NetworkMode.IsHost():
		// The node's own network namespace: the container's process stays in
		// the daemon's, as dockerd's host network does.
		cfg.Namespaces = slices.DeleteFunc(cfg.Namespaces, func(ns configs.Namespace) bool { return ns.Type == configs.NEWNET })
	case rec.NetNSPath == "":
		cfg.Networks = []*configs.Network{{Type: "loopback"}}
	}
	for _, d := range specconv.AllowedDevices {
		if d.Path != "" {
			cfg.Devices = append(cfg.Devices, d)
		}
	}
	if err := applySecurity(cfg, hc, caps, rec.ImageArchitecture); err != nil {
		return nil, err
	}
	return cfg, nil
}

func systemMounts(shmSize int64) []*configs.Mount {
	const common = unix.MS_NOEXEC | unix.MS_NOSUID | unix.MS_NODEV
	if shmSize <= 0 {
		shmSize = defaultShmSize
	}
	return []*configs.Mount{
		{Source: "proc", Destination: "/proc", Device: "proc", Flags: common},
		{Source: "tmpfs", Destination: "/dev", Device: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_STRICTATIME, Data: "mode=755,size=65536k"},
		{Source: "devpts", Destination: "/dev/pts", Device: "devpts", Flags: unix.MS_NOSUID | unix.MS_NOEXEC, Data: "newinstance,ptmxmode=0666,mode=0620,gid=5"},
		{Source: "sysfs", Destination: "/sys", Device: "sysfs", Flags: common | unix.MS_RDONLY},
		{Source: "cgroup", Destination: "/sys/fs/cgroup", Device: "cgroup", Flags: common | unix.MS_RDONLY | unix.MS_RELATIME},
		{Source: "mqueue", Destination: "/dev/mqueue", Device: "mqueue", Flags: common},
		{Source: "shm", Destination: "/dev/shm", Device: "tmpfs", Flags: common, Data: fmt.Sprintf("mode=1777,size=%d", shmSize)},
	}
}

// userMounts are the host files and the user's binds, volumes and tmpfs mounts.
func (m *Manager) userMounts(c *container, mounts []mountPoint) []*configs.Mount {
	bind := func(src, dst string, ro bool) *configs.Mount {
		flags := unix.MS_BIND | unix.MS_REC
		if ro {
			flags |= unix.MS_RDONLY
		}
		return &configs.Mount{
			Source: src, Destination: dst, Device: "bind", Flags: flags,
			PropagationFlags: []int{unix.MS_PRIVATE | unix.MS_REC},
		}
	}
	var out []*configs.Mount
	taken := map[string]bool{}
	for _, mp := range mounts {
		taken[filepath.Clean(mp.Destination)] = true
	}
	for _, f := range c.rec.Files {
		taken[f.Path] = true
	}
	for _, f := range []string{"hostname", "hosts", "resolv.conf"} {
		if dst := "/etc/" + f; !taken[dst] {
			out = append(out, bind(filepath.Join(c.dir, f), dst, false))
		}
	}
	if wantsInit(c.rec) {
		out = append(out, bind(m.cfg.InitBinary, initPath, true))
	}
	for _, mp := range mounts {
		if mp.Type == "tmpfs" {
			data := "mode=1777"
			if mp.TmpfsOptions != "" {
				data = mp.TmpfsOptions
			}
			out = append(out, &configs.Mount{
				Source: "tmpfs", Destination: mp.Destination, Device: "tmpfs",
				Flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC, Data: data,
			})
			continue
		}
		out = append(out, bind(mp.Source, mp.Destination, !mp.RW))
	}
	// Last, so that a file under a volume or tmpfs mount lands on top of it.
	for _, f := range c.rec.Files {
		out = append(out, bind(filepath.Join(filesDir(c.dir), f.Name), f.Path, true))
	}
	return out
}

func (m *Manager) cgroupConfig(rec record) *cgroups.Cgroup {
	hc := rec.HostConfig
	res := &cgroups.Resources{
		Memory:            hc.Memory,
		MemoryReservation: hc.MemoryReservation,
		CpuShares:         uint64(max(hc.CPUShares, 0)),
		CpuQuota:          hc.CPUQuota,
		CpuPeriod:         uint64(max(hc.CPUPeriod, 0)),
	}
	if hc.Memory > 0 && hasSwapAccounting() {
		// memsw equal to the limit: no swap, so an over-limit task is OOM-killed.
		res.MemorySwap = hc.Memory
		if hc.MemorySwap > 0 {
			res.MemorySwap = hc.MemorySwap
		}
	}
	if hc.NanoCPUs > 0 {
		res.CpuPeriod = cpuPeriod
		res.CpuQuota = hc.NanoCPUs * cpuPeriod / 1e9
	}
	if hc.PidsLimit != nil && *hc.PidsLimit > 0 {
		limit := *hc.PidsLimit
		res.PidsLimit = &limit
	}
	res.Devices = append(res.Devices, &devices.Rule{
		Type: devices.WildcardDevice, Major: devices.Wildcard, Minor: devices.Wildcard,
		Permissions: "rwm", Allow: false,
	})
	for _, d := range specconv.AllowedDevices {
		rule := d.Rule
		res.Devices = append(res.Devices, &rule)
	}
	res.Devices = append(res.Devices,
		&devices.Rule{Type: devices.CharDevice, Major: 136, Minor: devices.Wildcard, Permissions: "rwm", Allow: true}, // /dev/pts/*
		&devices.Rule{Type: devices.CharDevice, Major: 5, Minor: 2, Permissions: "rwm", Allow: true},                  // /dev/ptmx
	)
	parent := m.cfg.CgroupParent
	if hc.CgroupParent != "" {
		parent = hc.CgroupParent
	}
	return &cgroups.Cgroup{Path: "/" + strings.Trim(parent, "/") + "/" + rec.ID, Resources: res}
}

func hasSwapAccounting() bool {
	_, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
	return err == nil
}

// capabilities applies CapAdd and CapDrop (with or without "CAP_", or "ALL") to
// Docker's default set.
func capabilities(add, drop []string) ([]string, error) {
	norm := func(list []string) ([]string, error) {
		var out []string
		for _, c := range list {
			c = strings.ToUpper(strings.TrimSpace(c))
			if c == "ALL" {
				out = append(out, "ALL")
				continue
			}
			if !strings.HasPrefix(c, "CAP_") {
				c = "CAP_" + c
			}
			if !knownCap(c) {
				return nil, errInvalidf("unknown capability: %q", c)
			}
			out = append(out, c)
		}
		return out, nil
	}
	add, err := norm(add)
	if err != nil {
		return nil, err
	}
	drop, err = norm(drop)
	if err != nil {
		return nil, err
	}
	caps := slices.Clone(defaultCaps)
	if slices.Contains(add, "ALL") {
		caps = allCaps()
	}
	if slices.Contains(drop, "ALL") {
		caps = nil
	}
	for _, c := range add {
		if c != "ALL" && !slices.Contains(caps, c) {
			caps = append(caps, c)
		}
	}
	caps = slices.DeleteFunc(caps, func(c string) bool {
		return slices.Contains(drop, c) && !slices.Contains(add, c)
	})
	return caps, nil
}

func allCaps() []string {
	var out []string
	for _, c := range capability.ListKnown() {
		out = append(out, "CAP_"+strings.ToUpper(c.String()))
	}
	return out
}

func knownCap(name string) bool {
	return slices.Contains(allCaps(), name)
}

// rlimitsOf converts HostConfig Ulimits (e.g. "nofile") to libcontainer rlimits.
func rlimitsOf(rec record) ([]configs.Rlimit, error) {
	names := map[string]int{
		"core": unix.RLIMIT_CORE, "cpu": unix.RLIMIT_CPU, "data": unix.RLIMIT_DATA,
		"fsize": unix.RLIMIT_FSIZE, "locks": unix.RLIMIT_LOCKS, "memlock": unix.RLIMIT_MEMLOCK,
		"msgqueue": unix.RLIMIT_MSGQUEUE, "nice": unix.RLIMIT_NICE, "nofile": unix.RLIMIT_NOFILE,
		"nproc": unix.RLIMIT_NPROC, "rss": unix.RLIMIT_RSS, "rtprio": unix.RLIMIT_RTPRIO,
		"rttime": unix.RLIMIT_RTTIME, "sigpending": unix.RLIMIT_SIGPENDING, "stack": unix.RLIMIT_STACK,
		"as": unix.RLIMIT_AS,
	}
	var out []configs.Rlimit
	for _, u := range rec.HostConfig.Ulimits {
		if u == nil {
			continue
		}
		t, ok := names[strings.ToLower(u.Name)]
		if !ok {
			return nil, errInvalidf("invalid ulimit type: %s", u.Name)
		}
		out = append(out, configs.Rlimit{Type: t, Soft: uint64(u.Soft), Hard: uint64(u.Hard)})
	}
	return out, nil
}

// initPath is where a container's init (--init) is bound, as Docker's docker-init.
const initPath = "/sbin/docker-init"

// wantsInit reports whether the container runs under an init (HostConfig.Init).
func wantsInit(rec record) bool { return rec.HostConfig.Init != nil && *rec.HostConfig.Init }
