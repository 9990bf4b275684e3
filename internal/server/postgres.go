package server

import (
	"crypto/x509"
	"fmt"
	"os"

	"github.com/bastionhq/bastion/bastion/config"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/protocols/postgres"
)

// newPostgres builds the PostgreSQL front end (listen.postgres).
func (b *Bastion) newPostgres() (Frontend, error) {
	targets, err := postgresTargets(b.Config.Targets)
	if err != nil {
		return nil, err
	}
	if err := b.provisionAccounts(targets); err != nil {
		return nil, err
	}
	pol := b.Config.Policy
	return postgres.NewServer(postgres.Config{
		TLS: b.CA.TLS.ServerConfig(b.Config.Server.Hostnames), Targets: targets,
		Access: b.Access, Approvals: b.Access, Policy: func() *policy.Policy { return pol },
		Sessions: b.Store, Recordings: b.Recordings,
		HandshakeTimeout: b.Config.Server.HandshakeTimeout, IdleTimeout: b.Config.Server.IdleTimeout,
		Gate: b.gate, Watcher: b.grants, Throttle: b.throttle, Logger: b.log,
	})
}

// pgTargets is the configured PostgreSQL targets, as the front end reaches
// them.
type pgTargets map[string]postgres.Target

func (m pgTargets) Target(name string) (postgres.Target, bool) {
	t, ok := m[name]
	return t, ok
}

// postgresTargets reads the PostgreSQL targets' CA files once, at start.
func postgresTargets(all map[string]*config.Target) (pgTargets, error) {
	m := pgTargets{}
	for name, t := range all {
		if t.Kind != policy.KindPostgres {
			continue
		}
		pt := postgres.Target{Name: t.Name, Address: t.Address, Database: t.Database, Username: t.Username,
			Password: t.Password, TLS: t.TLS, RedactParameters: t.RedactParameters}
		if t.CAFile != "" {
			pem, err := os.ReadFile(t.CAFile)
			if err != nil {
				return nil, fmt.Errorf("target %s: ca_file: %w", name, err)
			}
			pt.RootCAs = x509.NewCertPool()
			if !pt.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("target %s: ca_file %s: no PEM certificate", name, t.CAFile)
			}
		}
		m[name] = pt
	}
	return m, nil
}
