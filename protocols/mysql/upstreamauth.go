package mysql

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"errors"
	"fmt"
)

// How Bastion answers a target's authentication requests with the target's
// configured password. A challenge-response (mysql_native_password,
// caching_sha2_password's fast path) never hands over the password. The
// password itself (caching_sha2_password's full authentication,
// sha256_password, mysql_clear_password) goes only where no one but the
// target can read it:
//
//	link to the target             password in clear    RSA-encrypted
//	TLS, verify-full               yes                  (not needed)
//	TLS, require (not verified)    no                   no (the server reads only clear text over TLS)
//	no TLS, server_public_key set  no                   with the pinned key (not mysql_clear_password)
//	no TLS, no pinned key          no                   no
//
// The server's own public key, which a server sends on request, is never
// used: without TLS nothing proves it is the target's.

// Authentication plugins Bastion answers upstream besides native and
// caching_sha2.
const (
	pluginSHA256 = "sha256_password"
	pluginClear  = "mysql_clear_password"
)

// link is how the connection to a target is secured.
type link int

const (
	linkPlain      link = iota // no TLS
	linkUnverified             // TLS whose certificate is not checked (tls: require)
	linkVerified               // TLS verified against a CA and the host name (tls: verify-full)
)

// linkOf is how t's connection is secured (login sets TLS up whenever
// t.TLS is set, or fails).
func linkOf(t Target) link {
	switch {
	case t.TLS == nil:
		return linkPlain
	case t.TLS.InsecureSkipVerify:
		return linkUnverified
	}
	return linkVerified
}

// upstreamAuth answers one login's authentication requests.
type upstreamAuth struct {
	t     Target
	link  link
	nonce []byte
}

// answer is the reply to an authentication request (the handshake or an
// auth switch) for plugin.
func (a *upstreamAuth) answer(plugin string) ([]byte, error) {
	switch plugin {
	case pluginNative, pluginCachingSHA:
		return scramble(plugin, a.t.Password, a.nonce), nil
	case pluginSHA256, pluginClear:
		return a.password(plugin)
	}
	return nil, fmt.Errorf("the target asks for authentication plugin %q", plugin)
}

// password is the reply that carries the password itself, for plugin, or a
// refusal when the link does not keep it from anyone but the target.
func (a *upstreamAuth) password(plugin string) ([]byte, error) {
	what := plugin
	if plugin == pluginCachingSHA {
		what = "caching_sha2_password full authentication"
	}
	switch {
	case a.link == linkVerified:
		return append([]byte(a.t.Password), 0), nil
	case a.link == linkUnverified:
		return nil, a.refuse(what, "over TLS that does not verify the server (tls: require)", "set tls: verify-full")
	case plugin == pluginClear:
		return nil, a.refuse(what, "in clear, without TLS", "set tls: verify-full")
	case a.t.ServerPublicKey == nil:
		return nil, a.refuse(what, "without TLS, and the target's configuration pins no server_public_key", "set tls: verify-full or server_public_key")
	}
	return encryptPassword(a.t.ServerPublicKey, a.t.Password, a.nonce)
}

func (a *upstreamAuth) refuse(what, where, fix string) error {
	return &upstreamError{code: erNotSupportedAuth, state: "08004",
		tell: fmt.Sprintf("bastion: target %s asks for the password itself (%s) %s: Bastion does not send it there (%s)", a.t.Name, what, where, fix),
		err:  errors.New("password refused to an unverified server")}
}

// upstreamError is a failure to log in to a target, with the ERR packet
// the client is told.
type upstreamError struct {
	code  uint16
	state string
	tell  string // safe to show the user
	err   error  // for the log
}

func (e *upstreamError) Error() string { return e.tell + ": " + e.err.Error() }
func (e *upstreamError) Unwrap() error { return e.err }

// targetRefusal is the target's own ERR packet p at login. It is relayed
// as it is (1040 Too many connections, 1049 Unknown database …), except
// the refusals of Bastion's account, whose text names that account: those
// keep their code and get Bastion's words.
func targetRefusal(target string, p []byte) error {
	code, msg := parseErr(p)
	state := "HY000"
	if len(p) >= 9 && p[3] == '#' {
		state = string(p[4:9])
	}
	err := fmt.Errorf("login refused: %d %s", code, msg)
	switch code {
	case erAccessDenied, erDBAccessDenied, erAccessDeniedNoPassword:
		msg = fmt.Sprintf("bastion: target %s refused Bastion's login (the operator's log has the details)", target)
	}
	return &upstreamError{code: code, state: state, tell: msg, err: err}
}

// upstreamRefusal is the ERR packet a client gets when the target could
// not be opened: the target's own refusal or Bastion's, or "cannot be
// reached".
func upstreamRefusal(target string, err error) (code uint16, state, msg string) {
	var ue *upstreamError
	if errors.As(err, &ue) {
		return ue.code, ue.state, ue.tell
	}
	return erCannotConnect, "HY000", fmt.Sprintf("bastion: %s cannot be reached (the operator's log has the details)", target)
}

// encryptPassword encrypts password for the target's RSA key: RSA-OAEP
// over the NUL-terminated password XOR the nonce, as caching_sha2_password
// and sha256_password expect without TLS.
func encryptPassword(key *rsa.PublicKey, password string, nonce []byte) ([]byte, error) {
	if len(nonce) == 0 {
		return nil, errors.New("the target sent no nonce")
	}
	plain := append([]byte(password), 0)
	for i := range plain {
		plain[i] ^= nonce[i%len(nonce)]
	}
	return rsa.EncryptOAEP(sha1.New(), rand.Reader, key, plain, nil)
}
