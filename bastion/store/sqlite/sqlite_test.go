package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/store"
	"github.com/bastionhq/bastion/bastion/store/storetest"
)

func openTemp(t testing.TB) *Store {
	t.Helper()
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "bastion.db"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}

// appliedMigrations returns schema_migrations as version → applied_at.
func appliedMigrations(t *testing.T, s *Store) map[int64]int64 {
	t.Helper()
	rows, err := s.r.QueryContext(t.Context(), `SELECT version, applied_at FROM schema_migrations`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	m := map[int64]int64{}
	for rows.Next() {
		var v, at int64
		if err := rows.Scan(&v, &at); err != nil {
			t.Fatal(err)
		}
		m[v] = at
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "bastion.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2031, 1, 2, 3, 4, 5, 6, time.UTC)
	id, err := s.CreateRequest(ctx, &store.Request{
		Requester: "alice", State: store.Pending, CreatedAt: now, PendingUntil: now.Add(time.Hour), ApprovalsRequired: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendAudit(ctx, audit.Event{Time: now, Type: audit.RequestCreate, Actor: "alice", Outcome: audit.OutcomeOK}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.IssueCertificate(ctx, &store.Certificate{RequestID: id, User: "alice", IssuedAt: now}); err != nil {
		t.Fatal(err)
	}
	// SQLite gives the -wal and -shm files the database file's mode.
	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if mode := fi.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s has mode %v, want 0600", filepath.Base(f), mode)
		}
	}
	applied := appliedMigrations(t, s)
	if len(applied) != len(migrations) {
		t.Fatalf("%d migrations recorded, want %d", len(applied), len(migrations))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if got := appliedMigrations(t, s); len(got) != len(applied) {
		t.Errorf("after reopening, migrations = %v, want %v", got, applied)
	} else {
		for v, at := range applied {
			if got[v] != at {
				t.Errorf("migration %d re-applied at %d (first applied at %d)", v, got[v], at)
			}
		}
	}
	if r, err := s.Request(ctx, id); err != nil || r.Requester != "alice" {
		t.Errorf("after reopening, Request(%d) = %+v, %v", id, r, err)
	}
	if es, err := s.Audit(ctx, store.AuditFilter{}); err != nil || len(es) != 1 || audit.Verify(es) != nil {
		t.Errorf("after reopening, Audit = %+v, %v", es, err)
	}
	// Ids and serials go on from where they were.
	if id2, err := s.CreateRequest(ctx, &store.Request{Requester: "bob", State: store.Pending, CreatedAt: now}); err != nil || id2 <= id {
		t.Errorf("after reopening, CreateRequest = %d, %v; want an id above %d", id2, err, id)
	}
	if serial, err := s.IssueCertificate(ctx, &store.Certificate{User: "bob"}); err != nil || serial != 2 {
		t.Errorf("after reopening, IssueCertificate = %d, %v; want serial 2", serial, err)
	}
	var mode string
	if err := s.r.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
}

// TestMigrateNewVersion checks that reopening applies only the migrations a
// database lacks, each recorded with its version.
func TestMigrateNewVersion(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "bastion.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	next := migration{
		version: int64(len(migrations) + 1),
		name:    "next.sql",
		sql:     `CREATE TABLE extra (id BIGINT PRIMARY KEY); INSERT INTO extra (id) VALUES (1);`,
	}
	s, err = open(ctx, path, append(migrations[:len(migrations):len(migrations)], next))
	if err != nil {
		t.Fatalf("open with a new migration: %v", err)
	}
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM extra`).Scan(&n); err != nil || n != 1 {
		t.Errorf("extra has %d rows, %v; want the new migration applied once", n, err)
	}
	if got := appliedMigrations(t, s); len(got) != len(migrations)+1 {
		t.Errorf("migrations = %v, want %d", got, len(migrations)+1)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// This program doesn't know version next: it must not run on it.
	_, err = Open(ctx, path)
	if err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open of a newer database: err = %v, want a schema version error", err)
	}
}

// TestMigrationFailure checks that a failing migration leaves no trace.
func TestMigrationFailure(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "bastion.db")
	bad := migration{
		version: int64(len(migrations) + 1),
		name:    "bad.sql",
		sql:     `CREATE TABLE half (id BIGINT); INSERT INTO nowhere (id) VALUES (1);`,
	}
	_, err := open(ctx, path, append(migrations[:len(migrations):len(migrations)], bad))
	if err == nil || !strings.Contains(err.Error(), "bad.sql") {
		t.Fatalf("open with a failing migration: err = %v, want one naming bad.sql", err)
	}
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE name = 'half'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("table of the failed migration exists (%d, %v)", n, err)
	}
	if got := appliedMigrations(t, s); len(got) != len(migrations) {
		t.Errorf("migrations = %v, want %d", got, len(migrations))
	}
}

func TestLoadMigrations(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		ok    bool
	}{
		{"in order", []string{"0001_a.sql", "0002_b.sql"}, true},
		{"gap", []string{"0001_a.sql", "0003_c.sql"}, false},
		{"not from 1", []string{"0002_b.sql"}, false},
		{"duplicate", []string{"0001_a.sql", "0001_b.sql"}, false},
		{"bad name", []string{"init.sql"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for _, f := range tt.files {
				fsys["migrations/"+f] = &fstest.MapFile{Data: []byte("SELECT 1;")}
			}
			if _, err := loadMigrations(fsys); (err == nil) != tt.ok {
				t.Errorf("loadMigrations(%v) = %v, want ok = %v", tt.files, err, tt.ok)
			}
		})
	}
	if len(migrations) == 0 || migrations[0].version != 1 {
		t.Errorf("embedded migrations = %v", migrations)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	content := []byte(strings.Repeat("this is not a database\n", 200))
	if err := os.WriteFile(garbage, content, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
	}{
		{"not a database", garbage},
		{"missing directory", filepath.Join(dir, "missing", "bastion.db")},
		{"a directory", dir},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(t.Context(), tt.path)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%s) succeeded", tt.path)
			}
			if !strings.Contains(err.Error(), tt.path) {
				t.Errorf("error %q does not name the path %s", err, tt.path)
			}
		})
	}
	if b, err := os.ReadFile(garbage); err != nil || string(b) != string(content) {
		t.Errorf("Open changed the file that is not a database (%v)", err)
	}
}

func TestOpenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if s, err := Open(ctx, filepath.Join(t.TempDir(), "bastion.db")); err == nil {
		s.Close()
		t.Errorf("Open with a cancelled context succeeded")
	}
}

// TestPathNeedsEscaping opens a database whose path holds URI syntax.
func TestPathNeedsEscaping(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a dir?x=1#frag%20", "bastion.db")
	if err := os.Mkdir(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database not at %s: %v", path, err)
	}
}
