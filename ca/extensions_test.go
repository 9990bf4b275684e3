package ca

import (
	"slices"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestTargetExtension(t *testing.T) {
	if got, want := TargetExtension("web01"), "target-web01@bastionhq.dev"; got != want {
		t.Errorf("TargetExtension(web01) = %q; want %q", got, want)
	}
}

func TestCertTargets(t *testing.T) {
	for _, tc := range []struct {
		name       string
		extensions map[string]string
		want       []string
	}{
		{"none", nil, nil},
		{"sorted", map[string]string{
			TargetExtension("web01"):   "",
			TargetExtension("db.prod"): "",
			TargetExtension("a_b-c"):   "",
			"permit-pty":               "",
		}, []string{"a_b-c", "db.prod", "web01"}},
		{"malformed ignored", map[string]string{
			TargetExtension("web01"):       "",
			TargetExtension("web 02"):      "",
			TargetExtension(""):            "",
			TargetExtension("db"):          "with value",
			"target-x@example.com":         "",
			"web03@bastionhq.dev":          "",
			"target-web04@bastionhq.dev.x": "",
		}, []string{"web01"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert := &ssh.Certificate{Permissions: ssh.Permissions{Extensions: tc.extensions}}
			if got := CertTargets(cert); !slices.Equal(got, tc.want) {
				t.Errorf("CertTargets = %q; want %q", got, tc.want)
			}
		})
	}
	if got := CertTargets(nil); got != nil {
		t.Errorf("CertTargets(nil) = %q", got)
	}
}

func TestCertTargetsRoundTrip(t *testing.T) {
	ca := testAuthority(t, UserCAName, 'u')
	req := aliceRequest(t)
	req.Extensions[TargetExtension("db.prod")] = ""
	cert, err := ca.SignUser(req)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := CertTargets(cert), []string{"db.prod", "web01"}; !slices.Equal(got, want) {
		t.Errorf("CertTargets = %q; want %q", got, want)
	}
}

func FuzzCertTargets(f *testing.F) {
	for _, ext := range []string{TargetExtension("web01"), "target-@bastionhq.dev", "target-a b@bastionhq.dev", "permit-pty", "target-x@bastionhq.dev@bastionhq.dev"} {
		f.Add(ext, "")
	}
	f.Fuzz(func(t *testing.T, ext, value string) {
		cert := &ssh.Certificate{Permissions: ssh.Permissions{Extensions: map[string]string{ext: value}}}
		targets := CertTargets(cert)
		if len(targets) > 1 {
			t.Fatalf("one extension gave targets %q", targets)
		}
		for _, name := range targets {
			if !ValidTargetName(name) || TargetExtension(name) != ext || value != "" {
				t.Errorf("extension %q=%q gave target %q", ext, value, name)
			}
		}
		// What CertTargets accepts, SignUser accepts, and the other way round.
		accepted := checkExtensions(map[string]string{ext: value}) == nil
		if len(targets) == 1 && !accepted {
			t.Errorf("CertTargets reads %q=%q but SignUser refuses it", ext, value)
		}
	})
}
