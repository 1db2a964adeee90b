package testenv

import (
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
		// Never unlocked: the thread that entered the new namespaces dies with
		// this goroutine instead of running other goroutines in them.
		runtime.LockOSThread()
		errc <- func() error {
			flags := unix.CLONE_NEWNET
			if utsPath != "" {
				flags |= unix.CLONE_NEWUTS
			}
			if err := unix.Unshare(flags); err != nil {
				return fmt.Errorf("unshare: %w", err)
			}
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
		}()
	}()
	return <-errc
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
