package scheduler

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/swarm"
)

// FuzzConstraint: any placement constraint is refused or parses into a
// trimmed key and value that match a node or not, never a panic.
func FuzzConstraint(f *testing.F) {
	for _, seed := range []string{
		"node.role==manager", "node.labels.zone != east", "engine.labels.gpu==true",
		"node.hostname==", "==x", "a==b==c", "node.id!=!x", "node.platform.os == LINUX", "", "\x00==\xff",
	} {
		f.Add(seed)
	}
	node := &swarm.Node{ID: "n1"}
	node.Description.Hostname = "edge1"
	node.Spec.Role = swarm.NodeRoleManager
	node.Spec.Labels = map[string]string{"zone": "east"}
	node.Description.Engine.Labels = map[string]string{"gpu": "true"}
	f.Fuzz(func(t *testing.T, expr string) {
		key, value, _, err := ParseConstraint(expr)
		if err == nil && (key == "" || value == "" || key != strings.TrimSpace(key) || value != strings.TrimSpace(value)) {
			t.Fatalf("ParseConstraint(%q) = %q, %q", expr, key, value)
		}
		if _, merr := matchConstraint(expr, node); (merr == nil) != (err == nil) {
			t.Fatalf("matchConstraint(%q) error %v, ParseConstraint error %v", expr, merr, err)
		}
		_ = ValidConstraintKey(key)
	})
}
