package transfer

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
)

// pkt builds an SFTP packet: uint32 and uint64 fields, strings (with their
// length) and raw bytes.
func pkt(typ byte, fields ...any) []byte {
	b := []byte{typ}
	for _, f := range fields {
		switch f := f.(type) {
		case uint32:
			b = binary.BigEndian.AppendUint32(b, f)
		case int:
			b = binary.BigEndian.AppendUint32(b, uint32(f))
		case uint64:
			b = binary.BigEndian.AppendUint64(b, f)
		case string:
			b = binary.BigEndian.AppendUint32(b, uint32(len(f)))
			b = append(b, f...)
		case []byte:
			b = append(b, f...)
		default:
			panic(fmt.Sprintf("pkt: %T", f))
		}
	}
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
}

// A step is bytes from one side.
type step struct {
	client bool
	data   []byte
}

func c(p ...[]byte) step { return step{client: true, data: join(p)} }
func s(p ...[]byte) step { return step{data: join(p)} }

func join(p [][]byte) []byte {
	var b []byte
	for _, x := range p {
		b = append(b, x...)
	}
	return b
}

// Packets used throughout.
var (
	sftpInit    = pkt(fxpInit, 3)
	sftpVersion = pkt(fxpVersion, 3, "posix-rename@openssh.com", "1")
	start       = []step{c(sftpInit), s(sftpVersion)}
)

const (
	openRead  = fxfRead
	openWrite = fxfWrite | 0x08 | 0x10 // WRITE|CREAT|TRUNC
	attrsNone = 0                      // empty ATTRS: no flags
)

func ok(id int) []byte { return pkt(fxpStatus, id, fxOK, "", "") }

func fail(id, code int, msg string) []byte { return pkt(fxpStatus, id, code, msg, "") }

// runSteps feeds steps to an SFTP decoder, each cut into pieces of at most
// chunk bytes (0: whole), then ends it.
func runSteps(steps []step, chunk int) []Event {
	var events []Event
	d := NewSFTP(func(e Event) { events = append(events, e) })
	var recs []record
	for _, st := range steps {
		dir := byte('<')
		if st.client {
			dir = '>'
		}
		recs = append(recs, record{dir: dir, data: st.data})
	}
	replay(d, recs, chunk)
	return events
}

var long = "/" + strings.Repeat("a", 4999)

// sftpCases are sessions after INIT and VERSION, and what they report.
var sftpCases = []struct {
	name  string
	steps []step
	want  []Event
}{
	{
		name: "relative paths join the working directory",
		steps: []step{
			c(pkt(fxpOpen, 1, "early.txt", openRead, attrsNone)), s(fail(1, 2, "No such file")),
			c(pkt(fxpRealpath, 2, ".")), s(pkt(fxpName, 2, 1, "/home/u", "/home/u", attrsNone)),
			c(pkt(fxpOpen, 3, "f.txt", openWrite, attrsNone)), s(pkt(fxpHandle, 3, "h1")),
			c(pkt(fxpWrite, 4, "h1", uint64(0), strings.Repeat("x", 100))), s(ok(4)),
			c(pkt(fxpClose, 5, "h1")), s(ok(5)),
			c(pkt(fxpMkdir, 6, ".", attrsNone)), s(fail(6, 4, "Failure")),
			c(pkt(fxpRemove, 7, "/abs")), s(ok(7)),
		},
		want: []Event{
			{Op: OpOpen, Path: "early.txt", Direction: Download, Error: "No such file"},
			{Op: OpOpen, Path: "/home/u/f.txt", Direction: Upload},
			{Op: OpWrite, Path: "/home/u/f.txt", Direction: Upload, Bytes: 100},
			{Op: OpMkdir, Path: "/home/u", Error: "Failure"},
			{Op: OpRemove, Path: "/abs"},
		},
	},
	{
		name: "only acknowledged writes count; the first error is kept",
		steps: []step{
			c(pkt(fxpOpen, 1, "/f", openWrite, attrsNone)), s(pkt(fxpHandle, 1, "h")),
			c(pkt(fxpWrite, 2, "h", uint64(0), "0123456789"), pkt(fxpWrite, 3, "h", uint64(10), "0123456789"), pkt(fxpWrite, 4, "h", uint64(20), "0123456789")),
			s(ok(2), fail(3, 4, "No space left on device"), fail(4, 4, "later")),
			c(pkt(fxpClose, 5, "h")), s(ok(5)),
		},
		want: []Event{
			{Op: OpOpen, Path: "/f", Direction: Upload},
			{Op: OpWrite, Path: "/f", Direction: Upload, Bytes: 10, Error: "No space left on device"},
		},
	},
	{
		name: "reads: replies in any order, EOF is no error, a failure is",
		steps: []step{
			c(pkt(fxpOpen, 1, "/f", openRead, attrsNone)), s(pkt(fxpHandle, 1, "h")),
			c(pkt(fxpRead, 2, "h", uint64(0), 5), pkt(fxpRead, 3, "h", uint64(5), 5), pkt(fxpRead, 4, "h", uint64(10), 5)),
			s(pkt(fxpData, 3, "abcde"), pkt(fxpData, 2, "abcde"), pkt(fxpStatus, 4, fxEOF, "EOF", "")),
			c(pkt(fxpClose, 5, "h")), s(ok(5)),
			c(pkt(fxpOpen, 6, "/g", openRead, attrsNone)), s(pkt(fxpHandle, 6, "h")),
			c(pkt(fxpRead, 7, "h", uint64(0), 5)), s(fail(7, 3, "Permission denied")),
			c(pkt(fxpClose, 8, "h")), s(fail(8, 4, "Failure")),
		},
		want: []Event{
			{Op: OpOpen, Path: "/f", Direction: Download},
			{Op: OpRead, Path: "/f", Direction: Download, Bytes: 10},
			{Op: OpOpen, Path: "/g", Direction: Download},
			{Op: OpRead, Path: "/g", Direction: Download, Error: "Permission denied"},
		},
	},
	{
		name: "a file opened for both reports what was done; one for neither, its close",
		steps: []step{
			c(pkt(fxpOpen, 1, "/rw", fxfRead|fxfWrite, attrsNone)), s(pkt(fxpHandle, 1, "a")),
			c(pkt(fxpRead, 2, "a", uint64(0), 4)), s(pkt(fxpData, 2, "abcd")),
			c(pkt(fxpWrite, 3, "a", uint64(4), "ef")), s(ok(3)),
			c(pkt(fxpClose, 4, "a")), s(fail(4, 4, "")),
			c(pkt(fxpOpen, 5, "/rw2", fxfRead|fxfWrite, attrsNone)), s(pkt(fxpHandle, 5, "a")),
			c(pkt(fxpClose, 6, "a")), s(ok(6)),
			c(pkt(fxpOpen, 7, "/none", 0, attrsNone)), s(pkt(fxpHandle, 7, "a")),
			c(pkt(fxpClose, 8, "a")), s(ok(8)),
		},
		want: []Event{
			{Op: OpOpen, Path: "/rw", Direction: Upload},
			{Op: OpWrite, Path: "/rw", Direction: Upload, Bytes: 2, Error: "failure"},
			{Op: OpRead, Path: "/rw", Direction: Download, Bytes: 4, Error: "failure"},
			{Op: OpOpen, Path: "/rw2", Direction: Upload},
			{Op: OpClose, Path: "/rw2"},
			{Op: OpOpen, Path: "/none", Direction: Download},
			{Op: OpClose, Path: "/none"},
		},
	},
	{
		name: "status codes without a message are named",
		steps: []step{
			c(pkt(fxpRemove, 1, "/a")), s(fail(1, 3, "")),
			c(pkt(fxpRemove, 2, "/b")), s(fail(2, 99, "")),
		},
		want: []Event{
			{Op: OpRemove, Path: "/a", Error: "permission denied"},
			{Op: OpRemove, Path: "/b", Error: "status 99"},
		},
	},
	{
		name: "extensions",
		steps: []step{
			c(pkt(fxpExtended, 1, "posix-rename@openssh.com", "/a", "/b")), s(ok(1)),
			c(pkt(fxpExtended, 2, "hardlink@openssh.com", "/b", "/c")), s(fail(2, 4, "Failure")),
			c(pkt(fxpExtended, 3, "lsetstat@openssh.com", "/c", attrsNone)), s(ok(3)),
			c(pkt(fxpExtended, 4, "statvfs@openssh.com", "/")), s(pkt(fxpExtendedReply, 4, []byte("..."))),
			c(pkt(fxpExtended, 5, "frobnicate@example.com", "/x")), s(fail(5, 8, "Unsupported")),
			c(pkt(fxpRename, 6, "/c", "/d")), s(ok(6)),
			c(pkt(fxpSymlink, 7, "../target", "/link")), s(ok(7)),
			c(pkt(fxpSetstat, 8, "/d", attrsNone)), s(ok(8)),
		},
		want: []Event{
			{Op: OpRename, Path: "/a", NewPath: "/b"},
			{Op: OpLink, Path: "/b", NewPath: "/c", Error: "Failure"},
			{Op: OpSetstat, Path: "/c"},
			{Op: OpRename, Path: "/c", NewPath: "/d"},
			{Op: OpSymlink, Path: "../target", NewPath: "/link"},
			{Op: OpSetstat, Path: "/d"},
		},
	},
	{
		name: "copy-data between open files",
		steps: []step{
			c(pkt(fxpOpen, 1, "/src", openRead, attrsNone)), s(pkt(fxpHandle, 1, "r")),
			c(pkt(fxpOpen, 2, "/dst", openWrite, attrsNone)), s(pkt(fxpHandle, 2, "w")),
			c(pkt(fxpExtended, 3, "copy-data", "r", uint64(0), uint64(4096), "w", uint64(0))), s(ok(3)),
			c(pkt(fxpExtended, 4, "copy-data", "r", uint64(0), uint64(0), "unknown", uint64(0))), s(ok(4)),
		},
		want: []Event{
			{Op: OpOpen, Path: "/src", Direction: Download},
			{Op: OpOpen, Path: "/dst", Direction: Upload},
			{Op: OpCopy, Path: "/src", NewPath: "/dst", Bytes: 4096},
			{Op: OpRead, Path: "/src", Direction: Download, Error: "channel closed before the file was closed"},
			{Op: OpWrite, Path: "/dst", Direction: Upload, Error: "channel closed before the file was closed"},
		},
	},
	{
		name: "the end reports open files and unanswered operations in order",
		steps: []step{
			c(pkt(fxpOpen, 1, "/up", openWrite, attrsNone)), s(pkt(fxpHandle, 1, "h")),
			c(pkt(fxpWrite, 2, "h", uint64(0), "abc")), s(ok(2)),
			c(pkt(fxpWrite, 3, "h", uint64(3), "def")), // no reply: not counted
			c(pkt(fxpRemove, 4, "/gone")),
			c(pkt(fxpOpen, 5, "/later", openRead, attrsNone)),
			c(pkt(fxpOpen, 6, "/closing", openRead, attrsNone)), s(pkt(fxpHandle, 6, "k")),
			c(pkt(fxpClose, 7, "k")),
		},
		want: []Event{
			{Op: OpOpen, Path: "/up", Direction: Upload},
			{Op: OpOpen, Path: "/closing", Direction: Download},
			{Op: OpWrite, Path: "/up", Direction: Upload, Bytes: 3, Error: "channel closed before the file was closed"},
			{Op: OpRemove, Path: "/gone", Error: "channel closed before the target replied"},
			{Op: OpOpen, Path: "/later", Direction: Download, Error: "channel closed before the target replied"},
			{Op: OpRead, Path: "/closing", Direction: Download, Error: "channel closed before the file was closed"},
		},
	},
	{
		name: "a handle given out again while open ends the old file",
		steps: []step{
			c(pkt(fxpOpen, 1, "/a", openWrite, attrsNone)), s(pkt(fxpHandle, 1, "h")),
			c(pkt(fxpOpen, 2, "/b", openWrite, attrsNone)), s(pkt(fxpHandle, 2, "h")),
			c(pkt(fxpClose, 3, "h")), s(ok(3)),
		},
		want: []Event{
			{Op: OpOpen, Path: "/a", Direction: Upload},
			{Op: OpWrite, Path: "/a", Direction: Upload, Error: "handle reused by the target"},
			{Op: OpOpen, Path: "/b", Direction: Upload},
			{Op: OpWrite, Path: "/b", Direction: Upload},
		},
	},
	{
		name: "replies to unknown ids and requests on unknown handles are ignored",
		steps: []step{
			s(ok(42), pkt(fxpData, 43, "data"), pkt(fxpHandle, 44, "x")),
			c(pkt(fxpWrite, 1, "nope", uint64(0), "abc")), s(ok(1)),
			c(pkt(fxpClose, 2, "nope")), s(ok(2)),
			c(pkt(fxpStat, 3, "/x")), s(pkt(fxpAttrs, 3, attrsNone)),
			c(pkt(77, 4, "junk")), s(fail(4, 8, "Unsupported")),
		},
	},
	{
		name: "an operation answered by other than a status",
		steps: []step{
			c(pkt(fxpRemove, 1, "/x")), s(pkt(fxpHandle, 1, "h")),
			c(pkt(fxpOpen, 2, "/y", openRead, attrsNone)), s(pkt(fxpData, 2, "")),
			c(pkt(fxpOpen, 3, "/z", openRead, attrsNone)), s(pkt(fxpHandle, 3, "h")),
			c(pkt(fxpClose, 4, "h")), s(pkt(fxpName, 4, 0)),
		},
		want: []Event{
			{Op: OpRemove, Path: "/x", Error: "unexpected reply type 102"},
			{Op: OpOpen, Path: "/y", Direction: Download, Error: "unexpected reply type 103"},
			{Op: OpOpen, Path: "/z", Direction: Download},
			{Op: OpRead, Path: "/z", Direction: Download, Error: "unexpected reply type 104"},
		},
	},
	{
		name: "paths longer than MaxPath are cut",
		steps: []step{
			c(pkt(fxpRemove, 1, long)), s(ok(1)),
			c(pkt(fxpRename, 2, "/short", long)), s(ok(2)),
			c(pkt(fxpRename, 3, long+long, "/lost")), s(ok(3)),
		},
		want: []Event{
			{Op: OpRemove, Path: long[:MaxPath], Truncated: true},
			{Op: OpRename, Path: "/short", NewPath: long[:MaxPath], Truncated: true},
			{Op: OpRename, Path: (long + long)[:MaxPath], Truncated: true},
		},
	},
	{
		name: "a status message is cut",
		steps: []step{
			c(pkt(fxpRemove, 1, "/x")), s(fail(1, 4, strings.Repeat("m", 2000))),
		},
		want: []Event{{Op: OpRemove, Path: "/x", Error: strings.Repeat("m", maxMessage)}},
	},
}

func TestSFTP(t *testing.T) {
	for _, tt := range sftpCases {
		t.Run(tt.name, func(t *testing.T) {
			steps := append(append([]step{}, start...), tt.steps...)
			checkEvents(t, runSteps(steps, 0), tt.want)
			checkEvents(t, runSteps(steps, 1), tt.want)
		})
	}
}

// TestSFTPMalformed checks that what the decoder cannot follow stops it
// with one decode-error, reports what was in flight, and that it ignores
// what comes after.
func TestSFTPMalformed(t *testing.T) {
	openFile := []step{
		c(pkt(fxpOpen, 1, "/f", openWrite, attrsNone)), s(pkt(fxpHandle, 1, "h")),
		c(pkt(fxpWrite, 2, "h", uint64(0), "abc")), s(ok(2)),
	}
	after := []step{c(pkt(fxpRemove, 90, "/after")), s(ok(90))}
	many := func(n int, f func(i int) []step) []step {
		var st []step
		for i := range n {
			st = append(st, f(i)...)
		}
		return st
	}
	tests := []struct {
		name     string
		noStart  bool
		steps    []step
		want     string  // the decode-error
		inFlight []Event // what follows it; nil: not checked
	}{
		{name: "not SFTP", noStart: true, steps: []step{c([]byte("SSH-2.0-OpenSSH\r\n"))}, want: "sftp: packet length 1397966893 out of range"},
		{name: "first client packet", noStart: true, steps: []step{c(pkt(fxpOpen, 1, "/f", 0, 0))}, want: "sftp: not SFTP: first packet from the client has type 3"},
		{name: "first server packet", noStart: true, steps: []step{c(sftpInit), s(ok(1))}, want: "sftp: not SFTP: first packet from the server has type 101"},
		{name: "version 6", noStart: true, steps: []step{c(sftpInit), s(pkt(fxpVersion, 6))}, want: "sftp: SFTP version 6 is not supported"},
		{name: "second init", steps: []step{c(sftpInit)}, want: "sftp: second SSH_FXP_INIT"},
		{name: "second version", steps: []step{s(sftpVersion)}, want: "sftp: second SSH_FXP_VERSION"},
		{name: "zero length", steps: []step{c([]byte{0, 0, 0, 0})}, want: "sftp: packet length 0 out of range"},
		{name: "too long", steps: []step{s([]byte{0, 4, 0, 1})}, want: "sftp: packet length 262145 out of range"},
		{name: "no id", steps: []step{c([]byte{0, 0, 0, 3, fxpRemove, 0, 0})}, want: "sftp: packet too short"},
		{name: "string past the packet", steps: []step{c([]byte{0, 0, 0, 9, fxpRemove, 0, 0, 0, 1, 0, 0, 0, 9})}, want: "sftp: request type 13: string of 9 bytes runs past the packet"},
		{name: "data past the packet", steps: append(openFile, c([]byte{0, 0, 0, 12, fxpRead, 0, 0, 0, 3, 0, 0, 0, 1, 'h', 0, 0}), s([]byte{0, 0, 0, 9, fxpData, 0, 0, 0, 3, 0, 0, 0, 1})), want: "sftp: data: string of 1 bytes runs past the packet",
			inFlight: []Event{
				{Op: OpWrite, Path: "/f", Direction: Upload, Bytes: 3, Error: "decoding stopped before the file was closed"},
				{Op: OpRead, Path: "/f", Direction: Download, Error: "decoding stopped before the file was closed"},
			}},
		{name: "status too short", steps: []step{c(pkt(fxpRemove, 1, "/x")), s([]byte{0, 0, 0, 7, fxpStatus, 0, 0, 0, 1, 0, 0})}, want: "sftp: status: packet too short",
			inFlight: []Event{}},
		{name: "id reused", steps: append(openFile, c(pkt(fxpRemove, 5, "/x")), c(pkt(fxpStat, 5, "/y"))), want: "sftp: request id 5 reused while outstanding",
			inFlight: []Event{
				{Op: OpWrite, Path: "/f", Direction: Upload, Bytes: 3, Error: "decoding stopped before the file was closed"},
				{Op: OpRemove, Path: "/x", Error: "decoding stopped before the target replied"},
			}},
		{name: "too many requests", steps: many(maxPending+1, func(i int) []step { return []step{c(pkt(fxpStat, i, "/"))} }), want: "sftp: more than 1024 requests outstanding"},
		{name: "too many files", steps: many(maxHandles+1, func(i int) []step {
			return []step{c(pkt(fxpOpen, i, "/", openRead, 0)), s(pkt(fxpHandle, i, fmt.Sprint(i)))}
		}), want: "sftp: more than 256 files open"},
		{name: "too many path bytes", steps: many(300, func(i int) []step { return []step{c(pkt(fxpRemove, i, "/"+strings.Repeat("p", 3999)))} }),
			want: "sftp: more than 1048576 bytes of paths outstanding"},
		{name: "long handle", steps: []step{c(pkt(fxpOpen, 1, "/f", 0, 0)), s(pkt(fxpHandle, 1, strings.Repeat("h", 257)))}, want: "sftp: handle longer than 256 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps := append(append([]step{}, tt.steps...), after...)
			if !tt.noStart {
				steps = append(append([]step{}, start...), steps...)
			}
			for _, chunk := range []int{0, 1} {
				var errs []Event
				var inFlight []Event
				for _, e := range runSteps(steps, chunk) {
					switch {
					case e.Op == OpDecodeError:
						errs = append(errs, e)
					case len(errs) > 0:
						inFlight = append(inFlight, e)
					}
				}
				if len(errs) != 1 || errs[0].Error != tt.want {
					t.Fatalf("chunk %d: decode errors %+v, want one %q", chunk, errs, tt.want)
				}
				if tt.inFlight != nil {
					checkEvents(t, inFlight, tt.inFlight)
				}
			}
		})
	}
}
