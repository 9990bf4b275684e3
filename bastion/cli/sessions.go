package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/bastion/store"
	"github.com/bastionhq/bastion/recorder"
	"github.com/bastionhq/bastion/recorder/replay"
)

// SessionLog is the subset of the store the session commands use: the
// sessions they read and the legal holds `hold` sets (part of every store's
// contract, so no store can silently skip them).
type SessionLog interface {
	Session(ctx context.Context, id string) (*store.Session, error)
	Sessions(ctx context.Context, f store.SessionFilter) ([]*store.Session, error)
	SetLegalHold(ctx context.Context, sessionID string, hold bool, by, reason string, at time.Time) error
}

// followPoll is how often watch looks for more of a live recording.
const followPoll = 200 * time.Millisecond

// sessionFor loads a session the actor may see: their own, or any with the
// audit permission. Others are "not found", like requests.
func (r *run) sessionFor(id string) (*store.Session, error) {
	if r.sessionLog == nil {
		return nil, &policy.Refusal{Reason: "no sessions are recorded here"}
	}
	sess, err := r.sessionLog.Session(r.ctx, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && sess.User != r.actor.User && !r.auditor()) {
		return nil, &policy.Refusal{Reason: fmt.Sprintf("no such session %q", truncate(id, 40))}
	}
	return sess, err
}

func (r *run) auditor() bool {
	return r.operator || r.policy().Has(r.actor.User, policy.PermAudit)
}

func (r *run) sessions() error {
	if err := r.positional(0, 0); err != nil {
		return err
	}
	if r.sessionLog == nil {
		return &policy.Refusal{Reason: "no sessions are recorded here"}
	}
	f := store.SessionFilter{User: r.args.str("user"), Target: r.args.str("target"), Limit: 100}
	if !r.auditor() {
		if f.User != "" && f.User != r.actor.User {
			return &policy.Refusal{Reason: "listing other users' sessions needs the audit permission"}
		}
		f.User = r.actor.User
	}
	if s := r.args.str("since"); s != "" {
		t, err := parseSince(s, time.Now())
		if err != nil {
			return usagef("sessions: %v", err)
		}
		f.Since = t
	}
	if r.args.bools["live"] {
		f.States = []store.SessionState{store.SessionLive}
	}
	if s := r.args.str("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return usagef("sessions: bad --limit %q", truncate(s, 40))
		}
		f.Limit = n
	}
	list, err := r.sessionLog.Sessions(r.ctx, f)
	if err != nil {
		return err
	}
	refused, err := r.refusals(list, f.User)
	if err != nil {
		return err
	}
	if r.json {
		type view struct {
			ID         string     `json:"id"`
			User       string     `json:"user"`
			Target     string     `json:"target"`
			Login      string     `json:"login"`
			Protocol   string     `json:"protocol"`
			Kind       string     `json:"kind"`
			Command    string     `json:"command,omitempty"`
			RequestID  int64      `json:"request_id,omitempty"`
			Source     string     `json:"source"`
			State      string     `json:"state"`
			StartedAt  time.Time  `json:"started_at"`
			EndedAt    *time.Time `json:"ended_at,omitempty"`
			EndReason  string     `json:"end_reason,omitempty"`
			ExitStatus *int       `json:"exit_status,omitempty"`
			Recording  string     `json:"recording"`
			Refused    int        `json:"refused,omitempty"` // commands refused in the session
		}
		out := make([]view, 0, len(list))
		for _, s := range list {
			v := view{ID: s.ID, User: s.User, Target: s.Target, Login: s.Login, Protocol: s.Protocol, Kind: s.Kind,
				Command: s.Command, RequestID: s.RequestID, Source: s.Source, State: string(s.State),
				StartedAt: s.StartedAt.UTC(), EndedAt: timePtr(s.EndedAt), EndReason: s.EndReason, Recording: s.Recording,
				Refused: refused[s.ID]}
			if s.ExitStatus >= 0 {
				v.ExitStatus = &s.ExitStatus
			}
			out = append(out, v)
		}
		r.printJSON(out)
		return nil
	}
	if len(list) == 0 {
		r.printf("No sessions.\n")
		return nil
	}
	r.printf("%-20s %-8s %-10s %-16s %-6s %-20s %-8s %-7s %s\n", "ID", "STATE", "USER", "TARGET", "KIND", "STARTED", "LENGTH", "REFUSED", "COMMAND")
	for _, s := range list {
		length := "-"
		if !s.EndedAt.IsZero() {
			length = s.EndedAt.Sub(s.StartedAt).Round(time.Second).String()
		}
		n := "-"
		if refused[s.ID] > 0 {
			n = strconv.Itoa(refused[s.ID])
		}
		r.printf("%-20s %-8s %-10s %-16s %-6s %-20s %-8s %-7s %s\n", s.ID, s.State, s.User, s.Login+"@"+s.Target, s.Kind,
			s.StartedAt.UTC().Format(time.RFC3339), length, n, truncate(s.Command, 40))
	}
	return nil
}

// refusals counts the commands and statements refused in each of the
// sessions listed (of user, if not empty), by session ID. The session row
// does not say so; the audit log does: a refused command is a "command"
// event with outcome refused, a refused statement a "query" event, and one
// query per type reads those since the oldest session listed began. Its "session" detail is a session's ID or, for SSH, the ID of
// the connection, which a session's ID extends with "-N", its channel: an
// event of a connection counts for an
// exec session of the connection only if it is that session's command (a
// connection can carry several), and for every other session of it
// (several shells on one connection share their refusals).
func (r *run) refusals(list []*store.Session, user string) (map[string]int, error) {
	if r.audit == nil || len(list) == 0 {
		return nil, nil
	}
	byID := map[string]*store.Session{}
	byConn := map[string][]*store.Session{}
	since := list[0].StartedAt
	for _, s := range list {
		byID[s.ID] = s
		if i := strings.LastIndexByte(s.ID, '-'); s.Protocol == "ssh" && i > 0 {
			byConn[s.ID[:i]] = append(byConn[s.ID[:i]], s)
		}
		if s.StartedAt.Before(since) {
			since = s.StartedAt
		}
	}
	var events []audit.Event
	for _, typ := range []string{audit.Command, audit.Query} {
		es, err := r.audit.Audit(r.ctx, store.AuditFilter{User: user, Type: typ, Since: since})
		if err != nil {
			return nil, err
		}
		events = append(events, es...)
	}
	n := map[string]int{}
	for _, e := range events {
		if e.Outcome != audit.OutcomeRefused {
			continue
		}
		id := e.Details["session"]
		if s := byID[id]; s != nil {
			n[s.ID]++
			continue
		}
		for _, s := range byConn[id] {
			if e.Subject == s.User && (s.Kind != "exec" || e.Details["command"] == s.Command) {
				n[s.ID]++
			}
		}
	}
	return n, nil
}

// openRecording opens a session's recording and audits the access. check,
// if not nil, may refuse the session before anything is opened or audited.
func (r *run) openRecording(verb string, check func(*store.Session) error) (*store.Session, io.ReadCloser, error) {
	if err := r.positional(1, 1); err != nil {
		return nil, nil, err
	}
	sess, err := r.sessionFor(r.args.pos[0])
	if err != nil {
		return nil, nil, err
	}
	if check != nil {
		if err := check(sess); err != nil {
			return nil, nil, err
		}
	}
	if r.recordings == nil {
		return nil, nil, &policy.Refusal{Reason: "no recording storage here"}
	}
	rc, err := r.recordings.Open(r.ctx, sess.Recording)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, &policy.Refusal{Reason: fmt.Sprintf("the recording of session %s is missing", sess.ID)}
	}
	if err != nil {
		return nil, nil, err
	}
	r.access.Record(r.ctx, r.actor, audit.Event{Type: audit.Replay, Subject: sess.User, Target: sess.Target,
		RequestID: sess.RequestID, Details: map[string]string{"session": sess.ID, "how": verb}})
	return sess, rc, nil
}

func (r *run) replay() error {
	opts := replay.Options{Speed: 1}
	if s := r.args.str("speed"); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f <= 0 || f > 1000 {
			return usagef("replay: bad --speed %q (a factor such as 2 or 0.5)", truncate(s, 40))
		}
		opts.Speed = f
	}
	if s := r.args.str("idle-limit"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return usagef("replay: bad --idle-limit %q (a duration such as 2s)", truncate(s, 40))
		}
		opts.IdleLimit = d
	}
	sess, rc, err := r.openRecording("replay", nil)
	if err != nil {
		return err
	}
	defer rc.Close()
	if sess.Protocol == "ssh" {
		// The markers are part of the replay: a refused exec has no output,
		// only its command and the refusal.
		opts.Markers = true
		return replay.Play(r.ctx, rc, r.rawOut(), opts)
	}
	return replay.Transcript(r.ctx, rc, r.rawOut(), opts)
}

func (r *run) export() error {
	_, rc, err := r.openRecording("export", nil)
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(r.rawOut(), rc)
	return err
}

// watch follows a live session's recording as it grows, printing its output
// as it happens; it returns when the session ends.
func (r *run) watch() error {
	// A database session is refused before its recording is opened, so
	// that the audit log does not show a watch that never happened.
	terminal := func(sess *store.Session) error {
		if sess.Protocol != "ssh" {
			return &policy.Refusal{Reason: "watch follows terminal sessions; use replay for database sessions"}
		}
		return nil
	}
	sess, rc, err := r.openRecording("watch", terminal)
	if err != nil {
		return err
	}
	rc.Close()
	f := &follower{ctx: r.ctx, st: r.recordings, name: sess.Recording, live: func() bool {
		s, err := r.sessionLog.Session(r.ctx, sess.ID)
		return err == nil && s.State == store.SessionLive
	}}
	noWait := func(context.Context, time.Duration) error { return nil }
	err = replay.Play(r.ctx, f, r.rawOut(), replay.Options{Speed: 1, Sleep: noWait})
	if err == nil && !r.json {
		r.eprintf("\r\nbastion: session %s ended\r\n", sess.ID)
	}
	return err
}

// follower reads a recording that is still being written: at the end of
// what is there it waits for more while the session is live.
type follower struct {
	ctx  context.Context
	st   recorder.Storage
	name string
	live func() bool
	off  int64
	cur  io.ReadCloser
}

func (f *follower) Read(p []byte) (int, error) {
	for {
		if f.cur == nil {
			rc, err := f.st.Open(f.ctx, f.name)
			if err != nil {
				return 0, err
			}
			if _, err := io.CopyN(io.Discard, rc, f.off); err != nil {
				rc.Close()
				return 0, err
			}
			f.cur = rc
		}
		n, err := f.cur.Read(p)
		f.off += int64(n)
		if n > 0 {
			return n, nil
		}
		if !errors.Is(err, io.EOF) {
			return 0, err
		}
		f.cur.Close()
		f.cur = nil
		ended := !f.live()
		if ended {
			// One last read: what was written before the session ended.
			rc, err := f.st.Open(f.ctx, f.name)
			if err != nil {
				return 0, err
			}
			defer rc.Close()
			if _, err := io.CopyN(io.Discard, rc, f.off); err != nil {
				return 0, err
			}
			n, err := rc.Read(p)
			f.off += int64(n)
			if n > 0 {
				return n, nil
			}
			return 0, err
		}
		select {
		case <-f.ctx.Done():
			return 0, f.ctx.Err()
		case <-time.After(followPoll):
		}
	}
}
