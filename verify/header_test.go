package verify

import (
	"strings"
	"testing"
)

// TestCutVersion checks that cutVersion cuts as strings.Cut(entry, ",")
// does, with the comma before, at and after its byte-loop window.
func TestCutVersion(t *testing.T) {
	for _, entry := range []string{
		"", ",", "v1", "v1,", ",sig", "v1,sig", "v1a,sig,more", "1234567,x", "12345678,x", "123456789,x",
		strings.Repeat("a", 100), strings.Repeat("a", 100) + ",b", "v1,a,b,c",
	} {
		gv, gs, gok := cutVersion(entry)
		wv, ws, wok := strings.Cut(entry, ",")
		if gv != wv || gs != ws || gok != wok {
			t.Errorf("cutVersion(%q) = %q, %q, %v; strings.Cut gives %q, %q, %v", entry, gv, gs, gok, wv, ws, wok)
		}
	}
}

// FuzzPlainV1 checks the claim Verify's shortcut rests on: for every value
// plainV1 accepts, the general path (blank check, length limit, JWT check,
// parseSignatureHeader) finds exactly one v1 entry, the value without its
// "v1,", and nothing else.
func FuzzPlainV1(f *testing.F) {
	for _, s := range []string{
		vecSignature, "v1,", "v1,x", "v1,a b", "v1,a,b", "v1a,abc", " v1,abc", "v1,abc ", "v1,abc\t", "V1,abc", "v2,abc",
		"v1," + strings.Repeat("A", MaxSignatureHeaderLen), "v1,eyJhbGciOiJSUzI1NiJ9.e30.sig",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !plainV1(s) {
			return
		}
		if strings.TrimSpace(s) == "" || len(s) > MaxSignatureHeaderLen {
			t.Fatalf("plainV1(%q), but the general path refuses it as blank or too long", s)
		}
		if _, ok := jwtToken(s); ok {
			t.Fatalf("plainV1(%q), but the general path reads it as a JWT", s)
		}
		var e entries
		if err := parseSignatureHeader([]string{s}, &e); err != nil {
			t.Fatalf("plainV1(%q), but parseSignatureHeader fails: %v", s, err)
		}
		if e.nv1 != 1 || e.nv1a != 0 || e.v1[0] != s[len("v1,"):] {
			t.Fatalf("plainV1(%q), but parseSignatureHeader finds %d v1 entries (%q) and %d v1a", s, e.nv1, e.v1[:e.nv1], e.nv1a)
		}
	})
}
