package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/bastionhq/bastion/bastion/store"
)

// SetLegalHold places a legal hold on a session's recording (hold) or
// lifts it: a held recording is never deleted by the retention sweep. It
// fails with an error wrapping store.ErrNotFound for an unknown session.
func (s *Store) SetLegalHold(ctx context.Context, sessionID string, hold bool, by, reason string, at time.Time) error {
	var e encoder
	heldAt := e.time("held_at", at)
	if e.err != nil {
		return fmt.Errorf("sqlite store: legal hold %s: %w", sessionID, e.err)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM sessions WHERE id = ?`, sessionID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNotFound
		}
		if !hold {
			_, err := tx.ExecContext(ctx, `DELETE FROM legal_holds WHERE session_id = ?`, sessionID)
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO legal_holds (session_id, held_by, reason, held_at) VALUES (?, ?, ?, ?)
            ON CONFLICT (session_id) DO UPDATE SET held_by = excluded.held_by, reason = excluded.reason, held_at = excluded.held_at`,
			sessionID, by, reason, heldAt)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite store: legal hold %s: %w", sessionID, err)
	}
	return nil
}

// LegalHold reports whether a session is under legal hold.
func (s *Store) LegalHold(ctx context.Context, sessionID string) (bool, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM legal_holds WHERE session_id = ?`, sessionID).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("sqlite store: legal hold %s: %w", sessionID, err)
	}
	return n > 0, nil
}

// HeldRecordings returns the recording names of the sessions under legal
// hold.
func (s *Store) HeldRecordings(ctx context.Context) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT s.recording FROM legal_holds h JOIN sessions s ON s.id = h.session_id`)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: held recordings: %w", err)
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("sqlite store: held recordings: %w", err)
		}
		names = append(names, name)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: held recordings: %w", err)
	}
	return names, nil
}
