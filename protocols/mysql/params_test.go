package mysql

import (
	"encoding/binary"
	"testing"
)

// TestParamLiterals: the parameters of a COM_STMT_EXECUTE, as the
// recording shows them and as SQL literals for an approver, where NULL and
// the string "NULL", or a number and a string of digits, differ.
func TestParamLiterals(t *testing.T) {
	p := []byte{comStmtExecute, 1, 0, 0, 0, 0, 1, 0, 0, 0}
	p = append(p, 0b0000_0100, 1) // parameter 3 is NULL; types follow
	p = append(p, typeLongLong, 0, 253, 0, 253, 0, 253, 0, 253, 0, typeDateTime, 0)
	p = binary.LittleEndian.AppendUint64(p, 7)
	p = append(p, 9)
	p = append(p, `it's \ x`+"!"...)
	p = append(p, 2, 0xff, 0x01)
	p = append(p, 4, 'N', 'U', 'L', 'L')
	p = append(p, 4, 0xea, 0x07, 11, 28) // 2026-11-28
	got, _, ok := decodeParams(p, 6, nil, nil)
	if !ok {
		t.Fatal("decodeParams failed")
	}
	want := []struct{ v, lit string }{
		{"7", "7"},
		{`it's \ x!`, `'it''s \\ x!'`},
		{"NULL", "NULL"},
		{"0xff01", "0xff01"},
		{"NULL", "'NULL'"},
		{"2026-11-28", "'2026-11-28'"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d parameters, want %d", len(got), len(want))
	}
	for i, w := range want {
		if got[i].v != w.v || got[i].literal() != w.lit {
			t.Errorf("parameter %d = %q, literal %q; want %q, %q", i+1, got[i].v, got[i].literal(), w.v, w.lit)
		}
	}
}
