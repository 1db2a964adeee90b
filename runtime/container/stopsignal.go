package container

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// A container's main process is the init of its PID namespace, and the kernel
// drops a signal sent to such a process while it has no handler for it: a stop
// signal that arrives in the moments between the process's start and its
// installing a handler (a task updated right after it started) is lost, and
// the stop waits out the whole grace period before SIGKILL, where the process
// would have ended cleanly a moment later. Stop therefore watches for a signal
// it knows was dropped and delivers it again, once, when the process can
// receive it. A process that never handles it is killed after the grace
// period, as before.

// redeliverPoll is how often Stop looks whether a dropped stop signal can now
// be received.
const redeliverPoll = 50 * time.Millisecond

// receives reports whether the process pid would receive sig now rather than
// have it dropped as the init of a PID namespace: it catches sig or blocks it
// (a blocked signal stays pending). ok is false when the process's status
// cannot be read.
func receives(pid int, sig unix.Signal) (yes, ok bool) {
	if pid <= 0 {
		return false, false
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false, false
	}
	masks, err := signalMasks(data)
	if err != nil {
		return false, false
	}
	bit := uint64(1) << (uint(sig) - 1)
	return (masks["SigCgt"]|masks["SigBlk"])&bit != 0, true
}

// signalMasks reads the SigBlk, SigIgn and SigCgt masks of a /proc/<pid>/status.
func signalMasks(status []byte) (map[string]uint64, error) {
	out := map[string]uint64{}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		key, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "SigBlk" && key != "SigIgn" && key != "SigCgt") {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(value), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("read %s mask: %w", key, err)
		}
		out[key] = mask
	}
	if len(out) != 3 {
		return nil, fmt.Errorf("process status has %d of the 3 signal masks", len(out))
	}
	return out, sc.Err()
}

// stopSignalDropped sends sig with send and reports whether the process pid
// dropped it: it cannot receive sig just after the send. It could before
// when it was still libcontainer's init, which catches every signal, and
// executed the container's program in between: a signal that reached the
// init's handler ends it, and one that came later was dropped. (A process
// that could not receive sig before and can after installed a handler in
// between, which may or may not have caught it: that one is not sent again.)
func stopSignalDropped(pid int, sig unix.Signal, send func() error) (bool, error) {
	if err := send(); err != nil {
		return false, err
	}
	after, ok := receives(pid, sig)
	return ok && !after, nil
}
