package pgsql

import "testing"

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"CREATE ROLE app LOGIN PASSWORD 'hunter2'":                                            "CREATE ROLE app LOGIN PASSWORD '<redacted>'",
		"alter user app with encrypted password E'hun\\'ter2' VALID UNTIL 'infinity'":         "alter user app with encrypted password '<redacted>' VALID UNTIL 'infinity'",
		"ALTER ROLE app PASSWORD $$x'y$$; SELECT 'password'":                                  "ALTER ROLE app PASSWORD '<redacted>'; SELECT 'password'",
		"ALTER ROLE app PASSWORD /* c */ 'x'":                                                 "ALTER ROLE app PASSWORD /* c */ '<redacted>'",
		"ALTER ROLE app PASSWORD NULL":                                                        "ALTER ROLE app PASSWORD NULL",
		"CREATE USER MAPPING FOR app SERVER s OPTIONS (user 'u', password 'p')":               "CREATE USER MAPPING FOR app SERVER s OPTIONS (user 'u', password '<redacted>')",
		"CREATE SUBSCRIPTION s CONNECTION 'host=db user=r password=p dbname=x' PUBLICATION p": "CREATE SUBSCRIPTION s CONNECTION '<redacted>' PUBLICATION p",
		"SELECT dblink_connect('c', 'postgresql://r:p@db/x')":                                 "SELECT dblink_connect('c', '<redacted>')",
		"SELECT dblink_connect('c', 'postgresql://db/x')":                                     "SELECT dblink_connect('c', 'postgresql://db/x')",
		"SELECT * FROM users WHERE password_hash = $1":                                        "SELECT * FROM users WHERE password_hash = $1",
		"SELECT 1":                              "SELECT 1",
		"ALTER ROLE app PASSWORD 'unterminated": unscannable,
	} {
		if got := Redact(in); got != want {
			t.Errorf("Redact(%q)\n got %q\nwant %q", in, got, want)
		}
	}
}
