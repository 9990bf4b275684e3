package transfer

import (
	"encoding/binary"
	"fmt"
	"sync"
)

// More SFTP packet types and flags the gate needs (draft-02 §3, §6.3).
const (
	fxpLstat    = 7
	fxpFstat    = 8
	fxpOpendir  = 11
	fxpReaddir  = 12
	fxpReadlink = 19

	fxfAppend = 0x04
	fxfCreat  = 0x08
	fxfTrunc  = 0x10

	fxPermissionDenied = 3
)

// refusedExtension is what a refused request is replaced with on its way
// to the target: an extended request no server knows, which draft-02
// §8 has it answer with SSH_FX_OP_UNSUPPORTED under the same id. The gate
// turns that answer into SSH_FX_PERMISSION_DENIED. The target's replies
// thus keep their order, and the target never sees what was refused.
const refusedExtension = "refused@bastion"

// Bounds of the gate's state; a client that exceeds one ends the gate
// (FromClient returns an error) rather than make Bastion hold more.
const (
	maxWatched     = 4096 // requests whose reply the gate must see
	maxGateHandles = 1024 // open handles whose path the gate remembers
	maxRefusal     = 512  // bytes of a refusal message sent to the client
)

// homeID is the request id of the gate's own REALPATH ".", sent to the
// target right after the client's INIT so that relative paths can be
// checked (scp sends them without asking for the working directory). Its
// answer is not forwarded. OpenSSH's clients number requests from 0.
const homeID = 0xffffffff

// Extended requests that read or change no file's contents or names, or
// work only on handles the gate already allowed: let through unchecked.
var harmlessExtensions = map[string]bool{
	"statvfs@openssh.com":            true, // file system sizes
	"fstatvfs@openssh.com":           true,
	"fsync@openssh.com":              true, // of an open handle
	"limits@openssh.com":             true, // the server's packet sizes
	"expand-path@openssh.com":        true, // like REALPATH
	"home-directory":                 true,
	"users-groups-by-id@openssh.com": true, // names of uids and gids
	"copy-data":                      true, // between two handles, each opened under the rules
}

// Request is an SFTP request that the gate asks about: what it does, by
// the names of the file rules' operations, and on which paths.
type Request struct {
	// Ops are what the request does: one operation, or for an open the
	// ones its flags ask for (read, write, create).
	Ops []string
	// Paths are the paths it acts on, as the client sent them (for a
	// request on a handle, the path the handle was opened with): one, or
	// two for rename, link and symlink (the link first, then what it
	// points to).
	Paths []string
	// Dir is the session's working directory (the target's answer to
	// REALPATH "."), against which relative paths resolve; "" until known.
	Dir string
	// LinkTarget says Paths[1] is a symbolic link's contents: relative to
	// the directory of Paths[0], not to Dir.
	LinkTarget bool
	// Unchecked, when set, says why the request cannot be checked (an
	// unknown request type or extension, a path too long, a handle the
	// gate does not know): it must be refused where rules apply.
	Unchecked string
	// Name is the request's type, for the audit log ("remove", "open",
	// "posix-rename@openssh.com").
	Name string
}

// SFTPGate holds each request of one SFTP session up to the file rules
// before the target sees it. It sits in both streams: FromClient returns
// what to forward to the target (a refused request replaced, see
// refusedExtension), FromServer what to forward to the user (the answer to
// a refused request turned into SSH_FX_PERMISSION_DENIED with the refusal
// as its message). The session goes on after a refusal.
//
// It buffers every client packet but WRITE (at most 256 KiB, SFTP's
// largest packet) until it has decided it, streams WRITE and the target's
// replies through, and keeps a bounded map of the replies it must see:
// those to refused requests, to opens (to learn handles' paths) and to
// REALPATH "." (the working directory, which the gate also asks for itself
// right after INIT: see homeID).
//
// What is decided: OPEN (read, write, create by its flags), OPENDIR (list),
// REMOVE, RENAME and posix-rename (rename, on both names), MKDIR, RMDIR,
// SETSTAT, FSETSTAT and lsetstat (setstat), SYMLINK (symlink, on the link
// and what it points to), hardlink@openssh.com (symlink, on both names),
// READLINK (readlink). Metadata (STAT, LSTAT, FSTAT, REALPATH) and
// requests on allowed handles (READ, WRITE, READDIR, CLOSE) pass;
// unknown request types and extensions are asked about as Unchecked.
//
// The zero value is not usable; call NewSFTPGate.
type SFTPGate struct {
	mu      sync.Mutex
	check   func(Request) string
	client  splitter
	server  splitter
	init    bool // the client's first packet (INIT) was seen
	version bool // the server's first packet (VERSION) was seen
	home    string
	watch   map[uint32]watched
	handles map[string]string // open handle → its path
	err     error
}

// watched is a reply the gate waits for.
type watched struct {
	refusal string // the request was refused: answer with this
	open    string // an OPEN or OPENDIR of this path: learn its handle
	home    bool   // a REALPATH of ".": learn the working directory
	own     bool   // the gate's own request: the user does not see its answer
}

// NewSFTPGate returns a gate that asks check about each request that reads
// or changes files: "" lets it through, anything else refuses it with
// that message. check is called from FromClient, one call at a time.
func NewSFTPGate(check func(Request) string) *SFTPGate {
	return &SFTPGate{check: check, watch: map[uint32]watched{}, handles: map[string]string{},
		client: splitter{head: 5}, server: splitter{head: 9}}
}

// splitter splits one direction of an SFTP stream into packets: of each
// it reads the head (length, type and, from the server, the request id),
// then streams or buffers the rest.
type splitter struct {
	head   int // bytes of head to read before deciding
	hdr    [9]byte
	nhdr   int
	left   int64 // bytes of the current packet after hdr still to come
	buffer bool  // keep the packet whole (in buf) rather than stream it
	buf    []byte
}

// FromClient takes bytes the user sent and returns what to forward to the
// target. An error (a malformed stream, a bound exceeded) means the session
// cannot be checked any further: nothing more may be forwarded.
func (g *SFTPGate) FromClient(p []byte) ([]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.run(&g.client, p, g.clientHead, g.request)
}

// FromServer takes bytes the target sent and returns what to forward to
// the user; an error as for FromClient.
func (g *SFTPGate) FromServer(p []byte) ([]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.run(&g.server, p, g.serverHead, g.reply)
}

// run splits p into packets. head is told each packet's head and says
// whether to buffer it; whole handles a buffered packet.
func (g *SFTPGate) run(s *splitter, p []byte, head func(h []byte) (bool, error), whole func(out, pkt []byte) ([]byte, error)) ([]byte, error) {
	if g.err != nil {
		return nil, g.err
	}
	var out []byte
	for len(p) > 0 {
		var err error
		if s.nhdr < s.head {
			n := copy(s.hdr[s.nhdr:s.head], p)
			s.nhdr += n
			p = p[n:]
			if s.nhdr < s.head {
				break
			}
			length := int64(binary.BigEndian.Uint32(s.hdr[:4]))
			if length < int64(s.head-4) || length > maxPacket {
				return nil, g.fail(fmt.Errorf("packet length %d out of range", length))
			}
			s.left = length - int64(s.head-4)
			if s.buffer, err = head(s.hdr[:s.head]); err != nil {
				return nil, g.fail(err)
			}
			if s.buffer {
				s.buf = append(s.buf[:0], s.hdr[:s.head]...)
			} else {
				out = append(out, s.hdr[:s.head]...)
			}
		} else {
			n := int(min(s.left, int64(len(p))))
			if s.buffer {
				s.buf = append(s.buf, p[:n]...)
			} else {
				out = append(out, p[:n]...)
			}
			s.left -= int64(n)
			p = p[n:]
		}
		if s.nhdr == s.head && s.left == 0 {
			s.nhdr = 0
			if s.buffer {
				if out, err = whole(out, s.buf); err != nil {
					return nil, g.fail(err)
				}
			}
		}
	}
	return out, nil
}

func (g *SFTPGate) fail(err error) error {
	g.err = fmt.Errorf("sftp gate: %w", err)
	g.watch, g.handles = nil, nil
	return g.err
}

// clientHead decides whether to buffer a request: all but WRITE, whose
// contents may be large and which acts on a handle already allowed.
func (g *SFTPGate) clientHead(h []byte) (bool, error) {
	return h[4] != fxpWrite || !g.init, nil
}

// serverHead decides whether to buffer a reply: those the gate watches.
func (g *SFTPGate) serverHead(h []byte) (bool, error) {
	if !g.version {
		g.version = true
		if h[4] != fxpVersion {
			return false, fmt.Errorf("not SFTP: first packet from the server has type %d", h[4])
		}
		return false, nil
	}
	_, ok := g.watch[binary.BigEndian.Uint32(h[5:9])]
	return ok, nil
}

// request decides one whole client packet and appends what to forward.
func (g *SFTPGate) request(out, pkt []byte) ([]byte, error) {
	typ := pkt[4]
	if !g.init {
		if typ != fxpInit {
			return nil, fmt.Errorf("not SFTP: first packet from the client has type %d", typ)
		}
		g.init = true
		g.watch[homeID] = watched{home: true, own: true}
		return appendPacket(append(out, pkt...), fxpRealpath, homeID, "."), nil
	}
	r := &reader{b: pkt[5:]}
	id := r.u32()
	if r.err != nil {
		return nil, fmt.Errorf("request type %d: %w", typ, r.err)
	}
	if _, dup := g.watch[id]; dup {
		// A reply the gate waits for would be mistaken for another's.
		return nil, fmt.Errorf("request id %d reused while outstanding", id)
	}
	q, w := g.describe(typ, r)
	if r.err != nil && q.Unchecked == "" {
		q.Unchecked = fmt.Sprintf("malformed %s request", q.Name)
	}
	if q.Unchecked != "" || len(q.Ops) > 0 {
		q.Dir = g.home
		if why := g.check(q); why != "" {
			if len(why) > maxRefusal {
				why = why[:maxRefusal]
			}
			w = watched{refusal: why}
		}
	}
	if w != (watched{}) {
		if len(g.watch) >= maxWatched {
			return nil, fmt.Errorf("more than %d requests outstanding", maxWatched)
		}
		g.watch[id] = w
	}
	if w.refusal != "" {
		return appendPacket(out, fxpExtended, id, refusedExtension), nil
	}
	return append(out, pkt...), nil
}

// describe reads a request after its id: what it does, and the reply the
// gate must see if it goes through.
func (g *SFTPGate) describe(typ byte, r *reader) (Request, watched) {
	one := func(name, op string) Request {
		return Request{Name: name, Ops: []string{op}, Paths: []string{g.path(r)}}
	}
	switch typ {
	case fxpOpen:
		q := one("open", "")
		flags := r.u32()
		q.Ops = q.Ops[:0]
		if flags&fxfRead != 0 || flags&(fxfWrite|fxfAppend|fxfTrunc|fxfCreat) == 0 {
			q.Ops = append(q.Ops, "read")
		}
		if flags&(fxfWrite|fxfAppend|fxfTrunc) != 0 {
			q.Ops = append(q.Ops, "write")
		}
		if flags&fxfCreat != 0 {
			q.Ops = append(q.Ops, "create")
		}
		return q, watched{open: q.Paths[0]}
	case fxpOpendir:
		q := one("opendir", "list")
		return q, watched{open: q.Paths[0]}
	case fxpRemove:
		return one("remove", "remove"), watched{}
	case fxpMkdir:
		return one("mkdir", "mkdir"), watched{}
	case fxpRmdir:
		return one("rmdir", "rmdir"), watched{}
	case fxpSetstat:
		return one("setstat", "setstat"), watched{}
	case fxpReadlink:
		return one("readlink", "readlink"), watched{}
	case fxpRename:
		return g.two("rename", "rename", r), watched{}
	case fxpSymlink:
		// OpenSSH's order: what the link points to, then the link.
		to, link := g.path(r), g.path(r)
		return Request{Name: "symlink", Ops: []string{"symlink"}, Paths: []string{link, to}, LinkTarget: true}, watched{}
	case fxpFsetstat:
		return g.onHandle("fsetstat", "setstat", r), watched{}
	case fxpClose:
		if h, cut := r.str(maxHandle); !cut && r.err == nil {
			delete(g.handles, string(h))
		}
		return Request{Name: "close"}, watched{}
	case fxpRealpath:
		if p, _ := r.str(MaxPath); g.home == "" && r.err == nil && (len(p) == 0 || string(p) == ".") {
			return Request{Name: "realpath"}, watched{home: true}
		}
		return Request{Name: "realpath"}, watched{}
	case fxpRead, fxpWrite, fxpReaddir, fxpFstat, fxpStat, fxpLstat:
		return Request{Name: "metadata or an open handle"}, watched{}
	case fxpExtended:
		name, cut := r.str(64)
		if cut || r.err != nil {
			return Request{Name: "extended", Unchecked: "an extended request with a malformed name"}, watched{}
		}
		return g.extended(string(name), r), watched{}
	}
	return Request{Name: fmt.Sprintf("type %d", typ), Unchecked: fmt.Sprintf("SFTP request type %d is not known to Bastion", typ)}, watched{}
}

// extended describes an extended request by its name.
func (g *SFTPGate) extended(name string, r *reader) Request {
	switch name {
	case "posix-rename@openssh.com":
		return g.two(name, "rename", r)
	case "hardlink@openssh.com":
		// Both names resolve against the working directory: the new link
		// first, as for symlink.
		q := g.two(name, "symlink", r)
		q.Paths[0], q.Paths[1] = q.Paths[1], q.Paths[0]
		return q
	case "lsetstat@openssh.com":
		return Request{Name: name, Ops: []string{"setstat"}, Paths: []string{g.path(r)}}
	}
	if harmlessExtensions[name] {
		return Request{Name: name}
	}
	return Request{Name: name, Unchecked: fmt.Sprintf("the SFTP extension %q is not known to Bastion", name)}
}

func (g *SFTPGate) two(name, op string, r *reader) Request {
	a := g.path(r)
	b := g.path(r)
	return Request{Name: name, Ops: []string{op}, Paths: []string{a, b}}
}

// onHandle describes a request on an open handle by the handle's path.
func (g *SFTPGate) onHandle(name, op string, r *reader) Request {
	h, cut := r.str(maxHandle)
	p, ok := g.handles[string(h)]
	if cut || r.err != nil || !ok {
		return Request{Name: name, Ops: []string{op}, Unchecked: "a handle Bastion did not see opened"}
	}
	return Request{Name: name, Ops: []string{op}, Paths: []string{p}}
}

// path reads a path. One longer than MaxPath is cut, and marked by a
// NUL byte so that it cannot be taken for the path it starts with.
func (g *SFTPGate) path(r *reader) string {
	p, cut := r.str(MaxPath)
	if cut {
		return string(p) + "\x00(cut)"
	}
	return string(p)
}

// reply handles one whole reply the gate watches, appending what to
// forward to the user.
func (g *SFTPGate) reply(out, pkt []byte) ([]byte, error) {
	id := binary.BigEndian.Uint32(pkt[5:9])
	w := g.watch[id]
	delete(g.watch, id)
	if w.refusal != "" {
		return appendStatus(out, id, fxPermissionDenied, "bastion: "+w.refusal), nil
	}
	r := &reader{b: pkt[9:]}
	switch pkt[4] {
	case fxpHandle:
		if h, cut := r.str(maxHandle); w.open != "" && !cut && r.err == nil && len(g.handles) < maxGateHandles {
			g.handles[string(h)] = w.open
		}
	case fxpName:
		if w.home && r.u32() > 0 {
			if p, cut := r.str(MaxPath); !cut && r.err == nil && len(p) > 0 && p[0] == '/' {
				g.home = string(p)
			}
		}
	}
	if w.own {
		return out, nil
	}
	return append(out, pkt...), nil
}

// appendPacket appends a packet of type typ with id and one string.
func appendPacket(out []byte, typ byte, id uint32, s string) []byte {
	out = binary.BigEndian.AppendUint32(out, uint32(1+4+4+len(s)))
	out = append(out, typ)
	out = binary.BigEndian.AppendUint32(out, id)
	out = binary.BigEndian.AppendUint32(out, uint32(len(s)))
	return append(out, s...)
}

// appendStatus appends an SSH_FXP_STATUS with an English message.
func appendStatus(out []byte, id, code uint32, msg string) []byte {
	out = binary.BigEndian.AppendUint32(out, uint32(1+4+4+4+len(msg)+4+2))
	out = append(out, fxpStatus)
	out = binary.BigEndian.AppendUint32(out, id)
	out = binary.BigEndian.AppendUint32(out, code)
	out = binary.BigEndian.AppendUint32(out, uint32(len(msg)))
	out = append(out, msg...)
	out = binary.BigEndian.AppendUint32(out, 2)
	return append(out, "en"...)
}
