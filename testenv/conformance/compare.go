package conformance

import (
	"fmt"
	"sort"
	"strings"
)

// Difference is one way in which an engine's answer to a step differs from the
// recorded one.
type Difference struct {
	Scenario string
	// Step is the step's text.
	Step string
	// Field names what differs: "exit", "status", "stdout", "stderr", "body", or
	// a JSON field of the output as "stdout:[0].Spec.Mode" ("body:..." for API
	// steps).
	Field string
	// Want is the recorded value, Got the engine's; "(absent)" for a JSON field
	// that one of them lacks.
	Want, Got string
}

func (d Difference) String() string {
	return fmt.Sprintf("%s | %s | %s\n    dockerd: %s\n    shoal:   %s", d.Scenario, d.Step, d.Field, indent(d.Want), indent(d.Got))
}

func indent(s string) string {
	return strings.ReplaceAll(s, "\n", "\n             ")
}

const absent = "(absent)"

// Compare lists the differences between the recorded transcript and the one
// got now, step by step.
func Compare(want, got Transcript) []Difference {
	var diffs []Difference
	add := func(step, field, w, g string) {
		diffs = append(diffs, Difference{Scenario: want.Scenario, Step: step, Field: field, Want: w, Got: g})
	}
	if len(want.Results) != len(got.Results) {
		add("", "steps", fmt.Sprint(len(want.Results)), fmt.Sprint(len(got.Results)))
		return diffs
	}
	for i, w := range want.Results {
		g := got.Results[i]
		if w.Step != g.Step {
			add(w.Step, "step", w.Step, g.Step+" (the scenario changed: record again)")
			return diffs
		}
		outName, codeName := "stdout", "exit"
		if w.Kind == API {
			outName, codeName = "body", "status"
		}
		if w.Code != g.Code {
			add(w.Step, codeName, fmt.Sprint(w.Code), fmt.Sprint(g.Code))
		}
		// Trailing newlines are not compared: transcripts do not keep them.
		wOut, gOut := strings.TrimRight(w.Out, "\n"), strings.TrimRight(g.Out, "\n")
		wv, wJSON := parseJSON(wOut)
		gv, gJSON := parseJSON(gOut)
		switch {
		case wJSON && gJSON:
			for _, d := range diffJSON("", wv, gv) {
				add(w.Step, outName+":"+d.path, d.want, d.got)
			}
		case wOut != gOut:
			add(w.Step, outName, wOut, gOut)
		}
		if wErr, gErr := strings.TrimRight(w.Err, "\n"), strings.TrimRight(g.Err, "\n"); wErr != gErr {
			add(w.Step, "stderr", wErr, gErr)
		}
	}
	return diffs
}

type jsonDiff struct{ path, want, got string }

// diffJSON compares two parsed JSON values field by field.
func diffJSON(path string, want, got any) []jsonDiff {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			break
		}
		var diffs []jsonDiff
		for _, k := range unionKeys(w, g) {
			wv, inW := w[k]
			gv, inG := g[k]
			p := path + "." + k
			switch {
			case !inG:
				diffs = append(diffs, jsonDiff{p, short(wv), absent})
			case !inW:
				diffs = append(diffs, jsonDiff{p, absent, short(gv)})
			default:
				diffs = append(diffs, diffJSON(p, wv, gv)...)
			}
		}
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok {
			break
		}
		var diffs []jsonDiff
		if len(w) != len(g) {
			diffs = append(diffs, jsonDiff{path + ".length", fmt.Sprint(len(w)), fmt.Sprint(len(g))})
		}
		for i := 0; i < len(w) && i < len(g); i++ {
			diffs = append(diffs, diffJSON(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return diffs
	}
	if ws, gs := short(want), short(got); ws != gs {
		return []jsonDiff{{path, ws, gs}}
	}
	return nil
}

func unionKeys(a, b map[string]any) []string {
	keys := make([]string, 0, len(a)+len(b))
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// short is a JSON value on one line.
func short(v any) string {
	return strings.TrimSpace(strings.ReplaceAll(encodeCompact(v), "\n", " "))
}

func encodeCompact(v any) string {
	s := encodeJSON(v)
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		b.WriteString(strings.TrimSpace(l))
	}
	return b.String()
}
