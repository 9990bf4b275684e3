// Package ca holds Bastion's certificate authorities: three SSH CAs with
// separate purposes and one X.509 CA.
//
//   - The user CA signs users' short-lived certificates, with which they log
//     in to Bastion (SPEC §2.1).
//   - The upstream CA signs Bastion's own per-session certificates to targets,
//     which trust it with TrustedUserCAKeys (SPEC §2.2).
//   - The host CA certifies Bastion's host key (and targets' host keys), so
//     users can trust it with one @cert-authority line in known_hosts.
//   - The TLS CA is the root of the leaf certificates of Bastion's PostgreSQL
//     and MySQL TLS listeners (SPEC §2.3).
//
// Signing an SSH certificate is a pipeline: the request is validated (deny by
// default: unknown key types, critical options and extensions are refused),
// the certificate is built from it, signed with a random nonce, and the
// result is parsed back from its wire form and verified with an
// ssh.CertChecker that trusts only this CA before it is returned. The
// package decides nothing about who may have which certificate; that is the
// policy package's job. It only guarantees that what it signs is well formed.
//
// Keys live in files: OpenSSH-format private keys for the SSH CAs and
// Bastion's host key, PKCS#8 PEM for the TLS CA. On first start missing keys
// are generated; a private key file that group or others may read is refused.
package ca
