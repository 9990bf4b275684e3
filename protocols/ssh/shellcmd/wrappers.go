package shellcmd

import (
	"slices"
	"strings"
)

// A wrapper is a program that runs another command or shell code given in
// its arguments. It reads its arguments (after its own name) and says what
// it runs. The wrapper itself is always reported too.
type wrapper func(args []field, j job) unwrapped

// unwrapped is what a wrapper runs.
type unwrapped struct {
	next        []inner // commands it runs
	scripts     []field // shell code it runs (sh -c STRING, eval ARGS)
	stdinScript bool    // it runs shell code read from its standard input
	// unknown is set when what it runs cannot be known: an expansion or an
	// unknown option where the command should start, shell code only known
	// at run time. The wrapper is then reported as Dynamic.
	unknown bool
}

// inner is a command run by a wrapper.
type inner struct {
	fields      []field
	in          stdin
	placeholder string
}

var wrappers map[string]wrapper

func init() {
	wrappers = map[string]wrapper{
		"alias":   aliasCmd,
		"builtin": func(args []field, j job) unwrapped { return runs(args, j) },
		"busybox": busybox,
		"chroot":  chroot,
		"command": commandCmd,
		"doas":    doas,
		"env":     env,
		"eval":    eval,
		"exec":    execCmd,
		"find":    find,
		"nice":    nice,
		"nohup":   nohup,
		"setsid":  setsid,
		"stdbuf":  stdbuf,
		"su":      su,
		"sudo":    sudo,
		"time":    timeCmd,
		"timeout": timeout,
		"trap":    trap,
		"watch":   watch,
		"xargs":   xargs,
	}
	for _, sh := range []string{"sh", "bash", "rbash", "dash", "ash", "hush", "zsh", "ksh", "ksh93", "mksh", "lksh", "pdksh", "oksh", "posh", "yash", "fish", "csh", "tcsh"} {
		wrappers[sh] = shell
	}
}

// runs is the usual answer: args are a command, run with the same input.
func runs(args []field, j job) unwrapped {
	if len(args) == 0 {
		return unwrapped{}
	}
	return unwrapped{next: []inner{{fields: args, in: j.in, placeholder: j.placeholder}}}
}

var unknown = unwrapped{unknown: true}

// Option syntax.

// longKind is whether a long option takes a value.
type longKind int

const (
	longFlag     longKind = iota // --opt
	longValue                    // --opt VALUE or --opt=VALUE
	longOptional                 // --opt or --opt=VALUE
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
	plus     bool                // +x is an option too (shells' set options)
	permute  bool                // options may follow operands (su)
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

// The wrappers.

// shell: sh -c STRING runs STRING; sh with no script file (or -s) runs
// what it reads from its standard input; sh FILE runs a file.
var shellSpec = optSpec{
	valued:   "oO",
	anyShort: true,
	anyLong:  true,
	plus:     true,
	long:     map[string]longKind{"rcfile": longValue, "init-file": longValue, "command": longValue},
}

func shell(args []field, j job) unwrapped {
	opts, ops, ok := scan(args, shellSpec)
	if !ok {
		return unknown
	}
	if len(ops) > 0 && ops[0].text == "-" && !ops[0].dynamic {
		ops = ops[1:] // "-" ends the options
	}
	if script, ok := value(opts, "command"); ok { // fish --command=STRING
		return unwrapped{scripts: []field{script}}
	}
	if has(opts, "c") {
		if len(ops) == 0 {
			return unknown // the code comes from words not on the line (xargs)
		}
		return unwrapped{scripts: ops[:1]}
	}
	if len(ops) == 0 || has(opts, "s") {
		return unwrapped{stdinScript: true}
	}
	switch ops[0].text {
	case "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0":
		return unwrapped{stdinScript: true}
	}
	return unwrapped{} // runs a script file: as opaque as ./script
}

// busybox APPLET ARGS runs the applet (busybox sh -c …, busybox rm …).
func busybox(args []field, j job) unwrapped {
	if len(args) > 0 && !args[0].dynamic && strings.HasPrefix(args[0].text, "-") {
		return unwrapped{} // --list, --install, --help
	}
	return runs(args, j)
}

// eval ARGS runs its arguments joined by spaces.
func eval(args []field, j job) unwrapped {
	if len(args) > 0 && args[0].text == "--" && !args[0].dynamic {
		args = args[1:]
	}
	if len(args) == 0 {
		return unwrapped{}
	}
	return unwrapped{scripts: []field{join(args)}}
}

// alias NAME=VALUE: VALUE runs wherever NAME is typed later.
func aliasCmd(args []field, j job) unwrapped {
	var u unwrapped
	for _, a := range args {
		if a.dynamic {
			return unknown
		}
		if _, v, ok := strings.Cut(a.text, "="); ok && !strings.HasPrefix(a.text, "-") {
			u.scripts = append(u.scripts, field{text: v})
		}
	}
	return u
}

// trap ACTION SIGNAL…: ACTION runs when a signal arrives.
func trap(args []field, j job) unwrapped {
	_, ops, ok := scan(args, optSpec{flags: "lpP"})
	if !ok {
		return unknown
	}
	if len(ops) < 2 || (ops[0].text == "-" && !ops[0].dynamic) {
		return unwrapped{}
	}
	return unwrapped{scripts: ops[:1]}
}

// command [-p] CMD runs CMD; command -v/-V CMD only describes it.
func commandCmd(args []field, j job) unwrapped {
	opts, ops, ok := scan(args, optSpec{flags: "pvV"})
	if !ok {
		return unknown
	}
	if has(opts, "v", "V") {
		return unwrapped{}
	}
	return runs(ops, j)
}

// exec [-cl] [-a NAME] CMD.
func execCmd(args []field, j job) unwrapped {
	_, ops, ok := scan(args, optSpec{flags: "cl", valued: "a"})
	if !ok {
		return unknown
	}
	return runs(ops, j)
}

// env [-i] [-u NAME] [-C DIR] [-S STRING] [NAME=VALUE…] [CMD…].
var envSpec = optSpec{
	flags:  "iv0",
	valued: "uCSP",
	long: withHelp(map[string]longKind{
		"ignore-environment": longFlag, "null": longFlag, "unset": longValue, "chdir": longValue,
		"split-string": longValue, "debug": longFlag, "block-signal": longOptional,
		"default-signal": longOptional, "ignore-signal": longOptional, "list-signal-handling": longFlag,
	}),
}

func env(args []field, j job) unwrapped {
	opts, ops, ok := scan(args, envSpec)
	if !ok {
		return unknown
	}
	for len(ops) > 0 && (isAssignment(ops[0]) || (ops[0].text == "-" && !ops[0].dynamic)) {
		ops = ops[1:]
	}
	if s, ok := value(opts, "S", "split-string"); ok {
		// -S splits its string into words, much as a shell would.
		return unwrapped{scripts: []field{join(append([]field{s}, ops...))}}
	}
	return runs(ops, j)
}

// sudo [options] [NAME=VALUE…] CMD.
var sudoSpec = optSpec{
	flags:    "ABbEeHiKklNnPSsVv",
	valued:   "aCcDgpRrTtUu",
	optional: "h",
	long: withHelp(map[string]longKind{
		"askpass": longFlag, "auth-type": longValue, "background": longFlag, "bell": longFlag,
		"close-from": longValue, "login-class": longValue, "preserve-env": longOptional, "edit": longFlag,
		"group": longValue, "set-home": longFlag, "host": longValue, "login": longFlag,
		"remove-timestamp": longFlag, "reset-timestamp": longFlag, "no-update": longFlag, "list": longFlag,
		"non-interactive": longFlag, "preserve-groups": longFlag, "prompt": longValue, "chdir": longValue,
		"chroot": longValue, "role": longValue, "stdin": longFlag, "shell": longFlag, "type": longValue,
		"command-timeout": longValue, "other-user": longValue, "user": longValue, "validate": longFlag,
	}),
}

func sudo(args []field, j job) unwrapped {
	opts, ops, ok := scan(args, sudoSpec)
	if !ok {
		return unknown
	}
	// Editing files, listing privileges, and the housekeeping options run
	// no command.
	if has(opts, "e", "edit", "l", "list", "v", "validate", "V", "version", "K", "remove-timestamp", "help") {
		return unwrapped{}
	}
	if _, host := value(opts, "h"); has(opts, "h") && !host {
		return unwrapped{} // -h alone is --help
	}
	for len(ops) > 0 && isAssignment(ops[0]) {
		ops = ops[1:]
	}
	return runs(ops, j)
}

// doas [-Lns] [-C CONFIG] [-u USER] CMD.
func doas(args []field, j job) unwrapped {
	opts, ops, ok := scan(args, optSpec{flags: "Lns", valued: "uC"})
	if !ok {
		return unknown
	}
	if has(opts, "C", "L") {
		return unwrapped{}
	}
	return runs(ops, j)
}

// nohup CMD.
func nohup(args []field, j job) unwrapped {
	_, ops, ok := scan(args, optSpec{long: withHelp(map[string]longKind{})})
	if !ok {
		return unknown
	}
	return runs(ops, j)
}

// nice [-n N | -N] CMD.
func nice(args []field, j job) unwrapped {
	_, ops, ok := scan(args, optSpec{valued: "n", numeric: true, long: withHelp(map[string]longKind{"adjustment": longValue})})
	if !ok {
		return unknown
	}
	return runs(ops, j)
}

// timeout [options] DURATION CMD.
func timeout(args []field, j job) unwrapped {
	_, ops, ok := scan(args, optSpec{flags: "v", valued: "ks", long: withHelp(map[string]longKind{
		"kill-after": longValue, "signal": longValue, "foreground": longFlag, "preserve-status": longFlag, "verbose": longFlag,
	})})
	if !ok {
		return unknown
	}
	if len(ops) < 2 {
		return unwrapped{}
	}
	return runs(ops[1:], j)
}

// time [options] CMD (the program; the shell keyword is a TimeClause).
func timeCmd(args []field, j job) unwrapped {
	_, ops, ok := scan(args, optSpec{flags: "aplqv", valued: "fo", long: withHelp(map[string]longKind{
		"format": longValue, "output": longValue, "append": longFlag, "portability": longFlag, "quiet": longFlag, "verbose": longFlag,
	})})
	if !ok {
		return unknown
	}
	return runs(ops, j)
}

// stdbuf [-i MODE] [-o MODE] [-e MODE] CMD.
func stdbuf(args []field, j job) unwrapped {
	_, ops, ok := scan(args, optSpec{valued: "ioe", long: withHelp(map[string]longKind{
		"input": longValue, "output": longValue, "error": longValue,
	})})
	if !ok {
		return unknown
	}
	return runs(ops, j)
}

// setsid [-cfw] CMD.
func setsid(args []field, j job) unwrapped {
	_, ops, ok := scan(args, optSpec{flags: "cfw", long: withHelp(map[string]longKind{
		"ctty": longFlag, "fork": longFlag, "wait": longFlag,
	})})
	if !ok {
		return unknown
	}
	return runs(ops, j)
}

// chroot [options] DIR [CMD].
func chroot(args []field, j job) unwrapped {
	_, ops, ok := scan(args, optSpec{long: withHelp(map[string]longKind{
		"userspec": longValue, "groups": longValue, "skip-chdir": longFlag,
	})})
	if !ok {
		return unknown
	}
	if len(ops) < 2 {
		return unwrapped{} // an interactive shell
	}
	return runs(ops[1:], j)
}

// xargs [options] [CMD [ARGS]]: runs CMD (default echo) with more
// arguments read from its input, which CMD does not get.
var xargsSpec = optSpec{
	flags:    "0oprtx",
	valued:   "adEILnPs",
	optional: "eil",
	long: withHelp(map[string]longKind{
		"null": longFlag, "arg-file": longValue, "delimiter": longValue, "eof": longOptional,
		"replace": longOptional, "max-lines": longOptional, "max-args": longValue, "max-procs": longValue,
		"max-chars": longValue, "process-slot-var": longValue, "interactive": longFlag, "open-tty": longFlag,
		"no-run-if-empty": longFlag, "verbose": longFlag, "exit": longFlag, "show-limits": longFlag,
	}),
}

func xargs(args []field, j job) unwrapped {
	opts, ops, ok := scan(args, xargsSpec)
	if !ok {
		return unknown
	}
	placeholder := j.placeholder
	if r, ok := value(opts, "I", "i", "replace"); ok {
		placeholder = r.text
	} else if has(opts, "i", "replace") {
		placeholder = "{}"
	}
	if len(ops) == 0 {
		ops = []field{{text: "echo"}}
	}
	return unwrapped{next: []inner{{fields: ops, in: stdin{kind: stdinFile}, placeholder: placeholder}}}
}

// find … -exec CMD … ; (or +), -execdir, -ok, -okdir: each runs CMD with
// "{}" replaced by a file name.
func find(args []field, j job) unwrapped {
	var u unwrapped
	for i := 0; i < len(args); i++ {
		switch args[i].text {
		case "-exec", "-execdir", "-ok", "-okdir":
		default:
			continue
		}
		start := i + 1
		end := start
		for ; end < len(args); end++ {
			t := args[end].text
			if t == ";" || (t == "+" && end > start && args[end-1].text == "{}") {
				break
			}
		}
		if end > start {
			u.next = append(u.next, inner{fields: args[start:end], in: j.in, placeholder: "{}"})
		}
		i = end
	}
	return u
}

// watch [options] CMD…: runs sh -c with its arguments joined, or the
// command itself with -x.
func watch(args []field, j job) unwrapped {
	opts, ops, ok := scan(args, optSpec{flags: "bcCeghprtvwx", valued: "nq", optional: "d", long: withHelp(map[string]longKind{
		"beep": longFlag, "color": longFlag, "no-color": longFlag, "differences": longOptional, "errexit": longFlag,
		"chgexit": longFlag, "interval": longValue, "precise": longFlag, "equexit": longValue, "no-rerun": longFlag,
		"no-title": longFlag, "no-wrap": longFlag, "exec": longFlag,
	})})
	if !ok {
		return unknown
	}
	if has(opts, "x", "exec") {
		return runs(ops, j)
	}
	if len(ops) == 0 {
		return unwrapped{}
	}
	return unwrapped{scripts: []field{join(ops)}}
}

// su [options] [-] [USER [ARGS…]]: -c STRING runs STRING in the user's
// shell (or the -s one); ARGS go to that shell (su root -- -c STRING).
var suSpec = optSpec{
	flags:   "flmpPhV",
	valued:  "cgGsw",
	permute: true,
	long: withHelp(map[string]longKind{
		"command": longValue, "session-command": longValue, "shell": longValue, "group": longValue,
		"supp-group": longValue, "login": longFlag, "preserve-environment": longFlag, "pty": longFlag,
		"whitelist-environment": longValue, "fast": longFlag,
	}),
}

func su(args []field, j job) unwrapped {
	opts, ops, ok := scan(args, suSpec)
	if !ok {
		return unknown
	}
	if len(ops) > 0 && ops[0].text == "-" && !ops[0].dynamic {
		ops = ops[1:] // a login shell
	}
	var rest []field // the shell's arguments, after the user
	if len(ops) > 1 {
		rest = ops[1:]
	}
	script, hasScript := value(opts, "c", "command", "session-command")
	sh, hasShell := value(opts, "s", "shell")
	if !hasShell {
		// The target user's shell: unknown here, but a shell.
		if hasScript {
			return unwrapped{scripts: []field{script}}
		}
		if len(rest) == 0 {
			return unwrapped{}
		}
		sh = field{text: "sh"}
	}
	fields := []field{sh}
	if hasScript {
		fields = append(fields, field{text: "-c"}, script)
	}
	return unwrapped{next: []inner{{fields: append(fields, rest...), in: j.in, placeholder: j.placeholder}}}
}
