// Package dump reads netlink dumps (links, addresses, routes, rules,
// neighbours) to the end. The kernel marks a dump interrupted when what it
// lists changed while it was read (another process adding a link, say), and
// the netlink library then returns what it got with an error; a caller that
// needs the whole list reads it again.
package dump

import (
	"errors"
	"fmt"

	"github.com/vishvananda/netlink"
)

// attempts bounds the reads of one list: a dump is interrupted only by a
// change during it, so a second read nearly always completes.
const attempts = 5

// All returns what list returns, read again while the kernel says the dump was
// interrupted.
func All[T any](list func() (T, error)) (T, error) {
	var (
		out T
		err error
	)
	for range attempts {
		out, err = list()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return out, err
		}
	}
	return out, fmt.Errorf("interrupted %d times: %w", attempts, err)
}
