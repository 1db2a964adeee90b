package container

import (
	"maps"
	"testing"
)

// The attributes `--log-opt` asks for are the named and matching labels and
// environment variables that the container has, as dockerd tags log lines.
func TestLogAttributes(t *testing.T) {
	labels := map[string]string{"team": "a", "tier": "web", "other": "x"}
	env := []string{"asdf=test1", "PATH=/bin", "APP_MODE=prod", "APP_LEVEL=3", "EMPTY="}
	for _, tc := range []struct {
		name string
		opts map[string]string
		want map[string]string
	}{
		{"none", nil, map[string]string{}},
		{"env", map[string]string{"env": "asdf,EMPTY,missing"}, map[string]string{"asdf": "test1", "EMPTY": ""}},
		{"env-regex", map[string]string{"env-regex": "^APP_"}, map[string]string{"APP_MODE": "prod", "APP_LEVEL": "3"}},
		{"labels", map[string]string{"labels": "team,missing"}, map[string]string{"team": "a"}},
		{"labels-regex", map[string]string{"labels-regex": "^t"}, map[string]string{"team": "a", "tier": "web"}},
		{"bad regex", map[string]string{"env-regex": "("}, map[string]string{}},
	} {
		if got := LogAttributes(tc.opts, labels, env); !maps.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
