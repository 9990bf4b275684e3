package transfer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Bounds on what one SFTP session may make the decoder track. A client that
// exceeds one stops decoding (with a decode-error Event). OpenSSH's sftp
// and scp keep at most 64 requests outstanding (sftp -R) and two files
// open; clients that keep many files open at once (sshfs) may reach
// maxHandles.
const (
	maxPending = 1024    // outstanding requests
	maxHandles = 256     // open file handles
	maxStored  = 1 << 20 // bytes of paths and handles held for those
)

// The kinds of request the decoder tracks until their reply.
type reqKind uint8

const (
	reqOther    reqKind = iota // a request whose reply only ends it
	reqOpen                    // SSH_FXP_OPEN
	reqClose                   // SSH_FXP_CLOSE
	reqRead                    // SSH_FXP_READ
	reqWrite                   // SSH_FXP_WRITE
	reqRealpath                // SSH_FXP_REALPATH of "." (the working directory)
	reqOp                      // an operation reported on its status: op names it
)

type request struct {
	kind    reqKind
	op      string
	path    string
	newPath string
	cut     bool
	flags   uint32  // open flags
	h       *handle // close, read, write, setstat of a handle
	n       int64   // write length, copy length
	seq     uint64
}

// handle is an open file.
type handle struct {
	id      string
	path    string
	cut     bool
	flags   uint32
	reads   int64 // READ requests
	writes  int64 // WRITE requests
	read    int64 // bytes in DATA replies
	written int64 // bytes of acknowledged WRITEs
	readErr string
	wrErr   string
	seq     uint64
}

// SFTP decodes one SFTP session (version 3, as OpenSSH speaks it:
// draft-ietf-secsh-filexfer-02 with the OpenSSH extensions
// posix-rename@openssh.com, hardlink@openssh.com, lsetstat@openssh.com and
// copy-data).
//
// It reports, once the target has replied: open (Direction upload when the
// file is opened for writing), remove, rename, mkdir, rmdir, setstat,
// symlink, link and copy, with Error set when the target refused. When a
// file is closed it reports write (Direction upload, Bytes the target
// acknowledged) and/or read (Direction download, Bytes the target sent),
// with the first error the target returned for it. Directory listings,
// stat and readlink are not reported. End reports what the channel's end
// left open or unanswered.
//
// Paths are as the client sent them; a relative one is joined to the
// session's working directory once the client has asked for it (REALPATH
// ".", which OpenSSH's clients do first). A symlink's target is kept as
// sent. OpenSSH puts SSH_FXP_SYMLINK's two paths in the opposite order to
// draft-02 (target first, then the link); so does this decoder.
//
// The zero value is not usable; call NewSFTP.
type SFTP struct {
	mu      sync.Mutex
	emit    func(Event)
	client  framer
	server  framer
	stopped bool
	init    bool // the client's INIT was seen
	version bool // the server's VERSION was seen
	home    string
	pending map[uint32]request
	handles map[string]*handle
	stored  int
	seq     uint64
}

// NewSFTP returns a decoder that reports to emit. emit is called from
// FromClient, FromServer and End, one call at a time; it must not block or
// call back into the decoder.
func NewSFTP(emit func(Event)) *SFTP {
	if emit == nil {
		emit = func(Event) {}
	}
	return &SFTP{
		emit:    emit,
		pending: make(map[uint32]request),
		handles: make(map[string]*handle),
	}
}

// FromClient decodes bytes the user sent. It does not keep or change p.
func (s *SFTP) FromClient(p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.feed(&s.client, p, true)
}

// FromServer decodes bytes the target sent. It does not keep or change p.
func (s *SFTP) FromServer(p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.feed(&s.server, p, false)
}

// End reports what the channel's end left unfinished: files still open
// (with the bytes seen so far) and operations the target never answered.
// Later input is ignored.
func (s *SFTP) End() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	s.finish("channel closed before the target replied", "channel closed before the file was closed")
}

// feed runs p through one direction's framer, handing each packet to the
// decoder once the bytes it keeps have arrived.
func (s *SFTP) feed(f *framer, p []byte, fromClient bool) {
	for len(p) > 0 && !s.stopped {
		switch {
		case f.nhdr < 4:
			n := copy(f.hdr[f.nhdr:], p)
			f.nhdr += n
			p = p[n:]
			if f.nhdr < 4 {
				continue
			}
			length := int64(binary.BigEndian.Uint32(f.hdr[:]))
			if length == 0 || length > maxPacket {
				s.fail(fmt.Errorf("packet length %d out of range", length))
				return
			}
			f.left, f.body, f.want = length, f.body[:0], 0
		case f.want == 0:
			f.want = int(min(f.left, keep(p[0], fromClient)))
			if cap(f.body) < f.want {
				f.body = make([]byte, 0, f.want)
			}
			fallthrough
		case len(f.body) < f.want:
			n := min(f.want-len(f.body), len(p))
			f.body = append(f.body, p[:n]...)
			f.left -= int64(n)
			p = p[n:]
			if len(f.body) < f.want {
				continue
			}
			var err error
			if fromClient {
				err = s.clientPacket(f.body, f.left)
			} else {
				err = s.serverPacket(f.body, f.left)
			}
			if err != nil {
				s.fail(err)
				return
			}
			if f.left == 0 {
				f.nhdr = 0
			}
		default: // the rest of a packet, skipped (WRITE and DATA contents are counted from their length)
			n := min(f.left, int64(len(p)))
			f.left -= n
			p = p[n:]
			if f.left == 0 {
				f.nhdr = 0
			}
		}
	}
}

// keep is how many bytes of a packet of type typ the decoder keeps.
func keep(typ byte, fromClient bool) int64 {
	if fromClient {
		switch typ {
		case fxpInit:
			return 1 + 4
		case fxpClose, fxpRead, fxpWrite, fxpFsetstat:
			return handlePrefix
		case fxpOpen, fxpSetstat, fxpRemove, fxpMkdir, fxpRmdir, fxpRealpath, fxpRename, fxpSymlink, fxpExtended:
			return pathPrefix
		}
		return 1 + 4 // the request id
	}
	switch typ {
	case fxpStatus:
		return 1 + 4 + 4 + 4 + maxMessage
	case fxpHandle:
		return 1 + 4 + 4 + maxHandle
	case fxpData:
		return 1 + 4 + 4
	case fxpName:
		return 1 + 4 + 4 + 4 + MaxPath
	}
	return 1 + 4
}

// clientPacket decodes a request. body holds its first bytes, from the
// type; rest more follow.
func (s *SFTP) clientPacket(body []byte, rest int64) error {
	typ := body[0]
	r := &reader{b: body[1:], rest: rest}
	if !s.init {
		if typ != fxpInit {
			return fmt.Errorf("not SFTP: first packet from the client has type %d", typ)
		}
		s.init = true
		r.u32() // the client's version; the server's reply decides
		return r.err
	}
	if typ == fxpInit {
		return errors.New("second SSH_FXP_INIT")
	}
	id := r.u32()
	if r.err != nil {
		return r.err
	}
	if _, dup := s.pending[id]; dup {
		return fmt.Errorf("request id %d reused while outstanding", id)
	}
	if len(s.pending) >= maxPending {
		return fmt.Errorf("more than %d requests outstanding", maxPending)
	}
	q := request{kind: reqOther}
	switch typ {
	case fxpOpen:
		q.kind = reqOpen
		q.path, q.cut = s.path(r)
		q.flags = r.u32()
	case fxpClose:
		if h := s.handle(r); h != nil {
			delete(s.handles, h.id) // the server may reuse the id once closed
			q.kind, q.h = reqClose, h
		}
	case fxpRead:
		if h := s.handle(r); h != nil {
			h.reads++
			q.kind, q.h = reqRead, h
		}
	case fxpWrite:
		if h := s.handle(r); h != nil {
			r.u64() // offset
			h.writes++
			q.kind, q.h, q.n = reqWrite, h, r.length()
		}
	case fxpFsetstat:
		if h := s.handle(r); h != nil {
			q.kind, q.op, q.path, q.cut = reqOp, OpSetstat, h.path, h.cut
		}
	case fxpSetstat, fxpRemove, fxpMkdir, fxpRmdir:
		q.kind, q.op = reqOp, pathOp(typ)
		q.path, q.cut = s.path(r)
	case fxpRealpath:
		if p, _ := r.str(MaxPath); s.home == "" && (len(p) == 0 || string(p) == ".") {
			q.kind = reqRealpath
		}
	case fxpRename:
		q.kind, q.op = reqOp, OpRename
		q.path, q.newPath, q.cut = s.twoPaths(r)
	case fxpSymlink:
		q.kind, q.op = reqOp, OpSymlink
		target, cut1 := r.str(MaxPath)
		q.newPath, q.cut = s.path(r)
		q.path, q.cut = string(target), q.cut || cut1
	case fxpExtended:
		name, _ := r.str(64)
		switch string(name) {
		case "posix-rename@openssh.com":
			q.kind, q.op = reqOp, OpRename
			q.path, q.newPath, q.cut = s.twoPaths(r)
		case "hardlink@openssh.com":
			q.kind, q.op = reqOp, OpLink
			q.path, q.newPath, q.cut = s.twoPaths(r)
		case "lsetstat@openssh.com":
			q.kind, q.op = reqOp, OpSetstat
			q.path, q.cut = s.path(r)
		case "copy-data":
			from := s.handle(r)
			r.u64() // read offset
			n := int64(r.u64())
			to := s.handle(r)
			if from != nil && to != nil {
				q.kind, q.op, q.n = reqOp, OpCopy, n
				q.path, q.newPath, q.cut = from.path, to.path, from.cut || to.cut
			}
		}
	}
	if r.err != nil {
		return fmt.Errorf("request type %d: %w", typ, r.err)
	}
	s.seq++
	q.seq = s.seq
	s.pending[id] = q
	s.stored += len(q.path) + len(q.newPath)
	if s.stored > maxStored {
		return fmt.Errorf("more than %d bytes of paths outstanding", maxStored)
	}
	return nil
}

// serverPacket decodes a reply.
func (s *SFTP) serverPacket(body []byte, rest int64) error {
	typ := body[0]
	r := &reader{b: body[1:], rest: rest}
	if !s.version {
		if typ != fxpVersion {
			return fmt.Errorf("not SFTP: first packet from the server has type %d", typ)
		}
		s.version = true
		if v := r.u32(); r.err == nil && v > 3 {
			return fmt.Errorf("SFTP version %d is not supported", v)
		}
		return r.err
	}
	if typ == fxpVersion {
		return errors.New("second SSH_FXP_VERSION")
	}
	id := r.u32()
	if r.err != nil {
		return r.err
	}
	q, ok := s.pending[id]
	if !ok {
		return nil // not a reply to a request we saw: nothing to report
	}
	delete(s.pending, id)
	s.stored -= len(q.path) + len(q.newPath)

	switch typ {
	case fxpStatus:
		code := r.u32()
		msg, _ := r.str(maxMessage)
		if r.err != nil {
			return fmt.Errorf("status: %w", r.err)
		}
		s.status(q, code, msg)
	case fxpHandle:
		id, cut := r.str(maxHandle)
		if r.err != nil {
			return fmt.Errorf("handle: %w", r.err)
		}
		if q.kind != reqOpen {
			break
		}
		if cut {
			return fmt.Errorf("handle longer than %d bytes", maxHandle)
		}
		if old := s.handles[string(id)]; old != nil {
			// The server gave out a handle that is still open: report
			// the old file and follow the new one.
			delete(s.handles, old.id)
			s.closed(old, "handle reused by the target")
		}
		if len(s.handles) >= maxHandles {
			return fmt.Errorf("more than %d files open", maxHandles)
		}
		s.seq++
		h := &handle{id: string(id), path: q.path, cut: q.cut, flags: q.flags, seq: s.seq}
		s.handles[h.id] = h
		s.stored += len(h.id) + len(h.path)
		s.emit(Event{Op: OpOpen, Path: h.path, Direction: openDirection(h.flags), Truncated: h.cut})
		if s.stored > maxStored {
			return fmt.Errorf("more than %d bytes of paths outstanding", maxStored)
		}
	case fxpData:
		n := r.length()
		if r.err != nil {
			return fmt.Errorf("data: %w", r.err)
		}
		if q.kind == reqRead {
			q.h.read += n
		}
	case fxpName:
		if q.kind == reqRealpath && r.u32() > 0 {
			if p, cut := r.str(MaxPath); !cut && len(p) > 0 && p[0] == '/' {
				s.home = string(p)
			}
		}
	}
	// An operation answered by anything but a status (or an open by
	// anything but a handle) is reported without knowing the outcome.
	switch {
	case typ == fxpStatus:
	case q.kind == reqClose:
		s.closed(q.h, unexpectedReply(typ))
	case q.kind == reqOp:
		s.emit(Event{Op: q.op, Path: q.path, NewPath: q.newPath, Bytes: q.n, Error: unexpectedReply(typ), Truncated: q.cut})
	case q.kind == reqOpen && typ != fxpHandle:
		s.emit(Event{Op: OpOpen, Path: q.path, Direction: openDirection(q.flags), Error: unexpectedReply(typ), Truncated: q.cut})
	}
	return nil
}

// status applies a status reply to the request it answers.
func (s *SFTP) status(q request, code uint32, msg []byte) {
	var errText string
	if code != fxOK {
		errText = statusError(code, msg)
	}
	switch q.kind {
	case reqOpen:
		if code != fxOK {
			s.emit(Event{Op: OpOpen, Path: q.path, Direction: openDirection(q.flags), Error: errText, Truncated: q.cut})
		}
	case reqClose:
		s.closed(q.h, errText)
	case reqRead:
		if code != fxOK && code != fxEOF && q.h.readErr == "" {
			q.h.readErr = errText
		}
	case reqWrite:
		if code == fxOK {
			q.h.written += q.n
		} else if q.h.wrErr == "" {
			q.h.wrErr = errText
		}
	case reqOp:
		s.emit(Event{Op: q.op, Path: q.path, NewPath: q.newPath, Bytes: q.n, Error: errText, Truncated: q.cut})
	}
}

// closed reports a file whose handle was closed (or given up), with why
// that may have gone wrong.
func (s *SFTP) closed(h *handle, closeErr string) {
	s.stored -= len(h.id) + len(h.path)
	// A file opened for one direction reports it even if nothing moved (an
	// empty upload); one opened for both reports what was done.
	wrote := h.writes > 0 || (h.flags&fxfWrite != 0 && h.flags&fxfRead == 0)
	read := h.reads > 0 || (h.flags&fxfRead != 0 && h.flags&fxfWrite == 0)
	if wrote {
		s.emit(Event{Op: OpWrite, Path: h.path, Direction: Upload, Bytes: h.written, Error: firstOf(h.wrErr, closeErr), Truncated: h.cut})
	}
	if read {
		s.emit(Event{Op: OpRead, Path: h.path, Direction: Download, Bytes: h.read, Error: firstOf(h.readErr, closeErr), Truncated: h.cut})
	}
	if !wrote && !read {
		s.emit(Event{Op: OpClose, Path: h.path, Error: closeErr, Truncated: h.cut})
	}
}

// fail stops decoding: it reports why, then what was in flight.
func (s *SFTP) fail(err error) {
	s.emit(Event{Op: OpDecodeError, Error: "sftp: " + err.Error()})
	s.finish("decoding stopped before the target replied", "decoding stopped before the file was closed")
}

// finish reports open files and unanswered operations, in the order they
// began, and stops decoding.
func (s *SFTP) finish(opErr, fileErr string) {
	type item struct {
		seq uint64
		q   *request
		h   *handle
	}
	var items []item
	for _, q := range s.pending {
		switch q.kind {
		case reqOp, reqOpen:
			items = append(items, item{seq: q.seq, q: &q})
		case reqClose:
			items = append(items, item{seq: q.h.seq, h: q.h})
		}
	}
	for _, h := range s.handles {
		items = append(items, item{seq: h.seq, h: h})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].seq < items[j].seq })
	for _, it := range items {
		if it.h != nil {
			s.closed(it.h, fileErr)
			continue
		}
		q := it.q
		if q.kind == reqOpen {
			s.emit(Event{Op: OpOpen, Path: q.path, Direction: openDirection(q.flags), Error: opErr, Truncated: q.cut})
			continue
		}
		s.emit(Event{Op: q.op, Path: q.path, NewPath: q.newPath, Bytes: q.n, Error: opErr, Truncated: q.cut})
	}
	s.stopped = true
	s.pending, s.handles, s.stored = nil, nil, 0
	s.client, s.server = framer{}, framer{}
}

// path reads a path and makes it absolute when the working directory is
// known.
func (s *SFTP) path(r *reader) (string, bool) {
	p, cut := r.str(MaxPath)
	if r.err != nil {
		return "", false
	}
	if s.home == "" || (len(p) > 0 && p[0] == '/') || (cut && len(p) == 0) {
		return string(p), cut
	}
	var b strings.Builder
	b.WriteString(s.home)
	if len(p) > 0 && string(p) != "." {
		if !strings.HasSuffix(s.home, "/") {
			b.WriteByte('/')
		}
		b.Write(p)
	}
	abs := b.String()
	if len(abs) > MaxPath {
		return abs[:MaxPath], true
	}
	return abs, cut
}

func (s *SFTP) twoPaths(r *reader) (string, string, bool) {
	p1, cut1 := s.path(r)
	p2, cut2 := s.path(r)
	return p1, p2, cut1 || cut2
}

// handle reads a handle and returns the open file it names, if known.
func (s *SFTP) handle(r *reader) *handle {
	id, cut := r.str(maxHandle)
	if cut || r.err != nil {
		return nil
	}
	return s.handles[string(id)]
}

// pathOp is the Event op of a request on one path.
func pathOp(typ byte) string {
	switch typ {
	case fxpSetstat:
		return OpSetstat
	case fxpRemove:
		return OpRemove
	case fxpMkdir:
		return OpMkdir
	}
	return OpRmdir
}

func openDirection(flags uint32) Direction {
	if flags&fxfWrite != 0 {
		return Upload
	}
	return Download
}

func unexpectedReply(typ byte) string {
	return fmt.Sprintf("unexpected reply type %d", typ)
}

func firstOf(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
