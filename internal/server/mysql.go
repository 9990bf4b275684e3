package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"

	"github.com/bastionhq/bastion/bastion/config"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/protocols/mysql"
)

// newMySQL builds the MySQL and MariaDB front end (listen.mysql).
func (b *Bastion) newMySQL() (Frontend, error) {
	targets, err := mysqlTargets(b.Config.Targets)
	if err != nil {
		return nil, err
	}
	if err := b.provisionMySQLAccounts(targets); err != nil {
		return nil, err
	}
	pol := b.Config.Policy
	return mysql.NewServer(mysql.Config{
		Access: b.Access, Policy: func() *policy.Policy { return pol }, Targets: targets,
		TLS: b.CA.TLS.ServerConfig(b.Config.Server.Hostnames), AllowPlaintext: b.Config.Listen.MySQLPlaintext,
		Recordings: b.Recordings, Sessions: b.Store,
		HandshakeTimeout: b.Config.Server.HandshakeTimeout, IdleTimeout: b.Config.Server.IdleTimeout,
		Gate: b.gate, Watcher: b.grants, Throttle: b.throttle, Logger: b.log,
	})
}

// mysqlTargets builds the MySQL targets with their upstream TLS settings;
// CA files are read once, at start.
func mysqlTargets(all map[string]*config.Target) (map[string]mysql.Target, error) {
	m := map[string]mysql.Target{}
	for name, t := range all {
		if t.Kind != policy.KindMySQL {
			continue
		}
		mt := mysql.Target{Name: t.Name, Address: t.Address, Database: t.Database, Username: t.Username,
			Password: t.Password, ServerPublicKey: t.ServerPublicKey, RedactParameters: t.RedactParameters}
		switch t.TLS {
		case config.TLSRequire:
			// Encrypted, the certificate not checked: what "require" means
			// for libpq and MySQL clients alike.
			mt.TLS = &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
		case config.TLSVerifyFull:
			host, _, err := net.SplitHostPort(t.Address)
			if err != nil {
				return nil, fmt.Errorf("target %s: address: %w", name, err)
			}
			mt.TLS = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
			if t.CAFile != "" {
				pem, err := os.ReadFile(t.CAFile)
				if err != nil {
					return nil, fmt.Errorf("target %s: ca_file: %w", name, err)
				}
				mt.TLS.RootCAs = x509.NewCertPool()
				if !mt.TLS.RootCAs.AppendCertsFromPEM(pem) {
					return nil, fmt.Errorf("target %s: ca_file %s: no PEM certificate", name, t.CAFile)
				}
			}
		}
		m[name] = mt
	}
	return m, nil
}
