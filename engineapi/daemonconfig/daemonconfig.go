// Package daemonconfig reads a daemon configuration file (daemon.json, as dockerd's)
// and merges it into the daemon's command-line flags. The flags are the one
// definition of every option: a key of the file names a flag (or, for a flag that
// repeats, dockerd's plural name of it), and its value is given to that flag as if
// typed on the command line. A key given both as a flag and in the file, and a key
// no flag matches, are refused with dockerd's words.
package daemonconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// File is a daemon configuration file as read: each key's JSON value.
type File struct {
	// Path is where the file was read from.
	Path string
	// Values holds each top-level key's value, undecoded.
	Values map[string]json.RawMessage
}

// Load reads the file at path. A file that does not exist is an error only when
// required (the operator named it); otherwise Load returns nil and no error.
func Load(path string, required bool) (*File, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !required {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read configuration file: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes data, the text of the file at path: a JSON object whose keys
// appear once each. Errors name the file and, for bad JSON, the line and column.
func Parse(path string, data []byte) (*File, error) {
	f := &File{Path: path, Values: map[string]json.RawMessage{}}
	if len(bytes.TrimSpace(data)) == 0 {
		return f, nil // dockerd accepts an empty file
	}
	// Unmarshal first: its syntax errors point at the offending byte, which
	// a Decoder's, mid-stream, do not.
	var whole any
	if err := json.Unmarshal(data, &whole); err != nil {
		return nil, f.syntaxError(data, err)
	}
	if _, ok := whole.(map[string]any); !ok {
		return nil, fmt.Errorf("configuration file %s: want a JSON object ({...})", path)
	}
	// Then walk the object's keys, which Unmarshal would let repeat.
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil { // the opening brace
		return nil, f.syntaxError(data, err)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, f.syntaxError(data, err)
		}
		key := tok.(string) // json.Decoder yields only strings as object keys
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, f.syntaxError(data, err)
		}
		if _, dup := f.Values[key]; dup {
			return nil, fmt.Errorf("configuration file %s: %q is given twice", path, key)
		}
		f.Values[key] = v
	}
	return f, nil
}

// syntaxError says where in the file the JSON went wrong.
func (f *File) syntaxError(data []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) && se.Offset > 0 {
		line, col := position(data, se.Offset-1)
		return fmt.Errorf("configuration file %s: line %d, column %d: %w", f.Path, line, col, err)
	}
	return fmt.Errorf("configuration file %s: %w", f.Path, err)
}

// position turns the offset of a byte into its 1-based line and column.
func position(data []byte, offset int64) (line, col int) {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	before := data[:offset]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(offset) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// Keys maps each key the file may hold to the flag it sets: every flag of fs under
// its own name, except those in skip (say "help", or the flag that names the file
// itself), and the plural keys of aliases (key -> flag name).
func Keys(fs *pflag.FlagSet, aliases map[string]string, skip ...string) map[string]*pflag.Flag {
	keys := map[string]*pflag.Flag{}
	renamed := map[string]bool{}
	for key, name := range aliases {
		if fl := fs.Lookup(name); fl != nil {
			keys[key] = fl
			renamed[name] = true
		}
	}
	fs.VisitAll(func(fl *pflag.Flag) {
		if !renamed[fl.Name] && !slices.Contains(skip, fl.Name) {
			keys[fl.Name] = fl
		}
	})
	return keys
}

// Merge gives each flag the value its key holds in f, after the command line was
// parsed into the flags. As dockerd does, it refuses the whole file when a key
// names a flag the command line set too, or names no flag at all.
func Merge(f *File, keys map[string]*pflag.Flag) error {
	if f == nil {
		return nil
	}
	var unknown, conflicts []string
	for _, key := range sortedKeys(f.Values) {
		fl, ok := keys[key]
		switch {
		case !ok:
			unknown = append(unknown, key)
		case fl.Changed:
			conflicts = append(conflicts, fmt.Sprintf("%s: (from flag: %s, from file: %s)", key, flagText(fl), fileText(f.Values[key])))
		}
	}
	if len(conflicts) > 0 {
		return f.errorf("the following directives are specified both as a flag and in the configuration file: %s", strings.Join(conflicts, ", "))
	}
	if len(unknown) > 0 {
		return f.errorf("the following directives don't match any configuration option: %s", strings.Join(unknown, ", "))
	}
	for _, key := range sortedKeys(f.Values) {
		if err := set(keys[key], f.Values[key]); err != nil {
			return f.errorf("%s: %v", key, err)
		}
	}
	return nil
}

func (f *File) errorf(format string, args ...any) error {
	return fmt.Errorf("unable to configure the daemon with file %s: %s", f.Path, fmt.Sprintf(format, args...))
}

// set gives one flag a value from the file. A list replaces the flag's values
// (only a flag that repeats takes one); an object becomes key=value,key=value, as
// flags such as --default-address-pool take it.
func set(fl *pflag.Flag, raw json.RawMessage) error {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return err
	}
	if list, ok := v.([]any); ok {
		slice, ok := fl.Value.(pflag.SliceValue)
		if !ok {
			return fmt.Errorf("want a single value, not a list")
		}
		texts := make([]string, 0, len(list))
		for _, item := range list {
			s, err := scalarText(item)
			if err != nil {
				return err
			}
			texts = append(texts, s)
		}
		if err := slice.Replace(texts); err != nil {
			return err
		}
		fl.Changed = true
		return nil
	}
	s, err := scalarText(v)
	if err != nil {
		return err
	}
	if slice, ok := fl.Value.(pflag.SliceValue); ok {
		err = slice.Replace([]string{s})
	} else {
		err = fl.Value.Set(s)
	}
	if err != nil {
		return err
	}
	fl.Changed = true
	return nil
}

// scalarText is a JSON value as it would be typed on the command line.
func scalarText(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case bool:
		return strconv.FormatBool(v), nil
	case json.Number:
		return v.String(), nil
	case map[string]any:
		parts := make([]string, 0, len(v))
		for _, k := range sortedKeys(v) {
			s, err := scalarText(v[k])
			if err != nil {
				return "", fmt.Errorf("%s: %w", k, err)
			}
			parts = append(parts, k+"="+s)
		}
		return strings.Join(parts, ","), nil
	case nil:
		return "", errors.New("null is not a value")
	}
	return "", fmt.Errorf("unexpected value %v", v)
}

// flagText is a flag's value as the conflict error shows it: a list in brackets.
func flagText(fl *pflag.Flag) string {
	if s, ok := fl.Value.(pflag.SliceValue); ok {
		return "[" + strings.Join(s.GetSlice(), " ") + "]"
	}
	return fl.Value.String()
}

// fileText is a value of the file as the conflict error shows it, in the same
// form as flagText.
func fileText(raw json.RawMessage) string {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return string(raw)
	}
	if list, ok := v.([]any); ok {
		texts := make([]string, 0, len(list))
		for _, item := range list {
			s, _ := scalarText(item)
			texts = append(texts, s)
		}
		return "[" + strings.Join(texts, " ") + "]"
	}
	s, err := scalarText(v)
	if err != nil {
		return string(raw)
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
