package mysql

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
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

// params decodes the parameters of a COM_STMT_EXECUTE for the recording;
// nil when there are none or they cannot be decoded.
func (c *clientConn) params(st *prepared, p []byte) []string {
	if st.params == 0 || c.rec == nil {
		return nil
	}
	vals, types, ok := decodeParams(p, st.params, st.types, st.long)
	if !ok {
		return nil
	}
	st.types = types
	for i := range vals {
		vals[i] = c.rec.param(vals[i])
	}
	return vals
}

// decodeParams decodes n parameters of a COM_STMT_EXECUTE payload, with the
// types bound earlier when the payload binds none; long marks the
// parameters sent with COM_STMT_SEND_LONG_DATA. It returns the values and
// the types in force.
func decodeParams(p []byte, n int, types []byte, long map[int]bool) ([]string, []byte, bool) {
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
	out := make([]string, n)
	for i := range n {
		switch {
		case nulls[i/8]&(1<<(i%8)) != 0:
			out[i] = "NULL"
			continue
		case long[i]:
			out[i] = "<long data>"
			continue
		}
		v, size, ok := decodeValue(types[2*i], types[2*i+1]&0x80 != 0, b)
		if !ok {
			return nil, nil, false
		}
		out[i], b = v, b[size:]
	}
	return out, types, true
}

func decodeValue(t byte, unsigned bool, b []byte) (string, int, bool) {
	fixed := func(size int) bool { return len(b) >= size }
	switch t {
	case typeNull:
		return "NULL", 0, true
	case typeTiny:
		if !fixed(1) {
			return "", 0, false
		}
		if unsigned {
			return strconv.FormatUint(uint64(b[0]), 10), 1, true
		}
		return strconv.FormatInt(int64(int8(b[0])), 10), 1, true
	case typeShort, typeYear:
		if !fixed(2) {
			return "", 0, false
		}
		v := binary.LittleEndian.Uint16(b)
		if unsigned || t == typeYear {
			return strconv.FormatUint(uint64(v), 10), 2, true
		}
		return strconv.FormatInt(int64(int16(v)), 10), 2, true
	case typeLong, typeInt24:
		if !fixed(4) {
			return "", 0, false
		}
		v := binary.LittleEndian.Uint32(b)
		if unsigned {
			return strconv.FormatUint(uint64(v), 10), 4, true
		}
		return strconv.FormatInt(int64(int32(v)), 10), 4, true
	case typeLongLong:
		if !fixed(8) {
			return "", 0, false
		}
		v := binary.LittleEndian.Uint64(b)
		if unsigned {
			return strconv.FormatUint(v, 10), 8, true
		}
		return strconv.FormatInt(int64(v), 10), 8, true
	case typeFloat:
		if !fixed(4) {
			return "", 0, false
		}
		return strconv.FormatFloat(float64(math.Float32frombits(binary.LittleEndian.Uint32(b))), 'g', -1, 32), 4, true
	case typeDouble:
		if !fixed(8) {
			return "", 0, false
		}
		return strconv.FormatFloat(math.Float64frombits(binary.LittleEndian.Uint64(b)), 'g', -1, 64), 8, true
	case typeDate, typeDateTime, typeTimestamp:
		if !fixed(1) || len(b) < 1+int(b[0]) {
			return "", 0, false
		}
		return formatDateTime(b[1 : 1+int(b[0])]), 1 + int(b[0]), true
	case typeTime:
		if !fixed(1) || len(b) < 1+int(b[0]) {
			return "", 0, false
		}
		return formatTime(b[1 : 1+int(b[0])]), 1 + int(b[0]), true
	}
	s, size, ok := readLenEncString(b)
	if !ok {
		return "", 0, false
	}
	if !utf8.Valid(s) {
		return "0x" + hex.EncodeToString(s), size, true
	}
	return string(s), size, true
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
