package ssh

import (
	"fmt"
	"path"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/protocols/ssh/shellcmd"
	"github.com/bastionhq/bastion/protocols/ssh/transfer"
)

// FileRules decides file-transfer operations (sftp, scp) before they
// reach a target. The ExecRules of the server's Config provide them when
// they implement this interface (PolicyRules does); otherwise file
// transfers are not restricted.
type FileRules interface {
	// DecideFile decides op on every one of paths (normalised absolute
	// paths; "" for one that is not known).
	DecideFile(user, target string, op policy.FileOp, paths ...string) policy.FileDecision
	// FilesClosed reports that no file operation at all is allowed.
	FilesClosed(user, target string) bool
	// FilesRestricted reports that some file operation could be refused.
	FilesRestricted(user, target string) bool
}

var _ FileRules = PolicyRules{}

// DecideFile decides a file operation with the policy's file rules.
func (r PolicyRules) DecideFile(user, target string, op policy.FileOp, paths ...string) policy.FileDecision {
	return r.Policy().DecideFile(user, target, op, paths...)
}

// FilesClosed reports whether the policy allows user no file operation on
// target.
func (r PolicyRules) FilesClosed(user, target string) bool {
	return r.Policy().FilesClosed(user, target)
}

// FilesRestricted reports whether any file rule or default could refuse a
// file operation of user on target.
func (r PolicyRules) FilesRestricted(user, target string) bool {
	return r.Policy().FilesRestricted(user, target)
}

// fileRules are the file rules that apply to this connection's sessions,
// or nil when file transfers are not restricted here.
func (tc *targetConn) fileRules() FileRules {
	rules, ok := tc.srv.cfg.ExecRules.(FileRules)
	if !ok || !rules.FilesRestricted(tc.grant.User, tc.grant.Target) {
		return nil
	}
	return rules
}

// checkSFTP decides whether an sftp subsystem may start at all: "" if so,
// else the refusal.
func (tc *targetConn) checkSFTP() string {
	rules := tc.fileRules()
	if rules == nil || !rules.FilesClosed(tc.grant.User, tc.grant.Target) {
		return ""
	}
	return fmt.Sprintf("file transfer (sftp, scp) is not allowed on %s: no file rule of your roles allows any file operation there", tc.grant.Target)
}

// refuseTransfer answers a file transfer refused as a whole (an sftp
// subsystem, a legacy scp): marked in the recording, audited, and told to
// the user, as a refused exec is.
func (tc *targetConn) refuseTransfer(uch, upch ssh.Channel, req *ssh.Request, rec *channelRec, what, msg string) {
	rec.marker("denied: " + msg)
	tc.audit(audit.Event{Type: audit.Transfer, Outcome: audit.OutcomeRefused, Reason: msg, Details: map[string]string{"op": what}})
	tc.denyExec(uch, upch, req, msg)
}

// transferPrograms are the programs that move files by a protocol of their
// own, which Bastion cannot decide file by file: run where file rules
// apply, they would go around them.
var transferPrograms = map[string]bool{"scp": true, "sftp-server": true, "rsync": true}

// checkTransferExec refuses an exec command that runs a file-transfer
// program (legacy scp -t/-f, sftp-server, rsync) where file rules apply:
// "" lets the command go on to the command rules. A command whose name is
// only known when it runs could be one of them and is refused too.
func (tc *targetConn) checkTransferExec(command string) string {
	if tc.fileRules() == nil {
		return ""
	}
	cmds, err := shellcmd.Parse(command)
	if err != nil {
		return fmt.Sprintf("the command cannot be checked (%v), and file transfers are restricted on %s", err, tc.grant.Target)
	}
	for _, c := range cmds {
		switch {
		case c.Dynamic:
			return fmt.Sprintf("a command whose name is only known when it runs could be a file transfer, and file transfers are restricted on %s", tc.grant.Target)
		case transferPrograms[c.Name]:
			return fmt.Sprintf("%s cannot be checked against the file rules that apply on %s: use sftp, or scp without -O (it speaks SFTP), whose every file is checked", c.Name, tc.grant.Target)
		}
	}
	return ""
}

// newSFTPGate returns the gate that decides each request of an sftp
// session of rec under rules.
func (tc *targetConn) newSFTPGate(rec *channelRec, rules FileRules) *transfer.SFTPGate {
	return transfer.NewSFTPGate(func(q transfer.Request) string {
		msg := decideSFTP(rules, tc.grant.User, tc.grant.Target, q)
		if msg != "" {
			rec.refusedTransfer(q, msg)
			tc.log.Info("sftp request refused", "request", q.Name, "op", strings.Join(q.Ops, ","))
		}
		return msg
	})
}

// decideSFTP decides one SFTP request: "" to let it through, else the
// refusal. Each of its operations is decided on all its paths, normalised;
// what cannot be checked (an unknown request, a path with a NUL byte or
// too long) is refused.
func decideSFTP(rules FileRules, user, target string, q transfer.Request) string {
	if q.Unchecked != "" {
		return fmt.Sprintf("%s cannot be checked (%s), and file transfers are restricted on %s", q.Name, q.Unchecked, target)
	}
	paths := make([]string, len(q.Paths))
	for i, p := range q.Paths {
		dir := q.Dir
		if q.LinkTarget && i == 1 {
			dir = "" // relative to the link's directory, known only if the link is
			if paths[0] != "" {
				dir = path.Dir(paths[0])
			}
		}
		clean, ok := policy.CleanPath(dir, p)
		if !ok {
			return fmt.Sprintf("%s: a path holding a NUL byte, or longer than %d bytes, cannot be checked", q.Name, transfer.MaxPath)
		}
		paths[i] = clean
	}
	for _, op := range q.Ops {
		d := rules.DecideFile(user, target, policy.FileOp(op), paths...)
		if d.Allowed() {
			continue
		}
		if d.Rule != "" {
			return fmt.Sprintf("denied by rule %s: %s", d.Rule, d.Reason)
		}
		return "denied: " + d.Reason
	}
	return ""
}

// gatedUpstream is the target's side of a session channel, through the
// channel's SFTP gate once it has one: what the user sends is decided
// request by request before it is written.
type gatedUpstream struct {
	ssh.Channel
	rec *channelRec
}

func (u gatedUpstream) Write(p []byte) (int, error) {
	return u.rec.throughGate(p, true, func(b []byte) error {
		_, err := u.Channel.Write(b)
		return err
	})
}

// gatedOutput is the user's side of a session channel's output, through
// the channel's SFTP gate once it has one: the target's answers to refused
// requests become permission errors.
type gatedOutput struct {
	w   recordedWriter
	rec *channelRec
}

func (o gatedOutput) Write(p []byte) (int, error) {
	return o.rec.throughGate(p, false, func(b []byte) error {
		_, err := o.w.Write(b)
		return err
	})
}

// throughGate writes p with write, through the channel's SFTP gate if it
// has one (what the user sent if fromClient, else what the target sent). A
// gate that cannot follow the session stops it: nothing more is written.
func (r *channelRec) throughGate(p []byte, fromClient bool, write func([]byte) error) (int, error) {
	g := r.gate()
	if g == nil {
		if err := write(p); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	from := g.FromServer
	if fromClient {
		from = g.FromClient
	}
	out, err := from(p)
	if err != nil {
		r.gateFailed(err)
		return 0, err
	}
	if fromClient {
		r.sentToTarget(out)
	}
	if err := write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}
