package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bastionhq/bastion/bastion/store"
)

const sessionCols = `SELECT id, username, target, login, protocol, kind, command, request_id, source,
    recording, state, started_at, ended_at, end_reason, exit_status FROM sessions`

// CreateSession stores a new live session.
func (s *Store) CreateSession(ctx context.Context, sess *store.Session) error {
	if sess.ID == "" || sess.State != store.SessionLive {
		return fmt.Errorf("sqlite store: create session: need an id and state %q", store.SessionLive)
	}
	var e encoder
	started := e.time("started_at", sess.StartedAt)
	if e.err != nil {
		return fmt.Errorf("sqlite store: create session: %w", e.err)
	}
	var requestID any
	if sess.RequestID != 0 {
		requestID = sess.RequestID
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM sessions WHERE id = ?`, sess.ID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("session %s: %w", sess.ID, store.ErrDuplicate)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (id, username, target, login, protocol, kind, command,
            request_id, source, recording, state, started_at, ended_at, end_reason, exit_status)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, '', ?)`,
			sess.ID, sess.User, sess.Target, sess.Login, sess.Protocol, sess.Kind, sess.Command,
			requestID, sess.Source, sess.Recording, string(sess.State), started, sess.ExitStatus)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite store: create session: %w", err)
	}
	return nil
}

// EndSession records the end of a live session.
func (s *Store) EndSession(ctx context.Context, id string, state store.SessionState, at time.Time, reason string, exitStatus int) error {
	if state != store.SessionEnded && state != store.SessionInterrupted {
		return fmt.Errorf("sqlite store: end session %s: bad state %q", id, state)
	}
	var e encoder
	ended := e.time("ended_at", at)
	if e.err != nil {
		return fmt.Errorf("sqlite store: end session %s: %w", id, e.err)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE sessions SET state = ?, ended_at = ?, end_reason = ?, exit_status = ?
            WHERE id = ? AND state = ?`, string(state), ended, reason, exitStatus, id, string(store.SessionLive))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		var cur string
		err = tx.QueryRowContext(ctx, `SELECT state FROM sessions WHERE id = ?`, id).Scan(&cur)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		return fmt.Errorf("session is %s: %w", cur, store.ErrConflict)
	})
	if err != nil {
		return fmt.Errorf("sqlite store: end session %s: %w", id, err)
	}
	return nil
}

// Session returns one session.
func (s *Store) Session(ctx context.Context, id string) (*store.Session, error) {
	row := s.r.QueryRowContext(ctx, sessionCols+` WHERE id = ?`, id)
	sess, err := scanSession(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite store: session %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite store: session %s: %w", id, err)
	}
	return sess, nil
}

// Sessions returns the sessions matching f, newest first.
func (s *Store) Sessions(ctx context.Context, f store.SessionFilter) ([]*store.Session, error) {
	var where []string
	var args []any
	if f.User != "" {
		where, args = append(where, "username = ?"), append(args, f.User)
	}
	if f.Target != "" {
		where, args = append(where, "target = ?"), append(args, f.Target)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "started_at >= ?"), append(args, f.Since.UnixNano())
	}
	if len(f.States) > 0 {
		marks := make([]string, len(f.States))
		for i, st := range f.States {
			marks[i] = "?"
			args = append(args, string(st))
		}
		where = append(where, "state IN ("+strings.Join(marks, ", ")+")")
	}
	q := sessionCols
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY started_at DESC, id DESC"
	if f.Limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", f.Limit)
	}
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: sessions: %w", err)
	}
	defer rows.Close()
	var out []*store.Session
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite store: sessions: %w", err)
		}
		out = append(out, sess)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: sessions: %w", err)
	}
	return out, nil
}

func scanSession(row interface{ Scan(...any) error }) (*store.Session, error) {
	var (
		sess      store.Session
		requestID sql.Null[int64]
		state     string
		started   int64
		ended     sql.Null[int64]
	)
	err := row.Scan(&sess.ID, &sess.User, &sess.Target, &sess.Login, &sess.Protocol, &sess.Kind, &sess.Command,
		&requestID, &sess.Source, &sess.Recording, &state, &started, &ended, &sess.EndReason, &sess.ExitStatus)
	if err != nil {
		return nil, err
	}
	sess.RequestID = requestID.V
	sess.State = store.SessionState(state)
	sess.StartedAt = fromNanos(started)
	sess.EndedAt = fromOptNanos(ended)
	return &sess, nil
}
