package compose

import (
	"fmt"
	"os"
	"strings"

	"go.yaml.in/yaml/v4"
)

// FileError is a bad compose file: where and which key, as far as known.
type FileError struct {
	// File is the file's path; Line its 1-based line, 0 when unknown.
	File string
	Line int
	// Key is the key's path (services.web.ports); empty for syntax errors.
	Key string
	Msg string
	Err error
}

func (e *FileError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	if e.Key != "" {
		b.WriteString(": " + e.Key)
	}
	return b.String() + ": " + e.Msg
}

func (e *FileError) Unwrap() error { return e.Err }

// locate turns compose-go's errors into a FileError where it can: a schema
// error ("validating FILE: KEY MESSAGE") gets the key's line, and a YAML
// syntax error (which names no file) the first of files that does not parse.
func locate(err error, files []string) error {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "validating "); ok {
		file, detail, ok := strings.Cut(rest, ": ")
		key, what, _ := strings.Cut(detail, " ")
		if ok && key != "" {
			if what == "false schema" {
				what = "unknown key (not in the Compose Spec)"
			}
			return &FileError{File: file, Line: keyLine(file, key), Key: key, Msg: what, Err: err}
		}
	}
	if strings.Contains(msg, "yaml: ") {
		for _, f := range files {
			data, rerr := os.ReadFile(f)
			if rerr != nil {
				continue
			}
			var n yaml.Node
			if perr := yaml.Unmarshal(data, &n); perr != nil {
				return &FileError{File: f, Msg: strings.TrimPrefix(perr.Error(), "yaml: "), Err: err}
			}
		}
	}
	return err
}

// keyLine is the line of the dotted key path in file, 0 when not found.
func keyLine(file, key string) int {
	data, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return 0
	}
	n, line := doc.Content[0], 0
	for _, part := range strings.Split(key, ".") {
		next := childOf(n, part)
		if next == nil {
			return line
		}
		n, line = next[1], next[0].Line
	}
	return line
}

// childOf is a mapping's [key, value] nodes for name, or a sequence's
// [item, item] for an index; nil when absent.
func childOf(n *yaml.Node, name string) []*yaml.Node {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == name {
				return n.Content[i : i+2]
			}
		}
	case yaml.SequenceNode:
		var idx int
		if _, err := fmt.Sscanf(name, "%d", &idx); err == nil && idx >= 0 && idx < len(n.Content) {
			return []*yaml.Node{n.Content[idx], n.Content[idx]}
		}
	}
	return nil
}
