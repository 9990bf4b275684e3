package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/bastion/store"
)

// maxReason bounds reasons and comments.
const maxReason = 1024

func (r *run) id() (int64, error) {
	if err := r.positional(1, 1); err != nil {
		return 0, err
	}
	id, err := strconv.ParseInt(strings.TrimPrefix(r.args.pos[0], "#"), 10, 64)
	if err != nil || id <= 0 {
		return 0, usagef("%q is not a request id (a positive number)", truncate(r.args.pos[0], 40))
	}
	return id, nil
}

func (r *run) text(flag string) (string, error) {
	s := r.args.str(flag)
	if len(s) > maxReason {
		return "", usagef("--%s is too long (%d bytes, at most %d)", flag, len(s), maxReason)
	}
	return s, nil
}

func (r *run) whoami() error {
	if err := r.positional(0, 0); err != nil {
		return err
	}
	p := r.policy()
	var roles []string
	if u := p.Users[r.actor.User]; u != nil {
		roles = u.Roles
	}
	grants, err := r.access.List(r.ctx, r.actor, store.RequestFilter{Requester: r.actor.User, States: []store.State{store.Approved}})
	if err != nil {
		return err
	}
	key := ""
	if r.actor.Key != nil {
		key = ssh.FingerprintSHA256(r.actor.Key)
	}
	if r.json {
		views := make([]requestView, 0, len(grants))
		for _, g := range grants {
			views = append(views, viewOf(g))
		}
		r.printJSON(map[string]any{"user": r.actor.User, "roles": roles, "key": key, "source": sourceOf(r.actor), "grants": views})
		return nil
	}
	r.printf("user:   %s\nroles:  %s\nkey:    %s\nsource: %s\n", r.actor.User, strings.Join(roles, ", "), key, sourceOf(r.actor))
	if len(grants) == 0 {
		r.printf("grants: none\n")
	}
	for _, g := range grants {
		r.printf("grant:  #%d %s%s until %s\n", g.ID, strings.Join(g.Targets, ","), asLogins(g.Logins), g.GrantEnd.UTC().Format(time.RFC3339))
	}
	return nil
}

func asLogins(logins []string) string {
	if len(logins) == 0 {
		return ""
	}
	return " as " + strings.Join(logins, ",")
}

func (r *run) targets() error {
	if err := r.positional(0, 0); err != nil {
		return err
	}
	now := time.Now()
	acc := r.policy().Access(r.actor.User, policy.Env{Now: now, Source: r.actor.Source})
	grants, err := r.access.List(r.ctx, r.actor, store.RequestFilter{Requester: r.actor.User, States: []store.State{store.Approved}})
	if err != nil {
		return err
	}
	type targetView struct {
		Name          string            `json:"name"`
		Kind          string            `json:"kind"`
		Labels        map[string]string `json:"labels,omitempty"`
		Now           bool              `json:"now"` // usable now: standing access or a live grant
		NowLogins     []string          `json:"now_logins,omitempty"`
		GrantIDs      []int64           `json:"grants,omitempty"`
		Requestable   bool              `json:"requestable"`
		RequestLogins []string          `json:"request_logins,omitempty"`
		Approvers     []string          `json:"approvers,omitempty"`
		MaxDuration   string            `json:"max_duration,omitempty"`
	}
	var views []targetView
	for _, ta := range acc {
		v := targetView{Name: ta.Target.Name, Kind: string(ta.Target.Kind), Labels: ta.Target.Labels,
			Now: ta.Standing, NowLogins: ta.StandingLogins, Requestable: ta.Requestable,
			RequestLogins: ta.RequestLogins, Approvers: ta.RequestApprovers}
		if ta.MaxDuration > 0 {
			v.MaxDuration = ta.MaxDuration.String()
		}
		for _, g := range grants {
			for _, t := range g.Targets {
				if t == v.Name {
					v.Now = true
					v.GrantIDs = append(v.GrantIDs, g.ID)
					v.NowLogins = union(v.NowLogins, g.Logins)
				}
			}
		}
		views = append(views, v)
	}
	if r.json {
		if views == nil {
			views = []targetView{}
		}
		r.printJSON(views)
		return nil
	}
	if len(views) == 0 {
		r.printf("No targets: your roles give you no access and none to request.\n")
		return nil
	}
	r.printf("%-16s %-9s %-28s %s\n", "TARGET", "KIND", "NOW", "REQUESTABLE")
	for _, v := range views {
		now := "-"
		if v.Now {
			now = "yes" + asLogins(v.NowLogins)
			for _, id := range v.GrantIDs {
				now += fmt.Sprintf(" #%d", id)
			}
		}
		req := "-"
		if v.Requestable {
			req = "yes" + asLogins(v.RequestLogins) + " (approvers: " + strings.Join(v.Approvers, ",") + ", max " + v.MaxDuration + ")"
		}
		r.printf("%-16s %-9s %-28s %s\n", v.Name, v.Kind, now, req)
	}
	return nil
}

func union(a, b []string) []string {
	for _, s := range b {
		found := false
		for _, x := range a {
			found = found || x == s
		}
		if !found {
			a = append(a, s)
		}
	}
	return a
}

func (r *run) request() error {
	if len(r.args.pos) == 0 {
		return usagef("request: name a target (usage: request %s)", r.command("request").usage)
	}
	forFlag := r.args.str("for")
	if forFlag == "" {
		return usagef("request: --for DURATION is required (e.g. --for 30m)")
	}
	d, err := time.ParseDuration(forFlag)
	if err != nil || d <= 0 {
		return usagef("request: bad duration %q for --for (use e.g. 30m, 2h)", truncate(forFlag, 40))
	}
	reason, err := r.text("reason")
	if err != nil {
		return err
	}
	req, err := r.access.Request(r.ctx, r.actor, access.RequestInput{
		Targets: r.args.pos, Logins: r.args.list("login"), Duration: d, Reason: reason,
	})
	if err != nil {
		return err
	}
	r.showRequest(req)
	return nil
}

func (r *run) requests() error {
	if err := r.positional(0, 0); err != nil {
		return err
	}
	f := store.RequestFilter{Requester: r.args.str("user"), Limit: 100}
	for _, s := range r.args.list("state") {
		st := store.State(s)
		if !st.Valid() {
			return usagef("requests: unknown state %q (pending, approved, denied, expired, revoked, cancelled)", truncate(s, 40))
		}
		f.States = append(f.States, st)
	}
	if l := r.args.str("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n <= 0 {
			return usagef("requests: bad --limit %q", truncate(l, 40))
		}
		f.Limit = n
	}
	list, err := r.access.List(r.ctx, r.actor, f)
	if err != nil {
		return err
	}
	if r.json {
		views := make([]requestView, 0, len(list))
		for _, q := range list {
			views = append(views, viewOf(q))
		}
		r.printJSON(views)
		return nil
	}
	if len(list) == 0 {
		r.printf("No requests.\n")
		return nil
	}
	r.printf("%-5s %-9s %-10s %-20s %-8s %s\n", "ID", "STATE", "USER", "TARGETS", "FOR", "REASON")
	for _, q := range list {
		reason := q.Reason
		if q.Command != "" {
			reason = "run: " + q.Command
		}
		r.printf("%-5d %-9s %-10s %-20s %-8s %s\n", q.ID, q.State, q.Requester,
			truncate(strings.Join(q.Targets, ",")+asLogins(q.Logins), 20), shortDuration(q.Duration), truncate(reason, 50))
	}
	return nil
}

func (r *run) show() error {
	id, err := r.id()
	if err != nil {
		return err
	}
	req, err := r.access.Get(r.ctx, r.actor, id)
	if err != nil {
		return err
	}
	r.showRequest(req)
	return nil
}

// decision is the shape of approve, deny and revoke: a request id, a text
// flag, one call to the access service, and the request as it now is.
type decision func(ctx context.Context, a access.Actor, id int64, text string) (*store.Request, error)

func (r *run) decideRequest(flag string, required bool, act decision) error {
	id, err := r.id()
	if err != nil {
		return err
	}
	text, err := r.text(flag)
	if err != nil {
		return err
	}
	if required && strings.TrimSpace(text) == "" {
		return usagef("--%s TEXT is required", flag)
	}
	req, err := act(r.ctx, r.actor, id, text)
	if err != nil {
		return err
	}
	r.showRequest(req)
	return nil
}

func (r *run) approve() error { return r.decideRequest("comment", false, r.access.Approve) }
func (r *run) deny() error    { return r.decideRequest("reason", true, r.access.Deny) }
func (r *run) revoke() error  { return r.decideRequest("reason", false, r.access.Revoke) }

// wait blocks until the request is decided. For the requester's own approved
// SSH request it prints the certificate (so `wait 42 > id-cert.pub` works);
// otherwise it prints the request. A request that ends up not approved is a
// refusal (exit 1).
func (r *run) wait() error {
	id, err := r.id()
	if err != nil {
		return err
	}
	req, err := r.access.Wait(r.ctx, r.actor, id)
	if err != nil {
		return err
	}
	if req.State != store.Approved {
		if r.json {
			r.printJSON(viewOf(req))
		}
		return &policy.Refusal{Reason: fmt.Sprintf("request %d is %s%s", id, req.State, because(req))}
	}
	if req.Requester == r.actor.User && r.actor.Key != nil && len(req.Logins) > 0 && req.Command == "" {
		return r.printCert(id)
	}
	r.showRequest(req)
	return nil
}

func because(q *store.Request) string {
	if s := firstNonEmpty(q.DecisionReason, q.CloseReason); s != "" {
		return ": " + s
	}
	return ""
}

func (r *run) cert() error {
	id, err := r.id()
	if err != nil {
		return err
	}
	err = r.printCert(id)
	var ref *policy.Refusal
	if errors.As(err, &ref) {
		// An empty certificate file (`cert N > file` too early) is ignored
		// by ssh without a word: say what to do instead.
		if q, gerr := r.access.Get(r.ctx, r.actor, id); gerr == nil && q.State == store.Pending && q.Requester == r.actor.User {
			return &policy.Refusal{Reason: fmt.Sprintf("request %d is pending; use `wait %d`, which prints the certificate once it is approved", id, id)}
		}
	}
	return err
}

func (r *run) printCert(id int64) error {
	c, err := r.access.Cert(r.ctx, r.actor, id)
	if err != nil {
		return err
	}
	line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(c.Cert)))
	if r.json {
		r.printJSON(map[string]any{
			"request": id, "serial": c.Serial, "key_id": c.Cert.KeyId, "principals": c.Cert.ValidPrincipals,
			"valid_after":  time.Unix(int64(c.Cert.ValidAfter), 0).UTC(),
			"valid_before": time.Unix(int64(c.Cert.ValidBefore), 0).UTC(),
			"certificate":  line,
		})
		return nil
	}
	r.printf("%s %s\n", line, c.Cert.KeyId)
	return nil
}

func (r *run) caCmd() error {
	if err := r.positional(0, 0); err != nil {
		return err
	}
	info := r.ca()
	switch {
	case r.args.bools["tls"] && r.json:
		r.printJSON(map[string]string{"tls_ca_pem": info.TLSCA})
	case r.args.bools["tls"]:
		r.printf("%s", lines(info.TLSCA))
	case r.json:
		r.printJSON(info)
	default:
		r.printf(`# User CA: signs users' certificates for logging in to Bastion.
%s
# Upstream CA: signs Bastion's per-session certificates to targets. On each
# SSH target, put this key in a file and name it in sshd_config:
#   echo '%s' > /etc/ssh/bastion_upstream_ca.pub
#   TrustedUserCAKeys /etc/ssh/bastion_upstream_ca.pub
%s
# Host CA: certifies Bastion's host key. Add this line to ~/.ssh/known_hosts
# to trust Bastion without trust-on-first-use:
%s
# TLS CA (for PostgreSQL and MySQL clients): ca --tls
`, info.UserCA, info.UpstreamCA, info.UpstreamCA, info.KnownHosts)
	}
	return nil
}

func (r *run) auditCmd() error {
	if err := r.positional(0, 1); err != nil {
		return err
	}
	verify := len(r.args.pos) == 1
	if verify && r.args.pos[0] != "verify" {
		return usagef("audit: unknown subcommand %q (did you mean `audit verify`?)", truncate(r.args.pos[0], 40))
	}
	auditor := r.operator || r.policy().Has(r.actor.User, policy.PermAudit)
	f := store.AuditFilter{User: r.args.str("user"), Type: r.args.str("type")}
	if !auditor {
		if verify || (f.User != "" && f.User != r.actor.User) {
			return &policy.Refusal{Reason: "reading other users' audit events needs the audit permission"}
		}
		f.User = r.actor.User
	}
	if s := r.args.str("since"); s != "" {
		t, err := parseSince(s, time.Now())
		if err != nil {
			return usagef("audit: %v", err)
		}
		f.Since = t
	}
	if s := r.args.str("request"); s != "" {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			return usagef("audit: bad --request %q", truncate(s, 40))
		}
		f.RequestID = id
	}
	if s := r.args.str("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return usagef("audit: bad --limit %q", truncate(s, 40))
		}
		f.Limit = n
	}
	if verify {
		n, head, err := VerifyAudit(r.ctx, r.audit)
		var broken *audit.BrokenLinkError
		if errors.As(err, &broken) {
			return &policy.Refusal{Reason: err.Error()}
		}
		if err != nil { // the store failed: logged, not shown
			return err
		}
		if r.json {
			r.printJSON(map[string]any{"ok": true, "events": n, "head": head})
		} else {
			r.printf("ok: %d events, chain head %s\n", n, head)
		}
		return nil
	}
	events, err := newestAudit(r.ctx, r.audit, f)
	if err != nil {
		return err
	}
	for _, e := range events {
		if r.json {
			r.printJSON(e) // one JSON object per line: JSON Lines
			continue
		}
		line := fmt.Sprintf("%6d %s %-16s %-8s %-8s", e.Seq, e.Time.UTC().Format(time.RFC3339), e.Type, e.Outcome, e.Actor)
		if e.RequestID != 0 {
			line += fmt.Sprintf(" #%d", e.RequestID)
		}
		if e.Target != "" {
			line += " " + e.Target
		}
		if e.Reason != "" {
			line += fmt.Sprintf(" %q", truncate(e.Reason, 80))
		}
		r.printf("%s\n", line)
	}
	return nil
}

// newestAudit returns the newest f.Limit events matching f (all of them if
// f.Limit is 0), oldest first, as `requests --limit` shows the newest. The
// store reads events in ascending order only, so with a limit the matching
// events are read page by page and only the last f.Limit kept.
func newestAudit(ctx context.Context, log AuditLog, f store.AuditFilter) ([]audit.Event, error) {
	limit := f.Limit
	if limit == 0 {
		return log.Audit(ctx, f)
	}
	f.Limit = max(limit, auditPage)
	var out []audit.Event
	for {
		page, err := log.Audit(ctx, f)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if len(out) > limit {
			out = append(out[:0:0], out[len(out)-limit:]...)
		}
		if len(page) < f.Limit {
			return out, nil
		}
		f.AfterSeq = page[len(page)-1].Seq
	}
}

// parseSince accepts a duration back from now ("24h") or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("bad --since %q (a duration such as 24h, or a time such as 2026-11-28T09:00:00Z)", truncate(s, 40))
}

// auditPage is how many events VerifyAudit reads at a time.
const auditPage = 1000

// VerifyAudit checks the whole audit chain, page by page, and returns the
// number of events and the chain's head hash. A chain that does not verify
// is an *audit.BrokenLinkError; any other error is the log's.
func VerifyAudit(ctx context.Context, log AuditLog) (int64, string, error) {
	var v audit.Verifier
	var after int64
	for {
		events, err := log.Audit(ctx, store.AuditFilter{AfterSeq: after, Limit: auditPage})
		if err != nil {
			return 0, "", fmt.Errorf("cli: read the audit log after event %d: %w", after, err)
		}
		for _, e := range events {
			if err := v.Next(e); err != nil {
				return v.Count(), v.Head(), err
			}
			after = e.Seq
		}
		if len(events) < auditPage {
			return v.Count(), v.Head(), nil
		}
	}
}

// sourceOf is where the actor's command came from: its address, or "local"
// for a command run on the server itself (bastion --config F COMMAND),
// which has none, so that no source-network condition holds for it.
func sourceOf(a access.Actor) string {
	if !a.Source.IsValid() {
		return "local"
	}
	return a.Source.String()
}
