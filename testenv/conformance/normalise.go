package conformance

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"sort"
	"strings"
)

// Normaliser replaces what differs from run to run and engine to engine in an
// answer (IDs, times, durations, sizes, addresses, versions, the engine's own
// paths) with stable placeholders, so that two engines' answers can be compared.
type Normaliser struct {
	// Literal maps strings known before the run (the engine's directory, the test
	// image's ID) to their placeholders; they are replaced first.
	Literal map[string]string
	// Seen collects the swarm IDs met so far, to recognise their 12-character
	// prefixes when these have no digit (and so no pattern can tell them from
	// words) and are not in the first column of a table, where the CLI puts
	// IDs. Nil turns that off.
	Seen map[string]bool
}

// pattern is one replacement, applied in order.
type pattern struct {
	re   *regexp.Regexp
	repl string
	// keep leaves a match alone when it returns true.
	keep func(string) bool
}

var patterns = []pattern{
	// The swarm's CA: certificates and public keys.
	{re: regexp.MustCompile(`-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]*-----END CERTIFICATE-----`), repl: "<certificate>"},
	{re: regexp.MustCompile(`\bMFkw[A-Za-z0-9+/=]+`), repl: "<public-key>"},
	// Join tokens.
	{re: regexp.MustCompile(`SWMTKN-1-[0-9a-z]+-[0-9a-z]+`), repl: "<join-token>"},
	{re: regexp.MustCompile(`SWMKEY-1-[0-9A-Za-z+/]+`), repl: "<unlock-key>"},
	// Times: RFC 3339 (JSON) and Go's default format (`service ps`, `events`).
	// The zero time means "never" and stays.
	{re: regexp.MustCompile(`\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?( ?(Z|[+-]\d{2}:?\d{2}))?( [A-Z]{3,4})?`), repl: "<time>",
		keep: func(s string) bool { return strings.HasPrefix(s, "0001-01-01") }},
	// Engine IDs: dockerd's (a key's fingerprint) and shoal's (a UUID).
	{re: regexp.MustCompile(`\b([A-Z0-9]{4}:){11}[A-Z0-9]{4}\b`), repl: "<engine-id>"},
	{re: regexp.MustCompile(`\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b`), repl: "<engine-id>"},
	// Content digests and 64-hex IDs; swarm object IDs (25 characters of base
	// 36); the 12-character prefixes of both, as the CLI's tables show them.
	{re: regexp.MustCompile(`\b[0-9a-f]{64}\b`), repl: "<id>"},
	// A swarm ID can be letters only (about 1 in 3000 are); no word of the
	// outputs is 25 letters long, so none is kept.
	{re: regexp.MustCompile(`\b[0-9a-z]{25}\b`), repl: "<swarm-id>"},
	{re: regexp.MustCompile(`\b[0-9a-f]{12}\b`), repl: "<id12>", keep: lettersOnly},
	{re: regexp.MustCompile(`\b[0-9a-z]{12}\b`), repl: "<swarm-id12>", keep: lettersOnly},
	// The machine's CPUs in `node inspect --pretty`.
	{re: regexp.MustCompile(`CPUs:\s+\d+`), repl: "CPUs: <host>"},
	// Human durations (units.HumanDuration): "Up 3 seconds", "5 minutes ago".
	{re: regexp.MustCompile(`(?i)\b(less than a second|about an? (minute|hour)|\d+ (second|minute|hour|day|week|month|year)s?)\b`), repl: "<duration>"},
	// Sizes as the CLI prints them.
	{re: regexp.MustCompile(`\b\d+(\.\d+)?\s?(B|kB|KB|MB|GB|KiB|MiB|GiB)\b`), repl: "<size>"},
	// MAC addresses.
	{re: regexp.MustCompile(`\b([0-9a-f]{2}:){5}[0-9a-f]{2}\b`), repl: "<mac>"},
	// IPv4 addresses but the loopback and the unspecified one.
	{re: regexp.MustCompile(`\b\d{1,3}(\.\d{1,3}){3}\b`), repl: "<ip>",
		keep: func(s string) bool { return s == "127.0.0.1" || s == "0.0.0.0" }},
}

func lettersOnly(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool { return r >= '0' && r <= '9' }) < 0
}

// hostKeys are JSON fields whose values belong to the machine, the build or the
// moment, not to the engine's behaviour: only their presence is compared.
var hostKeys = map[string]string{
	"KernelVersion": "<host>", "OperatingSystem": "<host>", "OSVersion": "<host>",
	"MemTotal": "<host>", "NCPU": "<host>", "ServerVersion": "<version>",
	"Version": "<version>", "ApiVersion": "<version>", "APIVersion": "<version>",
	"MinAPIVersion": "<version>", "GitCommit": "<version>", "GoVersion": "<version>",
	"BuildTime": "<time>", "Index": "<index>", "Pid": "<pid>", "PID": "<pid>", "Created": "<time>",
	"SystemTime": "<time>", "NFd": "<count>", "NGoroutines": "<count>",
	"NEventsListener": "<count>", "Size": "<size>", "VirtualSize": "<size>",
	"SharedSize": "<size>", "SizeRw": "<size>", "SizeRootFs": "<size>",
}

// machineKeys are the fields of a node's Description.Resources: the machine's,
// where the same names in a service's Resources are the user's.
var machineKeys = map[string]bool{"NanoCPUs": true, "MemoryBytes": true}

// Text normalises plain output: literals, then the patterns; runs of two or more
// spaces (the CLI's table padding, which follows the widths of the values) become
// two, and trailing spaces go.
func (n Normaliser) Text(s string) string {
	s = n.literals(s)
	if n.Seen != nil {
		for _, id := range swarmID.FindAllString(s, -1) {
			n.Seen[id[:12]] = true
		}
		s = lettersID.ReplaceAllStringFunc(s, func(m string) string {
			if n.Seen[m] {
				return "<swarm-id12>"
			}
			return m
		})
	}
	s = firstColumnID.ReplaceAllString(s, "<swarm-id12>$1")
	for _, p := range patterns {
		s = p.re.ReplaceAllStringFunc(s, func(m string) string {
			if p.keep != nil && p.keep(m) {
				return m
			}
			return p.repl
		})
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		l = strings.TrimRight(l, " \t")
		lines[i] = multiSpace.ReplaceAllString(l, "  ")
	}
	return strings.Join(lines, "\n")
}

var (
	multiSpace = regexp.MustCompile(`  +`)
	swarmID    = regexp.MustCompile(`\b[0-9a-z]{25}\b`)
	lettersID  = regexp.MustCompile(`\b[a-z]{12}\b`)
	// firstColumnID is a 12-letter word opening a line, as a table's ID column
	// or `-q` output.
	firstColumnID = regexp.MustCompile(`(?m)^[a-z]{12}( |$)`)
)

func (n Normaliser) literals(s string) string {
	keys := make([]string, 0, len(n.Literal))
	for k := range n.Literal {
		if k != "" {
			keys = append(keys, k)
		}
	}
	// Longer first, so a path is replaced before a prefix of it.
	sort.Slice(keys, func(i, j int) bool { return len(keys[i]) > len(keys[j]) })
	for _, k := range keys {
		s = strings.ReplaceAll(s, k, n.Literal[k])
	}
	return s
}

// Output normalises a step's output: JSON (one document, or one per line as
// `--format '{{json .}}'` writes) is parsed, normalised value by value and
// written back indented with sorted keys; anything else is Text.
func (n Normaliser) Output(s string) string {
	v, ok := parseJSON(s)
	if !ok {
		return n.Text(s)
	}
	return encodeJSON(n.value("", "", v))
}

// value normalises one JSON value found under key; path names the object that
// holds it ("Description.Resources").
func (n Normaliser) value(path, key string, v any) any {
	switch v := v.(type) {
	case map[string]any:
		inner := key
		if path != "" {
			inner = path + "." + key
		}
		for k, e := range v {
			v[k] = n.value(inner, k, e)
		}
		return v
	case []any:
		for i, e := range v {
			v[i] = n.value(path, key, e)
		}
		return v
	case string:
		if repl := hostKeys[key]; repl != "" {
			return repl
		}
		return n.Text(v)
	case json.Number:
		if repl := hostKeys[key]; repl != "" {
			return repl
		}
		if machineKeys[key] && strings.HasSuffix(path, "Description.Resources") {
			return "<host>"
		}
		return v
	}
	return v
}

// parseJSON parses s as one JSON document or as one document per line.
func parseJSON(s string) (any, bool) {
	t := strings.TrimSpace(s)
	if t == "" || (t[0] != '{' && t[0] != '[') {
		return nil, false
	}
	if v, err := decode(t); err == nil {
		return v, true
	}
	var lines []any
	for _, l := range strings.Split(t, "\n") {
		v, err := decode(l)
		if err != nil {
			return nil, false
		}
		lines = append(lines, v)
	}
	return map[string]any{"json lines": lines}, true
}

func decode(s string) (any, error) {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, errTrailing
	}
	return v, nil
}

var errTrailing = errors.New("trailing data after JSON")

// encodeJSON writes v indented, keys sorted, without HTML escaping.
func encodeJSON(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
	return b.String()
}
