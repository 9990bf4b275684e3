package mysql

import (
	"bytes"
	"testing"
)

// FuzzReadMessage feeds arbitrary bytes to the packet reader: it returns
// messages no larger than its limit, or an error, and never panics.
func FuzzReadMessage(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, comPing})
	f.Add([]byte{0xff, 0xff, 0xff, 0, 'a', 'b'})
	f.Add(append([]byte{5, 0, 0, 0}, "\x03SEL"...))
	f.Add(append([]byte{5, 0, 0, 7}, "\x03SEL"...))                        // a command not at sequence 0
	f.Add(append([]byte{5, 0, 0, 0, comStmtExecute, 9, 0, 0}, 0, 0, 0, 0)) // a statement never prepared
	f.Fuzz(func(t *testing.T, data []byte) {
		const limit = 1 << 10
		r := newPacketReader(bytes.NewReader(data), 64)
		for range 8 {
			p, seq, err := r.readMessage(limit)
			if err != nil {
				return
			}
			if (checkCommandSeq(seq) == nil) != (seq == 0) {
				t.Fatalf("sequence %d accepted as a command's first", seq)
			}
			if len(p) >= 5 {
				if _, st := (&clientConn{}).stmtOf(p); st != nil {
					t.Fatal("a statement known to a session that prepared none")
				}
			}
			if len(p) > limit {
				t.Fatalf("message of %d bytes over the limit", len(p))
			}
		}
	})
}

// FuzzHandshakeResponse parses arbitrary client handshakes; what parses
// marshals and parses back to the same values.
func FuzzHandshakeResponse(f *testing.F) {
	f.Add((&handshakeResponse{caps: serverCaps, charset: 45, user: "alice", auth: []byte("0123456789abcdefghij"),
		database: "shop", plugin: pluginNative}).marshal())
	f.Add((&handshakeResponse{caps: serverCaps | capSSL, charset: 45}).marshal())
	f.Add((&handshakeResponse{caps: requiredCaps | capProtocol41, user: "u", auth: []byte{1, 2}}).marshal())
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := parseHandshakeResponse(data)
		if err != nil || r.user == "" {
			return
		}
		back, err := parseHandshakeResponse(r.marshal())
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if back.user != r.user || !bytes.Equal(back.auth, r.auth) || back.database != r.database || back.caps != r.caps {
			t.Fatalf("round trip: %+v != %+v", back, r)
		}
	})
}

// FuzzHandshakeV10 parses arbitrary server greetings.
func FuzzHandshakeV10(f *testing.F) {
	f.Add((&handshakeV10{version: serverVersion, connID: 1, nonce: randomNonce(), caps: serverCaps, charset: 45, plugin: pluginNative}).marshal())
	f.Add(errPacket(1040, "08004", "Too many connections"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := parseHandshakeV10(data)
		if err == nil && len(h.nonce) > len(data) {
			t.Fatalf("nonce longer than the packet")
		}
	})
}

// FuzzWireInfo parses arbitrary answers to wireInfoSQL: a limit it
// returns is positive.
func FuzzWireInfo(f *testing.F) {
	f.Add("23 16777216")
	f.Add("23 -1")
	f.Add("99999999999 1")
	f.Fuzz(func(t *testing.T, v string) {
		if _, max, err := parseWireInfo(v); err == nil && max <= 0 {
			t.Fatalf("limit %d from %q", max, v)
		}
	})
}

// FuzzDecodeParams decodes arbitrary COM_STMT_EXECUTE payloads.
func FuzzDecodeParams(f *testing.F) {
	f.Add([]byte{comStmtExecute, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, typeLongLong, 0, 7, 0, 0, 0, 0, 0, 0, 0}, 1)
	f.Add([]byte{comStmtExecute, 1, 0, 0, 0, 0, 1, 0, 0, 0, 2, 1, 253, 0, 12, 0}, 2)
	f.Fuzz(func(t *testing.T, data []byte, n int) {
		if n < 0 || n > 64 {
			return
		}
		vals, types, ok := decodeParams(data, n, nil, nil)
		for _, v := range vals {
			if v.literal() == "" {
				t.Fatalf("parameter %q has no literal", v.v)
			}
		}
		if ok && (len(vals) != n || len(types) != 2*n) {
			t.Fatalf("%d values, %d type bytes for %d parameters", len(vals), len(types), n)
		}
	})
}
