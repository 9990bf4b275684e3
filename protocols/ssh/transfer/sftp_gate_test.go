package transfer

import (
	"bytes"
	"encoding/binary"
	"slices"
	"strings"
	"testing"
)

// gateRun feeds steps to a gate, each cut into pieces of at most chunk
// bytes (0: whole), and returns what it forwards each way.
func gateRun(t *testing.T, g *SFTPGate, steps []step, chunk int) (toServer, toClient []byte) {
	t.Helper()
	for _, st := range steps {
		for p := st.data; len(p) > 0; {
			n := len(p)
			if chunk > 0 {
				n = min(n, chunk)
			}
			var out []byte
			var err error
			if st.client {
				out, err = g.FromClient(p[:n])
				toServer = append(toServer, out...)
			} else {
				out, err = g.FromServer(p[:n])
				toClient = append(toClient, out...)
			}
			if err != nil {
				t.Fatalf("gate: %v", err)
			}
			p = p[n:]
		}
	}
	return toServer, toClient
}

func concat(steps []step, client bool) []byte {
	var b []byte
	for _, st := range steps {
		if st.client == client {
			b = append(b, st.data...)
		}
	}
	return b
}

// TestSFTPGateAllowsUnchanged: a gate that allows everything forwards real
// sessions byte for byte, in any chunking, and is asked about each
// operation with the paths the client sent.
func TestSFTPGateAllowsUnchanged(t *testing.T) {
	for _, name := range []string{"sftp-session", "scp-sftp-upload", "scp-sftp-download"} {
		_, recs := readCapture(t, name)
		var steps []step
		for _, r := range recs {
			steps = append(steps, step{client: r.dir == '>', data: r.data})
		}
		for _, chunk := range []int{0, 1, 7, 4096} {
			var asked []Request
			g := NewSFTPGate(func(q Request) string { asked = append(asked, q); return "" })
			up, down := gateRun(t, g, steps, chunk)
			// The target also gets the gate's own REALPATH ".", right after INIT.
			client := concat(steps, true)
			n := 4 + int(binary.BigEndian.Uint32(client))
			wantUp := append(append(append([]byte{}, client[:n]...), askHome...), client[n:]...)
			if !bytes.Equal(up, wantUp) || !bytes.Equal(down, concat(steps, false)) {
				t.Fatalf("%s (chunk %d): the gate changed the streams", name, chunk)
			}
			if len(asked) == 0 {
				t.Fatalf("%s: the gate asked about nothing", name)
			}
			for _, q := range asked {
				if q.Unchecked != "" {
					t.Fatalf("%s: OpenSSH's request %+v is unchecked", name, q)
				}
				if q.Dir == "" && slices.ContainsFunc(q.Paths, func(p string) bool { return !strings.HasPrefix(p, "/") }) {
					t.Fatalf("%s: a relative path before the working directory was known: %+v", name, q)
				}
			}
		}
	}
}

func TestSFTPGateDecides(t *testing.T) {
	h := "H1"
	tests := []struct {
		name  string
		req   []byte
		want  Request
		reply []byte // the target's answer when allowed
	}{
		{"open for reading", pkt(fxpOpen, 10, "/srv/a", openRead, attrsNone), Request{Name: "open", Ops: []string{"read"}, Paths: []string{"/srv/a"}}, pkt(fxpHandle, 10, h)},
		{"open for upload", pkt(fxpOpen, 10, "/srv/a", openWrite, attrsNone), Request{Name: "open", Ops: []string{"write", "create"}, Paths: []string{"/srv/a"}}, pkt(fxpHandle, 10, h)},
		{"open to append", pkt(fxpOpen, 10, "/srv/a", fxfAppend, attrsNone), Request{Name: "open", Ops: []string{"write"}, Paths: []string{"/srv/a"}}, pkt(fxpHandle, 10, h)},
		{"opendir", pkt(fxpOpendir, 10, "/srv"), Request{Name: "opendir", Ops: []string{"list"}, Paths: []string{"/srv"}}, pkt(fxpHandle, 10, h)},
		{"remove", pkt(fxpRemove, 10, "/srv/a"), Request{Name: "remove", Ops: []string{"remove"}, Paths: []string{"/srv/a"}}, ok(10)},
		{"relative remove", pkt(fxpRemove, 10, "a"), Request{Name: "remove", Ops: []string{"remove"}, Paths: []string{"a"}, Dir: "/root"}, ok(10)},
		{"mkdir", pkt(fxpMkdir, 10, "/srv/d", attrsNone), Request{Name: "mkdir", Ops: []string{"mkdir"}, Paths: []string{"/srv/d"}}, ok(10)},
		{"rmdir", pkt(fxpRmdir, 10, "/srv/d"), Request{Name: "rmdir", Ops: []string{"rmdir"}, Paths: []string{"/srv/d"}}, ok(10)},
		{"setstat", pkt(fxpSetstat, 10, "/srv/a", attrsNone), Request{Name: "setstat", Ops: []string{"setstat"}, Paths: []string{"/srv/a"}}, ok(10)},
		{"readlink", pkt(fxpReadlink, 10, "/srv/l"), Request{Name: "readlink", Ops: []string{"readlink"}, Paths: []string{"/srv/l"}}, ok(10)},
		{"rename", pkt(fxpRename, 10, "/srv/a", "/srv/b"), Request{Name: "rename", Ops: []string{"rename"}, Paths: []string{"/srv/a", "/srv/b"}}, ok(10)},
		{"posix-rename", pkt(fxpExtended, 10, "posix-rename@openssh.com", "/srv/a", "/etc/b"), Request{Name: "posix-rename@openssh.com", Ops: []string{"rename"}, Paths: []string{"/srv/a", "/etc/b"}}, ok(10)},
		{"symlink (OpenSSH order)", pkt(fxpSymlink, 10, "../../etc/shadow", "/srv/l"), Request{Name: "symlink", Ops: []string{"symlink"}, Paths: []string{"/srv/l", "../../etc/shadow"}, LinkTarget: true}, ok(10)},
		{"hardlink", pkt(fxpExtended, 10, "hardlink@openssh.com", "/etc/shadow", "/srv/l"), Request{Name: "hardlink@openssh.com", Ops: []string{"symlink"}, Paths: []string{"/srv/l", "/etc/shadow"}}, ok(10)},
		{"lsetstat", pkt(fxpExtended, 10, "lsetstat@openssh.com", "/srv/a", attrsNone), Request{Name: "lsetstat@openssh.com", Ops: []string{"setstat"}, Paths: []string{"/srv/a"}}, ok(10)},
		{"unknown extension", pkt(fxpExtended, 10, "evil@example.com", "/etc"), Request{Name: "evil@example.com", Unchecked: `the SFTP extension "evil@example.com" is not known to Bastion`}, ok(10)},
		{"unknown type", pkt(99, 10, "/etc"), Request{Name: "type 99", Unchecked: "SFTP request type 99 is not known to Bastion"}, ok(10)},
		{"fsetstat of an unknown handle", pkt(fxpFsetstat, 10, "nope", attrsNone), Request{Name: "fsetstat", Ops: []string{"setstat"}, Unchecked: "a handle Bastion did not see opened"}, ok(10)},
		{"path too long", pkt(fxpRemove, 10, "/"+strings.Repeat("a", MaxPath)), Request{Name: "remove", Ops: []string{"remove"}, Paths: []string{"/" + strings.Repeat("a", MaxPath-1) + "\x00(cut)"}}, ok(10)},
	}
	// The working directory, learnt from the target's answer to the gate's
	// own REALPATH ".", which the user does not see.
	home := []step{s(pkt(fxpName, uint32(homeID), 1, "/root", "/root", attrsNone))}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, refuse := range []bool{false, true} {
				var asked []Request
				g := NewSFTPGate(func(q Request) string {
					asked = append(asked, q)
					if refuse {
						return "denied by rule r"
					}
					return ""
				})
				steps := append(append(append([]step{}, start...), home...), c(tc.req))
				up, down := gateRun(t, g, steps, 3)
				if !bytes.Equal(down, sftpVersion) {
					t.Fatalf("the user got %q; want only VERSION", down)
				}
				want := tc.want
				want.Dir = "/root"
				if len(asked) != 1 || !requestEqual(asked[0], want) {
					t.Fatalf("asked %+v; want %+v", asked, want)
				}
				prefixUp := append(append([]byte{}, sftpInit...), askHome...)
				if !refuse {
					_, reply := gateRun(t, g, []step{s(tc.reply)}, 0)
					if !bytes.Equal(up, append(prefixUp, tc.req...)) || !bytes.Equal(reply, tc.reply) {
						t.Fatalf("an allowed request was changed")
					}
					continue
				}
				// Refused: the target gets an extension it does not know,
				// under the same id; the user gets permission denied.
				if wantUp := append(prefixUp, pkt(fxpExtended, 10, refusedExtension)...); !bytes.Equal(up, wantUp) {
					t.Fatalf("forwarded %q; want %q", up[len(prefixUp):], wantUp[len(prefixUp):])
				}
				unsupported := fail(10, 8, "unsupported")
				_, down = gateRun(t, g, []step{s(unsupported), s(ok(11))}, 2)
				wantDown := append(pkt(fxpStatus, 10, fxPermissionDenied, "bastion: denied by rule r", "en"), ok(11)...)
				if !bytes.Equal(down, wantDown) {
					t.Fatalf("user got %q; want %q", down, wantDown)
				}
			}
		})
	}
}

// askHome is the gate's own REALPATH "." after INIT.
var askHome = pkt(fxpRealpath, uint32(homeID), ".")

func requestEqual(a, b Request) bool {
	return slices.Equal(a.Ops, b.Ops) && slices.Equal(a.Paths, b.Paths) && a.Dir == b.Dir &&
		a.LinkTarget == b.LinkTarget && a.Unchecked == b.Unchecked && a.Name == b.Name
}

// TestSFTPGateHandles: FSETSTAT is decided on the path its handle was
// opened with; a closed handle is forgotten.
func TestSFTPGateHandles(t *testing.T) {
	var asked []Request
	g := NewSFTPGate(func(q Request) string { asked = append(asked, q); return "" })
	steps := append(append([]step{}, start...),
		c(pkt(fxpOpen, 1, "/srv/a", openWrite, attrsNone)), s(pkt(fxpHandle, 1, "H")),
		c(pkt(fxpWrite, 2, "H", uint64(0), "data")), s(ok(2)),
		c(pkt(fxpFsetstat, 3, "H", attrsNone)), s(ok(3)),
		c(pkt(fxpClose, 4, "H")), s(ok(4)),
		c(pkt(fxpFsetstat, 5, "H", attrsNone)), s(ok(5)))
	gateRun(t, g, steps, 0)
	if len(asked) != 3 || asked[1].Paths[0] != "/srv/a" || asked[1].Ops[0] != "setstat" || asked[2].Unchecked == "" {
		t.Fatalf("asked %+v", asked)
	}
}

// TestSFTPGateFailsClosed: a stream the gate cannot follow stops it; it
// forwards nothing more.
func TestSFTPGateFailsClosed(t *testing.T) {
	tests := []struct {
		name  string
		steps []step
	}{
		{"not SFTP", []step{c(pkt(fxpOpen, 1, "/x", 1, 0))}},
		{"oversized packet", append(append([]step{}, start...), c(append(binary.BigEndian.AppendUint32(nil, maxPacket+1), fxpWrite)))},
		{"empty packet", append(append([]step{}, start...), c([]byte{0, 0, 0, 0, 0}))},
		{"short reply", append(append([]step{}, start...), s([]byte{0, 0, 0, 1, fxpStatus, 0, 0, 0, 0}))},
		{"the gate's own request id", append(append([]step{}, start...), c(pkt(fxpStat, uint32(homeID), "/")))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := NewSFTPGate(func(Request) string { return "" })
			var err error
			for _, st := range tc.steps {
				if st.client {
					_, err = g.FromClient(st.data)
				} else {
					_, err = g.FromServer(st.data)
				}
			}
			if err == nil {
				t.Fatal("no error")
			}
			if out, err := g.FromClient(ok(9)); err == nil || out != nil {
				t.Fatalf("after failing: %q, %v", out, err)
			}
		})
	}
}

// FuzzSFTPGate checks that the gate never panics, keeps its state within
// its bounds, and never forwards to the target a request it refused: with
// a gate that refuses everything, the target sees only INIT, WRITEs and
// harmless requests.
func FuzzSFTPGate(f *testing.F) {
	for _, name := range []string{"sftp-session", "scp-sftp-upload", "scp-sftp-download"} {
		_, recs := readCapture(f, name)
		f.Add(script(shrinkSFTP(recs)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		g := NewSFTPGate(func(Request) string { return "no" })
		var up []byte
		d := fuzzGate{g: g, up: &up}
		play(b, d, func() {
			if len(g.watch) > maxWatched || len(g.handles) > maxGateHandles {
				t.Fatalf("state out of bounds: %d watched, %d handles", len(g.watch), len(g.handles))
			}
		})
		// Every whole packet the target got is one the gate let through.
		for len(up) >= 4 {
			n := int(binary.BigEndian.Uint32(up))
			if len(up) < 4+n || n == 0 {
				break
			}
			p := up[4 : 4+n]
			up = up[4+n:]
			switch p[0] {
			case fxpInit, fxpWrite, fxpRead, fxpClose, fxpReaddir, fxpFstat, fxpStat, fxpLstat, fxpRealpath:
			case fxpExtended:
				r := &reader{b: p[5:]}
				if name, _ := r.str(64); string(name) != refusedExtension && !harmlessExtensions[string(name)] {
					t.Fatalf("forwarded extension %q", name)
				}
			default:
				t.Fatalf("forwarded a request of type %d", p[0])
			}
		}
	})
}

// fuzzGate adapts a gate to play.
type fuzzGate struct {
	g  *SFTPGate
	up *[]byte
}

func (d fuzzGate) FromClient(p []byte) {
	out, _ := d.g.FromClient(p)
	*d.up = append(*d.up, out...)
}
func (d fuzzGate) FromServer(p []byte) { d.g.FromServer(p) } //nolint:errcheck // the fuzz target only checks bounds
func (d fuzzGate) End()                {}
