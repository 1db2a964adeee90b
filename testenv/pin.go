package testenv

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// pinNewNamespaces makes a new network namespace and, when utsPath is set, a new
// UTS namespace with the given hostname, and pins them by bind-mounting them
// onto netPath and utsPath, so that they outlive every process in them. They go
// when unmounted (and empty).
func pinNewNamespaces(netPath, utsPath, hostname string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- func() error {
			// The thread makes the namespaces, pins them and goes back to
			// its own (see inNetNS for why it must).
			kinds := []nsKind{{"net", unix.CLONE_NEWNET}}
			if utsPath != "" {
				kinds = append(kinds, nsKind{"uts", unix.CLONE_NEWUTS})
			}
			flags := 0
			origs := make([]*os.File, len(kinds))
			for i, kind := range kinds {
				f, err := os.Open("/proc/thread-self/ns/" + kind.name)
				if err != nil {
					return fmt.Errorf("open own %s namespace: %w", kind.name, err)
				}
				defer f.Close()
				origs[i], flags = f, flags|kind.flag
			}
			if err := unix.Unshare(flags); err != nil {
				return fmt.Errorf("unshare: %w", err)
			}
			err := pinThreadNamespaces(netPath, utsPath, hostname)
			for i, kind := range kinds {
				if serr := unix.Setns(int(origs[i].Fd()), kind.flag); serr != nil {
					return errors.Join(err, fmt.Errorf("leave new %s namespace: %w", kind.name, serr)) // the thread dies
				}
			}
			runtime.UnlockOSThread()
			return err
		}()
	}()
	return <-errc
}

// nsKind is a kind of namespace: its name in /proc/<pid>/ns and its clone flag.
type nsKind struct {
	name string
	flag int
}

// pinThreadNamespaces pins the calling thread's network (and UTS) namespaces,
// after it names its host.
func pinThreadNamespaces(netPath, utsPath, hostname string) error {
	self := fmt.Sprintf("/proc/self/task/%d/ns/", unix.Gettid())
	if err := bindNamespace(self+"net", netPath); err != nil {
		return err
	}
	if utsPath == "" {
		return nil
	}
	if err := unix.Sethostname([]byte(hostname)); err != nil {
		return fmt.Errorf("set hostname %s: %w", hostname, err)
	}
	return bindNamespace(self+"uts", utsPath)
}

// bindNamespace pins the namespace file src onto a new file at dst.
func bindNamespace(src, dst string) error {
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("pin namespace: %w", err)
	}
	f.Close()
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("pin namespace on %s: %w", dst, err)
	}
	return nil
}
