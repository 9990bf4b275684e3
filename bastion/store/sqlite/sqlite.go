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
	"runtime/debug"
	"sync"
	"sync/atomic"
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
	gc   groupCommit
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

// stmtCacheSize is how many prepared statements each connection keeps:
// the store runs a few dozen distinct statements, and preparing one costs
// more than running it.
const stmtCacheSize = "128"

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
		"_txlock":          {"immediate"}, // take the write lock up front: no upgrade deadlocks
		"_busy_timeout":    {timeout},
		"_foreign_keys":    {"on"},
		"_journal_mode":    {"WAL"},
		"_synchronous":     {"FULL"}, // the driver's default is NORMAL; a commit must survive power loss
		"_stmt_cache_size": {stmtCacheSize},
	}.Encode())
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)

	r, err := sql.Open("sqlite3", uri+"?"+url.Values{
		"mode":             {"rw"}, // never create: the writer has
		"_busy_timeout":    {timeout},
		"_query_only":      {"on"},
		"_stmt_cache_size": {stmtCacheSize},
	}.Encode())
	if err != nil {
		return nil, errors.Join(err, w.Close())
	}
	r.SetMaxOpenConns(maxReaders)
	r.SetMaxIdleConns(maxReaders)

	s := &Store{path: abs, w: w, r: r, gc: groupCommit{db: w}}
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
// transaction holds the database's write lock from its first statement and
// may be shared with concurrent writes (see groupCommit): fn must make its
// changes only through tx, and may be run a second time if the shared
// transaction fails. write returns once fn's changes are committed or fn's
// error is known.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.gc.do(ctx, fn)
}

// groupCommit runs concurrent writes in one transaction, as PostgreSQL's
// group commit does. With synchronous=FULL every COMMIT waits for an fsync,
// and with one write connection commits are serialised: run one by one, each
// write would wait for every earlier write's fsync and its own.
//
// A write that finds no batch running becomes the leader and runs alone, as
// an ordinary transaction. Writes arriving meanwhile queue; when the leader is
// done, the first of them leads: it takes the whole queue and runs it in one
// transaction, each op inside a savepoint so that an op's error undoes that
// op alone, commits once, hands each op its result, and passes the lead on
// to the first write queued meanwhile, if any. Ops run in
// arrival order, so the effect is that of running them one after another.
//
// The batch transaction is begun without any caller's context, which could
// cancel it; each op's statements use the op's own context. A statement whose
// context is cancelled is interrupted, and SQLite may then roll back the
// whole transaction. So if anything fails at the batch level (SAVEPOINT,
// RELEASE, ROLLBACK TO, COMMIT), the batch is rolled back and each of its ops
// runs again in a transaction of its own: the failed batch left no effect.
type groupCommit struct {
	db *sql.DB

	mu      sync.Mutex
	leading bool       // a leader is running batches
	queue   []*writeOp // ops for the next batch, in arrival order

	// For tests.
	commits   atomic.Int64 // committed transactions
	fallbacks atomic.Int64 // failed batches, whose ops then ran one by one
}

// writeOp is one call of write.
type writeOp struct {
	ctx  context.Context
	fn   func(tx *sql.Tx) error
	done chan error // its result; buffered, so the leader never blocks on it
}

// savepoint is the name of the savepoint around each op of a batch.
const savepoint = "bastion_write"

func (g *groupCommit) do(ctx context.Context, fn func(tx *sql.Tx) error) error {
	op := &writeOp{ctx: ctx, fn: fn, done: make(chan error, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, op)
	if g.leading {
		g.mu.Unlock()
		if err := <-op.done; err != errLead {
			return result(err)
		}
		g.mu.Lock() // op leads the next batch, which holds it
	}
	g.leading = true
	batch := g.queue
	g.queue = nil
	g.mu.Unlock()
	g.run(batch)
	// The leader's own write is done: the first write queued meanwhile
	// leads the next batch, so that no caller waits for others' batches.
	g.mu.Lock()
	if len(g.queue) > 0 {
		next := g.queue[0]
		g.mu.Unlock()
		next.done <- errLead
	} else {
		g.leading = false
		g.mu.Unlock()
	}
	return result(<-op.done)
}

// errLead tells a queued write that it leads the next batch.
var errLead = errors.New("lead the next batch")

// run runs a batch and sends each op its result.
func (g *groupCommit) run(batch []*writeOp) {
	if len(batch) > 1 {
		errs, err := g.runBatch(batch)
		if err == nil {
			g.commits.Add(1)
			for i, op := range batch {
				op.done <- errs[i]
			}
			return
		}
		// The batch had no effect. Its error is not the ops' to see: running
		// again, each gets its own result.
		g.fallbacks.Add(1)
	}
	for _, op := range batch {
		op.done <- g.runOne(op)
	}
}

// runOne runs op in a transaction of its own.
func (g *groupCommit) runOne(op *writeOp) error {
	if err := op.ctx.Err(); err != nil {
		return err
	}
	err := inTx(op.ctx, g.db, op.call)
	if err == nil {
		g.commits.Add(1)
	}
	return err
}

// runBatch runs the ops in one transaction, each in a savepoint, and returns
// their results; it returns an error if the batch as a whole failed and was
// rolled back.
func (g *groupCommit) runBatch(batch []*writeOp) (errs []error, err error) {
	ctx := context.Background() // for the batch's own statements
	tx, err := g.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil {
			// The batch's error is what counts; the transaction may be gone.
			_ = tx.Rollback()
		}
	}()
	errs = make([]error, len(batch))
	for i, op := range batch {
		if errs[i] = op.ctx.Err(); errs[i] != nil {
			continue
		}
		if _, err := tx.ExecContext(ctx, "SAVEPOINT "+savepoint); err != nil {
			return nil, fmt.Errorf("savepoint: %w", err)
		}
		if errs[i] = op.call(tx); errs[i] != nil {
			if _, err := tx.ExecContext(ctx, "ROLLBACK TO "+savepoint); err != nil {
				return nil, fmt.Errorf("rollback to savepoint: %w", err)
			}
		}
		// ROLLBACK TO leaves the savepoint in place; RELEASE removes it.
		// Either fails if the transaction has ended: SQLite rolls it back
		// on some errors, an interrupted statement among them.
		if _, err := tx.ExecContext(ctx, "RELEASE "+savepoint); err != nil {
			return nil, fmt.Errorf("release savepoint: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return errs, nil
}

// call runs op's fn, turning a panic into an error, so that a panic in one
// op neither leaves the batch's transaction open nor stops its leader. The
// op's caller panics again (see result).
func (op *writeOp) call(tx *sql.Tx) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &writePanic{value: v, stack: debug.Stack()}
		}
	}()
	return op.fn(tx)
}

// writePanic is a panic in a write's fn, carried to the write's caller.
type writePanic struct {
	value any
	stack []byte
}

func (p *writePanic) Error() string {
	return fmt.Sprintf("sqlite store: panic in write: %v\n%s", p.value, p.stack)
}

// result returns a write's result to its caller, panicking if its fn did.
func result(err error) error {
	if p, ok := errors.AsType[*writePanic](err); ok {
		panic(p)
	}
	return err
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
