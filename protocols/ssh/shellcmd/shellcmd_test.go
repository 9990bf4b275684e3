package shellcmd_test

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/protocols/ssh/shellcmd"
)

// show renders a command for comparison: its name and arguments separated
// by spaces (an argument with a space or an empty one is quoted), with a
// leading "!" when it is Dynamic.
func show(c policy.Command) string {
	var b strings.Builder
	switch {
	case c.Dynamic:
		b.WriteString("!")
	case c.DynamicArgs:
		b.WriteString("~")
	}
	b.WriteString(c.Name)
	for _, a := range c.Args {
		b.WriteByte(' ')
		if a == "" || strings.ContainsAny(a, " \t\n") {
			a = strconv.Quote(a)
		}
		b.WriteString(a)
	}
	return b.String()
}

func showAll(cmds []policy.Command) []string {
	out := []string{}
	for _, c := range cmds {
		out = append(out, show(c))
	}
	return out
}

type parseCase struct {
	name string
	line string
	want []string
}

func runParseCases(t *testing.T, tests []parseCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmds, err := shellcmd.Parse(tt.line)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.line, err)
			}
			if got := showAll(cmds); !slices.Equal(got, tt.want) {
				t.Errorf("Parse(%q)\n got  %q\n want %q", tt.line, got, tt.want)
			}
		})
	}
}

func TestParseStructure(t *testing.T) {
	runParseCases(t, []parseCase{
		{name: "simple command", line: "ls -l /tmp", want: []string{"ls -l /tmp"}},
		{name: "empty line", line: "", want: []string{}},
		{name: "blanks and a comment", line: "   # rm -rf /", want: []string{}},
		{name: "assignments only", line: "FOO=1 BAR=2", want: []string{}},
		{name: "leading assignments are skipped", line: "FOO=1 BAR='x y' rm x", want: []string{"rm x"}},
		{name: "substitution in an assignment", line: "FOO=$(rm x)", want: []string{"rm x"}},
		{name: "semicolon list", line: "a;rm", want: []string{"a", "rm"}},
		{name: "and-or list", line: "make && rm x || echo no", want: []string{"make", "rm x", "echo no"}},
		{name: "pipe", line: "a|rm", want: []string{"a", "rm"}},
		{name: "long pipeline", line: "ls | grep x | sort | rm", want: []string{"ls", "grep x", "sort", "rm"}},
		{name: "pipe with stderr", line: "a |& rm", want: []string{"a", "rm"}},
		{name: "background", line: "sleep 1 & rm x", want: []string{"sleep 1", "rm x"}},
		{name: "negation", line: "! rm x", want: []string{"rm x"}},
		{name: "newline-separated", line: "ls\nrm x", want: []string{"ls", "rm x"}},
		{name: "subshell", line: "(rm)", want: []string{"rm"}},
		{name: "block", line: "{ rm x; }", want: []string{"rm x"}},
		{name: "nesting", line: "(a; (b | { rm; }))", want: []string{"a", "b", "rm"}},
		{name: "command substitution", line: "echo $(rm x)", want: []string{`~echo "$(rm x)"`, "rm x"}},
		{name: "backticks", line: "`rm`", want: []string{"!", "rm"}},
		{name: "nested substitutions", line: "echo $(echo $(rm))", want: []string{`~echo "$(echo $(rm))"`, "~echo $(rm)", "rm"}},
		{name: "substitution in double quotes", line: `echo "x $(rm x)"`, want: []string{`~echo "\"x $(rm x)\""`, "rm x"}},
		{name: "substitution in a parameter default", line: "echo ${x:-$(rm)}", want: []string{"~echo ${x:-$(rm)}", "rm"}},
		{name: "substitution in arithmetic", line: "echo $(( $(rm) + 1 ))", want: []string{`~echo "$(( $(rm) + 1 ))"`, "rm"}},
		{name: "process substitutions", line: "diff <(rm a) >(rm b)", want: []string{`~diff "<(rm a)" ">(rm b)"`, "rm a", "rm b"}},
		{name: "substitution in a redirection", line: "echo x > $(rm)", want: []string{"echo x", "rm"}},
		{name: "substitution in a here-document", line: "cat <<EOF\n$(rm)\nEOF", want: []string{"cat", "rm"}},
		{name: "if", line: "if rm a; then rm b; elif rm c; then rm d; else rm e; fi", want: []string{"rm a", "rm b", "rm c", "rm d", "rm e"}},
		{name: "while", line: "while rm a; do rm b; done", want: []string{"rm a", "rm b"}},
		{name: "until", line: "until false; do rm; done", want: []string{"false", "rm"}},
		{name: "for", line: "for f in $(ls); do rm $f; done", want: []string{"ls", "~rm $f"}},
		{name: "c-style for", line: "for ((i=0; i<3; i++)); do rm x; done", want: []string{"rm x"}},
		{name: "case", line: "case $x in a) rm a ;; *) rm b ;; esac", want: []string{"rm a", "rm b"}},
		{name: "function body", line: "f() { rm x; }; f", want: []string{"rm x", "f"}},
		{name: "function keyword", line: "function f { rm x; }", want: []string{"rm x"}},
		{name: "[[ ]] is not a command", line: "[[ -f x ]] && rm x", want: []string{"rm x"}},
		{name: "substitution inside [[ ]]", line: "[[ -n $(rm) ]]", want: []string{"rm"}},
		{name: "(( )) is not a command", line: "(( x > 1 )) && rm", want: []string{"rm"}},
		{name: "test command", line: "[ -f x ] && rm x", want: []string{"[ -f x ]", "rm x"}},
		{name: "declaration", line: "export A=1 B", want: []string{"export A=1 B"}},
		{name: "declaration with a substitution", line: "local a=$(rm x)", want: []string{`local "a=$(rm x)"`, "rm x"}},
		{name: "let", line: "let x=1+2", want: []string{"let x=1+2"}},
		{name: "time keyword", line: "time rm x", want: []string{"time", "rm x"}},
		{name: "time -p keyword", line: "time -p rm x", want: []string{"time -p", "rm x"}},
		{name: "coproc", line: "coproc rm x", want: []string{"rm x"}},
	})
}

func TestParseWords(t *testing.T) {
	runParseCases(t, []parseCase{
		{name: "absolute path", line: "/bin/rm x", want: []string{"rm x"}},
		{name: "relative path", line: "./rm", want: []string{"rm"}},
		{name: "backslash", line: `\rm x`, want: []string{"rm x"}},
		{name: "empty quotes inside", line: "r''m", want: []string{"rm"}},
		{name: "double quotes", line: `"rm" x`, want: []string{"rm x"}},
		{name: "quoted path", line: `'/usr/bin/rm' -f x`, want: []string{"rm -f x"}},
		{name: "escaped letter", line: `r\m`, want: []string{"rm"}},
		{name: "line continuation inside a word", line: "r\\\nm x", want: []string{"rm x"}},
		{name: "ANSI-C quoting", line: `$'\x72m' x`, want: []string{"rm x"}},
		{name: "quoted backslash kept in the name is dropped", line: `'\rm'`, want: []string{"rm"}},
		{name: "arguments are unquoted", line: `echo 'a b' "c d" e\ f ''`, want: []string{`echo "a b" "c d" "e f" ""`}},
		{name: "double-quote escapes", line: `echo "a\$b\"c\\d\e"`, want: []string{`echo a$b"c\d\e`}},
		{name: "brace expansion in command position", line: "{rm,-rf,/}", want: []string{"rm -rf /"}},
		{name: "brace expansion in arguments", line: "cp f{,.bak}", want: []string{"cp f f.bak"}},
		{name: "sequence expansion", line: "echo {1..3}", want: []string{"echo 1 2 3"}},
		{name: "quoted braces are literal", line: `echo "{a,b}"`, want: []string{"echo {a,b}"}},
		{name: "find's {} is literal", line: "echo {}", want: []string{"echo {}"}},
		{name: "huge brace expansion is unknowable", line: "echo {1..100000}", want: []string{"~echo {1..100000}"}},
		{name: "glob in the name", line: "/bin/r? x", want: []string{"!r? x"}},
		{name: "star in the name", line: "/usr/bin/r* x", want: []string{"!r* x"}},
		{name: "bracket glob in the name", line: "/bin/r[m] x", want: []string{"!r[m] x"}},
		{name: "glob in arguments is kept as written", line: "rm *.log", want: []string{"rm *.log"}},
		{name: "quoted glob in the name is literal", line: `"r*" x`, want: []string{"r* x"}},
		{name: "a lone [ is not a glob", line: "[ x ]", want: []string{"[ x ]"}},
		{name: "tilde is not expanded", line: "~/bin/rm x", want: []string{"rm x"}},
		{name: "extglob in the name", line: "@(rm) x", want: []string{"!@(rm) x"}},
	})
}

func TestParseDynamic(t *testing.T) {
	runParseCases(t, []parseCase{
		{name: "command substitution as the name", line: "$(printf rm) x", want: []string{"! x", "printf rm"}},
		{name: "variable as the name", line: "$CMD -rf /", want: []string{"! -rf /"}},
		{name: "literal prefix", line: "r$X x", want: []string{"!r x"}},
		{name: "prefix ending in a slash", line: "/usr/bin/$X", want: []string{"!"}},
		{name: "braced variable", line: "${RM} -rf /", want: []string{"! -rf /"}},
		{name: "variable argument", line: "rm $HOME", want: []string{"~rm $HOME"}},
		{name: "quoted variable argument", line: `rm "$HOME/x"`, want: []string{`~rm "$HOME/x"`}},
		{name: "locale string", line: `$"rm" x`, want: []string{"! x"}},
		{name: "substitution given to sh -c", line: `sh -c "$(cat)"`, want: []string{`!sh -c "$(cat)"`, "cat"}},
		{name: "arithmetic argument", line: "kill $((1+1))", want: []string{"~kill $((1+1))"}},
	})
}

func TestParseWrappers(t *testing.T) {
	runParseCases(t, []parseCase{
		// env
		{name: "env by path", line: "/usr/bin/env rm", want: []string{"env rm", "rm"}},
		{name: "env with options and assignments", line: "env -i PATH=/bin FOO=bar rm -rf /", want: []string{"env -i PATH=/bin FOO=bar rm -rf /", "rm -rf /"}},
		{name: "env -", line: "env - rm", want: []string{"env - rm", "rm"}},
		{name: "env -u -C", line: "env -u HOME -C /tmp rm", want: []string{"env -u HOME -C /tmp rm", "rm"}},
		{name: "env -S", line: "env -S 'rm -rf /'", want: []string{`env -S "rm -rf /"`, "rm -rf /"}},
		{name: "env alone", line: "env", want: []string{"env"}},
		{name: "env with an unknowable word", line: "env $X", want: []string{"!env $X"}},
		{name: "env with an unknown option", line: "env --frobnicate rm", want: []string{"!env --frobnicate rm"}},
		// sudo, doas
		{name: "sudo -u", line: "sudo -u root rm", want: []string{"sudo -u root rm", "rm"}},
		{name: "sudo clustered options", line: "sudo -Eiu root rm x", want: []string{"sudo -Eiu root rm x", "rm x"}},
		{name: "sudo long option", line: "sudo --user=root -- rm x", want: []string{"sudo --user=root -- rm x", "rm x"}},
		{name: "sudo abbreviated long option", line: "sudo --us root rm", want: []string{"sudo --us root rm", "rm"}},
		{name: "sudo with assignments", line: "sudo FOO=1 rm", want: []string{"sudo FOO=1 rm", "rm"}},
		{name: "sudo -l runs nothing", line: "sudo -l rm", want: []string{"sudo -l rm"}},
		{name: "sudo -e edits files", line: "sudo -e /etc/hosts", want: []string{"sudo -e /etc/hosts"}},
		{name: "sudo with an unknown option", line: "sudo --bogus rm", want: []string{"!sudo --bogus rm"}},
		{name: "sudo with unknowable options", line: "sudo $OPTS rm", want: []string{"!sudo $OPTS rm"}},
		{name: "sudo chain", line: "sudo sudo -u x sudo rm", want: []string{"sudo sudo -u x sudo rm", "sudo -u x sudo rm", "sudo rm", "rm"}},
		{name: "doas", line: "doas -u root rm x", want: []string{"doas -u root rm x", "rm x"}},
		{name: "doas -C checks only", line: "doas -C /etc/doas.conf rm", want: []string{"doas -C /etc/doas.conf rm"}},
		// small wrappers
		{name: "nohup", line: "nohup rm x &", want: []string{"nohup rm x", "rm x"}},
		{name: "nice -n", line: "nice -n 10 rm", want: []string{"nice -n 10 rm", "rm"}},
		{name: "nice -N", line: "nice -10 rm", want: []string{"nice -10 rm", "rm"}},
		{name: "nice --adjustment", line: "nice --adjustment=5 rm", want: []string{"nice --adjustment=5 rm", "rm"}},
		{name: "timeout", line: "timeout 5 rm x", want: []string{"timeout 5 rm x", "rm x"}},
		{name: "timeout with options", line: "timeout -s KILL -k 1 5s rm x", want: []string{"timeout -s KILL -k 1 5s rm x", "rm x"}},
		{name: "timeout without a command", line: "timeout 5", want: []string{"timeout 5"}},
		{name: "command", line: "command rm x", want: []string{"command rm x", "rm x"}},
		{name: "command -v describes", line: "command -v rm", want: []string{"command -v rm"}},
		{name: "builtin eval", line: "builtin eval 'rm x'", want: []string{`builtin eval "rm x"`, `eval "rm x"`, "rm x"}},
		{name: "exec", line: "exec rm x", want: []string{"exec rm x", "rm x"}},
		{name: "exec -a", line: "exec -a foo rm", want: []string{"exec -a foo rm", "rm"}},
		{name: "time program", line: `\time -f %e rm x`, want: []string{"time -f %e rm x", "rm x"}},
		{name: "stdbuf", line: "stdbuf -oL rm x", want: []string{"stdbuf -oL rm x", "rm x"}},
		{name: "setsid", line: "setsid -f rm x", want: []string{"setsid -f rm x", "rm x"}},
		{name: "chroot", line: "chroot /mnt rm x", want: []string{"chroot /mnt rm x", "rm x"}},
		{name: "chroot with options", line: "chroot --userspec=a:b /mnt rm", want: []string{"chroot --userspec=a:b /mnt rm", "rm"}},
		{name: "chroot without a command", line: "chroot /mnt", want: []string{"chroot /mnt"}},
		{name: "busybox applet", line: "busybox rm x", want: []string{"busybox rm x", "rm x"}},
		{name: "busybox sh -c", line: "busybox sh -c 'rm x'", want: []string{`busybox sh -c "rm x"`, `sh -c "rm x"`, "rm x"}},
		{name: "busybox --list", line: "busybox --list", want: []string{"busybox --list"}},
		{name: "wrapper chain", line: "nice nice nice nice rm", want: []string{"nice nice nice nice rm", "nice nice nice rm", "nice nice rm", "nice rm", "rm"}},
		// xargs
		{name: "xargs -0", line: "xargs -0 rm", want: []string{"xargs -0 rm", "~rm"}},
		{name: "xargs with valued options", line: "xargs -n1 -P 4 rm -f", want: []string{"xargs -n1 -P 4 rm -f", "~rm -f"}},
		{name: "xargs runs echo by default", line: "xargs", want: []string{"xargs", "~echo"}},
		{name: "xargs -I argument", line: "xargs -I{} rm {}", want: []string{"xargs -I{} rm {}", "~rm {}"}},
		{name: "xargs -I name", line: "xargs -I % % -rf", want: []string{"xargs -I % % -rf", "!% -rf"}},
		{name: "xargs -I script", line: "xargs -I{} sh -c {}", want: []string{"xargs -I{} sh -c {}", "!sh -c {}"}},
		{name: "xargs sh -c without its script", line: "xargs sh -c", want: []string{"xargs sh -c", "!sh -c"}},
		{name: "xargs sh -c with a script", line: `xargs sh -c 'rm "$@"' _`, want: []string{`xargs sh -c "rm \"$@\"" _`, `~sh -c "rm \"$@\"" _`, `~rm "$@"`}},
		// find
		{name: "find -exec", line: `find / -exec rm {} \;`, want: []string{"find / -exec rm {} ;", "~rm {}"}},
		{name: "find -execdir +", line: "find . -execdir rm -f {} +", want: []string{"find . -execdir rm -f {} +", "~rm -f {}"}},
		{name: "find with two actions", line: `find . -ok rm {} \; -exec chmod 600 {} ';'`, want: []string{"find . -ok rm {} ; -exec chmod 600 {} ;", "~rm {}", "~chmod 600 {}"}},
		{name: "find -exec sh -c", line: `find . -exec sh -c 'rm "$1"' _ {} \;`, want: []string{`find . -exec sh -c "rm \"$1\"" _ {} ;`, `~sh -c "rm \"$1\"" _ {}`, `~rm "$1"`}},
		{name: "find -exec {}", line: `find . -exec {} \;`, want: []string{"find . -exec {} ;", "!{}"}},
		{name: "find -exec sh -c {}", line: `find . -exec sh -c {} \;`, want: []string{"find . -exec sh -c {} ;", "!sh -c {}"}},
		// watch
		{name: "watch", line: "watch rm x", want: []string{"watch rm x", "rm x"}},
		{name: "watch a string", line: "watch -n 5 'rm x; ls'", want: []string{`watch -n 5 "rm x; ls"`, "rm x", "ls"}},
		{name: "watch -x", line: "watch -x rm x", want: []string{"watch -x rm x", "rm x"}},
		// eval, alias, trap
		{name: "eval", line: "eval 'rm -rf /'", want: []string{`eval "rm -rf /"`, "rm -rf /"}},
		{name: "eval joins its arguments", line: "eval rm '$x'", want: []string{"eval rm $x", "~rm $x"}},
		{name: "eval of a variable", line: `eval "$CMD"`, want: []string{`!eval "$CMD"`}},
		{name: "alias definition runs nothing", line: "alias ll='rm -rf'", want: []string{`alias "ll=rm -rf"`}},
		{name: "alias used later in the line", line: "alias ll='rm -rf'; ll /tmp/x", want: []string{`alias "ll=rm -rf"`, "rm -rf /tmp/x"}},
		{name: "alias of itself", line: "alias ls='ls -l'; ls /tmp", want: []string{`alias "ls=ls -l"`, "ls -l /tmp"}},
		{name: "unknown alias is a command name", line: "ll /tmp", want: []string{"ll /tmp"}},
		{name: "trap", line: "trap 'rm x' EXIT", want: []string{`trap "rm x" EXIT`, "rm x"}},
		{name: "trap reset", line: "trap - EXIT", want: []string{"trap - EXIT"}},
		// su
		{name: "su -c", line: "su -c 'rm x'", want: []string{`su -c "rm x"`, "rm x"}},
		{name: "su - user -c", line: "su - root -c 'rm x'", want: []string{`su - root -c "rm x"`, "rm x"}},
		{name: "su shell arguments", line: "su root -- -c 'rm x'", want: []string{`su root -- -c "rm x"`, `sh -c "rm x"`, "rm x"}},
		{name: "su -s runs any program", line: "su -s /bin/rm root -- -rf /", want: []string{"su -s /bin/rm root -- -rf /", "rm -rf /"}},
		{name: "su interactive", line: "su root", want: []string{"su root"}},
		// shells
		{name: "sh -c", line: "sh -c 'rm x'", want: []string{`sh -c "rm x"`, "rm x"}},
		{name: "bash -c", line: "bash -c 'rm -rf /'", want: []string{`bash -c "rm -rf /"`, "rm -rf /"}},
		{name: "dash -c", line: "dash -c rm", want: []string{"dash -c rm", "rm"}},
		{name: "zsh -c", line: "zsh -c 'a; rm'", want: []string{`zsh -c "a; rm"`, "a", "rm"}},
		{name: "ksh -c", line: "/bin/ksh -c rm", want: []string{"ksh -c rm", "rm"}},
		{name: "clustered -c", line: "bash -lc 'rm x'", want: []string{`bash -lc "rm x"`, "rm x"}},
		{name: "-o before -c", line: "bash -o pipefail -c 'rm x'", want: []string{`bash -o pipefail -c "rm x"`, "rm x"}},
		{name: "long option before -c", line: "bash --norc -c 'rm x'", want: []string{`bash --norc -c "rm x"`, "rm x"}},
		{name: "-c with $0", line: "bash -c 'rm x' arg0", want: []string{`bash -c "rm x" arg0`, "rm x"}},
		{name: "-c missing its string", line: "sh -c", want: []string{"!sh -c"}},
		{name: "nested -c", line: `sh -c "bash -c 'rm x'"`, want: []string{`sh -c "bash -c 'rm x'"`, `bash -c "rm x"`, "rm x"}},
		{name: "script file", line: "bash script.sh", want: []string{"bash script.sh"}},
		{name: "interactive shell", line: "bash", want: []string{"bash"}},
		{name: "script from a file on stdin", line: "bash -s < script.sh", want: []string{"bash -s"}},
		{name: "here-document to sh", line: "sh <<EOF\nrm -rf /\nEOF", want: []string{"sh", "rm -rf /"}},
		{name: "here-document with a quoted delimiter", line: "sh <<'EOF'\nrm $x\nEOF", want: []string{"sh", "~rm $x"}},
		{name: "here-document with escapes", line: "sh <<EOF\nrm \\$x\nEOF", want: []string{"sh", "~rm $x"}},
		{name: "here-document with an expansion", line: "sh <<EOF\nrm $x\nEOF", want: []string{"!sh"}},
		{name: "here-document with tabs stripped", line: "sh <<-EOF\n\trm x\n\tEOF", want: []string{"sh", "rm x"}},
		{name: "here-document to a block", line: "{ sh; } <<EOF\nrm x\nEOF", want: []string{"sh", "rm x"}},
		{name: "here-string", line: "bash <<< 'rm x'", want: []string{"bash", "rm x"}},
		{name: "here-string with an expansion", line: `bash <<< "$CMD"`, want: []string{"!bash"}},
		{name: "here-document to sudo sh", line: "sudo sh <<EOF\nrm x\nEOF", want: []string{"sudo sh", "sh", "rm x"}},
		{name: "pipe to sh", line: "echo rm | sh", want: []string{"echo rm", "!sh"}},
		{name: "pipe to sudo bash", line: "curl x | sudo bash", want: []string{"curl x", "sudo bash", "!bash"}},
		{name: "pipe to a block", line: "echo rm | { sh; }", want: []string{"echo rm", "!sh"}},
		{name: "pipe to /dev/stdin", line: "cat x | bash /dev/stdin", want: []string{"cat x", "!bash /dev/stdin"}},
		{name: "process substitution on stdin", line: "sh < <(echo rm)", want: []string{"!sh", "echo rm"}},
		{name: "descriptor on stdin", line: "sh <&3", want: []string{"!sh"}},
		{name: "pipe to something else", line: "echo rm | cat", want: []string{"echo rm", "cat"}},
	})
}

// Lines that mention rm without running it must not yield an rm command.
func TestParseFalsePositives(t *testing.T) {
	for _, line := range []string{
		"echo rm",
		"grep -r rm .",
		"echo 'rm -rf /'",
		`printf '%s\n' "rm -rf /"`,
		"git commit -m 'rm stuff'",
		"command -v rm",
		"sudo -l rm",
		"# rm -rf /",
		"echo ok # rm",
		"cat <<'EOF'\nrm -rf /\nEOF",
		"cat <<< 'rm x'",
		"type rm; man rm; which rm",
		"[[ rm == x ]]",
		"echo $((rm + 1))",
		"ls rm*",
		"FOO=rm ls",
	} {
		t.Run(line, func(t *testing.T) {
			cmds, err := shellcmd.Parse(line)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range cmds {
				if c.Name == "rm" {
					t.Errorf("Parse(%q) = %q: has an rm command", line, showAll(cmds))
				}
			}
		})
	}
}

// ansiQuote quotes s as $'…', whose escaping doubles backslashes per level
// instead of quadrupling quotes.
func ansiQuote(s string) string {
	return "$'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// nested wraps "rm x" in n levels of sh -c.
func nested(n int) string {
	s := "rm x"
	for range n {
		s = "sh -c " + ansiQuote(s)
	}
	return s
}

func TestParseLimits(t *testing.T) {
	t.Run("nesting up to the limit", func(t *testing.T) {
		cmds, err := shellcmd.Parse(nested(shellcmd.MaxDepth))
		if err != nil {
			t.Fatal(err)
		}
		if len(cmds) != shellcmd.MaxDepth+1 || show(cmds[len(cmds)-1]) != "rm x" {
			t.Errorf("got %q", showAll(cmds))
		}
	})
	tests := []struct {
		name string
		line string
		want string
	}{
		{name: "nesting beyond the limit", line: nested(shellcmd.MaxDepth + 1), want: "shellcmd: shell code nested more than 8 levels deep (sh -c, eval, …)"},
		{name: "line too long", line: strings.Repeat("a", shellcmd.MaxInput+1), want: "shellcmd: shell code longer than 65536 bytes"},
		{name: "too many commands", line: strings.Repeat("a;", 1025), want: "shellcmd: more than 1024 commands"},
		{name: "too many wrappers", line: strings.Repeat("nice ", 17) + "rm", want: "shellcmd: more than 16 nested command wrappers"},
		{name: "eval recursion", line: strings.Repeat("eval ", 20) + "rm", want: "shellcmd: shell code nested more than 8 levels deep (sh -c, eval, …)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmds, err := shellcmd.Parse(tt.line)
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Parse = %q, %v; want error %q", showAll(cmds), err, tt.want)
			}
			if errors.Is(err, shellcmd.ErrIncomplete) {
				t.Errorf("%v is ErrIncomplete", err)
			}
		})
	}
	t.Run("the longest line", func(t *testing.T) {
		line := "echo " + strings.Repeat("a", shellcmd.MaxInput-5)
		if _, err := shellcmd.Parse(line); err != nil {
			t.Fatal(err)
		}
	})
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name       string
		line       string
		incomplete bool
		want       string
	}{
		{name: "open single quote", line: "echo 'abc", incomplete: true, want: "shellcmd: incomplete command: 1:6: reached EOF without closing quote `'`"},
		{name: "open double quote", line: `rm "x`, incomplete: true},
		{name: "unfinished if", line: "if true; then", incomplete: true},
		{name: "unfinished pipeline", line: "a |", incomplete: true},
		{name: "unfinished here-document", line: "sh <<EOF\nrm", incomplete: true},
		{name: "trailing backslash", line: `rm \`, incomplete: true, want: "shellcmd: incomplete command: the line ends with a backslash"},
		{name: "trailing backslash in a word", line: `rm x\`, incomplete: true},
		{name: "stray parenthesis", line: "echo )", want: "shellcmd: 1:6: a command can only contain words and redirects; encountered `)`"},
		{name: "stray ampersand", line: "&"},
		{name: "bad code given to sh -c", line: `sh -c 'echo "'`, want: "shellcmd: in the shell code run by sh: 1:6: reached EOF without closing quote `\"`"},
		{name: "bad code given to eval", line: `eval 'if'`},
		{name: "bad code in a here-document to sh", line: "sh <<'EOF'\nfi\nEOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmds, err := shellcmd.Parse(tt.line)
			if err == nil {
				t.Fatalf("Parse(%q) = %q, want an error", tt.line, showAll(cmds))
			}
			if cmds != nil {
				t.Errorf("Parse returned commands with its error")
			}
			if got := errors.Is(err, shellcmd.ErrIncomplete); got != tt.incomplete {
				t.Errorf("error %q: ErrIncomplete = %v, want %v", err, got, tt.incomplete)
			}
			if tt.want != "" && err.Error() != tt.want {
				t.Errorf("error = %q, want %q", err, tt.want)
			}
		})
	}
	// An escaped backslash at the end is complete.
	if _, err := shellcmd.Parse(`echo \\`); err != nil {
		t.Errorf(`Parse("echo \\\\"): %v`, err)
	}
}

// Lines built to be expensive stay cheap (each took from seconds to
// minutes before the limits that now bound them), and are still read
// right: each gives exactly the commands it would run, or is refused by
// the limit it exceeds. A hang fails the test by the test binary's
// timeout; speed itself is not asserted (timing checks do not belong in
// the test suite).
func TestParseAdversarial(t *testing.T) {
	const n = shellcmd.MaxInput
	braceProduct := strings.Repeat("{a,b}", n/6)
	sequences := strings.Repeat("{1..1}", n/7)
	arithmetic := "$((" + strings.Repeat("(", n/3) + "1" + strings.Repeat(")", n/3) + "))"
	words := strings.TrimSpace(strings.Repeat("a ", n/2-4))
	const tooMany = "shellcmd: more than 1024 commands"
	tests := []struct {
		name string
		line string
		want []string // the commands found, as show renders them
		err  string   // else the error: a limit, never ErrIncomplete
	}{
		// Bash reads "((" as arithmetic: (((a))) evaluates the variable a
		// and runs nothing.
		{name: "nested parentheses", line: strings.Repeat("(", n/2-1) + "a" + strings.Repeat(")", n/2-1), want: []string{}},
		{name: "nested subshells", line: strings.Repeat("( ", n/4-2) + "rm x" + strings.Repeat(" )", n/4-2), want: []string{"rm x"}},
		{name: "nested blocks", line: strings.Repeat("{ ", n/5-1) + "rm" + strings.Repeat("; }", n/5-1), want: []string{"rm"}},
		// Each $(…) is a command whose name is unknowable.
		{name: "nested substitutions", line: strings.Repeat("$(", n/3) + "a" + strings.Repeat(")", n/3), err: tooMany},
		{name: "brace product", line: "echo " + braceProduct, want: []string{"~echo " + braceProduct}},
		{name: "brace product as the name", line: braceProduct, want: []string{"!"}},
		{name: "one-element sequences", line: "echo " + sequences, want: []string{"~echo " + sequences}},
		{name: "long sequence", line: "echo {1..999999999999}", want: []string{"~echo {1..999999999999}"}},
		{name: "long pipeline", line: strings.Repeat("a|", n/2-1) + "a", err: tooMany},
		{name: "many words", line: "echo " + words, want: []string{"echo " + words}},
		{name: "many finds", line: "find " + strings.Repeat("-exec a {} + ", n/14), err: tooMany},
		{name: "eval of many words", line: "eval " + words, want: []string{"eval " + words, words}},
		{name: "nested arithmetic", line: "echo " + arithmetic, want: []string{"~echo " + arithmetic}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.line) > n {
				t.Fatalf("the line is %d bytes, over MaxInput: it would only test that limit", len(tt.line))
			}
			cmds, err := shellcmd.Parse(tt.line)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err || errors.Is(err, shellcmd.ErrIncomplete) || cmds != nil {
					t.Fatalf("Parse = %d commands, %v; want only the error %q", len(cmds), err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %.200v", err)
			}
			if got := showAll(cmds); !slices.Equal(got, tt.want) {
				t.Errorf("Parse found %d commands %.200q, want %d %.200q", len(got), got, len(tt.want), tt.want)
			}
		})
	}
}
