package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/bastionhq/bastion/bastion/store"
)

// CreateDBSecret stores d and drops the older secrets of its request.
func (s *Store) CreateDBSecret(ctx context.Context, d *store.DBSecret) (int64, error) {
	var id int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM requests WHERE id = ?`, d.RequestID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("request %d: %w", d.RequestID, store.ErrNotFound)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM db_secrets WHERE request_id = ? AND username = ?`, d.RequestID, d.User); err != nil {
			return err
		}
		var err error
		if id, err = allocate(ctx, tx, "db_secret"); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO db_secrets (id, request_id, username, scram, mysql_native, mysql_sha2,
            created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			id, d.RequestID, d.User, d.SCRAM, hex.EncodeToString(d.MySQLNative), hex.EncodeToString(d.MySQLSHA2),
			d.CreatedAt.UnixNano(), d.ExpiresAt.UnixNano())
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite store: create db secret: %w", err)
	}
	d.ID = id
	return id, nil
}

// DBSecrets returns user's unexpired secrets, newest first.
func (s *Store) DBSecrets(ctx context.Context, user string, now time.Time) ([]*store.DBSecret, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, request_id, username, scram, mysql_native, mysql_sha2, created_at, expires_at
        FROM db_secrets WHERE username = ? AND expires_at > ? ORDER BY id DESC`, user, now.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("sqlite store: db secrets of %s: %w", user, err)
	}
	defer rows.Close()
	var out []*store.DBSecret
	for rows.Next() {
		var (
			d                store.DBSecret
			native, sha2     string
			created, expires int64
		)
		if err := rows.Scan(&d.ID, &d.RequestID, &d.User, &d.SCRAM, &native, &sha2, &created, &expires); err != nil {
			return nil, fmt.Errorf("sqlite store: db secrets of %s: %w", user, err)
		}
		if d.MySQLNative, err = hex.DecodeString(native); err != nil {
			return nil, fmt.Errorf("sqlite store: db secret %d: mysql_native: %w", d.ID, err)
		}
		if d.MySQLSHA2, err = hex.DecodeString(sha2); err != nil {
			return nil, fmt.Errorf("sqlite store: db secret %d: mysql_sha2: %w", d.ID, err)
		}
		d.CreatedAt, d.ExpiresAt = time.Unix(0, created).UTC(), time.Unix(0, expires).UTC()
		out = append(out, &d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite store: db secrets of %s: %w", user, err)
	}
	return out, nil
}
