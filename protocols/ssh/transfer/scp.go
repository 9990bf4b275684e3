package transfer

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"sync"
)

// Bounds of the scp decoder.
const (
	// maxLine is the longest control record: scp's sink reads one into a
	// 2048-byte buffer with its NUL and takes what does not fit as the next
	// record. An answer (scp's response()) is read the same way, except
	// that the \x01 or \x02 before its message is not stored.
	maxLine = 2047

	// maxStash is the most a sending side may send while it should be
	// waiting for the receiver's answer to a file or directory header.
	// OpenSSH's scp sends nothing then.
	maxStash = 4096

	// maxOwed is the most records that may await an answer, and maxEarly
	// the most answers that may come before their record.
	maxOwed  = 64
	maxEarly = 16
)

// What a response from the receiving side answers.
type owedKind uint8

const (
	owedStart owedKind = iota // the session's start: the receiver is ready
	owedTimes                 // a T record
	owedFile                  // a C header: the contents follow if it is accepted
	owedData                  // a file's contents and the sender's status after them
	owedDir                   // a D header: the entries follow if it is accepted
	owedEnd                   // an E record
)

type owed struct {
	kind owedKind
	file *scpFile // owedFile, owedData, owedDir
}

// scpFile is a file or directory named by a header.
type scpFile struct {
	name      string
	path      string
	cut       bool
	dir       bool
	size      int64
	n         int64  // contents seen
	err       string // an error the sending side reported after the contents
	reported  bool
	nameInDir bool // path ends with name
}

// States of the sending side's stream.
type sendState uint8

const (
	sendRecord  sendState = iota // a control record (line)
	sendBlocked                  // waiting for the answer to a C or D header
	sendData                     // a file's contents
	sendStatus                   // the byte after the contents: \0, or an error message
	sendDone                     // the top-level E: nothing more is read
)

// A response from the receiving side.
type scpResponse struct {
	msg   string // "" for ok
	fatal bool   // the reader of this response exits
}

// SCP decodes a legacy scp session (scp -O): the target runs "scp -t PATH"
// to receive files from the user (reported as scp-send, Direction upload)
// or "scp -f PATH..." to send files to the user (scp-receive, Direction
// download). The stream is the one of OpenSSH's scp.c: control records
// "C<mode> <size> <name>" (a file, whose contents follow), "D<mode> 0
// <name>" and "E" (entering and leaving a directory, with -r), "T<times>"
// (with -p) and error messages (\x01, \x02), from the sending side; \0 or an
// error message in answer, from the receiving side.
//
// A file is reported once the receiver has answered its contents, with
// Bytes, Name and Path; Error is set when either side reported a problem
// with it. Path is the directory and name. For a download that is the
// source operand's directory (a relative one is relative to the login
// directory; a glob is kept as written) and the names the target sent. For
// an upload it depends on whether the target path is an existing
// directory, which the decoder cannot see: it takes it for one when the
// command says so (-d, which scp sends for several files; -r; a path
// ending in "/", ".", "~") and otherwise reports the target path itself,
// where the file lands unless that is a directory; Name then says what the
// file was called. Error answers that name no file (a missing source, a
// refused directory) are reported with Error and, when known, Path.
//
// The zero value is not usable; call NewSCP.
type SCP struct {
	mu        sync.Mutex
	emit      func(Event)
	cmd       scpCommand
	op        string
	direction Direction
	targetDir bool // an upload's target is taken for a directory
	stopped   bool

	// The sending side: the user for -t, the target for -f.
	send      sendState
	line      []byte
	stash     []byte
	file      *scpFile
	remaining int64
	dirs      []string // names of the directories entered
	dirLen    int

	// The receiving side.
	rline []byte
	owed  []owed
	early []scpResponse
}

// NewSCP returns a decoder for the exec command, or false if command is not
// an scp server command ("scp [options] -t|-f [--] path...", as OpenSSH's
// scp sends it). emit is called from FromClient, FromServer and End, one
// call at a time; it must not block or call back into the decoder.
func NewSCP(command string, emit func(Event)) (*SCP, bool) {
	cmd, ok := parseSCPCommand(command)
	if !ok {
		return nil, false
	}
	if emit == nil {
		emit = func(Event) {}
	}
	s := &SCP{emit: emit, cmd: cmd, op: OpSCPReceive, direction: Download}
	if cmd.upload {
		t := cmd.operands[0]
		s.op, s.direction = OpSCPSend, Upload
		s.targetDir = cmd.dir || cmd.recursive || t == "" || strings.HasSuffix(t, "/") ||
			(t[0] == '~' && !strings.Contains(t, "/")) || path.Base(t) == "." || path.Base(t) == ".."
	}
	s.owed = append(s.owed, owed{kind: owedStart})
	return s, true
}

// FromClient decodes bytes the user sent. It does not keep or change p.
func (s *SCP) FromClient(p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd.upload {
		s.fromSender(p)
	} else {
		s.fromReceiver(p)
	}
}

// FromServer decodes bytes the target sent. It does not keep or change p.
func (s *SCP) FromServer(p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd.upload {
		s.fromReceiver(p)
	} else {
		s.fromSender(p)
	}
}

// End reports a file the channel's end interrupted, with the bytes seen.
// Later input is ignored.
func (s *SCP) End() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopped {
		s.finish("channel closed during the transfer")
	}
}

// fromSender reads the sending side's stream.
func (s *SCP) fromSender(p []byte) {
	for len(p) > 0 && !s.stopped {
		switch s.send {
		case sendDone:
			return
		case sendBlocked:
			if len(s.stash)+len(p) > maxStash {
				s.fail(errors.New("the sending side did not wait for an answer to its header"))
				return
			}
			s.stash = append(s.stash, p...)
			return
		case sendData:
			n := min(s.remaining, int64(len(p)))
			s.file.n += n
			s.remaining -= n
			p = p[n:]
			if s.remaining == 0 {
				s.send = sendStatus
			}
		case sendStatus:
			if len(s.line) == 0 && p[0] == 0 {
				p = p[1:]
				s.owe(owed{kind: owedData, file: s.file})
				s.file, s.send = nil, sendRecord
				continue
			}
			var done bool
			if p, done = readAnswer(&s.line, p); done {
				s.senderStatus()
			}
		case sendRecord:
			if len(s.line) == 0 && p[0] == '\n' {
				s.fail(errors.New("unexpected newline")) // as scp's sink
				return
			}
			var done bool
			if p, done = readLine(&s.line, p); done {
				s.record()
			}
		}
	}
}

// readLine adds to *line from p up to a newline or a line of maxLine
// bytes, and returns the rest of p and whether the line is complete.
func readLine(line *[]byte, p []byte) ([]byte, bool) {
	return readUntil(line, p, 0, maxLine)
}

// readAnswer is readLine for an answer (a message after a byte other than
// \0): the first byte never ends it, and after \x01 or \x02 the message
// may fill the whole buffer.
func readAnswer(line *[]byte, p []byte) ([]byte, bool) {
	first := p[0]
	if len(*line) > 0 {
		first = (*line)[0]
	}
	limit := maxLine
	if first == 1 || first == 2 {
		limit++
	}
	return readUntil(line, p, 1, limit)
}

// readUntil adds to *line from p up to a newline found from index from of
// the line, or a line of limit bytes.
func readUntil(line *[]byte, p []byte, from, limit int) ([]byte, bool) {
	n := min(len(p), limit-len(*line))
	skip := max(0, min(n, from-len(*line)))
	if i := bytes.IndexByte(p[skip:n], '\n'); i >= 0 {
		n = skip + i + 1
	}
	*line = append(*line, p[:n]...)
	l := *line
	return p[n:], len(l) > from && l[len(l)-1] == '\n' || len(l) == limit
}

// takeLine returns the line read, without its newline, and resets it.
func (s *SCP) takeLine() string {
	l := string(bytes.TrimSuffix(s.line, []byte{'\n'}))
	s.line = s.line[:0]
	return l
}

// senderStatus handles the sending side's error message after a file's
// contents: \x01 (the file is bad, scp goes on) or else fatal.
func (s *SCP) senderStatus() {
	l := s.takeLine()
	f := s.file
	f.err = message(l)
	if l[0] != 1 {
		s.report(f, f.err)
		s.stopped = true // the receiver exits
		return
	}
	s.owe(owed{kind: owedData, file: f})
	s.file, s.send = nil, sendRecord
}

// record handles a control record from the sending side.
func (s *SCP) record() {
	l := s.takeLine()
	switch l[0] {
	case 1, 2: // an error the sender reports; \x02 ends the session
		s.emit(Event{Op: s.op, Direction: s.direction, Error: message(l)})
		if l[0] == 2 {
			s.stopped = true
		}
		return
	case 'E':
		if len(s.dirs) == 0 {
			s.send = sendDone // the top-level receiver returns
			return
		}
		s.dirLen -= len(s.dirs[len(s.dirs)-1]) + 1
		s.dirs = s.dirs[:len(s.dirs)-1]
		s.owe(owed{kind: owedEnd})
		return
	case 'T':
		s.owe(owed{kind: owedTimes})
		return
	case 'C', 'D':
	default:
		s.fail(errors.New("expected control record"))
		return
	}
	f, err := s.header(l)
	if err != nil {
		s.fail(err)
		return
	}
	s.file = f
	s.send = sendBlocked
	if f.dir {
		s.owe(owed{kind: owedDir, file: f})
	} else {
		s.owe(owed{kind: owedFile, file: f})
	}
}

// header parses "C0644 123 name" or "D0755 0 name" as scp's sink does.
func (s *SCP) header(l string) (*scpFile, error) {
	if i := strings.IndexByte(l, 0); i >= 0 {
		l = l[:i] // scp reads the line as a C string
	}
	if len(l) < 6 || strings.Trim(l[1:5], "01234567") != "" {
		return nil, errors.New("bad mode")
	}
	if l[5] != ' ' {
		return nil, errors.New("mode not delimited")
	}
	rest := l[6:]
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	if i == 0 {
		return nil, errors.New("size not present")
	}
	size, err := strconv.ParseInt(rest[:i], 10, 64)
	if err != nil {
		return nil, errors.New("size out of range")
	}
	if i == len(rest) || rest[i] != ' ' {
		return nil, errors.New("size not delimited")
	}
	name := rest[i+1:]
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return nil, fmt.Errorf("unexpected filename %q", name[:min(len(name), 100)])
	}
	dir := l[0] == 'D'
	if dir && !s.cmd.recursive {
		return nil, errors.New("received directory without -r")
	}
	f := &scpFile{name: name, dir: dir, size: size}
	f.path, f.nameInDir = s.pathOf(name)
	if len(f.path) > MaxPath {
		f.path, f.cut = f.path[:MaxPath], true
	}
	return f, nil
}

// pathOf is the path of an entry named name in the current directory, and
// whether it ends with name.
func (s *SCP) pathOf(name string) (string, bool) {
	top := name
	if len(s.dirs) > 0 {
		top = s.dirs[0]
	}
	var p string
	inDir := true
	if s.cmd.upload {
		p = s.cmd.operands[0]
		if s.targetDir {
			p = joinPath(p, top)
		} else {
			inDir = len(s.dirs) > 0
		}
	} else {
		p = joinPath(s.sourceDir(top), top)
	}
	if len(s.dirs) > 0 {
		for _, d := range s.dirs[1:] {
			p = joinPath(p, d)
		}
		p = joinPath(p, name)
	}
	return p, inDir
}

// sourceDir is the directory of the source operand a top-level entry came
// from: the one whose last element matches name (as a glob), else the
// only one.
func (s *SCP) sourceDir(name string) string {
	split := func(op string) (dir, base string) {
		if t := strings.TrimRight(op, "/"); t != "" {
			op = t // scp strips trailing slashes from a source
		}
		i := strings.LastIndexByte(op, '/')
		return op[:i+1], op[i+1:]
	}
	for _, op := range s.cmd.operands {
		dir, base := split(op)
		if ok, err := path.Match(base, name); ok || err != nil && base == name {
			return dir
		}
	}
	if len(s.cmd.operands) == 1 {
		dir, _ := split(s.cmd.operands[0])
		return dir
	}
	return ""
}

func joinPath(dir, name string) string {
	switch {
	case dir == "":
		return name
	case strings.HasSuffix(dir, "/"):
		return dir + name
	}
	return dir + "/" + name
}

// owe queues a record for the receiver's answer, matching answers that
// came early.
func (s *SCP) owe(o owed) {
	if len(s.owed) >= maxOwed {
		s.fail(errors.New("the sending side did not wait for answers"))
		return
	}
	s.owed = append(s.owed, o)
	s.match()
}

// fromReceiver reads the receiving side's answers: \0 for ok, else a
// message up to a newline; \x01 is an error, anything else fatal.
func (s *SCP) fromReceiver(p []byte) {
	for len(p) > 0 && !s.stopped {
		if len(s.rline) == 0 && p[0] == 0 {
			p = p[1:]
			s.answer(scpResponse{})
			continue
		}
		var done bool
		if p, done = readAnswer(&s.rline, p); !done {
			continue
		}
		l := string(bytes.TrimSuffix(s.rline, []byte{'\n'}))
		s.rline = s.rline[:0]
		s.answer(scpResponse{msg: message(l), fatal: l[0] != 1})
	}
}

// answer takes one answer from the receiver.
func (s *SCP) answer(r scpResponse) {
	if len(s.early) >= maxEarly {
		s.fail(errors.New("the receiving side answered records not sent"))
		return
	}
	s.early = append(s.early, r)
	s.match()
}

// match pairs answers with the records they answer, in order.
func (s *SCP) match() {
	for len(s.owed) > 0 && len(s.early) > 0 && !s.stopped {
		o, r := s.owed[0], s.early[0]
		s.owed, s.early = s.owed[1:], s.early[1:]
		s.apply(o, r)
		if r.fatal && !s.stopped {
			s.stopped = true // the sender exits
		}
	}
	if len(s.owed) == 0 {
		s.owed = nil // let the backing array go
	}
	if len(s.early) == 0 {
		s.early = nil
	}
}

// apply handles the receiver's answer to a record.
func (s *SCP) apply(o owed, r scpResponse) {
	switch o.kind {
	case owedFile, owedDir:
		// The sender waits for this answer: its next bytes are in the
		// stash, if any came early.
		f := o.file
		s.file, s.send = nil, sendRecord
		switch {
		case r.msg != "":
			s.report(f, r.msg) // refused: the sender skips it
		case f.dir:
			if s.dirLen+len(f.name)+1 > MaxPath {
				s.fail(errors.New("directories nested deeper than MaxPath"))
				return
			}
			s.dirs = append(s.dirs, f.name)
			s.dirLen += len(f.name) + 1
		case f.size > 0:
			s.file, s.remaining, s.send = f, f.size, sendData
		default:
			s.file, s.send = f, sendStatus
		}
		stash := s.stash
		s.stash = nil
		s.fromSender(stash)
	case owedData:
		s.report(o.file, firstOf(o.file.err, r.msg))
	default:
		if r.msg != "" {
			s.emit(Event{Op: s.op, Direction: s.direction, Error: r.msg})
		}
	}
}

// report emits the Event of a file (not a directory, unless refused).
func (s *SCP) report(f *scpFile, errText string) {
	if f.reported || f.dir && errText == "" {
		return
	}
	f.reported = true
	s.emit(Event{Op: s.op, Path: f.path, Name: f.name, Direction: s.direction, Bytes: f.n, Error: errText, Truncated: f.cut})
}

// fail stops decoding: it reports why, then the file in flight.
func (s *SCP) fail(err error) {
	s.emit(Event{Op: OpDecodeError, Error: "scp: " + err.Error()})
	s.finish("decoding stopped during the transfer")
}

// finish reports files in flight and stops decoding.
func (s *SCP) finish(why string) {
	s.stopped = true
	if s.file != nil && !s.file.dir {
		s.report(s.file, firstOf(s.file.err, why))
	}
	for _, o := range s.owed {
		if o.file != nil && !o.file.dir {
			s.report(o.file, firstOf(o.file.err, why))
		}
	}
	s.owed, s.early, s.stash, s.line, s.rline, s.dirs = nil, nil, nil, nil, nil, nil
}

// message is the text of an error line: without its leading \x01 or \x02
// and at most maxMessage bytes.
func message(l string) string {
	if l != "" && (l[0] == 1 || l[0] == 2) {
		l = l[1:]
	}
	if len(l) > maxMessage {
		l = l[:maxMessage]
	}
	if l == "" {
		return "error"
	}
	return l
}
