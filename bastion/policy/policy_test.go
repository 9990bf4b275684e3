package policy_test

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // Europe/Paris and America/New_York without relying on the host's zoneinfo

	"github.com/bastionhq/bastion/bastion/policy"
)

// Fixed instants. 2024-06-03 is a Monday.
var (
	monday10   = time.Date(2024, 6, 3, 10, 0, 0, 0, time.UTC)
	saturday10 = time.Date(2024, 6, 8, 10, 0, 0, 0, time.UTC)

	office   = netip.MustParseAddr("10.1.2.3")
	office6  = netip.MustParseAddr("2001:db8::7")
	mapped   = netip.MustParseAddr("::ffff:10.1.2.3")
	home     = netip.MustParseAddr("203.0.113.7")
	unknown  = netip.Addr{}
	corpNets = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
)

func mustLoad(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func days(ds ...time.Weekday) [7]bool {
	var out [7]bool
	for _, d := range ds {
		out[d] = true
	}
	return out
}

var (
	weekdays = days(time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday)
	everyDay = [7]bool{true, true, true, true, true, true, true}
)

func hm(h, m int) time.Duration { return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute }

// errKind is the type of error a case expects.
type errKind int

const (
	noError errKind = iota
	refused         // *policy.Refusal
	invalid         // *policy.InvalidError
)

func (k errKind) String() string {
	return [...]string{"nil", "*policy.Refusal", "*policy.InvalidError"}[k]
}

// checkErr fails unless err is of kind want and its message contains substr.
func checkErr(t *testing.T, err error, want errKind, substr string) {
	t.Helper()
	var ref *policy.Refusal
	var inv *policy.InvalidError
	got := noError
	switch {
	case err == nil:
	case errors.As(err, &ref):
		got = refused
	case errors.As(err, &inv):
		got = invalid
	default:
		t.Fatalf("error %q is of type %T, want %v", err, err, want)
	}
	if got != want {
		t.Fatalf("got %v (%v), want %v", got, err, want)
	}
	if err != nil && !strings.Contains(err.Error(), substr) {
		t.Errorf("error %q does not contain %q", err, substr)
	}
}

// testPolicy builds a fresh policy; tests may modify it.
//
//	alice: developer   bob: ops   carol: auditor   dave: oncall, developer
//	erin: (no roles)   frank: developer + an undefined role   olga: oncall
//	sam: sre
func testPolicy() *policy.Policy {
	businessHours := policy.Window{Days: weekdays, From: hm(9, 0), To: hm(17, 0), Location: time.UTC}
	return &policy.Policy{
		Targets: map[string]*policy.Target{
			"web01": {Name: "web01", Kind: policy.KindSSH, Labels: map[string]string{"env": "prod", "team": "web"}},
			"web02": {Name: "web02", Kind: policy.KindSSH, Labels: map[string]string{"env": "staging", "team": "web"}},
			"db01":  {Name: "db01", Kind: policy.KindPostgres, Labels: map[string]string{"env": "prod"}},
			"db02":  {Name: "db02", Kind: policy.KindMySQL, Labels: map[string]string{"env": "staging"}},
		},
		Roles: map[string]*policy.Role{
			"developer": {
				Name: "developer",
				Standing: []policy.Access{
					{Targets: policy.Selector{Names: []string{"web02"}}, Logins: []string{"deploy"}},
					{Targets: policy.Selector{Labels: map[string]string{"env": "staging"}}, Logins: []string{"app"}},
				},
				Requestable: []policy.RequestRule{
					{
						Access:    policy.Access{Targets: policy.Selector{Names: []string{"web*"}}, Logins: []string{"root", "deploy"}},
						Approvers: []string{"ops"}, Approvals: 2, MaxDuration: 4 * time.Hour, RequireReason: true,
					},
					{
						Access:    policy.Access{Targets: policy.Selector{Names: []string{"db*"}}},
						Approvers: []string{"ops", "dba"}, MaxDuration: 2 * time.Hour,
					},
				},
			},
			"oncall": {
				Name: "oncall",
				Requestable: []policy.RequestRule{{
					Access: policy.Access{
						Targets:    policy.Selector{Labels: map[string]string{"env": "prod"}},
						Logins:     []string{"root"},
						Conditions: policy.Conditions{Networks: corpNets},
					},
					Approvers: []string{"ops"}, MaxDuration: time.Hour,
					AutoApprove: &policy.Conditions{
						Windows:  []policy.Window{businessHours},
						Networks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
					},
				}},
			},
			"ops": {
				Name:        "ops",
				Permissions: []policy.Permission{policy.PermAudit},
				Standing: []policy.Access{{
					Targets: policy.Selector{Names: []string{"*"}}, Logins: []string{"admin"},
					Conditions: policy.Conditions{Networks: corpNets},
				}},
				Requestable: []policy.RequestRule{{
					Access:    policy.Access{Targets: policy.Selector{Names: []string{"web01", "db01"}}, Logins: []string{"root"}},
					Approvers: []string{"ops"},
				}},
			},
			"auditor": {Name: "auditor", Permissions: []policy.Permission{policy.PermAudit}},
			"sre": {
				Name: "sre",
				Standing: []policy.Access{{
					Targets: policy.Selector{Names: []string{"web01"}}, Logins: []string{"root"},
					Conditions: policy.Conditions{Windows: []policy.Window{businessHours}},
				}},
				Requestable: []policy.RequestRule{
					{
						// Closed at the weekend: a refusal falls through to the next rule.
						Access: policy.Access{
							Targets: policy.Selector{Names: []string{"web01"}}, Logins: []string{"root"},
							Conditions: policy.Conditions{Windows: []policy.Window{businessHours}},
						},
						Approvers: []string{"ops"},
					},
					{
						Access:    policy.Access{Targets: policy.Selector{Names: []string{"web01"}}, Logins: []string{"root"}},
						Approvers: []string{"ops"}, Approvals: 3,
					},
				},
			},
		},
		Users: map[string]*policy.User{
			"alice": {Name: "alice", Roles: []string{"developer"}},
			"bob":   {Name: "bob", Roles: []string{"ops"}},
			"carol": {Name: "carol", Roles: []string{"auditor"}},
			"dave":  {Name: "dave", Roles: []string{"oncall", "developer"}},
			"erin":  {Name: "erin"},
			"frank": {Name: "frank", Roles: []string{"developer", "ghost"}},
			"olga":  {Name: "olga", Roles: []string{"oncall"}},
			"sam":   {Name: "sam", Roles: []string{"sre"}},
		},
	}
}

func TestSelectorMatches(t *testing.T) {
	web01 := &policy.Target{Name: "web01", Kind: policy.KindSSH, Labels: map[string]string{"env": "prod", "team": "web"}}
	bare := &policy.Target{Name: "db-7", Kind: policy.KindPostgres}
	tests := []struct {
		name string
		sel  policy.Selector
		t    *policy.Target
		want bool
	}{
		{"exact name", policy.Selector{Names: []string{"web01"}}, web01, true},
		{"star glob", policy.Selector{Names: []string{"web*"}}, web01, true},
		{"question-mark glob", policy.Selector{Names: []string{"web?1"}}, web01, true},
		{"class glob", policy.Selector{Names: []string{"web0[0-9]"}}, web01, true},
		{"star matches everything", policy.Selector{Names: []string{"*"}}, bare, true},
		{"second name matches", policy.Selector{Names: []string{"db*", "web01"}}, web01, true},
		{"glob does not match", policy.Selector{Names: []string{"db*"}}, web01, false},
		{"glob is anchored", policy.Selector{Names: []string{"eb0*"}}, web01, false},
		{"names are case sensitive", policy.Selector{Names: []string{"WEB01"}}, web01, false},
		{"malformed glob matches nothing", policy.Selector{Names: []string{"web[0"}}, web01, false},
		{"empty selector matches nothing", policy.Selector{}, web01, false},
		{"empty labels match nothing", policy.Selector{Labels: map[string]string{}}, web01, false},
		{"one label", policy.Selector{Labels: map[string]string{"env": "prod"}}, web01, true},
		{"every label", policy.Selector{Labels: map[string]string{"env": "prod", "team": "web"}}, web01, true},
		{"one label of two differs", policy.Selector{Labels: map[string]string{"env": "prod", "team": "db"}}, web01, false},
		{"label value differs", policy.Selector{Labels: map[string]string{"env": "staging"}}, web01, false},
		{"label missing on target", policy.Selector{Labels: map[string]string{"env": "prod"}}, bare, false},
		{"empty label value needs the label", policy.Selector{Labels: map[string]string{"env": ""}}, bare, false},
		{"labels match when names do not", policy.Selector{Names: []string{"db*"}, Labels: map[string]string{"team": "web"}}, web01, true},
		{"neither names nor labels", policy.Selector{Names: []string{"db*"}, Labels: map[string]string{"team": "db"}}, web01, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.sel.Matches(tt.t); got != tt.want {
				t.Errorf("%+v.Matches(%s) = %v, want %v", tt.sel, tt.t.Name, got, tt.want)
			}
		})
	}
}

func TestWindowContains(t *testing.T) {
	paris := mustLoad(t, "Europe/Paris")
	newYork := mustLoad(t, "America/New_York")
	utc := func(y int, mo time.Month, d, h, mi, s int) time.Time {
		return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
	}
	inParis := func(y int, mo time.Month, d, h, mi int) time.Time { return time.Date(y, mo, d, h, mi, 0, 0, paris) }

	officeUTC := policy.Window{Days: weekdays, From: hm(9, 0), To: hm(17, 0), Location: time.UTC}
	officeParis := policy.Window{Days: weekdays, From: hm(9, 0), To: hm(17, 0), Location: paris}
	allDayParis := policy.Window{Days: everyDay, From: hm(9, 0), To: hm(17, 0), Location: paris}
	fridayNight := policy.Window{Days: days(time.Friday), From: hm(22, 0), To: hm(6, 0), Location: time.UTC}
	sundayNight := policy.Window{Days: days(time.Sunday), From: hm(22, 0), To: hm(2, 0), Location: time.UTC}
	saturdayNight := policy.Window{Days: days(time.Saturday), From: hm(22, 0), To: hm(2, 0), Location: time.UTC}
	mondayEarlyParis := policy.Window{Days: days(time.Monday), From: 0, To: hm(6, 0), Location: paris}
	mondayEarlyUTC := policy.Window{Days: days(time.Monday), From: 0, To: hm(6, 0), Location: time.UTC}
	fullDay := policy.Window{Days: days(time.Wednesday), From: 0, To: 24 * time.Hour, Location: time.UTC}
	noonToNoon := policy.Window{Days: days(time.Monday), From: hm(12, 0), To: hm(12, 0), Location: time.UTC}
	nilLocation := policy.Window{Days: weekdays, From: hm(9, 0), To: hm(17, 0)}

	tests := []struct {
		name string
		w    policy.Window
		at   time.Time
		want bool
	}{
		// Plain window in UTC; From inclusive, To exclusive.
		{"utc inside", officeUTC, utc(2024, 6, 3, 10, 0, 0), true},
		{"utc at opening", officeUTC, utc(2024, 6, 3, 9, 0, 0), true},
		{"utc a second before opening", officeUTC, utc(2024, 6, 3, 8, 59, 59), false},
		{"utc a second before closing", officeUTC, utc(2024, 6, 3, 16, 59, 59), true},
		{"utc at closing", officeUTC, utc(2024, 6, 3, 17, 0, 0), false},
		{"utc friday", officeUTC, utc(2024, 6, 7, 16, 0, 0), true},
		{"utc saturday", officeUTC, utc(2024, 6, 8, 10, 0, 0), false},
		{"utc sunday", officeUTC, utc(2024, 6, 9, 10, 0, 0), false},
		{"nil location is utc", nilLocation, utc(2024, 6, 3, 9, 0, 0), true},
		{"nil location is utc, before opening", nilLocation, utc(2024, 6, 3, 8, 59, 0), false},

		// Europe/Paris: UTC+2 in summer, UTC+1 in winter.
		{"paris summer opening is 07:00Z", officeParis, utc(2024, 6, 3, 7, 0, 0), true},
		{"paris summer 06:59Z is before opening", officeParis, utc(2024, 6, 3, 6, 59, 0), false},
		{"paris summer 14:59Z is open", officeParis, utc(2024, 6, 3, 14, 59, 0), true},
		{"paris summer closing is 15:00Z", officeParis, utc(2024, 6, 3, 15, 0, 0), false},
		{"paris winter opening is 08:00Z", officeParis, utc(2024, 1, 8, 8, 0, 0), true},
		{"paris winter 07:59Z is before opening", officeParis, utc(2024, 1, 8, 7, 59, 0), false},
		{"paris winter closing is 16:00Z", officeParis, utc(2024, 1, 8, 16, 0, 0), false},
		{"instant given in another zone", officeParis, time.Date(2024, 6, 3, 3, 0, 0, 0, newYork), true}, // 09:00 Paris
		{"instant given in another zone, before opening", officeParis, time.Date(2024, 6, 3, 2, 59, 0, 0, newYork), false},

		// The weekday is the one in the window's zone.
		{"sunday 23:30Z is monday in paris", mondayEarlyParis, utc(2024, 6, 2, 23, 30, 0), true},
		{"sunday 23:30Z is sunday in utc", mondayEarlyUTC, utc(2024, 6, 2, 23, 30, 0), false},
		{"monday 05:00Z is 07:00 in paris, after the window", mondayEarlyParis, utc(2024, 6, 3, 5, 0, 0), false},
		{"monday 05:00Z in utc window", mondayEarlyUTC, utc(2024, 6, 3, 5, 0, 0), true},

		// Days when daylight saving time starts (2024-03-31) and ends
		// (2024-10-27) in Paris: the window is wall-clock time.
		{"dst start: 08:59 local", allDayParis, inParis(2024, 3, 31, 8, 59), false},
		{"dst start: 09:00 local", allDayParis, inParis(2024, 3, 31, 9, 0), true},
		{"dst start: 16:59 local", allDayParis, inParis(2024, 3, 31, 16, 59), true},
		{"dst start: 17:00 local", allDayParis, inParis(2024, 3, 31, 17, 0), false},
		{"dst start: 17:30 local", allDayParis, inParis(2024, 3, 31, 17, 30), false},
		{"dst end: 08:30 local", allDayParis, inParis(2024, 10, 27, 8, 30), false},
		{"dst end: 09:00 local", allDayParis, inParis(2024, 10, 27, 9, 0), true},
		{"dst end: 16:30 local", allDayParis, inParis(2024, 10, 27, 16, 30), true},
		{"dst end: 17:00 local", allDayParis, inParis(2024, 10, 27, 17, 0), false},

		// Windows across midnight belong to the day they start on.
		{"friday night at start", fridayNight, utc(2024, 6, 7, 22, 0, 0), true},
		{"friday night before start", fridayNight, utc(2024, 6, 7, 21, 59, 59), false},
		{"friday night just before midnight", fridayNight, utc(2024, 6, 7, 23, 59, 59), true},
		{"friday night at saturday midnight", fridayNight, utc(2024, 6, 8, 0, 0, 0), true},
		{"friday night saturday morning", fridayNight, utc(2024, 6, 8, 5, 59, 59), true},
		{"friday night ends saturday 06:00", fridayNight, utc(2024, 6, 8, 6, 0, 0), false},
		{"saturday evening is not friday night", fridayNight, utc(2024, 6, 8, 23, 0, 0), false},
		{"friday morning belongs to thursday", fridayNight, utc(2024, 6, 7, 5, 0, 0), false},
		{"thursday night is not friday night", fridayNight, utc(2024, 6, 6, 23, 0, 0), false},
		{"sunday night wraps into monday", sundayNight, utc(2024, 6, 10, 1, 0, 0), true},
		{"sunday night, sunday morning belongs to saturday", sundayNight, utc(2024, 6, 9, 1, 0, 0), false},
		{"saturday night wraps into sunday", saturdayNight, utc(2024, 6, 9, 1, 59, 0), true},
		{"saturday night ends sunday 02:00", saturdayNight, utc(2024, 6, 9, 2, 0, 0), false},

		{"00:00-24:00 at midnight", fullDay, utc(2024, 6, 5, 0, 0, 0), true},
		{"00:00-24:00 at the last second", fullDay, utc(2024, 6, 5, 23, 59, 59), true},
		{"00:00-24:00 next day", fullDay, utc(2024, 6, 6, 0, 0, 0), false},
		{"from equals to: 24h from the start", noonToNoon, utc(2024, 6, 4, 11, 59, 0), true},
		{"from equals to: start", noonToNoon, utc(2024, 6, 3, 12, 0, 0), true},
		{"from equals to: before start", noonToNoon, utc(2024, 6, 3, 11, 59, 0), false},
		{"from equals to: end", noonToNoon, utc(2024, 6, 4, 12, 0, 0), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.w.Contains(tt.at); got != tt.want {
				loc := tt.w.Location
				if loc == nil {
					loc = time.UTC
				}
				t.Errorf("Contains(%s = %s) = %v, want %v", tt.at.Format(time.RFC3339), tt.at.In(loc).Format("Mon 15:04 MST"), got, tt.want)
			}
		})
	}
}

func TestConditionsCheck(t *testing.T) {
	officeHours := policy.Window{Days: weekdays, From: hm(9, 0), To: hm(17, 0), Location: time.UTC}
	night := policy.Window{Days: everyDay, From: hm(22, 0), To: hm(6, 0), Location: time.UTC}
	nets := policy.Conditions{Networks: corpNets}
	host := policy.Conditions{Networks: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")}}
	tests := []struct {
		name   string
		c      policy.Conditions
		env    policy.Env
		want   errKind
		substr string
	}{
		{"no conditions", policy.Conditions{}, policy.Env{Now: saturday10}, noError, ""},
		{"no conditions, unknown source", policy.Conditions{}, policy.Env{Now: monday10, Source: unknown}, noError, ""},
		{"ipv4 inside", nets, policy.Env{Now: monday10, Source: office}, noError, ""},
		{"ipv4 outside", nets, policy.Env{Now: monday10, Source: home}, refused, "source address 203.0.113.7 is not in an allowed network"},
		{"ipv6 inside", nets, policy.Env{Now: monday10, Source: office6}, noError, ""},
		{"ipv6 outside", nets, policy.Env{Now: monday10, Source: netip.MustParseAddr("2001:db9::1")}, refused, "source address 2001:db9::1 is not"},
		{"ipv4-mapped ipv6 source matches ipv4 network", nets, policy.Env{Now: monday10, Source: mapped}, noError, ""},
		{"ipv4-mapped ipv6 source outside, shown unmapped", nets, policy.Env{Now: monday10, Source: netip.MustParseAddr("::ffff:203.0.113.7")}, refused, "source address 203.0.113.7 is not"},
		{"single host", host, policy.Env{Source: netip.MustParseAddr("192.0.2.1")}, noError, ""},
		{"single host, neighbour", host, policy.Env{Source: netip.MustParseAddr("192.0.2.2")}, refused, "not in an allowed network"},
		{"unknown source refused", nets, policy.Env{Now: monday10, Source: unknown}, refused, "source address (unknown) is not in an allowed network"},
		{"window open", policy.Conditions{Windows: []policy.Window{officeHours}}, policy.Env{Now: monday10}, noError, ""},
		{"window closed", policy.Conditions{Windows: []policy.Window{officeHours}}, policy.Env{Now: saturday10}, refused, "outside the allowed time window"},
		{"second window open", policy.Conditions{Windows: []policy.Window{officeHours, night}}, policy.Env{Now: saturday10.Add(13 * time.Hour)}, noError, ""},
		{"no window open", policy.Conditions{Windows: []policy.Window{officeHours, night}}, policy.Env{Now: saturday10}, refused, "outside the allowed time window"},
		{"window and network both hold", policy.Conditions{Windows: []policy.Window{officeHours}, Networks: corpNets}, policy.Env{Now: monday10, Source: office}, noError, ""},
		{"window holds, network does not", policy.Conditions{Windows: []policy.Window{officeHours}, Networks: corpNets}, policy.Env{Now: monday10, Source: home}, refused, "not in an allowed network"},
		{"network holds, window does not", policy.Conditions{Windows: []policy.Window{officeHours}, Networks: corpNets}, policy.Env{Now: saturday10, Source: office}, refused, "outside the allowed time window"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, tt.c.Check(tt.env), tt.want, tt.substr)
		})
	}
}

func TestPlanRequest(t *testing.T) {
	atOffice := policy.Env{Now: monday10, Source: office}
	tests := []struct {
		name   string
		edit   func(*policy.Policy) // optional change to the test policy
		in     policy.RequestInput
		env    policy.Env
		want   errKind
		substr string
		plan   *policy.RequestPlan
	}{
		// Bad input.
		{
			name: "no target",
			in:   policy.RequestInput{User: "alice", Duration: time.Hour, Reason: "x"},
			env:  atOffice, want: invalid, substr: "name at least one target",
		},
		{
			name: "unknown target",
			in:   policy.RequestInput{User: "alice", Targets: []string{"web99"}, Logins: []string{"root"}, Duration: time.Hour, Reason: "x"},
			env:  atOffice, want: invalid, substr: `unknown target "web99"`,
		},
		{
			name: "unknown target among known ones",
			in:   policy.RequestInput{User: "bob", Targets: []string{"web01", "nope"}, Duration: time.Hour, Reason: "x"},
			env:  atOffice, want: invalid, substr: `unknown target "nope"`,
		},
		{
			name: "zero duration",
			in:   policy.RequestInput{User: "alice", Targets: []string{"db01"}, Reason: "x"},
			env:  atOffice, want: invalid, substr: "the duration must be positive",
		},
		{
			name: "negative duration",
			in:   policy.RequestInput{User: "alice", Targets: []string{"db01"}, Duration: -time.Hour, Reason: "x"},
			env:  atOffice, want: invalid, substr: "the duration must be positive",
		},
		{
			name: "login on a database-only request",
			in:   policy.RequestInput{User: "alice", Targets: []string{"db01"}, Logins: []string{"root"}, Duration: time.Hour},
			env:  atOffice, want: invalid, substr: "--login applies to SSH targets only",
		},
		{
			name: "login on several database targets",
			in:   policy.RequestInput{User: "alice", Targets: []string{"db01", "db02"}, Logins: []string{"root"}, Duration: time.Hour},
			env:  atOffice, want: invalid, substr: "--login applies to SSH targets only",
		},

		// Logins.
		{
			name: "login defaulted when the rule has exactly one",
			in:   policy.RequestInput{User: "olga", Targets: []string{"web01"}, Duration: time.Hour},
			env:  policy.Env{Now: saturday10, Source: office},
			plan: &policy.RequestPlan{Role: "oncall", Logins: []string{"root"}, Approvers: []string{"ops"}, Approvals: 1, PendingTTL: policy.DefaultPendingTTL},
		},
		{
			name: "login required when the rule has several",
			in:   policy.RequestInput{User: "alice", Targets: []string{"web01"}, Duration: time.Hour, Reason: "INC-1"},
			env:  atOffice, want: invalid, substr: "name a login with --login (allowed: root, deploy)",
		},
		{
			name: "login not allowed",
			in:   policy.RequestInput{User: "alice", Targets: []string{"web01"}, Logins: []string{"postgres"}, Duration: time.Hour, Reason: "INC-1"},
			env:  atOffice, want: refused, substr: `login "postgres" is not requestable by role developer (allowed: root, deploy)`,
		},
		{
			name: "one of two logins not allowed",
			in:   policy.RequestInput{User: "alice", Targets: []string{"web01"}, Logins: []string{"deploy", "admin"}, Duration: time.Hour, Reason: "INC-1"},
			env:  atOffice, want: refused, substr: `login "admin" is not requestable`,
		},
		{
			name: "several allowed logins",
			in:   policy.RequestInput{User: "alice", Targets: []string{"web02"}, Logins: []string{"deploy", "root"}, Duration: time.Hour, Reason: "INC-1"},
			env:  atOffice,
			plan: &policy.RequestPlan{Role: "developer", Logins: []string{"deploy", "root"}, Approvers: []string{"ops"}, Approvals: 2, PendingTTL: time.Hour},
		},

		// Reason.
		{
			name: "reason required",
			in:   policy.RequestInput{User: "alice", Targets: []string{"web01"}, Logins: []string{"root"}, Duration: time.Hour},
			env:  atOffice, want: invalid, substr: "a reason is required",
		},
		{
			name: "blank reason counts as none",
			in:   policy.RequestInput{User: "alice", Targets: []string{"web01"}, Logins: []string{"root"}, Duration: time.Hour, Reason: " \t\n"},
			env:  atOffice, want: invalid, substr: "a reason is required",
		},
		{
			name: "reason not required",
			in:   policy.RequestInput{User: "alice", Targets: []string{"db01"}, Duration: time.Hour},
			env:  atOffice,
			plan: &policy.RequestPlan{Role: "developer", Approvers: []string{"ops", "dba"}, Approvals: 1, PendingTTL: time.Hour},
		},

		// Duration.
		{
			name: "max duration exceeded",
			in:   policy.RequestInput{User: "alice", Targets: []string{"web01"}, Logins: []string{"root"}, Duration: 5 * time.Hour, Reason: "INC-1"},
			env:  atOffice, want: refused, substr: "requested duration 5h0m0s exceeds the maximum 4h0m0s for role developer",
		},
		{
			name: "exactly the max duration",
			in:   policy.RequestInput{User: "alice", Targets: []string{"web01"}, Logins: []string{"root"}, Duration: 4 * time.Hour, Reason: "INC-1"},
			env:  atOffice,
			plan: &policy.RequestPlan{Role: "developer", Logins: []string{"root"}, Approvers: []string{"ops"}, Approvals: 2, PendingTTL: time.Hour},
		},
		{
			name: "database max duration exceeded",
			in:   policy.RequestInput{User: "alice", Targets: []string{"db02"}, Duration: 2*time.Hour + time.Second},
			env:  atOffice, want: refused, substr: "exceeds the maximum 2h0m0s for role developer",
		},
		{
			name: "no max duration in the rule",
			in:   policy.RequestInput{User: "bob", Targets: []string{"db01"}, Duration: 1000 * time.Hour, Reason: "x"},
			env:  atOffice,
			plan: &policy.RequestPlan{Role: "ops", Approvers: []string{"ops"}, Approvals: 1, PendingTTL: time.Hour},
		},

		// Conditions and auto-approval.
		{
			name: "conditions fail at request time",
			in:   policy.RequestInput{User: "olga", Targets: []string{"web01"}, Duration: time.Hour},
			env:  policy.Env{Now: monday10, Source: home}, want: refused, substr: "source address 203.0.113.7 is not in an allowed network",
		},
		{
			name: "unknown source refused when the rule names networks",
			in:   policy.RequestInput{User: "olga", Targets: []string{"db01"}, Duration: time.Hour},
			env:  policy.Env{Now: monday10}, want: refused, substr: "source address (unknown)",
		},
		{
			name: "auto-approved when its conditions hold",
			in:   policy.RequestInput{User: "olga", Targets: []string{"web01"}, Duration: time.Hour},
			env:  atOffice,
			plan: &policy.RequestPlan{Role: "oncall", Logins: []string{"root"}, Approvers: []string{"ops"}, Approvals: 1, AutoApproved: true, PendingTTL: time.Hour},
		},
		{
			name: "auto-approved from an ipv4-mapped source",
			in:   policy.RequestInput{User: "olga", Targets: []string{"db01"}, Duration: time.Hour},
			env:  policy.Env{Now: monday10, Source: mapped},
			plan: &policy.RequestPlan{Role: "oncall", Approvers: []string{"ops"}, Approvals: 1, AutoApproved: true, PendingTTL: time.Hour},
		},
		{
			name: "not auto-approved outside its window",
			in:   policy.RequestInput{User: "olga", Targets: []string{"web01"}, Duration: time.Hour},
			env:  policy.Env{Now: saturday10, Source: office},
			plan: &policy.RequestPlan{Role: "oncall", Logins: []string{"root"}, Approvers: []string{"ops"}, Approvals: 1, PendingTTL: time.Hour},
		},
		{
			name: "not auto-approved outside its network",
			in:   policy.RequestInput{User: "olga", Targets: []string{"web01"}, Duration: time.Hour},
			env:  policy.Env{Now: monday10, Source: office6}, // allowed by the rule, not by auto_approve
			plan: &policy.RequestPlan{Role: "oncall", Logins: []string{"root"}, Approvers: []string{"ops"}, Approvals: 1, PendingTTL: time.Hour},
		},
		{
			name: "no auto-approval without auto_approve",
			in:   policy.RequestInput{User: "alice", Targets: []string{"db01"}, Duration: time.Hour},
			env:  atOffice,
			plan: &policy.RequestPlan{Role: "developer", Approvers: []string{"ops", "dba"}, Approvals: 1, PendingTTL: time.Hour},
		},
		{
			name: "empty auto_approve always approves",
			edit: func(p *policy.Policy) { p.Roles["developer"].Requestable[1].AutoApprove = &policy.Conditions{} },
			in:   policy.RequestInput{User: "alice", Targets: []string{"db01"}, Duration: time.Hour},
			env:  policy.Env{Now: saturday10},
			plan: &policy.RequestPlan{Role: "developer", Approvers: []string{"ops", "dba"}, Approvals: 1, AutoApproved: true, PendingTTL: time.Hour},
		},

		// Several roles and rules.
		{
			name: "first covering role wins",
			in:   policy.RequestInput{User: "dave", Targets: []string{"web01"}, Logins: []string{"root"}, Duration: time.Hour, Reason: "INC-1"},
			env:  atOffice,
			plan: &policy.RequestPlan{Role: "oncall", Logins: []string{"root"}, Approvers: []string{"ops"}, Approvals: 1, AutoApproved: true, PendingTTL: time.Hour},
		},
		{
			name: "role order decides",
			edit: func(p *policy.Policy) { p.Users["dave"].Roles = []string{"developer", "oncall"} },
			in:   policy.RequestInput{User: "dave", Targets: []string{"web01"}, Logins: []string{"root"}, Duration: time.Hour, Reason: "INC-1"},
			env:  atOffice,
			plan: &policy.RequestPlan{Role: "developer", Logins: []string{"root"}, Approvers: []string{"ops"}, Approvals: 2, PendingTTL: time.Hour},
		},
		{
			name: "a refusing role falls through to the next (login)",
			in:   policy.RequestInput{User: "dave", Targets: []string{"web01"}, Logins: []string{"deploy"}, Duration: time.Hour, Reason: "INC-1"},
			env:  atOffice,
			plan: &policy.RequestPlan{Role: "developer", Logins: []string{"deploy"}, Approvers: []string{"ops"}, Approvals: 2, PendingTTL: time.Hour},
		},
		{
			name: "a refusing role falls through to the next (conditions)",
			in:   policy.RequestInput{User: "dave", Targets: []string{"web01"}, Logins: []string{"root"}, Duration: time.Hour, Reason: "INC-1"},
			env:  policy.Env{Now: monday10, Source: home},
			plan: &policy.RequestPlan{Role: "developer", Logins: []string{"root"}, Approvers: []string{"ops"}, Approvals: 2, PendingTTL: time.Hour},
		},
		{
			name: "a refusing rule falls through to the next rule of the role",
			in:   policy.RequestInput{User: "sam", Targets: []string{"web01"}, Duration: time.Hour, Reason: "x"},
			env:  policy.Env{Now: saturday10},
			plan: &policy.RequestPlan{Role: "sre", Logins: []string{"root"}, Approvers: []string{"ops"}, Approvals: 3, PendingTTL: time.Hour},
		},
		{
			name: "first rule of the role when it accepts",
			in:   policy.RequestInput{User: "sam", Targets: []string{"web01"}, Duration: time.Hour, Reason: "x"},
			env:  policy.Env{Now: monday10},
			plan: &policy.RequestPlan{Role: "sre", Logins: []string{"root"}, Approvers: []string{"ops"}, Approvals: 1, PendingTTL: time.Hour},
		},
		{
			name: "the last refusal is reported",
			in:   policy.RequestInput{User: "dave", Targets: []string{"web01"}, Logins: []string{"root"}, Duration: 5 * time.Hour, Reason: "INC-1"},
			env:  atOffice, want: refused, substr: "exceeds the maximum 4h0m0s for role developer",
		},
		{
			name: "undefined role of the user is ignored",
			in:   policy.RequestInput{User: "frank", Targets: []string{"db01"}, Duration: time.Hour},
			env:  atOffice,
			plan: &policy.RequestPlan{Role: "developer", Approvers: []string{"ops", "dba"}, Approvals: 1, PendingTTL: time.Hour},
		},

		// Several targets.
		{
			name: "several targets covered by no single rule",
			in:   policy.RequestInput{User: "alice", Targets: []string{"web01", "db01"}, Logins: []string{"root"}, Duration: time.Hour, Reason: "x"},
			env:  atOffice, want: refused, substr: "your roles do not allow requesting web01, db01",
		},
		{
			name: "several targets covered by one rule",
			in:   policy.RequestInput{User: "bob", Targets: []string{"web01", "db01"}, Duration: time.Hour, Reason: "x"},
			env:  atOffice,
			plan: &policy.RequestPlan{Role: "ops", Logins: []string{"root"}, Approvers: []string{"ops"}, Approvals: 1, PendingTTL: time.Hour},
		},
		{
			name: "several targets, one outside the rule",
			in:   policy.RequestInput{User: "bob", Targets: []string{"web01", "web02"}, Logins: []string{"root"}, Duration: time.Hour, Reason: "x"},
			env:  atOffice, want: refused, substr: "your roles do not allow requesting web01, web02",
		},
		{
			name: "several ssh targets of one glob",
			in:   policy.RequestInput{User: "alice", Targets: []string{"web01", "web02"}, Logins: []string{"root"}, Duration: time.Hour, Reason: "x"},
			env:  atOffice,
			plan: &policy.RequestPlan{Role: "developer", Logins: []string{"root"}, Approvers: []string{"ops"}, Approvals: 2, PendingTTL: time.Hour},
		},

		// Users.
		{
			name: "user without roles",
			in:   policy.RequestInput{User: "erin", Targets: []string{"db01"}, Duration: time.Hour, Reason: "x"},
			env:  atOffice, want: refused, substr: "your roles do not allow requesting db01",
		},
		{
			name: "unknown user",
			in:   policy.RequestInput{User: "mallory", Targets: []string{"db01"}, Duration: time.Hour, Reason: "x"},
			env:  atOffice, want: refused, substr: "your roles do not allow requesting db01",
		},
		{
			name: "role with nothing requestable",
			in:   policy.RequestInput{User: "carol", Targets: []string{"db01"}, Duration: time.Hour, Reason: "x"},
			env:  atOffice, want: refused, substr: "your roles do not allow requesting db01",
		},

		// Pending TTL.
		{
			name: "pending ttl from the policy",
			edit: func(p *policy.Policy) { p.PendingTTL = 10 * time.Minute },
			in:   policy.RequestInput{User: "alice", Targets: []string{"db01"}, Duration: time.Hour},
			env:  atOffice,
			plan: &policy.RequestPlan{Role: "developer", Approvers: []string{"ops", "dba"}, Approvals: 1, PendingTTL: 10 * time.Minute},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPolicy()
			if tt.edit != nil {
				tt.edit(p)
			}
			plan, err := p.PlanRequest(tt.in, tt.env)
			checkErr(t, err, tt.want, tt.substr)
			if tt.want != noError {
				if plan != nil {
					t.Errorf("plan = %+v with error %v", plan, err)
				}
				return
			}
			if got, want := fmtPlan(plan), fmtPlan(tt.plan); got != want {
				t.Errorf("plan:\n got  %s\n want %s", got, want)
			}
		})
	}
}

// fmtPlan renders a plan so that nil and empty slices compare equal.
func fmtPlan(p *policy.RequestPlan) string {
	if p == nil {
		return "<nil>"
	}
	return fmt.Sprintf("role=%s logins=%v approvers=%v approvals=%d auto=%v ttl=%s",
		p.Role, p.Logins, p.Approvers, p.Approvals, p.AutoApproved, p.PendingTTL)
}

// A plan must not share slices with the policy: callers store and may edit it.
func TestPlanRequestCopies(t *testing.T) {
	p := testPolicy()
	plan, err := p.PlanRequest(policy.RequestInput{User: "olga", Targets: []string{"web01"}, Duration: time.Hour}, policy.Env{Now: monday10, Source: office})
	if err != nil {
		t.Fatal(err)
	}
	plan.Logins[0] = "changed"
	plan.Approvers[0] = "changed"
	rule := p.Roles["oncall"].Requestable[0]
	if rule.Logins[0] != "root" || rule.Approvers[0] != "ops" {
		t.Errorf("editing the plan changed the rule: logins %v, approvers %v", rule.Logins, rule.Approvers)
	}
}

func TestCheckApprove(t *testing.T) {
	tests := []struct {
		name                string
		approver, requester string
		roles               []string
		want                errKind
		substr              string
	}{
		{"approver with the role", "bob", "alice", []string{"ops"}, noError, ""},
		{"approver with one of the roles", "bob", "alice", []string{"dba", "ops"}, noError, ""},
		{"self-approval with the approver role", "bob", "bob", []string{"ops"}, refused, "you cannot approve or deny your own request"},
		{"self-approval without the role", "alice", "alice", []string{"ops"}, refused, "you cannot approve or deny your own request"},
		{"approver lacking the role", "carol", "alice", []string{"ops"}, refused, "approving this request needs one of the roles: ops"},
		{"approver lacking every role", "alice", "dave", []string{"ops", "dba"}, refused, "needs one of the roles: ops, dba"},
		{"unknown approver", "mallory", "alice", []string{"ops"}, refused, "needs one of the roles: ops"},
		{"user without roles", "erin", "alice", []string{"ops"}, refused, "needs one of the roles"},
		{"rule names no approver roles", "bob", "alice", nil, refused, "needs one of the roles"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, testPolicy().CheckApprove(tt.approver, tt.requester, tt.roles), tt.want, tt.substr)
		})
	}
}

func TestCheckGrantUse(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*policy.Policy)
		user    string
		role    string
		targets []string
		logins  []string
		env     policy.Env
		want    errKind
		substr  string
	}{
		{name: "still allowed", user: "alice", role: "developer", targets: []string{"web01"}, logins: []string{"root"}, env: policy.Env{Now: monday10}},
		{name: "database grant without logins", user: "alice", role: "developer", targets: []string{"db01"}, env: policy.Env{Now: monday10}},
		{name: "conditions hold at use", user: "olga", role: "oncall", targets: []string{"web01"}, logins: []string{"root"}, env: policy.Env{Now: monday10, Source: office}},
		{
			name: "source outside the networks at use", user: "olga", role: "oncall", targets: []string{"web01"}, logins: []string{"root"},
			env: policy.Env{Now: monday10, Source: home}, want: refused, substr: "not in an allowed network",
		},
		{
			name: "window closed at use",
			edit: func(p *policy.Policy) {
				p.Roles["developer"].Requestable[0].Conditions.Windows = []policy.Window{{Days: weekdays, From: hm(9, 0), To: hm(17, 0)}}
			},
			user: "alice", role: "developer", targets: []string{"web01"}, logins: []string{"root"},
			env: policy.Env{Now: saturday10}, want: refused, substr: "outside the allowed time window",
		},
		{
			name: "window closed in one rule, another rule still allows",
			user: "sam", role: "sre", targets: []string{"web01"}, logins: []string{"root"}, env: policy.Env{Now: saturday10},
		},
		{
			name: "role removed from the user",
			edit: func(p *policy.Policy) { p.Users["alice"].Roles = []string{"auditor"} },
			user: "alice", role: "developer", targets: []string{"web01"}, logins: []string{"root"},
			env: policy.Env{Now: monday10}, want: refused, substr: "role developer no longer applies to alice",
		},
		{
			name: "role removed from the policy",
			edit: func(p *policy.Policy) { delete(p.Roles, "developer") },
			user: "alice", role: "developer", targets: []string{"web01"}, logins: []string{"root"},
			env: policy.Env{Now: monday10}, want: refused, substr: "role developer no longer applies to alice",
		},
		{
			name: "user removed",
			user: "mallory", role: "developer", targets: []string{"web01"}, logins: []string{"root"},
			env: policy.Env{Now: monday10}, want: refused, substr: "no longer applies",
		},
		{
			name: "rule changed so the target is no longer covered",
			edit: func(p *policy.Policy) { p.Roles["developer"].Requestable[0].Targets.Names = []string{"web02"} },
			user: "alice", role: "developer", targets: []string{"web01"}, logins: []string{"root"},
			env: policy.Env{Now: monday10}, want: refused, substr: "role developer no longer allows web01",
		},
		{
			name: "rule changed so one of the targets is no longer covered",
			edit: func(p *policy.Policy) { p.Roles["ops"].Requestable[0].Targets.Names = []string{"web01"} },
			user: "bob", role: "ops", targets: []string{"web01", "db01"}, logins: []string{"root"},
			env: policy.Env{Now: monday10}, want: refused, substr: "role ops no longer allows web01, db01",
		},
		{
			name: "rule changed so the login is no longer allowed",
			edit: func(p *policy.Policy) { p.Roles["developer"].Requestable[0].Logins = []string{"deploy"} },
			user: "alice", role: "developer", targets: []string{"web01"}, logins: []string{"root"},
			env: policy.Env{Now: monday10}, want: refused, substr: "no longer allows web01",
		},
		{
			name: "target removed from the policy",
			edit: func(p *policy.Policy) { delete(p.Targets, "web01") },
			user: "alice", role: "developer", targets: []string{"web01"}, logins: []string{"root"},
			env: policy.Env{Now: monday10}, want: refused, substr: "no longer allows web01",
		},
		{
			name: "ssh target without a login",
			user: "alice", role: "developer", targets: []string{"web01"},
			env: policy.Env{Now: monday10}, want: refused, substr: "no longer allows web01",
		},
		{
			name: "grant under a role the user holds, other role's rule",
			user: "dave", role: "developer", targets: []string{"web01"}, logins: []string{"deploy"}, env: policy.Env{Now: monday10},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPolicy()
			if tt.edit != nil {
				tt.edit(p)
			}
			checkErr(t, p.CheckGrantUse(tt.user, tt.role, tt.targets, tt.logins, tt.env), tt.want, tt.substr)
		})
	}
}

func TestCheckStanding(t *testing.T) {
	tests := []struct {
		name                string
		user, target, login string
		env                 policy.Env
		want                errKind
		substr              string
	}{
		{"ssh login by name", "alice", "web02", "deploy", policy.Env{Now: monday10}, noError, ""},
		{"ssh login by label", "alice", "web02", "app", policy.Env{Now: monday10}, noError, ""},
		{"ssh login not allowed", "alice", "web02", "root", policy.Env{Now: monday10}, refused, "no standing access to web02"},
		{"ssh without login", "alice", "web02", "", policy.Env{Now: monday10}, refused, "no standing access to web02"},
		{"database by label, empty login", "alice", "db02", "", policy.Env{Now: monday10}, noError, ""},
		{"database with a login not in the access", "alice", "db02", "root", policy.Env{Now: monday10}, refused, "no standing access to db02"},
		{"target not selected", "alice", "web01", "deploy", policy.Env{Now: monday10}, refused, "no standing access to web01"},
		{"database not selected", "alice", "db01", "", policy.Env{Now: monday10}, refused, "no standing access to db01"},
		{"unknown target", "alice", "web99", "root", policy.Env{Now: monday10}, refused, `unknown target "web99"`},
		{"conditions hold", "bob", "web01", "admin", policy.Env{Now: monday10, Source: office}, noError, ""},
		{"conditions hold, ipv6", "bob", "db01", "", policy.Env{Now: monday10, Source: office6}, noError, ""},
		{"conditions hold, ipv4-mapped", "bob", "db02", "", policy.Env{Now: monday10, Source: mapped}, noError, ""},
		{"network condition fails", "bob", "web01", "admin", policy.Env{Now: monday10, Source: home}, refused, "source address 203.0.113.7 is not in an allowed network"},
		{"unknown source", "bob", "db01", "", policy.Env{Now: monday10}, refused, "source address (unknown)"},
		{"window open", "sam", "web01", "root", policy.Env{Now: monday10}, noError, ""},
		{"window closed", "sam", "web01", "root", policy.Env{Now: saturday10}, refused, "outside the allowed time window"},
		{"second role grants", "dave", "web02", "deploy", policy.Env{Now: monday10}, noError, ""},
		{"user without roles", "erin", "web02", "deploy", policy.Env{Now: monday10}, refused, "no standing access to web02"},
		{"unknown user", "mallory", "web02", "deploy", policy.Env{Now: monday10}, refused, "no standing access to web02"},
		{"requestable is not standing", "olga", "web01", "root", policy.Env{Now: monday10, Source: office}, refused, "no standing access to web01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErr(t, testPolicy().CheckStanding(tt.user, tt.target, tt.login, tt.env), tt.want, tt.substr)
		})
	}
}

func TestAccess(t *testing.T) {
	tests := []struct {
		name string
		user string
		env  policy.Env
		want []string
	}{
		{
			name: "standing and requestable",
			user: "alice", env: policy.Env{Now: monday10},
			want: []string{
				"db01 standing=false [] requestable=true [] approvers=[dba ops] max=2h0m0s",
				"db02 standing=true [] requestable=true [] approvers=[dba ops] max=2h0m0s",
				"web01 standing=false [] requestable=true [deploy root] approvers=[ops] max=4h0m0s",
				"web02 standing=true [app deploy] requestable=true [deploy root] approvers=[ops] max=4h0m0s",
			},
		},
		{
			name: "standing with conditions that hold",
			user: "bob", env: policy.Env{Now: monday10, Source: office},
			want: []string{
				"db01 standing=true [] requestable=true [] approvers=[ops] max=0s",
				"db02 standing=true [] requestable=false [] approvers=[] max=0s",
				"web01 standing=true [admin] requestable=true [root] approvers=[ops] max=0s",
				"web02 standing=true [admin] requestable=false [] approvers=[] max=0s",
			},
		},
		{
			name: "standing with failing conditions omitted",
			user: "bob", env: policy.Env{Now: monday10, Source: home},
			want: []string{
				"db01 standing=false [] requestable=true [] approvers=[ops] max=0s",
				"web01 standing=false [] requestable=true [root] approvers=[ops] max=0s",
			},
		},
		{
			name: "union over roles",
			user: "dave", env: policy.Env{Now: saturday10, Source: home},
			want: []string{
				"db01 standing=false [] requestable=true [] approvers=[dba ops] max=2h0m0s",
				"db02 standing=true [] requestable=true [] approvers=[dba ops] max=2h0m0s",
				"web01 standing=false [] requestable=true [deploy root] approvers=[ops] max=4h0m0s",
				"web02 standing=true [app deploy] requestable=true [deploy root] approvers=[ops] max=4h0m0s",
			},
		},
		{
			name: "standing window closed",
			user: "sam", env: policy.Env{Now: saturday10},
			want: []string{"web01 standing=false [] requestable=true [root] approvers=[ops] max=0s"},
		},
		{
			name: "standing window open",
			user: "sam", env: policy.Env{Now: monday10},
			want: []string{"web01 standing=true [root] requestable=true [root] approvers=[ops] max=0s"},
		},
		{name: "permissions only", user: "carol", env: policy.Env{Now: monday10}},
		{name: "user without roles", user: "erin", env: policy.Env{Now: monday10}},
		{name: "unknown user", user: "mallory", env: policy.Env{Now: monday10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, ta := range testPolicy().Access(tt.user, tt.env) {
				got = append(got, fmt.Sprintf("%s standing=%v %v requestable=%v %v approvers=%v max=%s",
					ta.Target.Name, ta.Standing, fmtList(ta.StandingLogins), ta.Requestable, fmtList(ta.RequestLogins),
					fmtList(ta.RequestApprovers), ta.MaxDuration))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Access(%s):\n got  %q\n want %q", tt.user, got, tt.want)
			}
		})
	}
}

func fmtList(s []string) string { return "[" + strings.Join(s, " ") + "]" }

// Access must not hand out the policy's own slices either.
func TestAccessCopies(t *testing.T) {
	p := testPolicy()
	for _, ta := range p.Access("bob", policy.Env{Now: monday10, Source: office}) {
		for i := range ta.StandingLogins {
			ta.StandingLogins[i] = "changed"
		}
		for i := range ta.RequestLogins {
			ta.RequestLogins[i] = "changed"
		}
		for i := range ta.RequestApprovers {
			ta.RequestApprovers[i] = "changed"
		}
	}
	if got := p.Roles["ops"].Standing[0].Logins; !slices.Equal(got, []string{"admin"}) {
		t.Errorf("standing logins changed to %v", got)
	}
	if got := p.Roles["ops"].Requestable[0].Approvers; !slices.Equal(got, []string{"ops"}) {
		t.Errorf("approvers changed to %v", got)
	}
}

func TestHas(t *testing.T) {
	tests := []struct {
		name string
		user string
		want bool
	}{
		{"through the ops role", "bob", true},
		{"through the auditor role", "carol", true},
		{"role without the permission", "alice", false},
		{"undefined role grants nothing", "frank", false},
		{"no roles", "erin", false},
		{"unknown user", "mallory", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := testPolicy().Has(tt.user, policy.PermAudit); got != tt.want {
				t.Errorf("Has(%s, audit) = %v, want %v", tt.user, got, tt.want)
			}
		})
	}
	if testPolicy().Has("bob", policy.Permission("admin")) {
		t.Error("Has(bob, admin) = true for a permission no role grants")
	}
}

func TestHasRole(t *testing.T) {
	tests := []struct {
		name  string
		user  string
		roles []string
		want  bool
	}{
		{"only role", "alice", []string{"developer"}, true},
		{"one of several", "dave", []string{"ops", "developer"}, true},
		{"none of them", "alice", []string{"ops", "auditor"}, false},
		{"empty list", "alice", nil, false},
		{"user without roles", "erin", []string{"developer"}, false},
		{"unknown user", "mallory", []string{"developer"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := testPolicy().HasRole(tt.user, tt.roles); got != tt.want {
				t.Errorf("HasRole(%s, %v) = %v, want %v", tt.user, tt.roles, got, tt.want)
			}
		})
	}
}
