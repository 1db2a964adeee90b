package agent

import (
	"strings"
	"testing"
)

// FuzzExpandTemplate: any hostname, environment or mount template is refused
// or expands into text with no placeholder left; text without "{{" is kept
// as it is.
func FuzzExpandTemplate(f *testing.F) {
	for _, seed := range []string{
		"web-{{.Task.Slot}}", "{{ .Node.Hostname }}.{{.Service.Name}}", "{{.Nope}}", "{{index .X 1}}",
		"{{.Task.Slot}}{{", "}}{{.Task.ID}}{{{{.Task.Name}}}}", "plain", "{{", "{{.}}", "\xff{{.Node.ID}}",
	} {
		f.Add(seed)
	}
	fields := templateFields{
		".Service.ID": "s1", ".Service.Name": "web", ".Node.ID": "n1", ".Node.Hostname": "edge1",
		".Node.Platform.OS": "linux", ".Node.Platform.Architecture": "amd64",
		".Task.ID": "t1", ".Task.Name": "web.1.t1", ".Task.Slot": "1",
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := expand("env", s, fields)
		if err != nil {
			return
		}
		if !strings.Contains(s, "{{") && out != s {
			t.Fatalf("expand(%q) = %q, want it unchanged", s, out)
		}
		if strings.Contains(out, "{{") {
			t.Fatalf("expand(%q) = %q, a placeholder left", s, out)
		}
	})
}
