package config

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// indexLines records the line of every mapping key and sequence item under
// path, so that validation errors about a field can name its line.
func indexLines(n *yaml.Node, path string, lines map[string]int) {
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		indexLines(n.Content[0], path, lines)
		return
	}
	if _, seen := lines[path]; !seen {
		lines[path] = n.Line
	}
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			p := key.Value
			if path != "" {
				p = path + "." + key.Value
			}
			lines[p] = key.Line
			indexLines(val, p, lines)
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			indexLines(item, fmt.Sprintf("%s[%d]", path, i), lines)
		}
	}
}

var (
	yamlLineRE     = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)
	unknownFieldRE = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
)

// yamlError turns a yaml.v3 error into *Error values naming file and line
// (and, for unknown fields, the field's path).
func yamlError(file string, lines map[string]int, err error) error {
	var msgs []string
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	var errs []error
	for _, m := range msgs {
		e := &Error{File: file, Msg: strings.TrimPrefix(m, "yaml: ")}
		if g := yamlLineRE.FindStringSubmatch(m); g != nil {
			e.Line, _ = strconv.Atoi(g[1])
			e.Msg = g[2]
		}
		if g := unknownFieldRE.FindStringSubmatch(e.Msg); g != nil {
			e.Msg = fmt.Sprintf("unknown field %q", g[1])
			e.Field = fieldAt(lines, e.Line, g[1])
		} else if e.Line > 0 {
			e.Field = deepestAt(lines, e.Line) // e.g. a string where a number belongs
		}
		e.Msg = strings.ReplaceAll(e.Msg, "!!str ", "string ")
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// deepestAt finds the most specific path that starts at line.
func deepestAt(lines map[string]int, line int) string {
	best := ""
	for p, l := range lines {
		if l == line && (len(p) > len(best) || (len(p) == len(best) && p < best)) {
			best = p
		}
	}
	return best
}

// fieldAt finds the path of key name at line.
func fieldAt(lines map[string]int, line int, name string) string {
	for p, l := range lines {
		if l == line && (p == name || strings.HasSuffix(p, "."+name)) {
			return p
		}
	}
	return ""
}
