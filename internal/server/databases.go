package server

import (
	"context"
	"fmt"
	"net"
	"strconv"

	"github.com/bastionhq/bastion/bastion/cli"
	"github.com/bastionhq/bastion/bastion/policy"
)

// Frontend is a database front end: it serves client connections from a
// listener until Shutdown.
type Frontend interface {
	Serve(l net.Listener) error
	// Shutdown stops accepting, then waits for open connections until ctx
	// ends and closes those left.
	Shutdown(ctx context.Context) error
}

// databaseFrontend is a database front end Bastion can serve: its
// protocol, the configured listen address (empty: not served) and how it is
// built.
type databaseFrontend struct {
	kind   policy.Kind
	listen string
	build  func() (Frontend, error)
}

// databaseFrontends lists every database front end, in the order they are
// built. It is the one place a front end is added.
func (b *Bastion) databaseFrontends() []databaseFrontend {
	return []databaseFrontend{
		{kind: policy.KindPostgres, listen: b.Config.Listen.Postgres, build: b.newPostgres},
		{kind: policy.KindMySQL, listen: b.Config.Listen.MySQL, build: b.newMySQL},
	}
}

// buildFrontends builds the database front ends whose listen address is
// configured.
func (b *Bastion) buildFrontends() error {
	b.frontends = map[policy.Kind]Frontend{}
	b.frontendAddrs = map[policy.Kind]string{}
	for _, d := range b.databaseFrontends() {
		if d.listen == "" {
			continue
		}
		f, err := d.build()
		if err != nil {
			return fmt.Errorf("%s front end: %w", d.kind, err)
		}
		b.frontends[d.kind] = f
		b.frontendAddrs[d.kind] = d.listen
	}
	return nil
}

// databases is where clients reach the database front ends, for `token`.
func (b *Bastion) databases() cli.Databases {
	host := "127.0.0.1"
	if len(b.Config.Server.Hostnames) > 0 {
		host = b.Config.Server.Hostnames[0]
	}
	d := cli.Databases{Host: host}
	if a, ok := b.dbAddrs.Load().(map[policy.Kind]string); ok {
		d.PostgresPort, d.MySQLPort = portOf(a[policy.KindPostgres]), portOf(a[policy.KindMySQL])
	}
	return d
}

func portOf(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}
