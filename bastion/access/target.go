package access

import (
	"context"
	"errors"
	"fmt"
	"math"
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
	// Key is the SHA256 fingerprint of the user's key (the one a
	// certificate certifies): the grant holds only while that key is still
	// registered to User.
	Key string
}

// Standing reports whether the grant is standing access (no request).
func (g *Grant) Standing() bool { return g.RequestID == 0 }

// AuthorizeTarget decides whether in may open a session. With a
// certificate, every one of these must hold: signed by Bastion's user CA, a
// user certificate, its key ID naming a request of the user who registered
// the certified key (a certificate is valid only while its key still
// belongs to its user), issued by Bastion for that request and key (serial
// on record) with a validity window inside the one on record; then, told
// to the certificate's holder when they fail (see Told): inside its
// validity window now, a principal list naming the login, no critical
// option Bastion does not know, a well-formed source-address option naming
// the client, the target in its targets extension, the request approved
// and live, and the role's conditions holding now. With a plain key, the
// key's owner must have standing access. A refusal is audited; success is
// not: callers audit the login once the client has proved it holds the key.
func (s *Service) AuthorizeTarget(ctx context.Context, in TargetLogin) (*Grant, error) {
	g, err := s.CheckTarget(ctx, in)
	if err != nil {
		s.RefuseTarget(ctx, in, err)
		return nil, err
	}
	return g, nil
}

// CheckTarget is AuthorizeTarget without the audit event of a refusal, for
// a front end that decides itself whether to audit it (with RefuseTarget):
// OpenSSH offers a plain key before its certificate, and a plain key
// refused only because a certificate is expected is no event of its own.
func (s *Service) CheckTarget(ctx context.Context, in TargetLogin) (*Grant, error) {
	return s.authorizeTarget(ctx, in)
}

// RefuseTarget audits the refusal of in, with err as its reason.
func (s *Service) RefuseTarget(ctx context.Context, in TargetLogin, err error) {
	// Attribute the refusal only to who registered the key: a refused
	// certificate's key ID is a claim, not an identity (anyone can make
	// a certificate naming carol), so it is kept as a detail.
	e := audit.Event{Type: audit.Login, Target: in.Target, Outcome: audit.OutcomeRefused, Reason: err.Error(),
		Details: map[string]string{"login": in.Login, "key": ssh.FingerprintSHA256(in.Key)}}
	if c, ok := in.Key.(*ssh.Certificate); ok {
		e.Details["key_id"] = c.KeyId
	}
	s.emit(ctx, Actor{User: in.KeyOwner, Source: in.Source}, e)
}

// Told is a refusal of a target login that its client may be told: the
// certificate is Bastion's own, on record, and certifies a key of the user
// it was issued to, so whoever proved they hold that key is that user (an
// expired certificate, a revoked grant, a target the certificate does not
// name). Every other refusal is told to nobody: it would tell an attacker
// which users, keys or targets exist.
type Told struct{ Refusal *policy.Refusal }

func (t *Told) Error() string { return t.Refusal.Reason }
func (t *Told) Unwrap() error { return t.Refusal }

func (s *Service) authorizeTarget(ctx context.Context, in TargetLogin) (*Grant, error) {
	if t := s.policy().Targets[in.Target]; t == nil || t.Kind != policy.KindSSH {
		return nil, refusef("no SSH target %q", in.Target)
	}
	cert, isCert := in.Key.(*ssh.Certificate)
	if !isCert {
		if in.KeyOwner == "" {
			return nil, refusef("key %s is not registered to any user", ssh.FingerprintSHA256(in.Key))
		}
		if err := s.policy().CheckStanding(in.KeyOwner, in.Target, in.Login, policy.Env{Now: s.now(), Source: in.Source}); err != nil {
			return nil, s.pendingInstead(ctx, in, err)
		}
		return &Grant{User: in.KeyOwner, Target: in.Target, Login: in.Login, Source: in.Source, Key: ssh.FingerprintSHA256(in.Key)}, nil
	}
	r, err := s.certIssued(ctx, in, cert)
	if err != nil {
		return nil, err
	}
	g, err := s.certGrants(ctx, in, cert, r)
	var ref *policy.Refusal
	if errors.As(err, &ref) {
		return nil, &Told{Refusal: ref}
	}
	return g, err
}

// certIssued checks that cert is one Bastion issued, to the user who still
// holds its key, and returns the request it was issued for. Its refusals
// are told to nobody.
func (s *Service) certIssued(ctx context.Context, in TargetLogin, cert *ssh.Certificate) (*store.Request, error) {
	if cert.CertType != ssh.UserCert {
		return nil, refusef("certificate is not a user certificate")
	}
	if !s.userCA.IsAuthority(cert.SignatureKey) {
		return nil, refusef("certificate is not signed by Bastion's user CA")
	}
	if err := verifyCertSignature(cert); err != nil {
		return nil, refusef("certificate signature does not verify")
	}
	user, id, ok := parseKeyID(cert.KeyId)
	if !ok {
		return nil, refusef("certificate key ID %q names no request", cert.KeyId)
	}
	switch in.KeyOwner {
	case user:
	case "":
		return nil, refusef("certificate for %s certifies key %s, which is not registered to %s (any more)",
			user, ssh.FingerprintSHA256(cert.Key), user)
	default:
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
	return r, nil
}

// certGrants checks that Bastion's own certificate cert, issued for r,
// grants in now.
func (s *Service) certGrants(ctx context.Context, in TargetLogin, cert *ssh.Certificate, r *store.Request) (*Grant, error) {
	now := s.now()
	// ssh.CertChecker would accept an empty principal list for every login.
	if len(cert.ValidPrincipals) == 0 {
		return nil, refusef("certificate has no principals")
	}
	checker := ssh.CertChecker{Clock: s.now, SupportedCriticalOptions: []string{"source-address"}}
	if err := checker.CheckCert(in.Login, cert); err != nil {
		if now.Unix() >= int64(cert.ValidBefore) {
			return nil, refusef("certificate for request %d expired at %s (cert has expired)", r.ID, certTime(cert.ValidBefore))
		}
		return nil, refusef("certificate refused: %v", err)
	}
	if err := checkSourceAddress(cert, in.Source); err != nil {
		return nil, err
	}
	if !slices.Contains(ca.CertTargets(cert), in.Target) {
		return nil, refusef("certificate does not name target %s", in.Target)
	}
	if st := r.StateAt(now); st != store.Approved {
		return nil, refusef("request %d is %s%s", r.ID, st, closedBy(r))
	}
	if !slices.Contains(r.Targets, in.Target) || !slices.Contains(r.Logins, in.Login) {
		return nil, refusef("request %d does not grant %s@%s", r.ID, in.Login, in.Target)
	}
	if err := s.policy().CheckGrantUse(r.Requester, r.Role, []string{in.Target}, []string{in.Login}, policy.Env{Now: now, Source: in.Source}); err != nil {
		return nil, err
	}
	ends := r.GrantEnd
	if vb := time.Unix(int64(cert.ValidBefore), 0); vb.Before(ends) {
		ends = vb
	}
	return &Grant{User: r.Requester, Target: in.Target, Login: in.Login, Role: r.Role, RequestID: r.ID, Serial: cert.Serial,
		Ends: ends, Source: in.Source, Key: ssh.FingerprintSHA256(cert.Key)}, nil
}

// verifyCertSignature checks the CA's signature on cert, as
// ssh.CertChecker does: over the certificate's wire form without the
// signature, whose empty length field ends it.
func verifyCertSignature(cert *ssh.Certificate) error {
	c := *cert
	c.Signature = nil
	data := c.Marshal()
	return cert.SignatureKey.Verify(data[:len(data)-4], cert.Signature)
}

func certTime(t uint64) string { return time.Unix(int64(t), 0).UTC().Format(time.RFC3339) }

// issuedFor checks that Bastion issued cert for r: its serial is on record
// for the request, for the same key, and its validity window is inside the
// one on record. A certificate signed by the user CA but not on record (a
// leaked CA key, a restored backup), or one that claims a longer life than
// Bastion gave it, is refused.
func (s *Service) issuedFor(ctx context.Context, r *store.Request, cert *ssh.Certificate) error {
	issued, err := s.store.Certificates(ctx, r.ID)
	if err != nil {
		return fmt.Errorf("access: certificates of request %d: %w", r.ID, err)
	}
	fp := ssh.FingerprintSHA256(cert.Key)
	for _, c := range issued {
		if c.Serial != cert.Serial || c.KeyFingerprint != fp || c.User != r.Requester {
			continue
		}
		if !insideIssued(cert, c) {
			return refusef("certificate serial %d is valid %s to %s, outside what Bastion issued (%s to %s)",
				cert.Serial, certTime(cert.ValidAfter), certTime(cert.ValidBefore),
				c.ValidAfter.UTC().Format(time.RFC3339), c.ValidBefore.UTC().Format(time.RFC3339))
		}
		return nil
	}
	return refusef("certificate serial %d is not on record for request %d", cert.Serial, r.ID)
}

// insideIssued reports whether cert's validity window is inside the one on
// record, to the second (certificates count whole seconds, and Cert signs
// the record's times truncated to them). A certificate valid forever never
// is: Bastion issues none.
func insideIssued(cert *ssh.Certificate, rec *store.Certificate) bool {
	if cert.ValidBefore == ssh.CertTimeInfinity || cert.ValidBefore > uint64(math.MaxInt64) || cert.ValidAfter > uint64(math.MaxInt64) {
		return false
	}
	return int64(cert.ValidAfter) >= rec.ValidAfter.Unix() && int64(cert.ValidBefore) <= rec.ValidBefore.Unix()
}

// checkSourceAddress checks the source-address critical option as OpenSSH
// does: a comma-separated list of addresses and CIDR prefixes, refused
// whole if any entry is malformed (an empty entry, a space, a name), else
// valid only from an address the list names.
func checkSourceAddress(cert *ssh.Certificate, src netip.Addr) error {
	opt, ok := cert.CriticalOptions["source-address"]
	if !ok {
		return nil
	}
	prefixes, err := parseSourceAddress(opt)
	if err != nil {
		return refusef("certificate's source-address option is malformed: %v", err)
	}
	for _, p := range prefixes {
		if p.Contains(src.Unmap()) {
			return nil
		}
	}
	return refusef("certificate is not valid from %s", src)
}

// parseSourceAddress parses a source-address list; any malformed entry
// fails it.
func parseSourceAddress(opt string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range strings.Split(opt, ",") {
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil || p.Addr().Zone() != "" {
				return nil, fmt.Errorf("entry %q is not an address or CIDR prefix", s)
			}
			if p.Addr().Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			out = append(out, p)
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return nil, fmt.Errorf("entry %q is not an address or CIDR prefix", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
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
	if err := s.keyHeld(g); err != nil {
		return err
	}
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

// KeyOwners finds who registered a key now, by its SHA256 fingerprint:
// the users' keys as currently configured.
type KeyOwners interface {
	Owner(fingerprint string) (user string, ok bool)
}

// keyHeld checks that the key g was granted to is still registered to its
// user: removing or moving a key ends the sessions it opened.
func (s *Service) keyHeld(g *Grant) error {
	if g.Key == "" || s.keys == nil {
		return nil
	}
	if owner, ok := s.keys.Owner(g.Key); !ok || owner != g.User {
		return refusef("key %s is no longer registered to %s", g.Key, g.User)
	}
	return nil
}

// pendingInstead is the refusal of a plain key without standing access
// (err), told to its owner when the only request of theirs that would
// grant the login is still pending: "request 42 is pending approval"
// explains what a bare refusal does not. With an approved request the
// refusal stays untold (the client's certificate for it comes next), and
// so it does when the requests cannot be read.
func (s *Service) pendingInstead(ctx context.Context, in TargetLogin, err error) error {
	rs, lerr := s.store.Requests(ctx, store.RequestFilter{Requester: in.KeyOwner, States: []store.State{store.Pending, store.Approved}})
	if lerr != nil {
		return err
	}
	now, pending := s.now(), int64(0)
	for _, r := range rs {
		if r.Command != "" || !slices.Contains(r.Targets, in.Target) || !slices.Contains(r.Logins, in.Login) {
			continue
		}
		switch r.StateAt(now) {
		case store.Approved:
			return err
		case store.Pending:
			pending = r.ID
		}
	}
	if pending == 0 {
		return err
	}
	return &Told{Refusal: &policy.Refusal{Reason: fmt.Sprintf("%v; request %d for %s@%s is pending approval", err, pending, in.Login, in.Target)}}
}
