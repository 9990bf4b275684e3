package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// smuggle is one string that the rules' parser, reading it as UTF-8
// (0xC4 0x95 is "ĕ"), sees as a SELECT of two string constants, the
// backslash escaping the quote after it; PostgreSQL, reading it as SJIS
// (0xC4 is a katakana, 0x95 0x5C is "表"), runs it as three statements,
// the second a DELETE.
const smuggle = "SELECT E'\xC4\x95\\' AS a; DELETE FROM secrets WHERE id > 0; SELECT ', ' AS b --'"

// testEncodings: where query rules apply, the client encodings in which a
// backslash can be part of a character, and standard_conforming_strings
// off, are refused however they come; a switch the rules cannot see ends
// the session.
func testEncodings(t *testing.T, p *pgBastion, orders, plain dbToken) {
	ctx := t.Context()
	admin, err := pgx.Connect(ctx, p.pg.DSN(orders.Database))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	secrets := func() int {
		t.Helper()
		var n int
		if err := admin.QueryRow(ctx, "SELECT count(*) FROM secrets").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := secrets()

	t.Run("at login", func(t *testing.T) {
		for _, enc := range []string{"SJIS", "Shift_JIS", "big5", "GBK"} {
			conn, err := pgconn.Connect(ctx, orders.URL+"&client_encoding="+enc)
			if err == nil {
				conn.Exec(ctx, smuggle).ReadAll()
				conn.Close(ctx)
				t.Fatalf("a session with client_encoding %s was let in (secrets: %d rows, %d before)", enc, secrets(), before)
			}
			if pe := pgError(t, err); pe.Code != "42501" || !strings.Contains(pe.Message, "client_encoding "+enc) {
				t.Fatalf("client_encoding %s: %s %s", enc, pe.Code, pe.Message)
			}
		}
		// Encodings that keep ASCII bytes ASCII are fine.
		conn, err := pgconn.Connect(ctx, orders.URL+"&client_encoding=EUC_JP")
		if err != nil {
			t.Fatal(err)
		}
		conn.Close(ctx)
	})

	t.Run("by statement", func(t *testing.T) {
		conn, err := pgconn.Connect(ctx, orders.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		for _, tt := range []struct {
			sql    string
			denied bool
		}{
			{"SET client_encoding TO 'SJIS'", true},
			{"SET NAMES 'windows-936'", true},
			{"SELECT set_config('client_encoding', 'BIG5', false)", true},
			{"DO $$ BEGIN EXECUTE 'SET client_encoding TO uhc'; END $$", true},
			{"SET standard_conforming_strings = off", true},
			{"SELECT set_config('standard_' || 'conforming_strings', 'off', false)", true},
			{"SELECT current_setting('standard_conforming_strings')", false},
			{"SET NAMES 'LATIN1'", false},
			{"RESET client_encoding", false}, // back to the session's first: UTF8
		} {
			sql, denied := tt.sql, tt.denied
			_, err := conn.Exec(ctx, sql).ReadAll()
			switch {
			case !denied && err != nil:
				t.Errorf("%s: %v", sql, err)
			case denied && err == nil:
				t.Errorf("%s was allowed", sql)
			case denied:
				if pe := pgError(t, err); pe.Code != "42501" || !strings.Contains(pe.Message, "read statements differently from the rules' parser") {
					t.Errorf("%s: %s %s", sql, pe.Code, pe.Message)
				}
			}
		}
		if got := conn.ParameterStatus("client_encoding"); got != "UTF8" {
			t.Fatalf("client_encoding is %s after the refusals", got)
		}
	})

	// byFunction has a function already in the database (which the rules
	// see by name only) set setting to value, and checks that the session
	// ends with a FATAL naming want before it runs anything else.
	byFunction := func(t *testing.T, setting, value, want, next string) {
		if _, err := admin.Exec(ctx, fmt.Sprintf(`CREATE OR REPLACE FUNCTION public.switch_setting() RETURNS text LANGUAGE sql
			AS $$ SELECT set_config('%s', '%s', false) $$`, setting, value)); err != nil {
			t.Fatal(err)
		}
		conn, err := pgconn.Connect(ctx, orders.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(ctx, "SELECT public.switch_setting()").ReadAll()
		if pe := pgError(t, err); pe.Severity != "FATAL" || !strings.Contains(pe.Message, want) {
			t.Fatalf("after the switch: %s %s %s", pe.Severity, pe.Code, pe.Message)
		}
		if _, err := conn.Exec(ctx, next).ReadAll(); err == nil {
			t.Fatalf("the session went on after %s became %s", setting, value)
		}
	}
	t.Run("by a function the rules cannot see into", func(t *testing.T) {
		byFunction(t, "client_encoding", "SJIS", "client_encoding SJIS", smuggle)
	})

	t.Run("standard_conforming_strings off by default", func(t *testing.T) {
		// Off, 'x\' , ' ; DELETE …' is one string to the server and a
		// string, a comma and another string to the rules' parser.
		if _, err := admin.Exec(ctx, "ALTER DATABASE "+orders.Database+" SET standard_conforming_strings = off"); err != nil {
			t.Fatal(err)
		}
		defer admin.Exec(context.Background(), "ALTER DATABASE "+orders.Database+" RESET standard_conforming_strings")
		// A new target connection (no kept one has these parameters)
		// starts with the database's default.
		conn, err := pgconn.Connect(ctx, orders.URL+"&application_name=bastion-scs-off")
		if err == nil {
			conn.Close(ctx)
			t.Fatal("a session whose target reads backslashes as escapes was let in")
		}
		if pe := pgError(t, err); pe.Code != "42501" || !strings.Contains(pe.Message, "standard_conforming_strings is off") {
			t.Fatalf("login: %s %s", pe.Code, pe.Message)
		}
	})

	t.Run("standard_conforming_strings off by a function", func(t *testing.T) {
		byFunction(t, "standard_conforming_strings", "off", "standard_conforming_strings is off",
			`SELECT 'x\' , ' ; DELETE FROM secrets WHERE id > 0; --'`)
	})

	if got := secrets(); got != before {
		t.Fatalf("secrets has %d rows, %d before", got, before)
	}

	t.Run("without query rules", func(t *testing.T) {
		conn, err := pgconn.Connect(ctx, plain.URL+"&client_encoding=SJIS")
		if err != nil {
			t.Fatalf("a target without query rules refused client_encoding SJIS: %v", err)
		}
		conn.Close(ctx)
	})
}

// testTooDeep: a statement nested deep enough to overflow libpg_query's C
// stack (which killed Bastion, every session with it), or too large to
// parse at a bounded cost, is refused like any statement that cannot be
// parsed, and the session goes on.
func testTooDeep(t *testing.T, orders, plain dbToken) {
	ctx := t.Context()
	for _, tt := range []struct {
		name, sql string
		refusal   string // what the refusal where rules apply says
		// serverRuns: without rules it goes to the server, which runs it
		// (else the server's own parser refuses it).
		serverRuns bool
	}{
		{"deep", "SELECT 1" + strings.Repeat("+1", 50000), "nests too deeply", false},
		{"large", "SELECT count(*) FROM (VALUES (1)) v(x) WHERE x IN (" + strings.Repeat("1, ", 400000) + "1)", "larger than Bastion parses", true},
	} {
		for _, tok := range []dbToken{orders, plain} {
			conn, err := pgconn.Connect(ctx, tok.URL)
			if err != nil {
				t.Fatal(err)
			}
			_, err = conn.Exec(ctx, tt.sql).ReadAll()
			switch {
			case tok.Database == orders.Database:
				if pe := pgError(t, err); pe.Code != "42501" || !strings.Contains(pe.Message, tt.refusal) {
					t.Errorf("%s on %s: %s %s", tt.name, tok.Database, pe.Code, pe.Message)
				}
			case tt.serverRuns && err != nil:
				t.Errorf("%s on %s: %v", tt.name, tok.Database, err)
			case !tt.serverRuns && err == nil:
				t.Errorf("%s on %s: the server ran it", tt.name, tok.Database)
			}
			if _, err := conn.Exec(ctx, "SELECT 1").ReadAll(); err != nil {
				t.Fatalf("%s on %s: the session did not go on: %v", tt.name, tok.Database, err)
			}
			conn.Close(ctx)
		}
	}
}
