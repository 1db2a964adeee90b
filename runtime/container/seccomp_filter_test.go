//go:build seccomp

package container

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"

	ctypes "github.com/moby/moby/api/types/container"
)

// denyMkdir allows everything but mkdir and mkdirat, which fail with EPERM.
const denyMkdir = `{
	"defaultAction": "SCMP_ACT_ALLOW",
	"syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]
}`

// sleeper starts a busybox container that sleeps, with hc, and returns its ID.
func sleeper(t testing.TB, m *Manager, hc ctypes.HostConfig) string {
	t.Helper()
	return run(t, m, CreateRequest{Config: ctypes.Config{Cmd: []string{"sleep", "1000"}}, HostConfig: hc})
}

// execCode runs cmd in container id and returns its exit code and output.
func execCode(t testing.TB, m *Manager, id string, cmd ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code, err := m.Exec(ctxT(t), id, ExecConfig{Cmd: cmd}, nil, &out, &out)
	if err != nil {
		t.Fatalf("exec %q: %v", cmd, err)
	}
	return code, out.String()
}

func TestSeccompEnabledWhenBuiltWithTag(t *testing.T) {
	if !SeccompEnabled() {
		t.Fatal("SeccompEnabled() = false in a seccomp build on a kernel with seccomp filters")
	}
}

func TestDefaultProfileFiltersInitAndExec(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	id := sleeper(t, m, ctypes.HostConfig{})
	if got := statusField(t, execOutput(t, m, id, "cat", "/proc/1/status"), "Seccomp"); got != "2" {
		t.Errorf("init Seccomp = %q, want 2", got)
	}
	if got := statusField(t, execOutput(t, m, id, "cat", "/proc/self/status"), "Seccomp"); got != "2" {
		t.Errorf("exec'd process Seccomp = %q, want 2", got)
	}
	// The default profile denies unshare without CAP_SYS_ADMIN, even for a new
	// user namespace, which the kernel alone would allow.
	if code, out := execCode(t, m, id, "unshare", "-U", "true"); code == 0 {
		t.Errorf("unshare -U under the default profile succeeded: %q", out)
	}
}

func TestAddedCapabilityOpensItsSyscalls(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	id := sleeper(t, m, ctypes.HostConfig{CapAdd: []string{"SYS_ADMIN"}})
	if code, out := execCode(t, m, id, "mount", "-t", "tmpfs", "none", "/tmp"); code != 0 {
		t.Fatalf("mount with CAP_SYS_ADMIN under the default profile = %d: %q", code, out)
	}
	if got := statusField(t, execOutput(t, m, id, "cat", "/proc/1/status"), "Seccomp"); got != "2" {
		t.Errorf("init Seccomp = %q, want 2", got)
	}
}

func TestUnconfinedAndPrivilegedRunWithoutFilter(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	for name, hc := range map[string]ctypes.HostConfig{
		"unconfined": {SecurityOpt: []string{"seccomp=unconfined"}},
		"privileged": {Privileged: true},
	} {
		id := sleeper(t, m, hc)
		if got := statusField(t, execOutput(t, m, id, "cat", "/proc/1/status"), "Seccomp"); got != "0" {
			t.Errorf("%s: init Seccomp = %q, want 0", name, got)
		}
		if code, out := execCode(t, m, id, "unshare", "-U", "true"); code != 0 {
			t.Errorf("%s: unshare -U = %d: %q", name, code, out)
		}
	}
}

func TestCustomProfileDeniesItsSyscalls(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	id := run(t, m, CreateRequest{
		Config: ctypes.Config{Cmd: []string{"sh", "-c",
			"mkdir /tmp/d && echo made; echo written > /tmp/f && cat /tmp/f"}},
		HostConfig: ctypes.HostConfig{SecurityOpt: []string{"seccomp=" + denyMkdir}},
	})
	if e := waitExit(t, m, id); e.Code != 0 {
		t.Fatalf("exit = %+v", e)
	}
	text, _ := logText(t, m, id, LogOptions{})
	if strings.Contains(text, "made") || !strings.Contains(text, "Operation not permitted") {
		t.Errorf("mkdir under a profile denying it: %q", text)
	}
	if !strings.Contains(text, "written\n") {
		t.Errorf("other syscalls under the custom profile: %q", text)
	}
}

func TestNoNewPrivileges(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	for opt, want := range map[string]string{"": "0", "no-new-privileges": "1", "no-new-privileges=true": "1"} {
		hc := ctypes.HostConfig{}
		if opt != "" {
			hc.SecurityOpt = []string{opt}
		}
		id := sleeper(t, m, hc)
		if got := statusField(t, execOutput(t, m, id, "cat", "/proc/1/status"), "NoNewPrivs"); got != want {
			t.Errorf("%q: init NoNewPrivs = %q, want %q", opt, got, want)
		}
		if got := statusField(t, execOutput(t, m, id, "cat", "/proc/self/status"), "NoNewPrivs"); got != want {
			t.Errorf("%q: exec'd NoNewPrivs = %q, want %q", opt, got, want)
		}
	}
}

func TestMalformedProfileIsInvalidParameter(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	for _, profile := range []string{`{"defaultAction": `, `{"defaultAction": "SCMP_ACT_SOMETIMES"}`} {
		_, err := m.Create(ctxT(t), CreateRequest{
			Config:     ctypes.Config{Image: "busybox", Cmd: []string{"true"}},
			HostConfig: ctypes.HostConfig{SecurityOpt: []string{"seccomp=" + profile}},
		})
		if !isErrType[interface{ InvalidParameter() bool }](err) {
			t.Errorf("profile %q: err = %v, want InvalidParameter", profile, err)
		}
	}
}

// BenchmarkStart measures Create+Start of a sleeping container, under the
// default profile and without a filter.
func BenchmarkStart(b *testing.B) {
	for _, opt := range []string{"seccomp=builtin", "seccomp=unconfined"} {
		b.Run(opt, func(b *testing.B) {
			env := newTestEnv(b)
			m := env.open()
			cleanupContainers(b, m)
			for b.Loop() {
				id := sleeper(b, m, ctypes.HostConfig{SecurityOpt: []string{opt}})
				b.StopTimer()
				if err := m.Remove(context.Background(), id, true); err != nil {
					b.Fatalf("remove: %v", err)
				}
				b.StartTimer()
			}
		})
	}
}

// The default filter covers the node's own architecture, and a 32-bit image's
// compat one when the image is of that architecture.
func TestDefaultFilterArchitectures(t *testing.T) {
	native, err := seccompFilter("", false, defaultCaps, runtime.GOARCH)
	if err != nil || native == nil {
		t.Fatalf("default filter: %v %v", native, err)
	}
	if len(native.Architectures) != 1 {
		t.Errorf("default filter of a native image covers %v, want the node's architecture alone", native.Architectures)
	}
	compat := map[string]string{"amd64": "386", "arm64": "arm"}[runtime.GOARCH]
	withCompat, err := seccompFilter("", false, defaultCaps, compat)
	if err != nil || withCompat == nil {
		t.Fatalf("default filter for a %s image: %v %v", compat, withCompat, err)
	}
	if len(withCompat.Architectures) != 2 {
		t.Errorf("default filter of a %s image covers %v, want the node's and the image's", compat, withCompat.Architectures)
	}
	custom, err := seccompFilter(`{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"]}`, false, defaultCaps, "")
	if err != nil || custom == nil || len(custom.Architectures) != 3 {
		t.Errorf("a custom profile's architectures are its own: %v %v", custom, err)
	}
}
