package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"
)

// migrationFiles holds the schema, one file per version, named
// NNNN_what.sql. A migration is never edited once released: a change is a
// new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations are the schema versions, in order.
var migrations = mustLoadMigrations(migrationFiles)

// migration is one version of the schema.
type migration struct {
	version int64
	name    string // the file's name, for errors
	sql     string
}

func mustLoadMigrations(fsys fs.FS) []migration {
	ms, err := loadMigrations(fsys)
	if err != nil {
		panic("sqlite store: " + err.Error())
	}
	return ms
}

// loadMigrations reads migrations/*.sql; versions must run 1, 2, 3, ...
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	ms := make([]migration, 0, len(names)) // Glob sorts by name: 0001 < 0002
	for i, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name is not NNNN_what.sql", base)
		}
		if v != int64(i+1) {
			return nil, fmt.Errorf("migration %s: version %d, want %d", base, v, i+1)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: base, sql: string(b)})
	}
	return ms, nil
}

const createMigrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY,
    applied_at BIGINT NOT NULL
)`

// migrate applies the migrations db lacks, each with its record in
// schema_migrations in one transaction. Another process migrating the same
// file at the same time is serialised by the write lock, and the version
// check inside the transaction keeps it from applying a migration twice.
func migrate(ctx context.Context, db *sql.DB, ms []migration) error {
	if _, err := db.ExecContext(ctx, createMigrationsTable); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var current int64
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if latest := int64(len(ms)); current > latest {
		return fmt.Errorf("migrate: database schema version %d is newer than this program's %d", current, latest)
	}
	for _, m := range ms {
		if m.version <= current {
			continue
		}
		err := inTx(ctx, db, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, m.version).Scan(&n); err != nil || n > 0 {
				return err
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`,
				m.version, time.Now().UnixNano())
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate: %s: %w", m.name, err)
		}
	}
	return nil
}
