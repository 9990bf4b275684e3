package server

import (
	"context"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bastionhq/bastion/internal/provision"
	"github.com/bastionhq/bastion/protocols/mysql"
	"github.com/bastionhq/bastion/protocols/postgres"
)

// provisioner sweeps one target's provisioned accounts; wake asks it for a
// sweep now (a request changed).
type provisioner struct {
	p interface {
		Run(ctx context.Context, wake <-chan struct{})
	}
	wake chan struct{}
}

// provisionAccounts gives every PostgreSQL target configured with
// `provision:` its provisioner, as the target's Accounts: its sessions log
// in as accounts of their own, made by the target's configured (admin)
// account.
func (b *Bastion) provisionAccounts(targets pgTargets) error {
	servers := map[string]*provision.Server{} // by address: one per PostgreSQL server
	for name, t := range targets {
		ct := b.Config.Targets[name]
		if ct == nil || ct.Provision == nil {
			continue
		}
		admin := t // the target as configured: its own credentials, no Accounts
		if servers[t.Address] == nil {
			servers[t.Address] = provision.NewServer()
		}
		p, err := provision.NewPostgres(provision.Config{
			Target: name, Template: ct.Provision.Template, ConnectionLimit: ct.Provision.ConnectionLimit,
			Connect: func(ctx context.Context) (*pgconn.PgConn, error) { return postgres.ConnectAdmin(ctx, admin) },
			Grants:  b.Store, Server: servers[t.Address], Logger: b.log,
		})
		if err != nil {
			return err
		}
		t.Accounts = p
		targets[name] = t
		b.provisioners = append(b.provisioners, provisioner{p: p, wake: make(chan struct{}, 1)})
	}
	return nil
}

// provisionMySQLAccounts is provisionAccounts for the MySQL and MariaDB
// targets.
func (b *Bastion) provisionMySQLAccounts(targets map[string]mysql.Target) error {
	servers := map[string]*provision.Server{} // by address: one per MySQL server
	for name, t := range targets {
		ct := b.Config.Targets[name]
		if ct == nil || ct.Provision == nil {
			continue
		}
		admin := t // the target as configured: its own credentials, no Accounts
		if servers[t.Address] == nil {
			servers[t.Address] = provision.NewServer()
		}
		p, err := provision.NewMySQL(provision.MySQLConfig{
			Target: name, Template: ct.Provision.Template, ConnectionLimit: ct.Provision.ConnectionLimit,
			Connect: func(ctx context.Context) (provision.MySQLAdmin, error) { return mysql.ConnectAdmin(ctx, admin) },
			Grants:  b.Store, Server: servers[t.Address], Logger: b.log,
		})
		if err != nil {
			return err
		}
		t.Accounts = p
		targets[name] = t
		b.provisioners = append(b.provisioners, provisioner{p: p, wake: make(chan struct{}, 1)})
	}
	return nil
}

// runProvisioners sweeps every target's provisioned accounts at once (what
// a crash left behind), then periodically and on every change of a
// request, until ctx ends.
func (b *Bastion) runProvisioners(ctx context.Context, wg *sync.WaitGroup) {
	for _, pr := range b.provisioners {
		wg.Add(1)
		go func() { defer wg.Done(); pr.p.Run(ctx, pr.wake) }()
	}
}

// wakeProvisioners asks for a sweep now, without waiting for one running.
func (b *Bastion) wakeProvisioners() {
	for _, pr := range b.provisioners {
		select {
		case pr.wake <- struct{}{}:
		default:
		}
	}
}
