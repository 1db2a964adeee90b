package compose

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// A bad file is one error that names the file, the line where it can and
// the key.
func TestLoadErrorsLocate(t *testing.T) {
	tests := []struct {
		name, text string
		want       FileError
	}{
		{"unknown key", "services:\n  web:\n    image: busybox\n    bogus: 1\n",
			FileError{Line: 4, Key: "services.web.bogus", Msg: "unknown key (not in the Compose Spec)"}},
		{"wrong type", "services:\n  web:\n    image: busybox\n    ports: 80\n",
			FileError{Line: 4, Key: "services.web.ports", Msg: "must be a array"}},
		{"in a list", "services:\n  web:\n    image: busybox\n    ports:\n      - target: 80\n        nope: 1\n",
			FileError{Line: 5, Key: "services.web.ports.0", Msg: "additional properties 'nope' not allowed"}},
		{"syntax", "services:\n  web:\n    image: busybox\n  - x\n",
			FileError{Line: 4, Msg: "non-map value is specified"}},
		{"tab", "services:\n  web:\n\timage: busybox\n",
			FileError{Line: 3, Msg: "cannot start any token"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "ok.yaml", "services:\n  db:\n    image: busybox\n")
			writeFile(t, dir, "bad.yaml", tt.text)
			files := []string{filepath.Join(dir, "ok.yaml"), filepath.Join(dir, "bad.yaml")}
			_, err := Load(context.Background(), Options{Files: files, ProjectName: "x"})
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("Load = %v, want a FileError", err)
			}
			if fe.File != files[1] || fe.Line != tt.want.Line || fe.Key != tt.want.Key || !strings.Contains(fe.Msg, tt.want.Msg) {
				t.Errorf("Load = %s:%d %q %q, want bad.yaml:%d %q %q", fe.File, fe.Line, fe.Key, fe.Msg, tt.want.Line, tt.want.Key, tt.want.Msg)
			}
		})
	}
}

// A missing required variable names the file and line that require it and
// the key, also when the file is included by the one given.
func TestRequiredVariableLocated(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "compose.yaml", "include:\n  - path: [inc.yaml]\nservices:\n  db:\n    image: busybox\n")
	writeFile(t, dir, "inc.yaml", "services:\n  web:\n    image: busybox\n    environment:\n      A: ${TOKEN:?give the token}\n")
	_, err := Load(context.Background(), Options{Files: []string{filepath.Join(dir, "compose.yaml")}, ProjectName: "x"})
	var fe *FileError
	if !errors.As(err, &fe) {
		t.Fatalf("Load = %v, want a FileError", err)
	}
	want := filepath.Join(dir, "inc.yaml") + ":5: services.web.environment.A: required variable TOKEN is missing a value: give the token"
	if fe.Error() != want {
		t.Errorf("Load = %q, want %q", fe, want)
	}
}
