package mysql

import (
	"errors"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// TestTLSRequired: by default a client that does not ask for TLS is refused
// before its login is read, with a message that says how to connect; the
// same client over TLS gets in.
func TestTLSRequired(t *testing.T) {
	fa := &fakeAccess{}
	f := startFrontEndWith(t, pluginNative, fa, func(c *Config) { c.AllowPlaintext = false })
	var one int
	err := f.open(t, secret, false).QueryRowContext(t.Context(), "SELECT 1").Scan(&one)
	var me *mysql.MySQLError
	if !errors.As(err, &me) || me.Number != erAccessDenied || !strings.Contains(me.Message, "TLS is required") ||
		!strings.Contains(me.Message, "tls=true") {
		t.Fatalf("a client without TLS: %v, want error %d naming TLS", err, erAccessDenied)
	}
	if err := f.open(t, secret, true).QueryRowContext(t.Context(), "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("over TLS: %v, %v", one, err)
	}
}
