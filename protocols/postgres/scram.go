package postgres

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/bastionhq/bastion/bastion/dbauth"
)

// SCRAM-SHA-256 between the client and Bastion (RFC 5802, RFC 7677), as
// PostgreSQL runs it inside AuthenticationSASL messages.
//
// Channel binding: Bastion offers SCRAM-SHA-256 only, not
// SCRAM-SHA-256-PLUS. A client that would bind ("y,,": it supports binding
// but the server did not offer it) is accepted, as PostgreSQL does; a client
// that insists on binding ("p=…") is refused. TLS to Bastion is required for
// every connection, so the exchange never runs in the clear.

// scramMechanism is the only SASL mechanism offered.
const scramMechanism = "SCRAM-SHA-256"

// maxSASLMessage bounds the client's SASL messages (PostgreSQL allows
// about 1 kB of real content).
const maxSASLMessage = 4096

// errBadPassword is the exchange's answer to a wrong proof, or to a user
// without a secret after the mock exchange.
var errBadPassword = errors.New("password authentication failed")

// msgConn is the startup phase's view of the client connection.
type msgConn interface {
	// readMessage reads one typed message whose body is at most limit
	// bytes; the body is valid until the next call.
	readMessage(limit int) (typ byte, body []byte, err error)
	// send writes messages and flushes them.
	send(msgs ...[]byte) error
}

// scramServer runs the server side of a SCRAM-SHA-256 exchange against v,
// up to and including AuthenticationSASLFinal. With mock set, v is a made
// up verifier: the exchange runs the same, and fails at the proof.
func scramServer(c msgConn, v dbauth.SCRAM, mock bool) error {
	if err := c.send(authMessage(10, cstr(scramMechanism), []byte{0})); err != nil {
		return err
	}
	typ, body, err := c.readMessage(maxSASLMessage)
	if err != nil {
		return err
	}
	if typ != msgPassword {
		return fmt.Errorf("scram: expected SASLInitialResponse, got %q", typ)
	}
	mech, rest, err := cstring(body)
	if err != nil {
		return fmt.Errorf("scram: %w", err)
	}
	if mech != scramMechanism {
		return fmt.Errorf("scram: mechanism %q not offered", mech)
	}
	if len(rest) < 4 {
		return fmt.Errorf("scram: %w: no initial response", errMalformed)
	}
	n := int(int32(binary.BigEndian.Uint32(rest)))
	if n < 0 || n != len(rest)-4 {
		return fmt.Errorf("scram: %w: initial response length", errMalformed)
	}
	first, err := parseClientFirst(string(rest[4:]))
	if err != nil {
		return err
	}

	serverNonce := first.nonce + base64.RawStdEncoding.EncodeToString(randBytes(18))
	serverFirst := fmt.Sprintf("r=%s,s=%s,i=%d", serverNonce, base64.StdEncoding.EncodeToString(v.Salt), v.Iterations)
	if err := c.send(authMessage(11, []byte(serverFirst))); err != nil {
		return err
	}

	typ, body, err = c.readMessage(maxSASLMessage)
	if err != nil {
		return err
	}
	if typ != msgPassword {
		return fmt.Errorf("scram: expected SASLResponse, got %q", typ)
	}
	final, err := parseClientFinal(string(body))
	if err != nil {
		return err
	}
	if final.binding != base64.StdEncoding.EncodeToString([]byte(first.gs2Header)) {
		return errors.New("scram: channel binding data does not match the client's first message")
	}
	if final.nonce != serverNonce {
		return errors.New("scram: nonce does not match")
	}
	auth := first.bare + "," + serverFirst + "," + final.withoutProof
	sig, ok := v.VerifyClientProof(auth, final.proof)
	if !ok || mock {
		return errBadPassword
	}
	return c.send(authMessage(12, []byte("v="+base64.StdEncoding.EncodeToString(sig))))
}

// authMessage encodes an Authentication message of the given kind.
func authMessage(kind uint32, data ...[]byte) []byte {
	return appendMsg(nil, 'R', append([][]byte{binary.BigEndian.AppendUint32(nil, kind)}, data...)...)
}

// clientFirst is a parsed client-first-message.
type clientFirst struct {
	gs2Header string // "n,," or "y,,"
	bare      string // client-first-message-bare
	nonce     string
}

func parseClientFirst(s string) (clientFirst, error) {
	var m clientFirst
	var cb, authzid, bare string
	var ok bool
	if cb, s, ok = strings.Cut(s, ","); !ok {
		return m, fmt.Errorf("scram: %w: client-first-message", errMalformed)
	}
	switch {
	case cb == "n" || cb == "y":
	case strings.HasPrefix(cb, "p="):
		return m, errors.New("scram: channel binding is not supported (use channel_binding=prefer or disable)")
	default:
		return m, fmt.Errorf("scram: %w: gs2 header", errMalformed)
	}
	if authzid, bare, ok = strings.Cut(s, ","); !ok {
		return m, fmt.Errorf("scram: %w: client-first-message", errMalformed)
	}
	if authzid != "" {
		return m, errors.New("scram: an authorization identity is not supported")
	}
	m.gs2Header = cb + "," + authzid + ","
	m.bare = bare
	attrs := strings.Split(bare, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") {
		return m, fmt.Errorf("scram: %w: client-first-message-bare", errMalformed)
	}
	m.nonce = attrs[1][2:]
	if m.nonce == "" || !printable(m.nonce) {
		return m, fmt.Errorf("scram: %w: nonce", errMalformed)
	}
	return m, nil
}

// printable reports whether s is a valid SCRAM nonce: printable ASCII
// without ','.
func printable(s string) bool {
	for i := range len(s) {
		if c := s[i]; c < 0x21 || c > 0x7e || c == ',' {
			return false
		}
	}
	return true
}

// clientFinal is a parsed client-final-message.
type clientFinal struct {
	binding      string // c=, base64
	nonce        string
	withoutProof string
	proof        []byte
}

func parseClientFinal(s string) (clientFinal, error) {
	var m clientFinal
	i := strings.LastIndex(s, ",p=")
	if i < 0 {
		return m, fmt.Errorf("scram: %w: no proof", errMalformed)
	}
	m.withoutProof = s[:i]
	proof, err := base64.StdEncoding.DecodeString(s[i+3:])
	if err != nil {
		return m, fmt.Errorf("scram: %w: proof", errMalformed)
	}
	m.proof = proof
	attrs := strings.Split(m.withoutProof, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "c=") || !strings.HasPrefix(attrs[1], "r=") {
		return m, fmt.Errorf("scram: %w: client-final-message", errMalformed)
	}
	m.binding, m.nonce = attrs[0][2:], attrs[1][2:]
	return m, nil
}

// mockVerifier is the verifier of a login that has no secret: its salt is
// derived from the user and target with a per-process key, so that asking
// twice shows the same salt, as for a real user; its keys are random, so no
// proof matches.
func mockVerifier(key []byte, user, target string) dbauth.SCRAM {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(user + "\x00" + target))
	return dbauth.SCRAM{Iterations: dbauth.SCRAMIterations, Salt: m.Sum(nil)[:16], StoredKey: randBytes(32), ServerKey: randBytes(32)}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return b
}
