package querylog_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/bastionhq/bastion/recorder/querylog"
)

// FuzzReader reads arbitrary input. Every event it returns must be valid and
// must read back the same after the Writer writes it. The seed corpus is in
// testdata/fuzz/FuzzReader; the golden files are added too.
func FuzzReader(f *testing.F) {
	for _, tt := range goldenTests {
		if b, err := os.ReadFile(filepath.Join("testdata", tt.name+".jsonl")); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := querylog.NewReader(bytes.NewReader(data))
		for {
			e, err := r.Next()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				if !strings.HasPrefix(err.Error(), "querylog: ") || !strings.Contains(err.Error(), "line ") {
					t.Fatalf("error without the package or the line: %v", err)
				}
				return
			}
			if err := e.Validate(); err != nil {
				t.Fatalf("Reader returned an invalid event %+v: %v", e, err)
			}
			if !utf8.ValidString(e.Statement) || !utf8.ValidString(e.User) {
				t.Fatalf("invalid UTF-8 in %+v", e)
			}
			var buf bytes.Buffer
			if err := querylog.NewWriter(&buf).Write(e); err != nil {
				t.Fatalf("Writer rejects the event the Reader returned: %v\n%+v", err, e)
			}
			again, err := querylog.NewReader(&buf).Next()
			if err != nil {
				t.Fatalf("reading back %s: %v", buf.Bytes(), err)
			}
			checkEvent(t, again, e)
		}
	})
}
