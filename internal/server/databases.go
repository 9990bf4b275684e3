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

// frontendBuilders build the database front ends compiled in, by protocol.
// Each protocol registers itself from its own file (postgres.go, mysql.go).
var frontendBuilders = map[policy.Kind]func(b *Bastion) (Frontend, error){}

// listenAddr is the configured listen address of a database front end.
func (b *Bastion) listenAddr(k policy.Kind) string {
	switch k {
	case policy.KindPostgres:
		return b.Config.Listen.Postgres
	case policy.KindMySQL:
		return b.Config.Listen.MySQL
	}
	return ""
}

// buildFrontends builds the front ends whose listen address is configured.
func (b *Bastion) buildFrontends() error {
	b.frontends = map[policy.Kind]Frontend{}
	for _, k := range []policy.Kind{policy.KindPostgres, policy.KindMySQL} {
		if b.listenAddr(k) == "" {
			continue
		}
		build := frontendBuilders[k]
		if build == nil {
			return fmt.Errorf("listen.%s: the %s front end is not in this build", k, k)
		}
		f, err := build(b)
		if err != nil {
			return fmt.Errorf("%s front end: %w", k, err)
		}
		b.frontends[k] = f
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
