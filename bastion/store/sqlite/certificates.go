package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/bastionhq/bastion/bastion/store"
)

// IssueCertificate assigns the next serial to c and stores it.
func (s *Store) IssueCertificate(ctx context.Context, c *store.Certificate) (uint64, error) {
	var e encoder
	args := []any{
		c.User, c.KeyFingerprint, e.list("principals", c.Principals), e.list("targets", c.Targets),
		e.optTime("valid_after", c.ValidAfter), e.optTime("valid_before", c.ValidBefore),
		e.optTime("issued_at", c.IssuedAt),
	}
	if e.err != nil {
		return 0, fmt.Errorf("sqlite store: issue certificate: %w", e.err)
	}
	var requestID any // NULL: not tied to a request
	if c.RequestID != 0 {
		requestID = c.RequestID
	}

	var serial int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		if c.RequestID != 0 {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM requests WHERE id = ?`, c.RequestID).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("request %d: %w", c.RequestID, store.ErrNotFound)
			}
		}
		var err error
		if serial, err = allocate(ctx, tx, "certificate"); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO certificates (serial, request_id, username, key_fingerprint,
            principals, targets, valid_after, valid_before, issued_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, append([]any{serial, requestID}, args...)...)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite store: issue certificate: %w", err)
	}
	c.Serial = uint64(serial)
	return c.Serial, nil
}

// Certificates returns the certificates issued for a request, by serial;
// requestID 0 selects those not tied to a request.
func (s *Store) Certificates(ctx context.Context, requestID int64) ([]*store.Certificate, error) {
	const cols = `SELECT serial, request_id, username, key_fingerprint, principals, targets,
        valid_after, valid_before, issued_at FROM certificates`
	query, args := cols+` WHERE request_id = ? ORDER BY serial`, []any{requestID}
	if requestID == 0 {
		query, args = cols+` WHERE request_id IS NULL ORDER BY serial`, nil
	}
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: certificates of request %d: %w", requestID, err)
	}
	defer rows.Close()
	var cs []*store.Certificate
	for rows.Next() {
		c, err := scanCertificate(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite store: certificates of request %d: %w", requestID, err)
		}
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: certificates of request %d: %w", requestID, err)
	}
	return cs, nil
}

func scanCertificate(rows *sql.Rows) (*store.Certificate, error) {
	var (
		c                                 store.Certificate
		serial                            int64
		requestID                         sql.Null[int64]
		principals, targets               string
		validAfter, validBefore, issuedAt sql.Null[int64]
	)
	err := rows.Scan(&serial, &requestID, &c.User, &c.KeyFingerprint, &principals, &targets,
		&validAfter, &validBefore, &issuedAt)
	if err != nil {
		return nil, err
	}
	c.Serial, c.RequestID = uint64(serial), requestID.V
	if c.Principals, err = decodeList("principals", principals); err != nil {
		return nil, err
	}
	if c.Targets, err = decodeList("targets", targets); err != nil {
		return nil, err
	}
	c.ValidAfter, c.ValidBefore, c.IssuedAt = fromOptNanos(validAfter), fromOptNanos(validBefore), fromOptNanos(issuedAt)
	return &c, nil
}
