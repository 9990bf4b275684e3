package postgres

import (
	"errors"
	"slices"
	"sync"

	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/protocols/postgres/pgsql"
)

// Cache bounds. Statement texts longer than maxCachedText are parsed each
// time (they are rarely repeated), and a cache that fills up is emptied.
const (
	maxCachedText       = 16 << 10
	maxParsedStatements = 10000 // per server
	maxConnDecisions    = 1000  // per connection
)

// parsed is a query string's summary: its statements, or why it does not
// parse.
type parsed struct {
	stmts []policy.Statement
	err   error
	// groups[i] is stmts[i] followed by the statements in its code (a DO
	// block, a function being created), at any depth: what the rules
	// decide for stmts[i]. Nil when no statement has code.
	groups [][]policy.Statement
	// unchecked says why code in the string cannot be checked.
	unchecked string
	// misreads says why the server may read what follows differently from
	// the rules' parser after a statement, or code in one
	// (pgsql.Statement.Misreads).
	misreads string
}

// group is what the rules decide for statement i.
func (p *parsed) group(i int) []policy.Statement {
	if p.groups == nil {
		return p.stmts[i : i+1]
	}
	return p.groups[i]
}

// all is every statement the rules decide, code included.
func (p *parsed) all() []policy.Statement {
	if p.groups == nil {
		return p.stmts
	}
	var out []policy.Statement
	for _, g := range p.groups {
		out = append(out, g...)
	}
	return out
}

// parseCache keeps summaries by exact query text. pg_query's fingerprint
// ignores constants (DELETE … WHERE 1=1 and … WHERE id=1 share one), so
// the text itself is the key.
//
// A single statement whose decision no constant can change (see
// constantFree) is also kept by its literalKey, so that texts differing
// from it only in constants are not parsed again.
type parseCache struct {
	mu   sync.Mutex
	m    map[string]*parsed
	byLK map[string]*parsed
}

func newParseCache() *parseCache {
	return &parseCache{m: map[string]*parsed{}, byLK: map[string]*parsed{}}
}

// parse summarises sql, from the cache when it was seen before.
// key and keyed are literalKey(sql).
func (pc *parseCache) parse(sql, key string, keyed bool) *parsed {
	if len(sql) > maxCachedText {
		return parseText(sql)
	}
	pc.mu.Lock()
	p := pc.m[sql]
	if p == nil && keyed {
		if q := pc.byLK[key]; q != nil {
			p = q.withText(sql)
		}
	}
	pc.mu.Unlock()
	if p != nil {
		return p
	}
	p = parseText(sql)
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if len(pc.m) >= maxParsedStatements {
		clear(pc.m)
	}
	pc.m[sql] = p
	if keyed && p.err == nil && p.groups == nil && len(p.stmts) == 1 && constantFree(&p.stmts[0]) {
		if len(pc.byLK) >= maxParsedStatements {
			clear(pc.byLK)
		}
		pc.byLK[key] = p
	}
	return p
}

// parseText summarises sql.
func parseText(sql string) *parsed {
	p := &parsed{}
	stmts, err := pgsql.Parse(sql)
	if err != nil {
		p.err = err
	} else {
		p.stmts = make([]policy.Statement, len(stmts))
		p.misreads = misreads(stmts)
		for i := range stmts {
			p.stmts[i] = policyStatement(&stmts[i])
			if len(stmts[i].Inner) == 0 && stmts[i].Unchecked == "" {
				continue
			}
			if p.groups == nil {
				p.groups = make([][]policy.Statement, len(stmts))
				for j := range i {
					p.groups[j] = p.stmts[j : j+1]
				}
			}
			p.groups[i] = []policy.Statement{p.stmts[i]}
			p.addCode(&p.groups[i], &stmts[i])
		}
		if p.groups != nil {
			for i := range p.groups {
				if p.groups[i] == nil {
					p.groups[i] = p.stmts[i : i+1]
				}
			}
		}
	}
	return p
}

// misreads is the first reason a statement, or one in its code, gives the
// server to read what follows differently from the rules' parser.
func misreads(stmts []pgsql.Statement) string {
	for i := range stmts {
		if why := stmts[i].Misreads; why != "" {
			return why
		}
		if why := misreads(stmts[i].Inner); why != "" {
			return why
		}
	}
	return ""
}

// addCode appends the statements in s's code to g, at any depth, and notes
// the first reason some code cannot be checked.
func (p *parsed) addCode(g *[]policy.Statement, s *pgsql.Statement) {
	if s.Unchecked != "" && p.unchecked == "" {
		p.unchecked = s.Command + ": " + s.Unchecked
	}
	for i := range s.Inner {
		*g = append(*g, policyStatement(&s.Inner[i]))
		p.addCode(g, &s.Inner[i])
	}
}

// policyStatement is the protocol-neutral summary the policy decides on.
func policyStatement(s *pgsql.Statement) policy.Statement {
	tables := make([]string, len(s.Tables))
	for i, t := range s.Tables {
		tables[i] = t.String()
	}
	return policy.Statement{
		Text: s.Text, Kind: policy.StatementKind(s.Kind), Command: s.Command, Actions: s.Actions,
		Tables: tables, TableCase: policy.TablesSQLCase,
		Functions: s.Functions, Unbounded: s.Unbounded, WritesInCTE: s.WritesInCTE,
		ExplainAnalyze: s.ExplainAnalyze, FileAccess: s.CopyProgram || s.CopyFile || s.ServerFiles, RoleChange: s.Roles,
		Program: s.Program, SideEffects: s.SideEffects,
		Prepares: s.Prepares, Executes: s.Executes,
	}
}

// verdict is the decision on one query string (or Parse, or
// FunctionCall): the overall decision and each statement's, for the
// recording.
type verdict struct {
	stmts    []policy.Statement // nil when the text did not parse
	overall  policy.QueryDecision
	each     []policy.QueryDecision
	parseErr error
	// lasting is set when what the string runs would outlive the session
	// on its target connection, which DISCARD ALL does not undo (a library
	// loaded, a dblink connection opened), or when it does not parse: such
	// a target connection is not reused.
	lasting bool
}

// decider decides a connection's statements, caching by text: the user,
// target and policy are fixed for the cache's life.
type decider struct {
	user, target string
	policy       func() *policy.Policy
	parsed       *parseCache

	pol        *policy.Policy // the policy the caches were filled under
	restricted bool
	cache      map[string]*verdict // by text
	byLK       map[string]*verdict // by literalKey, for constant-free statements
	// prepared is what the session may have prepared with SQL's PREPARE,
	// so that an EXECUTE is decided as what it runs.
	prepared policy.Prepared
}

// decide returns the verdict on sql, and remembers what it PREPAREs
// unless it is denied.
func (d *decider) decide(sql string) *verdict {
	v := d.decideText(sql)
	if v.overall.Action != policy.CommandDeny {
		d.prepared.Remember(v.stmts)
	}
	return v
}

// executes reports whether a statement of stmts runs a prepared statement.
func executes(stmts []policy.Statement) bool {
	return slices.ContainsFunc(stmts, func(s policy.Statement) bool { return len(s.Executes) > 0 })
}

// decideText returns the verdict on sql.
func (d *decider) decideText(sql string) *verdict {
	if p := d.policy(); p != d.pol {
		d.pol, d.cache, d.byLK = p, map[string]*verdict{}, map[string]*verdict{}
		d.restricted = p.QueriesRestricted(d.user, d.target)
	}
	if v := d.cache[sql]; v != nil {
		return v
	}
	key, keyed := literalKey(sql)
	if v := d.byLK[key]; keyed && v != nil {
		w := *v
		w.stmts = (&parsed{stmts: v.stmts}).withText(sql).stmts
		return &w
	}
	p := d.parsed.parse(sql, key, keyed)
	execs := executes(p.all())
	v := &verdict{stmts: p.stmts, parseErr: p.err, lasting: p.err != nil || outlivesSession(p.all())}
	switch {
	case p.err != nil && d.restricted:
		v.overall = policy.QueryDecision{Action: policy.CommandDeny,
			Reason: "the statement cannot be parsed, and query rules apply to this target: " + p.err.Error()}
	case p.err != nil:
		v.overall = policy.QueryDecision{Action: policy.CommandAllow}
	case d.restricted && p.misreads != "":
		v.overall = policy.QueryDecision{Action: policy.CommandDeny,
			Reason: p.misreads + ", after which the server would read statements differently from the rules' parser; where query rules apply, keep UTF8 (or another encoding without that trait) and standard_conforming_strings on"}
	case d.restricted && p.unchecked != "":
		v.overall = policy.QueryDecision{Action: policy.CommandDeny,
			Reason: p.unchecked + ", and query rules apply to this target"}
	default:
		// An EXECUTE's verdict depends on the session's PREPAREs: it is
		// decided as what it runs, and not cached.
		follow := func(g []policy.Statement) []policy.Statement { return d.prepared.Follow(g, p.stmts) }
		v.each = make([]policy.QueryDecision, len(p.stmts))
		for i := range p.stmts {
			v.each[i] = d.pol.DecideQueries(d.user, d.target, follow(p.group(i)))
			v.each[i].Index = i
		}
		v.overall = d.pol.DecideQueries(d.user, d.target, follow(p.all()))
	}
	switch {
	case execs || len(sql) > maxCachedText:
	case keyed && p.err == nil && p.groups == nil && len(p.stmts) == 1 && constantFree(&p.stmts[0]):
		if len(d.byLK) >= maxConnDecisions {
			clear(d.byLK)
		}
		d.byLK[key] = v
	default:
		if len(d.cache) >= maxConnDecisions {
			clear(d.cache)
		}
		d.cache[sql] = v
	}
	return v
}

// decideFunctionCall decides a FunctionCall message: it names a function
// by OID, which no rule can match, so it is denied whenever rules apply.
func (d *decider) decideFunctionCall() policy.QueryDecision {
	if d.policy().QueriesRestricted(d.user, d.target) {
		return policy.QueryDecision{Action: policy.CommandDeny,
			Reason: "function calls by the fast-path protocol are not allowed when query rules apply (use SELECT f(…))"}
	}
	return policy.QueryDecision{Action: policy.CommandAllow}
}

// outlivesSession reports whether a statement leaves something in the
// server process that DISCARD ALL does not undo: a library it loads, or a
// named dblink connection.
func outlivesSession(stmts []policy.Statement) bool {
	for i := range stmts {
		s := &stmts[i]
		if s.Command == "LOAD" || slices.Contains(s.Functions, "dblink_connect") || slices.Contains(s.Functions, "dblink_connect_u") {
			return true
		}
	}
	return false
}

// errHidingEncoding is why a client encoding that hides backslashes is
// refused where query rules apply.
var errHidingEncoding = errors.New("the client encodings in which a backslash can be part of a character (BIG5, GB18030, GBK, JOHAB, SJIS, SHIFT_JIS_2004, UHC) may not be used through Bastion where query rules apply: the server would read strings differently from the rules' parser; use UTF8")
