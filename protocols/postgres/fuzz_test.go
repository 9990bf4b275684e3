package postgres

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"
)

// frontendSeeds are real client messages, encoded by pgproto3.
func frontendSeeds(f *testing.F) {
	msgs := []pgproto3.FrontendMessage{
		&pgproto3.Query{String: "SELECT 1; DROP TABLE t"},
		&pgproto3.Parse{Name: "s1", Query: "SELECT $1::int", ParameterOIDs: []uint32{23}},
		&pgproto3.Bind{DestinationPortal: "p", PreparedStatement: "s1", ParameterFormatCodes: []int16{1},
			Parameters: [][]byte{{0, 0, 0, 7}, nil}, ResultFormatCodes: []int16{0}},
		&pgproto3.Bind{PreparedStatement: "s1", Parameters: [][]byte{[]byte("x")}},
		&pgproto3.Execute{Portal: "p", MaxRows: 10},
		&pgproto3.Close{ObjectType: 'S', Name: "s1"},
		&pgproto3.Sync{},
		&pgproto3.FunctionCall{Function: 2925, Arguments: [][]byte{[]byte("/etc/passwd")}},
		&pgproto3.CopyData{Data: []byte("1\tx\n")},
	}
	for _, m := range msgs {
		b, err := m.Encode(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// FuzzClientMessage decodes arbitrary client messages as the relay does:
// no input may panic, and a message pgproto3 encodes must decode to what
// it holds.
func FuzzClientMessage(f *testing.F) {
	frontendSeeds(f)
	hygieneSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < headerLen {
			return
		}
		// Only frontend types pass, and a copy message only in a copy.
		if _, known := clientMessageNames[data[0]]; (checkClientType(data[0]) == nil) != known {
			t.Fatalf("type %q: known %v, refused %v", data[0], known, checkClientType(data[0]))
		}
		if isCopyMessage(data[0]) && (&copyState{}).check(data[0]) == nil {
			t.Fatalf("%q passed outside a copy", data[0])
		}
		n, err := bodyLen(data, 1<<20)
		if err != nil || len(data) != headerLen+n {
			return
		}
		body := data[headerLen:]
		switch data[0] {
		case msgQuery:
			if s, err := parseQuery(body); err == nil {
				var q pgproto3.Query
				if q.Decode(body) != nil || q.String != s {
					t.Fatalf("query %q, pgproto3 says %q", s, q.String)
				}
			}
		case msgParse:
			if m, err := parseParse(body); err == nil {
				var p pgproto3.Parse
				if p.Decode(body) != nil || p.Name != m.Name || p.Query != m.Query {
					t.Fatalf("parse %+v, pgproto3 says %+v", m, p)
				}
			}
		case msgBind:
			if m, err := parseBind(body); err == nil {
				var b pgproto3.Bind
				if b.Decode(body) != nil || b.DestinationPortal != m.Portal || len(b.Parameters) != len(m.Params) {
					t.Fatalf("bind %+v, pgproto3 says %+v", m, b)
				}
				for i := range m.Params {
					if !bytes.Equal(m.Params[i], b.Parameters[i]) || (m.Params[i] == nil) != (b.Parameters[i] == nil) {
						t.Fatalf("parameter %d: %q, pgproto3 says %q", i, m.Params[i], b.Parameters[i])
					}
				}
				(&queryRecorder{}).params(m)
			}
		case msgExecute:
			parseExecute(body)
		case msgClose:
			parseClose(body)
		default:
			errorFields(body)
		}
	})
}

// FuzzStartup decodes arbitrary startup packets: no panic, and a packet
// that parses names a user.
func FuzzStartup(f *testing.F) {
	for _, m := range []*pgproto3.StartupMessage{
		{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"user": "alice", "database": "orders"}},
		{ProtocolVersion: pgproto3.ProtocolVersion32, Parameters: map[string]string{"user": "alice", "options": "-c role=x"}},
		{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"user": "alice", "_pq_.x": "1", "DateStyle": "ISO"}},
	} {
		b, err := m.Encode(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 16), codeCancelRequest))
	f.Add(rawStartup("user", "alice", "USER", "postgres"))
	f.Fuzz(func(t *testing.T, data []byte) {
		code, body, err := readStartupPacket(bytes.NewReader(data))
		if err != nil || code>>16 != 3 {
			return
		}
		st, err := parseStartup(code, body)
		if err != nil {
			return
		}
		if st.user == "" || st.database == "" || st.protocol > protocol32 {
			t.Fatalf("startup %+v", st)
		}
		seen := map[string]bool{}
		for k := range st.params {
			if !allowedParams[strings.ToLower(k)] {
				t.Fatalf("parameter %q passed", k)
			}
			if seen[strings.ToLower(k)] {
				t.Fatalf("parameter %q passed twice", k)
			}
			seen[strings.ToLower(k)] = true
		}
		negotiateVersion(code, st)
	})
}

// FuzzSCRAM runs the server exchange against arbitrary client messages:
// it must fail without panicking, since no proof can match a random key.
func FuzzSCRAM(f *testing.F) {
	f.Add([]byte("n,,n=,r=abc"), []byte("c=biws,r=abcdef,p=AAAA"))
	f.Add([]byte("y,,n=alice,r=x,e=1"), []byte("c=eSws,r=x,p="))
	f.Fuzz(func(t *testing.T, first, final []byte) {
		var in bytes.Buffer
		init := append(cstr(scramMechanism), binary.BigEndian.AppendUint32(nil, uint32(len(first)))...)
		in.Write(appendMsg(nil, msgPassword, init, first))
		in.Write(appendMsg(nil, msgPassword, final))
		c := &testConn{br: bufio.NewReader(&in)}
		v := mockVerifier([]byte("k"), "alice", "orders")
		if err := scramServer(c, v, false); err == nil {
			t.Fatal("a random verifier accepted a proof")
		}
	})
}

// testConn is a msgConn over a reader and a writer (nil: output
// discarded).
type testConn struct {
	br *bufio.Reader
	w  io.Writer
}

func (c *testConn) readMessage(limit int) (byte, []byte, error) {
	return (&conn{br: c.br}).readMessage(limit)
}

func (c *testConn) send(msgs ...[]byte) error {
	for _, m := range msgs {
		if c.w == nil {
			continue
		}
		if _, err := c.w.Write(m); err != nil {
			return err
		}
	}
	return nil
}
