package mysql

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/bastionhq/bastion/protocols/dbrec"
)

// Parameter types of the binary protocol (the ones with a fixed size; the
// others are length-encoded strings).
const (
	typeTiny      = 1
	typeShort     = 2
	typeLong      = 3
	typeFloat     = 4
	typeDouble    = 5
	typeNull      = 6
	typeTimestamp = 7
	typeLongLong  = 8
	typeInt24     = 9
	typeDate      = 10
	typeTime      = 11
	typeDateTime  = 12
	typeYear      = 13
)

// param is a decoded parameter of a COM_STMT_EXECUTE: its value as the
// recording shows it, and whether that reads as an SQL literal as it is
// (NULL, a number, 0x… hex) rather than one to quote.
type param struct {
	v    string
	bare bool
}

// literal is p as an SQL literal, for an approver.
func (p param) literal() string {
	if p.bare {
		return p.v
	}
	return quoteLiteral(p.v)
}

// decode decodes the parameters of a COM_STMT_EXECUTE of st; nil when there
// are none or they cannot be decoded.
func (st *prepared) decode(p []byte) []param {
	if st.params == 0 {
		return nil
	}
	ps, types, ok := decodeParams(p, st.params, st.types, st.long)
	if !ok {
		return nil
	}
	st.types = types
	return ps
}

// recorded is ps as the recording shows them (redacted and cut as
// configured).
func (c *clientConn) recorded(ps []param) []string {
	if len(ps) == 0 || c.rec == nil {
		return nil
	}
	vals := make([]string, len(ps))
	for i := range ps {
		vals[i] = c.rec.param(ps[i].v)
	}
	return vals
}

// shown is ps as the approver of a held execution sees them after the
// statement, as SQL literals (redacted where the recording redacts).
func (c *clientConn) shown(ps []param) string {
	if len(ps) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n-- parameters:")
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(',')
		}
		lit := p.literal()
		switch {
		case c.rec != nil && c.rec.redact:
			lit = "<redacted>"
		case len(lit) > dbrec.MaxRecordedParam:
			lit = fmt.Sprintf("%s… (%d bytes)", lit[:dbrec.MaxRecordedParam], len(lit))
		}
		fmt.Fprintf(&b, " %d = %s", i+1, lit)
	}
	return b.String()
}

// quoteLiteral quotes s as a MySQL string literal.
func quoteLiteral(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, "'", "''").Replace(s) + "'"
}

// decodeParams decodes n parameters of a COM_STMT_EXECUTE payload, with the
// types bound earlier when the payload binds none; long marks the
// parameters sent with COM_STMT_SEND_LONG_DATA. It returns the values and
// the types in force.
func decodeParams(p []byte, n int, types []byte, long map[int]bool) ([]param, []byte, bool) {
	if len(p) < 10 {
		return nil, nil, false
	}
	b := p[10:]
	nb := (n + 7) / 8
	if len(b) < nb+1 {
		return nil, nil, false
	}
	nulls := b[:nb]
	bound := b[nb]
	b = b[nb+1:]
	if bound == 1 {
		if len(b) < 2*n {
			return nil, nil, false
		}
		types = append([]byte(nil), b[:2*n]...)
		b = b[2*n:]
	}
	if len(types) != 2*n {
		return nil, nil, false
	}
	out := make([]param, n)
	for i := range n {
		switch {
		case nulls[i/8]&(1<<(i%8)) != 0:
			out[i] = param{"NULL", true}
			continue
		case long[i]:
			out[i] = param{"<long data>", true}
			continue
		}
		v, size, bare, ok := decodeValue(types[2*i], types[2*i+1]&0x80 != 0, b)
		if !ok {
			return nil, nil, false
		}
		out[i], b = param{v, bare}, b[size:]
	}
	return out, types, true
}

// decodeValue decodes one parameter value of type t at the start of b. It
// returns the value, its size, and whether the value reads as an SQL
// literal as it is (a number, NULL, a 0x… hex string) rather than one to
// quote (text, dates and times).
func decodeValue(t byte, unsigned bool, b []byte) (string, int, bool, bool) {
	fixed := func(size int) bool { return len(b) >= size }
	switch t {
	case typeNull:
		return "NULL", 0, true, true
	case typeTiny:
		if !fixed(1) {
			return "", 0, false, false
		}
		if unsigned {
			return strconv.FormatUint(uint64(b[0]), 10), 1, true, true
		}
		return strconv.FormatInt(int64(int8(b[0])), 10), 1, true, true
	case typeShort, typeYear:
		if !fixed(2) {
			return "", 0, false, false
		}
		v := binary.LittleEndian.Uint16(b)
		if unsigned || t == typeYear {
			return strconv.FormatUint(uint64(v), 10), 2, true, true
		}
		return strconv.FormatInt(int64(int16(v)), 10), 2, true, true
	case typeLong, typeInt24:
		if !fixed(4) {
			return "", 0, false, false
		}
		v := binary.LittleEndian.Uint32(b)
		if unsigned {
			return strconv.FormatUint(uint64(v), 10), 4, true, true
		}
		return strconv.FormatInt(int64(int32(v)), 10), 4, true, true
	case typeLongLong:
		if !fixed(8) {
			return "", 0, false, false
		}
		v := binary.LittleEndian.Uint64(b)
		if unsigned {
			return strconv.FormatUint(v, 10), 8, true, true
		}
		return strconv.FormatInt(int64(v), 10), 8, true, true
	case typeFloat:
		if !fixed(4) {
			return "", 0, false, false
		}
		return strconv.FormatFloat(float64(math.Float32frombits(binary.LittleEndian.Uint32(b))), 'g', -1, 32), 4, true, true
	case typeDouble:
		if !fixed(8) {
			return "", 0, false, false
		}
		return strconv.FormatFloat(math.Float64frombits(binary.LittleEndian.Uint64(b)), 'g', -1, 64), 8, true, true
	case typeDate, typeDateTime, typeTimestamp:
		if !fixed(1) || len(b) < 1+int(b[0]) {
			return "", 0, false, false
		}
		return formatDateTime(b[1 : 1+int(b[0])]), 1 + int(b[0]), false, true
	case typeTime:
		if !fixed(1) || len(b) < 1+int(b[0]) {
			return "", 0, false, false
		}
		return formatTime(b[1 : 1+int(b[0])]), 1 + int(b[0]), false, true
	}
	s, size, ok := readLenEncString(b)
	if !ok {
		return "", 0, false, false
	}
	if !utf8.Valid(s) {
		return "0x" + hex.EncodeToString(s), size, true, true
	}
	return string(s), size, false, true
}

func formatDateTime(b []byte) string {
	var y, mo, d, h, mi, s, us int
	if len(b) >= 4 {
		y, mo, d = int(binary.LittleEndian.Uint16(b)), int(b[2]), int(b[3])
	}
	if len(b) >= 7 {
		h, mi, s = int(b[4]), int(b[5]), int(b[6])
	}
	if len(b) >= 11 {
		us = int(binary.LittleEndian.Uint32(b[7:]))
	}
	out := fmt.Sprintf("%04d-%02d-%02d", y, mo, d)
	if len(b) >= 7 {
		out += fmt.Sprintf(" %02d:%02d:%02d", h, mi, s)
	}
	if us != 0 {
		out += fmt.Sprintf(".%06d", us)
	}
	return out
}

func formatTime(b []byte) string {
	if len(b) < 8 {
		return "00:00:00"
	}
	sign := ""
	if b[0] == 1 {
		sign = "-"
	}
	days := int(binary.LittleEndian.Uint32(b[1:]))
	out := fmt.Sprintf("%s%02d:%02d:%02d", sign, days*24+int(b[5]), int(b[6]), int(b[7]))
	if len(b) >= 12 {
		if us := binary.LittleEndian.Uint32(b[8:]); us != 0 {
			out += fmt.Sprintf(".%06d", us)
		}
	}
	return out
}
