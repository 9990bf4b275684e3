package transfer

import (
	"encoding/binary"
	"slices"
	"testing"
)

// A fuzz script is a session as chunks: a byte whose low bit says the side
// (1: client), a big-endian uint16 length, the bytes; a short last chunk
// takes what is left.
func script(recs []record) []byte {
	var b []byte
	for _, r := range recs {
		dir := byte(0)
		if r.dir == '>' {
			dir = 1
		}
		for p := r.data; len(p) > 0; {
			n := min(len(p), 0xffff)
			b = append(b, dir)
			b = binary.BigEndian.AppendUint16(b, uint16(n))
			b = append(b, p[:n]...)
			p = p[n:]
		}
	}
	return b
}

// play feeds a fuzz script to d, calling check after each chunk.
func play(b []byte, d decoder, check func()) {
	for len(b) > 0 {
		client := b[0]&1 == 1
		b = b[1:]
		n := len(b)
		if len(b) >= 2 {
			n = min(int(binary.BigEndian.Uint16(b)), len(b)-2)
			b = b[2:]
		}
		if client {
			d.FromClient(b[:n])
		} else {
			d.FromServer(b[:n])
		}
		b = b[n:]
		check()
	}
	d.End()
	check()
}

// shrinkSFTP cuts the contents of WRITE and DATA packets to a few bytes,
// so that a capture makes a small seed: the fuzzer spends its time
// minimising what it finds, which takes long on large inputs. Each packet
// becomes a record, in the order the packets completed.
func shrinkSFTP(recs []record) []record {
	var out []record
	var pending [2][]byte
	for _, r := range recs {
		side := 0
		if r.dir == '>' {
			side = 1
		}
		buf := append(pending[side], r.data...)
		for len(buf) >= 4 && len(buf)-4 >= int(binary.BigEndian.Uint32(buf)) {
			n := int(binary.BigEndian.Uint32(buf))
			p := slices.Clone(buf[4 : 4+n])
			buf = buf[4+n:]
			// WRITE: type, id, handle, offset, data; DATA: type, id, data.
			at := -1
			switch {
			case side == 1 && len(p) > 9 && p[0] == fxpWrite:
				at = 1 + 4 + 4 + int(binary.BigEndian.Uint32(p[5:])) + 8
			case side == 0 && p[0] == fxpData:
				at = 1 + 4
			}
			if at >= 0 && at+4 <= len(p) && len(p)-at-4 > 16 {
				p = binary.BigEndian.AppendUint32(p[:at], 16)
				p = append(p, make([]byte, 16)...)
			}
			out = append(out, record{dir: r.dir, data: append(binary.BigEndian.AppendUint32(nil, uint32(len(p))), p...)})
		}
		pending[side] = buf
	}
	return out
}

// stepRecords turns test steps into capture records.
func stepRecords(steps []step) []record {
	recs := make([]record, len(steps))
	for i, st := range steps {
		recs[i] = record{dir: '<', data: st.data}
		if st.client {
			recs[i].dir = '>'
		}
	}
	return recs
}

var knownOps = map[string]bool{
	OpOpen: true, OpWrite: true, OpRead: true, OpClose: true, OpRemove: true, OpRename: true,
	OpMkdir: true, OpRmdir: true, OpSetstat: true, OpSymlink: true, OpLink: true, OpCopy: true,
	OpSCPSend: true, OpSCPReceive: true, OpDecodeError: true,
}

// checkEvent checks what holds for every event.
func checkEvent(t *testing.T, e Event) {
	if !knownOps[e.Op] {
		t.Fatalf("unknown op in %+v", e)
	}
	if e.Bytes < 0 || len(e.Path) > MaxPath || len(e.NewPath) > MaxPath || len(e.Error) > maxMessage+64 {
		t.Fatalf("out of bounds: %+v", e)
	}
}

// FuzzSFTP checks that the SFTP decoder never panics, keeps its state
// within its bounds whatever it is fed, and reports at most one
// decode-error.
func FuzzSFTP(f *testing.F) {
	for _, name := range []string{"sftp-session", "scp-sftp-upload", "scp-sftp-download"} {
		_, recs := readCapture(f, name)
		f.Add(script(shrinkSFTP(recs)))
	}
	for _, tt := range sftpCases {
		f.Add(script(stepRecords(append(append([]step{}, start...), tt.steps...))))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeErrors := 0
		d := NewSFTP(func(e Event) {
			checkEvent(t, e)
			if e.Op == OpDecodeError {
				decodeErrors++
			}
		})
		play(b, d, func() {
			switch {
			case decodeErrors > 1:
				t.Fatalf("%d decode errors", decodeErrors)
			case len(d.pending) > maxPending, len(d.handles) > maxHandles, d.stored > maxStored+2*MaxPath+maxHandle:
				t.Fatalf("state out of bounds: %d requests, %d handles, %d bytes", len(d.pending), len(d.handles), d.stored)
			case cap(d.client.body) > pathPrefix, cap(d.server.body) > pathPrefix:
				t.Fatalf("kept %d and %d bytes of a packet", cap(d.client.body), cap(d.server.body))
			case d.stored < 0:
				t.Fatalf("stored %d", d.stored)
			}
		})
	})
}

// FuzzSCP checks the same of the scp decoder, for the commands of the
// captures.
func FuzzSCP(f *testing.F) {
	var commands []string
	for _, sc := range scenarios {
		command, recs := readCapture(f, sc.name)
		if command == "subsystem sftp" || len(script(recs)) > 1<<10 {
			continue // small seeds (see shrinkSFTP)
		}
		commands = append(commands, command)
		f.Add(uint8(len(commands)-1), script(recs))
	}
	for _, tt := range scpCases {
		commands = append(commands, tt.command)
		f.Add(uint8(len(commands)-1), script(stepRecords(tt.steps)))
	}
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		decodeErrors := 0
		d, ok := NewSCP(commands[int(which)%len(commands)], func(e Event) {
			checkEvent(t, e)
			if e.Op == OpDecodeError {
				decodeErrors++
			}
		})
		if !ok {
			t.Fatal("command not recognised")
		}
		play(b, d, func() {
			switch {
			case decodeErrors > 1:
				t.Fatalf("%d decode errors", decodeErrors)
			case len(d.line) > maxLine+1, len(d.rline) > maxLine+1, len(d.stash) > maxStash,
				len(d.owed) > maxOwed+1, len(d.early) > maxEarly, d.dirLen > MaxPath:
				t.Fatalf("state out of bounds: line %d, rline %d, stash %d, owed %d, early %d, dirs %d",
					len(d.line), len(d.rline), len(d.stash), len(d.owed), len(d.early), d.dirLen)
			case d.remaining < 0:
				t.Fatalf("remaining %d", d.remaining)
			}
		})
	})
}

// FuzzSCPCommand checks that recognising a command never panics and that
// a recognised one has what the decoder relies on.
func FuzzSCPCommand(f *testing.F) {
	for _, s := range []string{"scp -t /tmp", "scp -r -p -d -t -- -x", `scp -f 'a b' "c\"d" e\ f`, "scp -l 1 -f x", "scp -t a;b", "scp -t \\\n x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, command string) {
		d, ok := NewSCP(command, nil)
		if !ok {
			return
		}
		if len(d.cmd.operands) == 0 || d.cmd.upload && len(d.cmd.operands) != 1 {
			t.Fatalf("NewSCP(%q) operands %q", command, d.cmd.operands)
		}
		d.FromServer([]byte("\x00"))
		d.FromClient([]byte("C0644 1 f\nx\x00"))
		d.End()
	})
}

// TestShrinkSFTP checks that shrunk captures decode to the same events,
// with at most as many bytes: the seeds exercise what the captures do.
func TestShrinkSFTP(t *testing.T) {
	for _, name := range []string{"sftp-session", "scp-sftp-upload", "scp-sftp-download"} {
		command, recs := readCapture(t, name)
		small := shrinkSFTP(recs)
		if n := len(script(small)); n > 16<<10 {
			t.Errorf("%s: shrunk to %d bytes", name, n)
		}
		got, want := decode(t, command, small, 0), decode(t, command, recs, 0)
		if len(got) != len(want) {
			t.Fatalf("%s: %d events, want %d", name, len(got), len(want))
		}
		for i := range got {
			if got[i].Bytes > want[i].Bytes || got[i].Op != want[i].Op || got[i].Path != want[i].Path {
				t.Errorf("%s: event %d is %+v, want %+v but fewer bytes", name, i, got[i], want[i])
			}
		}
	}
}
