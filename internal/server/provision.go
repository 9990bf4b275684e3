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
	p    sweeper
	wake chan struct{}
}

// provisionAccounts gives every PostgreSQL target configured with
// `provision:` its provisioner, as the target's Accounts: its sessions log
// in as accounts of their own, made by the target's configured (admin)
// account.
func (b *Bastion) provisionAccounts(targets pgTargets) error {
	return provisionEach(b, targets, func(t postgres.Target) string { return t.Address },
		func(cfg provision.Config, t postgres.Target) (postgres.Target, sweeper, error) {
			admin := t // the target as configured: its own credentials, no Accounts
			cfg.Connect = func(ctx context.Context) (*pgconn.PgConn, error) { return postgres.ConnectAdmin(ctx, admin) }
			p, err := provision.NewPostgres(cfg)
			t.Accounts = p
			return t, p, err
		})
}

// provisionMySQLAccounts is provisionAccounts for the MySQL and MariaDB
// targets.
func (b *Bastion) provisionMySQLAccounts(targets map[string]mysql.Target) error {
	return provisionEach(b, targets, func(t mysql.Target) string { return t.Address },
		func(c provision.Config, t mysql.Target) (mysql.Target, sweeper, error) {
			admin := t // the target as configured: its own credentials, no Accounts
			p, err := provision.NewMySQL(provision.MySQLConfig{
				Target: c.Target, Template: c.Template, ConnectionLimit: c.ConnectionLimit, Grants: c.Grants, Server: c.Server, Logger: c.Logger,
				Connect: func(ctx context.Context) (provision.MySQLAdmin, error) { return mysql.ConnectAdmin(ctx, admin) },
			})
			t.Accounts = p
			return t, p, err
		})
}

// sweeper sweeps one target's provisioned accounts until ctx ends.
type sweeper interface {
	Run(ctx context.Context, wake <-chan struct{})
}

// provisionEach gives each of targets configured with `provision:` what
// build makes of its settings (all but Connect, with the Server of its
// address: one per database server, whose accounts its targets share),
// and keeps the provisioner to sweep.
func provisionEach[T any](b *Bastion, targets map[string]T, address func(T) string,
	build func(provision.Config, T) (T, sweeper, error)) error {
	servers := map[string]*provision.Server{}
	for name, t := range targets {
		ct := b.Config.Targets[name]
		if ct == nil || ct.Provision == nil {
			continue
		}
		addr := address(t)
		if servers[addr] == nil {
			servers[addr] = provision.NewServer()
		}
		t, p, err := build(provision.Config{Target: name, Template: ct.Provision.Template, ConnectionLimit: ct.Provision.ConnectionLimit,
			Grants: b.Store, Server: servers[addr], Logger: b.log}, t)
		if err != nil {
			return err
		}
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
