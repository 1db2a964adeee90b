package container

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	ctypes "github.com/moby/moby/api/types/container"
)

func TestTopListsTheContainersProcessesOnly(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	id := run(t, m, CreateRequest{Name: "top-sleeps", Config: ctypes.Config{
		Cmd: []string{"sh", "-c", "sleep 1000 & exec sleep 999"},
	}})

	// Until sh has exec'd, its own row shows instead of "sleep 999".
	var top ctypes.TopResponse
	var cmds []string
	eventually(t, 10*time.Second, "both sleeps in docker top", func() bool {
		var err error
		if top, err = m.Top(ctxT(t), "top-sleeps", ""); err != nil {
			t.Fatalf("Top: %v", err)
		}
		cmds = cmds[:0]
		for _, p := range top.Processes {
			if len(p) != len(top.Titles) {
				t.Fatalf("row %q does not fit the titles %q", p, top.Titles)
			}
			if p[1] == strconv.Itoa(os.Getpid()) {
				t.Fatalf("the test process is listed: %q", p)
			}
			cmds = append(cmds, p[7])
		}
		slices.Sort(cmds)
		return slices.Equal(cmds, []string{"sleep 1000", "sleep 999"})
	})
	if want := []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"}; !slices.Equal(top.Titles, want) {
		t.Fatalf("titles = %q, want %q (ps -ef)", top.Titles, want)
	}

	top, err := m.Top(ctxT(t), id[:12], "-o pid,comm")
	if err != nil {
		t.Fatalf("Top -o pid,comm: %v", err)
	}
	if !slices.Equal(top.Titles, []string{"PID", "COMMAND"}) || len(top.Processes) != 2 ||
		top.Processes[0][1] != "sleep" || top.Processes[1][1] != "sleep" {
		t.Fatalf("top -o pid,comm = %+v, want two sleep rows under PID COMMAND", top)
	}
}

func TestTopErrors(t *testing.T) {
	env := newTestEnv(t)
	m := env.open()
	cleanupContainers(t, m)
	done := run(t, m, CreateRequest{Name: "top-done", Config: ctypes.Config{Cmd: []string{"true"}}})
	waitExit(t, m, done)
	run(t, m, CreateRequest{Name: "top-live", Config: ctypes.Config{Cmd: []string{"sleep", "1000"}}})

	_, err := m.Top(ctxT(t), "top-done", "")
	if !isErrType[interface{ Conflict() bool }](err) || err.Error() != "container "+done+" is not running" {
		t.Fatalf("top of an exited container: %v, want Conflict \"container %s is not running\"", err, done)
	}
	_, err = m.Top(ctxT(t), "nope", "")
	if !isErrType[interface{ NotFound() bool }](err) || err.Error() != "No such container: nope" {
		t.Fatalf("top of an unknown container: %v", err)
	}
	_, err = m.Top(ctxT(t), "top-live", "--no-such-option")
	if err == nil || !strings.HasPrefix(err.Error(), "ps: ") || isErrType[interface{ Conflict() bool }](err) {
		t.Fatalf("top with bad ps args: %v, want ps's own message", err)
	}
	_, err = m.Top(ctxT(t), "top-live", "-o user=PID")
	if err == nil || !strings.Contains(err.Error(), `"user=PID" is not allowed`) {
		t.Fatalf("top -o user=PID: %v, want refused", err)
	}
}

func TestFilterPSKeepsThreadRowsOfContainerProcesses(t *testing.T) {
	out := "UID PID TID CMD\n" +
		"root 10 - sh -c x\n" +
		"root - 10 -\n" +
		"root 11 - sleep 1\n" +
		"root - 11 -\n"
	top, err := filterPS([]byte(out), []int{10})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"root", "10", "-", "sh -c x"}, {"root", "-", "10", "-"}}
	if len(top.Processes) != len(want) || !slices.Equal(top.Processes[0], want[0]) || !slices.Equal(top.Processes[1], want[1]) {
		t.Fatalf("processes = %q, want %q", top.Processes, want)
	}
	if _, err := filterPS([]byte("UID CMD\nroot sh\n"), []int{1}); err == nil {
		t.Fatal("ps output without a PID column accepted")
	}
}
