package image

import "testing"

// docker image rm while containers use the image answers with dockerd's words.
func TestCheckInUse(t *testing.T) {
	id := "sha256:a08f18ecf28e" + "0123456789abcdef0123456789abcdef0123456789abcdef0123"
	one := Image{ID: id, RepoTags: []string{"busybox:latest"}, RepoDigests: []string{"busybox@sha256:" + "1234567890ab" + "0123456789abcdef0123456789abcdef0123456789abcdef0123"}}
	two := Image{ID: id, RepoTags: []string{"busybox:latest", "mine:1"}}
	running := []ContainerUse{{ID: "436960b2149c" + "0000", Running: true}}
	stopped := []ContainerUse{{ID: "436960b2149c" + "0000"}}
	for _, tc := range []struct {
		name  string
		ref   string
		img   Image
		users []ContainerUse
		force bool
		want  string // "" for no conflict
	}{
		{"unused", "busybox", one, nil, false, ""},
		{"by tag, running", "busybox", one, running, false,
			`conflict: unable to remove repository reference "busybox" (must force) - container 436960b2149c is using its referenced image a08f18ecf28e`},
		{"by tag, stopped", "busybox:latest", one, stopped, false,
			`conflict: unable to remove repository reference "busybox:latest" (must force) - container 436960b2149c is using its referenced image a08f18ecf28e`},
		{"by tag, other tags stay", "mine:1", two, running, false, ""},
		{"by tag forced, running", "busybox", one, running, true,
			"conflict: unable to delete a08f18ecf28e (cannot be forced) - image is being used by running container 436960b2149c"},
		{"by ID, running", "a08f18ecf28e", one, running, false,
			"conflict: unable to delete a08f18ecf28e (cannot be forced) - image is being used by running container 436960b2149c"},
		{"by ID, stopped", "a08f18ecf28e", one, stopped, false,
			"conflict: unable to delete a08f18ecf28e (must be forced) - image is being used by stopped container 436960b2149c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckInUse(tc.ref, tc.img, tc.users, tc.force)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || err.Error() != tc.want || !hasClass(err, "conflict") {
				t.Fatalf("error %v, want Conflict %q", err, tc.want)
			}
		})
	}
}
