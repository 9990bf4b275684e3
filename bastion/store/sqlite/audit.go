package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/store"
)

const auditColumns = `seq, occurred_at, event_type, actor, subject, target, request_id,
    source, outcome, reason, details, prev_hash, hash`

// AppendAudit seals e after the last stored event and stores it.
func (s *Store) AppendAudit(ctx context.Context, e audit.Event) (audit.Event, error) {
	var sealed audit.Event
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		sealed, err = appendAudit(ctx, tx, e)
		return err
	})
	if err != nil {
		return audit.Event{}, fmt.Errorf("sqlite store: append audit event %s: %w", e.Type, err)
	}
	return sealed, nil
}

// appendAudit seals e after the last event stored and inserts it, in tx.
// The write lock is held from the first statement to commit: no other
// append can seal after the same event.
func appendAudit(ctx context.Context, tx *sql.Tx, e audit.Event) (audit.Event, error) {
	var enc encoder
	at := enc.time("event time", e.Time)
	if enc.err != nil {
		return audit.Event{}, enc.err
	}
	// Seal the time as it will be read back, so the stored hash verifies.
	e.Time = fromNanos(at)
	var prev audit.Event
	err := tx.QueryRowContext(ctx, `SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1`).
		Scan(&prev.Seq, &prev.Hash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		e.Seal(nil)
	case err != nil:
		return audit.Event{}, err
	default:
		e.Seal(&prev)
	}
	// Sealing rewrote the event into its canonical form, in which every
	// string is valid UTF-8 without NUL: the columns and the details' JSON
	// hold exactly what was hashed.
	var details sql.Null[string]
	if len(e.Details) > 0 {
		b, err := json.Marshal(e.Details)
		if err != nil {
			return audit.Event{}, fmt.Errorf("encode details: %w", err)
		}
		details = sql.Null[string]{V: string(b), Valid: true}
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO audit_events (`+auditColumns+`)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Seq, at, e.Type, e.Actor, e.Subject, e.Target, e.RequestID,
		e.Source, e.Outcome, e.Reason, details, e.PrevHash, e.Hash)
	if err != nil {
		return audit.Event{}, err
	}
	return e, nil
}

// Audit returns the events matching f in ascending Seq order.
func (s *Store) Audit(ctx context.Context, f store.AuditFilter) ([]audit.Event, error) {
	var where []string
	var args []any
	if f.User != "" {
		where, args = append(where, "(actor = ? OR subject = ?)"), append(args, f.User, f.User)
	}
	switch {
	case strings.HasSuffix(f.Type, "."):
		// Not LIKE, which is case-insensitive in SQLite and treats _ and % as
		// wildcards. substr counts characters in both SQLite and PostgreSQL.
		where = append(where, "substr(event_type, 1, ?) = ?")
		args = append(args, utf8.RuneCountInString(f.Type), f.Type)
	case f.Type != "":
		where, args = append(where, "event_type = ?"), append(args, f.Type)
	}
	if f.RequestID != 0 {
		where, args = append(where, "request_id = ?"), append(args, f.RequestID)
	}
	if !f.Since.IsZero() {
		var enc encoder
		since := enc.time("since", f.Since)
		if enc.err != nil {
			return nil, fmt.Errorf("sqlite store: audit: %w", enc.err)
		}
		where, args = append(where, "occurred_at >= ?"), append(args, since)
	}
	if f.AfterSeq != 0 {
		where, args = append(where, "seq > ?"), append(args, f.AfterSeq)
	}
	query := "SELECT " + auditColumns + " FROM audit_events"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY seq"
	if f.Limit > 0 {
		query, args = query+" LIMIT ?", append(args, f.Limit)
	}

	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: audit: %w", err)
	}
	defer rows.Close()
	var es []audit.Event
	for rows.Next() {
		var (
			e       audit.Event
			at      int64
			details sql.Null[string]
		)
		err := rows.Scan(&e.Seq, &at, &e.Type, &e.Actor, &e.Subject, &e.Target, &e.RequestID,
			&e.Source, &e.Outcome, &e.Reason, &details, &e.PrevHash, &e.Hash)
		if err != nil {
			return nil, fmt.Errorf("sqlite store: audit: %w", err)
		}
		e.Time = fromNanos(at)
		if details.Valid {
			if err := json.Unmarshal([]byte(details.V), &e.Details); err != nil {
				return nil, fmt.Errorf("sqlite store: audit: event %d: decode details: %w", e.Seq, err)
			}
		}
		es = append(es, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: audit: %w", err)
	}
	return es, nil
}
