package image

import (
	"fmt"
	"strings"
)

// ContainerUse is a container that uses an image, as CheckInUse needs to know it.
type ContainerUse struct {
	ID      string
	Running bool // running, restarting or paused: the image cannot be deleted, even forced
}

// CheckInUse returns the Conflict error dockerd gives when `docker image rm ref`
// (img is what ref names) must be refused because containers use the image, or nil
// when Remove may go ahead.
//
// By name, the reference alone is removed when others are left; removing the only
// reference needs force, as the image would be left without a name. Unlike dockerd,
// a forced removal of that last name is refused while a container uses the image:
// the store cannot keep an image it has no reference to. By ID, a running
// container always blocks, a stopped one unless forced; here too force is refused,
// for the same reason.
func CheckInUse(ref string, img Image, users []ContainerUse, force bool) error {
	if len(users) == 0 {
		return nil
	}
	refs := append(append([]string(nil), img.RepoTags...), img.RepoDigests...)
	if !isIDPrefix(img.ID, ref) {
		if !singleRepository(refs) {
			return nil // other references stay: only this one goes
		}
		if !force {
			return conflictError{msg: fmt.Sprintf(
				"conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s",
				ref, shortID(users[0].ID), shortID(img.ID))}
		}
	}
	use := users[0]
	for _, u := range users {
		if u.Running {
			use = u
			break
		}
	}
	how, why := "must be forced", "stopped"
	if use.Running {
		how, why = "cannot be forced", "running"
	} else if force {
		how = "cannot be forced"
	}
	return conflictError{msg: fmt.Sprintf("conflict: unable to delete %s (%s) - image is being used by %s container %s",
		shortID(img.ID), how, why, shortID(use.ID))}
}

// isIDPrefix reports whether ref names the image id by (a prefix of) its ID.
func isIDPrefix(id, ref string) bool {
	return strings.HasPrefix(id, ref) || strings.HasPrefix(id, "sha256:"+ref)
}
