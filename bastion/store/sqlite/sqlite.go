// Package sqlite is the embedded store.Store: one SQLite database file in
// WAL mode, written through a single connection and read through a small
// pool, so that writers are serialised in the process and readers never wait
// for them.
//
// The schema lives in versioned migrations (migrations/*.sql) written in SQL
// that PostgreSQL also accepts, so that a PostgreSQL store can reuse them.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "github.com/mattn/go-sqlite3" // registers the "sqlite3" driver

	"github.com/bastionhq/bastion/bastion/store"
)

var _ store.Store = (*Store)(nil)

const (
	// busyTimeout is how long a connection waits for a lock held by another
	// process (or a checkpoint) before failing with SQLITE_BUSY. In-process
	// writers never wait on it: they queue for the single write connection.
	busyTimeout = 5 * time.Second

	// maxReaders bounds the read pool. WAL readers don't block each other or
	// the writer; a few connections are enough for a control plane.
	maxReaders = 4
)

// Store is a store.Store kept in one SQLite database file.
type Store struct {
	path string
	w    *sql.DB // one connection; every transaction is BEGIN IMMEDIATE
	r    *sql.DB // read-only connections
}

// Open opens the database at path, creating it with mode 0600 if it does not
// exist (its directory must), and applies any migrations it lacks.
func Open(ctx context.Context, path string) (*Store, error) {
	s, err := open(ctx, path, migrations)
	if err != nil {
		return nil, fmt.Errorf("sqlite store: open %s: %w", path, err)
	}
	return s, nil
}

func open(ctx context.Context, path string, ms []migration) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	// SQLite would create the file with mode 0644; create it first.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case errors.Is(err, fs.ErrExist):
	case err != nil:
		return nil, err
	default:
		if err := f.Close(); err != nil {
			return nil, err
		}
	}

	// A file: URI, so that '?' or '#' in the path are not taken for
	// parameters. The -wal and -shm files get the database file's mode.
	uri := (&url.URL{Scheme: "file", Path: abs}).String()
	timeout := fmt.Sprint(busyTimeout.Milliseconds())
	w, err := sql.Open("sqlite3", uri+"?"+url.Values{
		"_txlock":       {"immediate"}, // take the write lock up front: no upgrade deadlocks
		"_busy_timeout": {timeout},
		"_foreign_keys": {"on"},
		"_journal_mode": {"WAL"},
		"_synchronous":  {"FULL"}, // the driver's default is NORMAL; a commit must survive power loss
	}.Encode())
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)

	r, err := sql.Open("sqlite3", uri+"?"+url.Values{
		"mode":          {"rw"}, // never create: the writer has
		"_busy_timeout": {timeout},
		"_query_only":   {"on"},
	}.Encode())
	if err != nil {
		return nil, errors.Join(err, w.Close())
	}
	r.SetMaxOpenConns(maxReaders)
	r.SetMaxIdleConns(maxReaders)

	s := &Store{path: abs, w: w, r: r}
	// Opening the write connection sets the journal mode, which reads the
	// file header: this is where a file that is not a database fails.
	if err := w.PingContext(ctx); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	if err := migrate(ctx, w, ms); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	if err := errors.Join(s.r.Close(), s.w.Close()); err != nil {
		return fmt.Errorf("sqlite store: close %s: %w", s.path, err)
	}
	return nil
}

// querier is what *sql.Tx and *sql.DB have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// write runs fn in a write transaction and commits it if fn succeeds. The
// transaction holds the database's write lock from its first statement.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return inTx(ctx, s.w, fn)
}

// read runs fn in a read transaction: one consistent snapshot.
func (s *Store) read(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return inTx(ctx, s.r, fn)
}

func inTx(ctx context.Context, db *sql.DB, fn func(tx *sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(tx); err != nil {
		if rerr := tx.Rollback(); rerr != nil {
			return errors.Join(err, fmt.Errorf("rollback: %w", rerr))
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// allocate bumps the named counter in the sequences table and returns its
// new value. The bump commits or rolls back with tx, which holds the write
// lock, so a value is stored at most once: serials and ids are never reused.
func allocate(ctx context.Context, tx *sql.Tx, name string) (int64, error) {
	if _, err := tx.ExecContext(ctx, `UPDATE sequences SET value = value + 1 WHERE name = ?`, name); err != nil {
		return 0, fmt.Errorf("allocate %s id: %w", name, err)
	}
	var v int64
	if err := tx.QueryRowContext(ctx, `SELECT value FROM sequences WHERE name = ?`, name).Scan(&v); err != nil {
		return 0, fmt.Errorf("allocate %s id: %w", name, err)
	}
	return v, nil
}

// Times are stored as unix nanoseconds, which reach from 1677 to 2262.
var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// encoder turns field values into column values, keeping the first error
// so that a row's arguments can be built in one expression.
type encoder struct{ err error }

// time encodes a required time.
func (e *encoder) time(field string, t time.Time) int64 {
	switch {
	case e.err != nil:
		return 0
	case t.IsZero():
		e.err = fmt.Errorf("%s is not set", field)
		return 0
	case t.Before(minTime) || t.After(maxTime):
		e.err = fmt.Errorf("%s %s is outside the storable range", field, t.Format(time.RFC3339))
		return 0
	}
	return t.UnixNano()
}

// optTime encodes a time that may be unset, as NULL.
func (e *encoder) optTime(field string, t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return e.time(field, t)
}

// list encodes a list as a JSON array ("[]" when empty).
func (e *encoder) list(field string, l []string) string {
	if e.err != nil {
		return ""
	}
	if l == nil {
		l = []string{}
	}
	b, err := json.Marshal(l)
	if err != nil {
		e.err = fmt.Errorf("encode %s: %w", field, err)
	}
	return string(b)
}

func fromNanos(n int64) time.Time { return time.Unix(0, n).UTC() }

func fromOptNanos(n sql.Null[int64]) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromNanos(n.V)
}

// decodeList decodes a JSON array column; an empty list decodes to nil.
func decodeList(field, s string) ([]string, error) {
	var l []string
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return nil, fmt.Errorf("decode %s: %w", field, err)
	}
	if len(l) == 0 {
		return nil, nil
	}
	return l, nil
}
