package agent

import (
	"bytes"
	"fmt"
	"strings"
	"text/template/parse"
)

// Templated secrets and configs (--template-driver golang) are Go templates,
// rendered on the node for each task, as Docker renders them: the fields
// {{.Service.ID}}, {{.Service.Name}}, {{.Service.Labels}}, {{.Node.ID}},
// {{.Node.Hostname}}, {{.Node.Platform.OS}}, {{.Node.Platform.Architecture}},
// {{.Task.ID}}, {{.Task.Name}} and {{.Task.Slot}}; the functions secret,
// config and env; and text/template's pipelines, if/else and the builtins
// index, print, printf, println, eq, ne, not, and, or, len.
//
// The template is parsed by text/template/parse and evaluated here rather than
// executed by text/template: that package's reflection keeps every method of
// every type in the binary (see docs/design.md). range, with, variables and
// nested templates are refused by name.

// object is a struct of the template's context: a missing field is an error.
type object map[string]any

// templateFuncs are the functions a template may call; parse needs their names
// (with any non-nil value).
var templateFuncs = map[string]any{
	"secret": true, "config": true, "env": true,
	"index": true, "print": true, "printf": true, "println": true,
	"eq": true, "ne": true, "not": true, "and": true, "or": true, "len": true,
}

// maxRendered bounds what one template may expand to.
const maxRendered = 4 << 20

// render executes the template data for the task.
func (tc *payloadContext) render(name string, data []byte) ([]byte, error) {
	trees, err := parse.Parse(name, string(data), "", "", templateFuncs)
	if err != nil {
		return nil, fmt.Errorf("failed to parse template of %s: %w", name, err)
	}
	tree := trees[name]
	if len(trees) != 1 || tree == nil {
		return nil, fmt.Errorf("failed to render %s: define and template are not supported in secret and config templates", name)
	}
	var out bytes.Buffer
	if tree.Root != nil {
		if err := tc.walk(&out, tree.Root); err != nil {
			return nil, fmt.Errorf("failed to render %s: %w", name, err)
		}
	}
	return out.Bytes(), nil
}

func (tc *payloadContext) walk(out *bytes.Buffer, n parse.Node) error {
	switch n := n.(type) {
	case *parse.ListNode:
		for _, c := range n.Nodes {
			if err := tc.walk(out, c); err != nil {
				return err
			}
		}
	case *parse.TextNode:
		out.Write(n.Text)
	case *parse.CommentNode:
	case *parse.ActionNode:
		if len(n.Pipe.Decl) > 0 {
			return fmt.Errorf("%s: variables are not supported", n)
		}
		v, err := tc.pipe(n.Pipe)
		if err != nil {
			return err
		}
		s, err := printed(v)
		if err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		out.WriteString(s)
	case *parse.IfNode:
		v, err := tc.pipe(n.Pipe)
		if err != nil {
			return err
		}
		switch {
		case truth(v):
			return tc.walk(out, n.List)
		case n.ElseList != nil:
			return tc.walk(out, n.ElseList)
		}
	default:
		return fmt.Errorf("%s: only fields, functions and if/else are supported", n)
	}
	if out.Len() > maxRendered {
		return fmt.Errorf("the rendered template is larger than %d bytes", maxRendered)
	}
	return nil
}

func (tc *payloadContext) pipe(p *parse.PipeNode) (any, error) {
	if len(p.Decl) > 0 {
		return nil, fmt.Errorf("%s: variables are not supported", p)
	}
	var v any
	for i, cmd := range p.Cmds {
		var err error
		if v, err = tc.command(cmd, v, i > 0); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// command evaluates one command of a pipeline; piped is the previous command's
// value, its last argument when there was one.
func (tc *payloadContext) command(cmd *parse.CommandNode, piped any, hasPiped bool) (any, error) {
	first := cmd.Args[0]
	fn, isFunc := first.(*parse.IdentifierNode)
	if !isFunc {
		if len(cmd.Args) > 1 || hasPiped {
			return nil, fmt.Errorf("%s: can't give arguments to a non-function", cmd)
		}
		return tc.arg(first)
	}
	args := make([]any, 0, len(cmd.Args))
	for _, a := range cmd.Args[1:] {
		v, err := tc.arg(a)
		if err != nil {
			return nil, err
		}
		args = append(args, v)
	}
	if hasPiped {
		args = append(args, piped)
	}
	v, err := tc.call(fn.Ident, args)
	if err != nil {
		return nil, fmt.Errorf("error calling %s: %w", fn.Ident, err)
	}
	return v, nil
}

func (tc *payloadContext) arg(n parse.Node) (any, error) {
	switch n := n.(type) {
	case *parse.FieldNode:
		return tc.field(n.Ident)
	case *parse.StringNode:
		return n.Text, nil
	case *parse.BoolNode:
		return n.True, nil
	case *parse.NumberNode:
		if n.IsInt {
			return n.Int64, nil
		}
		return n.Text, nil
	case *parse.PipeNode:
		return tc.pipe(n)
	case *parse.DotNode:
		return tc.fields, nil
	case *parse.IdentifierNode:
		return tc.call(n.Ident, nil)
	}
	return nil, fmt.Errorf("%s: not supported in secret and config templates", n)
}

// field follows a chain of fields from the context: objects must have them;
// maps (labels) give "" for a missing key, printed as <no value>.
func (tc *payloadContext) field(idents []string) (any, error) {
	var v any = tc.fields
	for _, id := range idents {
		switch cur := v.(type) {
		case object:
			next, ok := cur[id]
			if !ok {
				return nil, fmt.Errorf("can't evaluate field %s", id)
			}
			v = next
		case map[string]string:
			next, ok := cur[id]
			if !ok {
				return noValue{}, nil
			}
			v = next
		default:
			return nil, fmt.Errorf("can't evaluate field %s in a %T", id, v)
		}
	}
	return v, nil
}

// noValue is a missing map key, which text/template prints as <no value>.
type noValue struct{}

func (tc *payloadContext) call(name string, args []any) (any, error) {
	str := func() (string, error) {
		if len(args) != 1 {
			return "", fmt.Errorf("wrong number of args: want 1, got %d", len(args))
		}
		s, ok := args[0].(string)
		if !ok {
			return "", fmt.Errorf("want a string, got %T", args[0])
		}
		return s, nil
	}
	switch name {
	case "secret":
		s, err := str()
		if err != nil {
			return nil, err
		}
		return tc.secretByTarget(s)
	case "config":
		s, err := str()
		if err != nil {
			return nil, err
		}
		return tc.configByTarget(s)
	case "env":
		s, err := str()
		if err != nil {
			return nil, err
		}
		return tc.env(s), nil
	case "index":
		if len(args) != 2 {
			return nil, fmt.Errorf("wrong number of args: want 2, got %d", len(args))
		}
		m, ok := args[0].(map[string]string)
		key, kok := args[1].(string)
		if !ok || !kok {
			return nil, fmt.Errorf("can't index %T with %T", args[0], args[1])
		}
		if v, ok := m[key]; ok {
			return v, nil
		}
		return "", nil
	case "print", "println":
		parts := make([]any, len(args))
		for i, a := range args {
			parts[i] = printable(a)
		}
		if name == "println" {
			return fmt.Sprintln(parts...), nil
		}
		return fmt.Sprint(parts...), nil
	case "printf":
		if len(args) == 0 {
			return nil, fmt.Errorf("wrong number of args: want at least 1")
		}
		format, ok := args[0].(string)
		if !ok {
			return nil, fmt.Errorf("the format must be a string")
		}
		parts := make([]any, len(args)-1)
		for i, a := range args[1:] {
			parts[i] = printable(a)
		}
		return fmt.Sprintf(format, parts...), nil
	case "eq", "ne":
		if len(args) < 2 {
			return nil, fmt.Errorf("wrong number of args: want at least 2")
		}
		eq := false
		for _, b := range args[1:] {
			eq = eq || fmt.Sprint(printable(args[0])) == fmt.Sprint(printable(b))
		}
		return eq == (name == "eq"), nil
	case "not":
		if len(args) != 1 {
			return nil, fmt.Errorf("wrong number of args: want 1, got %d", len(args))
		}
		return !truth(args[0]), nil
	case "and", "or":
		if len(args) == 0 {
			return nil, fmt.Errorf("wrong number of args: want at least 1")
		}
		for _, a := range args[:len(args)-1] {
			if truth(a) != (name == "and") {
				return a, nil
			}
		}
		return args[len(args)-1], nil
	case "len":
		if len(args) != 1 {
			return nil, fmt.Errorf("wrong number of args: want 1, got %d", len(args))
		}
		switch a := args[0].(type) {
		case string:
			return int64(len(a)), nil
		case map[string]string:
			return int64(len(a)), nil
		}
		return nil, fmt.Errorf("len of %T", args[0])
	}
	return nil, fmt.Errorf("function %q not defined", name)
}

func printable(v any) any {
	if _, ok := v.(noValue); ok {
		return "<no value>"
	}
	return v
}

func printed(v any) (string, error) {
	switch v := v.(type) {
	case nil:
		return "<no value>", nil
	case object:
		return "", fmt.Errorf("can't print a context object; name one of its fields")
	case noValue:
		return "<no value>", nil
	case map[string]string:
		// As fmt prints a map: keys sorted.
		return fmt.Sprint(v), nil
	}
	return fmt.Sprint(v), nil
}

func truth(v any) bool {
	switch v := v.(type) {
	case nil, noValue:
		return false
	case bool:
		return v
	case string:
		return v != ""
	case int64:
		return v != 0
	case map[string]string:
		return len(v) > 0
	case object:
		return true
	}
	return strings.TrimSpace(fmt.Sprint(v)) != ""
}
