package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/bastionhq/bastion/bastion/store"
	"github.com/bastionhq/bastion/recorder"
)

// failingCommits is a recorder.Storage (a directory) whose objects' group
// commits fail once fail is set, as after an fsync error.
type failingCommits struct {
	recorder.Storage
	mu   sync.Mutex
	fail bool
}

var errInjected = errors.New("injected fsync failure")

func (s *failingCommits) Create(ctx context.Context, name string) (recorder.Object, error) {
	obj, err := s.Storage.Create(ctx, name)
	if err != nil {
		return nil, err
	}
	return &failingObject{Object: obj, s: s}, nil
}

func (s *failingCommits) failing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fail
}

type failingObject struct {
	recorder.Object
	s *failingCommits
}

func (o *failingObject) Commit(ctx context.Context) error {
	if o.s.failing() {
		return errInjected
	}
	return recorder.Commit(ctx, o.Object)
}

// memSessions keeps session rows in memory.
type memSessions struct {
	mu    sync.Mutex
	ended map[string]string // id → reason
}

func (m *memSessions) CreateSession(context.Context, *store.Session) error { return nil }

func (m *memSessions) EndSession(_ context.Context, id string, _ store.SessionState, _ time.Time, reason string, _ int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ended == nil {
		m.ended = map[string]string{}
	}
	m.ended[id] = reason
	return nil
}

// TestCommitFailureEndsSession: under durability: statement (the default
// of the fail-closed test role) a statement whose record cannot be made
// durable never reaches the target, and the session ends telling why.
func TestCommitFailureEndsSession(t *testing.T) {
	dir, err := recorder.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st := &failingCommits{Storage: dir}
	sessions := &memSessions{}
	f := startFrontEndWith(t, "", &fakeAccess{}, func(c *Config) {
		c.Recordings, c.Sessions = st, sessions
	})
	db := f.open(t, secret, false)
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(t.Context(), "DO 1"); err != nil {
		t.Fatalf("a statement while commits work: %v", err)
	}

	name := fmt.Sprintf("bastion_fsync_%d", time.Now().UnixNano())
	st.mu.Lock()
	st.fail = true
	st.mu.Unlock()
	_, err = conn.ExecContext(t.Context(), "CREATE DATABASE "+name)
	var me *mysql.MySQLError
	if !errors.As(err, &me) || !strings.Contains(me.Message, "can no longer be recorded") {
		t.Fatalf("a statement whose record cannot be committed: %v", err)
	}

	// The target never saw it.
	direct, err := sql.Open("mysql", fmt.Sprintf("%s:%s@tcp(%s)/", mariadb.User, mariadb.Password, mariadb.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close()
	var n int
	if err := direct.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ?", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("the target ran a statement whose record was not durable (database %s exists)", name)
	}
	// Its row ends once the client has gone.
	conn.Close()
	db.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		sessions.mu.Lock()
		ended := len(sessions.ended)
		sessions.mu.Unlock()
		if ended == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the session's row did not end")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
