package asciicast

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// appendTime appends d as a JSON number of seconds with six decimals. d must
// not be negative.
func appendTime(dst []byte, d time.Duration) []byte {
	us := int64(d / time.Microsecond)
	dst = strconv.AppendInt(dst, us/1e6, 10)
	dst = append(dst, '.')
	frac := strconv.FormatInt(us%1e6, 10)
	dst = append(dst, "000000"[len(frac):]...)
	return append(dst, frac...)
}

// errTimeRange is returned for times that are not a valid time.Duration.
var errTimeRange = errors.New("time out of range")

// expClamp bounds the exponents parseTime works with. It exceeds the number
// of digits a line can hold, so clamping changes no result.
const expClamp = 2 * MaxLineSize

// parseTime parses num, a valid JSON number of seconds, into a Duration,
// rounding to the nearest microsecond. It works on the decimal digits, so
// that any time the Writer writes reads back exactly, and it accepts the
// exponent form Python's json module writes for small numbers (1.5e-05).
func parseTime(num string) (time.Duration, error) {
	if strings.HasPrefix(num, "-") {
		return 0, fmt.Errorf("negative time %s", num)
	}
	mant, exp := num, 0
	if i := strings.IndexAny(num, "eE"); i >= 0 {
		mant = num[:i]
		e, err := strconv.Atoi(num[i+1:])
		if err != nil { // beyond the range of int
			e = expClamp
			if num[i+1] == '-' {
				e = -expClamp
			}
		}
		exp = max(-expClamp, min(e, expClamp))
	}
	whole, frac, _ := strings.Cut(mant, ".")
	digits := strings.TrimLeft(whole+frac, "0")
	if digits == "" {
		return 0, nil
	}
	// The value is digits × 10^shift microseconds.
	shift := exp - len(frac) + 6
	if shift < -len(digits) {
		return 0, nil // below half a microsecond
	}
	roundUp := false
	if shift < 0 {
		cut := len(digits) + shift
		roundUp = digits[cut] >= '5'
		digits = digits[:cut]
	} else {
		if len(digits)+shift > 19 {
			return 0, fmt.Errorf("%w: %s", errTimeRange, num)
		}
		digits += strings.Repeat("0", shift)
	}
	var us uint64
	if digits != "" {
		var err error
		if us, err = strconv.ParseUint(digits, 10, 64); err != nil {
			return 0, fmt.Errorf("%w: %s", errTimeRange, num)
		}
	}
	if roundUp {
		us++
	}
	if us > uint64(maxDuration/time.Microsecond) {
		return 0, fmt.Errorf("%w: %s", errTimeRange, num)
	}
	return time.Duration(us) * time.Microsecond, nil
}

// maxDuration is the largest time.Duration.
const maxDuration = time.Duration(1<<63 - 1)

// appendString appends s as a JSON string. Each byte of s that is not part
// of a valid UTF-8 sequence becomes U+FFFD, as when converting a Go string to
// runes. Control characters, '"' and '\\' are escaped; everything else,
// including non-ASCII text, is written as UTF-8.
func appendString(dst []byte, s []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				dst = append(dst, c)
			}
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, "\ufffd"...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

// incompleteTail returns how many bytes at the end of p are the start of a
// UTF-8 sequence that more bytes could still complete. Bytes that can never
// become valid are not counted: they are written as U+FFFD straight away.
func incompleteTail(p []byte) int {
	for i := len(p) - 1; i >= 0 && i >= len(p)-(utf8.UTFMax-1); i-- {
		if utf8.RuneStart(p[i]) {
			if utf8.FullRune(p[i:]) {
				return 0
			}
			return len(p) - i
		}
	}
	return 0
}

// runeCut returns n or less, so that p[:cut] does not end inside a valid
// UTF-8 sequence. It is used to split data into events.
func runeCut(p []byte, n int) int {
	if n >= len(p) {
		return len(p)
	}
	for cut := n; cut > n-utf8.UTFMax && cut > 0; cut-- {
		if utf8.RuneStart(p[cut]) {
			return cut
		}
	}
	return n
}
