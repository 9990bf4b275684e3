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
	stdinCode   bool    // it runs code in another language read from its standard input
	// unknown is set when what it runs cannot be known: an expansion or an
	// unknown option where the command should start, shell code only known
	// at run time, code in another language given inline (python3 -c). The
	// wrapper is then reported as Dynamic.
	unknown bool
	aliases map[string]string // aliases it defines (alias NAME=VALUE)
}

// inner is a command run by a wrapper.
type inner struct {
	fields      []field
	in          stdin
	placeholder string
	moreArgs    bool // the wrapper adds arguments at run time
}

// wrappers is THE table of programs that run other programs, by normalised
// name: for each, where the command it runs starts (after which options,
// which of them take a value, and how many operands), or that it runs its
// standard input, a file or an argument as code. Every entry is checked by
// TestParseTable; README's rules section reproduces it. A program found
// here whose command cannot be found statically (an unknown option, an
// expansion where the command starts) is reported Dynamic, so that it is
// refused wherever command rules apply. Names not here are ordinary
// commands; interpreters are in the table of interpreters.go.
var wrappers map[string]wrapper

func init() {
	wrappers = map[string]wrapper{
		// Shell builtins and keywords.
		"alias":   aliasCmd,                                                     // alias NAME=VALUE: defines, runs nothing
		"builtin": func(args []field, j job) unwrapped { return runs(args, j) }, // builtin CMD
		"command": commandCmd,                                                   // command [-p] CMD; -v/-V run nothing
		"eval":    eval,                                                         // eval ARGS: its arguments, joined, are code
		"exec":    execCmd,                                                      // exec [-cl] [-a NAME] CMD
		"trap":    trap,                                                         // trap CODE SIGNAL…
		"bind":    bind,                                                         // bind KEYSEQ:… makes keys run code or type text
		"bindkey": bindkey,                                                      // zsh: bindkey -s KEY STRING types text
		"fc":      fc,                                                           // fc re-runs commands from the history; -l lists
		"r":       func([]field, job) unwrapped { return unknown },              // ksh/zsh: re-runs the last command
		"stty":    stty,                                                         // stty -echo: later input looks like a password
		"source":  sourceCmd,                                                    // source FILE: /dev/stdin is the input
		".":       sourceCmd,                                                    // . FILE
		// Privilege and identity.
		"sudo":    sudo,                                                                                                                                            // sudo [opts] [VAR=x…] CMD; -i/-s alone: a shell reading input
		"doas":    doas,                                                                                                                                            // doas [opts] CMD; -s: a shell reading input
		"su":      su,                                                                                                                                              // su [opts] [-] [USER [ARGS]]; -c CODE; alone: a shell reading input
		"runuser": runuser,                                                                                                                                         // runuser -u USER CMD, or as su
		"pkexec":  after(0, optSpec{long: withHelp(map[string]longKind{"user": longValue, "disable-internal-agent": longFlag, "keep-cwd": longFlag})}, readsInput), // pkexec [--user U] CMD; alone: a root shell reading input
		"sg":      sg,                                                                                                                                              // sg GROUP [-c] CODE
		"newgrp":  func([]field, job) unwrapped { return unwrapped{stdinScript: true} },                                                                            // newgrp [GROUP]: a shell reading input
		"setpriv": after(0, setprivSpec, nothing),                                                                                                                  // setpriv [--opt[=v]…] CMD
		"chroot":  after(1, optSpec{long: withHelp(map[string]longKind{"userspec": longValue, "groups": longValue, "skip-chdir": longFlag})}, readsInput),          // chroot DIR [CMD]
		// Scheduling, limits, namespaces.
		"nohup":    after(0, optSpec{long: withHelp(map[string]longKind{})}, nothing),                                                                                                                                                                                                                                                                                                                                                                          // nohup CMD
		"nice":     after(0, optSpec{valued: "n", numeric: true, long: withHelp(map[string]longKind{"adjustment": longValue})}, nothing),                                                                                                                                                                                                                                                                                                                       // nice [-n N | -N] CMD
		"ionice":   after(0, optSpec{flags: "t", valued: "cnpPu", long: withHelp(map[string]longKind{"class": longValue, "classdata": longValue, "pid": longValue, "pgid": longValue, "uid": longValue, "ignore": longFlag})}, nothing, "p", "P", "u", "pid", "pgid", "uid"),                                                                                                                                                                                   // ionice [-c C] [-n N] CMD; -p/-P/-u act on running processes
		"timeout":  after(1, optSpec{flags: "v", valued: "ks", long: withHelp(map[string]longKind{"kill-after": longValue, "signal": longValue, "foreground": longFlag, "preserve-status": longFlag, "verbose": longFlag})}, nothing),                                                                                                                                                                                                                          // timeout DURATION CMD
		"stdbuf":   after(0, optSpec{valued: "ioe", long: withHelp(map[string]longKind{"input": longValue, "output": longValue, "error": longValue})}, nothing),                                                                                                                                                                                                                                                                                                // stdbuf [-i/-o/-e MODE] CMD
		"setsid":   after(0, optSpec{flags: "cfw", long: withHelp(map[string]longKind{"ctty": longFlag, "fork": longFlag, "wait": longFlag})}, nothing),                                                                                                                                                                                                                                                                                                        // setsid [-cfw] CMD
		"taskset":  after(1, optSpec{flags: "acp", long: withHelp(map[string]longKind{"all-tasks": longFlag, "cpu-list": longFlag, "pid": longFlag})}, nothing, "p", "pid"),                                                                                                                                                                                                                                                                                    // taskset MASK CMD
		"chrt":     after(1, optSpec{flags: "abdefimoprRv", valued: "TPD", long: withHelp(map[string]longKind{"all-tasks": longFlag, "batch": longFlag, "deadline": longFlag, "fifo": longFlag, "idle": longFlag, "other": longFlag, "rr": longFlag, "reset-on-fork": longFlag, "pid": longFlag, "max": longFlag, "verbose": longFlag, "sched-runtime": longValue, "sched-period": longValue, "sched-deadline": longValue})}, nothing, "p", "pid", "m", "max"), // chrt PRIO CMD
		"prlimit":  after(0, optSpec{flags: "o", valued: "p", anyLongValue: true}, nothing, "p", "pid"),                                                                                                                                                                                                                                                                                                                                                        // prlimit [--LIMIT=v…] CMD; -p acts on a running process
		"unshare":  after(0, optSpec{flags: "fcrU", optional: "muinpCT", valued: "SGRwel", anyLongValue: true}, readsInput),                                                                                                                                                                                                                                                                                                                                    // unshare [opts] [CMD]; alone: a shell reading input
		"nsenter":  after(0, optSpec{flags: "aFZ", optional: "muinpUCTrw", valued: "tSG", anyLongValue: true}, readsInput),                                                                                                                                                                                                                                                                                                                                     // nsenter -t PID [opts] [CMD]; alone: a shell reading input
		"cgexec":   after(0, optSpec{valued: "g", long: map[string]longKind{"sticky": longFlag}}, nothing),                                                                                                                                                                                                                                                                                                                                                     // cgexec [-g CTRL:PATH] [--sticky] CMD
		"fakeroot": after(0, optSpec{valued: "ils", anyLongValue: true}, readsInput),                                                                                                                                                                                                                                                                                                                                                                           // fakeroot [opts] [--] [CMD]; alone: a shell reading input
		"flock":    flock,                                                                                                                                                                                                                                                                                                                                                                                                                                      // flock [opts] FILE CMD | FILE -c CODE | FD
		// systemd-run [opts] CMD (a unit runs it); --shell: a shell.
		"systemd-run": after(0, optSpec{
			flags: "rtPqGSd", valued: "upEMHC",
			long: withHelp(map[string]longKind{
				"user": longFlag, "system": longFlag, "scope": longFlag, "unit": longValue, "property": longValue,
				"description": longValue, "slice": longValue, "slice-inherit": longFlag, "remain-after-exit": longFlag,
				"send-sighup": longFlag, "service-type": longValue, "uid": longValue, "gid": longValue, "nice": longValue,
				"working-directory": longValue, "same-dir": longFlag, "setenv": longValue, "pty": longFlag, "pipe": longFlag,
				"quiet": longFlag, "wait": longFlag, "collect": longFlag, "no-block": longFlag, "no-ask-password": longFlag,
				"on-active": longValue, "on-boot": longValue, "on-startup": longValue, "on-unit-active": longValue,
				"on-unit-inactive": longValue, "on-calendar": longValue, "on-clock-change": longFlag, "on-timezone-change": longFlag,
				"path-property": longValue, "socket-property": longValue, "timer-property": longValue, "host": longValue,
				"machine": longValue, "shell": longFlag,
			}),
		}, readsInput),
		// Time, tracing, repetition.
		"time":     after(0, optSpec{flags: "aplqv", valued: "fo", long: withHelp(map[string]longKind{"format": longValue, "output": longValue, "append": longFlag, "portability": longFlag, "quiet": longFlag, "verbose": longFlag})}, nothing), // time [-p] [-f FMT] [-o FILE] CMD
		"strace":   after(0, optSpec{flags: "cCdDfFhiknqrtTvVwxyYzZ", valued: "abeEIoOpPsSuUX", anyLongValue: true}, nothing, "p", "attach"),                                                                                                     // strace [opts] CMD; -p attaches to a running process
		"ltrace":   after(0, optSpec{flags: "bcCfhiLrStTV", valued: "aAeFlnopsuDwx", anyLongValue: true}, nothing, "p"),                                                                                                                          // ltrace [opts] CMD; -p attaches to a running process
		"watch":    watch,                                                                                                                                                                                                                        // watch [opts] CODE… (joined), or -x CMD
		"xargs":    xargs,                                                                                                                                                                                                                        // xargs [opts] CMD: with arguments read at run time
		"find":     find,                                                                                                                                                                                                                         // find … -exec CMD … ; (also -execdir, -ok, -okdir)
		"parallel": parallel,                                                                                                                                                                                                                     // parallel [opts] CMD ::: ARGS, or lines of its input as code
		"env":      env,                                                                                                                                                                                                                          // env [opts] [VAR=x…] CMD; -S STRING is split into a command
		// Multiplexers, remote shells, job schedulers.
		"tmux":   tmux,      // tmux [opts] new|neww|splitw|respawnp|run … CODE; send-keys types anything
		"screen": screen,    // screen [opts] CMD; -X sends commands to a session
		"ssh":    sshCmd,    // ssh [opts] HOST CODE… (joined, run by the remote shell)
		"at":     at,        // at [opts] TIME: reads shell code from its input (or -f FILE)
		"batch":  at,        // batch: as at
		"script": scriptCmd, // script [opts] [FILE]; -c CODE; alone: a shell reading input
		// Launchers and sandboxes.
		"sshpass":          after(0, optSpec{flags: "ev", valued: "pfdP", long: withHelp(map[string]longKind{})}, nothing), // sshpass -p PW CMD
		"rlwrap":           after(0, optSpec{flags: "AcCiImnNrRsSvWX", valued: "abeEfFgHlopPqtwz", anyLongValue: true}, nothing),
		"valgrind":         after(0, optSpec{flags: "qv", anyLongValue: true}, nothing),
		"firejail":         after(0, optSpec{anyLongValue: true}, readsInput),
		"bwrap":            func([]field, job) unwrapped { return unknown }, // options take several values (--bind SRC DEST)
		"numactl":          after(0, optSpec{flags: "ls", valued: "CimMNpPH", anyLongValue: true}, nothing),
		"xvfb-run":         after(0, optSpec{flags: "a", valued: "efnpsw", anyLongValue: true}, nothing),
		"dbus-run-session": after(0, optSpec{anyLongValue: true}, nothing),
		"eatmydata":        after(0, optSpec{}, nothing),
		"nocache":          after(0, optSpec{valued: "nD"}, nothing),
		"faketime":         after(1, optSpec{flags: "m", valued: "f", anyLongValue: true}, nothing), // faketime TIME CMD
		"proxychains":      after(0, optSpec{flags: "q", valued: "f"}, nothing),
		"proxychains4":     after(0, optSpec{flags: "q", valued: "f"}, nothing),
		"torsocks":         after(0, optSpec{flags: "diq6", valued: "uapP", anyLongValue: true}, nothing),
		"catchsegv":        after(0, optSpec{}, nothing),
		"entr":             after(0, optSpec{flags: "acdnprsz"}, nothing), // entr CMD (files on its input)
		"hyperfine":        hyperfine,                                     // hyperfine [opts] CODE…: each is shell code
		// Programs that run code given in an option or read later.
		"nc":      netcat,  // nc -e PROG / -c CODE runs a program for the connection
		"ncat":    netcat,  // ncat --exec / --sh-exec / --lua-exec
		"netcat":  netcat,  // as nc
		"socat":   socat,   // socat … EXEC:CMD / SYSTEM:CODE
		"crontab": crontab, // crontab FILE or - installs jobs: code run later
		"git":     gitCmd,  // git -c KEY=VALUE can make git run a command
		// Multi-call binaries.
		"busybox": busybox, // busybox APPLET ARGS
		"toybox":  busybox, // toybox APPLET ARGS
	}
	for _, sh := range []string{"sh", "bash", "rbash", "dash", "ash", "hush", "zsh", "ksh", "ksh93", "mksh", "lksh", "pdksh", "oksh", "posh", "yash", "fish", "csh", "tcsh"} {
		wrappers[sh] = shell
	}
}

// wrapperOf returns the entry for a normalised command name, versioned
// interpreter names included (python3.12, perl5.36).
func wrapperOf(name string) wrapper {
	if w := wrappers[name]; w != nil {
		return w
	}
	if in, ok := interpreters[name]; ok {
		return in.unwrap
	}
	if base := strings.TrimRight(name, "0123456789."); base != name {
		if in, ok := interpreters[base]; ok {
			return in.unwrap
		}
	}
	return nil
}

// runs is the usual answer: args are a command, run with the same input.
func runs(args []field, j job) unwrapped {
	if len(args) == 0 {
		return unwrapped{}
	}
	return unwrapped{next: []inner{{fields: args, in: j.in, placeholder: j.placeholder}}}
}

var unknown = unwrapped{unknown: true}

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
	return scriptFileOf(ops[0])
}

// scriptFileOf is what running the script file f means: its standard
// input, for /dev/stdin and its aliases; unknown for a name only known at
// run time (bash <(cat), . "$F"), which may be the input too; else a file,
// as opaque as ./script.
func scriptFileOf(f field) unwrapped {
	if f.dynamic {
		return unknown
	}
	switch f.text {
	case "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0":
		return unwrapped{stdinScript: true}
	}
	return unwrapped{}
}

// bind (bash) only lists bindings with -l, -p, -P, -v, -V, -s, -S, -q, -Q
// or -r; any other form binds keys to code (-x), to macros that type text
// and Enter, or to editing functions the line filter cannot follow: what a
// key then runs is never a typed line.
func bind(args []field, j job) unwrapped {
	if len(args) == 0 {
		return unwrapped{}
	}
	for _, a := range args {
		if a.dynamic || !strings.HasPrefix(a.text, "-") || strings.Trim(a.text[1:], "lpPvVsSqQr") != "" {
			return unknown
		}
	}
	return unwrapped{}
}

// bindkey (zsh) lists bindings without operands or with -l/-L alone; any
// other form changes what keys do.
func bindkey(args []field, j job) unwrapped {
	for _, a := range args {
		if a.dynamic || (a.text != "-l" && a.text != "-L" && a.text != "-M" && !strings.HasPrefix(a.text, "-L")) {
			return unknown
		}
	}
	return unwrapped{}
}

// fc -l lists the history; any other form edits and runs earlier commands
// (fc -s old=new re-runs one with a substitution), which the line does not
// show.
func fc(args []field, j job) unwrapped {
	for _, a := range args {
		if !a.dynamic && strings.HasPrefix(a.text, "-") && strings.ContainsRune(a.text, 'l') {
			return unwrapped{}
		}
	}
	return unknown
}

// source FILE and . FILE run a file in the current shell.
func sourceCmd(args []field, j job) unwrapped {
	if len(args) == 0 {
		return unwrapped{}
	}
	return scriptFileOf(args[0])
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

// alias NAME=VALUE defines an alias: it runs nothing itself (its value is
// not a command run now), but a later use of NAME in the same line runs
// VALUE, so the definitions are kept for that.
func aliasCmd(args []field, j job) unwrapped {
	u := unwrapped{aliases: map[string]string{}}
	for _, a := range args {
		if a.dynamic {
			return unknown
		}
		if name, v, ok := strings.Cut(a.text, "="); ok && !strings.HasPrefix(a.text, "-") {
			u.aliases[name] = v
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
	if len(ops) == 0 && has(opts, "i", "login", "s", "shell") {
		return unwrapped{stdinScript: true} // a root shell
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
	if len(ops) == 0 && has(opts, "s") {
		return unwrapped{stdinScript: true}
	}
	return runs(ops, j)
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
	// Without -I, xargs appends what it reads to the command's arguments.
	more := placeholder == j.placeholder
	return unwrapped{next: []inner{{fields: ops, in: stdin{kind: stdinFile}, placeholder: placeholder, moreArgs: more}}}
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
			return unwrapped{stdinScript: true} // the user's login shell
		}
		sh = field{text: "sh"}
	}
	fields := []field{sh}
	if hasScript {
		fields = append(fields, field{text: "-c"}, script)
	}
	return unwrapped{next: []inner{{fields: append(fields, rest...), in: j.in, placeholder: j.placeholder}}}
}

// setpriv [options] CMD.
var setprivSpec = optSpec{flags: "d", long: withHelp(map[string]longKind{
	"dump": longFlag, "nnp": longFlag, "no-new-privs": longFlag, "keep-groups": longFlag, "clear-groups": longFlag,
	"init-groups": longFlag, "reset-env": longFlag, "inh-caps": longValue, "ambient-caps": longValue,
	"bounding-set": longValue, "groups": longValue, "ruid": longValue, "euid": longValue, "rgid": longValue,
	"egid": longValue, "reuid": longValue, "regid": longValue, "securebits": longValue, "pdeathsig": longValue,
	"selinux-label": longValue, "apparmor-profile": longValue, "landlock-access": longValue, "landlock-rule": longValue,
})}

// withoutCommand is what a program of the table does when it is given no
// command.
type withoutCommand int

const (
	nothing    withoutCommand = iota // nothing, or a usage message
	readsInput                       // starts a shell reading its input
)

// after is the common shape: options (spec), then skip operands (a
// duration, a directory, a mask), then the command. With one of the none
// options given it acts on something else (a running process) and runs no
// command.
func after(skip int, spec optSpec, bare withoutCommand, none ...string) wrapper {
	return func(args []field, j job) unwrapped {
		opts, ops, ok := scan(args, spec)
		if !ok {
			return unknown
		}
		if has(opts, "help", "version") || (len(none) > 0 && has(opts, none...)) {
			return unwrapped{}
		}
		if len(ops) <= skip {
			if bare == readsInput && len(ops) == skip {
				return unwrapped{stdinScript: true}
			}
			return unwrapped{}
		}
		return runs(ops[skip:], j)
	}
}

// runuser -u USER [--] CMD runs CMD; otherwise it takes su's arguments.
func runuser(args []field, j job) unwrapped {
	spec := suSpec
	spec.valued += "u"
	spec.permute = false
	opts, ops, ok := scan(args, spec)
	if !ok {
		return unknown
	}
	if has(opts, "u") {
		if has(opts, "c", "command", "session-command") {
			return unknown
		}
		return runs(ops, j)
	}
	return su(args, j)
}

// sg GROUP [-c] CODE runs CODE with /bin/sh -c; sg GROUP alone a shell.
func sg(args []field, j job) unwrapped {
	if len(args) > 0 && !args[0].dynamic && strings.HasPrefix(args[0].text, "-") {
		return unwrapped{} // --help, --version
	}
	if len(args) < 2 {
		return unwrapped{stdinScript: true}
	}
	rest := args[1:]
	if rest[0].text == "-c" && !rest[0].dynamic {
		rest = rest[1:]
	}
	if len(rest) == 0 {
		return unknown
	}
	return unwrapped{scripts: []field{join(rest)}}
}

// flock [options] FILE CMD [ARGS], flock [options] FILE -c CODE, or
// flock [options] FD (no command).
var flockSpec = optSpec{flags: "sxenouF", valued: "wE", long: withHelp(map[string]longKind{
	"shared": longFlag, "exclusive": longFlag, "nonblock": longFlag, "nb": longFlag, "unlock": longFlag, "close": longFlag,
	"no-fork": longFlag, "verbose": longFlag, "timeout": longValue, "wait": longValue, "conflict-exit-code": longValue,
})}

func flock(args []field, j job) unwrapped {
	opts, ops, ok := scan(args, flockSpec)
	if !ok {
		return unknown
	}
	if has(opts, "help", "version") || len(ops) < 2 {
		return unwrapped{}
	}
	switch rest := ops[1:]; {
	case rest[0].dynamic:
		return unknown
	case rest[0].text == "-c" || rest[0].text == "--command":
		if len(rest) < 2 {
			return unknown
		}
		return unwrapped{scripts: rest[1:2]}
	case strings.HasPrefix(rest[0].text, "--command="):
		return unwrapped{scripts: []field{{text: strings.TrimPrefix(rest[0].text, "--command=")}}}
	default:
		return runs(rest, j)
	}
}

// script [options] [FILE]: -c CODE runs CODE with the user's shell;
// without it, an interactive shell reading input.
var scriptSpec = optSpec{flags: "aefqhVr", valued: "cEBIOTmo", optional: "t", permute: true, long: withHelp(map[string]longKind{
	"append": longFlag, "command": longValue, "echo": longValue, "return": longFlag, "flush": longFlag, "force": longFlag,
	"log-io": longValue, "log-in": longValue, "log-out": longValue, "log-timing": longValue, "logging-format": longValue,
	"output-limit": longValue, "quiet": longFlag, "timing": longOptional,
})}

func scriptCmd(args []field, j job) unwrapped {
	opts, _, ok := scan(args, scriptSpec)
	if !ok {
		return unknown
	}
	if has(opts, "help", "version", "h", "V") {
		return unwrapped{}
	}
	if code, ok := value(opts, "c", "command"); ok {
		return unwrapped{scripts: []field{code}}
	}
	return unwrapped{stdinScript: true}
}

// at [options] TIME and batch read the shell code of a job from their
// input, or from -f FILE; -l, -d, -r and -c manage jobs.
func at(args []field, j job) unwrapped {
	opts, _, ok := scan(args, optSpec{flags: "mMlrdcvVbhK", valued: "qft", permute: true})
	if !ok {
		return unknown
	}
	if has(opts, "l", "r", "d", "c", "V", "h", "f") {
		return unwrapped{}
	}
	return unwrapped{stdinScript: true}
}

// parallel [options] CMD [ARGS] ::: ARGS… runs CMD with arguments added
// at run time; without a command, each input line is code.
func parallel(args []field, j job) unwrapped {
	_, ops, ok := scan(args, optSpec{flags: "0kqvugXmt", valued: "jaSdEIlLnNsPC", long: withHelp(map[string]longKind{
		"jobs": longValue, "keep-order": longFlag, "null": longFlag, "arg-file": longValue, "verbose": longFlag,
		"dry-run": longFlag, "halt": longValue, "joblog": longValue, "progress": longFlag, "bar": longFlag,
		"tag": longFlag, "group": longFlag, "ungroup": longFlag, "line-buffer": longFlag, "delay": longValue,
		"timeout": longValue, "retries": longValue, "colsep": longValue, "max-args": longValue, "xargs": longFlag,
	})})
	if !ok {
		return unknown
	}
	end := len(ops)
	for i, o := range ops {
		if t := o.text; t == ":::" || t == "::::" || t == ":::+" || t == "::::+" {
			end = i
			break
		}
	}
	cmd := ops[:end]
	if len(cmd) == 0 {
		return unknown // the commands are its input lines
	}
	// parallel hands its command to a shell: anything beyond plain words,
	// or its own replacement strings, cannot be followed.
	for _, f := range cmd {
		if f.dynamic || strings.ContainsAny(f.text, " \t\n;&|<>(){}$`\"'\\*?[") {
			return unknown
		}
	}
	return unwrapped{next: []inner{{fields: cmd, in: stdin{kind: stdinFile}, moreArgs: true}}}
}

// ssh [options] HOST [CODE…]: the remote shell runs CODE (the words
// joined); without it, a login shell on that host reads the input. Options
// that run local commands (ProxyCommand, LocalCommand, …) or a config file
// that may set them cannot be followed.
var sshSpec = optSpec{flags: "46AaCfGgKkMNnqsTtVvXxYy", valued: "BbcDEeFIiJLlmOoPpQRSWw"}

func sshCmd(args []field, j job) unwrapped {
	opts, ops, ok := scan(args, sshSpec)
	if !ok {
		return unknown
	}
	for _, o := range opts {
		switch o.name {
		case "F":
			return unknown
		case "o":
			key, _, _ := strings.Cut(strings.ToLower(o.value.text), "=")
			key = strings.TrimSpace(strings.Fields(key + " x")[0])
			switch key {
			case "proxycommand", "localcommand", "permitlocalcommand", "knownhostscommand", "remotecommand", "include", "match":
				return unknown
			}
		}
	}
	switch {
	case has(opts, "V", "G", "Q"):
		return unwrapped{}
	case len(ops) == 0:
		return unwrapped{} // usage
	case has(opts, "s"):
		return unwrapped{} // a subsystem, not a command
	case len(ops) == 1:
		if has(opts, "N") {
			return unwrapped{}
		}
		return unwrapped{stdinScript: true}
	}
	return unwrapped{scripts: []field{join(ops[1:])}}
}

// tmux [options] [COMMAND [ARGS]] [\; COMMAND …]: new-session,
// new-window, split-window, respawn-*, run-shell and if-shell take shell
// code; send-keys types anything into a pane, and a new session without a
// command is a shell the line filter does not see: both unknown.
func tmux(args []field, j job) unwrapped {
	opts, ops, ok := scan(args, optSpec{flags: "2CDluNvV", valued: "cfLST"})
	if !ok {
		return unknown
	}
	if has(opts, "c") {
		code, _ := value(opts, "c")
		return unwrapped{scripts: []field{code}}
	}
	if has(opts, "V") {
		return unwrapped{}
	}
	if len(ops) == 0 {
		return unknown // a new session with a shell
	}
	var u unwrapped
	for len(ops) > 0 {
		end := slices.IndexFunc(ops, func(f field) bool { return f.text == ";" || strings.HasSuffix(f.text, `\;`) })
		if end < 0 {
			end = len(ops)
		}
		sub := tmuxCommand(ops[:end])
		u.scripts = append(u.scripts, sub.scripts...)
		u.unknown = u.unknown || sub.unknown
		if end == len(ops) {
			break
		}
		ops = ops[end+1:]
	}
	return u
}

// tmuxCommands are the tmux commands that take shell code, with their
// options; tmuxQuiet those that run nothing.
var tmuxCommands = map[string]optSpec{
	"new-session":    {flags: "AdDEPX", valued: "cefFnstxy"},
	"new-window":     {flags: "abdkPS", valued: "cefFnt"},
	"split-window":   {flags: "bdfhIvPZ", valued: "celpFt"},
	"respawn-pane":   {flags: "k", valued: "cet"},
	"respawn-window": {flags: "k", valued: "cet"},
	"run-shell":      {flags: "bC", valued: "dct"},
	"if-shell":       {flags: "bF", valued: "t"},
	"pipe-pane":      {flags: "IOo", valued: "t"},
	"display-popup":  {flags: "BCEk", valued: "bcdehsStTwxy"},
}

var tmuxAliases = map[string]string{
	"new": "new-session", "neww": "new-window", "splitw": "split-window", "respawnp": "respawn-pane",
	"respawnw": "respawn-window", "run": "run-shell", "if": "if-shell", "pipep": "pipe-pane", "popup": "display-popup",
}

var tmuxQuiet = []string{
	"ls", "list-sessions", "lsw", "list-windows", "lsp", "list-panes", "attach", "attach-session", "a", "at",
	"detach", "detach-client", "kill-session", "kill-server", "kill-window", "killw", "kill-pane", "killp",
	"has-session", "has", "rename-session", "rename", "rename-window", "renamew", "display-message", "display",
	"capture-pane", "capturep", "show-options", "show", "select-window", "selectw", "select-pane", "selectp",
	"resize-pane", "resizep", "list-keys", "lsk", "list-commands", "lscm", "info", "start-server", "start",
	"list-buffers", "lsb", "switch-client", "switchc",
}

func tmuxCommand(ops []field) unwrapped {
	if len(ops) == 0 {
		return unwrapped{}
	}
	name := ops[0]
	if name.dynamic {
		return unknown
	}
	cmd := name.text
	if full, ok := tmuxAliases[cmd]; ok {
		cmd = full
	}
	if slices.Contains(tmuxQuiet, cmd) {
		return unwrapped{}
	}
	spec, ok := tmuxCommands[cmd]
	if !ok {
		return unknown // send-keys, source-file, set-hook, bind-key, …
	}
	_, rest, ok := scan(ops[1:], spec)
	if !ok {
		return unknown
	}
	switch {
	case cmd == "if-shell":
		if len(rest) < 1 {
			return unknown
		}
		if len(rest) > 1 {
			return unknown // the tmux commands it then runs
		}
		return unwrapped{scripts: rest[:1]}
	case len(rest) == 0 && cmd != "pipe-pane":
		return unknown // the default shell, which the line filter does not see
	case len(rest) == 0:
		return unwrapped{}
	}
	return unwrapped{scripts: []field{join(rest)}}
}

// screen [options] [CMD [ARGS]]: runs CMD; without one, a shell the line
// filter does not see; -X and -Q send commands to a running session.
func screen(args []field, j job) unwrapped {
	for _, a := range args {
		switch a.text {
		case "-ls", "-list", "-wipe", "-v", "--version", "--help":
			return unwrapped{}
		case "-X", "-Q":
			return unknown
		}
	}
	opts, ops, ok := scan(args, optSpec{flags: "aAdDfilLmOqRrUwx", valued: "cehpsStT"})
	if !ok {
		return unknown
	}
	if len(ops) == 0 {
		if has(opts, "r", "R", "x", "d", "D") && !has(opts, "m") {
			return unwrapped{} // reattach to a session
		}
		return unknown
	}
	return runs(ops, j)
}

// hyperfine [options] COMMAND…: each operand is shell code it runs.
func hyperfine(args []field, j job) unwrapped {
	_, ops, ok := scan(args, optSpec{flags: "iNS", valued: "wmMrpcsuo", anyLongValue: true})
	if !ok {
		return unknown
	}
	return unwrapped{scripts: ops}
}

// netcat runs a program or shell code per connection with -e, -c and
// ncat's --exec, --sh-exec and --lua-exec: cannot be checked. Without them
// it runs nothing.
func netcat(args []field, j job) unwrapped {
	for _, a := range args {
		t := a.text
		if a.dynamic || (strings.HasPrefix(t, "-") && !strings.HasPrefix(t, "--") && strings.ContainsAny(t[1:], "ec")) ||
			strings.HasPrefix(t, "--exec") || strings.HasPrefix(t, "--sh-exec") || strings.HasPrefix(t, "--lua-exec") {
			return unknown
		}
	}
	return unwrapped{}
}

// socat ADDRESS ADDRESS: EXEC: and SYSTEM: addresses run programs.
func socat(args []field, j job) unwrapped {
	for _, a := range args {
		l := strings.ToLower(a.text)
		if a.dynamic || strings.Contains(l, "exec:") || strings.Contains(l, "system:") || strings.Contains(l, "exec,") ||
			strings.HasPrefix(l, "exec") || strings.HasPrefix(l, "system") {
			return unknown
		}
	}
	return unwrapped{}
}

// crontab -l lists, -r removes, -e edits (an editor: out of reach);
// crontab FILE, crontab - and crontab alone install jobs whose code runs
// later, read from a file or the input: cannot be checked.
func crontab(args []field, j job) unwrapped {
	opts, ops, ok := scan(args, optSpec{flags: "lreiT", valued: "uns", long: withHelp(map[string]longKind{})})
	if !ok {
		return unknown
	}
	if len(ops) == 0 && has(opts, "l", "r", "e", "T", "help", "version") {
		return unwrapped{}
	}
	return unknown
}

// git -c KEY=VALUE and --config-env can set core.pager, core.sshCommand,
// an alias with "!", … that make git run a command: cannot be checked.
// Other git commands run git (its hooks and aliases are out of reach).
func gitCmd(args []field, j job) unwrapped {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch t := a.text; {
		case a.dynamic:
			return unknown
		case t == "-c" || strings.HasPrefix(t, "--config-env") || strings.HasPrefix(t, "--exec-path="):
			return unknown
		case t == "-C" || t == "--git-dir" || t == "--work-tree" || t == "--namespace" || t == "--super-prefix":
			i++ // its value
		case !strings.HasPrefix(t, "-"):
			return unwrapped{} // the git command
		}
	}
	return unwrapped{}
}

// stty -echo turns the terminal's echo off: a line typed after a prompt
// for a secret would then pass the line filter unchecked, as a password.
// It cannot be checked (and nor can settings only known at run time);
// other settings are fine.
func stty(args []field, j job) unwrapped {
	for _, a := range args {
		if a.dynamic || a.text == "-echo" {
			return unknown
		}
	}
	return unwrapped{}
}
