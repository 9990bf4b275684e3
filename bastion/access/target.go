package access

import (
	"context"
	"errors"
	"fmt"

	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/bastion/audit"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/bastion/store"
	"github.com/bastionhq/bastion/ca"
)

// TargetLogin is an attempt to open a session on a target.
type TargetLogin struct {
	Key      ssh.PublicKey // a certificate from the user CA, or a registered key
	KeyOwner string        // the user who registered Key (or the key a certificate certifies); "" if nobody
	Login    string
	Target   string
	Source   netip.Addr
}

// Grant is the authority under which a target session runs.
type Grant struct {
	User      string
	Target    string
	Login     string
	Role      string    // the role of the request that granted access; "" for standing access
	RequestID int64     // 0 for standing access
	Serial    uint64    // the certificate's serial; 0 for standing access
	Ends      time.Time // the grant's end; zero for standing access
	Source    netip.Addr
}

// Standing reports whether the grant is standing access (no request).
func (g *Grant) Standing() bool { return g.RequestID == 0 }

// AuthorizeTarget decides whether in may open a session. With a
// certificate, every one of these must hold: signed by Bastion's user CA, a
// user certificate inside its validity window, a non-empty principal list
// naming the login, no critical option Bastion does not know, the target in
// its targets extension, issued by Bastion for a request of the same user
// (serial on record for that request and key), the request approved and
// live, and the role's conditions holding now. With a plain key, the key's
// owner must have standing access. A refusal is audited; success is not:
// callers audit the login once the client has proved it holds the key.
func (s *Service) AuthorizeTarget(ctx context.Context, in TargetLogin) (*Grant, error) {
	g, err := s.authorizeTarget(ctx, in)
	if err != nil {
		// Attribute the refusal only to who registered the key: a refused
		// certificate's key ID is a claim, not an identity (anyone can make
		// a certificate naming carol), so it is kept as a detail.
		e := audit.Event{Type: audit.Login, Target: in.Target, Outcome: audit.OutcomeRefused, Reason: err.Error(),
			Details: map[string]string{"login": in.Login, "key": ssh.FingerprintSHA256(in.Key)}}
		if c, ok := in.Key.(*ssh.Certificate); ok {
			e.Details["key_id"] = c.KeyId
		}
		s.emit(ctx, Actor{User: in.KeyOwner, Source: in.Source}, e)
		return nil, err
	}
	return g, nil
}

func (s *Service) authorizeTarget(ctx context.Context, in TargetLogin) (*Grant, error) {
	now := s.now()
	env := policy.Env{Now: now, Source: in.Source}
	if t := s.policy().Targets[in.Target]; t == nil || t.Kind != policy.KindSSH {
		return nil, refusef("no SSH target %q", in.Target)
	}
	cert, isCert := in.Key.(*ssh.Certificate)
	if !isCert {
		if in.KeyOwner == "" {
			return nil, refusef("key %s is not registered to any user", ssh.FingerprintSHA256(in.Key))
		}
		if err := s.policy().CheckStanding(in.KeyOwner, in.Target, in.Login, env); err != nil {
			return nil, err
		}
		return &Grant{User: in.KeyOwner, Target: in.Target, Login: in.Login, Source: in.Source}, nil
	}

	if cert.CertType != ssh.UserCert {
		return nil, refusef("certificate is not a user certificate")
	}
	if !s.userCA.IsAuthority(cert.SignatureKey) {
		return nil, refusef("certificate is not signed by Bastion's user CA")
	}
	// ssh.CertChecker would accept an empty principal list for every login.
	if len(cert.ValidPrincipals) == 0 {
		return nil, refusef("certificate has no principals")
	}
	checker := ssh.CertChecker{Clock: s.now, SupportedCriticalOptions: []string{"source-address"}}
	if err := checker.CheckCert(in.Login, cert); err != nil {
		return nil, refusef("certificate refused: %v", err)
	}
	if err := checkSourceAddress(cert, in.Source); err != nil {
		return nil, err
	}
	if !slices.Contains(ca.CertTargets(cert), in.Target) {
		return nil, refusef("certificate does not name target %s", in.Target)
	}
	user, id, ok := parseKeyID(cert.KeyId)
	if !ok {
		return nil, refusef("certificate key ID %q names no request", cert.KeyId)
	}
	if in.KeyOwner != "" && in.KeyOwner != user {
		return nil, refusef("certificate for %s presented with %s's key", user, in.KeyOwner)
	}
	r, err := s.store.Request(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, refusef("certificate names request %d, which does not exist", id)
	}
	if err != nil {
		return nil, fmt.Errorf("access: authorize target: %w", err)
	}
	if r.Requester != user {
		return nil, refusef("certificate names request %d, which is not %s's", id, user)
	}
	if r.Command != "" {
		return nil, refusef("request %d allows one command, not access", id)
	}
	if err := s.issuedFor(ctx, r, cert); err != nil {
		return nil, err
	}
	if st := r.StateAt(now); st != store.Approved {
		return nil, refusef("request %d is %s%s", id, st, closedBy(r))
	}
	if !slices.Contains(r.Targets, in.Target) || !slices.Contains(r.Logins, in.Login) {
		return nil, refusef("request %d does not grant %s@%s", id, in.Login, in.Target)
	}
	if err := s.policy().CheckGrantUse(user, r.Role, []string{in.Target}, []string{in.Login}, env); err != nil {
		return nil, err
	}
	ends := r.GrantEnd
	if vb := time.Unix(int64(cert.ValidBefore), 0); cert.ValidBefore != ssh.CertTimeInfinity && vb.Before(ends) {
		ends = vb
	}
	return &Grant{User: user, Target: in.Target, Login: in.Login, Role: r.Role, RequestID: id, Serial: cert.Serial, Ends: ends, Source: in.Source}, nil
}

// issuedFor checks that Bastion issued cert for r: its serial is on record
// for the request, for the same key. A certificate signed by the user CA but
// not on record (a leaked CA key, a restored backup) is refused.
func (s *Service) issuedFor(ctx context.Context, r *store.Request, cert *ssh.Certificate) error {
	issued, err := s.store.Certificates(ctx, r.ID)
	if err != nil {
		return fmt.Errorf("access: certificates of request %d: %w", r.ID, err)
	}
	fp := ssh.FingerprintSHA256(cert.Key)
	for _, c := range issued {
		if c.Serial == cert.Serial && c.KeyFingerprint == fp && c.User == r.Requester {
			return nil
		}
	}
	return refusef("certificate serial %d is not on record for request %d", cert.Serial, r.ID)
}

func checkSourceAddress(cert *ssh.Certificate, src netip.Addr) error {
	opt, ok := cert.CriticalOptions["source-address"]
	if !ok {
		return nil
	}
	for _, s := range strings.Split(opt, ",") {
		if p, err := netip.ParsePrefix(strings.TrimSpace(s)); err == nil && p.Contains(src.Unmap()) {
			return nil
		}
		if a, err := netip.ParseAddr(strings.TrimSpace(s)); err == nil && a == src.Unmap() {
			return nil
		}
	}
	return refusef("certificate is not valid from %s", src)
}

// parseKeyID reads "alice/req-42".
func parseKeyID(id string) (string, int64, bool) {
	user, rest, ok := strings.Cut(id, "/req-")
	if !ok || user == "" {
		return "", 0, false
	}
	n, err := strconv.ParseInt(rest, 10, 64)
	return user, n, err == nil && n > 0
}

func closedBy(r *store.Request) string {
	switch {
	case r.ClosedBy != "" && r.CloseReason != "":
		return fmt.Sprintf(" by %s: %s", r.ClosedBy, r.CloseReason)
	case r.ClosedBy != "":
		return " by " + r.ClosedBy
	}
	return ""
}

// CheckGrant reports whether a live session's grant still holds: the
// request is approved and not past its end, or standing access still
// applies (conditions included). The error says why it no longer does.
func (s *Service) CheckGrant(ctx context.Context, g *Grant) error {
	now := s.now()
	if g.Standing() {
		return s.policy().CheckStanding(g.User, g.Target, g.Login, policy.Env{Now: now, Source: g.Source})
	}
	if !g.Ends.IsZero() && !now.Before(g.Ends) {
		return refusef("access to %s ended at %s", g.Target, g.Ends.UTC().Format(time.RFC3339))
	}
	r, err := s.store.Request(ctx, g.RequestID)
	if err != nil {
		return fmt.Errorf("access: check grant %d: %w", g.RequestID, err)
	}
	if st := r.StateAt(now); st != store.Approved {
		return refusef("request %d was %s%s", g.RequestID, st, closedBy(r))
	}
	// Conditions hold at use, for the whole session: a time window that
	// closes ends it, as it does for standing access.
	var logins []string // a database grant has none
	if g.Login != "" {
		logins = []string{g.Login}
	}
	return s.policy().CheckGrantUse(g.User, g.Role, []string{g.Target}, logins, policy.Env{Now: now, Source: g.Source})
}
