package asciicast

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestAppendTime(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
		want string
	}{
		{"zero", 0, "0.000000"},
		{"microsecond", time.Microsecond, "0.000001"},
		{"below a microsecond is truncated", 999 * time.Nanosecond, "0.000000"},
		{"fraction", 1248848 * time.Microsecond, "1.248848"},
		{"whole seconds", 90 * time.Second, "90.000000"},
		{"largest", maxDuration, "9223372036.854775"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(appendTime(nil, tt.d)); got != tt.want {
				t.Errorf("appendTime(%v) = %s, want %s", tt.d, got, tt.want)
			}
		})
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		name    string
		num     string
		want    time.Duration
		wantErr string
	}{
		{name: "zero", num: "0", want: 0},
		{name: "integer", num: "12", want: 12 * time.Second},
		{name: "six decimals", num: "1.248848", want: 1248848 * time.Microsecond},
		{name: "short fraction", num: "0.5", want: 500 * time.Millisecond},
		{name: "python exponent", num: "1.5e-05", want: 15 * time.Microsecond},
		{name: "positive exponent", num: "2E+3", want: 2000 * time.Second},
		{name: "rounds half up", num: "0.0000005", want: time.Microsecond},
		{name: "rounds down", num: "0.0000004999", want: 0},
		{name: "rounds carry", num: "0.9999999", want: time.Second},
		{name: "tiny", num: "1e-300", want: 0},
		{name: "zero with huge exponent", num: "0e99999999999999999999", want: 0},
		{name: "leading zeros", num: "0.000010", want: 10 * time.Microsecond},
		{name: "largest", num: "9223372036.854775", want: maxDuration / time.Microsecond * time.Microsecond},
		{name: "negative", num: "-1", wantErr: "negative time"},
		{name: "too large", num: "9223372036.854776", wantErr: "out of range"},
		{name: "huge exponent", num: "1e400", wantErr: "out of range"},
		{name: "exponent beyond int", num: "1e99999999999999999999", wantErr: "out of range"},
		{name: "many digits", num: "123456789012345678901234567890", wantErr: "out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseTime(tt.num)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseTime(%s) = %v, %v; want error containing %q", tt.num, got, err, tt.wantErr)
				}
				if tt.wantErr == "out of range" && !errors.Is(err, errTimeRange) {
					t.Errorf("error %v does not wrap errTimeRange", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("parseTime(%s) = %v, %v; want %v", tt.num, got, err, tt.want)
			}
		})
	}
}

// TestTimeRoundTrip checks that every time the Writer can write parses back
// exactly, at the edges of the decimal representation.
func TestTimeRoundTrip(t *testing.T) {
	for _, us := range []int64{0, 1, 9, 10, 999999, 1000000, 1000001, 123456789, 1<<53 - 1, 1 << 53, int64(maxDuration / time.Microsecond)} {
		d := time.Duration(us) * time.Microsecond
		got, err := parseTime(string(appendTime(nil, d)))
		if err != nil || got != d {
			t.Errorf("%d µs: wrote %s, read %v, %v", us, appendTime(nil, d), got, err)
		}
	}
}

func TestIncompleteTail(t *testing.T) {
	tests := []struct {
		name string
		p    string
		want int
	}{
		{"empty", "", 0},
		{"ascii", "abc", 0},
		{"complete two bytes", "é", 0},
		{"half of two bytes", "a\xc3", 1},
		{"one of three bytes", "a\xe2", 1},
		{"two of three bytes", "a\xe2\x82", 2},
		{"three of four bytes", "\xf0\x9f\x98", 3},
		{"complete four bytes", "😀", 0},
		{"invalid lead byte", "a\xff", 0},
		{"invalid second byte", "\xe0\x80", 0},
		{"surrogate start is never valid", "\xed\xa0", 0},
		{"stray continuation bytes", "\x80\x80\x80", 0},
		{"lead followed by ascii", "\xe2a", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := incompleteTail([]byte(tt.p)); got != tt.want {
				t.Errorf("incompleteTail(%q) = %d, want %d", tt.p, got, tt.want)
			}
		})
	}
}

func TestAppendString(t *testing.T) {
	tests := []struct {
		name string
		s    string
		want string
	}{
		{"plain", "hello", `"hello"`},
		{"escapes", "a\"b\\c\r\n\t", `"a\"b\\c\r\n\t"`},
		{"control bytes", "\x1b[1m\x00\x7f", `"\u001b[1m\u0000` + "\x7f" + `"`},
		{"html is not escaped", "<a&b>", `"<a&b>"`},
		{"utf-8 kept", "é€😀", `"é€😀"`},
		{"line separators kept", "\u2028\u2029", "\"\u2028\u2029\""},
		{"invalid byte", "a\xffb", "\"a\ufffdb\""},
		{"each invalid byte", "\xed\xa0\x80", "\"\ufffd\ufffd\ufffd\""},
		{"truncated sequence", "\xe2\x82", "\"\ufffd\ufffd\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(appendString(nil, []byte(tt.s))); got != tt.want {
				t.Errorf("appendString(%q) = %s, want %s", tt.s, got, tt.want)
			}
		})
	}
}

func TestRuneCut(t *testing.T) {
	p := []byte("ab€cd") // € is 3 bytes at 2..4
	tests := []struct {
		n, want int
	}{{0, 0}, {1, 1}, {2, 2}, {3, 2}, {4, 2}, {5, 5}, {6, 6}, {7, 7}, {99, 7}}
	for _, tt := range tests {
		if got := runeCut(p, tt.n); got != tt.want {
			t.Errorf("runeCut(%q, %d) = %d, want %d", p, tt.n, got, tt.want)
		}
	}
}
