// Package namespace runs code inside another network namespace without moving
// any long-lived goroutine there: the one thing the node's network packages
// (bridge, overlay, dns) all need to do the same way.
package namespace

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// Run runs fn on an OS thread that has joined ns, then returns the thread to
// the namespace it came from. Sockets and links fn makes stay in ns. A thread
// that cannot go back stays locked, so the Go runtime retires it with its
// goroutine and no other goroutine ever runs in a foreign namespace.
func Run(ns netns.NsHandle, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("get current netns: %w", err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns: %w", err)
			return
		}
		fnErr := fn()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(fnErr, fmt.Errorf("return to netns: %w", err))
			return // the thread stays locked and dies with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- fnErr
	}()
	return <-errc
}
