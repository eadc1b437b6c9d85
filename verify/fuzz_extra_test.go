package verify

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
)

// FuzzEd25519Header feeds arbitrary webhook-signature values and bodies to
// a dynamic verifier whose JWKS, served on loopback, holds two Ed25519 keys
// and an RSA key. Verify must never panic, must fail with an *Error whose
// reason quotes no signature, and must succeed only for a v1a entry
// that is a genuine Ed25519 signature of the delivery under one of the two
// Ed25519 keys (never under the RSA key, never for a v1 entry: the verifier
// holds no secret).
func FuzzEd25519Header(f *testing.F) {
	k1, k2 := newEdKey(f, "ed-1"), newEdKey(f, "ed-2")
	rk := newRSAKey(f, "rsa-1", 0)
	srv := newJWKSServer(f, k1.jwk(), k2.jwk(), rk.jwk())
	body := []byte(vecBody)
	genuine := v1aEntry(k2.priv, vecID, vecTimestamp, body)
	f.Add(genuine, body)
	f.Add(v1aEntry(k1.priv, vecID, vecTimestamp, body)+" "+genuine, body)
	f.Add("v1a,"+strings.TrimRight(strings.TrimPrefix(genuine, "v1a,"), "="), body)
	f.Add(genuine+" "+genuine+" "+genuine, body)
	f.Add(genuine, []byte(`{"test": 2432232315}`))
	f.Add(vecSignature, body)
	f.Add("v2,"+strings.TrimPrefix(genuine, "v1a,"), body)
	f.Add("v1a,", []byte{})
	f.Add("v1a,"+base64.StdEncoding.EncodeToString(make([]byte, ed25519.SignatureSize)), body)
	v, err := New(Config{JWKSURL: srv.url(), HTTPClient: srv.Client(), Now: fixedClock(vecTime)})
	if err != nil {
		f.Fatal(err)
	}
	msg := func(b []byte) []byte { return append([]byte(vecID+"."+vecTimestamp+"."), b...) }
	f.Fuzz(func(t *testing.T, sig string, body []byte) {
		h := headers(vecID, vecTimestamp, sig)
		r, err := v.Verify(context.Background(), h, body)
		if err != nil {
			checkError(t, err, h, nil) // a body may be any short string the reason holds by chance
			return
		}
		found := false
		for _, e := range strings.FieldsFunc(sig, func(r rune) bool { return r == ' ' || r == '\t' }) {
			ver, s, ok := strings.Cut(e, ",")
			if !ok || ver != "v1a" {
				continue
			}
			raw, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				raw, err = base64.RawStdEncoding.DecodeString(s)
			}
			if err != nil || len(raw) != ed25519.SignatureSize {
				continue
			}
			for _, k := range []edKey{k1, k2} {
				if ed25519.Verify(k.pub, msg(body), raw) && r.KeyID == k.kid {
					found = true
				}
			}
		}
		if !found {
			t.Fatalf("Verify accepted %q for body %q (Result %+v)", sig, body, r)
		}
		if r.Scheme != SchemeEd25519 || r.WebhookID != vecID || r.Timestamp != vecTime {
			t.Fatalf("Result = %+v", r)
		}
	})
}
