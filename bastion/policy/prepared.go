package policy

import "slices"

// Bounds of Prepared: beyond them a name is remembered as one that may
// hold anything, or, when the names are full, not at all.
const (
	maxPreparedNames    = 1000
	maxPreparedVersions = 16
)

// Prepared is what a session may have prepared with SQL's PREPARE, as a
// front end saw it: every statement allowed under each name (whether it
// then ran or not, a DEALLOCATE notwithstanding), so that an EXECUTE is
// decided as the most any of them may do. A front end keeps one per
// session; the zero value is empty.
type Prepared struct {
	byName map[string][]Statement
}

// Remember notes the PREPAREs among stmts, which the session was allowed
// to run.
func (p *Prepared) Remember(stmts []Statement) {
	for i := range stmts {
		s := stmts[i]
		name := s.Prepares
		if name == "" {
			continue
		}
		if p.byName == nil {
			p.byName = map[string][]Statement{}
		}
		old, ok := p.byName[name]
		switch {
		case slices.ContainsFunc(old, func(o Statement) bool { return o.Text == s.Text }):
			continue
		case !ok && len(p.byName) >= maxPreparedNames:
			continue // EXECUTE of it stays unresolved
		case len(old) >= maxPreparedVersions:
			// Too many to follow: unknown, which no rule reads as a read.
			s = Statement{Text: s.Text, Kind: StatementUnknown, Command: "PREPARE"}
		}
		p.byName[name] = append(old, s)
	}
}

// Follow returns stmts with each EXECUTE decided as what it runs (see
// Following), counting also the PREPAREs of the statements in also (those
// of the same query string, which run before its EXECUTEs).
func (p *Prepared) Follow(stmts, also []Statement) []Statement {
	if !slices.ContainsFunc(stmts, func(s Statement) bool { return len(s.Executes) > 0 }) {
		return stmts
	}
	view := p
	if slices.ContainsFunc(also, func(s Statement) bool { return s.Prepares != "" }) {
		view = &Prepared{byName: make(map[string][]Statement, len(p.byName)+1)}
		for k, v := range p.byName {
			view.byName[k] = v
		}
		view.Remember(also)
	}
	out := make([]Statement, len(stmts))
	for i := range stmts {
		out[i] = Following(stmts[i], view.byName)
	}
	return out
}
