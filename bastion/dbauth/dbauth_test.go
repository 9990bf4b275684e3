package dbauth

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"testing"
)

// The SCRAM-SHA-256 exchange of RFC 7677 §3.
func TestSCRAMRFC7677(t *testing.T) {
	salt, _ := base64.StdEncoding.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")
	v := NewSCRAM("pencil", salt, 4096)
	const (
		clientFirstBare = "n=user,r=rOprNGfwEbeRWgbNEkqO"
		serverFirst     = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
		clientFinalBare = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
	)
	proof, _ := base64.StdEncoding.DecodeString("dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
	sig, ok := v.VerifyClientProof(clientFirstBare+","+serverFirst+","+clientFinalBare, proof)
	if !ok {
		t.Fatal("the RFC's proof is refused")
	}
	if got := base64.StdEncoding.EncodeToString(sig); got != "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=" {
		t.Errorf("server signature = %s, want the RFC's", got)
	}
	proof[0] ^= 1
	if _, ok := v.VerifyClientProof(clientFirstBare+","+serverFirst+","+clientFinalBare, proof); ok {
		t.Error("an altered proof is accepted")
	}
	if _, ok := v.VerifyClientProof("n=user,r=other", proof[:31]); ok {
		t.Error("a short proof is accepted")
	}
}

func TestSCRAMStringRoundTrip(t *testing.T) {
	secret := NewSecret()
	if len(secret) != 43 || bytes.ContainsAny([]byte(secret), "+/=%@:?#") {
		t.Fatalf("secret %q is not 43 URL-safe characters", secret)
	}
	if NewSecret() == secret {
		t.Fatal("two secrets are equal")
	}
	v := Derive(secret)
	if bytes.Contains([]byte(v.SCRAM), []byte(secret)) {
		t.Fatal("the verifier contains the secret")
	}
	p, err := ParseSCRAM(v.SCRAM)
	if err != nil {
		t.Fatal(err)
	}
	if p.String() != v.SCRAM || p.Iterations != SCRAMIterations || len(p.Salt) != 16 {
		t.Errorf("ParseSCRAM(%q) = %+v", v.SCRAM, p)
	}
	for _, bad := range []string{"", "md5abc", "SCRAM-SHA-256$", "SCRAM-SHA-256$0:c2FsdA==$" + b64(32) + ":" + b64(32),
		"SCRAM-SHA-256$4096:$" + b64(32) + ":" + b64(32), "SCRAM-SHA-256$4096:c2FsdA==$" + b64(31) + ":" + b64(32),
		"SCRAM-SHA-256$4096:c2FsdA==$" + b64(32), "SCRAM-SHA-256$x:c2FsdA==$" + b64(32) + ":" + b64(32)} {
		if _, err := ParseSCRAM(bad); err == nil {
			t.Errorf("ParseSCRAM(%q) accepted", bad)
		}
	}
}

func b64(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }

// The scrambles below are computed as the MySQL client libraries compute
// them, from the secret.
func TestMySQL(t *testing.T) {
	secret := NewSecret()
	v := Derive(secret)
	nonce := []byte("abcdefghijklmnopqrst")

	h1 := sha1Sum([]byte(secret))
	native := make([]byte, sha1.Size)
	subtle.XORBytes(native, h1, sha1Sum(nonce, sha1Sum(h1)))
	if err := CheckMySQLNative(v.MySQLNative, nonce, native); err != nil {
		t.Errorf("native scramble refused: %v", err)
	}
	if err := CheckMySQLNative(v.MySQLNative, []byte("another-nonce-012345"), native); err == nil {
		t.Error("native scramble accepted for another nonce")
	}
	if err := CheckMySQLNative(v.MySQLNative, nonce, native[:10]); err == nil {
		t.Error("short native scramble accepted")
	}

	s1 := sha256Sum([]byte(secret))
	sha2 := make([]byte, sha256.Size)
	subtle.XORBytes(sha2, s1, sha256Sum(sha256Sum(s1), nonce))
	if err := CheckCachingSHA2(v.MySQLSHA2, nonce, sha2); err != nil {
		t.Errorf("caching_sha2 scramble refused: %v", err)
	}
	sha2[3] ^= 0x80
	if err := CheckCachingSHA2(v.MySQLSHA2, nonce, sha2); err == nil {
		t.Error("altered caching_sha2 scramble accepted")
	}
	if err := CheckPlainSHA2(v.MySQLSHA2, secret); err != nil {
		t.Errorf("plain password refused: %v", err)
	}
	if err := CheckPlainSHA2(v.MySQLSHA2, secret+"x"); err == nil {
		t.Error("wrong plain password accepted")
	}
}
