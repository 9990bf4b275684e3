package postgres

import (
	"strings"
	"testing"
)

func TestHeldText(t *testing.T) {
	const text = "UPDATE t SET a = $1 WHERE id = $2"
	long := strings.Repeat("x", 2000)
	for _, tc := range []struct {
		name   string
		m      bindMsg
		redact bool
		want   string
	}{
		{"no parameters", bindMsg{}, false, text},
		{"text, quoted as SQL", bindMsg{Params: [][]byte{[]byte("it's"), []byte("7")}, Binary: []bool{false, false}}, false,
			text + "\n-- parameters: $1 = 'it''s', $2 = '7'"},
		{"NULL is not the string NULL", bindMsg{Params: [][]byte{nil, []byte("NULL")}, Binary: []bool{false, false}}, false,
			text + "\n-- parameters: $1 = NULL, $2 = 'NULL'"},
		{"binary as bytea hex", bindMsg{Params: [][]byte{{0, 0, 0, 7}}, Binary: []bool{true}}, false,
			text + `\n-- parameters: $1 = '\x00000007'`},
		{"invalid UTF-8 as hex", bindMsg{Params: [][]byte{{0xff, 'a'}}, Binary: []bool{false}}, false,
			text + `\n-- parameters: $1 = '\xff61'`},
		{"redacted", bindMsg{Params: [][]byte{[]byte("secret"), nil}, Binary: []bool{false, false}}, true,
			text + "\n-- parameters: $1 = <redacted>, $2 = <redacted>"},
		{"long values cut, with their length", bindMsg{Params: [][]byte{[]byte(long)}, Binary: []bool{false}}, false,
			text + "\n-- parameters: $1 = '" + long[:1024] + "' (cut from 2000 bytes)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := strings.ReplaceAll(tc.want, `\n`, "\n")
			if got := heldText(text, tc.m, tc.redact); got != want {
				t.Fatalf("heldText = %q, want %q", got, want)
			}
		})
	}
}
