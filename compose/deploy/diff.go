package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
)

// FieldChange is one leaf of a spec that differs, by its JSON path
// (TaskTemplate.ContainerSpec.Env[0]). An empty Old or New means the field is
// absent on that side.
type FieldChange struct {
	Path     string
	Old, New string
}

func (f FieldChange) String() string {
	switch {
	case f.Old == "":
		return fmt.Sprintf("+ %s: %s", f.Path, f.New)
	case f.New == "":
		return fmt.Sprintf("- %s: %s", f.Path, f.Old)
	}
	return fmt.Sprintf("~ %s: %s -> %s", f.Path, f.Old, f.New)
}

// Diff compares two values by their JSON encodings, leaf by leaf, and returns
// the leaves that differ sorted by path. Absent, null and empty are the same.
func Diff(old, new any) ([]FieldChange, error) {
	a, err := leaves(old)
	if err != nil {
		return nil, err
	}
	b, err := leaves(new)
	if err != nil {
		return nil, err
	}
	var out []FieldChange
	for p, v := range a {
		if b[p] != v {
			out = append(out, FieldChange{Path: p, Old: v, New: b[p]})
		}
	}
	for p, v := range b {
		if _, ok := a[p]; !ok {
			out = append(out, FieldChange{Path: p, New: v})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// leaves flattens v's JSON encoding into path -> leaf text.
func leaves(v any) (map[string]string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode spec: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return nil, fmt.Errorf("decode spec: %w", err)
	}
	out := map[string]string{}
	flatten("", tree, out)
	return out, nil
}

func flatten(path string, v any, out map[string]string) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			p := k
			if path != "" {
				p = path + "." + k
			}
			flatten(p, e, out)
		}
	case []any:
		for i, e := range t {
			flatten(path+"["+strconv.Itoa(i)+"]", e, out)
		}
	case nil:
	default:
		b, _ := json.Marshal(t) // a decoded leaf always encodes
		out[path] = string(b)
	}
}
