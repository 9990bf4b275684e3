package harness

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// mariadbUser is the account MariaDB creates for TCP clients.
const mariadbUser = "bastion"

// MariaDBConfig configures a MariaDB server.
type MariaDBConfig struct {
	// Dir holds the data directory, the log and the Unix socket; it is given
	// to the mysql user, who must be able to reach it. Its path must leave
	// room for the socket name (Unix socket paths are limited to 107 bytes).
	// Empty means a new temp dir, which Stop removes.
	Dir string
	// Databases are created after start.
	Databases []string
	// InitSQL maps a database to SQL run in it after Databases are created,
	// as root. Any error stops it.
	InitSQL map[string]string
}

// MariaDB is a running MariaDB server listening on 127.0.0.1. User (with
// Password) holds all privileges, with grant option, over TCP and the socket;
// root logs in over the socket only, as the system's root.
type MariaDB struct {
	Addr     string // "127.0.0.1:PORT"
	Host     string // "127.0.0.1"
	Port     int
	User     string // "bastion"
	Password string
	Socket   string // Unix socket path
	Dir      string

	client   string // the mariadb client program
	logPath  string
	proc     *process
	teardown teardown
}

// NewMariaDB starts a MariaDB server for t and stops it when t ends.
func NewMariaDB(t testing.TB, cfg MariaDBConfig) *MariaDB {
	t.Helper()
	return startForTest(t, func(ctx context.Context) (*MariaDB, error) { return StartMariaDB(ctx, cfg) })
}

// StartMariaDB starts a MariaDB server; the caller must call Stop.
func StartMariaDB(ctx context.Context, cfg MariaDBConfig) (*MariaDB, error) {
	var programs mariadbPrograms
	var err error
	for _, p := range []struct {
		dst       *string
		pkg, path string
	}{
		{&programs.installDB, "mariadb-server", "/usr/bin/mariadb-install-db"},
		{&programs.server, "mariadb-server", "/usr/sbin/mariadbd"},
		{&programs.admin, "mariadb-client", "/usr/bin/mariadb-admin"},
		{&programs.client, "mariadb-client", "/usr/bin/mariadb"},
	} {
		if *p.dst, err = findProgram(p.pkg, p.path, filepath.Base(p.path)); err != nil {
			return nil, fmt.Errorf("harness: mariadb: %w", err)
		}
	}
	dir, owned, err := makeDir(cfg.Dir, "mariadb")
	if err != nil {
		return nil, fmt.Errorf("harness: mariadb: %w", err)
	}
	s := &MariaDB{
		Host:     "127.0.0.1",
		User:     mariadbUser,
		Password: rand.Text(),
		Socket:   filepath.Join(dir, "mysqld.sock"),
		Dir:      dir,
		client:   programs.client,
		logPath:  filepath.Join(dir, "mariadbd.log"),
		teardown: teardown{kind: "mariadb", dir: dir, ownsDir: owned},
	}
	if err := s.start(ctx, programs, cfg); err != nil {
		return nil, errors.Join(fmt.Errorf("harness: mariadb: %w", err), s.Stop())
	}
	return s, nil
}

// mariadbPrograms are the paths of the MariaDB programs the harness runs.
type mariadbPrograms struct {
	installDB, server, admin, client string
}

func (s *MariaDB) start(ctx context.Context, programs mariadbPrograms, cfg MariaDBConfig) error {
	// mariadbd refuses to run as root; it switches to mysql itself.
	if err := chownTree(s.Dir, "mysql", "mariadb-server"); err != nil {
		return err
	}
	dataDir := filepath.Join(s.Dir, "data")
	installDB := exec.CommandContext(ctx, programs.installDB, "--no-defaults", "--user=mysql",
		"--datadir="+dataDir, "--auth-root-authentication-method=socket", "--skip-test-db")
	installDB.Dir = s.Dir
	if _, err := Run(installDB); err != nil {
		return err
	}
	port, err := retryOnPortClash(s.teardown.kind, func(port int) error {
		p, err := startProcess(programs.server, []string{
			"--no-defaults", // must come first
			"--user=mysql",
			"--datadir=" + dataDir,
			"--bind-address=127.0.0.1",
			"--port=" + strconv.Itoa(port),
			"--socket=" + s.Socket,
			"--pid-file=" + filepath.Join(s.Dir, "mariadbd.pid"),
			"--skip-name-resolve",
			// A throwaway server need not survive a crash: don't wait for disks.
			"--innodb-flush-log-at-trx-commit=0",
			"--skip-log-bin",
		}, nil, s.logPath) // with no --log-error, the log goes to stderr
		if err != nil {
			return err
		}
		// The socket is in Dir, so an answer on it is from this server, and
		// mariadbd opens it only after binding the TCP port.
		err = p.waitReady(ctx, func(ctx context.Context) error {
			_, err := Run(exec.CommandContext(ctx, programs.admin, "--no-defaults", "-uroot", "--socket="+s.Socket,
				"--connect-timeout=5", "ping"))
			return err
		})
		if err != nil {
			return startError(errors.Join(err, p.stop()), s.logPath)
		}
		s.proc = p
		return nil
	})
	if err != nil {
		return err
	}
	s.Port = port
	s.Addr = net.JoinHostPort(s.Host, strconv.Itoa(port))
	if err := s.createUserAndDatabases(ctx, cfg); err != nil {
		return err
	}
	// A login over TCP: the port and the password work.
	if _, err := s.sql(ctx, "", "SELECT 1", false); err != nil {
		return fmt.Errorf("login over TCP: %w", err)
	}
	return nil
}

// createUserAndDatabases creates User, cfg.Databases and runs cfg.InitSQL.
func (s *MariaDB) createUserAndDatabases(ctx context.Context, cfg MariaDBConfig) error {
	var sql strings.Builder
	// With --skip-name-resolve, 127.0.0.1 matches TCP clients and localhost
	// clients of the socket.
	for _, host := range []string{"127.0.0.1", "localhost"} {
		account := fmt.Sprintf("'%s'@'%s'", s.User, host)
		fmt.Fprintf(&sql, "CREATE USER %s IDENTIFIED BY '%s';\n", account, s.Password)
		fmt.Fprintf(&sql, "GRANT ALL PRIVILEGES ON *.* TO %s WITH GRANT OPTION;\n", account)
	}
	for _, db := range cfg.Databases {
		fmt.Fprintf(&sql, "CREATE DATABASE %s;\n", mysqlQuoteIdent(db))
	}
	if _, err := s.sql(ctx, "", sql.String(), true); err != nil {
		return fmt.Errorf("create user and databases: %w", err)
	}
	for _, db := range sortedKeys(cfg.InitSQL) {
		if _, err := s.sql(ctx, db, cfg.InitSQL[db], true); err != nil {
			return fmt.Errorf("init SQL for database %q: %w", db, err)
		}
	}
	return nil
}

// sql runs the script sql with the mariadb client in database db (none if
// empty): as root over the socket, or as User over TCP.
func (s *MariaDB) sql(ctx context.Context, db, sql string, asRoot bool) (string, error) {
	args := []string{"--no-defaults", "--batch", "--skip-column-names", "--connect-timeout=5"}
	if asRoot {
		args = append(args, "-uroot", "--socket="+s.Socket)
	} else {
		args = append(args, "--protocol=TCP", "-h", s.Host, "-P", strconv.Itoa(s.Port), "-u", s.User)
	}
	if db != "" {
		args = append(args, "--database="+db)
	}
	cmd := exec.CommandContext(ctx, s.client, args...)
	if !asRoot {
		cmd.Env = append(os.Environ(), "MYSQL_PWD="+s.Password) // kept out of the arguments
	}
	cmd.Stdin = strings.NewReader(sql)
	return Run(cmd)
}

// DSN returns a go-sql-driver/mysql DSN for db as User:
// "user:password@tcp(127.0.0.1:PORT)/db".
func (s *MariaDB) DSN(db string) string {
	return fmt.Sprintf("%s:%s@tcp(%s)/%s", s.User, s.Password, s.Addr, db)
}

// Stop stops the server by PID and removes Dir if StartMariaDB created it.
// Stop is idempotent.
func (s *MariaDB) Stop() error {
	return s.teardown.run(s.proc.stop)
}

// mysqlQuoteIdent quotes a MariaDB identifier.
func mysqlQuoteIdent(name string) string {
	return "`" + strings.ReplaceAll(name, "`", "``") + "`"
}
