package transfer

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The captures in testdata/*.cap are real sessions: the OpenSSH clients
// (sftp, scp, scp -O) talking to sftp-server and scp on this machine
// through tee (below), a stand-in for the proxy that hands the decoder each
// chunk before it forwards it. Regenerate them with
//
//	go test -run TestRecapture -recapture ./protocols/ssh/transfer
//
// which needs sftp, scp and /usr/lib/openssh/sftp-server, and uses the
// fixed directory captureRoot so that the paths in the captures are stable.
//
// A capture is a sequence of records: one byte ('>' from the client, '<'
// from the server, '!' the exec command or "subsystem sftp"), a big-endian
// uint32 length, and that many bytes.

var recapture = flag.Bool("recapture", false, "regenerate testdata/*.cap with the real OpenSSH clients")

const (
	captureRoot   = "/tmp/bastion-transfer-testdata"
	captureLocal  = captureRoot + "/local"
	captureRemote = captureRoot + "/remote"
	sftpServer    = "/usr/lib/openssh/sftp-server"

	teeLogEnv = "TRANSFER_TEE_LOG" // set: this test binary runs as tee
)

// Sizes of the files the captures move.
const (
	smallSize = 6 // "hello\n"
	bigSize   = 40000
	subSize   = 3000
)

type record struct {
	dir  byte
	data []byte
}

func TestMain(m *testing.M) {
	if log := os.Getenv(teeLogEnv); log != "" {
		if err := tee(log, os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "tee:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// tee runs the server side of one session in captureRemote, logging each
// chunk before it forwards it. It stands in for ssh: invoked by sftp -D
// with no arguments, by scp -S with ssh's arguments (a subsystem request
// has "-s"; otherwise the last argument is the command).
func tee(logPath string, args []string) error {
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	var mu sync.Mutex
	logRecord := func(dir byte, p []byte) error {
		mu.Lock()
		defer mu.Unlock()
		var hdr [5]byte
		hdr[0] = dir
		binary.BigEndian.PutUint32(hdr[1:], uint32(len(p)))
		if _, err := w.Write(hdr[:]); err != nil {
			return err
		}
		_, err := w.Write(p)
		return err
	}

	var cmd *exec.Cmd
	subsystem := len(args) == 0
	for _, a := range args {
		subsystem = subsystem || a == "-s"
	}
	if subsystem {
		cmd = exec.Command(sftpServer)
		err = logRecord('!', []byte("subsystem sftp"))
	} else {
		line := args[len(args)-1]
		cmd = exec.Command("/bin/sh", "-c", line)
		err = logRecord('!', []byte(line))
	}
	if err != nil {
		return err
	}
	cmd.Dir = captureRemote
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() {
		if err := copyLogged(in, os.Stdin, '>', logRecord); err != nil {
			fmt.Fprintln(os.Stderr, "tee: client to server:", err)
		}
		in.Close()
	}()
	copyErr := copyLogged(os.Stdout, out, '<', logRecord)
	waitErr := cmd.Wait()
	mu.Lock()
	flushErr := w.Flush()
	mu.Unlock()
	var exit *exec.ExitError
	if errors.As(waitErr, &exit) {
		waitErr = nil // scp reports errors with its exit status; the client sees them
	}
	return errors.Join(copyErr, waitErr, flushErr)
}

// copyLogged copies src to dst, logging each chunk before writing it.
func copyLogged(dst io.Writer, src io.Reader, dir byte, logRecord func(byte, []byte) error) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if err := logRecord(dir, buf[:n]); err != nil {
				return err
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// readCapture reads testdata/name.cap.
func readCapture(t testing.TB, name string) (command string, recs []record) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".cap"))
	if err != nil {
		t.Fatal(err)
	}
	return parseCapture(t, name, b)
}

// parseCapture splits a capture into its command and its records.
func parseCapture(t testing.TB, name string, b []byte) (command string, recs []record) {
	t.Helper()
	for len(b) > 0 {
		if len(b) < 5 || int(binary.BigEndian.Uint32(b[1:5])) > len(b)-5 {
			t.Fatalf("%s: truncated record", name)
		}
		n := int(binary.BigEndian.Uint32(b[1:5]))
		r := record{dir: b[0], data: b[5 : 5+n]}
		b = b[5+n:]
		if r.dir == '!' {
			command = string(r.data)
			continue
		}
		recs = append(recs, r)
	}
	return command, recs
}

// decoder is what SFTP and SCP have in common.
type decoder interface {
	FromClient([]byte)
	FromServer([]byte)
	End()
}

// replay feeds recs to d, each record cut into pieces of at most chunk bytes
// (0: whole), then ends it.
func replay(d decoder, recs []record, chunk int) {
	for _, r := range recs {
		p := r.data
		for len(p) > 0 {
			n := len(p)
			if chunk > 0 {
				n = min(n, chunk)
			}
			if r.dir == '>' {
				d.FromClient(p[:n])
			} else {
				d.FromServer(p[:n])
			}
			p = p[n:]
		}
	}
	d.End()
}

// merge joins consecutive records of the same direction, as a proxy
// reading larger buffers would see them.
func merge(recs []record) []record {
	var out []record
	for _, r := range recs {
		if len(out) > 0 && out[len(out)-1].dir == r.dir {
			last := &out[len(out)-1]
			last.data = append(last.data[:len(last.data):len(last.data)], r.data...)
			continue
		}
		out = append(out, r)
	}
	return out
}

// A scenario is one real session: the client and its arguments, and the
// events its capture must decode to.
type scenario struct {
	name string
	// client runs the session; LOCAL, REMOTE, TEE and BATCH stand for
	// captureLocal, captureRemote, this test binary and the batch file.
	client []string
	batch  string // sftp -b's commands
	want   []Event
}

// R is the remote directory, as the captures name it.
const R = captureRemote

var scenarios = []scenario{
	{
		name:   "sftp-session",
		client: []string{"sftp", "-q", "-b", "BATCH", "-D", "TEE"},
		batch: `put LOCAL/small.txt small.txt
put LOCAL/big.bin big.bin
put LOCAL/empty.txt empty.txt
put -p LOCAL/small.txt preserved.txt
get big.bin LOCAL/big.copy
get small.txt LOCAL/small.copy
mkdir d
rename small.txt d/moved.txt
chmod 600 d/moved.txt
symlink d/moved.txt link.txt
ln big.bin hard.bin
cp big.bin copy.bin
rm hard.bin
rm link.txt
rm copy.bin
-rm missing.txt
-put LOCAL/small.txt /proc/nope.txt
-rmdir missing-dir
-mkdir d
rm d/moved.txt
rmdir d
`,
		want: []Event{
			{Op: OpOpen, Path: R + "/small.txt", Direction: Upload},
			{Op: OpWrite, Path: R + "/small.txt", Direction: Upload, Bytes: smallSize},
			{Op: OpOpen, Path: R + "/big.bin", Direction: Upload},
			{Op: OpWrite, Path: R + "/big.bin", Direction: Upload, Bytes: bigSize},
			{Op: OpOpen, Path: R + "/empty.txt", Direction: Upload},
			{Op: OpWrite, Path: R + "/empty.txt", Direction: Upload},
			{Op: OpOpen, Path: R + "/preserved.txt", Direction: Upload},
			{Op: OpSetstat, Path: R + "/preserved.txt"}, // put -p: fsetstat
			{Op: OpWrite, Path: R + "/preserved.txt", Direction: Upload, Bytes: smallSize},
			{Op: OpOpen, Path: R + "/big.bin", Direction: Download},
			{Op: OpRead, Path: R + "/big.bin", Direction: Download, Bytes: bigSize},
			{Op: OpOpen, Path: R + "/small.txt", Direction: Download},
			{Op: OpRead, Path: R + "/small.txt", Direction: Download, Bytes: smallSize},
			{Op: OpMkdir, Path: R + "/d"},
			{Op: OpRename, Path: R + "/small.txt", NewPath: R + "/d/moved.txt"}, // posix-rename@openssh.com
			{Op: OpSetstat, Path: R + "/d/moved.txt"},
			{Op: OpSymlink, Path: "d/moved.txt", NewPath: R + "/link.txt"},
			{Op: OpLink, Path: R + "/big.bin", NewPath: R + "/hard.bin"},
			// cp: both files are opened, the target copies between them.
			{Op: OpOpen, Path: R + "/big.bin", Direction: Download},
			{Op: OpOpen, Path: R + "/copy.bin", Direction: Upload},
			{Op: OpCopy, Path: R + "/big.bin", NewPath: R + "/copy.bin"},
			{Op: OpRead, Path: R + "/big.bin", Direction: Download},
			{Op: OpWrite, Path: R + "/copy.bin", Direction: Upload},
			{Op: OpRemove, Path: R + "/hard.bin"},
			{Op: OpRemove, Path: R + "/link.txt"},
			{Op: OpRemove, Path: R + "/copy.bin"},
			{Op: OpRemove, Path: R + "/missing.txt", Error: "No such file"},
			{Op: OpOpen, Path: "/proc/nope.txt", Direction: Upload, Error: "No such file"},
			{Op: OpRmdir, Path: R + "/missing-dir", Error: "No such file"},
			{Op: OpMkdir, Path: R + "/d", Error: "Failure"},
			{Op: OpRemove, Path: R + "/d/moved.txt"},
			{Op: OpRmdir, Path: R + "/d"},
		},
	},
	{
		name:   "scp-sftp-upload", // scp's default protocol is SFTP
		client: []string{"scp", "-q", "-S", "TEE", "LOCAL/small.txt", "LOCAL/big.bin", "h:REMOTE/"},
		want: []Event{
			{Op: OpOpen, Path: R + "/small.txt", Direction: Upload},
			{Op: OpSetstat, Path: R + "/small.txt"},
			{Op: OpWrite, Path: R + "/small.txt", Direction: Upload, Bytes: smallSize},
			{Op: OpOpen, Path: R + "/big.bin", Direction: Upload},
			{Op: OpSetstat, Path: R + "/big.bin"},
			{Op: OpWrite, Path: R + "/big.bin", Direction: Upload, Bytes: bigSize},
		},
	},
	{
		name:   "scp-sftp-download",
		client: []string{"scp", "-q", "-S", "TEE", "h:REMOTE/big.bin", "LOCAL/dl/"},
		want: []Event{
			{Op: OpOpen, Path: R + "/big.bin", Direction: Download},
			{Op: OpRead, Path: R + "/big.bin", Direction: Download, Bytes: bigSize},
		},
	},
	{
		name:   "scp-upload-files", // several files: scp sends -d
		client: []string{"scp", "-O", "-q", "-S", "TEE", "LOCAL/small.txt", "LOCAL/big.bin", "LOCAL/empty.txt", "h:REMOTE/"},
		want: []Event{
			{Op: OpSCPSend, Path: R + "/small.txt", Name: "small.txt", Direction: Upload, Bytes: smallSize},
			{Op: OpSCPSend, Path: R + "/big.bin", Name: "big.bin", Direction: Upload, Bytes: bigSize},
			{Op: OpSCPSend, Path: R + "/empty.txt", Name: "empty.txt", Direction: Upload},
		},
	},
	{
		name:   "scp-upload-rename", // the target names the file
		client: []string{"scp", "-O", "-q", "-S", "TEE", "LOCAL/small.txt", "h:REMOTE/renamed.txt"},
		want: []Event{
			{Op: OpSCPSend, Path: R + "/renamed.txt", Name: "small.txt", Direction: Upload, Bytes: smallSize},
		},
	},
	{
		name:   "scp-upload-tree", // -r -p: D, E and T records
		client: []string{"scp", "-O", "-q", "-r", "-p", "-S", "TEE", "LOCAL/tree", "h:REMOTE"},
		want: []Event{
			{Op: OpSCPSend, Path: R + "/tree/sub/b.bin", Name: "b.bin", Direction: Upload, Bytes: subSize},
			{Op: OpSCPSend, Path: R + "/tree/sub/empty", Name: "empty", Direction: Upload},
			{Op: OpSCPSend, Path: R + "/tree/a.txt", Name: "a.txt", Direction: Upload, Bytes: smallSize},
		},
	},
	{
		name:   "scp-upload-refused",
		client: []string{"scp", "-O", "-q", "-S", "TEE", "LOCAL/small.txt", "h:/proc/nope/x.txt"},
		want: []Event{
			{Op: OpSCPSend, Path: "/proc/nope/x.txt", Name: "small.txt", Direction: Upload, Error: "scp: /proc/nope/x.txt: No such file or directory"},
		},
	},
	{
		name:   "scp-download-file",
		client: []string{"scp", "-O", "-q", "-S", "TEE", "h:REMOTE/big.bin", "LOCAL/dl/"},
		want: []Event{
			{Op: OpSCPReceive, Path: R + "/big.bin", Name: "big.bin", Direction: Download, Bytes: bigSize},
		},
	},
	{
		name:   "scp-download-tree",
		client: []string{"scp", "-O", "-q", "-r", "-S", "TEE", "h:REMOTE/tree", "LOCAL/dl/"},
		want: []Event{
			{Op: OpSCPReceive, Path: R + "/tree/sub/b.bin", Name: "b.bin", Direction: Download, Bytes: subSize},
			{Op: OpSCPReceive, Path: R + "/tree/sub/c/d.txt", Name: "d.txt", Direction: Download, Bytes: smallSize},
			{Op: OpSCPReceive, Path: R + "/tree/a.txt", Name: "a.txt", Direction: Download, Bytes: smallSize},
		},
	},
	{
		name:   "scp-download-glob", // the target's shell expands the glob
		client: []string{"scp", "-O", "-q", "-S", "TEE", "h:REMOTE/*.txt", "LOCAL/dl/"},
		want: []Event{
			{Op: OpSCPReceive, Path: R + "/one.txt", Name: "one.txt", Direction: Download, Bytes: smallSize},
			{Op: OpSCPReceive, Path: R + "/two.txt", Name: "two.txt", Direction: Download},
		},
	},
	{
		name:   "scp-download-missing",
		client: []string{"scp", "-O", "-q", "-S", "TEE", "h:REMOTE/missing.txt", "LOCAL/dl/"},
		want: []Event{
			{Op: OpSCPReceive, Direction: Download, Error: "scp: " + R + "/missing.txt: No such file or directory"},
		},
	},
}

// TestRecapture runs each scenario with the real clients and keeps its
// capture in testdata.
func TestRecapture(t *testing.T) {
	if !*recapture {
		t.Skip("run with -recapture to regenerate the captures")
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			b := runScenario(t, sc)
			if err := os.WriteFile(filepath.Join("testdata", sc.name+".cap"), b, 0o644); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestLiveOpenSSH runs each scenario with the OpenSSH installed here and
// decodes what it captured, so a newer OpenSSH is checked too, not only
// the committed captures.
func TestLiveOpenSSH(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the OpenSSH clients")
	}
	for _, bin := range []string{"sftp", "scp", sftpServer} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s: %v", bin, err)
		}
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			command, recs := parseCapture(t, sc.name, runScenario(t, sc))
			checkEvents(t, decode(t, command, recs, 0), sc.want)
		})
	}
}

// runScenario runs one scenario in a fresh captureRoot and returns the
// capture.
func runScenario(t *testing.T, sc scenario) []byte {
	t.Helper()
	for _, bin := range []string{"sftp", "scp", sftpServer} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Fatalf("needs %s: %v", bin, err)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	setupCaptureDirs(t)
	t.Cleanup(func() {
		if err := os.RemoveAll(captureRoot); err != nil {
			t.Error(err)
		}
	})
	logPath := filepath.Join(captureRoot, "tee.log")
	batchPath := filepath.Join(captureRoot, "batch")
	expand := strings.NewReplacer("LOCAL", captureLocal, "REMOTE", captureRemote, "TEE", self, "BATCH", batchPath)
	if err := os.WriteFile(batchPath, []byte(expand.Replace(sc.batch)), 0o644); err != nil {
		t.Fatal(err)
	}
	args := make([]string, len(sc.client))
	for i, a := range sc.client {
		args[i] = expand.Replace(a)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = captureLocal
	// GORACE: a race-enabled tee would wait a second on exit.
	cmd.Env = append(os.Environ(), teeLogEnv+"="+logPath, "GORACE=atexit_sleep_ms=0")
	out, err := cmd.CombinedOutput()
	t.Logf("%v: exit %v\n%s", args, err, out)
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// setupCaptureDirs makes captureRoot afresh: local files to upload and
// remote files to download.
func setupCaptureDirs(t *testing.T) {
	t.Helper()
	if err := os.RemoveAll(captureRoot); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, bigSize)
	for i := range big {
		big[i] = byte(i * 7)
	}
	files := map[string][]byte{
		"local/small.txt":         []byte("hello\n"),
		"local/big.bin":           big,
		"local/empty.txt":         nil,
		"local/tree/a.txt":        []byte("hello\n"),
		"local/tree/sub/b.bin":    big[:subSize],
		"local/tree/sub/empty":    nil,
		"local/dl/.keep":          nil,
		"remote/big.bin":          big,
		"remote/one.txt":          []byte("hello\n"),
		"remote/two.txt":          nil,
		"remote/tree/a.txt":       []byte("hello\n"),
		"remote/tree/sub/b.bin":   big[:subSize],
		"remote/tree/sub/c/d.txt": []byte("hello\n"),
	}
	for name, b := range files {
		p := filepath.Join(captureRoot, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
