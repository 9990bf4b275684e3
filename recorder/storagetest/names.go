package storagetest

import (
	"errors"
	"strings"
	"testing"

	"github.com/bastionhq/bastion/recorder"
)

// invalidNames are names every Storage rejects with recorder.ErrInvalidName.
var invalidNames = []struct {
	name, why string
}{
	{"", "empty"},
	{"/abs", "absolute"},
	{"../up", "parent"},
	{"a/../b", "parent inside"},
	{"a/..", "parent at the end"},
	{"..", "parent alone"},
	{"a..b", "two dots"},
	{".", "dot"},
	{"./a", "leading dot element"},
	{"a/./b", "dot element"},
	{"a//b", "empty element"},
	{"a/", "trailing slash"},
	{"a b", "space"},
	{"a\\b", "backslash"},
	{"a:b", "colon"},
	{"é", "non-ASCII"},
	{"a\x00b", "NUL"},
	{"a\nb", "newline"},
	{"a*", "glob"},
	{strings.Repeat("a", 256), "element too long"},
	{strings.Repeat("abcdefg/", 128) + "x", "name too long"},
}

// validNames are names every Storage accepts.
var validNames = []string{
	"a",
	"A-Z_a-z.0-9",
	".hidden",
	"2031/03/04/ssh-42.cast",
	"db/orders/2031-03-04T05.06.07Z_9f3a.jsonl",
	strings.Repeat("a", 255),
	strings.Repeat("abcdefg/", 127) + "xyz", // 1019 bytes
}

func testInvalidNames(t *testing.T, st recorder.Storage) {
	put(t, st, "a/b", "x") // so that a rejected "a/../b" cannot be mistaken for a miss
	for _, tt := range invalidNames {
		t.Run(tt.why, func(t *testing.T) {
			check := func(op string, err error) {
				t.Helper()
				if !errors.Is(err, recorder.ErrInvalidName) {
					t.Errorf("%s(%q): error %v, want one wrapping recorder.ErrInvalidName", op, tt.name, err)
				}
			}
			if err := recorder.ValidateName(tt.name); !errors.Is(err, recorder.ErrInvalidName) {
				t.Errorf("ValidateName(%q) = %v, want an error wrapping ErrInvalidName", tt.name, err)
			}
			o, err := st.Create(t.Context(), tt.name)
			if err == nil {
				_ = o.Close() // the error is what the test reports
			}
			check("Create", err)
			_, err = st.Open(t.Context(), tt.name)
			check("Open", err)
			_, err = st.Stat(t.Context(), tt.name)
			check("Stat", err)
			check("Delete", st.Delete(t.Context(), tt.name))
		})
	}
	checkContent(t, st, "a/b", "x")
}

func testValidNames(t *testing.T, st recorder.Storage) {
	for _, name := range validNames {
		if err := recorder.ValidateName(name); err != nil {
			t.Errorf("ValidateName(%q): %v", name, err)
			continue
		}
		put(t, st, name, name)
		checkContent(t, st, name, name)
	}
	infos, err := st.List(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != len(validNames) {
		t.Errorf("List found %d objects, want %d", len(infos), len(validNames))
	}
}

func testInvalidPrefix(t *testing.T, st recorder.Storage) {
	for _, prefix := range []string{"a b", "é", "a\x00", strings.Repeat("a", 1025)} {
		if _, err := st.List(t.Context(), prefix); !errors.Is(err, recorder.ErrInvalidName) {
			t.Errorf("List(%q): error %v, want one wrapping recorder.ErrInvalidName", prefix, err)
		}
	}
}
