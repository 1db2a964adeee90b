package initproc

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// The test binary plays the init when started with SHOAL_TEST_INIT set.
func TestMain(m *testing.M) {
	if os.Getenv("SHOAL_TEST_INIT") != "" {
		os.Exit(Run(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func initCommand(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], append([]string{"--"}, args...)...)
	cmd.Env = append(os.Environ(), "SHOAL_TEST_INIT=1")
	return cmd
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	ee, ok := err.(*exec.ExitError)
	if !ok {
		t.Fatal(err)
	}
	return ee.ExitCode()
}

func TestExitStatusPassesThrough(t *testing.T) {
	if code := exitCode(t, initCommand("sh", "-c", "exit 3").Run()); code != 3 {
		t.Fatalf("exit code %d, want 3", code)
	}
	if code := exitCode(t, initCommand("no-such-command-here").Run()); code != 127 {
		t.Fatalf("missing command: exit code %d, want 127", code)
	}
}

func TestForwardsSignals(t *testing.T) {
	cmd := initCommand("sh", "-c", `trap "exit 7" TERM; echo ready; while :; do sleep 0.05; done`)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	if _, err := out.Read(buf); err != nil || string(buf) != "ready\n" {
		t.Fatalf("child did not start: %q %v", buf, err)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if code := exitCode(t, err); code != 7 {
			t.Fatalf("exit code %d after SIGTERM, want the trap's 7", code)
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("SIGTERM was not forwarded to the command")
	}
}

func TestSignalledCommand(t *testing.T) {
	if code := exitCode(t, initCommand("sh", "-c", "kill -9 $$").Run()); code != 128+9 {
		t.Fatalf("exit code %d, want 137", code)
	}
}
