package mysql

import (
	"os"
	"regexp"
	"strconv"
	"testing"
)

// TestErrorCodesInServerRange: every error number Bastion sends is in the
// server's range. libmariadb reads a client-range number (2000–2999, such
// as 2003) in a server's ERR packet as a malformed packet, and shows the
// user that instead of Bastion's message.
func TestErrorCodesInServerRange(t *testing.T) {
	src, err := os.ReadFile("messages.go")
	if err != nil {
		t.Fatal(err)
	}
	codes := regexp.MustCompile(`(?m)^\s*(er[A-Z]\w*)\s*=\s*(\d+)`).FindAllStringSubmatch(string(src), -1)
	if len(codes) < 10 {
		t.Fatalf("found %d error numbers in messages.go; the pattern no longer matches its constants", len(codes))
	}
	for _, m := range codes {
		n, _ := strconv.Atoi(m[2])
		if n < 1000 || n >= 2000 {
			t.Errorf("%s = %d is outside the server's range 1000–1999", m[1], n)
		}
	}
}
