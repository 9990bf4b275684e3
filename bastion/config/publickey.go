package config

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/bastionhq/bastion/bastion/policy"
)

// serverPublicKey reads a MySQL target's server_public_key: the server's
// RSA public key in PEM (its public_key.pem), inline or the path of the
// file (relative to the config file). Without TLS, Bastion encrypts the
// target's password for this key when the target asks for the password
// itself (caching_sha2_password full authentication, sha256_password),
// instead of trusting a key the server sends in clear.
func (v *validator) serverPublicKey(field string, t rawTarget, target *Target) {
	if t.ServerPublicKey == "" {
		return
	}
	field += ".server_public_key"
	if target.Kind != policy.KindMySQL {
		v.errorf(field, "only mysql targets have a server public key")
		return
	}
	data := []byte(t.ServerPublicKey)
	if !strings.Contains(t.ServerPublicKey, "-----BEGIN") {
		path := v.path(t.ServerPublicKey)
		b, err := os.ReadFile(path)
		if err != nil {
			v.errorf(field, "neither PEM nor a readable file: %v", err)
			return
		}
		data = b
	}
	key, err := parseRSAPublicKey(data)
	if err != nil {
		v.errorf(field, "not an RSA public key in PEM (PUBLIC KEY or RSA PUBLIC KEY): %v", err)
		return
	}
	target.ServerPublicKey = key
}

func parseRSAPublicKey(data []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	if block.Type == "RSA PUBLIC KEY" {
		return x509.ParsePKCS1PublicKey(block.Bytes)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	key, ok := pub.(*rsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("a %T key", pub)
	}
	return key, nil
}
