package dump

import (
	"errors"
	"testing"

	"github.com/vishvananda/netlink"
)

// An interrupted dump is read again until it completes; another error is
// returned at once; a dump interrupted every time gives up with the error.
func TestAll(t *testing.T) {
	calls := 0
	got, err := All(func() ([]int, error) {
		calls++
		if calls < 3 {
			return []int{1}, netlink.ErrDumpInterrupted
		}
		return []int{1, 2}, nil
	})
	if err != nil || len(got) != 2 || calls != 3 {
		t.Errorf("got %v, %v after %d calls; want the whole list on the third", got, err, calls)
	}

	boom := errors.New("boom")
	calls = 0
	if _, err := All(func() (int, error) { calls++; return 0, boom }); !errors.Is(err, boom) || calls != 1 {
		t.Errorf("another error: %v after %d calls", err, calls)
	}

	calls = 0
	if _, err := All(func() (int, error) { calls++; return 0, netlink.ErrDumpInterrupted }); !errors.Is(err, netlink.ErrDumpInterrupted) || calls != attempts {
		t.Errorf("always interrupted: %v after %d calls", err, calls)
	}
}
