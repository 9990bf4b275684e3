package shellcmd_test

import (
	"strings"
	"testing"

	"github.com/bastionhq/bastion/protocols/ssh/shellcmd"
)

// FuzzParse checks that Parse never panics, and that what it returns is
// normalised: names without a directory or a leading backslash, a bounded
// number of commands.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"ls -l /tmp", "a;rm", "a|rm", "(rm)", "{ rm; }", "echo $(rm x)", "`rm`", "FOO=1 rm x",
		"/usr/bin/env rm", "$(printf rm) x", `sh -c "$(cat)"`, "bash -c 'rm -rf /'",
		"sh <<EOF\nrm -rf /\nEOF", "sh <<'EOF'\nrm $x\nEOF", "bash <<< 'rm x'", "echo rm | sh",
		"sudo -u root rm", "sudo --us=root -- FOO=1 rm", "xargs -0 rm", "xargs -I{} sh -c {}",
		`find / -exec rm {} \;`, `find . -exec sh -c 'rm "$1"' _ {} +`, "su root -- -c 'rm x'",
		"env -S 'rm -rf /'", "watch -n1 'rm x'", "eval 'eval rm'", "alias x='rm -rf'", "trap 'rm' EXIT",
		"timeout -k1 5 nice -n2 stdbuf -oL setsid chroot / busybox sh -c rm",
		"echo rm", "grep -r rm .", "echo 'rm -rf /'", `\rm`, "r''m", `"rm"`, `$'\x72m'`, "{rm,-rf,/}",
		"/bin/r? x", "@(rm) x", "[[ -n $(rm) ]]", "(( x )) && rm", "for f in *; do rm $f; done",
		"case $x in a) rm;; esac", "f() { rm; }", "time -p rm", "coproc rm", "declare -x a=$(rm)",
		"echo {1..100000}", "echo 'abc", `rm \`, "if true; then", "sh -c 'sh -c \"sh -c rm\"'",
		"a &", "a |& b", "echo x >(rm) <(rm)", "cat <<-EOF\n\t$(rm)\n\tEOF", "\x00rm", "r\xffm",
		"alias a='b'; alias b='a'; a", "alias ls='ls -l'; ls", "flock /l -c 'rm'", "tmux new -d 'rm' \\; send-keys x",
		"screen -dmS s rm", "ssh -o ProxyCommand=x h rm", "parallel rm ::: a", "python3 -c x", "awk 'system(1)'",
		"psql -c '\\! rm'", "sqlite3 db .shell", "vi +'!rm'", "git -C d -c a=b x", "at now <<< rm", "bash <(cat)",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		cmds, err := shellcmd.Parse(line)
		if err != nil {
			if cmds != nil {
				t.Fatalf("Parse(%q) returned commands with error %v", line, err)
			}
			return
		}
		if len(cmds) > 1024 {
			t.Fatalf("Parse(%q) returned %d commands", line, len(cmds))
		}
		for _, c := range cmds {
			if strings.Contains(c.Name, "/") || strings.HasPrefix(c.Name, `\`) {
				t.Fatalf("Parse(%q): name %q is not normalised", line, c.Name)
			}
		}
	})
}
