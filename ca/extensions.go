package ca

import (
	"regexp"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
)

// TargetExtensionSuffix ends the name of every Bastion extension in a user
// certificate. The approved targets are flag extensions (empty value) named
// "target-<name>" + TargetExtensionSuffix.
const TargetExtensionSuffix = "@bastionhq.dev"

const targetExtensionPrefix = "target-"

// targetName is what a target name must look like to be put in a certificate.
var targetName = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// ValidTargetName reports whether name can be named in a target extension.
func ValidTargetName(name string) bool {
	return targetName.MatchString(name)
}

// TargetExtension returns the name of the flag extension that approves
// target name, e.g. "target-web01@bastionhq.dev". It does not validate name;
// SignUser refuses an extension whose name is not ValidTargetName.
func TargetExtension(name string) string {
	return targetExtensionPrefix + name + TargetExtensionSuffix
}

// parseTargetExtension returns the target named by extension ext, and
// whether ext is a target extension at all. A target extension with an
// invalid name yields ("", true).
func parseTargetExtension(ext string) (string, bool) {
	rest, ok := strings.CutPrefix(ext, targetExtensionPrefix)
	if !ok {
		return "", false
	}
	name, ok := strings.CutSuffix(rest, TargetExtensionSuffix)
	if !ok {
		return "", false
	}
	if !ValidTargetName(name) {
		return "", true
	}
	return name, true
}

// CertTargets returns the targets a user certificate approves, sorted. It
// ignores malformed target extensions (an invalid name or a non-empty
// value), which SignUser never produces. It does not verify the certificate.
func CertTargets(c *ssh.Certificate) []string {
	if c == nil {
		return nil
	}
	var targets []string
	for ext, value := range c.Permissions.Extensions {
		if name, ok := parseTargetExtension(ext); ok && name != "" && value == "" {
			targets = append(targets, name)
		}
	}
	slices.Sort(targets)
	return targets
}

// openSSHUserExtensions are the extensions OpenSSH defines for user
// certificates (PROTOCOL.certkeys). All are flags.
var openSSHUserExtensions = []string{
	"no-touch-required",
	"permit-X11-forwarding",
	"permit-agent-forwarding",
	"permit-port-forwarding",
	"permit-pty",
	"permit-user-rc",
}

// Critical options a user certificate may carry. Every verifier must
// understand a critical option or refuse the certificate, so only those
// that OpenSSH and Bastion both enforce are accepted.
const (
	optionForceCommand  = "force-command"
	optionSourceAddress = "source-address"
)

var supportedCriticalOptions = []string{optionForceCommand, optionSourceAddress}
