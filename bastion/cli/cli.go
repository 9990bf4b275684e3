// Package cli is Bastion's self-service command line: whoami, targets,
// request, requests, approve, deny, wait, cert, revoke, audit, ca and help.
// The same commands run over SSH (`ssh alice@bastion request …`), at the
// interactive prompt of `ssh alice@bastion`, and as `bastion` subcommands on
// the server. Every command has --json output and exit codes that tell
// success (0) from refusal (1) and usage errors (2).
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strings"
	"unicode/utf8"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/bastion/store"
	"github.com/bastionhq/bastion/recorder"
)

// Exit codes.
const (
	ExitOK      = 0
	ExitRefused = 1 // the policy, the request's state or an error said no
	ExitUsage   = 2 // the command line is wrong
)

// Access is the subset of the access service the commands use.
type Access interface {
	Request(ctx context.Context, a access.Actor, in access.RequestInput) (*store.Request, error)
	Get(ctx context.Context, a access.Actor, id int64) (*store.Request, error)
	List(ctx context.Context, a access.Actor, f store.RequestFilter) ([]*store.Request, error)
	Approve(ctx context.Context, a access.Actor, id int64, comment string) (*store.Request, error)
	Deny(ctx context.Context, a access.Actor, id int64, reason string) (*store.Request, error)
	Revoke(ctx context.Context, a access.Actor, id int64, reason string) (*store.Request, error)
	Wait(ctx context.Context, a access.Actor, id int64) (*store.Request, error)
	Cert(ctx context.Context, a access.Actor, id int64) (*access.Certificate, error)
	IssueDBSecret(ctx context.Context, a access.Actor, id int64) (*access.DBSecret, error)
	Record(ctx context.Context, a access.Actor, e audit.Event)
}

// AuditLog is the subset of the store the audit commands read.
type AuditLog interface {
	Audit(ctx context.Context, f store.AuditFilter) ([]audit.Event, error)
}

// CAInfo is what `ca` prints: public keys and the lines that trust them.
type CAInfo struct {
	UserCA     string `json:"user_ca"`     // authorized_keys line
	UpstreamCA string `json:"upstream_ca"` // authorized_keys line
	HostCA     string `json:"host_ca"`     // authorized_keys line
	TLSCA      string `json:"tls_ca_pem"`  // PEM
	KnownHosts string `json:"known_hosts"` // @cert-authority line for users
}

// Config holds the CLI's dependencies.
type Config struct {
	Access     Access
	Audit      AuditLog
	Sessions   SessionLog       // optional: session commands
	Recordings recorder.Storage // optional: replay, export, watch
	Policy     func() *policy.Policy
	CA         func() CAInfo
	// Databases says where clients reach the database front ends (for
	// `token`); optional.
	Databases func() Databases
	// Process reports the process's file descriptors against its limits
	// (for `status`); optional: nil leaves them out.
	Process func() ProcessStatus
	// CommandsPerMinute caps each user's command lines run by RunLine
	// (over SSH); 0: DefaultCommandsPerMinute. The operator's commands on
	// the server itself are not capped.
	CommandsPerMinute int
	Logger            *slog.Logger
}

// ProcessStatus is the process's use of file descriptors, as `status` shows
// it: a gateway near its soft limit refuses connections (accept fails with
// EMFILE) long before anything else runs out.
type ProcessStatus struct {
	OpenFiles int `json:"open_files"`    // descriptors open now; -1 when unknown
	SoftLimit int `json:"fd_soft_limit"` // RLIMIT_NOFILE soft limit: where accept starts failing
	HardLimit int `json:"fd_hard_limit"` // RLIMIT_NOFILE hard limit: how far the soft one could be raised
}

// Databases is where clients reach Bastion's database front ends: the host
// name to print, and the ports (0 when that front end is off).
type Databases struct {
	Host         string
	PostgresPort int
	MySQLPort    int
}

// CLI runs self-service commands.
type CLI struct {
	access     Access
	audit      AuditLog
	sessionLog SessionLog
	recordings recorder.Storage
	policy     func() *policy.Policy
	ca         func() CAInfo
	databases  func() Databases
	process    func() ProcessStatus
	log        *slog.Logger
	commands   []*command // commandTable()
	limiter    *commandLimiter
}

// New returns a CLI.
func New(cfg Config) *CLI {
	c := &CLI{access: cfg.Access, audit: cfg.Audit, sessionLog: cfg.Sessions, recordings: cfg.Recordings,
		policy: cfg.Policy, ca: cfg.CA, databases: cfg.Databases, process: cfg.Process, log: cfg.Logger,
		commands: commandTable(), limiter: newCommandLimiter(cfg.CommandsPerMinute, nil)}
	if c.log == nil {
		c.log = slog.Default()
	}
	return c
}

// IO is where a command reads and writes.
type IO struct {
	Stdout, Stderr io.Writer
}

// run is one command invocation.
type run struct {
	*CLI
	ctx   context.Context
	actor access.Actor
	io    IO
	args  *args
	json  bool
	// operator is the operator at the server's console, who may read
	// everything.
	operator bool
}

// command is one self-service command.
type command struct {
	name    string
	usage   string // after the command name
	summary string
	flags   flagSpec
	run     func(r *run) error
}

// commandTable lists every command, in the order help shows them (by
// name). It is the one place a command is added: nothing registers itself.
func commandTable() []*command {
	return []*command{
		{name: "approve", usage: "ID [--comment TEXT]", summary: "approve a request",
			flags: flagSpec{"comment": textFlag}, run: (*run).approve},
		{name: "audit", usage: "[verify] [--user USER] [--since DURATION|TIME] [--type TYPE] [--request ID] [--limit N]",
			summary: "show (or verify) the audit log",
			flags:   flagSpec{"user": stringFlag, "since": stringFlag, "type": stringFlag, "request": stringFlag, "limit": stringFlag},
			run:     (*run).auditCmd},
		{name: "ca", usage: "[--tls]", summary: "print Bastion's CA keys and the lines that trust them",
			flags: flagSpec{"tls": boolFlag}, run: (*run).caCmd},
		{name: "cert", usage: "ID", summary: "print an SSH certificate for your key from an approved request", run: (*run).cert},
		{name: "deny", usage: "ID --reason TEXT", summary: "deny a pending request",
			flags: flagSpec{"reason": textFlag}, run: (*run).deny},
		{name: "export", usage: "ID", summary: "print a session's recording (.cast or .jsonl) as stored", run: (*run).export},
		{name: "help", usage: "[COMMAND]", summary: "show the commands, or one command's usage", run: (*run).help},
		{name: "hold", usage: "ID --reason TEXT | ID --release [--reason TEXT]",
			summary: "place or lift a legal hold on a session's recording: held recordings are never deleted by retention (audit permission)",
			flags:   flagSpec{"reason": textFlag, "release": boolFlag}, run: (*run).hold},
		{name: "replay", usage: "ID [--speed X] [--idle-limit D]", summary: "replay a recorded session with its timing",
			flags: flagSpec{"speed": stringFlag, "idle-limit": stringFlag}, run: (*run).replay},
		{name: "request", usage: "TARGET... [--login LOGIN]... --for DURATION --reason TEXT", summary: "request access to targets",
			flags: flagSpec{"login": listFlag, "for": stringFlag, "reason": textFlag}, run: (*run).request},
		{name: "requests", usage: "[--state STATE]... [--user USER] [--limit N]",
			summary: "list requests: yours, those you may approve, or all for auditors",
			flags:   flagSpec{"state": listFlag, "user": stringFlag, "limit": stringFlag}, run: (*run).requests},
		{name: "revoke", usage: "ID [--reason TEXT]", summary: "withdraw or release your request, or revoke one you approve",
			flags: flagSpec{"reason": textFlag}, run: (*run).revoke},
		{name: "sessions", usage: "[--user U] [--target T] [--since 24h|TIME] [--live] [--limit N]",
			summary: "list recorded sessions (yours, or all with the audit permission)",
			flags:   flagSpec{"user": stringFlag, "target": stringFlag, "since": stringFlag, "live": boolFlag, "limit": stringFlag},
			run:     (*run).sessions},
		{name: "show", usage: "ID", summary: "show one request", run: (*run).show},
		{name: "status", summary: "open files and their limits, recording storage and uploads: errors, spool, upload lag (audit permission)",
			run: (*run).status},
		{name: "targets", summary: "list the targets you can use now or could request", run: (*run).targets},
		{name: "token", usage: "ID [--target NAME]", summary: "print a fresh database secret and connection URL from an approved request",
			flags: flagSpec{"target": stringFlag}, run: (*run).token},
		{name: "verify", usage: "ID",
			summary: "prove a session's recording complete and unaltered (signed manifest); offline: bastion verify --dir DIR --pubkey FILE",
			run:     (*run).verify},
		{name: "wait", usage: "ID", summary: "wait until a request is decided; print the certificate when it is yours and approved",
			run: (*run).wait},
		{name: "watch", usage: "ID", summary: "watch a live session, read-only", run: (*run).watch},
		{name: "whoami", summary: "show who you are, your roles and your live grants", run: (*run).whoami},
	}
}

// command returns the command called name, or nil.
func (c *CLI) command(name string) *command {
	for _, cmd := range c.commands {
		if cmd.name == name {
			return cmd
		}
	}
	return nil
}

// internalError is all a user is told of an error that is neither a
// refusal nor a usage error: the cause may hold internals (paths, SQL,
// addresses) and goes to the operator's log instead.
const internalError = "internal error; the operator's log has the details"

// usageError is a wrong command line (exit 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// Run executes one command line for actor and returns the exit code.
func (c *CLI) Run(ctx context.Context, actor access.Actor, stdio IO, words []string) int {
	return c.run(ctx, actor, false, stdio, words)
}

// RunLine splits a command line as a shell would (see SplitWords) and runs
// it. When its quoting is not balanced, the words of free-text flags
// (--reason, --comment) are taken literally (see splitFreeText). A line that
// still cannot be split is a usage error, reported like any other, with a
// hint on quoting over ssh.
func (c *CLI) RunLine(ctx context.Context, actor access.Actor, stdio IO, line string) int {
	if first, err := c.limiter.allow(actor.User); err != nil {
		r := &run{CLI: c, ctx: ctx, actor: actor, io: stdio, json: strings.Contains(line, "--json")}
		if first { // one event per burst, not one per refused line
			c.access.Record(ctx, actor, audit.Event{Type: audit.Command, Outcome: audit.OutcomeRefused, Reason: err.Error(),
				Details: map[string]string{"limit": "commands_per_minute"}})
		}
		return r.finish("", err)
	}
	words, err := SplitWords(line)
	var qe *quoteError
	if errors.As(err, &qe) {
		if f := blankFields(line); len(f) > 0 {
			if cmd := c.command(f[0].word); cmd != nil {
				words, err = splitFreeText(line, cmd.flags)
			}
		}
	}
	if err != nil {
		r := &run{CLI: c, ctx: ctx, actor: actor, io: stdio, json: strings.Contains(line, "--json")}
		if errors.As(err, &qe) {
			return r.finish("", usagef("%v; "+quoteHint, err, actor.User))
		}
		return r.finish("", usagef("%v", err))
	}
	return c.Run(ctx, actor, stdio, words)
}

// RunAsOperator executes a command for the operator on the server itself
// (`bastion audit verify`): reading commands are not limited to one user's
// view. Actions that need a user (approve, request, …) still act as actor.
func (c *CLI) RunAsOperator(ctx context.Context, actor access.Actor, stdio IO, words []string) int {
	return c.run(ctx, actor, true, stdio, words)
}

func (c *CLI) run(ctx context.Context, actor access.Actor, operator bool, stdio IO, words []string) int {
	if len(words) == 0 {
		words = []string{"help"}
	}
	name, rest := words[0], words[1:]
	r := &run{CLI: c, ctx: ctx, actor: actor, operator: operator, io: stdio}
	cmd := c.command(name)
	var err error
	if cmd == nil {
		err = usagef("unknown command %q (try `help`)", truncate(name, 40))
	} else if r.args, err = parseArgs(rest, cmd.flags); err != nil {
		err = usagef("%s: %v (usage: %s %s)", name, err, name, cmd.usage)
	}
	if err == nil {
		r.json = r.args.bools["json"]
		if r.args.bools["help"] || r.args.bools["h"] {
			r.args.pos = []string{name}
			cmd = c.command("help")
		}
		err = r.runCommand(cmd)
	} else {
		r.json = containsWord(rest, "--json")
	}
	return r.finish(name, err)
}

// errPanicked is the error of a command that panicked; the panic and its
// stack are logged where it is recovered.
var errPanicked = errors.New("cli: command panicked")

// runCommand runs cmd. A panic ends the command, not the process: every
// command line from every front end (an SSH session, the interactive
// prompt, a `bastion` subcommand) passes here, so this one recover keeps a
// bug in one command from taking down every live session. The user sees
// the fixed internal-error message; the log has the panic and its stack.
func (r *run) runCommand(cmd *command) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("command panicked", "command", cmd.name, "user", r.actor.User,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = errPanicked
		}
	}()
	return cmd.run(r)
}

// finish reports err, if any, and maps it to an exit code. Refusals and
// usage errors carry a reason safe to show; anything else is logged and the
// user sees a generic message.
func (r *run) finish(name string, err error) int {
	if err == nil {
		return ExitOK
	}
	code, kind, msg := ExitRefused, "refused", err.Error()
	var ue *usageError
	var inv *policy.InvalidError
	var ref *policy.Refusal
	switch {
	case errors.As(err, &ue), errors.As(err, &inv):
		code, kind = ExitUsage, "usage"
	case errors.As(err, &ref), errors.Is(err, access.ErrNotFound):
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		msg = "interrupted"
	case errors.Is(err, errPanicked): // logged with its stack by runCommand
		kind, msg = "error", internalError
	default:
		kind, msg = "error", internalError
		r.log.Error("command failed", "command", name, "user", r.actor.User, "err", err)
	}
	if code == ExitUsage && !errors.As(err, &inv) {
		r.access.Record(r.ctx, r.actor, audit.Event{Type: audit.Command, Outcome: audit.OutcomeRefused, Reason: msg,
			Details: map[string]string{"command": truncate(name, 40)}})
	}
	if r.json {
		r.printJSON(map[string]string{"error": msg, "kind": kind})
	}
	r.eprintf("bastion: %s\n", msg)
	return code
}

func (r *run) positional(min, max int) error {
	if n := len(r.args.pos); n < min || n > max {
		return usagef("wrong number of arguments: %q (see `help`)", r.args.pos)
	}
	return nil
}

// truncate cuts s to at most n bytes, at the start of a character (so that
// a cut does not leave half of one to be shown as bytes), and marks the cut.
func truncate(s string, n int) string {
	if len(s) > n {
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		return s[:n] + "…"
	}
	return s
}

func containsWord(words []string, w string) bool {
	for _, x := range words {
		if x == w {
			return true
		}
	}
	return false
}

func (r *run) help() error {
	if err := r.positional(0, 1); err != nil {
		return err
	}
	if len(r.args.pos) == 1 {
		name := r.args.pos[0]
		cmd := r.command(name)
		if cmd == nil {
			return usagef("unknown command %q", truncate(name, 40))
		}
		if r.json {
			r.printJSON(map[string]string{"command": name, "usage": name + " " + cmd.usage, "summary": cmd.summary})
			return nil
		}
		r.printf("usage: %s %s\n  %s\n  Every command takes --json.\n", name, cmd.usage, cmd.summary)
		return nil
	}
	if r.json {
		out := make([]map[string]string, 0, len(r.commands))
		for _, cmd := range r.commands {
			out = append(out, map[string]string{"command": cmd.name, "usage": strings.TrimSpace(cmd.name + " " + cmd.usage), "summary": cmd.summary})
		}
		r.printJSON(out)
		return nil
	}
	r.printf("Bastion self-service commands (every command takes --json):\n")
	for _, cmd := range r.commands {
		r.printf("  %-9s %s\n", cmd.name, cmd.summary)
	}
	r.printf("\nExample: request web01 --login root --for 30m --reason INC-1 disk full\n")
	return nil
}
