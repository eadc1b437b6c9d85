package verify

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzSignatureHeader feeds arbitrary webhook-signature values and bodies to
// a static verifier. Verify must never panic, and must succeed only when an
// entry is the genuine signature for the body, in one of its two textual
// forms (padded or unpadded base64).
func FuzzSignatureHeader(f *testing.F) {
	f.Add(vecSignature, []byte(vecBody))
	f.Add("v1,"+strings.TrimRight(strings.TrimPrefix(vecSignature, "v1,"), "="), []byte(vecBody))
	f.Add("v1a,abc v1,def v2,xyz", []byte("{}"))
	f.Add(forgedV1+" "+vecSignature, []byte(vecBody))
	f.Add("Bearer a.b.c", []byte{})
	f.Add(strings.Repeat("v1, ", 20), []byte{0})
	v, err := New(Config{Secrets: []string{vecSecret}, Now: fixedClock(vecTime), allowTestVector: true})
	if err != nil {
		f.Fatal(err)
	}
	key := mustDecode(f, vecSecret)
	f.Fuzz(func(t *testing.T, sig string, body []byte) {
		r, err := v.Verify(context.Background(), headers(vecID, vecTimestamp, sig), body)
		if err != nil {
			checkError(t, err, nil, nil)
			return
		}
		genuine := hmacEntry(key, vecID, vecTimestamp, body)
		raw := strings.TrimRight(genuine, "=")
		found := false
		for _, e := range strings.FieldsFunc(sig, func(r rune) bool { return r == ' ' || r == '\t' }) {
			found = found || e == genuine || e == raw
		}
		if !found {
			t.Fatalf("Verify accepted %q for body %q, genuine is %q", sig, body, genuine)
		}
		if r.Scheme != SchemeHMAC || r.SecretIndex != 0 {
			t.Fatalf("Result = %+v", r)
		}
	})
}

// FuzzSignatureValues feeds webhook-signature headers of two values to a
// static verifier, as proxies that split a header at its commas send them.
// Verify must never panic, and must succeed only when the genuine signature
// is an entry of the values read separately or joined with a comma.
func FuzzSignatureValues(f *testing.F) {
	sig := strings.TrimPrefix(vecSignature, "v1,")
	f.Add("v1", sig)
	f.Add("v1", forgedV1[3:]+" v1")
	f.Add(forgedV1, vecSignature)
	f.Add("v1,", sig)
	f.Add("v1a", sig)
	f.Add("", "")
	v, err := New(Config{Secrets: []string{vecSecret}, Now: fixedClock(vecTime), allowTestVector: true})
	if err != nil {
		f.Fatal(err)
	}
	body := []byte(vecBody)
	f.Fuzz(func(t *testing.T, a, b string) {
		h := headers(vecID, vecTimestamp, "")
		h["Webhook-Signature"] = []string{a, b}
		r, err := v.Verify(context.Background(), h, body)
		if err != nil {
			checkError(t, err, nil, nil)
			return
		}
		found := false
		for _, s := range []string{a + " " + b, strings.TrimSpace(a) + "," + strings.TrimSpace(b)} {
			for _, e := range strings.Split(s, " ") {
				found = found || e == vecSignature || e == strings.TrimRight(vecSignature, "=")
			}
		}
		if !found {
			t.Fatalf("Verify accepted %q", h["Webhook-Signature"])
		}
		if r.Scheme != SchemeHMAC || r.WebhookID != vecID {
			t.Fatalf("Result = %+v", r)
		}
	})
}

// FuzzTimestamp feeds arbitrary webhook-timestamp values, correctly signed,
// to a static verifier. It must accept exactly the integer Unix seconds
// within the tolerance of its clock.
func FuzzTimestamp(f *testing.F) {
	for _, s := range []string{vecTimestamp, "0", "-1", "+1614265330", "1614265330.5", "99999999999999999999", "1614265631", "1614265029", " 1614265330", "0001614265330"} {
		f.Add(s)
	}
	v, err := New(Config{Secrets: []string{vecSecret}, Now: fixedClock(vecTime), allowTestVector: true})
	if err != nil {
		f.Fatal(err)
	}
	key := mustDecode(f, vecSecret)
	body := []byte(vecBody)
	f.Fuzz(func(t *testing.T, ts string) {
		r, err := v.Verify(context.Background(), headers(vecID, ts, hmacEntry(key, vecID, ts, body)), body)
		valid := ts != "" && len(ts) <= 18 && strings.Trim(ts, "0123456789") == ""
		if valid {
			n, _ := strconv.ParseInt(ts, 10, 64)
			d := vecTime.Sub(time.Unix(n, 0))
			valid = d <= DefaultTolerance && d >= -DefaultTolerance
		}
		if (err == nil) != valid {
			t.Fatalf("timestamp %q: Verify error = %v, want valid = %v", ts, err, valid)
		}
		if n, _ := strconv.ParseInt(ts, 10, 64); err == nil && r.Timestamp.Unix() != n {
			t.Fatalf("Result.Timestamp = %v, want Unix %d", r.Timestamp, n)
		}
	})
}

// FuzzJWT feeds arbitrary tokens to a dynamic verifier whose JWKS is served
// on loopback. It must never panic, and must accept only the one genuine
// token of the seed corpus (strict decoding leaves it one textual form).
func FuzzJWT(f *testing.F) {
	k := newRSAKey(f, "rsa-1", 0)
	ed := newEdKey(f, "ed-1")
	srv := newJWKSServer(f, k.jwk(), ed.jwk())
	genuine := k.sign(f, jwtClaims(vecTime, testAudience))
	f.Add(genuine)
	f.Add("Bearer " + genuine)
	f.Add("a.b.c")
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add(genuine[:len(genuine)-3])
	f.Add("..")
	v, err := New(Config{JWKSURL: srv.url(), HTTPClient: srv.Client(), Now: fixedClock(vecTime), Audience: testAudience})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, token string) {
		r, err := v.Verify(context.Background(), headers("", "", token), nil)
		if err != nil {
			checkError(t, err, nil, nil)
			return
		}
		tok, _ := jwtToken(token)
		if tok != genuine {
			t.Fatalf("Verify accepted %q", token)
		}
		if r.Scheme != SchemeJWT || r.KeyID != k.kid {
			t.Fatalf("Result = %+v", r)
		}
	})
}
