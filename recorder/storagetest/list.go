package storagetest

import (
	"strings"
	"testing"

	"github.com/bastionhq/bastion/recorder"
)

func testList(t *testing.T, st recorder.Storage) {
	// Created out of order; "a.b" and "a-c" sort before "a/1" (the bytes
	// '-' and '.' come before '/').
	for _, name := range []string{"b", "a/2", "ab", "a/1", "a.b", "c/d/e", "a-c", "a/sub/3"} {
		put(t, st, name, strings.Repeat("x", len(name)))
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"", []string{"a-c", "a.b", "a/1", "a/2", "a/sub/3", "ab", "b", "c/d/e"}},
		{"a", []string{"a-c", "a.b", "a/1", "a/2", "a/sub/3", "ab"}},
		{"a/", []string{"a/1", "a/2", "a/sub/3"}},
		{"a/s", []string{"a/sub/3"}},
		{"a/1", []string{"a/1"}},
		{"c/d/", []string{"c/d/e"}},
		{"c/d/e", []string{"c/d/e"}},
		{"c/d/e/", nil},
		{"zzz", nil},
		{"zzz/", nil},
		{"b/", nil},
		{"a//", nil},
	}
	for _, tt := range tests {
		t.Run("prefix="+tt.prefix, func(t *testing.T) {
			infos, err := st.List(t.Context(), tt.prefix)
			if err != nil {
				t.Fatalf("List(%q): %v", tt.prefix, err)
			}
			var got []string
			for _, info := range infos {
				got = append(got, info.Name)
				if info.Size != int64(len(info.Name)) {
					t.Errorf("%s: size %d, want %d", info.Name, info.Size, len(info.Name))
				}
				if info.ModTime.IsZero() {
					t.Errorf("%s: no ModTime", info.Name)
				}
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("List(%q) = %q, want %q", tt.prefix, got, tt.want)
			}
		})
	}
}
