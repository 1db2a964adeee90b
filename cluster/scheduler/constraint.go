package scheduler

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/moby/moby/api/types/swarm"
)

// matchConstraint evaluates one placement constraint ("node.role==manager",
// "node.labels.zone != east") against a node.
func matchConstraint(expr string, n *swarm.Node) (bool, error) {
	key, want, equal, err := ParseConstraint(expr)
	if err != nil {
		return false, err
	}
	got, known := nodeAttribute(key, n)
	matched := known && strings.EqualFold(got, want)
	if strings.HasPrefix(key, "node.labels.") || strings.HasPrefix(key, "engine.labels.") {
		matched = known && got == want
	}
	if equal {
		return matched, nil
	}
	return !matched, nil
}

// The words a constraint may be made of, as Docker accepts them: a key is a
// letter or underscore and at least one more letter, digit, '-', '_' or '.';
// a value is letters, digits, blanks and the characters of a simple pattern
// (: - _ . * ( ) ? + [ ] \ ^ $ | /). Neither holds '=' or '!'.
var (
	constraintKey   = regexp.MustCompile(`^(?i)[_a-z][-_.a-z0-9]+$`)
	constraintValue = regexp.MustCompile(`^(?i)[-_.a-z0-9:\s*()?+\[\]\\^$|/]+$`)
)

// ParseConstraint splits a constraint into key, value and operator (true for
// ==). Its errors are Docker's words for a malformed constraint.
func ParseConstraint(expr string) (key, value string, equal bool, err error) {
	for _, op := range []string{"==", "!="} {
		k, v, ok := strings.Cut(expr, op)
		if !ok {
			continue
		}
		key, value = strings.TrimSpace(k), strings.TrimSpace(v)
		if !constraintKey.MatchString(key) {
			return "", "", false, fmt.Errorf("key '%s' is invalid", key)
		}
		if !constraintValue.MatchString(value) {
			return "", "", false, fmt.Errorf("value '%s' is invalid", value)
		}
		return key, value, op == "==", nil
	}
	return "", "", false, errors.New("constraint expected one operator from ==, !=")
}

// ValidConstraintKey reports whether key names a node attribute constraints can use.
func ValidConstraintKey(key string) bool {
	switch strings.ToLower(key) {
	case "node.id", "node.hostname", "node.role", "node.platform.os", "node.platform.arch":
		return true
	}
	return strings.HasPrefix(key, "node.labels.") || strings.HasPrefix(key, "engine.labels.")
}

// nodeAttribute reads the attribute a constraint key names.
func nodeAttribute(key string, n *swarm.Node) (string, bool) {
	switch strings.ToLower(key) {
	case "node.id":
		return n.ID, true
	case "node.hostname":
		return n.Description.Hostname, true
	case "node.role":
		return string(n.Spec.Role), true
	case "node.platform.os":
		return n.Description.Platform.OS, true
	case "node.platform.arch":
		return n.Description.Platform.Architecture, true
	}
	if l, ok := strings.CutPrefix(key, "node.labels."); ok {
		v, found := n.Spec.Labels[l]
		return v, found
	}
	if l, ok := strings.CutPrefix(key, "engine.labels."); ok {
		v, found := n.Description.Engine.Labels[l]
		return v, found
	}
	return "", false
}
