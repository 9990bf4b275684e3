// Package policy decides who may do what in Bastion: who may request which
// targets and logins, who may approve, for how long, under which conditions
// of time and source network, and what standing access a role has.
//
// Policy is data (built by package config from the YAML file) evaluated by
// methods that return typed results. It does no I/O and imports no protocol
// or storage package: callers pass plain values in and act on what comes out.
package policy

import (
	"fmt"
	"net/netip"
	"path"
	"slices"
	"sort"
	"strings"
	"time"
)

// Kind is the protocol of a target.
type Kind string

const (
	KindSSH      Kind = "ssh"
	KindPostgres Kind = "postgres"
	KindMySQL    Kind = "mysql"
)

// Permission is a capability a role grants beyond access to targets.
type Permission string

const (
	// PermAudit lets a user read every user's requests and audit events.
	PermAudit Permission = "audit"
)

// DefaultPendingTTL is how long a request waits for approval before it
// expires, unless the configuration says otherwise.
const DefaultPendingTTL = time.Hour

// Policy is the whole access policy.
type Policy struct {
	Users      map[string]*User
	Roles      map[string]*Role
	Targets    map[string]*Target
	PendingTTL time.Duration // how long requests stay pending
}

// User is a person known to Bastion.
type User struct {
	Name  string
	Roles []string
}

// Target is a server or database reachable through Bastion.
type Target struct {
	Name   string
	Kind   Kind
	Labels map[string]string
}

// Role is a named bundle of access and permissions.
type Role struct {
	Name        string
	Permissions []Permission
	Standing    []Access      // access without a request
	Requestable []RequestRule // access that can be requested

	// Commands are the per-command rules for SSH sessions, in file order
	// (see DecideCommands); CommandDefault answers for commands no rule
	// matches ("" means allow).
	Commands       []CommandRule
	CommandDefault CommandAction

	// Files are the rules for file transfers (SFTP, scp), in file order
	// (see DecideFile); CommandDefault also answers for file operations no
	// rule matches.
	Files []FileRule

	// Queries are the per-statement rules for database sessions, in file
	// order (see DecideQueries); QueryDefault answers for statements no
	// rule matches ("" means allow). ReadOnly denies every statement that
	// could change data, on every database target.
	Queries      []QueryRule
	QueryDefault CommandAction
	ReadOnly     bool

	// Forwarding is what SSH forwarding the role allows; all of it is
	// refused unless allowed.
	Forwarding Forwarding

	// Recording says what happens to the role's sessions when recording
	// cannot be guaranteed ("" is FailClosed).
	Recording RecordingMode
	// Durability is when a statement's record is durable ("" is
	// DurableStatement under fail-closed, DurableSecond under fail-open).
	Durability Durability
}

// RecordingMode is what a session does when its recording cannot be kept.
type RecordingMode string

const (
	// FailClosed refuses new sessions while recording cannot be
	// guaranteed and ends running ones when their recording fails.
	FailClosed RecordingMode = "fail-closed"
	// FailOpen lets sessions go on unrecorded (audited) when recording
	// fails.
	FailOpen RecordingMode = "fail-open"
)

// RecordingFor is the recording mode of a session of user on target under
// the grant of role ("" for standing access): fail-open only when every
// role that gives that access says so.
func (p *Policy) RecordingFor(user, target, role string) RecordingMode {
	if role != "" {
		if r := p.Roles[role]; r != nil && r.Recording == FailOpen {
			return FailOpen
		}
		return FailClosed
	}
	t := p.Targets[target]
	if t == nil {
		return FailClosed
	}
	mode := FailClosed
	for _, r := range p.roles(user) {
		if slices.ContainsFunc(r.Standing, func(a Access) bool { return a.Targets.Matches(t) }) {
			if r.Recording != FailOpen {
				return FailClosed
			}
			mode = FailOpen
		}
	}
	return mode
}

// Forwarding lists the kinds of SSH forwarding a role allows.
type Forwarding struct {
	Local  Destinations // ssh -L, -W (direct-tcpip): where to
	Remote Destinations // ssh -R (tcpip-forward): which bind addresses on the target
	Agent  bool         // ssh -A
	X11    bool         // ssh -X
}

// union is what either f or o allows.
func (f Forwarding) union(o Forwarding) Forwarding {
	return Forwarding{Local: f.Local.union(o.Local), Remote: f.Remote.union(o.Remote), Agent: f.Agent || o.Agent, X11: f.X11 || o.X11}
}

// ForwardingFor is the forwarding allowed to user on target: under the
// role of the request that granted access, or for standing access (role
// empty) under any role whose standing access covers the target.
func (p *Policy) ForwardingFor(user, target, role string) Forwarding {
	if role != "" {
		if r := p.Roles[role]; r != nil && p.HasRole(user, []string{role}) {
			return r.Forwarding
		}
		return Forwarding{}
	}
	var f Forwarding
	t := p.Targets[target]
	if t == nil {
		return f
	}
	for _, r := range p.roles(user) {
		if slices.ContainsFunc(r.Standing, func(a Access) bool { return a.Targets.Matches(t) }) {
			f = f.union(r.Forwarding)
		}
	}
	return f
}

// Selector matches targets by name (shell-style globs) or by labels. A
// target matches when its name matches one of Names, or when it carries every
// label in Labels (if any are given).
type Selector struct {
	Names  []string
	Labels map[string]string
}

// Matches reports whether t is selected.
func (s Selector) Matches(t *Target) bool {
	for _, pat := range s.Names {
		if ok, _ := path.Match(pat, t.Name); ok {
			return true
		}
	}
	if len(s.Labels) == 0 {
		return false
	}
	for k, v := range s.Labels {
		if got, ok := t.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Access is a set of targets and logins, usable under conditions.
type Access struct {
	Targets    Selector
	Logins     []string // SSH logins; ignored for database targets
	Conditions Conditions
}

// RequestRule says which access a role may request and how it is approved.
type RequestRule struct {
	Access
	Approvers     []string      // roles whose members may approve
	Approvals     int           // approvals needed (at least 1)
	MaxDuration   time.Duration // longest grant that may be requested
	RequireReason bool
	// AutoApprove, when non-nil, approves a request at once if these
	// conditions hold when it is made.
	AutoApprove *Conditions
}

// Conditions restrict when and from where access is usable. Empty lists
// impose no restriction; otherwise one window and one network must match.
type Conditions struct {
	Windows  []Window
	Networks []netip.Prefix
}

// Window is a weekly time window in a time zone. When To is not after From
// the window spans midnight and belongs to the day it starts on.
type Window struct {
	Days     [7]bool       // indexed by time.Weekday
	From, To time.Duration // offsets from local midnight
	Location *time.Location
}

// Env is what is known about the circumstances of an action.
type Env struct {
	Now    time.Time
	Source netip.Addr // the client's address; invalid if unknown
}

// Contains reports whether t falls in the window.
func (w Window) Contains(t time.Time) bool {
	loc := w.Location
	if loc == nil {
		loc = time.UTC
	}
	t = t.In(loc)
	// Wall-clock time of day, not time elapsed since midnight: the two
	// differ by an hour on days when daylight saving time starts or ends.
	h, m, s := t.Clock()
	since := time.Duration(h)*time.Hour + time.Duration(m)*time.Minute +
		time.Duration(s)*time.Second + time.Duration(t.Nanosecond())
	if w.From < w.To {
		return w.Days[t.Weekday()] && since >= w.From && since < w.To
	}
	// Spans midnight: the evening part today, or the morning part of a
	// window that started yesterday.
	yesterday := (t.Weekday() + 6) % 7
	return (w.Days[t.Weekday()] && since >= w.From) || (w.Days[yesterday] && since < w.To)
}

// Check returns nil if the conditions hold in env, or a refusal naming the
// one that does not.
func (c Conditions) Check(env Env) error {
	if len(c.Windows) > 0 && !slices.ContainsFunc(c.Windows, func(w Window) bool { return w.Contains(env.Now) }) {
		return refusef("outside the allowed time window")
	}
	if len(c.Networks) > 0 {
		src := env.Source.Unmap()
		if !src.IsValid() || !slices.ContainsFunc(c.Networks, func(p netip.Prefix) bool { return p.Contains(src) }) {
			return refusef("source address %s is not in an allowed network", printable(env.Source))
		}
	}
	return nil
}

func printable(a netip.Addr) string {
	if !a.IsValid() {
		return "(unknown)"
	}
	return a.Unmap().String()
}

// Refusal is a "no" from the policy. Reason is safe to show to the user.
type Refusal struct{ Reason string }

func (r *Refusal) Error() string { return r.Reason }

func refusef(format string, args ...any) error {
	return &Refusal{Reason: fmt.Sprintf(format, args...)}
}

// InvalidError is a request the policy cannot evaluate because the input is
// wrong (an unknown target, a missing reason). Reason is safe to show.
type InvalidError struct{ Reason string }

func (e *InvalidError) Error() string { return e.Reason }

func invalidf(format string, args ...any) error {
	return &InvalidError{Reason: fmt.Sprintf(format, args...)}
}

// Has reports whether user has permission perm through any of their roles.
func (p *Policy) Has(user string, perm Permission) bool {
	return slices.ContainsFunc(p.roles(user), func(r *Role) bool { return slices.Contains(r.Permissions, perm) })
}

// HasRole reports whether user holds one of roles.
func (p *Policy) HasRole(user string, roles []string) bool {
	u := p.Users[user]
	return u != nil && slices.ContainsFunc(u.Roles, func(r string) bool { return slices.Contains(roles, r) })
}

func (p *Policy) roles(user string) []*Role {
	u := p.Users[user]
	if u == nil {
		return nil
	}
	out := make([]*Role, 0, len(u.Roles))
	for _, name := range u.Roles {
		if r := p.Roles[name]; r != nil {
			out = append(out, r)
		}
	}
	return out
}

// RequestInput is what a user asks for.
type RequestInput struct {
	User     string
	Targets  []string
	Logins   []string // may be empty: defaulted when the rule allows exactly one
	Duration time.Duration
	Reason   string
}

// RequestPlan is the policy's answer to an acceptable request.
type RequestPlan struct {
	Role         string
	Logins       []string // the logins to grant (after defaulting)
	Approvers    []string
	Approvals    int
	AutoApproved bool
	PendingTTL   time.Duration
}

// PlanRequest decides whether user may request in, and how it is approved.
// It returns an *InvalidError for bad input and a *Refusal when the policy
// says no.
func (p *Policy) PlanRequest(in RequestInput, env Env) (*RequestPlan, error) {
	if len(in.Targets) == 0 {
		return nil, invalidf("name at least one target")
	}
	if in.Duration <= 0 {
		return nil, invalidf("the duration must be positive")
	}
	targets := make([]*Target, 0, len(in.Targets))
	ssh := false
	for _, name := range in.Targets {
		t := p.Targets[name]
		if t == nil {
			return nil, invalidf("unknown target %q", name)
		}
		targets = append(targets, t)
		ssh = ssh || t.Kind == KindSSH
	}
	if !ssh && len(in.Logins) > 0 {
		return nil, invalidf("--login applies to SSH targets only")
	}

	// The first rule that covers every target (and login) decides. Remember
	// why the others did not, to tell the user the most useful reason.
	var last error = refusef("your roles do not allow requesting %s", strings.Join(in.Targets, ", "))
	for _, role := range p.roles(in.User) {
		for i := range role.Requestable {
			rule := &role.Requestable[i]
			if !slices.ContainsFunc(targets, func(t *Target) bool { return !rule.Targets.Matches(t) }) {
				plan, err := p.planWithRule(role, rule, in, ssh, env)
				if err == nil {
					return plan, nil
				}
				if _, bad := err.(*InvalidError); bad {
					return nil, err
				}
				last = err
			}
		}
	}
	return nil, last
}

func (p *Policy) planWithRule(role *Role, rule *RequestRule, in RequestInput, ssh bool, env Env) (*RequestPlan, error) {
	logins := in.Logins
	if ssh {
		if len(logins) == 0 {
			if len(rule.Logins) != 1 {
				return nil, invalidf("name a login with --login (allowed: %s)", strings.Join(rule.Logins, ", "))
			}
			logins = rule.Logins
		}
		for _, l := range logins {
			if !slices.Contains(rule.Logins, l) {
				return nil, refusef("login %q is not requestable by role %s (allowed: %s)", l, role.Name, strings.Join(rule.Logins, ", "))
			}
		}
	}
	if rule.RequireReason && strings.TrimSpace(in.Reason) == "" {
		return nil, invalidf("a reason is required: add --reason \"…\"")
	}
	if rule.MaxDuration > 0 && in.Duration > rule.MaxDuration {
		return nil, refusef("requested duration %s exceeds the maximum %s for role %s", in.Duration, rule.MaxDuration, role.Name)
	}
	if err := rule.Conditions.Check(env); err != nil {
		return nil, err
	}
	approvals := max(rule.Approvals, 1)
	ttl := p.PendingTTL
	if ttl <= 0 {
		ttl = DefaultPendingTTL
	}
	return &RequestPlan{
		Role:         role.Name,
		Logins:       slices.Clone(logins),
		Approvers:    slices.Clone(rule.Approvers),
		Approvals:    approvals,
		AutoApproved: rule.AutoApprove != nil && rule.AutoApprove.Check(env) == nil,
		PendingTTL:   ttl,
	}, nil
}

// CheckApprove decides whether approver may approve (or deny) a request made
// by requester whose rule names approverRoles. Nobody approves their own.
func (p *Policy) CheckApprove(approver, requester string, approverRoles []string) error {
	if approver == requester {
		return refusef("you cannot approve or deny your own request")
	}
	if !p.HasRole(approver, approverRoles) {
		return refusef("approving this request needs one of the roles: %s", strings.Join(approverRoles, ", "))
	}
	return nil
}

// CheckGrantUse decides whether a grant made under role may be used now:
// the role must still allow requesting the same targets and logins, and the
// rule's conditions must hold in env (conditions are checked at request and
// at use).
func (p *Policy) CheckGrantUse(user, role string, targets, logins []string, env Env) error {
	u := p.Users[user]
	r := p.Roles[role]
	if u == nil || r == nil || !slices.Contains(u.Roles, role) {
		return refusef("role %s no longer applies to %s", role, user)
	}
	var last error = refusef("role %s no longer allows %s", role, strings.Join(targets, ", "))
	for i := range r.Requestable {
		rule := &r.Requestable[i]
		if !rule.covers(p, targets, logins) {
			continue
		}
		if err := rule.Conditions.Check(env); err != nil {
			last = err
			continue
		}
		return nil
	}
	return last
}

func (a *Access) covers(p *Policy, targets, logins []string) bool {
	for _, name := range targets {
		t := p.Targets[name]
		if t == nil || !a.Targets.Matches(t) {
			return false
		}
		if t.Kind == KindSSH && !slices.ContainsFunc(logins, func(l string) bool { return slices.Contains(a.Logins, l) }) {
			return false
		}
	}
	for _, l := range logins {
		if !slices.Contains(a.Logins, l) {
			return false
		}
	}
	return true
}

// CheckStanding decides whether user has standing access to target as login
// in env (login is empty for database targets).
func (p *Policy) CheckStanding(user, target, login string, env Env) error {
	t := p.Targets[target]
	if t == nil {
		return refusef("unknown target %q", target)
	}
	var logins []string
	if login != "" {
		logins = []string{login}
	}
	var last error = refusef("no standing access to %s", target)
	for _, role := range p.roles(user) {
		for i := range role.Standing {
			a := &role.Standing[i]
			if !a.covers(p, []string{target}, logins) {
				continue
			}
			if err := a.Conditions.Check(env); err != nil {
				last = err
				continue
			}
			return nil
		}
	}
	return last
}

// TargetAccess is what a user can do with one target.
type TargetAccess struct {
	Target           *Target
	Standing         bool     // usable now without a request
	StandingLogins   []string // for SSH targets
	Requestable      bool
	RequestLogins    []string
	RequestApprovers []string
	MaxDuration      time.Duration
}

// Access lists the targets user can use now or could request, by name.
// Standing access whose conditions do not hold in env is left out.
func (p *Policy) Access(user string, env Env) []TargetAccess {
	byName := map[string]*TargetAccess{}
	get := func(t *Target) *TargetAccess {
		ta := byName[t.Name]
		if ta == nil {
			ta = &TargetAccess{Target: t}
			byName[t.Name] = ta
		}
		return ta
	}
	for _, role := range p.roles(user) {
		for _, t := range p.Targets {
			for i := range role.Standing {
				a := &role.Standing[i]
				if a.Targets.Matches(t) && a.Conditions.Check(env) == nil {
					ta := get(t)
					ta.Standing = true
					ta.StandingLogins = union(ta.StandingLogins, a.Logins, t.Kind)
				}
			}
			for i := range role.Requestable {
				r := &role.Requestable[i]
				if r.Targets.Matches(t) {
					ta := get(t)
					ta.Requestable = true
					ta.RequestLogins = union(ta.RequestLogins, r.Logins, t.Kind)
					ta.RequestApprovers = union(ta.RequestApprovers, r.Approvers, "")
					ta.MaxDuration = max(ta.MaxDuration, r.MaxDuration)
				}
			}
		}
	}
	out := make([]TargetAccess, 0, len(byName))
	for _, ta := range byName {
		out = append(out, *ta)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Target.Name < out[j].Target.Name })
	return out
}

// union adds the elements of b missing from a, keeping the result sorted.
// Logins are meaningless for database targets, so they are dropped there.
func union(a, b []string, kind Kind) []string {
	if kind != "" && kind != KindSSH {
		return a
	}
	for _, s := range b {
		if !slices.Contains(a, s) {
			a = append(a, s)
		}
	}
	slices.Sort(a)
	return a
}
