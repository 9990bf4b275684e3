package pgsql

import "strings"

// backslashHiding are PostgreSQL's names and aliases, as its
// clean_encoding_name leaves them (lower case, letters and digits only), of
// the client encodings in which the second byte of a character can be an
// ASCII byte, a backslash among them: BIG5, GB18030, GBK, JOHAB, SJIS,
// SHIFT_JIS_2004 and UHC. PostgreSQL allows them only as client encodings
// and converts what the client sends before it reads it, so in
// E'\x95\'…' the server sees one SJIS character and a closing quote where
// a parser of the raw bytes sees an escaped quote: the two would not read
// the same statements.
var backslashHiding = map[string]bool{
	"big5": true, "win950": true, "windows950": true,
	"gb18030": true,
	"gbk":     true, "win936": true, "windows936": true,
	"johab": true,
	"sjis":  true, "shiftjis": true, "mskanji": true, "win932": true, "windows932": true,
	"shiftjis2004": true,
	"uhc":          true, "win949": true, "windows949": true,
}

// HidesBackslash reports whether name, a PostgreSQL client encoding in any
// of the spellings PostgreSQL accepts, is one in which a backslash can be
// part of a character.
func HidesBackslash(name string) bool {
	var b strings.Builder
	for _, c := range strings.ToLower(name) {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			b.WriteRune(c)
		}
	}
	return backslashHiding[b.String()]
}
