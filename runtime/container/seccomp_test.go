package container

import (
	"bytes"
	"strings"
	"testing"

	ctypes "github.com/moby/moby/api/types/container"
)

func TestParseSecurityOpt(t *testing.T) {
	tests := []struct {
		opts []string
		want securityOptions
	}{
		{nil, securityOptions{}},
		{[]string{"seccomp=unconfined"}, securityOptions{seccompProfile: "unconfined"}},
		{[]string{"seccomp:unconfined"}, securityOptions{seccompProfile: "unconfined"}},
		{[]string{`seccomp={"defaultAction":"SCMP_ACT_ALLOW"}`}, securityOptions{seccompProfile: `{"defaultAction":"SCMP_ACT_ALLOW"}`}},
		{[]string{"no-new-privileges"}, securityOptions{noNewPrivileges: true}},
		{[]string{"no-new-privileges=true", "no-new-privileges=false"}, securityOptions{}},
		{[]string{"no-new-privileges:true"}, securityOptions{noNewPrivileges: true}},
		{[]string{"writable-cgroups=1"}, securityOptions{writableCgroups: true}},
		{[]string{"apparmor=unconfined", "label=disable", "disable"}, securityOptions{}},
	}
	for _, tt := range tests {
		got, err := parseSecurityOpt(tt.opts)
		if err != nil || got != tt.want {
			t.Errorf("parseSecurityOpt(%q) = %+v, %v; want %+v", tt.opts, got, err, tt.want)
		}
	}
}

func TestMalformedSecurityOptIsInvalidParameter(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	tests := []struct{ opt, msg string }{
		{"nonsense", `invalid --security-opt 1: "nonsense"`},
		{"bogus=1", `invalid --security-opt 2: "bogus=1"`},
		{"no-new-privileges=maybe", `invalid --security-opt 2: "no-new-privileges=maybe"`},
	}
	for _, tt := range tests {
		_, err := m.Create(ctxT(t), CreateRequest{
			Config:     ctypes.Config{Image: "busybox", Cmd: []string{"true"}},
			HostConfig: ctypes.HostConfig{SecurityOpt: []string{tt.opt}},
		})
		if !isErrType[interface{ InvalidParameter() bool }](err) || err.Error() != tt.msg {
			t.Errorf("create with %q: err = %v, want InvalidParameter %q", tt.opt, err, tt.msg)
		}
	}
	if list, _ := m.List(ctxT(t), true); len(list) != 0 {
		t.Fatalf("rejected creates left %d containers", len(list))
	}
}

// TestDefaultSeccompFollowsSupport checks that a container starts whether or
// not seccomp support is compiled in, filtered exactly when it is.
func TestDefaultSeccompFollowsSupport(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	id := run(t, m, CreateRequest{Config: ctypes.Config{Cmd: []string{"sleep", "1000"}}})
	want := "0"
	if SeccompEnabled() {
		want = "2"
	}
	if got := statusField(t, execOutput(t, m, id, "cat", "/proc/1/status"), "Seccomp"); got != want {
		t.Fatalf("Seccomp of the container's init = %q, want %q (SeccompEnabled %v)", got, want, SeccompEnabled())
	}
}

func TestWritableCgroups(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	for opt, want := range map[string]string{"": "ro", "writable-cgroups": "rw", "writable-cgroups=false": "ro"} {
		hc := ctypes.HostConfig{}
		if opt != "" {
			hc.SecurityOpt = []string{opt}
		}
		id := run(t, m, CreateRequest{Config: ctypes.Config{Cmd: []string{"sleep", "1000"}}, HostConfig: hc})
		mounts := execOutput(t, m, id, "cat", "/proc/self/mounts")
		var got string
		for _, line := range strings.Split(mounts, "\n") {
			if f := strings.Fields(line); len(f) > 3 && strings.HasPrefix(f[2], "cgroup") {
				got, _, _ = strings.Cut(f[3], ",") // the hierarchies: cgroup v1's or v2's
			}
		}
		if got != want {
			t.Errorf("%q: cgroup hierarchies mounted %q, want %q:\n%s", opt, got, want, mounts)
		}
	}
}

// execOutput runs cmd in container id and returns its output; it must exit 0.
func execOutput(t testing.TB, m *Manager, id string, cmd ...string) string {
	t.Helper()
	var out bytes.Buffer
	code, err := m.Exec(ctxT(t), id, ExecConfig{Cmd: cmd}, nil, &out, &out)
	if err != nil || code != 0 {
		t.Fatalf("exec %q = %d, %v: %s", cmd, code, err, out.String())
	}
	return out.String()
}

// statusField returns the value of a "Name:\tvalue" line of a /proc status file.
func statusField(t testing.TB, status, name string) string {
	t.Helper()
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, name+":\t"); ok {
			return v
		}
	}
	t.Fatalf("no %s line in %q", name, status)
	return ""
}
