package ssh

import (
	"strings"
	"testing"
)

func TestParseUsername(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Destination
		err  string
	}{
		{name: "self-service user", in: "alice", want: Destination{User: "alice"}},
		{name: "login at target", in: "root@web01", want: Destination{Login: "root", Target: "web01"}},
		{name: "target starting with a digit", in: "deploy@10-web.prod", want: Destination{Login: "deploy", Target: "10-web.prod"}},
		{name: "underscore login", in: "_svc@db", want: Destination{Login: "_svc", Target: "db"}},
		{name: "empty", in: "", err: "empty user name"},
		{name: "too long", in: strings.Repeat("a", MaxUsernameLength+1), err: "too long"},
		{name: "two at signs", in: "a@b@c", err: "invalid user name"},
		{name: "empty login", in: "@web01", err: "invalid user name"},
		{name: "empty target", in: "root@", err: "invalid user name"},
		{name: "slash", in: "al/ice", err: "invalid user name"},
		{name: "leading dash (option injection)", in: "-oProxyCommand", err: "invalid user name"},
		{name: "leading digit user", in: "1alice", err: "invalid user name"},
		{name: "control character", in: "al\x00ice", err: `invalid user name "al\x00ice"`},
		{name: "non-ASCII", in: "ålice", err: "invalid user name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseUsername(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseUsername(%q) = %+v, %v; want error %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseUsername(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
		})
	}
}

// FuzzParseUsername: never panics; what it accepts is printable ASCII
// without blanks, and splits back into the input.
func FuzzParseUsername(f *testing.F) {
	for _, s := range []string{"alice", "root@web01", "a@b@c", "", "@", "x\x00y", strings.Repeat("z", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseUsername(s)
		if err != nil {
			if strings.ContainsAny(err.Error(), "\x00\r\n\x1b") {
				t.Fatalf("error message carries raw control characters: %q", err.Error())
			}
			return
		}
		for i := 0; i < len(s); i++ {
			if s[i] <= ' ' || s[i] >= 0x7f {
				t.Fatalf("accepted %q with byte %#x", s, s[i])
			}
		}
		rebuilt := d.User
		if d.IsTarget() {
			rebuilt = d.Login + "@" + d.Target
		}
		if rebuilt != s {
			t.Fatalf("ParseUsername(%q) = %+v", s, d)
		}
	})
}

func TestFirstWordHidesAssignments(t *testing.T) {
	for line, want := range map[string]string{
		"PGPASSWORD=hunter2 psql -h db": "psql",
		"A=1 B=2 make deploy":           "make",
		"uname -a":                      "uname",
		"  ls":                          "ls",
		"X=only":                        "",
		"=weird cmd":                    "=weird",
	} {
		if got := firstWord(line); got != want {
			t.Errorf("firstWord(%q) = %q, want %q", line, got, want)
		}
	}
}
