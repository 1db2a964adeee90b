package container

import (
	"slices"
	"testing"
)

// The environment is dockerd's: the container's variables first, then the
// image's it does not set.
func TestMergeEnv(t *testing.T) {
	image := []string{"PATH=/usr/bin:/bin", "HOME=/root", "LANG=C"}
	for _, c := range []struct {
		own, want []string
	}{
		{nil, image},
		{[]string{"A=1", "HOME=/srv"}, []string{"A=1", "HOME=/srv", "PATH=/usr/bin:/bin", "LANG=C"}},
		{[]string{"PATH=/opt/bin"}, []string{"PATH=/opt/bin", "HOME=/root", "LANG=C"}},
	} {
		if got := mergeEnv(image, c.own); !slices.Equal(got, c.want) {
			t.Errorf("mergeEnv(%q) = %q, want %q", c.own, got, c.want)
		}
	}
}
