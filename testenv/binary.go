package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	builtPath string
	buildErr  error
	buildLog  []byte
)

// Binary is the shoal binary under test: $SHOAL_BINARY when set (make test sets
// it), otherwise built once per test process from the module being tested.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("SHOAL_BINARY"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	buildOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = err
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		dir, err := os.MkdirTemp("", "shoal-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtPath = filepath.Join(dir, "shoal")
		cmd := exec.Command("go", "build", "-o", builtPath, ".")
		cmd.Dir = root
		buildLog, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("build shoal: %v\n%s", buildErr, buildLog)
	}
	return builtPath
}
