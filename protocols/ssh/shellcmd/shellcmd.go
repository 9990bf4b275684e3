// Package shellcmd finds the commands a shell command line would run, so
// that the per-command rules of the SSH proxy can decide on each of them.
//
// Parse reads a line with a real shell grammar (mvdan.cc/sh, bash dialect)
// and returns every simple command in it: in pipelines, lists, subshells,
// blocks, if/while/for/case, function bodies, command and process
// substitutions and here-documents. Names are normalised ("/bin/rm", "\rm",
// "r”m" are "rm"); words are unquoted; a word whose value is only known at
// run time ($VAR, $(…), a glob in a command's name) makes its command
// Dynamic. Programs that run other commands (sudo, env, xargs, sh -c, eval,
// find -exec, …; see wrappers.go) are returned and unwrapped, so the
// command they run is checked too.
//
// Arguments a wrapper adds at run time (xargs, find -exec's {}) make
// the command's arguments unknown (DynamicArgs), never absent. Interpreters
// given inline code (python3 -c, perl -e, awk with system(), psql -c with
// \!) are Dynamic: their code is not shell code this package can read. An
// alias definition runs nothing; a later use of the alias in the same line
// runs its value. ParseLine also reports a line that starts a shell or
// interpreter reading the session's own input (bash, su -, sudo -i,
// python3), whose commands are typed later.
//
// It does no I/O and runs nothing. What it cannot see, it cannot check: the
// content of script files (bash x.sh, python3 x.py, at -f FILE), the
// aliases and functions the target's shell already has, what a program
// reading its own input runs (an editor's :!, a REPL, a pager), commands
// run by tools it does not know (git's aliases, make), and what a command
// does once running. Filtering is an aid, not a sandbox.
package shellcmd

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"

	"github.com/bastionhq/bastion/bastion/policy"
)

// Limits on the work one line may cause. Exceeding one is an error, so the
// caller fails closed.
const (
	// MaxInput is the longest command line (and the longest shell code
	// found inside one, such as the string of sh -c) that Parse reads.
	MaxInput = 64 << 10
	// MaxDepth is how deeply shell code may nest in shell code
	// (sh -c "sh -c '…'", eval, here-documents fed to a shell).
	MaxDepth = 8
	// maxCommands bounds the commands of one line, wrappers included.
	maxCommands = 1024
	// maxWrappers bounds a chain of wrappers (sudo nice env … cmd).
	maxWrappers = 16
	// maxFields bounds the words one word may expand to with braces
	// ({a,b}{c,d}); a word beyond it is treated as unknowable.
	maxFields = 256
	// maxBraces bounds the brace expansions in one word; a word beyond it
	// is treated as unknowable.
	maxBraces = 64
)

// ErrIncomplete is returned (wrapped) for a line that ends inside a
// construct: an open quote, a trailing backslash, an unfinished if or
// pipeline, a here-document without its end. An interactive shell would
// read more lines; a caller that filters typed lines may join the next one.
var ErrIncomplete = errors.New("incomplete command")

// limitError is a limit being exceeded; it is reported as is, however
// deeply it happened.
type limitError struct{ msg string }

func (e *limitError) Error() string { return e.msg }

// Parse returns the simple commands line would run, in order of appearance
// (a wrapper before the command it runs). A line with no command (blank,
// comments, assignments only) gives none. A line that cannot be parsed, or
// that exceeds a limit, gives an error: the caller should fail closed.
func Parse(line string) ([]policy.Command, error) {
	r, err := ParseLine(line)
	return r.Commands, err
}

// Result is what a command line runs.
type Result struct {
	// Commands are the simple commands of the line, as Parse returns them.
	Commands []policy.Command
	// ReadsInput is set when the line runs a shell or another interpreter
	// that reads its commands from the session's own input (ssh host bash,
	// su -, sudo -i, python3, psql, at now): what it will run is typed (or
	// piped) later, and the line's commands say nothing about it.
	ReadsInput bool
	// Aliases are the aliases the line defines (alias NAME=VALUE), by
	// name. In an interactive shell they outlive the line: a caller
	// filtering typed lines decides their values too.
	Aliases map[string]string
}

// ParseLine is Parse, and also says whether the line runs an interpreter
// reading the session's input.
func ParseLine(line string) (Result, error) {
	p := &parser{aliases: map[string]string{}, expanding: map[string]bool{}}
	if err := p.script(line, 0, stdin{}); err != nil {
		if syntax.IsIncomplete(err) {
			return Result{}, fmt.Errorf("shellcmd: %w: %v", ErrIncomplete, err)
		}
		return Result{}, fmt.Errorf("shellcmd: %w", err)
	}
	return Result{Commands: p.cmds, ReadsInput: p.readsInput, Aliases: p.aliases}, nil
}

// parser collects the commands of one line.
type parser struct {
	cmds       []policy.Command
	readsInput bool
	// aliases are the aliases the line defines (alias NAME=VALUE), for
	// expanding their later uses in the same line.
	aliases   map[string]string
	expanding map[string]bool // the aliases being expanded
}

func (p *parser) emit(c policy.Command) error {
	if len(p.cmds) == maxCommands {
		return &limitError{fmt.Sprintf("more than %d commands", maxCommands)}
	}
	p.cmds = append(p.cmds, c)
	return nil
}

// script collects the commands of shell code src, found at depth (0 for the
// line itself), whose standard input is in.
func (p *parser) script(src string, depth int, in stdin) error {
	if depth > MaxDepth {
		return &limitError{fmt.Sprintf("shell code nested more than %d levels deep (sh -c, eval, …)", MaxDepth)}
	}
	if len(src) > MaxInput {
		return &limitError{fmt.Sprintf("shell code longer than %d bytes", MaxInput)}
	}
	f, err := syntax.NewParser(syntax.Variant(syntax.LangBash)).Parse(strings.NewReader(src), "")
	if err != nil {
		return err
	}
	code := source(src)
	if depth == 0 && continues(f, src) {
		return fmt.Errorf("%w: the line ends with a backslash", ErrIncomplete)
	}

	// Walk visits parents before children: a statement's standard input
	// is known (from its parent and its own redirections) before the
	// statements inside it are visited.
	inherit := map[syntax.Node]stdin{}
	inheritAll(inherit, in, f.Stmts)
	var werr error
	syntax.Walk(f, func(n syntax.Node) bool {
		if werr != nil {
			return false
		}
		switch x := n.(type) {
		case *syntax.Stmt:
			in := code.redirected(x, inherit[x])
			switch c := x.Cmd.(type) {
			case *syntax.CallExpr:
				werr = p.call(code, c, in, depth)
			case *syntax.BinaryCmd:
				inherit[c.X] = in
				if c.Op == syntax.Pipe || c.Op == syntax.PipeAll {
					inherit[c.Y] = stdin{kind: stdinPipe}
				} else {
					inherit[c.Y] = in
				}
			case nil:
			default:
				inherit[c] = in
			}
		case *syntax.Block:
			inheritAll(inherit, inherit[x], x.Stmts)
		case *syntax.Subshell:
			inheritAll(inherit, inherit[x], x.Stmts)
		case *syntax.IfClause:
			inheritAll(inherit, inherit[x], x.Cond, x.Then)
			if x.Else != nil {
				inherit[x.Else] = inherit[x]
			}
		case *syntax.WhileClause:
			inheritAll(inherit, inherit[x], x.Cond, x.Do)
		case *syntax.ForClause:
			inheritAll(inherit, inherit[x], x.Do)
		case *syntax.CaseClause:
			for _, item := range x.Items {
				inheritAll(inherit, inherit[x], item.Stmts)
			}
		case *syntax.TimeClause:
			inheritAll(inherit, inherit[x], []*syntax.Stmt{x.Stmt})
			c := policy.Command{Name: "time"}
			if x.PosixFormat {
				c.Args = []string{"-p"}
			}
			werr = p.emit(c)
		case *syntax.CoprocClause:
			inheritAll(inherit, inherit[x], []*syntax.Stmt{x.Stmt})
		case *syntax.DeclClause:
			werr = p.emit(code.decl(x))
		case *syntax.LetClause:
			werr = p.emit(policy.Command{Name: "let", Args: strings.Fields(strings.TrimPrefix(code.text(x), "let"))})
		}
		return werr == nil
	})
	return werr
}

func inheritAll(inherit map[syntax.Node]stdin, in stdin, lists ...[]*syntax.Stmt) {
	for _, list := range lists {
		for _, s := range list {
			if s != nil {
				inherit[s] = in
			}
		}
	}
}

// continues reports whether src ends with an unquoted backslash, which a
// shell reads as "continued on the next line".
func continues(f *syntax.File, src string) bool {
	found := false
	syntax.Walk(f, func(n syntax.Node) bool {
		if lit, ok := n.(*syntax.Lit); ok && int(lit.End().Offset()) == len(src) {
			v := lit.Value
			n := len(v) - len(strings.TrimRight(v, `\`))
			found = found || n%2 == 1
		}
		return !found
	})
	return found
}

// call collects one simple command and what it runs.
func (p *parser) call(code source, c *syntax.CallExpr, in stdin, depth int) error {
	var fields []field
	for _, w := range c.Args {
		fields = append(fields, code.fields(w)...)
	}
	if len(fields) == 0 {
		return nil // assignments only
	}
	return p.run(job{fields: fields, in: in, depth: depth})
}

// alias expands a use of an alias the line defined earlier: its value,
// followed by the command's arguments, is shell code. ok is false when
// name is no such alias.
func (p *parser) alias(j job) (string, bool) {
	name := j.fields[0]
	if name.dynamic || name.glob || j.hops > 0 {
		return "", false // a wrapper runs programs, not aliases
	}
	value, ok := p.aliases[name.text]
	if !ok || p.expanding[name.text] {
		return "", false
	}
	code := value
	for _, f := range j.fields[1:] {
		if f.dynamic {
			code += " " + f.text // as written: expands at run time
			continue
		}
		q, err := syntax.Quote(f.text, syntax.LangBash)
		if err != nil {
			q = "$UNKNOWN" // cannot be quoted (NUL): unknowable
		}
		code += " " + q
	}
	return code, true
}

// job is a command to report and unwrap.
type job struct {
	fields      []field
	in          stdin
	depth       int    // shell-code nesting
	hops        int    // wrappers above this command
	placeholder string // text find -exec or xargs -I replace (e.g. "{}"), or ""
	moreArgs    bool   // the wrapper adds arguments at run time (xargs)
}

// run reports j's command and, breadth first, the commands it runs.
func (p *parser) run(first job) error {
	queue := []job{first}
	for len(queue) > 0 {
		j := queue[0]
		queue = queue[1:]
		if len(j.fields) == 0 {
			continue
		}
		if j.hops > maxWrappers {
			return &limitError{fmt.Sprintf("more than %d nested command wrappers", maxWrappers)}
		}
		if code, ok := p.alias(j); ok {
			// An alias is not a program: what runs is its value (in which
			// the alias itself is not expanded again, as in bash).
			name := j.fields[0].text
			p.expanding[name] = true
			err := p.script(code, j.depth+1, j.in)
			delete(p.expanding, name)
			if err != nil {
				var le *limitError
				if errors.As(err, &le) {
					return err
				}
				return fmt.Errorf("in the alias %s: %v", name, err)
			}
			continue
		}
		c := command(j)
		var u unwrapped
		if name := j.fields[0]; !name.dynamic && !name.glob && !hasPlaceholder(name, j.placeholder) {
			if w := wrapperOf(c.Name); w != nil {
				u = w(j.fields[1:], j)
			}
		}
		for name, value := range u.aliases {
			p.aliases[name] = value
		}
		p.stdinCode(&u, j.in)
		var scripts []string
		for _, s := range u.scripts {
			if s.dynamic || hasPlaceholder(s, j.placeholder) {
				u.unknown = true
				continue
			}
			scripts = append(scripts, s.text)
		}
		c.Dynamic = c.Dynamic || u.unknown
		if err := p.emit(c); err != nil {
			return err
		}
		for _, s := range scripts {
			if err := p.script(s, j.depth+1, j.in); err != nil {
				var le *limitError
				if errors.As(err, &le) {
					return err
				}
				return fmt.Errorf("in the shell code run by %s: %v", c.Name, err)
			}
		}
		for _, next := range u.next {
			queue = append(queue, job{fields: next.fields, in: next.in, depth: j.depth, hops: j.hops + 1,
				placeholder: next.placeholder, moreArgs: next.moreArgs})
		}
	}
	return nil
}

// stdinCode applies what u reads as code from its standard input, in.
func (p *parser) stdinCode(u *unwrapped, in stdin) {
	if !u.stdinScript && !u.stdinCode {
		return
	}
	switch in.kind {
	case stdinInherited:
		// The session's own input: typed at a terminal (where the line
		// filter sees it, if it is a shell) or sent down the exec channel
		// (which nothing can check).
		p.readsInput = true
	case stdinText:
		if u.stdinScript {
			u.scripts = append(u.scripts, field{text: in.text})
		} else {
			u.unknown = true // code in another language
		}
	case stdinPipe, stdinUnknown:
		u.unknown = true
	case stdinFile:
		// A named file: as opaque as a script file (see the package doc).
	}
}

func hasPlaceholder(f field, placeholder string) bool {
	return placeholder != "" && strings.Contains(f.text, placeholder)
}

// command builds the Command of j's fields (name first). Arguments a
// wrapper fills in or adds at run time (find -exec's {}, xargs's input) are
// unknown, never taken as written or as absent.
func command(j job) policy.Command {
	fields := j.fields
	name := fields[0]
	c := policy.Command{Name: baseName(name.text), DynamicArgs: j.moreArgs}
	switch {
	case name.dynamic:
		c.Name, c.Dynamic = baseName(name.prefix), true
	case name.glob, hasPlaceholder(name, j.placeholder):
		c.Dynamic = true
	}
	if len(fields) > 1 {
		c.Args = make([]string, 0, len(fields)-1)
	}
	for _, f := range fields[1:] {
		c.Args = append(c.Args, f.text)
		c.DynamicArgs = c.DynamicArgs || f.dynamic || hasPlaceholder(f, j.placeholder)
	}
	return c
}

// baseName normalises a command name: the part after the last slash,
// without leading backslashes.
func baseName(s string) string {
	s = s[strings.LastIndexByte(s, '/')+1:]
	return strings.TrimLeft(s, `\`)
}

// declCommand reports declare, export, local, readonly, typeset and nameref.
// Their arguments are assignments, given as written; they run no other
// program, so they are never Dynamic (substitutions in their values are
// reported as commands of their own).
func (code source) decl(d *syntax.DeclClause) policy.Command {
	c := policy.Command{Name: d.Variant.Value}
	for _, a := range d.Args {
		switch {
		case a.Naked && a.Name != nil:
			c.Args = append(c.Args, a.Name.Value)
		case a.Naked && a.Value != nil:
			c.Args = append(c.Args, code.wordText(a.Value))
		case a.Name != nil && a.Value != nil:
			c.Args = append(c.Args, a.Name.Value+"="+code.wordText(a.Value))
		case a.Name != nil && a.Array != nil:
			c.Args = append(c.Args, a.Name.Value+"="+code.text(a.Array))
		case a.Name != nil:
			c.Args = append(c.Args, a.Name.Value+"=")
		}
	}
	return c
}

// field is one word of a command after brace expansion and quote removal.
type field struct {
	text    string // the literal value; for a dynamic word, its source text
	prefix  string // for a dynamic word, the literal text before its first expansion
	dynamic bool   // the value is only known at run time
	glob    bool   // an unquoted *, ? or [...] (pathname expansion)
}

// fields expands braces in w and unquotes the result.
func (code source) fields(w *syntax.Word) []field {
	split := &syntax.Word{Parts: w.Parts} // SplitBraces rewrites the word it is given
	if !syntax.SplitBraces(split) {
		return []field{code.field(w.Parts, w)}
	}
	if braces(split.Parts) > maxBraces || braceCount(split.Parts) > maxFields {
		return []field{{text: code.text(w), dynamic: true}}
	}
	var out []field
	for ew, err := range expand.BracesSeq(nil, split) {
		if err != nil || len(out) == maxFields {
			return []field{{text: code.text(w), dynamic: true}}
		}
		out = append(out, code.field(ew.Parts, w))
	}
	return out
}

// braces counts the brace expansions in parts, nested ones included.
func braces(parts []syntax.WordPart) int {
	n := 0
	for _, part := range parts {
		if br, ok := part.(*syntax.BraceExp); ok {
			n++
			for _, e := range br.Elems {
				n += braces(e.Parts)
			}
		}
	}
	return n
}

// braceCount is how many words brace expansion makes of parts, or more
// than maxFields if that is more; counting first keeps a line of thousands
// of braces from costing minutes to expand.
func braceCount(parts []syntax.WordPart) int {
	n := 1
	for _, part := range parts {
		br, ok := part.(*syntax.BraceExp)
		if !ok {
			continue
		}
		m := 0
		if br.Sequence {
			m = sequenceLen(br)
		} else {
			for _, e := range br.Elems {
				m += braceCount(e.Parts)
				if m > maxFields {
					break
				}
			}
		}
		n *= max(m, 1)
		if n > maxFields {
			return maxFields + 1
		}
	}
	return n
}

// sequenceLen is the length of {x..y[..incr]}, capped above maxFields.
func sequenceLen(br *syntax.BraceExp) int {
	from, to := br.Elems[0].Lit(), br.Elems[1].Lit()
	a, aerr := strconv.ParseInt(from, 10, 64)
	b, berr := strconv.ParseInt(to, 10, 64)
	if aerr != nil || berr != nil {
		if len(from) != 1 || len(to) != 1 {
			return maxFields + 1
		}
		a, b = int64(from[0]), int64(to[0])
	}
	step := int64(1)
	if len(br.Elems) == 3 {
		if s, err := strconv.ParseInt(br.Elems[2].Lit(), 10, 64); err == nil && s != 0 && s != math.MinInt64 {
			step = max(s, -s)
		}
	}
	d := b - a
	if d < 0 {
		d = -d
	}
	if d < 0 || d/step >= maxFields { // d < 0: the subtraction overflowed
		return maxFields + 1
	}
	return int(d/step) + 1
}

// wordText is the literal value of w, or its source if it has expansions.
func (code source) wordText(w *syntax.Word) string {
	return code.field(w.Parts, w).text
}

// field unquotes parts, which belong to the word orig.
func (code source) field(parts []syntax.WordPart, orig *syntax.Word) field {
	var u unquoter
	u.parts(parts, false)
	if u.dynamic {
		return field{text: code.text(orig), prefix: u.prefix, dynamic: true}
	}
	return field{text: u.b.String(), glob: u.glob}
}

// unquoter computes the literal value of word parts.
type unquoter struct {
	b       strings.Builder
	prefix  string
	dynamic bool
	glob    bool
	bracket bool // an unquoted [ is open
}

func (u *unquoter) parts(parts []syntax.WordPart, quoted bool) {
	for _, part := range parts {
		switch x := part.(type) {
		case *syntax.Lit:
			if quoted {
				u.b.WriteString(unescapeQuoted(x.Value))
			} else {
				u.lit(x.Value)
			}
		case *syntax.SglQuoted:
			if !x.Dollar {
				u.b.WriteString(x.Value)
				break
			}
			// $'…' (ANSI-C quoting): expand decodes its escapes; with
			// a single-quoted part there is nothing else to expand.
			s, err := expand.Literal(nil, &syntax.Word{Parts: []syntax.WordPart{x}})
			if err != nil {
				u.expansion()
				break
			}
			u.b.WriteString(s)
		case *syntax.DblQuoted:
			if x.Dollar { // $"…" is translated by the locale at run time
				u.expansion()
				break
			}
			u.parts(x.Parts, true)
		case *syntax.ExtGlob:
			u.glob = true
			u.b.WriteString(x.Op.String() + x.Pattern.Value + ")")
		default: // parameter, command, arithmetic and process substitutions
			u.expansion()
		}
	}
}

func (u *unquoter) expansion() {
	if !u.dynamic {
		u.dynamic = true
		u.prefix = u.b.String()
	}
}

// lit unquotes an unquoted literal: a backslash escapes the next character
// (a backslash-newline disappears), and *, ? and [...] are globs.
func (u *unquoter) lit(s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s):
			i++
			if s[i] != '\n' {
				u.b.WriteByte(s[i])
			}
			continue
		case c == '*' || c == '?':
			u.glob = true
		case c == '[':
			u.bracket = true
		case c == ']' && u.bracket:
			u.glob = true
		}
		u.b.WriteByte(c)
	}
}

// unescapeQuoted unquotes a literal inside double quotes, where a backslash
// only escapes $ ` " \ and newline.
func unescapeQuoted(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("$`\"\\\n", s[i+1]) >= 0 {
			i++
			if s[i] != '\n' {
				b.WriteByte(s[i])
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unescapeHeredoc unquotes the body of a here-document whose delimiter is
// unquoted, where a backslash only escapes $ ` \ and newline.
func unescapeHeredoc(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("$`\\\n", s[i+1]) >= 0 {
			i++
			if s[i] != '\n' {
				b.WriteByte(s[i])
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// source is shell code being read.
type source string

// text is the source text of n, as written. (Slicing, unlike printing,
// costs nothing: nested substitutions do not make it quadratic.)
func (code source) text(n syntax.Node) string {
	start, end := n.Pos(), n.End()
	if !start.IsValid() || !end.IsValid() || start.Offset() > end.Offset() || end.Offset() > uint(len(code)) {
		return "?"
	}
	return string(code[start.Offset():end.Offset()])
}

// stdin is where a command's standard input comes from, as far as it
// matters for a shell reading its script from it.
type stdin struct {
	kind stdinKind
	text string // for stdinText
}

type stdinKind int

const (
	// stdinInherited is the session's input: the user's terminal (whose
	// lines are filtered as typed) or the exec channel.
	stdinInherited stdinKind = iota
	// stdinFile is a named file: as unknown as a script file given by name.
	stdinFile
	// stdinPipe is another command's output.
	stdinPipe
	// stdinText is a here-document or here-string with literal text.
	stdinText
	// stdinUnknown is input only known at run time: a here-document with
	// expansions, a process substitution, a duplicated descriptor.
	stdinUnknown
)

// redirected applies the input redirections of s to in.
func (code source) redirected(s *syntax.Stmt, in stdin) stdin {
	for _, r := range s.Redirs {
		if r.N != nil && r.N.Value != "0" {
			continue
		}
		switch r.Op {
		case syntax.RdrIn, syntax.RdrInOut:
			if r.Word != nil && code.field(r.Word.Parts, r.Word).dynamic {
				in = stdin{kind: stdinUnknown} // < <(…), < $FILE
			} else {
				in = stdin{kind: stdinFile}
			}
		case syntax.DplIn:
			in = stdin{kind: stdinUnknown}
		case syntax.Hdoc, syntax.DashHdoc:
			if text, ok := heredoc(r); ok {
				in = stdin{kind: stdinText, text: text}
			} else {
				in = stdin{kind: stdinUnknown}
			}
		case syntax.WordHdoc:
			if f := code.field(r.Word.Parts, r.Word); f.dynamic {
				in = stdin{kind: stdinUnknown}
			} else {
				in = stdin{kind: stdinText, text: f.text + "\n"}
			}
		}
	}
	return in
}

// heredoc returns the text of a here-document, if it has no expansions.
func heredoc(r *syntax.Redirect) (string, bool) {
	if r.Hdoc == nil {
		return "", true
	}
	// A quoted delimiter ('EOF', "EOF", \EOF) makes the body literal.
	quoted := false
	for _, part := range r.Word.Parts {
		if lit, ok := part.(*syntax.Lit); !ok || strings.Contains(lit.Value, `\`) {
			quoted = true
		}
	}
	var b strings.Builder
	for _, part := range r.Hdoc.Parts {
		lit, ok := part.(*syntax.Lit)
		if !ok {
			return "", false
		}
		if quoted {
			b.WriteString(lit.Value)
		} else {
			b.WriteString(unescapeHeredoc(lit.Value))
		}
	}
	return b.String(), true
}

// HistoryExpansion reports whether an interactive shell (bash, zsh) would
// expand history in line before running it: a "!" that starts an event
// (!!, !-2, !rm, !?x?, !$), outside single quotes and not escaped, or a
// "^old^new" quick substitution at its start. The line run is then an
// earlier one, edited, which the typed text does not show. Exec lines are
// run by a non-interactive shell, which does no history expansion.
func HistoryExpansion(line string) bool {
	if strings.HasPrefix(strings.TrimLeft(line, " \t"), "^") {
		return true
	}
	single, double := false, false
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == '\\' && !single:
			i++
		case c == '\'' && !double:
			single = !single
		case c == '"' && !single:
			double = !double
		case c == '!' && !single:
			if i+1 < len(line) && !strings.ContainsRune(" \t\n=(\"", rune(line[i+1])) {
				return true
			}
		}
	}
	return false
}
