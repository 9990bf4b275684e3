package ssh

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/term"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/cli"
	"github.com/bastionhq/bastion/internal/frontend"
)

// connection is an authenticated self-service connection.
type connection struct {
	srv            *Server
	fc             *frontend.Conn
	conn           *ssh.ServerConn
	actor          access.Actor
	keyFingerprint string
	log            *slog.Logger
}

// ptyRequest is the payload of a "pty-req" request (RFC 4254 6.2).
type ptyRequest struct {
	Term          string
	Cols, Rows    uint32
	Width, Height uint32
	Modes         string
}

// session serves one session channel: exec runs one command; shell opens the
// prompt. Requests other than pty-req, window-change, env, exec and shell
// are refused.
func (c *connection) session(ctx context.Context, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var (
		mu      sync.Mutex
		pty     *ptyRequest
		started bool
		resize  = make(chan [2]int, 1)
	)
	done := make(chan struct{})
	defer close(done)
	for req := range reqs {
		ok := false
		var start func() // the command, started once its request is answered
		switch req.Type {
		case "pty-req":
			var p ptyRequest
			if err := ssh.Unmarshal(req.Payload, &p); err == nil {
				mu.Lock()
				pty, ok = &p, true
				mu.Unlock()
			}
		case "window-change":
			if len(req.Payload) >= 8 {
				cols, rows := binary.BigEndian.Uint32(req.Payload), binary.BigEndian.Uint32(req.Payload[4:])
				select {
				case <-resize:
				default:
				}
				resize <- [2]int{int(cols), int(rows)}
				ok = true
			}
		case "env":
			ok = true // accepted and ignored: nothing here reads the environment
		case "exec", "shell":
			if started {
				break
			}
			started, ok = true, true
			var command string
			if req.Type == "exec" {
				var p struct{ Command string }
				if err := ssh.Unmarshal(req.Payload, &p); err != nil {
					ok = false
					break
				}
				command = p.Command
			}
			mu.Lock()
			p := pty
			mu.Unlock()
			shell := req.Type == "shell"
			start = func() {
				code := c.run(ctx, ch, shell, command, p, resize)
				c.exit(ch, code)
			}
		}
		if req.WantReply {
			if err := req.Reply(ok, nil); err != nil {
				c.log.Debug("reply to request", "type", req.Type, "err", err)
			}
		}
		// Answered first: a command that ends at once would otherwise close
		// the channel before the client hears that its exec was accepted.
		if start != nil {
			c.fc.Go(start)
		}
	}
}

// exit sends exit-status and closes the channel, in RFC 4254 order: all
// output has been written by now, then exit-status, then close.
func (c *connection) exit(ch ssh.Channel, code int) {
	status := struct{ Status uint32 }{uint32(code)}
	if _, err := ch.SendRequest("exit-status", false, ssh.Marshal(&status)); err != nil {
		c.log.Debug("send exit-status", "err", err)
	}
	if err := ch.CloseWrite(); err != nil {
		c.log.Debug("close write", "err", err)
	}
	ch.Close()
}

// run executes an exec command or an interactive shell and returns the exit
// status.
func (c *connection) run(ctx context.Context, ch ssh.Channel, shell bool, command string, pty *ptyRequest, resize <-chan [2]int) int {
	if !shell {
		c.log.Info("command", "command", firstWord(command))
		return c.srv.cfg.Commands.RunLine(ctx, c.actor, cli.IO{Stdout: ch, Stderr: ch.Stderr()}, command)
	}
	if pty != nil {
		return c.prompt(ctx, ch, pty, resize)
	}
	return c.lines(ctx, ch)
}

// firstWord is what the log records of a command line: the command's name,
// not its arguments (they may hold reasons, or worse). Leading assignments
// are skipped: in PGPASSWORD=secret psql, the name is psql.
func firstWord(line string) string {
	for _, w := range strings.Fields(line) {
		if eq := strings.IndexByte(w, '='); eq > 0 && isName(w[:eq]) {
			continue
		}
		return printable(w)
	}
	return ""
}

func isName(s string) bool {
	for i, c := range s {
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// prompt is the interactive command line on a terminal.
func (c *connection) prompt(ctx context.Context, ch ssh.Channel, pty *ptyRequest, resize <-chan [2]int) int {
	t := term.NewTerminal(ch, "bastion> ")
	if err := t.SetSize(int(pty.Cols), int(pty.Rows)); err != nil {
		c.log.Debug("set terminal size", "err", err)
	}
	c.fc.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case sz := <-resize:
				if err := t.SetSize(sz[0], sz[1]); err != nil {
					c.log.Debug("set terminal size", "err", err)
				}
			}
		}
	})
	c.welcome(ctx, t)
	return c.loop(ctx, ch, t.ReadLine, cli.IO{Stdout: t, Stderr: t})
}

// lines is the command line without a terminal (`ssh -T alice@bastion`):
// one command per input line.
func (c *connection) lines(ctx context.Context, ch ssh.Channel) int {
	sc := bufio.NewScanner(ch)
	sc.Buffer(make([]byte, 4096), cli.MaxLineLength+1)
	read := func() (string, error) {
		if !sc.Scan() {
			if err := sc.Err(); err != nil {
				return "", err
			}
			return "", io.EOF
		}
		return sc.Text(), nil
	}
	c.welcome(ctx, ch)
	return c.loop(ctx, ch, read, cli.IO{Stdout: ch, Stderr: ch.Stderr()})
}

func (c *connection) welcome(ctx context.Context, w io.Writer) {
	fmt.Fprintf(w, "%sWelcome to Bastion, %s. Type `help` for commands, `exit` to leave.\n", c.srv.cfg.Banner, c.actor.User)
	c.srv.cfg.Commands.RunLine(ctx, c.actor, cli.IO{Stdout: w, Stderr: w}, "targets")
}

// loop reads and runs command lines until EOF, `exit`, or the idle timeout.
func (c *connection) loop(ctx context.Context, ch ssh.Channel, read func() (string, error), stdio cli.IO) int {
	idle := c.srv.cfg.IdleTimeout
	var timer *time.Timer
	if idle > 0 {
		timer = time.AfterFunc(idle, func() {
			fmt.Fprintf(stdio.Stderr, "\nbastion: closing the session after %s without input\n", idle)
			ch.Close()
		})
		defer timer.Stop()
	}
	status := 0
	for {
		line, err := read()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				c.log.Debug("read command line", "err", err)
			}
			return status
		}
		if timer != nil {
			timer.Reset(idle)
		}
		line = strings.TrimSpace(line)
		switch line {
		case "":
			continue
		case "exit", "quit", "logout":
			return status
		}
		c.log.Info("command", "command", firstWord(line), "interactive", true)
		if timer != nil {
			timer.Stop() // a command such as `wait` may legitimately run long
		}
		status = c.srv.cfg.Commands.RunLine(ctx, c.actor, stdio, line)
		if timer != nil {
			timer.Reset(idle)
		}
	}
}
