package provision

import (
	"strings"
	"testing"
)

func TestRoleName(t *testing.T) {
	long := strings.Repeat("x", 80)
	for _, tc := range []struct {
		name, user string
		id         int64
		want       string
	}{
		{name: "plain", user: "alice", id: 7, want: "bastion_alice_7"},
		{name: "upper case and punctuation", user: "Bob.O'Neil-2", id: 12, want: "bastion_bob_o_neil_2_12"},
		{name: "quote and space", user: `x" y`, id: 1, want: "bastion_x__y_1"},
		{name: "non-ASCII", user: "zoë", id: 3, want: "bastion_zo__3"},
		{name: "cut to 63 bytes, id kept", user: long, id: 123456, want: "bastion_" + long[:63-8-7] + "_123456"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := RoleName(tc.user, tc.id)
			if got != tc.want {
				t.Fatalf("RoleName(%q, %d) = %q, want %q", tc.user, tc.id, got, tc.want)
			}
			if len(got) > maxRoleName {
				t.Fatalf("%q is %d bytes", got, len(got))
			}
			if id, ok := requestOf(got); !ok || id != tc.id {
				t.Fatalf("requestOf(%q) = %d, %v", got, id, ok)
			}
		})
	}
}

// TestRequestOf: only names RoleName makes are Bastion's; any other role,
// even one starting bastion_, is left alone by a sweep.
func TestRequestOf(t *testing.T) {
	for _, name := range []string{"bastion_admin", "bastion_alice_", "bastion_alice_0", "Bastion_alice_1", "bastion_al-ice_1",
		"bastion_alice_99999999999999999999", "app_readonly", "bastion_" + strings.Repeat("a", 60) + "_1"} {
		if id, ok := requestOf(name); ok {
			t.Errorf("requestOf(%q) = %d, want not Bastion's", name, id)
		}
	}
}

func TestQuoteLiteral(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "abc", "'abc'"},
		{"quote", "a'b", "'a''b'"},
		{"backslash", `a\'b`, `E'a\\''b'`},
		{"verifier", "SCRAM-SHA-256$4096:c2FsdA==$a+b/c=:d", "'SCRAM-SHA-256$4096:c2FsdA==$a+b/c=:d'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := quoteLiteral(tc.in); got != tc.want {
				t.Errorf("quoteLiteral(%q) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
}

func TestNewPassword(t *testing.T) {
	a, b := newPassword(), newPassword()
	if len(a) != 32 || a == b {
		t.Fatalf("passwords %q, %q", a, b)
	}
	for _, r := range a + b {
		if !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", r) {
			t.Fatalf("password has %q", r)
		}
	}
}
