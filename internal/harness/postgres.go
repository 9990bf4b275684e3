package harness

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// postgresBinGlob finds the server programs of Debian's postgresql packages,
// one directory per major version.
const postgresBinGlob = "/usr/lib/postgresql/*/bin"

// PostgresConfig configures a PostgreSQL server.
type PostgresConfig struct {
	// Dir holds the data directory, the log and the Unix socket; it is
	// given to the postgres user, who must be able to reach it. Its path must
	// leave room for the socket name (Unix socket paths are limited to 107
	// bytes). Empty means a new temp dir, which Stop removes.
	Dir string
	// TLS turns on TLS with a self-signed certificate (see Postgres.TLSCert).
	// Clients may still connect without TLS.
	TLS bool
	// Databases are created after start.
	Databases []string
	// InitSQL maps a database to SQL run in it after Databases are created,
	// as the superuser. The SQL is a psql script; any error stops it.
	InitSQL map[string]string
}

// Postgres is a running PostgreSQL server listening on 127.0.0.1. It asks
// TCP clients for a SCRAM-SHA-256 password, and trusts clients of its Unix
// socket in Dir.
type Postgres struct {
	Addr     string // "127.0.0.1:PORT"
	Host     string // "127.0.0.1"
	Port     int
	User     string // "postgres", the superuser
	Password string // User's password
	Dir      string
	// TLSCert is the server's self-signed certificate (PEM) when TLS is on:
	// clients that verify the server use it as their root (sslrootcert).
	TLSCert []byte

	bin      string // directory of initdb, pg_ctl, psql
	runuser  string
	dataDir  string
	logPath  string
	teardown teardown
}

// NewPostgres starts a PostgreSQL server for t and stops it when t ends.
func NewPostgres(t testing.TB, cfg PostgresConfig) *Postgres {
	t.Helper()
	return startForTest(t, func(ctx context.Context) (*Postgres, error) { return StartPostgres(ctx, cfg) })
}

// StartPostgres starts a PostgreSQL server; the caller must call Stop.
func StartPostgres(ctx context.Context, cfg PostgresConfig) (*Postgres, error) {
	bin, err := postgresBin()
	if err != nil {
		return nil, fmt.Errorf("harness: postgres: %w", err)
	}
	runuser, err := findProgram("util-linux", "/usr/sbin/runuser", "runuser")
	if err != nil {
		return nil, fmt.Errorf("harness: postgres: %w", err)
	}
	dir, owned, err := makeDir(cfg.Dir, "postgres")
	if err != nil {
		return nil, fmt.Errorf("harness: postgres: %w", err)
	}
	s := &Postgres{
		Host:     "127.0.0.1",
		User:     "postgres",
		Password: rand.Text(),
		Dir:      dir,
		bin:      bin,
		runuser:  runuser,
		dataDir:  filepath.Join(dir, "data"),
		logPath:  filepath.Join(dir, "postgres.log"),
		teardown: teardown{kind: "postgres", dir: dir, ownsDir: owned},
	}
	if err := s.start(ctx, cfg); err != nil {
		return nil, errors.Join(fmt.Errorf("harness: postgres: %w", err), s.Stop())
	}
	return s, nil
}

// postgresBin returns the bin directory of the newest installed PostgreSQL.
func postgresBin() (string, error) {
	dirs, err := filepath.Glob(postgresBinGlob)
	if err != nil {
		return "", err
	}
	best, bestVersion := "", -1
	for _, dir := range dirs {
		version, err := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
		if err != nil {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil && version > bestVersion {
			best, bestVersion = dir, version
		}
	}
	if best == "" {
		return "", fmt.Errorf("initdb not found in %s: install Debian package postgresql, or %s", postgresBinGlob, installHint)
	}
	return best, nil
}

func (s *Postgres) start(ctx context.Context, cfg PostgresConfig) error {
	// initdb and postgres refuse to run as root.
	if err := chownTree(s.Dir, "postgres", "postgresql"); err != nil {
		return err
	}
	pwFile := filepath.Join(s.Dir, "pwfile")
	if err := os.WriteFile(pwFile, []byte(s.Password+"\n"), 0o600); err != nil {
		return err
	}
	if err := chownTree(pwFile, "postgres", "postgresql"); err != nil {
		return err
	}
	_, err := Run(s.asPostgres(ctx, "initdb", "-D", s.dataDir, "-U", s.User, "--pwfile="+pwFile,
		"--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8",
		"--no-sync", "--no-instructions"))
	if err != nil {
		return err
	}
	if err := os.Remove(pwFile); err != nil {
		return err
	}
	if err := s.configure(cfg.TLS); err != nil {
		return err
	}
	port, err := retryOnPortClash(s.teardown.kind, func(port int) error {
		// Start each attempt with an empty log, so that the error shows this
		// attempt and the port clash check sees only this attempt.
		if err := os.Truncate(s.logPath, 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		s.Port = port
		// pg_ctl -w waits until the server accepts connections or has died.
		_, err := Run(s.asPostgres(ctx, "pg_ctl", "-D", s.dataDir, "-l", s.logPath, "-o", fmt.Sprintf("-p %d", port),
			"-w", "-t", strconv.Itoa(int(readyTimeout.Seconds())), "start"))
		if err == nil {
			// A real login over TCP: the password works and the port is ours.
			err = WaitFor(ctx, readyTimeout, func(ctx context.Context) error {
				_, err := s.psql(ctx, "postgres", "SELECT 1", "PGHOST="+s.Host, "PGPASSWORD="+s.Password)
				return err
			})
		}
		if err != nil {
			return startError(errors.Join(err, s.stopServer()), s.logPath)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.Addr = net.JoinHostPort(s.Host, strconv.Itoa(port))
	return s.createDatabases(ctx, cfg)
}

// configure appends the harness's settings to postgresql.conf and writes the
// TLS certificate and key.
func (s *Postgres) configure(useTLS bool) error {
	settings := []string{
		"listen_addresses = '127.0.0.1'",
		"unix_socket_directories = '" + strings.ReplaceAll(s.Dir, "'", "''") + "'",
		// A throwaway server need not survive a crash: don't wait for disks.
		"fsync = off",
		"synchronous_commit = off",
		"full_page_writes = off",
	}
	if useTLS {
		certPEM, keyPEM, err := selfSignedCert("bastion harness postgres")
		if err != nil {
			return err
		}
		// The server refuses a key that others can read.
		if err := os.WriteFile(filepath.Join(s.dataDir, "server.crt"), certPEM, 0o644); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(s.dataDir, "server.key"), keyPEM, 0o600); err != nil {
			return err
		}
		s.TLSCert = certPEM
		settings = append(settings, "ssl = on") // server.crt and server.key in the data dir are the defaults
	}
	f, err := os.OpenFile(filepath.Join(s.dataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(f, "\n# bastion harness\n%s\n", strings.Join(settings, "\n"))
	if err := errors.Join(err, f.Close()); err != nil {
		return err
	}
	return chownTree(s.dataDir, "postgres", "postgresql")
}

// createDatabases creates cfg.Databases and runs cfg.InitSQL.
func (s *Postgres) createDatabases(ctx context.Context, cfg PostgresConfig) error {
	if len(cfg.Databases) > 0 {
		var sql strings.Builder
		for _, db := range cfg.Databases {
			// Outside a transaction block, each statement commits on its own,
			// as CREATE DATABASE requires.
			fmt.Fprintf(&sql, "CREATE DATABASE %s;\n", pgQuoteIdent(db))
		}
		if _, err := s.psql(ctx, "postgres", sql.String()); err != nil {
			return fmt.Errorf("create databases: %w", err)
		}
	}
	for _, db := range sortedKeys(cfg.InitSQL) {
		if _, err := s.psql(ctx, db, cfg.InitSQL[db]); err != nil {
			return fmt.Errorf("init SQL for database %q: %w", db, err)
		}
	}
	return nil
}

// psql runs the psql script sql in database db as the superuser, over the
// Unix socket unless env (PGHOST=…, PGPASSWORD=…) says otherwise.
func (s *Postgres) psql(ctx context.Context, db, sql string, env ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(s.bin, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1")
	sslMode := "disable"
	if s.TLSCert != nil {
		sslMode = "require"
	}
	cmd.Env = append(os.Environ(), "PGHOST="+s.Dir, "PGPORT="+strconv.Itoa(s.Port), "PGUSER="+s.User,
		"PGDATABASE="+db, "PGSSLMODE="+sslMode, "PGCONNECT_TIMEOUT=5")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin = strings.NewReader(sql)
	return Run(cmd)
}

// asPostgres returns a command running one of the server programs as the
// postgres user, in Dir.
func (s *Postgres) asPostgres(ctx context.Context, program string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, s.runuser, append([]string{"-u", "postgres", "--", filepath.Join(s.bin, program)}, args...)...)
	cmd.Dir = s.Dir
	return cmd
}

// stopServer stops the server by its pidfile if it is running, at once:
// the data is thrown away anyway.
func (s *Postgres) stopServer() error {
	if _, err := os.Stat(filepath.Join(s.dataDir, "postmaster.pid")); err != nil {
		return nil // never started, or already stopped
	}
	ctx, cancel := context.WithTimeout(context.Background(), stopGrace)
	defer cancel()
	_, err := Run(s.asPostgres(ctx, "pg_ctl", "-D", s.dataDir, "-m", "immediate", "-w", "stop"))
	return err
}

// DSN returns a postgres:// URL for db as the superuser, with
// sslmode=require when TLS is on and sslmode=disable otherwise.
func (s *Postgres) DSN(db string) string {
	sslMode := "disable"
	if s.TLSCert != nil {
		sslMode = "require"
	}
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(s.User, s.Password),
		Host:     s.Addr,
		Path:     "/" + db,
		RawQuery: "sslmode=" + sslMode,
	}
	return u.String()
}

// Stop stops the server (pg_ctl stop -m immediate) and removes Dir if
// StartPostgres created it. Stop is idempotent.
func (s *Postgres) Stop() error {
	return s.teardown.run(s.stopServer)
}

// pgQuoteIdent quotes a PostgreSQL identifier.
func pgQuoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// selfSignedCertValidity is how long a generated certificate is valid; a
// day of slack before now covers clock differences.
const selfSignedCertValidity = 30 * 24 * time.Hour

// selfSignedCert returns a self-signed ECDSA certificate for 127.0.0.1 and
// localhost and its PKCS #8 key, both PEM. The certificate is its own CA.
func selfSignedCert(commonName string) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	template := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.Add(selfSignedCertValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}
