package mysql

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
)

// packets encodes payloads as packets numbered from the given sequence
// numbers.
func packets(seqs []byte, payloads ...[]byte) []byte {
	var b []byte
	for i, p := range payloads {
		b = append(b, byte(len(p)), byte(len(p)>>8), byte(len(p)>>16), seqs[i])
		b = append(b, p...)
	}
	return b
}

// TestContinuationSequence: the packets of one message are numbered one
// after the other; a continuation out of step is refused.
func TestContinuationSequence(t *testing.T) {
	full := bytes.Repeat([]byte{'x'}, maxPayload)
	for _, tc := range []struct {
		name string
		seqs []byte
		ok   bool
	}{
		{"in order", []byte{0, 1}, true},
		{"in order across 255", []byte{255, 0}, true},
		{"skipped", []byte{0, 2}, false},
		{"repeated", []byte{3, 3}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newPacketReader(bytes.NewReader(packets(tc.seqs, full, []byte("tail"))), ioBuffer)
			p, first, err := r.readMessage(2 * maxPayload)
			if tc.ok {
				if err != nil || len(p) != maxPayload+4 || first != tc.seqs[0] {
					t.Fatalf("%d bytes from %d: %v", len(p), first, err)
				}
				return
			}
			if !errors.Is(err, errSequence) {
				t.Fatalf("err %v, want errSequence", err)
			}
		})
	}
}

func TestParseWireInfo(t *testing.T) {
	for _, tc := range []struct {
		in     string
		id     uint32
		max    int
		failed bool
	}{
		{in: "23 16777216", id: 23, max: 16777216},
		{in: "4294967295 1073741824", id: 4294967295, max: 1 << 30},
		{in: "23", failed: true},
		{in: "x 1024", failed: true},
		{in: "23 0", failed: true},
		{in: "23 -5", failed: true},
		{in: "", failed: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			id, max, err := parseWireInfo(tc.in)
			if (err != nil) != tc.failed || id != tc.id || max != tc.max {
				t.Fatalf("%d %d %v", id, max, err)
			}
		})
	}
}

// TestCommandSequenceRefused: a command whose first packet is not
// numbered 0 ends the session with ER_NET_PACKETS_OUT_OF_ORDER.
func TestCommandSequenceRefused(t *testing.T) {
	f := startFrontEnd(t, "")
	u := rawLogin(t, f, nil)
	if err := u.w.send(3, append([]byte{comQuery}, "SELECT 1"...)); err != nil {
		t.Fatal(err)
	}
	p, _, err := u.r.readMessage(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if code, msg := parseErr(p); code != erPacketsOutOfOrder || !strings.Contains(msg, "sequence number 0, got 3") {
		t.Fatalf("got %d %q", code, msg)
	}
	if _, _, err := u.r.readMessage(1 << 20); !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("after the refusal: %v, want the connection closed", err)
	}
}

// stmtCmd is a COM_STMT_* command on statement id with extra bytes.
func stmtCmd(cmd byte, id uint32, extra ...byte) []byte {
	return append(binary.LittleEndian.AppendUint32([]byte{cmd}, id), extra...)
}

// TestUnknownStatementRefused: commands on a statement ID the session
// never prepared do not reach the target; those the target answers get
// ER_UNKNOWN_STMT_HANDLER, the others nothing, and the session goes on.
func TestUnknownStatementRefused(t *testing.T) {
	f := startFrontEnd(t, "")
	u := rawLogin(t, f, nil)
	// A statement of this session (no columns, no parameters: the answer
	// is one packet): its ID is known.
	prep := roundTrip(t, u, append([]byte{comStmtPrepare}, "DO 1"...))
	if prep[0] != iOK {
		t.Fatalf("prepare: %x", prep)
	}
	own := binary.LittleEndian.Uint32(prep[1:])
	for _, tc := range []struct {
		name string
		cmd  []byte
	}{
		{"execute", stmtCmd(comStmtExecute, own+100, 0, 1, 0, 0, 0)},
		{"reset", stmtCmd(comStmtReset, own+100)},
		{"fetch", stmtCmd(comStmtFetch, own+100, 1, 0, 0, 0)},
		{"short fetch", []byte{comStmtFetch, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := roundTrip(t, u, tc.cmd)
			if code, msg := parseErr(p); code != erUnknownStmtHandler || !strings.Contains(msg, "unknown prepared statement handler") {
				t.Fatalf("got %d %q", code, msg)
			}
		})
	}
	// No answer to these: the next packet is the ping's.
	for _, cmd := range [][]byte{stmtCmd(comStmtSendLongData, own+100, 0, 0, 'x'), stmtCmd(comStmtClose, own+100)} {
		if err := u.w.send(0, cmd); err != nil {
			t.Fatal(err)
		}
	}
	if p := roundTrip(t, u, []byte{comPing}); p[0] != iOK {
		t.Fatalf("ping: %x", p)
	}
	// The session's own statement runs.
	if p := roundTrip(t, u, stmtCmd(comStmtExecute, own, 0, 1, 0, 0, 0)); p[0] != iOK {
		t.Fatalf("execute own statement: %x", p)
	}
}

// TestPacketLimitFollowsTarget: with Bastion's own limit above the
// target's max_allowed_packet, a command over the target's limit is
// refused by Bastion (its message says so) rather than forwarded.
func TestPacketLimitFollowsTarget(t *testing.T) {
	f := startFrontEndWith(t, "", &fakeAccess{}, func(c *Config) { c.MaxMessage = 256 << 20 })
	u := rawLogin(t, f, nil)
	p := roundTrip(t, u, append([]byte{comQuery}, "SELECT @@max_allowed_packet"...))
	if p[0] != 1 {
		t.Fatalf("select: %x", p)
	}
	var maxAllowed int
	for {
		row, _, err := u.r.readMessage(1 << 20)
		if err != nil {
			t.Fatal(err)
		}
		if v, _, ok := readLenEncString(row); ok && len(row) > 0 && row[0] != iEOF && row[0] != 3 {
			if n, err := strconv.Atoi(string(v)); err == nil {
				maxAllowed = n
			}
		}
		if row[0] == iEOF {
			break
		}
	}
	if maxAllowed == 0 || maxAllowed >= 256<<20 {
		t.Fatalf("max_allowed_packet %d", maxAllowed)
	}
	big := append([]byte{comQuery}, "SELECT '"...)
	big = append(big, bytes.Repeat([]byte{'a'}, maxAllowed)...)
	if err := u.w.send(0, append(big, '\'')); err != nil {
		t.Fatal(err)
	}
	ans, _, err := u.r.readMessage(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	if code, msg := parseErr(ans); code != erTooLarge || !strings.Contains(msg, "bastion:") || !strings.Contains(msg, strconv.Itoa(maxAllowed)) {
		t.Fatalf("got %d %q, want Bastion's refusal at %d bytes", code, msg, maxAllowed)
	}
}
