package compose

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func equal(got, want any) bool { return reflect.DeepEqual(got, want) }

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
