package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/sys/user"
	"github.com/opencontainers/runc/libcontainer"
	"golang.org/x/sys/unix"

	ctypes "github.com/moby/moby/api/types/container"
)

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Start runs the container's main process. Starting a running container is
// NotModified.
func (m *Manager) Start(ctx context.Context, ref string) error {
	c, err := m.lookup(ref)
	if err != nil {
		return err
	}
	c.ops.Lock()
	defer c.ops.Unlock()
	m.mu.Lock()
	if c.removed {
		m.mu.Unlock()
		return errNoSuchContainer(ref)
	}
	if c.run != nil {
		m.mu.Unlock()
		return notModifiedError{msg: "container already started"}
	}
	rec := c.rec
	m.mu.Unlock()

	run, proc, err := m.launch(c, rec)
	if err != nil {
		code := 126
		if isNotFound(err) {
			code = 127
		}
		m.mu.Lock()
		c.rec.State.ExitCode = code
		c.rec.State.Error = err.Error()
		perr := m.persistLocked(c)
		m.mu.Unlock()
		if perr != nil {
			m.log.Error("persist failed start", "id", rec.ID, "err", perr)
		}
		if code == 127 {
			return invalidError{msg: fmt.Sprintf("start container %s: %v", rec.Name, err)}
		}
		return fmt.Errorf("start container %s: %w", rec.Name, err)
	}
	st, err := run.lc.State()
	if err != nil {
		return fmt.Errorf("start container %s: read state: %w", rec.Name, err)
	}
	pidfd, err := unix.PidfdOpen(st.InitProcessPid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return fmt.Errorf("start container %s: pidfd_open: %w", rec.Name, err)
	}
	m.mu.Lock()
	c.run = run
	c.stopped = false
	c.rec.State = runState{
		Status: statusRunning, Pid: st.InitProcessPid, PidStart: st.InitProcessStartTime,
		StartedAt: now(), RestartCount: rec.State.RestartCount, Health: initialHealth(rec.Config.Healthcheck),
	}
	if err := m.persistLocked(c); err != nil {
		m.log.Error("persist started container", "id", rec.ID, "err", err)
	}
	m.mu.Unlock()
	m.emit(c, "start", 0)

	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		m.watch(c, run, pidfd, func() (int, error) {
			ps, err := proc.Wait()
			if ps == nil {
				return 255, fmt.Errorf("wait for container process: %w", err)
			}
			return exitCode(ps.Sys().(syscall.WaitStatus)), nil
		})
	}()
	m.startHealth(c, run)
	return nil
}

// launch mounts the rootfs and starts the init process under libcontainer.
func (m *Manager) launch(c *container, rec record) (*running, *libcontainer.Process, error) {
	rootfs := filepath.Join(c.dir, "rootfs")
	if len(rec.Files) > 0 && !filesMounted(c.dir) {
		return nil, nil, fmt.Errorf("the container's secrets and configs are gone: they live in memory only, while it runs; a start of a stopped container needs them again (RestoreFiles)")
	}
	if err := mountRootfs(c.dir, rec.LowerDirs); err != nil {
		return nil, nil, err
	}
	ok := false
	defer func() {
		if !ok {
			unmountRootfs(c.dir)
		}
	}()
	cfg, err := m.runtimeConfig(c, rootfs, rec.Mounts)
	if err != nil {
		return nil, nil, err
	}
	argv := append([]string{rec.Path}, rec.Args...)
	if wantsInit(rec) {
		argv = append([]string{initPath, "--"}, argv...)
	}
	proc, err := processFor(rootfs, rec.Config.User, rec.HostConfig.GroupAdd, rec.Config.WorkingDir, rec.Config.Env, argv, rec.Config.Hostname)
	if err != nil {
		return nil, nil, err
	}
	proc.Init = true
	stdout, stderr, err := openOutput(c.dir)
	if err != nil {
		return nil, nil, err
	}
	defer stdout.Close()
	defer stderr.Close()
	proc.Stdout, proc.Stderr = stdout, stderr

	if old, err := libcontainer.Load(m.cfg.StateRoot, rec.ID); err == nil {
		_ = old.Destroy() // stale state of a previous run
	}
	lc, err := libcontainer.Create(m.cfg.StateRoot, rec.ID, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("create runtime container: %w", err)
	}
	if err := lc.Run(proc); err != nil {
		_ = lc.Destroy()
		return nil, nil, err
	}
	ok = true
	return &running{lc: lc, done: make(chan struct{})}, proc, nil
}

// processFor builds a process running argv as userSpec in the container whose
// root is rootfs, with the user's groups and groupAdd (HostConfig.GroupAdd) as
// supplementary groups.
func processFor(rootfs, userSpec string, groupAdd []string, workdir string, env, argv []string, hostname string) (*libcontainer.Process, error) {
	passwd, err := securejoin.SecureJoin(rootfs, "/etc/passwd")
	if err != nil {
		return nil, err
	}
	group, err := securejoin.SecureJoin(rootfs, "/etc/group")
	if err != nil {
		return nil, err
	}
	eu, err := user.GetExecUserPath(userSpec, &user.ExecUser{Home: "/"}, passwd, group)
	if err != nil {
		return nil, errInvalidf("unable to find user %s: %v", userSpec, err)
	}
	sgids, err := supplementaryGroups(eu, groupAdd, group)
	if err != nil {
		return nil, err
	}
	if workdir == "" {
		workdir = "/"
	}
	if dir, err := securejoin.SecureJoin(rootfs, workdir); err == nil {
		if err := os.MkdirAll(dir, 0o755); err == nil && workdir != "/" {
			_ = os.Chown(dir, eu.Uid, eu.Gid)
		}
	}
	env = processEnv(env, hostname, eu.Home)
	return &libcontainer.Process{
		Args: argv, Env: env, UID: eu.Uid, GID: eu.Gid,
		AdditionalGroups: sgids, Cwd: workdir,
	}, nil
}

// supplementaryGroups are the groups a container process holds besides its primary
// group, as dockerd sets them: the primary group itself first (so `id` lists it
// under groups=), then the user's groups from the image's /etc/group, then groupAdd
// (names or IDs).
func supplementaryGroups(eu *user.ExecUser, groupAdd []string, groupPath string) ([]int, error) {
	out := []int{eu.Gid}
	add := eu.Sgids
	if len(groupAdd) > 0 {
		extra, err := user.GetAdditionalGroupsPath(groupAdd, groupPath)
		if err != nil {
			return nil, errInvalidf("unable to find groups %v: %v", groupAdd, err)
		}
		add = append(slices.Clone(add), extra...)
	}
	for _, g := range add {
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out, nil
}

func processEnv(env []string, hostname, home string) []string {
	has := func(k string) bool {
		for _, kv := range env {
			if strings.HasPrefix(kv, k+"=") {
				return true
			}
		}
		return false
	}
	var base []string
	if !has("PATH") {
		base = append(base, defaultPath)
	}
	if hostname != "" && !has("HOSTNAME") {
		base = append(base, "HOSTNAME="+hostname)
	}
	if !has("HOME") {
		base = append(base, "HOME="+home)
	}
	return append(base, env...)
}

func openOutput(dir string) (stdout, stderr *os.File, err error) {
	open := func(name string) (*os.File, error) {
		return os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	}
	if stdout, err = open("stdout"); err != nil {
		return nil, nil, fmt.Errorf("open stdout file: %w", err)
	}
	if stderr, err = open("stderr"); err != nil {
		stdout.Close()
		return nil, nil, fmt.Errorf("open stderr file: %w", err)
	}
	return stdout, stderr, nil
}

// mountRootfs mounts the overlay of lower (lowest first) with the container's
// upper and work dirs at <dir>/rootfs.
func mountRootfs(dir string, lower []string) error {
	unmountRootfs(dir) // left over from a crash
	rev := make([]string, len(lower))
	for i, l := range lower {
		rev[len(lower)-1-i] = l
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", strings.Join(rev, ":"),
		filepath.Join(dir, "upper"), filepath.Join(dir, "work"))
	if err := unix.Mount("overlay", filepath.Join(dir, "rootfs"), "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay rootfs: %w", err)
	}
	return nil
}

func unmountRootfs(dir string) {
	_ = unix.Unmount(filepath.Join(dir, "rootfs"), unix.MNT_DETACH)
}

func isNotFound(err error) bool {
	return errors.Is(err, os.ErrNotExist) || strings.Contains(err.Error(), "executable file not found") ||
		strings.Contains(err.Error(), "no such file or directory")
}

// exitCode is the shell's view of a wait status: the code, or 128+signal.
func exitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// initialHealth is the health state of a freshly started container.
func initialHealth(h *ctypes.HealthConfig) *ctypes.Health {
	if !healthEnabled(h) {
		return nil
	}
	return &ctypes.Health{Status: ctypes.Starting}
}
