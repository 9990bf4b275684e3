package audit

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"
)

// Text in events comes from users: a command line, a SQL statement, a login
// name may hold any bytes. The hash is taken over a JSON encoding, and JSON
// cannot carry bytes that are not UTF-8: encoding/json turns each into
// U+FFFD, so two different byte strings hashed alike, and a store that kept
// the JSON (as details are kept) read back text whose hash was not the one
// sealed — one byte broke `audit verify` from that event on, for good. NUL is
// valid UTF-8 but a PostgreSQL text column refuses it.
//
// So Seal first rewrites the event into its canonical form, and that form is
// both what is hashed and what a store keeps:
//
//   - A field that is valid UTF-8 without NUL — every field Bastion wrote
//     before this form existed, unless it held such bytes — is unchanged, so
//     chains sealed by earlier versions verify as they did.
//   - Any other field is escaped: each backslash becomes `\\`, and each NUL
//     byte and each byte that is not part of a valid UTF-8 sequence becomes
//     `\xHH` (lower-case hex). The result is valid UTF-8 without NUL, and the
//     original bytes can be recovered from it exactly (see Unescape).
//   - The event's Details then name every escaped field under the key
//     EscapedDetail, comma-separated, in a fixed order: "type", "actor",
//     "subject", "target", "source", "outcome", "reason", then
//     "details.KEY" for each details entry whose key or value was escaped.
//
// An auditor therefore sees `ssh alice@bastion $'bogus\x89cmd'` recorded as
// reason `bogus\x89cmd` with details escaped=reason, and can tell it from a
// user who typed the four characters `\x89` (that reason is not listed as
// escaped). Details keys are chosen by Bastion's code, not by users; a key
// that needed escaping is kept escaped, and should it then equal another key,
// the escaped entry replaces that one.

// EscapedDetail is the Details key that lists the fields Seal escaped.
const EscapedDetail = "escaped"

// needsEscape reports whether s is not kept as it is in the canonical form.
func needsEscape(s string) bool {
	return !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0
}

// escape returns s in canonical form and whether it had to change.
func escape(s string) (string, bool) {
	if !needsEscape(s) {
		return s, false
	}
	const hex = "0123456789abcdef"
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1, r == 0:
			b.WriteString(`\x`)
			b.WriteByte(hex[s[i]>>4])
			b.WriteByte(hex[s[i]&0xf])
		case r == '\\':
			b.WriteString(`\\`)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String(), true
}

// Unescape returns the original bytes of a field that Seal escaped (one named
// in Details[EscapedDetail]). It is the inverse of the escaping; text that is
// not in escaped form is returned as it is.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && s[i+1] == '\\' {
			b.WriteByte('\\')
			i++
			continue
		}
		if s[i] == '\\' && i+3 < len(s) && s[i+1] == 'x' && isHex(s[i+2]) && isHex(s[i+3]) {
			b.WriteByte(unhex(s[i+2])<<4 | unhex(s[i+3]))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }

func unhex(c byte) byte {
	if c <= '9' {
		return c - '0'
	}
	return c - 'a' + 10
}

// Canonical returns e in the canonical form that Seal hashes and a store
// keeps (see the comment on EscapedDetail's declaration). It does not modify
// e's Details map; for an event already canonical it returns e unchanged.
func (e Event) Canonical() Event {
	var escaped []string
	field := func(name string, p *string) {
		if s, changed := escape(*p); changed {
			*p = s
			escaped = append(escaped, name)
		}
	}
	field("type", &e.Type)
	field("actor", &e.Actor)
	field("subject", &e.Subject)
	field("target", &e.Target)
	field("source", &e.Source)
	field("outcome", &e.Outcome)
	field("reason", &e.Reason)

	var entries []string
	for _, k := range slices.Sorted(maps.Keys(e.Details)) {
		if needsEscape(k) || needsEscape(e.Details[k]) {
			entries = append(entries, k)
		}
	}
	if len(entries) > 0 {
		d := maps.Clone(e.Details)
		var names []string
		for _, k := range entries {
			v := d[k]
			delete(d, k)
			ek, _ := escape(k)
			ev, _ := escape(v)
			d[ek] = ev
			names = append(names, "details."+ek)
		}
		// Sorted by escaped key, so the list does not depend on map order
		// even when two raw keys escape alike.
		slices.Sort(names)
		names = slices.Compact(names)
		escaped = append(escaped, names...)
		e.Details = d
	}
	if len(escaped) > 0 {
		if len(entries) == 0 { // not cloned above
			e.Details = maps.Clone(e.Details)
		}
		if e.Details == nil {
			e.Details = map[string]string{}
		}
		e.Details[EscapedDetail] = strings.Join(escaped, ",")
	}
	return e
}

// legacyHash is the hash that versions before the canonical form sealed for
// an event whose details held bytes that were not UTF-8: encoding/json had
// written each such byte as the escape \ufffd, and the store kept the JSON,
// so the details read back hold the character U+FFFD, which encoding/json
// writes as itself. Re-encoding U+FFFD in the details as \ufffd gives back
// the bytes that were hashed. An event sealed in canonical form never
// matches it by accident: its details hold no such bytes, so its encoding
// has no \ufffd escape in them. (An old event whose details held both such
// bytes and a real U+FFFD still does not verify: which U+FFFD was which is
// lost.)
func (e *Event) legacyHash() (string, bool) {
	const replacement = "\ufffd"
	found := false
	for k, v := range e.Details {
		if strings.Contains(k, replacement) || strings.Contains(v, replacement) {
			found = true
			break
		}
	}
	if !found {
		return "", false
	}
	b, err := json.Marshal(e.Details)
	if err != nil {
		panic("audit: encode details: " + err.Error())
	}
	details := json.RawMessage(strings.ReplaceAll(string(b), replacement, `\ufffd`))
	return e.hashWith(details), true
}
