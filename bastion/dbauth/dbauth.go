// Package dbauth makes database secrets and the verifiers Bastion keeps
// instead of them, and checks proofs against those verifiers: SCRAM-SHA-256
// (RFC 5802, RFC 7677) for PostgreSQL, mysql_native_password and
// caching_sha2_password for MySQL and MariaDB.
//
// A secret is 32 random bytes, so the unsalted MySQL double hashes cannot
// be brute-forced back into it; they are what those protocols need to
// check a client's proof without the secret.
package dbauth

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// SCRAMIterations is the PBKDF2 iteration count of new SCRAM verifiers
// (PostgreSQL's default).
const SCRAMIterations = 4096

// NewSecret returns a fresh secret: 32 random bytes, base64url without
// padding (43 characters, safe in URLs and DSNs as is).
func NewSecret() string {
	return base64.RawURLEncoding.EncodeToString(randomBytes(32))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	return b
}

// Verifiers are what Bastion keeps of a secret.
type Verifiers struct {
	SCRAM       string // PostgreSQL's rolpassword format
	MySQLNative []byte // SHA1(SHA1(secret))
	MySQLSHA2   []byte // SHA256(SHA256(secret))
}

// Derive computes the verifiers of secret.
func Derive(secret string) Verifiers {
	return Verifiers{
		SCRAM:       NewSCRAM(secret, randomBytes(16), SCRAMIterations).String(),
		MySQLNative: sha1Sum(sha1Sum([]byte(secret))),
		MySQLSHA2:   sha256Sum(sha256Sum([]byte(secret))),
	}
}

// SCRAM is a SCRAM-SHA-256 verifier.
type SCRAM struct {
	Iterations int
	Salt       []byte
	StoredKey  []byte // H(ClientKey)
	ServerKey  []byte
}

// NewSCRAM computes the verifier of password.
func NewSCRAM(password string, salt []byte, iterations int) SCRAM {
	salted, _ := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size) // valid parameters never fail
	clientKey := hmacSum(salted, "Client Key")
	return SCRAM{Iterations: iterations, Salt: salt, StoredKey: sha256Sum(clientKey), ServerKey: hmacSum(salted, "Server Key")}
}

// String formats v as PostgreSQL stores it:
// SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>, base64.
func (v SCRAM) String() string {
	b := base64.StdEncoding
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", v.Iterations, b.EncodeToString(v.Salt),
		b.EncodeToString(v.StoredKey), b.EncodeToString(v.ServerKey))
}

// ParseSCRAM reads a verifier written by String.
func ParseSCRAM(s string) (SCRAM, error) {
	bad := func(what string) (SCRAM, error) {
		return SCRAM{}, fmt.Errorf("dbauth: malformed SCRAM verifier: %s", what)
	}
	rest, ok := strings.CutPrefix(s, "SCRAM-SHA-256$")
	if !ok {
		return bad("not SCRAM-SHA-256")
	}
	params, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return bad("no keys")
	}
	iter, salt, ok1 := strings.Cut(params, ":")
	stored, server, ok2 := strings.Cut(keys, ":")
	if !ok1 || !ok2 {
		return bad("missing field")
	}
	var v SCRAM
	var err error
	if v.Iterations, err = strconv.Atoi(iter); err != nil || v.Iterations < 1 {
		return bad("iteration count")
	}
	b := base64.StdEncoding
	if v.Salt, err = b.DecodeString(salt); err != nil || len(v.Salt) == 0 {
		return bad("salt")
	}
	if v.StoredKey, err = b.DecodeString(stored); err != nil || len(v.StoredKey) != sha256.Size {
		return bad("stored key")
	}
	if v.ServerKey, err = b.DecodeString(server); err != nil || len(v.ServerKey) != sha256.Size {
		return bad("server key")
	}
	return v, nil
}

// VerifyClientProof checks a SCRAM client proof for authMessage (RFC 5802
// §3: client-first-bare "," server-first "," client-final-without-proof)
// and returns the server signature to send back.
func (v SCRAM) VerifyClientProof(authMessage string, proof []byte) (serverSignature []byte, ok bool) {
	if len(proof) != sha256.Size {
		return nil, false
	}
	clientSignature := hmacSum(v.StoredKey, authMessage)
	clientKey := make([]byte, sha256.Size)
	subtle.XORBytes(clientKey, proof, clientSignature)
	if subtle.ConstantTimeCompare(sha256Sum(clientKey), v.StoredKey) != 1 {
		return nil, false
	}
	return hmacSum(v.ServerKey, authMessage), true
}

// ErrBadProof is returned for a proof that does not match.
var ErrBadProof = errors.New("dbauth: password does not match")

// CheckMySQLNative checks a mysql_native_password scramble:
// SHA1(secret) XOR SHA1(nonce + SHA1(SHA1(secret))), against
// stored = SHA1(SHA1(secret)).
func CheckMySQLNative(stored, nonce, scramble []byte) error {
	if len(scramble) != sha1.Size || len(stored) != sha1.Size {
		return ErrBadProof
	}
	h1 := make([]byte, sha1.Size)
	subtle.XORBytes(h1, scramble, sha1Sum(nonce, stored))
	if subtle.ConstantTimeCompare(sha1Sum(h1), stored) != 1 {
		return ErrBadProof
	}
	return nil
}

// CheckCachingSHA2 checks a caching_sha2_password fast-path scramble:
// SHA256(secret) XOR SHA256(SHA256(SHA256(secret)) + nonce), against
// stored = SHA256(SHA256(secret)).
func CheckCachingSHA2(stored, nonce, scramble []byte) error {
	if len(scramble) != sha256.Size || len(stored) != sha256.Size {
		return ErrBadProof
	}
	h1 := make([]byte, sha256.Size)
	subtle.XORBytes(h1, scramble, sha256Sum(stored, nonce))
	if subtle.ConstantTimeCompare(sha256Sum(h1), stored) != 1 {
		return ErrBadProof
	}
	return nil
}

// CheckPlainSHA2 checks a password sent in clear (caching_sha2_password's
// full authentication, only ever over TLS) against stored.
func CheckPlainSHA2(stored []byte, password string) error {
	if subtle.ConstantTimeCompare(sha256Sum(sha256Sum([]byte(password))), stored) != 1 {
		return ErrBadProof
	}
	return nil
}

func hmacSum(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

func sha256Sum(parts ...[]byte) []byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

func sha1Sum(parts ...[]byte) []byte {
	h := sha1.New()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}
