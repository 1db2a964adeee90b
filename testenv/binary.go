package testenv

import (
	"fmt"
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
)

// Binary is the shoal binary under test: $SHOAL_BINARY when set (make test sets
// it), otherwise built once per test process from the module being tested.
func Binary(t testing.TB) string {
	t.Helper()
	path, err := FindBinary()
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// FindBinary is Binary for callers without a test, such as TestMain.
func FindBinary() (string, error) {
	if p := os.Getenv("SHOAL_BINARY"); p != "" {
		abs, err := filepath.Abs(p)
		if err != nil {
			return "", fmt.Errorf("resolve SHOAL_BINARY: %w", err)
		}
		return abs, nil
	}
	buildOnce.Do(func() { builtPath, buildErr = buildBinary() })
	return builtPath, buildErr
}

// buildBinary builds shoal from the module being tested into a temporary directory.
func buildBinary() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("build shoal: find module: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	dir, err := os.MkdirTemp("", "shoal-bin-")
	if err != nil {
		return "", fmt.Errorf("build shoal: %w", err)
	}
	path := filepath.Join(dir, "shoal")
	cmd := exec.Command("go", "build", "-o", path, ".")
	cmd.Dir = root
	if log, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build shoal: %w\n%s", err, log)
	}
	return path, nil
}
