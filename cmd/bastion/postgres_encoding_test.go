package main

import (
	"context"
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
// backslash can be part of a character are refused, however they are
// chosen; a switch the rules cannot see ends the session.
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
		for sql, denied := range map[string]bool{
			"SET client_encoding TO 'SJIS'":                            true,
			"SET NAMES 'windows-936'":                                  true,
			"SELECT set_config('client_encoding', 'BIG5', false)":      true,
			"DO $$ BEGIN EXECUTE 'SET client_encoding TO uhc'; END $$": true,
			"SET NAMES 'LATIN1'":                                       false,
			"RESET client_encoding":                                    false,
		} {
			_, err := conn.Exec(ctx, sql).ReadAll()
			switch {
			case !denied && err != nil:
				t.Errorf("%s: %v", sql, err)
			case denied && err == nil:
				t.Errorf("%s was allowed", sql)
			case denied:
				if pe := pgError(t, err); pe.Code != "42501" || !strings.Contains(pe.Message, "backslash") {
					t.Errorf("%s: %s %s", sql, pe.Code, pe.Message)
				}
			}
		}
		if got := conn.ParameterStatus("client_encoding"); got != "UTF8" {
			t.Fatalf("client_encoding is %s after the refusals", got)
		}
	})

	t.Run("by a function the rules cannot see into", func(t *testing.T) {
		if _, err := admin.Exec(ctx, `CREATE OR REPLACE FUNCTION public.to_sjis() RETURNS text LANGUAGE sql
			AS $$ SELECT set_config('client_encoding', 'SJIS', false) $$`); err != nil {
			t.Fatal(err)
		}
		conn, err := pgconn.Connect(ctx, orders.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(ctx, "SELECT public.to_sjis()").ReadAll()
		if pe := pgError(t, err); pe.Severity != "FATAL" || !strings.Contains(pe.Message, "client encoding became SJIS") {
			t.Fatalf("after the switch: %s %s %s", pe.Severity, pe.Code, pe.Message)
		}
		if _, err := conn.Exec(ctx, smuggle).ReadAll(); err == nil {
			t.Fatal("the session went on after its encoding became SJIS")
		}
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
