package cli

import (
	"fmt"
	"strings"
)

// flagKind says how a flag takes its value.
type flagKind int

const (
	boolFlag   flagKind = iota // --json
	stringFlag                 // --for 30m, --for=30m
	listFlag                   // --login root --login deploy, or --login root,deploy
	// textFlag takes every following word up to the next flag the command
	// knows, so that `--reason INC-1 disk full` works even though ssh joins
	// its arguments with spaces and drops the user's quotes. Other words
	// that start with "--" are text (`--reason retry --force push`).
	textFlag
)

// flagSpec declares a command's flags.
type flagSpec map[string]flagKind

// known reports whether word is a flag of the command ("--for",
// "--for=30m"), or one every command accepts.
func (s flagSpec) known(word string) bool {
	if !strings.HasPrefix(word, "--") {
		return false
	}
	name, _, _ := strings.Cut(word[2:], "=")
	_, ok := s[name]
	return ok || name == "json" || name == "help" || name == "h"
}

// args is a parsed command line.
type args struct {
	pos   []string
	vals  map[string][]string
	bools map[string]bool
}

func (a *args) str(name string) string {
	if v := a.vals[name]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

func (a *args) list(name string) []string {
	var out []string
	for _, v := range a.vals[name] {
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	}
	return out
}

func (a *args) has(name string) bool { _, ok := a.vals[name]; return ok || a.bools[name] }

// parseArgs parses words against spec. "--json" and "--help" are accepted by
// every command.
func parseArgs(words []string, spec flagSpec) (*args, error) {
	a := &args{vals: map[string][]string{}, bools: map[string]bool{}}
	for i := 0; i < len(words); i++ {
		w := words[i]
		if w == "--" {
			a.pos = append(a.pos, words[i+1:]...)
			break
		}
		if !strings.HasPrefix(w, "-") || w == "-" {
			a.pos = append(a.pos, w)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(w, "-"), "=")
		kind, ok := spec[name]
		if name == "json" || name == "help" || name == "h" {
			kind, ok = boolFlag, true
		}
		if !ok {
			return nil, fmt.Errorf("unknown flag %s", w)
		}
		switch kind {
		case boolFlag:
			if hasVal {
				return nil, fmt.Errorf("flag --%s takes no value", name)
			}
			a.bools[name] = true
		case stringFlag, listFlag:
			if !hasVal {
				if i+1 >= len(words) {
					return nil, fmt.Errorf("flag --%s needs a value", name)
				}
				i++
				val = words[i]
			}
			a.vals[name] = append(a.vals[name], val)
		case textFlag:
			parts := []string{}
			if hasVal {
				parts = append(parts, val)
			}
			for i+1 < len(words) && !spec.known(words[i+1]) {
				i++
				parts = append(parts, words[i])
			}
			if len(parts) == 0 {
				return nil, fmt.Errorf("flag --%s needs a value", name)
			}
			a.vals[name] = append(a.vals[name], strings.Join(parts, " "))
		}
	}
	return a, nil
}
