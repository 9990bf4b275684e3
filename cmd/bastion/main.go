// Command bastion is Bastion's single binary: the server, the demo, and the
// self-service commands run locally on the server.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	_ "time/tzdata" // time windows name zones; don't depend on the host's zoneinfo

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/cli"
	"github.com/bastionhq/bastion/bastion/config"
	"github.com/bastionhq/bastion/internal/demo"
	"github.com/bastionhq/bastion/internal/server"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

const usage = `usage:
  bastion serve --config FILE           run Bastion
  bastion demo [--dir DIR]              run a local sandbox with demo users and targets
  bastion [--config FILE] [--as USER] COMMAND [ARGS]
                                        run a self-service command on the server
                                        (ca, audit, audit verify, requests, approve, …;
                                        see "bastion help"); without --as, as the operator
  bastion verify --dir DIR --pubkey FILE
                                        verify a downloaded recording offline
  bastion version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bastion", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	configPath := fs.String("config", envOr("BASTION_CONFIG", "bastion.yaml"), "configuration file")
	as := fs.String("as", "", "run the command as this Bastion user")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return cli.ExitUsage
	}
	rest := hoistFlags(fs.Args(), map[string]*string{"config": configPath, "as": as})
	if len(rest) == 0 {
		fmt.Fprint(stderr, usage)
		return cli.ExitUsage
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "bastion: bad --log-level %q\n", *logLevel)
		return cli.ExitUsage
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	switch rest[0] {
	case "version":
		fmt.Fprintf(stdout, "bastion %s\n", version)
		return 0
	case "demo":
		return demo.Main(ctx, rest[1:], stdout, stderr, log)
	case "verify":
		// Offline, from a downloaded copy: no configuration needed.
		if code, ok := cli.VerifyOffline(ctx, rest[1:], stdout, stderr); ok {
			return code
		}
	case "serve":
		sfs := flag.NewFlagSet("serve", flag.ContinueOnError)
		sfs.SetOutput(stderr)
		sfs.StringVar(configPath, "config", *configPath, "configuration file")
		if err := sfs.Parse(rest[1:]); err != nil || sfs.NArg() > 0 {
			fmt.Fprint(stderr, usage)
			return cli.ExitUsage
		}
		return serve(ctx, *configPath, stderr, log)
	}

	// A self-service command, on the server.
	cfg, err := config.Load(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "bastion: %v\n", err)
		return cli.ExitUsage
	}
	// A local command logs errors only: its output is what the operator
	// reads, and warnings about the running server's state are the
	// server's to log.
	b, err := server.NewLocal(ctx, cfg, slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	if err != nil {
		fmt.Fprintf(stderr, "bastion: %v\n", err)
		return cli.ExitRefused
	}
	defer b.Close()
	stdio := cli.IO{Stdout: stdout, Stderr: stderr}
	if *as != "" {
		if _, ok := cfg.Users[*as]; !ok {
			fmt.Fprintf(stderr, "bastion: --as: unknown user %q\n", *as)
			return cli.ExitUsage
		}
		return b.CLI.Run(ctx, access.Actor{User: *as}, stdio, rest)
	}
	return b.CLI.RunAsOperator(ctx, access.Actor{User: "operator"}, stdio, rest)
}

func serve(ctx context.Context, path string, stderr io.Writer, log *slog.Logger) int {
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintf(stderr, "bastion: %v\n", err)
		return cli.ExitUsage
	}
	b, err := server.New(ctx, cfg, log)
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	l, err := b.Listen()
	if err != nil {
		b.Close()
		log.Error("start failed", "err", err)
		return 1
	}
	// SIGHUP applies the users' keys of the file again (see ReloadKeys).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := b.ReloadKeys(path); err != nil {
					log.Error("reload of the users' keys failed; the keys in use are unchanged", "err", err)
				}
			}
		}
	}()
	if err := b.Run(ctx, l); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("stopped", "err", err)
		return 1
	}
	return 0
}

// hoistFlags takes --config and --as out of a subcommand's arguments, so
// that `bastion ca --config FILE` works as well as `bastion --config FILE ca`.
func hoistFlags(args []string, flags map[string]*string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		name, val, hasVal := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		dst, ok := flags[name]
		if !ok || !strings.HasPrefix(args[i], "-") {
			out = append(out, args[i])
			continue
		}
		if !hasVal && i+1 < len(args) {
			i++
			val = args[i]
		}
		*dst = val
	}
	return out
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
