package shellcmd

import (
	"slices"
	"strings"
)

// Option syntax.

// longKind is whether a long option takes a value.
type longKind int

const (
	longFlag     longKind = iota // --opt
	longValue                    // --opt VALUE or --opt=VALUE
	longOptional                 // --opt or --opt=VALUE
	longAttached                 // only --opt=VALUE (an option scan does not know)
)

// optSpec describes a program's options, as getopt_long would parse them.
type optSpec struct {
	flags    string              // short options without a value
	valued   string              // short options with a value (-uroot, -u root)
	optional string              // short options whose value must be attached (-i{})
	long     map[string]longKind // long options; unambiguous prefixes are accepted
	numeric  bool                // -N is an option (nice -10)
	anyShort bool                // any other letter is a flag (shells)
	anyLong  bool                // any other long option is a flag (shells)
	// anyLongValue accepts any other long option given as --name=value;
	// without "=" it is not known whether the next word is its value, so
	// the arguments cannot be interpreted.
	anyLongValue bool
	plus         bool // +x is an option too (shells' set options)
	permute      bool // options may follow operands (su)
}

// option is one option found by scan; name is its letter or long name.
type option struct {
	name     string
	value    field
	hasValue bool
}

// scan splits args into options and operands. Options end at "--" or,
// unless spec.permute, at the first operand. ok is false when a word cannot
// be interpreted: an expansion where an option may be, an unknown option, a
// missing value.
func scan(args []field, spec optSpec) (opts []option, operands []field, ok bool) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a.dynamic {
			return nil, nil, false // it may expand to options, or to nothing
		}
		t := a.text
		switch {
		case t == "--":
			return opts, append(operands, args[i+1:]...), true
		case len(t) < 2 || (t[0] != '-' && (t[0] != '+' || !spec.plus)):
			if !spec.permute {
				return opts, append(operands, args[i:]...), true
			}
			operands = append(operands, a)
		case strings.HasPrefix(t, "--"):
			name, val, attached := strings.Cut(t[2:], "=")
			full, kind, found := spec.lookupLong(name)
			if !found {
				return nil, nil, false
			}
			o := option{name: full}
			switch {
			case attached && kind == longFlag:
				return nil, nil, false
			case attached:
				o.value, o.hasValue = field{text: val}, true
			case kind == longAttached:
				return nil, nil, false
			case kind == longValue:
				if i+1 == len(args) {
					return nil, nil, false
				}
				i++
				o.value, o.hasValue = args[i], true
			}
			opts = append(opts, o)
		case spec.numeric && strings.Trim(t[1:], "0123456789") == "":
			opts = append(opts, option{name: t[1:]})
		default:
			for k := 1; k < len(t); k++ {
				c := t[k]
				o := option{name: string(c)}
				switch {
				case strings.IndexByte(spec.valued, c) >= 0:
					if k+1 < len(t) {
						o.value = field{text: t[k+1:]}
					} else if i+1 < len(args) {
						i++
						o.value = args[i]
					} else {
						return nil, nil, false
					}
					o.hasValue, k = true, len(t)
				case strings.IndexByte(spec.optional, c) >= 0:
					if k+1 < len(t) {
						o.value, o.hasValue = field{text: t[k+1:]}, true
					}
					k = len(t)
				case strings.IndexByte(spec.flags, c) >= 0 || (spec.anyShort && isLetter(c)):
				default:
					return nil, nil, false
				}
				opts = append(opts, o)
			}
		}
	}
	return opts, operands, true
}

func (s optSpec) lookupLong(name string) (string, longKind, bool) {
	if kind, ok := s.long[name]; ok {
		return name, kind, true
	}
	match, n := "", 0
	for full := range s.long {
		if name != "" && strings.HasPrefix(full, name) {
			match, n = full, n+1
		}
	}
	if n == 1 {
		return match, s.long[match], true
	}
	if s.anyLong && name != "" {
		return name, longFlag, true
	}
	if s.anyLongValue && name != "" {
		return name, longAttached, true
	}
	return "", 0, false
}

func isLetter(c byte) bool { return ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') }

// has reports whether one of names was given.
func has(opts []option, names ...string) bool {
	return slices.ContainsFunc(opts, func(o option) bool { return slices.Contains(names, o.name) })
}

// value returns the last value given to one of names.
func value(opts []option, names ...string) (field, bool) {
	for i := len(opts) - 1; i >= 0; i-- {
		if slices.Contains(names, opts[i].name) && opts[i].hasValue {
			return opts[i].value, true
		}
	}
	return field{}, false
}

// join makes shell code of fields, as eval and watch do.
func join(fields []field) field {
	var f field
	texts := make([]string, len(fields))
	for i, x := range fields {
		texts[i] = x.text
		f.dynamic = f.dynamic || x.dynamic
	}
	f.text = strings.Join(texts, " ")
	return f
}

// isAssignment reports whether f is NAME=VALUE (as env and sudo take).
func isAssignment(f field) bool {
	name, _, ok := strings.Cut(f.text, "=")
	if !ok || name == "" || f.dynamic {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c != '_' && !isLetter(c) && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

var help = map[string]longKind{"help": longFlag, "version": longFlag}

func withHelp(m map[string]longKind) map[string]longKind {
	for k, v := range help {
		m[k] = v
	}
	return m
}
