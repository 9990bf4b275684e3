package main

import (
	"crypto/x509"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	"golang.org/x/crypto/ssh"
)

// TestRequestApproveCert walks the whole flow with the real ssh client and
// checks the certificate with the real ssh-keygen.
func TestRequestApproveCert(t *testing.T) {
	t.Parallel()
	b := startBastion(t, "")

	// Plain-text output names the request and its state; the reason may be
	// several words without quotes (ssh joins the arguments with spaces).
	out := b.mustRun("alice", "request", "web01", "--login", "root", "--for", "30m", "--reason", `"INC-1 disk full"`)
	if !regexp.MustCompile(`request #1 pending`).MatchString(out) || !strings.Contains(out, "INC-1 disk full") {
		t.Fatalf("request output:\n%s", out)
	}
	r := b.mustRequest("alice", "web01", "--login", "root,deploy", "--for", "30m", "--reason", "INC-2", "disk", "full")
	if r.ID != 2 || r.State != "pending" || strings.Join(r.Logins, ",") != "root,deploy" {
		t.Fatalf("request --json: %+v", r)
	}

	var pending []requestJSON
	if err := json.Unmarshal([]byte(b.mustRun("bob", "requests", "--state", "pending", "--json")), &pending); err != nil || len(pending) != 2 {
		t.Fatalf("bob's pending requests: %v %+v", err, pending)
	}

	approveTime := time.Now()
	var approved requestJSON
	if err := json.Unmarshal([]byte(b.mustRun("bob", "approve", "2", "--comment", "go", "ahead", "--json")), &approved); err != nil {
		t.Fatal(err)
	}
	if approved.State != "approved" || len(approved.Approvals) != 1 || approved.Approvals[0].Approver != "bob" {
		t.Fatalf("approve: %+v", approved)
	}

	cert := b.mustRun("alice", "cert", "2")
	if !strings.HasPrefix(cert, "ssh-ed25519-cert-v01@openssh.com ") || strings.Count(strings.TrimSpace(cert), "\n") != 0 {
		t.Fatalf("cert output is not one certificate line: %q", cert)
	}
	certFile := filepath.Join(b.dir, "alice-cert.pub")
	if err := os.WriteFile(certFile, []byte(cert), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ssh-keygen", "-L", "-f", certFile)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	listing, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen -L: %v\n%s", err, listing)
	}
	l := string(listing)
	userCA := caKey(t, b, "user_ca")
	for _, want := range []string{
		`Key ID: "alice/req-2"`, "Serial: 1", "\n                root\n", "\n                deploy\n",
		"target-web01@bastionhq.dev", "Signing CA: ED25519 " + ssh.FingerprintSHA256(userCA),
		"Public key: ED25519-CERT " + ssh.FingerprintSHA256(pubKey(t, filepath.Join(b.dir, "keys", "alice.pub"))),
	} {
		if !strings.Contains(l, want) {
			t.Errorf("ssh-keygen -L lacks %q:\n%s", want, l)
		}
	}
	// Valid from about a minute ago (clock skew) to the grant's end (30m after approval).
	m := regexp.MustCompile(`Valid: from (\S+) to (\S+)`).FindStringSubmatch(l)
	if m == nil {
		t.Fatalf("no validity in:\n%s", l)
	}
	from, _ := time.ParseInLocation("2006-01-02T15:04:05", m[1], time.UTC)
	to, _ := time.ParseInLocation("2006-01-02T15:04:05", m[2], time.UTC)
	if d := approveTime.Add(-time.Minute).Sub(from); d < -5*time.Second || d > 5*time.Second {
		t.Errorf("valid from %s, want about %s", from, approveTime.Add(-time.Minute))
	}
	if d := approveTime.Add(30 * time.Minute).Sub(to); d < -5*time.Second || d > 5*time.Second {
		t.Errorf("valid to %s, want about %s", to, approveTime.Add(30*time.Minute))
	}

	// Serials are unique across the CA: a second certificate gets the next one.
	second := b.mustRun("alice", "cert", "2", "--json")
	var c struct{ Serial uint64 }
	if err := json.Unmarshal([]byte(second), &c); err != nil || c.Serial != 2 {
		t.Fatalf("second certificate serial: %v %s", err, second)
	}

	// The audit log has the whole story, hash-chained.
	audit := b.mustRun("carol", "audit", "--user", "alice", "--json")
	for _, typ := range []string{"request.create", "request.approve", "request.grant", "cert.issue"} {
		if !strings.Contains(audit, `"type":"`+typ+`"`) {
			t.Errorf("audit lacks %s:\n%s", typ, audit)
		}
	}
	if out, errOut, code := b.local("audit", "verify"); code != 0 || !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("audit verify: exit %d: %s%s", code, out, errOut)
	}
}

func caKey(t *testing.T, b *testBastion, field string) ssh.PublicKey {
	t.Helper()
	out, _, code := b.local("ca", "--json")
	var info map[string]string
	if code != 0 || json.Unmarshal([]byte(out), &info) != nil {
		t.Fatalf("ca --json: %d %s", code, out)
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(info[field]))
	if err != nil {
		t.Fatalf("%s: %v", field, err)
	}
	return key
}

func pubKey(t *testing.T, path string) ssh.PublicKey {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// TestRefusals checks each refusal's message and exit status: 1 for a
// refusal, 2 for a usage error.
func TestRefusals(t *testing.T) {
	t.Parallel()
	b := startBastion(t, "")
	pending := b.mustRequest("alice", "web01", "--login", "root", "--for", "1h", "--reason", "pending")
	denied := b.mustRequest("alice", "web01", "--login", "root", "--for", "1h", "--reason", "to deny")
	b.mustRun("bob", "deny", fmt.Sprint(denied.ID), "--reason", "not during the freeze")
	revoked := b.mustRequest("alice", "web01", "--login", "root", "--for", "1h", "--reason", "to revoke")
	b.mustRun("bob", "approve", fmt.Sprint(revoked.ID))
	b.mustRun("bob", "revoke", fmt.Sprint(revoked.ID), "--reason", "done")
	short := b.mustRequest("alice", "web01", "--login", "root", "--for", "1s", "--reason", "short")
	b.mustRun("bob", "approve", fmt.Sprint(short.ID))
	dbOnly := b.mustRequest("alice", "orders", "--for", "1h", "--reason", "db")
	b.mustRun("bob", "approve", fmt.Sprint(dbOnly.ID))
	malloryOwn := b.mustRequest("mallory", "web01", "--login", "root", "--for", "1h", "--reason", "m")
	b.mustRun("bob", "approve", fmt.Sprint(malloryOwn.ID))
	// Wait for the 1-second grant to end (a condition, not a fixed sleep).
	waitFor(t, 10*time.Second, func() bool {
		out, _, _ := b.ssh("alice", "show", fmt.Sprint(short.ID), "--json")
		return strings.Contains(out, `"state":"expired"`)
	})

	id := func(r requestJSON) string { return fmt.Sprint(r.ID) }
	tests := []struct {
		name    string
		user    string
		command []string
		code    int
		stderr  string
	}{
		{"cert for a pending request", "alice", []string{"cert", id(pending)}, 1, "is pending"},
		{"cert for a denied request", "alice", []string{"cert", id(denied)}, 1, "is denied"},
		{"cert for a revoked request", "alice", []string{"cert", id(revoked)}, 1, "is revoked"},
		{"cert for an expired request", "alice", []string{"cert", id(short)}, 1, "is expired"},
		{"cert for someone else's request", "alice", []string{"cert", id(malloryOwn)}, 1, "no such request"},
		{"cert for a database request", "alice", []string{"cert", id(dbOnly)}, 1, "use `token"},
		{"approver takes someone else's cert", "bob", []string{"cert", id(malloryOwn)}, 1, "mallory's, not yours"},
		{"self-approval", "alice", []string{"approve", id(pending)}, 1, "your own request"},
		{"approve without the approver role", "mallory", []string{"approve", id(pending)}, 1, "no such request"},
		{"auditor cannot approve", "carol", []string{"approve", id(pending)}, 1, "needs one of the roles: lead"},
		{"approve a decided request", "bob", []string{"approve", id(denied)}, 1, "is denied"},
		{"deny without reason", "bob", []string{"deny", id(pending)}, 2, "--reason TEXT is required"},
		{"unknown command", "alice", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"unknown target", "alice", []string{"request", "web99", "--for", "1h", "--reason", "x"}, 2, `unknown target "web99"`},
		{"bad duration", "alice", []string{"request", "web01", "--login", "root", "--for", "3x", "--reason", "x"}, 2, `bad duration "3x"`},
		{"missing duration", "alice", []string{"request", "web01", "--login", "root", "--reason", "x"}, 2, "--for DURATION is required"},
		{"missing reason", "alice", []string{"request", "web01", "--login", "root", "--for", "1h"}, 2, "a reason is required"},
		{"unknown flag", "alice", []string{"request", "web01", "--frob", "--for", "1h"}, 2, "unknown flag --frob"},
		{"login not requestable", "alice", []string{"request", "web01", "--login", "postgres", "--for", "1h", "--reason", "x"}, 1, `login "postgres" is not requestable`},
		{"duration over the maximum", "alice", []string{"request", "web01", "--login", "root", "--for", "5h", "--reason", "x"}, 1, "exceeds the maximum 4h0m0s"},
		{"target not requestable", "carol", []string{"request", "web01", "--login", "root", "--for", "1h", "--reason", "x"}, 1, "do not allow requesting web01"},
		{"source network condition", "alice", []string{"request", "vpn-only", "--login", "root", "--for", "1h", "--reason", "x"}, 1, "not in an allowed network"},
		{"bad request id", "alice", []string{"show", "abc"}, 2, `"abc" is not a request id`},
		{"unterminated quote", "alice", []string{"request", "'web01"}, 2, "unterminated single quote"},
		{"oversize argument", "alice", []string{"request", "web01", "--reason", strings.Repeat("x", 2000), "--for", "1h", "--login", "root"}, 2, "--reason is too long"},
		{"audit of others without permission", "alice", []string{"audit", "--user", "bob"}, 1, "needs the audit permission"},
		{"audit verify without permission", "alice", []string{"audit", "verify"}, 1, "needs the audit permission"},
		{"withdraw twice", "alice", []string{"revoke", id(revoked)}, 1, "is revoked"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, stderr, code := b.ssh(tc.user, tc.command...)
			if code != tc.code || !strings.Contains(stderr, tc.stderr) {
				t.Fatalf("%v: exit %d, stderr %q; want exit %d and %q", tc.command, code, stderr, tc.code, tc.stderr)
			}
			// --json errors are one JSON object naming the kind.
			out, _, jcode := b.ssh(tc.user, append(tc.command, "--json")...)
			var e struct{ Error, Kind string }
			if jcode != tc.code || json.Unmarshal([]byte(out), &e) != nil || e.Error == "" {
				t.Fatalf("--json: exit %d, stdout %q", jcode, out)
			}
		})
	}
}

func upstreamLine(t *testing.T, caOutput string) string {
	t.Helper()
	for _, l := range strings.Split(caOutput, "\n") {
		if strings.HasPrefix(l, "ssh-") && strings.HasSuffix(l, "bastion-upstream-ca") {
			return l
		}
	}
	t.Fatalf("no upstream CA line in:\n%s", caOutput)
	return ""
}

func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestLoginRefusals: a key registered to someone else, and malformed user
// names, are refused at authentication with a reason in the banner.
func TestLoginRefusals(t *testing.T) {
	t.Parallel()
	b := startBastion(t, "")
	tests := []struct {
		name, key, user, banner string
	}{
		{"someone else's key", "mallory", "alice", ""},
		{"unknown user", "alice", "nobody", ""},
		{"bad characters", "alice", "al/ice", "invalid user name"},
		{"too long", "alice", strings.Repeat("a", 200), "user name too long"},
		{"empty target", "alice", "root@", "invalid user name"},
		{"target without a certificate", "alice", "root@web01", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append(b.sshArgs(tc.key, "-o", "LogLevel=INFO"), "-l", tc.user, "127.0.0.1", "whoami")
			out, stderr, code := runCmd(t, nil, "ssh", args...)
			if code != 255 || !strings.Contains(stderr, "Permission denied") || !strings.Contains(stderr, tc.banner) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 255, Permission denied and %q", code, out, stderr, tc.banner)
			}
		})
	}
	// The server is still up and serving.
	if out := b.mustRun("alice", "whoami"); !strings.Contains(out, "user:   alice") {
		t.Fatalf("whoami after refusals: %q", out)
	}
}

// TestWaitAndConcurrentDecisions: wait blocks until a decision and prints
// the certificate; of several concurrent decisions exactly one wins.
func TestWaitAndConcurrentDecisions(t *testing.T) {
	t.Parallel()
	b := startBastion(t, "")
	r := b.mustRequest("alice", "web01", "--login", "root", "--for", "1h", "--reason", "wait")

	type result struct {
		out, errOut string
		code        int
	}
	waited := make(chan result, 1)
	go func() {
		out, errOut, code := b.ssh("alice", "wait", fmt.Sprint(r.ID))
		waited <- result{out, errOut, code}
	}()
	// Decide only once wait is really waiting: its login is in the audit log
	// after the request's creation.
	waitFor(t, 10*time.Second, func() bool {
		out, _, _ := b.ssh("carol", "audit", "--user", "alice", "--type", "login", "--json")
		return strings.Count(out, "\n") >= 2
	})
	select {
	case res := <-waited:
		t.Fatalf("wait returned before any decision: %+v", res)
	default:
	}

	// bob, dave and erin (all leads) approve and deny at once.
	var wg sync.WaitGroup
	codes := make(map[string]int)
	var mu sync.Mutex
	for _, d := range []struct{ user, verb string }{{"bob", "approve"}, {"dave", "approve"}, {"erin", "deny"}, {"bob", "deny"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			args := []string{d.verb, fmt.Sprint(r.ID)}
			if d.verb == "deny" {
				args = append(args, "--reason", "no")
			}
			_, _, code := b.ssh(d.user, args...)
			mu.Lock()
			codes[d.user+" "+d.verb] = code
			mu.Unlock()
		}()
	}
	wg.Wait()
	winners := 0
	for _, c := range codes {
		if c == 0 {
			winners++
		}
	}
	if winners != 1 {
		t.Fatalf("want exactly one decision to win, got %v", codes)
	}
	res := <-waited
	final := b.mustRun("alice", "show", fmt.Sprint(r.ID), "--json")
	switch {
	case strings.Contains(final, `"state":"approved"`):
		if res.code != 0 || !strings.HasPrefix(res.out, "ssh-ed25519-cert-v01@openssh.com ") {
			t.Fatalf("wait on an approved request: %+v", res)
		}
	case strings.Contains(final, `"state":"denied"`):
		if res.code != 1 || !strings.Contains(res.errOut, "is denied") {
			t.Fatalf("wait on a denied request: %+v", res)
		}
	default:
		t.Fatalf("request neither approved nor denied: %s", final)
	}
	if out, errOut, code := b.local("audit", "verify"); code != 0 {
		t.Fatalf("audit verify: %s%s", out, errOut)
	}
}

// TestPolicyFeatures: two approvals, auto-approval, standing access, and
// revocation by the requester and by an approver.
func TestPolicyFeatures(t *testing.T) {
	t.Parallel()
	b := startBastion(t, "")

	two := b.mustRequest("alice", "db-prod", "--for", "1h", "--reason", "migration")
	if out := b.mustRun("bob", "approve", fmt.Sprint(two.ID), "--json"); !strings.Contains(out, `"state":"pending"`) {
		t.Fatalf("after one of two approvals: %s", out)
	}
	if _, stderr, code := b.ssh("bob", "approve", fmt.Sprint(two.ID)); code != 1 || !strings.Contains(stderr, "already approved") {
		t.Fatalf("same approver twice: %d %s", code, stderr)
	}
	if out := b.mustRun("dave", "approve", fmt.Sprint(two.ID), "--json"); !strings.Contains(out, `"state":"approved"`) {
		t.Fatalf("after two approvals: %s", out)
	}

	auto := b.mustRequest("alice", "sandbox1", "--for", "10m", "--reason", "try")
	if auto.State != "approved" || auto.GrantEnd == "" {
		t.Fatalf("auto-approval from 127.0.0.1: %+v", auto)
	}

	var targets []struct {
		Name        string   `json:"name"`
		Now         bool     `json:"now"`
		NowLogins   []string `json:"now_logins"`
		Requestable bool     `json:"requestable"`
	}
	if err := json.Unmarshal([]byte(b.mustRun("alice", "targets", "--json")), &targets); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, tg := range targets {
		got[tg.Name] = fmt.Sprintf("now=%v logins=%v requestable=%v", tg.Now, tg.NowLogins, tg.Requestable)
	}
	for name, want := range map[string]string{
		"staging":  "now=true logins=[ubuntu] requestable=false",
		"web01":    "now=false logins=[] requestable=true",
		"sandbox1": "now=true logins=[root] requestable=true",
	} {
		if got[name] != want {
			t.Errorf("targets: %s: got %q, want %q", name, got[name], want)
		}
	}

	// The requester withdraws a pending request and releases a grant; an
	// approver revokes one.
	p := b.mustRequest("alice", "web01", "--login", "root", "--for", "1h", "--reason", "x")
	if out := b.mustRun("alice", "revoke", fmt.Sprint(p.ID), "--json"); !strings.Contains(out, `"state":"cancelled"`) {
		t.Fatalf("withdraw: %s", out)
	}
	g := b.mustRequest("alice", "web01", "--login", "root", "--for", "1h", "--reason", "x")
	b.mustRun("bob", "approve", fmt.Sprint(g.ID))
	b.mustRun("alice", "cert", fmt.Sprint(g.ID))
	if out := b.mustRun("dave", "revoke", fmt.Sprint(g.ID), "--reason", "incident over", "--json"); !strings.Contains(out, `"state":"revoked"`) || !strings.Contains(out, `"closed_by":"dave"`) {
		t.Fatalf("approver revoke: %s", out)
	}
	if _, stderr, code := b.ssh("alice", "cert", fmt.Sprint(g.ID)); code != 1 || !strings.Contains(stderr, "is revoked") {
		t.Fatalf("cert after revoke: %d %s", code, stderr)
	}
}

// TestInteractivePrompt: plain `ssh alice@bastion` opens a prompt, with and
// without a terminal.
func TestInteractivePrompt(t *testing.T) {
	t.Parallel()
	b := startBastion(t, "")
	for _, mode := range []string{"-tt", "-T"} {
		t.Run(mode, func(t *testing.T) {
			args := append(b.sshArgs("alice", mode), "alice@127.0.0.1")
			out, stderr, code := runCmd(t, strings.NewReader("whoami\nrequest web01 --login root --for 1h --reason from the prompt\nexit\n"), "ssh", args...)
			if code != 0 {
				t.Fatalf("exit %d: %s %s", code, out, stderr)
			}
			for _, want := range []string{"Welcome to Bastion, alice", "web01", "user:   alice", "pending"} {
				if !strings.Contains(out, want) {
					t.Errorf("prompt output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

// TestCA: the ca command prints the three SSH CA keys, distinct, and the
// TLS CA; Bastion's host certificate verifies against the printed host CA
// (the test's ssh already runs with StrictHostKeyChecking=yes against it).
func TestCA(t *testing.T) {
	t.Parallel()
	b := startBastion(t, "")
	out := b.mustRun("alice", "ca")
	for _, want := range []string{"TrustedUserCAKeys", "@cert-authority [127.0.0.1]:" + b.sshPort, "bastion-upstream-ca", "bastion-user-ca"} {
		if !strings.Contains(out, want) {
			t.Errorf("ca output lacks %q:\n%s", want, out)
		}
	}
	user, upstream, host := caKey(t, b, "user_ca"), caKey(t, b, "upstream_ca"), caKey(t, b, "host_ca")
	if ssh.FingerprintSHA256(user) == ssh.FingerprintSHA256(upstream) || ssh.FingerprintSHA256(upstream) == ssh.FingerprintSHA256(host) {
		t.Fatal("CA keys are not distinct")
	}
	pemOut := b.mustRun("alice", "ca", "--tls")
	block, _ := pem.Decode([]byte(pemOut))
	if block == nil {
		t.Fatalf("ca --tls is not PEM: %q", pemOut)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !cert.IsCA {
		t.Fatalf("TLS CA: %v, IsCA=%v", err, cert != nil && cert.IsCA)
	}
	// Keys persist in the data dir with 0600.
	for _, f := range []string{"user_ca", "upstream_ca", "host_ca", "tls_ca.key"} {
		st, err := os.Stat(filepath.Join(b.dir, "data", "ca", f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", f, err, st)
		}
	}
	// A local run prints the same keys (it knows only the configured port).
	local, _, code := b.local("ca")
	if code != 0 || !strings.Contains(local, upstreamLine(t, out)) || !strings.Contains(local, "TrustedUserCAKeys") {
		t.Errorf("bastion ca differs from ssh … ca:\n%s\n---\n%s", local, out)
	}
}

// TestAuditTamperDetected: altering, deleting or reordering a stored event
// makes `bastion audit verify` fail naming the event.
func TestAuditTamperDetected(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, sql, want string
	}{
		{"altered", "UPDATE audit_events SET actor = 'mallory' WHERE seq = 3", "broken at event 3"},
		{"deleted", "DELETE FROM audit_events WHERE seq = 2", "broken at event 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := startBastion(t, "")
			r := b.mustRequest("alice", "web01", "--login", "root", "--for", "1h", "--reason", "x")
			b.mustRun("bob", "approve", fmt.Sprint(r.ID))
			b.stop()
			db, err := sql.Open("sqlite3", filepath.Join(b.dir, "data", "bastion.db"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(tc.sql); err != nil {
				t.Fatal(err)
			}
			db.Close()
			out, stderr, code := b.local("audit", "verify")
			if code != 1 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("audit verify after tampering: exit %d, %q %q; want %q", code, out, stderr, tc.want)
			}
		})
	}
}

// TestAuditOddBytes: command lines holding bytes that are not UTF-8, or
// terminal escapes (argv cannot hold NUL), sent by a user with no grant, are
// audited and the chain still verifies; the auditor sees them escaped, not
// raw on their terminal. (One such byte made verify report the chain
// altered from that event on, so a real alteration could hide behind it.)
func TestAuditOddBytes(t *testing.T) {
	t.Parallel()
	b := startBastion(t, "")
	for _, line := range []string{"bogus\x89cmd", "request web01 --for 1h --reason \xff\xfe", "esc\x1b]0;pwned\x07"} {
		if _, _, code := b.ssh("mallory", line); code == 0 {
			t.Fatalf("%q: exit 0", line)
		}
	}
	out, stderr, code := b.local("audit", "verify")
	if code != 0 {
		t.Fatalf("audit verify: exit %d: %s %s", code, out, stderr)
	}
	out, _, code = b.local("audit", "--user", "mallory")
	if code != 0 {
		t.Fatalf("audit: exit %d", code)
	}
	if !strings.Contains(out, `bogus\\x89cmd`) || strings.Contains(out, "\x89") || strings.Contains(out, "\x1b") {
		t.Fatalf("the auditor's view of the odd bytes:\n%q", out)
	}
}

// TestConfigErrors: a broken config names file, line and field, and serve
// exits with status 2 without starting.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "bad.yaml")
	cfg := "data_dir: ./data\nusers:\n  - name: alice\n    roles: [developer]\nroles:\n  developer:\n    request:\n      - targets: [web01]\n        approvers: [lead]\n        max_duration: 4x\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runCmd(t, nil, binary, "serve", "--config", path)
	want := path + `:10: roles.developer.request[0].max_duration: invalid duration "4x"`
	if code != 2 || !strings.Contains(stderr, want) || !strings.Contains(stderr, `unknown role "lead"`) {
		t.Fatalf("exit %d, stderr %q; want 2 and %q", code, stderr, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
		t.Error("a refused config still created the data dir")
	}
}

// TestWebhook: approvers are notified of new and decided requests with a
// Slack-compatible payload; a failing webhook does not block anything.
func TestWebhook(t *testing.T) {
	t.Parallel()
	got := make(chan map[string]any, 10)
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p map[string]any
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &p); err == nil {
			got <- p
		}
	}))
	defer ok.Close()
	b := startBastion(t, fmt.Sprintf("notify:\n  webhook:\n    url: %s\n    attempts: 2\n", ok.URL))
	r := b.mustRequest("alice", "web01", "--login", "root", "--for", "1h", "--reason", "hook")
	b.mustRun("bob", "approve", fmt.Sprint(r.ID))
	events := map[string]string{}
	for len(events) < 2 {
		select {
		case p := <-got:
			events[fmt.Sprint(p["event"])] = fmt.Sprint(p["text"])
		case <-time.After(10 * time.Second):
			t.Fatalf("webhook got %v, want request.create and request.grant", events)
		}
	}
	if !strings.Contains(events["request.create"], "request #1 by alice for web01") || !strings.Contains(events["request.grant"], "approved by bob") {
		t.Fatalf("webhook texts: %v", events)
	}

	// A webhook answering garbage: the workflow goes on, the failure is audited.
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "<html>garbage", http.StatusBadGateway)
	}))
	defer bad.Close()
	b2 := startBastion(t, fmt.Sprintf("notify:\n  webhook:\n    url: %s\n    attempts: 1\n", bad.URL))
	r2 := b2.mustRequest("alice", "web01", "--login", "root", "--for", "1h", "--reason", "hook")
	b2.mustRun("bob", "approve", fmt.Sprint(r2.ID))
	waitFor(t, 10*time.Second, func() bool {
		out, _, _ := b2.ssh("carol", "audit", "--type", "notify", "--json")
		return strings.Contains(out, "502 Bad Gateway")
	})
}

// TestDemo: `bastion demo` starts real targets and Bastion, writes demo.json
// once everything listens, serves the demo users, and stops everything on
// interrupt.
func TestDemo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd := exec.Command(binary, "demo", "--dir", dir, "--ssh-port", "0", "--http-port", "0")
	var out syncBuffer
	cmd.Stdout = writerFunc(out.WriteString)
	cmd.Stderr = writerFunc(out.WriteString)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	}()
	var info struct {
		SSH     string            `json:"ssh"`
		HTTP    string            `json:"http"`
		Targets map[string]string `json:"targets"`
	}
	waitFor(t, 90*time.Second, func() bool {
		select {
		case err := <-exited:
			t.Fatalf("demo exited: %v\n%s", err, out.String())
		default:
		}
		data, err := os.ReadFile(filepath.Join(dir, "demo.json"))
		return err == nil && json.Unmarshal(data, &info) == nil
	})
	for _, name := range []string{"web01", "orders", "shop"} {
		if info.Targets[name] == "" {
			t.Fatalf("demo.json lacks target %s: %+v", name, info)
		}
	}
	port := info.SSH[strings.LastIndex(info.SSH, ":")+1:]
	ssh := func(user string, args ...string) (string, string, int) {
		a := []string{"-F", "/dev/null", "-p", port, "-i", filepath.Join(dir, "keys", user), "-o", "IdentitiesOnly=yes",
			"-o", "UserKnownHostsFile=" + filepath.Join(dir, "known_hosts"), "-o", "StrictHostKeyChecking=yes",
			"-o", "BatchMode=yes", user + "@127.0.0.1"}
		return runCmd(t, nil, "ssh", append(a, args...)...)
	}
	r, stderr, code := ssh("alice", "request", "web01", "--login", "root", "--for", "30m", "--reason", "INC-1", "disk", "full", "--json")
	if code != 0 || !strings.Contains(r, `"state":"pending"`) {
		t.Fatalf("demo request: %d %s %s", code, r, stderr)
	}
	if o, e, c := ssh("bob", "approve", "1"); c != 0 {
		t.Fatalf("demo approve: %d %s %s", c, o, e)
	}
	if o, e, c := ssh("alice", "cert", "1"); c != 0 || !strings.HasPrefix(o, "ssh-ed25519-cert-v01@openssh.com") {
		t.Fatalf("demo cert: %d %s %s", c, o, e)
	}
	if o, e, c := ssh("carol", "audit", "--since", "1h"); c != 0 || !strings.Contains(o, "cert.issue") {
		t.Fatalf("demo audit: %d %s %s", c, o, e)
	}
	// The demo's config works from any shell (it names no variable only the
	// demo process has).
	if o, e, c := runCmd(t, nil, binary, "--config", filepath.Join(dir, "bastion.yaml"), "audit", "verify"); c != 0 || !strings.HasPrefix(o, "ok: ") {
		t.Fatalf("audit verify on the demo config: %d %s %s", c, o, e)
	}
	resp, err := http.Get("http://" + info.HTTP + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", err, resp)
	}
	resp.Body.Close()
	if !strings.Contains(out.String(), "request web01 --login root") {
		t.Errorf("no cheat sheet in the demo's output:\n%s", out.String())
	}

	// Interrupt: everything it started stops.
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("demo did not stop on interrupt\n%s", out.String())
	}
	for _, addr := range info.Targets {
		waitFor(t, 10*time.Second, func() bool { return !dialable(addr) })
	}
}

func dialable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err == nil
}

type writerFunc func(string)

func (w writerFunc) Write(p []byte) (int, error) { w(string(p)); return len(p), nil }
