package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/bastionhq/bastion/internal/ascii"
	"github.com/bastionhq/bastion/recorder/querylog"
)

// Transcript prints the query log in r to w, one event a line (a statement
// of several lines continues on indented lines), paced as recorded (see
// Options). Each line starts with the time since the first event:
//
//	+0.000s alice@orders START postgres database=orders client=192.0.2.10:51234 request=42
//	+0.123s alice@orders ALLOW SELECT * FROM orders WHERE id = $1  -- params: 42; rule read-all; 1.25ms; SELECT 1; 1 row
//	+2.000s alice@orders DENY DELETE FROM orders  -- rule no-unbounded-delete; DELETE without WHERE is not allowed
//	+4.000s alice@orders END client closed the connection
//
// Characters that are not printable (escape sequences a user could hide in a
// statement to act on the auditor's terminal, bidirectional overrides) are
// shown escaped. It returns nil at the end of the log, ctx.Err() when ctx is
// done, and otherwise the first error reading the log or writing to w, after
// printing what came before it.
func Transcript(ctx context.Context, r io.Reader, w io.Writer, opts Options) error {
	opts, err := opts.withDefaults()
	if err != nil {
		return err
	}
	log := querylog.NewReader(r)
	p := pacer{opts: opts}
	var first time.Time
	who := "?" // user@target, from the start event
	for {
		e, err := log.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		if first.IsZero() {
			first = e.Time
		}
		offset := e.Time.Sub(first)
		if err := p.wait(ctx, offset); err != nil {
			return err
		}
		if e.Type == querylog.TypeStart {
			target := e.Target
			if target == "" {
				target = e.Database
			}
			who = e.User + "@" + target
		}
		if _, err := io.WriteString(w, transcriptLine(offset, who, e)); err != nil {
			return fmt.Errorf("replay: write: %w", err)
		}
	}
}

// continuationIndent starts the further lines of a multi-line statement.
const continuationIndent = "        "

// transcriptLine formats one event, with its newline.
func transcriptLine(offset time.Duration, who string, e querylog.Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%+.3fs %s ", offset.Seconds(), printable(who))
	switch e.Type {
	case querylog.TypeStart:
		b.WriteString("START " + printable(e.Protocol))
		for _, kv := range [][2]string{{"database", e.Database}, {"client", e.ClientAddr}, {"request", e.RequestID}} {
			if kv[1] != "" {
				b.WriteString(" " + kv[0] + "=" + printable(kv[1]))
			}
		}
	case querylog.TypeQuery:
		b.WriteString(strings.ToUpper(e.Decision) + " " + printable(e.Statement))
		notes := statementNotes(e)
		if e.DurationMS > 0 {
			d := time.Duration(e.DurationMS * float64(time.Millisecond))
			notes = append(notes, d.Round(time.Microsecond).String())
		}
		if e.Tag != "" {
			notes = append(notes, printable(e.Tag))
		}
		if e.Decision == querylog.Allow && (e.Error == "" || e.Rows > 0) {
			notes = append(notes, plural(e.Rows, "row"))
		}
		if e.Error != "" {
			prefix := "error: "
			if e.Decision == querylog.Deny {
				prefix = ""
			}
			notes = append(notes, prefix+printable(e.Error))
		}
		if len(notes) > 0 {
			b.WriteString("  -- " + strings.Join(notes, "; "))
		}
	case querylog.TypeExec:
		// Durability: statement; the outcome follows in a query event,
		// unless Bastion stopped first.
		b.WriteString("FORWARD " + printable(e.Statement))
		if notes := statementNotes(e); len(notes) > 0 {
			b.WriteString("  -- " + strings.Join(notes, "; "))
		}
	case querylog.TypeEnd:
		b.WriteString("END")
		if e.Reason != "" {
			b.WriteString(" " + printable(e.Reason))
		}
	}
	b.WriteByte('\n')
	return b.String()
}

// statementNotes are the notes of a statement's parameters and rule.
func statementNotes(e querylog.Event) []string {
	var notes []string
	if e.Params != nil {
		params := make([]string, len(e.Params))
		for i, p := range e.Params {
			params[i] = printable(p)
		}
		notes = append(notes, "params: "+strings.Join(params, ", "))
	}
	if e.Rule != "" {
		notes = append(notes, "rule "+printable(e.Rule))
	}
	return notes
}

// plural returns "1 row", "2 rows".
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.FormatInt(n, 10) + " " + noun + "s"
}

// printable returns s with newlines followed by the continuation indent, tabs
// kept, and every other character that is not printable escaped by
// ascii.Escape, as the CLI shows all text a user supplied (\r, \x1b, \u202e).
func printable(s string) string {
	lines := strings.Split(s, "\n")
	for i, line := range lines {
		cells := strings.Split(line, "\t")
		for j, c := range cells {
			cells[j] = ascii.Escape(c)
		}
		lines[i] = strings.Join(cells, "\t")
	}
	return strings.Join(lines, "\n"+continuationIndent)
}
