package conformance

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// stepTimeout bounds one command or request; untilTimeout bounds an Until step.
const (
	stepTimeout  = 60 * time.Second
	untilTimeout = 90 * time.Second
)

// Engine is what the corpus runs against: dockerd when recording, shoal when
// replaying.
type Engine struct {
	// Command is the docker CLI binary cli with args, aimed at the engine.
	Command func(ctx context.Context, cli string, args ...string) *exec.Cmd
	// CLI is the docker CLI binary the steps run (a Variant's).
	CLI string
	// Client talks to the engine's API socket.
	Client *http.Client
	// Normaliser turns the engine's answers into transcripts.
	Normaliser Normaliser
	// Scratch is the scenarios' scratch directory, $TMP: File steps write
	// there, and a Docker step's Stdin is read from there.
	Scratch string
	// Nodes are the other engines of a multi-node corpus, by the name its
	// steps give them ("@node2 docker ..."); they share the Normaliser and
	// Scratch.
	Nodes map[string]Engine
}

// WithCLI is the engine, and every node of it, running the CLI binary cli.
func (e Engine) WithCLI(cli string) Engine {
	e.CLI = cli
	if e.Nodes != nil {
		nodes := make(map[string]Engine, len(e.Nodes))
		for name, n := range e.Nodes {
			n.CLI = cli
			nodes[name] = n
		}
		e.Nodes = nodes
	}
	return e
}

// Result is what one step got, normalised.
type Result struct {
	// Step is the step's text.
	Step string
	Kind string
	// Code is the CLI's exit code, or the HTTP status of an API step.
	Code int
	// Out is the CLI's stdout, or the response body; Err the CLI's stderr.
	Out, Err string
}

// Transcript is what a scenario got, step by step.
type Transcript struct {
	Scenario string
	Results  []Result
}

// Run runs the scenario's steps in order. It returns an error only when a step
// could not be run at all, or an Until step never got its output.
func Run(ctx context.Context, e Engine, sc Scenario) (Transcript, error) {
	tr := Transcript{Scenario: sc.Name}
	vars := map[string]string{}
	for _, step := range sc.Steps {
		on := e
		if step.Node != "" {
			n, ok := e.Nodes[step.Node]
			if !ok {
				return tr, fmt.Errorf("scenario %s line %d: no node %q", sc.Name, step.Line, step.Node)
			}
			on = n
		}
		r, err := on.runStep(ctx, expand(step, vars), vars)
		if err != nil {
			return tr, fmt.Errorf("scenario %s line %d (%s): %w", sc.Name, step.Line, step.Text, err)
		}
		if step.Kind != Let && step.Kind != File {
			tr.Results = append(tr.Results, r)
		}
	}
	return tr, nil
}

// expand replaces $NAME in the step's arguments, path and body with what a Let
// step kept; the step's text stays as written.
func expand(step Step, vars map[string]string) Step {
	if len(vars) == 0 {
		return step
	}
	// Longer names first: a Replacer takes the first of the pairs that match
	// at a place, and $C must not take the place of $C2.
	names := slices.SortedFunc(maps.Keys(vars), func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	var pairs []string
	for _, k := range names {
		pairs = append(pairs, "$"+k, vars[k])
	}
	r := strings.NewReplacer(pairs...)
	args := make([]string, len(step.Args))
	for i, a := range step.Args {
		args[i] = r.Replace(a)
	}
	step.Args, step.Path, step.Body, step.Stdin = args, r.Replace(step.Path), r.Replace(step.Body), r.Replace(step.Stdin)
	return step
}

func (e Engine) runStep(ctx context.Context, step Step, vars map[string]string) (Result, error) {
	r := Result{Step: step.Text, Kind: step.Kind}
	switch step.Kind {
	case Let:
		out, errOut, code, err := e.docker(ctx, step.Args)
		if err != nil {
			return r, err
		}
		if code != 0 || strings.TrimSpace(out) == "" {
			return r, fmt.Errorf("exit %d, output %q: %s", code, out, errOut)
		}
		vars[step.Var] = strings.TrimSpace(out)
	case File:
		if err := os.WriteFile(filepath.Join(e.Scratch, step.File), step.Data, 0o644); err != nil {
			return r, fmt.Errorf("write %s: %w", step.File, err)
		}
	case Docker:
		out, errOut, code, err := e.dockerStdin(ctx, step.Args, step.Stdin)
		if err != nil {
			return r, err
		}
		r.Code, r.Out, r.Err = code, e.Normaliser.Output(out), e.Normaliser.Text(errOut)
		if step.SortLines {
			r.Out, r.Err = sortLines(r.Out), sortLines(r.Err)
		}
	case API:
		status, body, err := e.request(ctx, step.Method, step.Path, step.Body)
		if err != nil {
			return r, err
		}
		r.Code, r.Out = status, e.Normaliser.Output(body)
	case Until:
		if err := e.until(ctx, step); err != nil {
			return r, err
		}
	}
	return r, nil
}

// sortLines puts the lines of s in order.
func sortLines(s string) string {
	trail := strings.HasSuffix(s, "\n")
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	slices.Sort(lines)
	out := strings.Join(lines, "\n")
	if trail {
		out += "\n"
	}
	return out
}

// docker runs the CLI and returns its stdout, stderr and exit code.
func (e Engine) docker(ctx context.Context, args []string) (stdout, stderr string, code int, err error) {
	return e.dockerStdin(ctx, args, "")
}

// dockerStdin is docker with the file at stdin ($TMP standing for the scratch
// directory) as the CLI's standard input; none when stdin is empty.
func (e Engine) dockerStdin(ctx context.Context, args []string, stdin string) (stdout, stderr string, code int, err error) {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	cmd := e.Command(ctx, e.CLI, args...)
	if stdin != "" {
		f, err := os.Open(strings.ReplaceAll(stdin, "$TMP", e.Scratch))
		if err != nil {
			return "", "", 0, fmt.Errorf("standard input of docker %s: %w", strings.Join(args, " "), err)
		}
		defer f.Close()
		cmd.Stdin = f
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit) && ctx.Err() == nil:
		code = exit.ExitCode()
	default:
		return "", "", 0, fmt.Errorf("run docker %s: %w (stderr: %s)", strings.Join(args, " "), err, errOut.String())
	}
	return out.String(), errOut.String(), code, nil
}

// request sends one API request and returns its status and body.
func (e Engine) request(ctx context.Context, method, path, body string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://engine"+path, rd)
	if err != nil {
		return 0, "", fmt.Errorf("request %s %s: %w", method, path, err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.Client.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("request %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", fmt.Errorf("read answer to %s %s: %w", method, path, err)
	}
	return resp.StatusCode, string(data), nil
}

// until polls the step's command until its output, normalised and trimmed, is
// the step's Want.
func (e Engine) until(ctx context.Context, step Step) error {
	deadline := time.Now().Add(untilTimeout)
	last := ""
	for {
		out, errOut, code, err := e.docker(ctx, step.Args)
		if err != nil {
			return err
		}
		got := strings.TrimSpace(e.Normaliser.Text(out))
		if code == 0 && got == step.Want {
			return nil
		}
		last = fmt.Sprintf("exit %d: %s%s", code, out, errOut)
		if time.Now().After(deadline) {
			return fmt.Errorf("after %s still not %q; last: %s", untilTimeout, step.Want, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
