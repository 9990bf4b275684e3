package ssh

import (
	"strings"
	"testing"
)

func TestCheckEnv(t *testing.T) {
	tests := []struct {
		name, value string
		why         string // "" to pass
	}{
		{"LANG", "en_US.UTF-8", ""},
		{"LANG", "C", ""},
		{"LANG", "POSIX", ""},
		{"LC_ALL", "de_DE.utf8@euro", ""},
		{"LC_TIME", "", ""},
		{"LANGUAGE", "fr_FR:fr:en", ""},
		{"TERM", "xterm-256color", ""},
		{"TERM", "rxvt-unicode+256", ""},
		{"COLORTERM", "truecolor", ""},
		{"TZ", "Europe/Paris", ""},
		{"TZ", "UTC", ""},
		{"TZ", "CET-1CEST,M3.5.0,M10.5.0/3", ""},
		{"TZ", "<+0330>-3:30", ""},

		{"LD_PRELOAD", "/tmp/x.so", `"LD_PRELOAD" is not passed`},
		{"BASH_ENV", "/tmp/x", `"BASH_ENV" is not passed`},
		{"LC_", "C", `"LC_" is not passed`},
		{"LC_ALL", "() { :; }; id", "exported shell function"},
		{"LANG", " () { :;}", "exported shell function"},
		{"LC_ALL", "en_US.UTF-8; id", "not a locale name"},
		{"LANG", "../../tmp/evil", "not a locale name"},
		{"LANG", "en_US/../../x", "not a locale name"},
		{"LANGUAGE", "fr:../x", "not a colon-separated list"},
		{"TERM", "xterm\x1b]0;pwned\a", "control"},
		{"TERM", "xterm\nid", "control"},
		{"TERM", "vt100 -e id", "not a terminal name"},
		{"LANG", "en_US.UTF-8\x00", "control"},
		{"LANG", "é", "non-ASCII"},
		{"TZ", ":/etc/shadow", "may not name a file"},
		{"TZ", "/etc/passwd", "may not name a file"},
		{"TZ", "Europe/../../../tmp/tz", "may not name a file"},
		{"TZ", "UTC$(id)", "not a time zone"},
		{"LANG", strings.Repeat("a", 257), "longer than 256 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name+"="+tt.value, func(t *testing.T) {
			why := checkEnv(tt.name, tt.value)
			if tt.why == "" && why != "" {
				t.Fatalf("checkEnv(%s, %q) = %q; want it passed", tt.name, tt.value, why)
			}
			if tt.why != "" && !strings.Contains(why, tt.why) {
				t.Fatalf("checkEnv(%s, %q) = %q; want a refusal saying %q", tt.name, tt.value, why, tt.why)
			}
		})
	}
}
