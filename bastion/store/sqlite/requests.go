package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/store"
)

const requestColumns = `id, requester, role, targets, logins, reason, duration_ns, source,
    state, created_at, pending_until, approvals_required, approvers,
    decided_at, decided_by, decision_reason, grant_start, grant_end,
    closed_at, closed_by, close_reason, command`

// CreateRequest stores r as a new request, sets r.ID and appends events in
// the same transaction.
func (s *Store) CreateRequest(ctx context.Context, r *store.Request, events ...audit.Event) (int64, error) {
	if r.State != store.Pending && r.State != store.Approved {
		return 0, fmt.Errorf("sqlite store: create request: state %q, want %s or %s", r.State, store.Pending, store.Approved)
	}
	var e encoder
	args := []any{
		r.Requester, r.Role, e.list("targets", r.Targets), e.list("logins", r.Logins), r.Reason,
		int64(r.Duration), r.Source, string(r.State), e.time("created_at", r.CreatedAt),
		e.optTime("pending_until", r.PendingUntil), r.ApprovalsRequired, e.list("approvers", r.Approvers),
		e.optTime("decided_at", r.DecidedAt), r.DecidedBy, r.DecisionReason,
		e.optTime("grant_start", r.GrantStart), e.optTime("grant_end", r.GrantEnd),
		e.optTime("closed_at", r.ClosedAt), r.ClosedBy, r.CloseReason, r.Command,
	}
	approvedAt := make([]int64, len(r.Approvals))
	seen := make(map[string]bool, len(r.Approvals))
	for i, a := range r.Approvals {
		approvedAt[i] = e.time("approval time", a.At)
		if seen[a.Approver] && e.err == nil {
			e.err = fmt.Errorf("approver %q: %w", a.Approver, store.ErrDuplicate)
		}
		seen[a.Approver] = true
	}
	if e.err != nil {
		return 0, fmt.Errorf("sqlite store: create request: %w", e.err)
	}

	var id int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		if id, err = allocate(ctx, tx, "request"); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO requests (`+requestColumns+`, revision)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)`,
			append([]any{id}, args...)...); err != nil {
			return err
		}
		for i, a := range r.Approvals {
			if err := insertApproval(ctx, tx, id, i+1, a.Approver, a.Comment, approvedAt[i]); err != nil {
				return err
			}
		}
		for _, e := range events {
			if e.RequestID == 0 {
				e.RequestID = id
			}
			if _, err := appendAudit(ctx, tx, e); err != nil {
				return fmt.Errorf("append audit event %s: %w", e.Type, err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite store: create request: %w", err)
	}
	r.ID = id
	return id, nil
}

func insertApproval(ctx context.Context, tx *sql.Tx, requestID int64, position int, approver, comment string, at int64) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO approvals (request_id, position, approver, comment, approved_at)
        VALUES (?, ?, ?, ?, ?)`, requestID, position, approver, comment, at)
	return err
}

// Request returns the request with the given id.
func (s *Store) Request(ctx context.Context, id int64) (*store.Request, error) {
	var r *store.Request
	err := s.read(ctx, func(tx *sql.Tx) error {
		var err error
		r, err = loadRequest(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite store: request %d: %w", id, err)
	}
	return r, nil
}

// loadRequest reads one request and its approvals; a missing one is
// store.ErrNotFound.
func loadRequest(ctx context.Context, q querier, id int64) (*store.Request, error) {
	r, err := scanRequest(q.QueryRowContext(ctx, `SELECT `+requestColumns+` FROM requests WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	err = loadApprovals(ctx, q, map[int64]*store.Request{id: r},
		`SELECT request_id, approver, comment, approved_at FROM approvals WHERE request_id = ? ORDER BY position`, id)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Requests returns the requests matching f, newest first.
func (s *Store) Requests(ctx context.Context, f store.RequestFilter) ([]*store.Request, error) {
	var where []string
	var args []any
	if f.Requester != "" {
		where, args = append(where, "requester = ?"), append(args, f.Requester)
	}
	if len(f.States) > 0 {
		where = append(where, "state IN (?"+strings.Repeat(", ?", len(f.States)-1)+")")
		for _, st := range f.States {
			args = append(args, string(st))
		}
	}
	if !f.Since.IsZero() {
		var e encoder
		since := e.time("since", f.Since)
		if e.err != nil {
			return nil, fmt.Errorf("sqlite store: requests: %w", e.err)
		}
		where, args = append(where, "created_at >= ?"), append(args, since)
	}
	// The matching ids, newest first; approvals are loaded for the same set.
	sel := "FROM requests"
	if len(where) > 0 {
		sel += " WHERE " + strings.Join(where, " AND ")
	}
	sel += " ORDER BY created_at DESC, id DESC"
	if f.Limit > 0 {
		sel, args = sel+" LIMIT ?", append(args, f.Limit)
	}

	var rs []*store.Request
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, "SELECT "+requestColumns+" "+sel, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		byID := make(map[int64]*store.Request)
		for rows.Next() {
			r, err := scanRequest(rows)
			if err != nil {
				return err
			}
			rs, byID[r.ID] = append(rs, r), r
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(rs) == 0 {
			return nil
		}
		return loadApprovals(ctx, tx, byID, `SELECT request_id, approver, comment, approved_at FROM approvals
            WHERE request_id IN (SELECT id `+sel+`) ORDER BY request_id, position`, args...)
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite store: requests: %w", err)
	}
	return rs, nil
}

// loadApprovals runs query, which selects (request_id, approver, comment,
// approved_at) in order, and appends each approval to its request in byID.
func loadApprovals(ctx context.Context, q querier, byID map[int64]*store.Request, query string, args ...any) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("approvals: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id int64
			a  store.Approval
			at int64
		)
		if err := rows.Scan(&id, &a.Approver, &a.Comment, &at); err != nil {
			return fmt.Errorf("approvals: %w", err)
		}
		a.At = fromNanos(at)
		if r := byID[id]; r != nil {
			r.Approvals = append(r.Approvals, a)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("approvals: %w", err)
	}
	return nil
}

// scanRequest scans a row of requestColumns.
func scanRequest(row interface{ Scan(...any) error }) (*store.Request, error) {
	var (
		r                                   store.Request
		targets, logins, approvers, state   string
		duration, created                   int64
		pendingUntil, decidedAt, grantStart sql.Null[int64]
		grantEnd, closedAt                  sql.Null[int64]
	)
	err := row.Scan(&r.ID, &r.Requester, &r.Role, &targets, &logins, &r.Reason, &duration, &r.Source,
		&state, &created, &pendingUntil, &r.ApprovalsRequired, &approvers,
		&decidedAt, &r.DecidedBy, &r.DecisionReason, &grantStart, &grantEnd,
		&closedAt, &r.ClosedBy, &r.CloseReason, &r.Command)
	if err != nil {
		return nil, err
	}
	if r.Targets, err = decodeList("targets", targets); err != nil {
		return nil, err
	}
	if r.Logins, err = decodeList("logins", logins); err != nil {
		return nil, err
	}
	if r.Approvers, err = decodeList("approvers", approvers); err != nil {
		return nil, err
	}
	r.Duration = time.Duration(duration)
	r.State = store.State(state)
	r.CreatedAt = fromNanos(created)
	r.PendingUntil = fromOptNanos(pendingUntil)
	r.DecidedAt = fromOptNanos(decidedAt)
	r.GrantStart = fromOptNanos(grantStart)
	r.GrantEnd = fromOptNanos(grantEnd)
	r.ClosedAt = fromOptNanos(closedAt)
	return &r, nil
}

// Approve records a's approval of a pending request, and approves the
// request when it has enough approvals.
func (s *Store) Approve(ctx context.Context, id int64, a store.Approval) (*store.Request, error) {
	var e encoder
	at := e.time("approval time", a.At)
	if e.err != nil {
		return nil, fmt.Errorf("sqlite store: approve request %d: %w", id, e.err)
	}
	var r *store.Request
	err := s.write(ctx, func(tx *sql.Tx) error {
		// Claim the request first: the conditional UPDATE takes the row's
		// write lock and succeeds only while it is pending and open, so what
		// is read next cannot change before this transaction ends.
		res, err := tx.ExecContext(ctx, `UPDATE requests SET revision = revision + 1
            WHERE id = ? AND state = ? AND pending_until > ?`, id, string(store.Pending), at)
		if err != nil {
			return err
		}
		claimed, err := res.RowsAffected()
		if err != nil {
			return err
		}
		cur, err := loadRequest(ctx, tx, id)
		if err != nil {
			return err
		}
		if claimed == 0 {
			return &store.ConflictError{ID: id, State: cur.StateAt(a.At)}
		}
		if cur.HasApproved(a.Approver) {
			return fmt.Errorf("approver %q: %w", a.Approver, store.ErrDuplicate)
		}
		if err := insertApproval(ctx, tx, id, len(cur.Approvals)+1, a.Approver, a.Comment, at); err != nil {
			return err
		}
		if len(cur.Approvals)+1 >= cur.ApprovalsRequired {
			end := e.time("grant end", a.At.Add(cur.Duration))
			if e.err != nil {
				return e.err
			}
			res, err := tx.ExecContext(ctx, `UPDATE requests
                SET state = ?, decided_at = ?, decided_by = ?, grant_start = ?, grant_end = ?, revision = revision + 1
                WHERE id = ? AND state = ?`,
				string(store.Approved), at, a.Approver, at, end, id, string(store.Pending))
			if err != nil {
				return err
			}
			if err := requireChanged(ctx, tx, id, res); err != nil {
				return err
			}
		}
		r, err = loadRequest(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite store: approve request %d: %w", id, err)
	}
	return r, nil
}

// Transition moves a request from one of t.From to t.To.
func (s *Store) Transition(ctx context.Context, id int64, t store.Transition) (*store.Request, error) {
	r, err := s.transition(ctx, id, t)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: move request %d to %s: %w", id, t.To, err)
	}
	return r, nil
}

func (s *Store) transition(ctx context.Context, id int64, t store.Transition) (*store.Request, error) {
	var set string
	switch t.To {
	case store.Denied:
		set = "decided_at = ?, decided_by = ?, decision_reason = ?"
	case store.Revoked, store.Cancelled, store.Expired:
		set = "closed_at = ?, closed_by = ?, close_reason = ?"
	default:
		return nil, fmt.Errorf("cannot move a request to %q", t.To)
	}
	if len(t.From) == 0 {
		return nil, errors.New("no state to move from")
	}
	var e encoder
	args := []any{string(t.To), e.time("transition time", t.At), t.By, t.Reason, id}
	if e.err != nil {
		return nil, e.err
	}
	for _, from := range t.From {
		if from != store.Pending && from != store.Approved {
			return nil, fmt.Errorf("cannot move a request out of %q", from)
		}
		args = append(args, string(from))
	}

	var r *store.Request
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE requests SET state = ?, `+set+`, revision = revision + 1
            WHERE id = ? AND state IN (?`+strings.Repeat(", ?", len(t.From)-1)+`)`, args...)
		if err != nil {
			return err
		}
		if err := requireChanged(ctx, tx, id, res); err != nil {
			return err
		}
		r, err = loadRequest(ctx, tx, id)
		return err
	})
	return r, err
}

// requireChanged checks that a conditional UPDATE of request id changed it,
// and otherwise reports why not: not found, or a *store.ConflictError.
func requireChanged(ctx context.Context, tx *sql.Tx, id int64, res sql.Result) error {
	n, err := res.RowsAffected()
	switch {
	case err != nil:
		return err
	case n == 1:
		return nil
	}
	var state string
	err = tx.QueryRowContext(ctx, `SELECT state FROM requests WHERE id = ?`, id).Scan(&state)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return store.ErrNotFound
	case err != nil:
		return err
	}
	return &store.ConflictError{ID: id, State: store.State(state)}
}
