package ssh

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"

	"github.com/bastionhq/bastion/bastion/access"
	"github.com/bastionhq/bastion/bastion/policy"
	"github.com/bastionhq/bastion/internal/frontend"
)

// authAlgorithms are the signature algorithms a user may authenticate
// with: x/crypto's defaults less ssh-rsa, RSA with SHA-1 (OpenSSH since
// 8.8 signs with rsa-sha2-256 or -512 anyway). A certificate's algorithm
// is checked as the algorithm of the key it certifies.
var authAlgorithms = []string{
	ssh.KeyAlgoED25519, ssh.KeyAlgoSKED25519,
	ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521, ssh.KeyAlgoSKECDSA256,
	ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSASHA512,
}

// maxAuthTries is how many keys a client may try on one connection.
const maxAuthTries = 6

// authState is one connection's authentication, as its callbacks see it
// (x/crypto calls them one at a time, on the handshake's goroutine). A
// refused login on a target is audited once, when the connection ends
// without success, not once per key the client offered.
type authState struct {
	fc *frontend.Conn
	// deferred is the refusal of a registered plain key on a target: the
	// user's client offers it before the certificate, so it is refused
	// only because a certificate is expected, and is no event of its own
	// unless nothing else succeeds.
	deferred *targetRefusal
	// unproven is the first refusal of a key registered to nobody.
	unproven *targetRefusal
	// throttled is set once a failure on this connection was over the
	// throttle's budget: its refusals are audited by the burst's event.
	throttled bool
	// audited is set once a refusal was audited as it happened (a
	// certificate's): it speaks for the connection, deferred ones are
	// dropped.
	audited bool
}

type targetRefusal struct {
	in  access.TargetLogin
	err error
}

// serverConfig is the SSH server configuration of one connection: its
// callbacks keep what they refused in st.
func (s *Server) serverConfig(st *authState) *ssh.ServerConfig {
	sc := &ssh.ServerConfig{
		PublicKeyCallback: func(conn ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			return s.offered(st, conn, key)
		},
		VerifiedPublicKeyCallback: func(conn ssh.ConnMetadata, key ssh.PublicKey, p *ssh.Permissions, _ string) (*ssh.Permissions, error) {
			return s.proven(st, conn, key, p)
		},
		BannerCallback:          s.banner,
		ServerVersion:           "SSH-2.0-Bastion",
		MaxAuthTries:            maxAuthTries,
		PublicKeyAuthAlgorithms: authAlgorithms,
	}
	for _, h := range s.cfg.HostSigners {
		sc.AddHostKey(h)
	}
	return sc
}

// offered decides on a key before the client has proved it holds it:
// only whether the key is one Bastion knows for the name asked. A key
// refused here is a guess, counted by the throttle and told nothing.
func (s *Server) offered(st *authState, conn ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	d, err := ParseUsername(conn.User())
	if err != nil {
		return nil, s.guess(st, "", err) // the banner said why
	}
	owner, known := s.cfg.Users.User(key)
	if !d.IsTarget() {
		if !known || owner != d.User {
			return nil, s.guess(st, d.User, fmt.Errorf("key %s is not registered to %s", ssh.FingerprintSHA256(key), d.User))
		}
		return &ssh.Permissions{Extensions: map[string]string{
			extUser: owner, extKey: ssh.FingerprintSHA256(key), extPub: string(ssh.MarshalAuthorizedKey(key)),
		}}, nil
	}
	if s.cfg.Grants == nil {
		return nil, s.guess(st, "", errors.New("target sessions are not served"))
	}
	if !known {
		in := targetLogin(conn, d, key, "")
		err := fmt.Errorf("key %s is not registered to any user", ssh.FingerprintSHA256(key))
		if c, ok := key.(*ssh.Certificate); ok {
			err = fmt.Errorf("certificate %q certifies key %s, which is not registered to any user", c.KeyId, ssh.FingerprintSHA256(c.Key))
		}
		if st.unproven == nil {
			st.unproven = &targetRefusal{in: in, err: err}
		}
		return nil, s.guess(st, "", err)
	}
	// Registered: decided once the client proves it holds the key.
	return &ssh.Permissions{Extensions: map[string]string{extUser: owner}}, nil
}

// proven decides on a key the client has proved it holds: a self-service
// login was decided by offered; a login on a target is decided now.
func (s *Server) proven(st *authState, conn ssh.ConnMetadata, key ssh.PublicKey, p *ssh.Permissions) (*ssh.Permissions, error) {
	d, err := ParseUsername(conn.User())
	if err != nil || !d.IsTarget() {
		return p, err
	}
	in := targetLogin(conn, d, key, p.Extensions[extUser])
	ctx, cancel := context.WithTimeout(st.fc.Context(), s.cfg.HandshakeTimeout+time.Second)
	defer cancel()
	g, err := s.cfg.Grants.CheckTarget(ctx, in)
	if err == nil {
		return grantPermissions(g, key), nil
	}
	var refusal *policy.Refusal
	if _, isCert := key.(*ssh.Certificate); !isCert && errors.As(err, &refusal) {
		if st.deferred == nil {
			st.deferred = &targetRefusal{in: in, err: err}
		}
	} else {
		s.cfg.Grants.RefuseTarget(ctx, in, err)
		st.audited = true
	}
	var told *access.Told
	if errors.As(err, &told) {
		// Only a key's proven holder gets here, refused for a reason of
		// their own (a certificate Bastion issued them, a request of theirs
		// still pending): tell them why, on one line.
		return nil, &ssh.BannerError{Err: err, Message: "bastion: " + bannerLine(told.Refusal.Reason) + "\r\n"}
	}
	return nil, err
}

// guess counts a refused key against the throttle and holds the refusal
// for the delay it says (within the connection's life); a burst that
// starts is audited, once.
func (s *Server) guess(st *authState, user string, err error) error {
	bursts, over := s.throttle.Hold(st.fc.Context(), st.fc.Source, user)
	for _, b := range bursts {
		s.cfg.Audit.Record(st.fc.Context(), access.Actor{Source: st.fc.Source}, b.Event("ssh"))
		st.fc.Log.Warn("authentication failures throttled", "reason", b.Reason)
	}
	st.throttled = st.throttled || over
	return err
}

// authFailed audits a connection that ended without authenticating: the
// refusal of a registered key (if any) or else of an unknown one, once,
// unless a certificate's refusal was audited already. Failures while the
// throttle held the connection's source or user are left to the burst's
// event.
func (s *Server) authFailed(st *authState) {
	if st.audited {
		return
	}
	r := st.deferred
	if r == nil && !st.throttled {
		r = st.unproven
	}
	if r != nil {
		s.cfg.Grants.RefuseTarget(context.WithoutCancel(st.fc.Context()), r.in, r.err)
	}
}

func targetLogin(conn ssh.ConnMetadata, d Destination, key ssh.PublicKey, owner string) access.TargetLogin {
	return access.TargetLogin{Key: key, KeyOwner: owner, Login: d.Login, Target: d.Target, Source: addrOf(conn.RemoteAddr())}
}

// maxBannerLine bounds a refusal told in a banner.
const maxBannerLine = 300

// bannerLine is s as one line of a banner: unprintable runes (controls,
// escape sequences, invalid UTF-8) escaped as Go does, at most
// maxBannerLine bytes.
func bannerLine(s string) string {
	var b strings.Builder
	for i, r := range s {
		if b.Len() >= maxBannerLine {
			b.WriteString("…")
			break
		}
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], string(utf8.RuneError)): // an invalid byte
			fmt.Fprintf(&b, "\\x%02x", s[i])
		case unicode.IsPrint(r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
	}
	return b.String()
}
