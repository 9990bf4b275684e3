package storetest

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bastionhq/bastion/bastion/store"
)

func testCertificate(requestID int64, user string, issued time.Time) *store.Certificate {
	return &store.Certificate{
		RequestID:      requestID,
		User:           user,
		KeyFingerprint: "SHA256:" + strings.Repeat("k", 43),
		Principals:     []string{user, "ubuntu"},
		Targets:        []string{"web-1", "web-2"},
		ValidAfter:     issued.Add(-time.Minute),
		ValidBefore:    issued.Add(2 * time.Hour),
		IssuedAt:       issued,
	}
}

func diffCertificate(want, got *store.Certificate) diffs {
	var d diffs
	eq(&d, "Serial", want.Serial, got.Serial)
	eq(&d, "RequestID", want.RequestID, got.RequestID)
	eq(&d, "User", want.User, got.User)
	eq(&d, "KeyFingerprint", want.KeyFingerprint, got.KeyFingerprint)
	listEq(&d, "Principals", want.Principals, got.Principals)
	listEq(&d, "Targets", want.Targets, got.Targets)
	timeEq(&d, "ValidAfter", want.ValidAfter, got.ValidAfter)
	timeEq(&d, "ValidBefore", want.ValidBefore, got.ValidBefore)
	timeEq(&d, "IssuedAt", want.IssuedAt, got.IssuedAt)
	return d
}

func issue(t *testing.T, s store.Store, c *store.Certificate) uint64 {
	t.Helper()
	serial, err := s.IssueCertificate(t.Context(), c)
	if err != nil {
		t.Fatalf("IssueCertificate: %v", err)
	}
	if c.Serial != serial {
		t.Fatalf("IssueCertificate returned serial %d but set c.Serial = %d", serial, c.Serial)
	}
	return serial
}

func testIssueCertificate(t *testing.T, s store.Store) {
	r1 := mustCreate(t, s, approvedRequest("alice", at(0)))
	r2 := mustCreate(t, s, approvedRequest("bob", at(time.Minute)))
	cet := time.FixedZone("CET", 3600)
	certs := []*store.Certificate{
		testCertificate(r1, "alice", at(time.Minute).In(cet)),
		testCertificate(r2, "bob", at(2*time.Minute)),
		testCertificate(r1, "alice", at(3*time.Minute)),
		testCertificate(0, "breakglass", at(4*time.Minute)), // not tied to a request
	}
	certs[1].Principals, certs[1].Targets = nil, nil
	for i, c := range certs {
		if got, want := issue(t, s, c), uint64(i+1); got != want {
			t.Errorf("certificate %d got serial %d, want %d", i, got, want)
		}
	}
	for _, tt := range []struct {
		request int64
		want    []*store.Certificate
	}{
		{r1, []*store.Certificate{certs[0], certs[2]}},
		{r2, []*store.Certificate{certs[1]}},
	} {
		got, err := s.Certificates(t.Context(), tt.request)
		if err != nil {
			t.Fatalf("Certificates(%d): %v", tt.request, err)
		}
		slices.SortFunc(got, func(a, b *store.Certificate) int { return cmp.Compare(a.Serial, b.Serial) })
		if len(got) != len(tt.want) {
			t.Fatalf("Certificates(%d) returned %d certificates, want %d", tt.request, len(got), len(tt.want))
		}
		for i := range got {
			if d := diffCertificate(tt.want[i], got[i]); len(d) > 0 {
				t.Errorf("certificate %d differs:\n\t%s", tt.want[i].Serial, strings.Join(d, "\n\t"))
			}
		}
	}
}

func testIssueCertificateConcurrent(t *testing.T, s store.Store) {
	id := mustCreate(t, s, approvedRequest("alice", at(0)))
	serials := make([]uint64, concurrency)
	errs := race(concurrency, func(i int) error {
		var err error
		serials[i], err = s.IssueCertificate(t.Context(), testCertificate(id, fmt.Sprint("user", i), at(time.Minute)))
		return err
	})
	seen := map[uint64]bool{}
	var highest uint64
	for i, err := range errs {
		if err != nil {
			t.Fatalf("issuer %d: %v", i, err)
		}
		if serials[i] == 0 || seen[serials[i]] {
			t.Errorf("issuer %d got serial %d, which is zero or already taken", i, serials[i])
		}
		seen[serials[i]] = true
		highest = max(highest, serials[i])
	}
	if next := issue(t, s, testCertificate(id, "late", at(time.Hour))); next <= highest {
		t.Errorf("serial after the concurrent ones = %d, want > %d", next, highest)
	}
	got, err := s.Certificates(t.Context(), id)
	if err != nil {
		t.Fatalf("Certificates: %v", err)
	}
	if len(got) != concurrency+1 {
		t.Errorf("Certificates returned %d, want %d", len(got), concurrency+1)
	}
}
