package conformance

import "regexp"

// versioned matches an API path that names its version ("/v1.12/version").
var versioned = regexp.MustCompile(`^/v[0-9]+\.[0-9]+/`)

// Variant is one docker CLI the corpus runs with. The CLI negotiates its API
// version with each engine (28.2: 1.41 with dockerd 20.10, 1.51 with shoal;
// 20.10: 1.41 with both), so each variant checks what shoal answers clients
// of that version.
type Variant struct {
	// Name is what a scenario line's "[NAME]" marker gives to run a step with
	// this variant only ("cli28", "cli20.10").
	Name string
	// Suffix follows the scenario's name in transcripts, differences and
	// deliberate entries: "" for the CLI the corpus was written for,
	// "@cli20.10" for the other.
	Suffix string
	// CLI is the docker CLI binary, a name on PATH or a path.
	CLI string
	// APIVersion, when set, is the API version the CLI negotiates with both
	// engines: the variant sends the scenario's API steps to that version's
	// paths ("/v1.41/services"), as a client of that version would.
	APIVersion string
}

// Variants of the corpus: the docker CLI 28.2 first on PATH, and Debian's
// docker.io 20.10 CLI at /usr/bin/docker.
var (
	CLI28   = Variant{Name: "cli28", CLI: "docker"}
	CLI2010 = Variant{Name: "cli20.10", Suffix: "@cli20.10", CLI: "/usr/bin/docker", APIVersion: "1.41"}
)

// cli2010Scenarios are the single-node scenarios that also run with the 20.10
// CLI (path.Match patterns): those whose answers depend most on the API
// version the CLI speaks (see docs/conformance.md, "The docker CLI 20.10").
var cli2010Scenarios = []string{
	"02-node", "03-service-basic", "04-service-modes", "05-service-flags",
	"06-service-errors", "09-volumes", "10-networks", "11-system",
}

// cli2010MultiNode are the multi-node scenarios that also run with the 20.10
// CLI: all of them.
var cli2010MultiNode = []string{"*"}

// For is the scenario as the variant runs it: named with the variant's
// suffix, without the steps marked for another variant, and with its API
// steps sent to the variant's API version (those whose path names no version
// of its own).
func (sc Scenario) For(v Variant) Scenario {
	out := Scenario{Name: sc.Name + v.Suffix, CLI: v.CLI}
	for _, st := range sc.Steps {
		if st.Variant != "" && st.Variant != v.Name {
			continue
		}
		if v.APIVersion != "" && st.Kind == API && !versioned.MatchString(st.Path) {
			st.Path = "/v" + v.APIVersion + st.Path
		}
		out.Steps = append(out.Steps, st)
	}
	return out
}
