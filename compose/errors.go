package compose

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/compose-spec/compose-go/v2/template"
	goyaml "github.com/goccy/go-yaml"
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
// error ("validating FILE: KEY MESSAGE") gets the key's line, a YAML syntax
// error (which names no file) the first of files that does not parse, and a
// missing required variable (which names neither) the file and line that
// require it.
func locate(err error, files []string) error {
	var missing *template.MissingRequiredError
	if errors.As(err, &missing) {
		return locateVariable(err, missing, files)
	}
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
				return syntaxError(f, data, perr, err)
			}
		}
	}
	return err
}

// syntaxError is a FileError for file, whose YAML does not parse. yaml v4
// (compose-go's parser) prints some lines 0-based and others 1-based, so the
// line and the message are go-yaml's when it fails too, as it does on what
// yaml v4 refuses but for a few corner cases, where yaml v4's text stays.
func syntaxError(file string, data []byte, perr, err error) *FileError {
	fe := &FileError{File: file, Msg: strings.TrimPrefix(perr.Error(), "yaml: "), Err: err}
	var v any
	var se *goyaml.SyntaxError
	if gerr := goyaml.Unmarshal(data, &v); errors.As(gerr, &se) && se.Token != nil && se.Token.Position != nil {
		fe.Line, fe.Msg = se.Token.Position.Line, se.Message
	}
	return fe
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

// locateVariable names the file and line that require the missing variable:
// the first ${VAR?...} or ${VAR:?...} in the files, the files they include
// and the files their services extend. compose-go's message names the key
// being interpolated ("error while interpolating KEY: ...") but no file.
func locateVariable(err error, missing *template.MissingRequiredError, files []string) error {
	fe := &FileError{Msg: missing.Error(), Err: err}
	if rest, ok := strings.CutPrefix(err.Error(), "error while interpolating "); ok {
		fe.Key, _, _ = strings.Cut(rest, ": ")
	}
	ref := regexp.MustCompile(`\$\{` + regexp.QuoteMeta(missing.Variable) + `:?\?`)
	seen := map[string]bool{}
	for len(files) > 0 {
		f := files[0]
		files = files[1:]
		if seen[f] {
			continue
		}
		seen[f] = true
		data, rerr := os.ReadFile(f)
		if rerr != nil {
			continue
		}
		for i, line := range strings.Split(string(data), "\n") {
			if ref.MatchString(line) {
				fe.File, fe.Line = f, i+1
				return fe
			}
		}
		files = append(files, referencedFiles(f, data)...)
	}
	return err
}

// referencedFiles are the files a compose file includes or extends services
// from, relative paths made absolute against its directory.
func referencedFiles(file string, data []byte) []string {
	var doc struct {
		Include  []yaml.Node
		Services map[string]struct {
			Extends struct{ File string }
		}
	}
	if yaml.Unmarshal(data, &doc) != nil {
		return nil
	}
	var out []string
	add := func(p string) {
		if p == "" {
			return
		}
		if !filepath.IsAbs(p) {
			p = filepath.Join(filepath.Dir(file), p)
		}
		out = append(out, p)
	}
	for _, inc := range doc.Include {
		switch inc.Kind {
		case yaml.ScalarNode:
			add(inc.Value)
		case yaml.MappingNode:
			var entry struct{ Path yaml.Node }
			if inc.Decode(&entry) != nil {
				continue
			}
			if entry.Path.Kind == yaml.ScalarNode {
				add(entry.Path.Value)
			}
			for _, p := range entry.Path.Content {
				add(p.Value)
			}
		}
	}
	for _, svc := range doc.Services {
		add(svc.Extends.File)
	}
	return out
}
