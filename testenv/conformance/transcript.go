package conformance

import (
	"fmt"
	"strconv"
	"strings"
)

// A transcript file (testdata/golden/<scenario>.golden) reads:
//
//	### docker service inspect web       the step, as in the scenario
//	exit 0                               or: status 200 (api), ok (until)
//	--- stdout                           or: --- body (api)
//	| [                                  each line of the output, behind "| "
//	|   {
//	--- stderr
//	| Error: No such service: nope
//
// A section that would be empty is left out, and so is the final newline of
// each output.

// Format writes the transcript in the golden-file format.
func (tr Transcript) Format() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# scenario %s: recorded from dockerd, normalised; `make conformance-record` rewrites it\n", tr.Scenario)
	for _, r := range tr.Results {
		fmt.Fprintf(&b, "\n### %s\n", r.Step)
		switch r.Kind {
		case Docker:
			fmt.Fprintf(&b, "exit %d\n", r.Code)
			section(&b, "stdout", r.Out)
			section(&b, "stderr", r.Err)
		case API:
			fmt.Fprintf(&b, "status %d\n", r.Code)
			section(&b, "body", r.Out)
		case Until:
			b.WriteString("ok\n")
		}
	}
	return b.String()
}

func section(b *strings.Builder, name, text string) {
	text = strings.TrimSuffix(text, "\n")
	if text == "" {
		return
	}
	fmt.Fprintf(b, "--- %s\n", name)
	for _, l := range strings.Split(text, "\n") {
		if l == "" {
			b.WriteString("|\n")
		} else {
			b.WriteString("| " + l + "\n")
		}
	}
}

// ParseTranscript reads a transcript written by Format.
func ParseTranscript(scenario, data string) (Transcript, error) {
	tr := Transcript{Scenario: scenario}
	var cur *Result
	var sectionName string
	var text []string
	flush := func() {
		if cur == nil || sectionName == "" {
			return
		}
		joined := strings.Join(text, "\n")
		if sectionName == "stderr" {
			cur.Err = joined
		} else {
			cur.Out = joined
		}
		sectionName, text = "", nil
	}
	for i, l := range strings.Split(data, "\n") {
		switch {
		case strings.HasPrefix(l, "### "):
			flush()
			tr.Results = append(tr.Results, Result{Step: strings.TrimPrefix(l, "### ")})
			cur = &tr.Results[len(tr.Results)-1]
		case cur == nil || l == "":
			// The header, and blank lines between steps.
		case strings.HasPrefix(l, "--- "):
			flush()
			sectionName = strings.TrimPrefix(l, "--- ")
		case l == "|" || strings.HasPrefix(l, "| "):
			if sectionName == "" {
				return tr, fmt.Errorf("transcript %s line %d: output outside a section", scenario, i+1)
			}
			text = append(text, strings.TrimPrefix(strings.TrimPrefix(l, "|"), " "))
		case l == "ok":
			cur.Kind = Until
		default:
			word, num, _ := strings.Cut(l, " ")
			code, err := strconv.Atoi(num)
			if err != nil || (word != "exit" && word != "status") {
				return tr, fmt.Errorf("transcript %s line %d: unexpected %q", scenario, i+1, l)
			}
			cur.Code = code
			cur.Kind = map[string]string{"exit": Docker, "status": API}[word]
		}
	}
	flush()
	return tr, nil
}
