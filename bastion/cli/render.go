package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/bastionhq/bastion/bastion/store"
	"github.com/bastionhq/bastion/internal/ascii"
)

// Every byte a command writes goes through one of the writers below; no
// other file of the package touches r.io (TestOutputOnlyThroughRenderer).
//
// Human output is written by printf and eprintf. Their format is the
// renderer's own, a constant (go vet checks the calls as it checks
// fmt.Printf), and is the only text written raw: the newlines, padding and
// labels. Every argument is data and is shown through ascii.Escape, whatever
// its type and verb, so that no text a user supplied (an exec's command, a
// reason, a comment, a login, a file name, an error that quotes input)
// reaches an auditor's terminal as escape sequences, C1 controls or bidi
// overrides: a column added later cannot forget it. A value built with
// fmt.Sprintf and then printed is escaped whole when printed.
//
// --json output (printJSON) stays exact: a decoder reads back the very
// text. JSON escapes C0 controls itself; printJSON also writes DEL, C1
// controls, bidi overrides and other unprintable characters as \u escapes,
// which decode to the same text but do nothing to a terminal that shows the
// JSON. The raw recording content of replay, export and watch (what the
// auditor asked to see, as recorded) goes to rawOut.

// printf writes human output to stdout; see above.
func (r *run) printf(format string, args ...any) {
	shownArgs(args)
	fmt.Fprintf(r.io.Stdout, format, args...)
}

// eprintf writes human output (an error, a notice) to stderr; see above.
func (r *run) eprintf(format string, args ...any) {
	shownArgs(args)
	fmt.Fprintf(r.io.Stderr, format, args...)
}

// printJSON writes v as one line of JSON to stdout, its unprintable
// characters escaped (see above).
func (r *run) printJSON(v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		r.log.Warn("encode json output", "err", err)
		return
	}
	if _, err := r.io.Stdout.Write(jsonShown(buf.Bytes())); err != nil {
		r.log.Warn("write json output", "err", err)
	}
}

// jsonShown returns the output of encoding/json (valid UTF-8, control
// characters escaped, everything outside strings ASCII) with every other
// character that is not printable, from DEL up, written as a \u escape (a
// surrogate pair above U+FFFF): the same JSON values, nothing a terminal
// acts on.
func jsonShown(b []byte) []byte {
	i := 0
	for i < len(b) {
		r, size := utf8.DecodeRune(b[i:])
		if r >= 0x7f && !unicode.IsPrint(r) {
			break
		}
		i += size
	}
	if i == len(b) {
		return b
	}
	out := append(make([]byte, 0, len(b)+16), b[:i]...)
	for i < len(b) {
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case r < 0x7f || unicode.IsPrint(r):
			out = append(out, b[i:i+size]...)
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			out = fmt.Appendf(out, `\u%04x\u%04x`, r1, r2)
		default:
			out = fmt.Appendf(out, `\u%04x`, r)
		}
		i += size
	}
	return out
}

// rawOut is stdout for a recording's own bytes (replay, export, watch),
// written unchanged.
func (r *run) rawOut() io.Writer { return r.io.Stdout }

// shownArgs wraps, in place, each argument of printf so that it is
// formatted escaped. The slice is printf's own: no caller passes one with
// "...". (Wrapping in place, and passing args on as they came, keeps printf
// a printf wrapper in go vet's eyes, so that its calls are checked.)
func shownArgs(args []any) {
	for i, a := range args {
		if _, ok := a.(lines); !ok {
			args[i] = shown{a}
		}
	}
}

// shown is an argument of printf: formatted as fmt would with the same verb
// and flags, then escaped (numbers, times and %q's output come out as they
// were). A width is applied before escaping, so a value that needed
// escaping is as much wider as its escapes are.
type shown struct{ v any }

func (s shown) Format(f fmt.State, verb rune) {
	// A fmt.State writes to fmt's buffer, which does not fail.
	io.WriteString(f, ascii.Escape(fmt.Sprintf(fmt.FormatString(f, verb), s.v)))
}

// lines is text of several lines that Bastion itself made (a PEM block, an
// authorized_keys line with its newline): each line is escaped, and the
// newlines between them are kept.
type lines string

func (l lines) Format(f fmt.State, _ rune) {
	parts := strings.Split(string(l), "\n")
	for i, p := range parts {
		parts[i] = ascii.Escape(p)
	}
	io.WriteString(f, strings.Join(parts, "\n"))
}

// requestView is a request as --json shows it.
type requestView struct {
	ID                int64          `json:"id"`
	State             store.State    `json:"state"`
	Requester         string         `json:"requester"`
	Role              string         `json:"role"`
	Targets           []string       `json:"targets"`
	Logins            []string       `json:"logins,omitempty"`
	Reason            string         `json:"reason,omitempty"`
	Duration          string         `json:"duration"`
	DurationSeconds   int64          `json:"duration_seconds"`
	CreatedAt         time.Time      `json:"created_at"`
	PendingUntil      *time.Time     `json:"pending_until,omitempty"`
	ApprovalsRequired int            `json:"approvals_required"`
	Approvers         []string       `json:"approvers,omitempty"`
	Approvals         []approvalView `json:"approvals"`
	DecidedBy         string         `json:"decided_by,omitempty"`
	DecisionReason    string         `json:"decision_reason,omitempty"`
	GrantStart        *time.Time     `json:"grant_start,omitempty"`
	GrantEnd          *time.Time     `json:"grant_end,omitempty"`
	ClosedBy          string         `json:"closed_by,omitempty"`
	CloseReason       string         `json:"close_reason,omitempty"`
	ClosedAt          *time.Time     `json:"closed_at,omitempty"`
	Command           string         `json:"command,omitempty"` // a request to run one command in a session
}

type approvalView struct {
	Approver string    `json:"approver"`
	Comment  string    `json:"comment,omitempty"`
	At       time.Time `json:"at"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func viewOf(q *store.Request) requestView {
	v := requestView{
		ID: q.ID, State: q.State, Requester: q.Requester, Role: q.Role, Targets: q.Targets, Logins: q.Logins,
		Reason: q.Reason, Duration: q.Duration.String(), DurationSeconds: int64(q.Duration / time.Second),
		CreatedAt: q.CreatedAt.UTC(), ApprovalsRequired: q.ApprovalsRequired, Approvers: q.Approvers,
		Approvals: []approvalView{}, DecidedBy: q.DecidedBy, DecisionReason: q.DecisionReason,
		GrantStart: timePtr(q.GrantStart), GrantEnd: timePtr(q.GrantEnd),
		ClosedBy: q.ClosedBy, CloseReason: q.CloseReason, ClosedAt: timePtr(q.ClosedAt), Command: q.Command,
	}
	if q.State == store.Pending {
		v.PendingUntil = timePtr(q.PendingUntil)
	}
	for _, a := range q.Approvals {
		v.Approvals = append(v.Approvals, approvalView{Approver: a.Approver, Comment: a.Comment, At: a.At.UTC()})
	}
	return v
}

func (r *run) showRequest(q *store.Request) {
	if r.json {
		r.printJSON(viewOf(q))
		return
	}
	r.printf("request #%d %s\n", q.ID, q.State)
	r.printf("  by:       %s (role %s)\n", q.Requester, q.Role)
	r.printf("  targets:  %s%s\n", strings.Join(q.Targets, ", "), asLogins(q.Logins))
	if q.Command != "" {
		r.printf("  command:  %s\n", q.Command)
	}
	r.printf("  for:      %s\n", q.Duration)
	if q.Reason != "" {
		r.printf("  reason:   %s\n", q.Reason)
	}
	r.printf("  approved: %d of %d (approvers: %s)\n", len(q.Approvals), q.ApprovalsRequired, strings.Join(q.Approvers, ", "))
	for _, a := range q.Approvals {
		line := "    " + a.Approver + " at " + a.At.UTC().Format(time.RFC3339)
		if a.Comment != "" {
			line += fmt.Sprintf(": %s", a.Comment)
		}
		r.printf("%s\n", line)
	}
	switch q.State {
	case store.Pending:
		r.printf("  expires:  %s unless approved\n", q.PendingUntil.UTC().Format(time.RFC3339))
	case store.Approved:
		r.printf("  granted:  %s until %s\n", q.GrantStart.UTC().Format(time.RFC3339), q.GrantEnd.UTC().Format(time.RFC3339))
	case store.Denied:
		r.printf("  denied:   by %s: %s\n", q.DecidedBy, q.DecisionReason)
	default:
		if q.ClosedBy != "" {
			r.printf("  %-9s by %s%s\n", string(q.State)+":", q.ClosedBy, because(q))
		}
	}
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// shortDuration prints 30m rather than 30m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
