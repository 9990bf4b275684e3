package lines

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReader(t *testing.T) {
	tests := []struct {
		name    string
		input   string
		max     int
		want    []string
		wantErr string // after the lines in want
	}{
		{name: "empty", input: "", max: 10},
		{name: "lines", input: "a\nbb\n\nccc\n", max: 10, want: []string{"a", "bb", "", "ccc"}},
		{name: "no final newline", input: "a\nbb", max: 10, want: []string{"a", "bb"}},
		{name: "crlf", input: "a\r\nb\r\n", max: 10, want: []string{"a", "b"}},
		{name: "lone cr kept", input: "a\rb\n", max: 10, want: []string{"a\rb"}},
		{name: "exactly the limit", input: "12345\n12345", max: 5, want: []string{"12345", "12345"}},
		{name: "exactly the limit with crlf", input: "12345\r\n", max: 5, want: []string{"12345"}},
		{name: "over the limit", input: "ok\n123456\nnext\n", max: 5, want: []string{"ok"}, wantErr: "line 2: line too long (limit 5 bytes)"},
		{name: "over the limit at the end", input: "ok\n123456", max: 5, want: []string{"ok"}, wantErr: "line 2: line too long"},
		{name: "far over the limit", input: strings.Repeat("x", 10000), max: 5, wantErr: "line 1: line too long"},
		{name: "longer than the buffer", input: strings.Repeat("x", 10000) + "\ny", max: 20000, want: []string{strings.Repeat("x", 10000), "y"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReader(iotest.HalfReader(strings.NewReader(tt.input)), tt.max)
			for i, want := range tt.want {
				line, n, err := r.Next()
				if err != nil || string(line) != want || n != i+1 {
					t.Fatalf("line %d = %q, %d, %v; want %q", i+1, line, n, err, want)
				}
			}
			_, _, err := r.Next()
			if tt.wantErr == "" {
				if !errors.Is(err, io.EOF) {
					t.Fatalf("after the lines: %v, want io.EOF", err)
				}
			} else if err == nil || !errors.Is(err, ErrTooLong) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("after the lines: %v, want an error containing %q", err, tt.wantErr)
			}
			if _, _, again := r.Next(); again != err {
				t.Errorf("Next after %v = %v, want the same", err, again)
			}
		})
	}
}

func TestReaderIOError(t *testing.T) {
	errBroken := errors.New("broken")
	r := NewReader(io.MultiReader(strings.NewReader("a\nb"), iotest.ErrReader(errBroken)), 10)
	if line, _, err := r.Next(); err != nil || string(line) != "a" {
		t.Fatalf("first line = %q, %v", line, err)
	}
	if _, _, err := r.Next(); !errors.Is(err, errBroken) {
		t.Errorf("second Next = %v, want %v", err, errBroken)
	}
}
