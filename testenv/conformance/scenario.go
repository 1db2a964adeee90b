package conformance

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Kinds of step.
const (
	// Docker runs the docker CLI with the step's arguments.
	Docker = "docker"
	// API sends one request to the engine's API socket.
	API = "api"
	// Until runs a docker CLI command again and again until its output,
	// normalised and trimmed, is the step's Want ("Running <duration> ago", say);
	// it records nothing but that it got there.
	Until = "until"
	// Let runs a docker CLI command and keeps its trimmed output as $NAME for
	// the steps after it (an ID, say); it records nothing.
	Let = "let"
	// File writes a file into the scratch directory ($TMP) for the steps after
	// it (a secret's data, say); it records nothing.
	File = "file"
	// Sorted runs the docker CLI as Docker does and records its output with
	// the lines in order: for commands that print in a Go map's order (`stack
	// deploy` creating networks and services).
	Sorted = "sorted"
)

// Scenario is one script of the corpus: steps run in order against one engine.
type Scenario struct {
	// Name is the script's file name without its extension.
	Name  string
	Steps []Step
	// CLI is the docker CLI binary it runs with (its Variant's); see For.
	CLI string
}

// Step is one line of a scenario.
type Step struct {
	// Text is the line as written, the step's name in transcripts.
	Text string
	// Line is where the step starts in its script.
	Line int
	Kind string
	// Args are the docker CLI's arguments (Docker, Until).
	Args []string
	// Node names the engine the step runs on, from a leading "@NAME" (a
	// node of a multi-node corpus); empty for the first.
	Node string
	// SortLines orders the output's lines before it is recorded (Sorted).
	SortLines bool
	// Variant names the only variant of the corpus the step runs with, from
	// a leading "[NAME]" ("[cli28] docker ..." for a flag the 20.10 CLI
	// lacks); empty for every variant.
	Variant string
	// Stdin is the file the CLI reads as its standard input (Docker), from a
	// trailing "< PATH"; empty for none.
	Stdin string
	// Method, Path and Body make the request (API); Body may be empty.
	Method, Path, Body string
	// Want is the output Until waits for.
	Want string
	// Var is the name Let sets.
	Var string
	// File is the name File writes under $TMP, and Data what it writes.
	File string
	Data []byte
}

// LoadCorpus reads every scenario (*.txt) in dir, in file-name order.
func LoadCorpus(dir string) ([]Scenario, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil {
		return nil, fmt.Errorf("list scenarios: %w", err)
	}
	sort.Strings(paths)
	var corpus []Scenario
	for _, p := range paths {
		src, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read scenario: %w", err)
		}
		sc, err := ParseScenario(strings.TrimSuffix(filepath.Base(p), ".txt"), string(src))
		if err != nil {
			return nil, err
		}
		corpus = append(corpus, sc)
	}
	return corpus, nil
}

// ParseScenario parses a script. Each line is a step; blank lines and lines
// starting with # are skipped, and a line ending in a backslash goes on in the
// next. Steps:
//
//	docker ARGS... [< PATH]      the docker CLI; ARGS split as a shell would ('', ""),
//	                             with PATH (a file) as its standard input
//	api METHOD PATH [BODY]       a raw Engine API request; BODY is the rest of the line
//	until WANT docker ARGS...    poll until the command's trimmed output is WANT (\n: a newline)
//	let NAME docker ARGS...      keep the command's trimmed output as $NAME
//	file NAME TEXT [COUNT]       write TEXT (\n: a newline) COUNT times (1) to $TMP/NAME
//	sorted docker ARGS...        docker, its output's lines in order
//
// and any step may start with "[VARIANT]" (run it with that CLI variant
// only: [cli28], [cli20.10]) and then "@NODE" (run it on that node).
func ParseScenario(name, src string) (Scenario, error) {
	sc := Scenario{Name: name}
	lines := strings.Split(src, "\n")
	for i := 0; i < len(lines); i++ {
		start := i + 1
		line := strings.TrimSpace(lines[i])
		for strings.HasSuffix(line, `\`) && i+1 < len(lines) {
			i++
			line = strings.TrimSuffix(line, `\`) + " " + strings.TrimSpace(lines[i])
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		step, err := parseStep(line)
		if err != nil {
			return sc, fmt.Errorf("scenario %s line %d: %w", name, start, err)
		}
		step.Line = start
		sc.Steps = append(sc.Steps, step)
	}
	return sc, nil
}

func parseStep(line string) (Step, error) {
	step := Step{Text: line}
	if strings.HasPrefix(line, "[") {
		marker, after, _ := strings.Cut(line[1:], "]")
		if !slices.Contains([]string{CLI28.Name, CLI2010.Name}, marker) || strings.TrimSpace(after) == "" {
			return step, fmt.Errorf("[VARIANT] needs %s or %s and a step: %q", CLI28.Name, CLI2010.Name, line)
		}
		step.Variant, line = marker, strings.TrimSpace(after)
	}
	if strings.HasPrefix(line, "@") {
		node, after, _ := strings.Cut(line[1:], " ")
		if node == "" || strings.TrimSpace(after) == "" {
			return step, fmt.Errorf("@NODE needs a name and a step: %q", line)
		}
		step.Node, line = node, strings.TrimSpace(after)
	}
	kind, rest, _ := strings.Cut(line, " ")
	if kind == Sorted {
		step.SortLines = true
		kind, rest, _ = strings.Cut(rest, " ")
		if kind != Docker {
			return step, fmt.Errorf("sorted needs docker ARGS...: %q", line)
		}
	}
	switch kind {
	case Docker:
		args, err := splitWords(rest)
		if err != nil {
			return step, err
		}
		if n := len(args); n >= 2 && args[n-2] == "<" {
			step.Stdin, args = args[n-1], args[:n-2]
		}
		step.Kind, step.Args = Docker, args
	case API:
		fields := strings.SplitN(strings.TrimSpace(rest), " ", 3)
		if len(fields) < 2 {
			return step, fmt.Errorf("api needs a method and a path: %q", line)
		}
		step.Kind, step.Method, step.Path = API, fields[0], fields[1]
		if len(fields) == 3 {
			step.Body = strings.TrimSpace(fields[2])
		}
	case Until:
		words, err := splitWords(rest)
		if err != nil {
			return step, err
		}
		if len(words) < 2 || words[1] != Docker {
			return step, fmt.Errorf("until needs WANT docker ARGS...: %q", line)
		}
		step.Kind, step.Want, step.Args = Until, strings.ReplaceAll(words[0], `\n`, "\n"), words[2:]
	case Let:
		words, err := splitWords(rest)
		if err != nil {
			return step, err
		}
		if len(words) < 2 || words[1] != Docker {
			return step, fmt.Errorf("let needs NAME docker ARGS...: %q", line)
		}
		step.Kind, step.Var, step.Args = Let, words[0], words[2:]
	case File:
		words, err := splitWords(rest)
		if err != nil {
			return step, err
		}
		if len(words) < 2 || len(words) > 3 || strings.Contains(words[0], "/") {
			return step, fmt.Errorf("file needs NAME TEXT [COUNT], NAME without a slash: %q", line)
		}
		count := 1
		if len(words) == 3 {
			if count, err = strconv.Atoi(words[2]); err != nil || count < 0 {
				return step, fmt.Errorf("file: COUNT is not a count: %q", line)
			}
		}
		text := strings.ReplaceAll(words[1], `\n`, "\n")
		step.Kind, step.File, step.Data = File, words[0], []byte(strings.Repeat(text, count))
	default:
		return step, fmt.Errorf("unknown step %q", kind)
	}
	return step, nil
}

// splitWords splits s into words as sh would for plain words and quotes
// (no variables, no escapes but inside double quotes).
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated ' in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated \" in %q", s)
			}
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
