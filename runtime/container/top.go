package container

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	ctypes "github.com/moby/moby/api/types/container"
)

// Top lists the processes of a running container as the host's ps prints them
// with psArgs (default "-ef"), keeping the rows whose PID is in the container's
// cgroup, and the thread rows (PID "-") that follow such a row, as `docker top`
// does. A container that is not running is Conflict; a ps that fails gives its
// own first line of error.
func (m *Manager) Top(ctx context.Context, ref, psArgs string) (ctypes.TopResponse, error) {
	if psArgs == "" {
		psArgs = "-ef"
	}
	if err := checkPSArgs(psArgs); err != nil {
		return ctypes.TopResponse{}, err
	}
	c, err := m.lookup(ref)
	if err != nil {
		return ctypes.TopResponse{}, err
	}
	m.mu.Lock()
	run, id := c.run, c.rec.ID
	m.mu.Unlock()
	if run == nil {
		return ctypes.TopResponse{}, errConflictf("container %s is not running", id)
	}
	pids, err := run.lc.Processes()
	if err != nil {
		return ctypes.TopResponse{}, fmt.Errorf("list processes of %s: %w", id, err)
	}
	out, err := runPS(ctx, strings.Fields(psArgs), pids)
	if err != nil {
		return ctypes.TopResponse{}, err
	}
	return filterPS(out, pids)
}

// checkPSArgs refuses a column renamed to a title starting with "PID" (as in
// "-o user=PID"): the PID column would then be ambiguous. Only "pid=PID..." is
// allowed.
func checkPSArgs(psArgs string) error {
	fields := strings.Fields(psArgs)
	for i, f := range fields {
		key, val, ok := strings.Cut(f, "=")
		if !ok || key == "" {
			continue
		}
		if val == "" && i+1 < len(fields) {
			val = fields[i+1]
		}
		if strings.HasPrefix(val, "PID") && key != "pid" {
			return fmt.Errorf("specifying %q is not allowed", key+"="+val)
		}
	}
	return nil
}

// runPS runs ps with args, restricted to pids with "-q" when ps accepts that
// together with args (some options, like "f", refuse it).
func runPS(ctx context.Context, args []string, pids []int) ([]byte, error) {
	sel := make([]string, len(pids))
	for i, p := range pids {
		sel[i] = strconv.Itoa(p)
	}
	if len(pids) > 0 {
		out, err := exec.CommandContext(ctx, "ps", append(slices.Clone(args), "-q"+strings.Join(sel, ","))...).Output()
		if err == nil {
			return out, nil
		}
	}
	out, err := exec.CommandContext(ctx, "ps", args...).Output()
	if err != nil {
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			if line, _, _ := bytes.Cut(exitErr.Stderr, []byte("\n")); len(line) > 0 {
				return nil, fmt.Errorf("ps: %s", line)
			}
		}
		return nil, fmt.Errorf("ps: %w", err)
	}
	return out, nil
}

// filterPS keeps the header and the rows of ps output that belong to pids. Rows
// with more fields than titles (a command with spaces) have the excess joined
// into the last column.
func filterPS(out []byte, pids []int) (ctypes.TopResponse, error) {
	lines := strings.Split(string(out), "\n")
	top := ctypes.TopResponse{Titles: asciiFields(lines[0]), Processes: [][]string{}}
	pidCol := slices.Index(top.Titles, "PID")
	if pidCol < 0 {
		return ctypes.TopResponse{}, errors.New("Couldn't find PID field in ps output")
	}
	keep := false // whether the last row with a PID was kept, for thread rows
	for _, line := range lines[1:] {
		fields := asciiFields(line)
		if len(fields) <= pidCol {
			continue
		}
		if fields[pidCol] == "-" {
			if keep {
				top.Processes = append(top.Processes, fitColumns(fields, len(top.Titles)))
			}
			continue
		}
		pid, err := strconv.Atoi(fields[pidCol])
		if err != nil {
			return ctypes.TopResponse{}, fmt.Errorf("Unexpected pid '%s': %w", fields[pidCol], err)
		}
		keep = slices.Contains(pids, pid)
		if keep {
			top.Processes = append(top.Processes, fitColumns(fields, len(top.Titles)))
		}
	}
	return top, nil
}

// fitColumns joins the fields past the last column into it.
func fitColumns(fields []string, n int) []string {
	if len(fields) <= n {
		return fields
	}
	return append(fields[:n-1:n-1], strings.Join(fields[n-1:], " "))
}

// asciiFields splits s at ASCII white space only: a command may contain other
// (Unicode) spaces that are part of its arguments.
func asciiFields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool {
		switch r {
		case ' ', '\t', '\n', '\r', '\f':
			return true
		}
		return false
	})
}
