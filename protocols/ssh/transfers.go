package ssh

import (
	"fmt"
	"strings"

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
		d = transfer.NewSFTP(emit)
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
