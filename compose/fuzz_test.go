package compose

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to Load as a compose file: it may refuse
// them, but must never panic.
func FuzzLoad(f *testing.F) {
	for _, name := range []string{"basic.yaml", "unsupported.yaml", "required.yaml"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		file := filepath.Join(dir, "compose.yaml")
		if err := os.WriteFile(file, data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _ = Load(context.Background(), Options{Files: []string{file}, ProjectName: "fuzz", Env: map[string]string{"A": "1"}})
	})
}
