package ssh

import (
	"fmt"
	"strings"
	"sync"

	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/protocols/ssh/transfer"
)

// transferDecoder is an SFTP or scp decoder fed copies of a session's
// streams.
type transferDecoder interface {
	FromClient(p []byte)
	FromServer(p []byte)
	End()
}

// watchTransfers sets the channel's transfer decoder for an sftp
// subsystem (kind "sftp") or an `scp -t`/`scp -f` exec command.
func (r *channelRec) watchTransfers(kind, command string) {
	emit := func(e transfer.Event) { r.transfer(e) }
	var d transferDecoder
	switch kind {
	case "sftp":
		dec := transfer.NewSFTP(emit)
		d = dec
		if rules := r.tc.fileRules(); rules != nil {
			// The decoder sees what the gate forwards (a refused request
			// replaced), not what the user sent: see sentToTarget.
			r.mu.Lock()
			r.files = &sessionGate{gate: r.tc.newSFTPGate(r, rules), dec: dec}
			r.mu.Unlock()
			d = gatedDecoder{dec}
		}
	case "exec":
		if scp, ok := transfer.NewSCP(command, emit); ok {
			d = scp
		}
	}
	r.mu.Lock()
	r.xfer = d
	r.mu.Unlock()
}

// transfer records one file operation: a marker in the recording and an
// audit event. Opens are left out (the write or read that follows says
// more); a decode error is recorded but the session goes on.
func (r *channelRec) transfer(e transfer.Event) {
	if e.Op == transfer.OpOpen {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "transfer: %s %s", e.Op, e.Path)
	if e.NewPath != "" {
		fmt.Fprintf(&b, " -> %s", e.NewPath)
	}
	if e.Direction != "" {
		fmt.Fprintf(&b, " (%s, %d bytes)", e.Direction, e.Bytes)
	}
	if e.Error != "" {
		fmt.Fprintf(&b, ": %s", e.Error)
	}
	label := b.String()
	if r.term != nil { // called with r.mu held by the stream hooks
		r.write(func() error { return r.term.Marker(label) })
	}
	ev := audit.Event{Type: audit.Transfer, Reason: e.Error, Details: map[string]string{
		"op": e.Op, "path": e.Path, "direction": string(e.Direction), "bytes": fmt.Sprint(e.Bytes)}}
	if e.NewPath != "" {
		ev.Details["new_path"] = e.NewPath
	}
	if e.Error != "" {
		ev.Outcome = audit.OutcomeError
	}
	r.tc.audit(ev)
}

// sessionGate is the SFTP gate of a session under file rules, and the
// recording's decoder it feeds.
type sessionGate struct {
	gate   *transfer.SFTPGate
	dec    *transfer.SFTP
	failed sync.Once
}

// gatedDecoder is a gated session's decoder as the input hook sees it: the
// user's bytes are not what reaches the target, so it ignores them, and
// the gate's output is fed to it instead (sentToTarget).
type gatedDecoder struct{ *transfer.SFTP }

func (gatedDecoder) FromClient([]byte) {}

// gate is the channel's SFTP gate, or nil.
func (r *channelRec) gate() *transfer.SFTPGate {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.files == nil {
		return nil
	}
	return r.files.gate
}

// sentToTarget hands the recording's decoder what the gate forwarded.
func (r *channelRec) sentToTarget(p []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.files != nil {
		r.files.dec.FromClient(p)
	}
}

// gateFailed records, once, that the gate could not follow the session: it
// forwards nothing more, and the session ends.
func (r *channelRec) gateFailed(err error) {
	r.mu.Lock()
	g := r.files
	r.mu.Unlock()
	g.failed.Do(func() {
		r.tc.log.Warn("sftp session cannot be checked; ending it", "err", err)
		msg := "the file transfer cannot be checked any further: " + err.Error()
		r.marker("denied: " + msg)
		r.tc.audit(audit.Event{Type: audit.Transfer, Outcome: audit.OutcomeRefused, Reason: msg, Details: map[string]string{"op": transfer.OpDecodeError}})
	})
}

// refusedTransfer records and audits an SFTP request the file rules
// refused.
func (r *channelRec) refusedTransfer(q transfer.Request, msg string) {
	paths := strings.Join(q.Paths, " -> ")
	r.marker(fmt.Sprintf("transfer denied: %s %s: %s", q.Name, paths, msg))
	ev := audit.Event{Type: audit.Transfer, Outcome: audit.OutcomeRefused, Reason: msg,
		Details: map[string]string{"op": strings.Join(q.Ops, ","), "request": q.Name}}
	if len(q.Paths) > 0 {
		ev.Details["path"] = q.Paths[0]
	}
	if len(q.Paths) > 1 {
		ev.Details["new_path"] = q.Paths[1]
	}
	r.tc.audit(ev)
}
