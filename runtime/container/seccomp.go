package container

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"

	ctypes "github.com/moby/moby/api/types/container"
	"github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runc/libcontainer/configs"
	lcseccomp "github.com/opencontainers/runc/libcontainer/seccomp"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Values of "seccomp=" that are not a profile, as dockerd names them.
const (
	seccompUnconfined = "unconfined"
	seccompBuiltin    = "builtin"
)

// SeccompEnabled reports whether containers get seccomp filters: the binary was
// built with runc's seccomp support (build tag "seccomp", cgo and libseccomp) and
// the kernel can filter system calls. When it is false containers run unfiltered.
func SeccompEnabled() bool { return seccompEnabled() }

// seccompEnabled probes once: neither the build nor the kernel changes.
var seccompEnabled = sync.OnceValue(func() bool {
	return lcseccomp.Enabled && kernelFiltersSyscalls()
})

// kernelFiltersSyscalls probes as dockerd does: with a NULL filter, a kernel
// with CONFIG_SECCOMP_FILTER fails with EFAULT and installs nothing.
func kernelFiltersSyscalls() bool {
	if err := unix.Prctl(unix.PR_GET_SECCOMP, 0, 0, 0, 0); errors.Is(err, unix.EINVAL) {
		return false
	}
	err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, 0, 0, 0)
	return errors.Is(err, unix.EFAULT)
}

// securityOptions is what HostConfig.SecurityOpt asks for.
type securityOptions struct {
	seccompProfile  string // "", "builtin", "unconfined" or a JSON profile
	noNewPrivileges bool
	writableCgroups bool
}

// parseSecurityOpt reads SecurityOpt entries the way dockerd does. AppArmor and
// SELinux options are accepted and have no effect, as on a host without them.
func parseSecurityOpt(opts []string) (securityOptions, error) {
	var sec securityOptions
	for _, opt := range opts {
		switch opt {
		case "no-new-privileges":
			sec.noNewPrivileges = true
			continue
		case "writable-cgroups":
			sec.writableCgroups = true
			continue
		case "disable":
			continue
		}
		sep := "="
		if !strings.Contains(opt, "=") {
			sep = ":" // the deprecated separator, still read by dockerd
		}
		k, v, ok := strings.Cut(opt, sep)
		if !ok {
			return sec, errInvalidf("invalid --security-opt 1: %q", opt)
		}
		var err error
		switch k {
		case "label", "apparmor":
		case "seccomp":
			sec.seccompProfile = v
		case "no-new-privileges":
			sec.noNewPrivileges, err = strconv.ParseBool(v)
		case "writable-cgroups":
			sec.writableCgroups, err = strconv.ParseBool(v)
		default:
			err = errors.New("unknown option")
		}
		if err != nil {
			return sec, errInvalidf("invalid --security-opt 2: %q", opt)
		}
	}
	return sec, nil
}

// applySecurity sets cfg's no-new-privileges flag, cgroup mount and seccomp
// filter from hc; caps is the container's capability set, which opens the
// syscalls that the default profile grants to added capabilities, and imageArch
// the image's architecture.
func applySecurity(cfg *configs.Config, hc ctypes.HostConfig, caps []string, imageArch string) error {
	sec, err := parseSecurityOpt(hc.SecurityOpt)
	if err != nil {
		return err
	}
	cfg.NoNewPrivileges = sec.noNewPrivileges
	for _, mnt := range cfg.Mounts {
		if mnt.Device == "cgroup" && sec.writableCgroups {
			mnt.Flags &^= unix.MS_RDONLY
		}
	}
	cfg.Seccomp, err = seccompFilter(sec.seccompProfile, hc.Privileged, caps, imageArch)
	return err
}

// seccompFilter returns the filter a container runs under, nil for none: the
// default profile unless profile names another or the container is privileged.
func seccompFilter(profile string, privileged bool, caps []string, imageArch string) (*configs.Seccomp, error) {
	custom := profile != "" && profile != seccompBuiltin && profile != seccompUnconfined
	if !SeccompEnabled() {
		if custom {
			return nil, errInvalidf("seccomp is not enabled in this runtime, cannot run a custom seccomp profile")
		}
		return nil, nil
	}
	if profile == seccompUnconfined || (privileged && !custom) {
		return nil, nil
	}
	rs := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{
		Bounding: caps, Effective: caps, Permitted: caps,
	}}}
	var spec *specs.LinuxSeccomp
	var err error
	if custom {
		spec, err = seccomp.LoadProfile(profile, rs)
	} else {
		spec, err = seccomp.GetDefaultProfile(rs)
		if spec != nil {
			spec.Architectures = filteredArchitectures(spec.Architectures, imageArch)
		}
	}
	if err != nil {
		return nil, errInvalidf("load seccomp profile: %v", err)
	}
	if spec == nil { // a profile with no default action and no rules
		return nil, nil
	}
	out, err := specconv.SetupSeccomp(spec)
	if err != nil {
		return nil, errInvalidf("load seccomp profile: %v", err)
	}
	return out, nil
}

// checkSecurity rejects at create what start would fail on: unknown
// capabilities, malformed security options and unusable seccomp profiles.
func checkSecurity(hc ctypes.HostConfig) error {
	caps, err := capabilities(hc.CapAdd, hc.CapDrop)
	if err != nil {
		return err
	}
	return applySecurity(&configs.Config{}, hc, caps, "")
}

// compatArch names, for each image architecture that a 64-bit node also runs,
// the seccomp architecture of its system calls.
var compatArch = map[string]specs.Arch{
	"386": specs.ArchX86,
	"arm": specs.ArchARM,
}

// filteredArchitectures keeps, of the default profile's architectures, the node's
// own (the first) and the one a 32-bit image needs. Every architecture in a
// filter multiplies the time libseccomp takes to build it in the container's
// init: with x86_64, x86 and x32 a start took 50 ms here, with x86_64 alone 19 ms
// (Docker keeps them all). A 64-bit image that runs 32-bit binaries inside needs
// seccomp=unconfined or its own profile.
func filteredArchitectures(archs []specs.Arch, imageArch string) []specs.Arch {
	if len(archs) == 0 {
		return archs
	}
	out := []specs.Arch{archs[0]}
	if compat, ok := compatArch[imageArch]; ok && compat != archs[0] && slices.Contains(archs, compat) {
		out = append(out, compat)
	}
	return out
}
