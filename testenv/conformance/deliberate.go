package conformance

import (
	"fmt"
	"os"
	"regexp"
	"strings"
)

// Deliberate is one difference from dockerd that shoal keeps on purpose (or
// knows of and has not fixed yet), with its reason. A line of deliberate.txt:
//
//	scenario | step | field | reason
//
// where scenario, step and field are patterns in which * stands for anything.
type Deliberate struct {
	Line                  int
	Scenario, Step, Field string
	Reason                string
	match                 [3]*regexp.Regexp
}

// LoadDeliberate reads the file of deliberate differences.
func LoadDeliberate(path string) ([]*Deliberate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read deliberate differences: %w", err)
	}
	var list []*Deliberate
	for i, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		parts := strings.SplitN(l, " | ", 4)
		if len(parts) != 4 || strings.TrimSpace(parts[3]) == "" {
			return nil, fmt.Errorf("%s line %d: want `scenario | step | field | reason`", path, i+1)
		}
		d := &Deliberate{Line: i + 1, Scenario: parts[0], Step: parts[1], Field: parts[2], Reason: parts[3]}
		for j, p := range parts[:3] {
			d.match[j] = glob(strings.TrimSpace(p))
		}
		list = append(list, d)
	}
	return list, nil
}

func glob(p string) *regexp.Regexp {
	return regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(p), `\*`, ".*") + "$")
}

// Matches tells whether the difference is this deliberate one.
func (d *Deliberate) Matches(diff Difference) bool {
	return d.match[0].MatchString(diff.Scenario) && d.match[1].MatchString(diff.Step) && d.match[2].MatchString(diff.Field)
}

// ForAny tells whether the entry names one of the corpus's scenarios; an
// entry for every scenario ("*") counts when wildcards is set (for the corpus
// that has most of them).
func (d *Deliberate) ForAny(corpus []Scenario, wildcards bool) bool {
	if strings.TrimSpace(d.Scenario) == "*" {
		return wildcards
	}
	for _, sc := range corpus {
		if d.match[0].MatchString(sc.Name) {
			return true
		}
	}
	return false
}
