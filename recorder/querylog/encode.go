package querylog

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendEvent appends e to dst as one line of a query log: the bytes, newline
// included, that an encoding/json Encoder with SetEscapeHTML(false) writes
// for e, without its reflection. e must be valid (see Event.Validate) and its
// time in UTC; Writer.Write makes sure of both.
//
// Fields are written in the order of Event's fields and left out as its
// omitempty tags say. It allocates only to grow dst.
func appendEvent(dst []byte, e Event) []byte {
	dst = append(dst, `{"time":"`...)
	dst = e.Time.AppendFormat(dst, time.RFC3339Nano) // what Time.MarshalJSON writes for years 1 to 9999
	dst = append(dst, `","type":`...)
	dst = appendString(dst, e.Type)
	dst = appendStringField(dst, `,"user":`, e.User)
	dst = appendStringField(dst, `,"target":`, e.Target)
	dst = appendStringField(dst, `,"database":`, e.Database)
	dst = appendStringField(dst, `,"request_id":`, e.RequestID)
	dst = appendStringField(dst, `,"client_addr":`, e.ClientAddr)
	dst = appendStringField(dst, `,"protocol":`, e.Protocol)
	dst = appendStringField(dst, `,"statement":`, e.Statement)
	if len(e.Params) > 0 {
		dst = append(dst, `,"params":[`...)
		for i, p := range e.Params {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, p)
		}
		dst = append(dst, ']')
	}
	dst = appendStringField(dst, `,"decision":`, e.Decision)
	dst = appendStringField(dst, `,"rule":`, e.Rule)
	if e.DurationMS != 0 { // -0 too, as omitempty does
		dst = append(dst, `,"duration_ms":`...)
		dst = appendFloat(dst, e.DurationMS)
	}
	dst = appendStringField(dst, `,"tag":`, e.Tag)
	if e.Rows != 0 {
		dst = append(dst, `,"rows":`...)
		dst = strconv.AppendInt(dst, e.Rows, 10)
	}
	dst = appendStringField(dst, `,"error":`, e.Error)
	dst = appendStringField(dst, `,"reason":`, e.Reason)
	return append(dst, "}\n"...)
}

// appendStringField appends key, which holds the comma, the quoted name and
// the colon, and s, unless s is empty.
func appendStringField(dst []byte, key, s string) []byte {
	if s == "" {
		return dst
	}
	return appendString(append(dst, key...), s)
}

// hex holds the digits of \u00XX escapes, lowercase as encoding/json writes
// them.
const hex = "0123456789abcdef"

// appendString appends s as a JSON string the way encoding/json's
// appendString does with HTML escaping off: '"' and '\\' are escaped, control
// characters are written as \b, \f, \n, \r, \t or \u00XX, each byte of
// invalid UTF-8 as \ufffd, and U+2028 and U+2029 as \u2028 and \u2029 (for
// JSONP). Everything else, DEL included, is written as is.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0 // s[start:i] is yet to be appended, unchanged
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= ' ' && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[b>>4], hex[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendFloat appends f, which must be finite, the way encoding/json's
// float64 encoder does: like ES6's number to string conversion, with
// exponents from below 1e-6 and from 1e21 on, not padded to two digits.
func appendFloat(dst []byte, f float64) []byte {
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// "e-09" to "e-9"; the number is at least "1e-07" long.
		n := len(dst)
		if dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}
