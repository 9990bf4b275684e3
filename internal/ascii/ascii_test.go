package ascii

import "testing"

func TestContainsFold(t *testing.T) {
	for _, tt := range []struct {
		s, word string
		want    bool
	}{
		{"ALTER ROLE a PASSWORD 'x'", "password", true},
		{"alter role a Password 'x'", "PASSWORD", true},
		{"SELECT password_hash FROM users", "password", true},
		{"SELECT passwor", "password", false},
		{"SELECT 1", "password", false},
		{"", "password", false},
		{"x", "", true},
		{"IDENTIFIED", "identified", true},
	} {
		if got := ContainsFold(tt.s, tt.word); got != tt.want {
			t.Errorf("ContainsFold(%q, %q) = %v, want %v", tt.s, tt.word, got, tt.want)
		}
	}
}
