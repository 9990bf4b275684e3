package ssh

import (
	"fmt"
	"regexp"
	"strings"
)

// Environment variables a user may pass to a target (ssh -o SetEnv,
// SendEnv): a short allow-list by name, and each value checked for its
// kind, because the target's shell, libc and terminal read them before any
// command rule sees anything.

// maxEnvValue bounds an environment value: locales, terminal names and
// time zones are short.
const maxEnvValue = 256

// envRules are the variables passed, each with what its value must be;
// the locale categories LC_* (see envRule) are locales too.
var envRules = map[string]func(string) string{
	"LANG":      locale,
	"LANGUAGE":  localeList,
	"TERM":      termName,
	"COLORTERM": termName,
	"TZ":        timeZone,
}

// lcNameRE is a locale category's name (LC_ALL, LC_TIME, …).
var lcNameRE = regexp.MustCompile(`^LC_[A-Z_]+$`)

// envRule is the check of the variable name's values, or nil when the
// variable is not passed at all.
func envRule(name string) func(string) string {
	if lcNameRE.MatchString(name) {
		return locale
	}
	return envRules[name]
}

var (
	localeRE = regexp.MustCompile(`^[A-Za-z0-9_.@-]+$`)
	termRE   = regexp.MustCompile(`^[A-Za-z0-9_.+-]+$`)
	tzRE     = regexp.MustCompile(`^[A-Za-z0-9_+,./:<>-]+$`)
)

// checkEnv is why the variable name=value is not passed to the target,
// or "" to pass it.
func checkEnv(name, value string) string {
	rule := envRule(name)
	if rule == nil {
		return fmt.Sprintf("environment variable %q is not passed to targets", name)
	}
	if len(value) > maxEnvValue {
		return fmt.Sprintf("environment variable %s is longer than %d bytes", name, maxEnvValue)
	}
	for _, c := range []byte(value) {
		if c < 0x20 || c >= 0x7f {
			return fmt.Sprintf("environment variable %s holds a control or non-ASCII character", name)
		}
	}
	if strings.HasPrefix(strings.TrimLeft(value, " "), "()") {
		return fmt.Sprintf("environment variable %s looks like an exported shell function", name)
	}
	if why := rule(value); why != "" {
		return fmt.Sprintf("environment variable %s: %s", name, why)
	}
	return ""
}

// locale: C, POSIX or language[_territory][.codeset][@modifier], as a
// file name under the system's locale directory (no path).
func locale(v string) string {
	if v == "" || localeRE.MatchString(v) && !strings.Contains(v, "..") {
		return ""
	}
	return "not a locale name (like en_US.UTF-8, C or POSIX)"
}

// localeList: LANGUAGE is locales separated by colons.
func localeList(v string) string {
	for _, l := range strings.Split(v, ":") {
		if l != "" && locale(l) != "" {
			return "not a colon-separated list of locale names"
		}
	}
	return ""
}

func termName(v string) string {
	if v == "" || termRE.MatchString(v) {
		return ""
	}
	return "not a terminal name (like xterm-256color)"
}

// timeZone: a zone name (Europe/Paris) or a POSIX rule (CET-1CEST,M3.5.0,M10.5.0/3),
// never a file: a leading ':' or '/' or a '..' reaches files on the
// target.
func timeZone(v string) string {
	switch {
	case v == "":
		return ""
	case strings.HasPrefix(v, ":"), strings.HasPrefix(v, "/"), strings.Contains(v, ".."):
		return "a time zone may not name a file (no leading : or /, no ..)"
	case !tzRE.MatchString(v):
		return "not a time zone (like Europe/Paris or UTC)"
	}
	return ""
}
