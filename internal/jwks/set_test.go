package jwks

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// rsaComparer compares RSA keys by value; cmp would otherwise call
// (*rsa.PublicKey).Equal, which panics on a nil receiver.
var rsaComparer = cmp.Comparer(func(a, b *rsa.PublicKey) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(b)
})

// edPub returns a deterministic Ed25519 public key derived from seed.
func edPub(seed byte) ed25519.PublicKey { return edPubs()[seed] }

// edPubs derives the 256 keys edPub returns once: tests with thousands of
// keys would otherwise spend their time in key derivation.
var edPubs = sync.OnceValue(func() (keys [256]ed25519.PublicKey) {
	for i := range keys {
		keys[i] = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(i)}, ed25519.SeedSize)).Public().(ed25519.PublicKey)
	}
	return keys
})

// testRSAKey is generated once: RSA key generation is the slowest part of
// the suite.
var testRSAKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func okpJWK(kid string, pub ed25519.PublicKey) map[string]any {
	return map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": kid, "alg": "EdDSA", "use": "sig", "x": b64(pub)}
}

func rsaJWK(kid string, pub *rsa.PublicKey) map[string]any {
	return map[string]any{"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
		"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes())}
}

// with returns a copy of m with the given members replaced (a nil value
// deletes the member).
func with(m map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func jwksDoc(keys ...map[string]any) []byte {
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		panic(err)
	}
	return b
}

// modulus returns an odd modulus of exactly bits bits.
func modulus(bits int) *big.Int {
	n := new(big.Int).Lsh(big.NewInt(1), uint(bits-1))
	return n.SetBit(n, 0, 1)
}

func TestParse(t *testing.T) {
	rsaPub := &testRSAKey().PublicKey
	ed1, ed2, ed3 := edPub(1), edPub(2), edPub(3)
	good := okpJWK("ed-1", ed1)
	goodRSA := rsaJWK("rsa-1", rsaPub)

	tests := []struct {
		name   string
		doc    []byte
		wantED []Key
		wantRS []Key
	}{
		{
			name: "three Ed25519 keys and one RSA key, as Google publishes",
			doc:  jwksDoc(okpJWK("ed-1", ed1), okpJWK("ed-2", ed2), goodRSA, okpJWK("ed-3", ed3)),
			wantED: []Key{
				{ID: "ed-1", Ed25519: ed1}, {ID: "ed-2", Ed25519: ed2}, {ID: "ed-3", Ed25519: ed3},
			},
			wantRS: []Key{{ID: "rsa-1", RSA: rsaPub}},
		},
		{
			name:   "optional members absent",
			doc:    jwksDoc(with(good, "kid", nil, "alg", nil, "use", nil), with(goodRSA, "alg", nil, "use", nil)),
			wantED: []Key{{Ed25519: ed1}},
			wantRS: []Key{{ID: "rsa-1", RSA: rsaPub}},
		},
		{
			name:   "alg Ed25519 (RFC 9864) and padded base64url",
			doc:    jwksDoc(with(good, "alg", "Ed25519", "x", base64.URLEncoding.EncodeToString(ed1))),
			wantED: []Key{{ID: "ed-1", Ed25519: ed1}},
		},
		{
			name: "unusable keys are skipped, not fatal",
			doc: jwksDoc(
				with(good, "kid", "unknown-kty", "kty", "EC"),
				with(good, "kid", "x25519", "crv", "X25519"),
				with(good, "kid", "enc", "use", "enc"),
				with(good, "kid", "key-ops-sign-only", "key_ops", []string{"sign"}),
				with(good, "kid", "okp-alg-es256", "alg", "ES256"),
				with(good, "kid", "short-x", "x", b64(ed1[:31])),
				with(good, "kid", "bad-base64", "x", "!!!"),
				with(good, "kid", "x-not-string", "x", 42),
				with(goodRSA, "kid", "rs512", "alg", "RS512"),
				with(goodRSA, "kid", "rsa-1024", "n", b64(modulus(1024).Bytes())),
				with(goodRSA, "kid", "rsa-2047", "n", b64(modulus(2047).Bytes())),
				with(goodRSA, "kid", "rsa-huge", "n", b64(modulus(8193).Bytes())),
				with(goodRSA, "kid", "rsa-even-n", "n", b64(new(big.Int).Lsh(big.NewInt(1), 2047).Bytes())),
				with(goodRSA, "kid", "e-even", "e", b64([]byte{1, 0, 0})),
				with(goodRSA, "kid", "e-one", "e", b64([]byte{1})),
				with(goodRSA, "kid", "e-missing", "e", nil),
				with(goodRSA, "kid", "e-too-big", "e", b64([]byte{1, 0, 0, 0, 1})),
				with(goodRSA, "kid", "n-missing", "n", nil),
				map[string]any{"kty": "oct", "k": "c2VjcmV0"},
				with(good, "kid", "key-ops-verify", "key_ops", []string{"verify"}),
				with(goodRSA, "kid", "rsa-8192-bound", "n", b64(modulus(8192).Bytes())),
			),
			wantED: []Key{{ID: "key-ops-verify", Ed25519: ed1}},
			wantRS: []Key{{ID: "rsa-8192-bound", RSA: &rsa.PublicKey{N: modulus(8192), E: rsaPub.E}}},
		},
		{
			name:   "a non-object entry is skipped",
			doc:    []byte(`{"keys":[42,"x",null,` + string(jwksDoc(good)[len(`{"keys":[`):])),
			wantED: []Key{{ID: "ed-1", Ed25519: ed1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ed, rs, err := parse(tt.doc)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if diff := cmp.Diff(tt.wantED, ed, rsaComparer); diff != "" {
				t.Errorf("Ed25519 keys (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantRS, rs, rsaComparer); diff != "" {
				t.Errorf("RSA keys (-want +got):\n%s", diff)
			}
		})
	}
}

// TestParseKeyCaps checks that a document with thousands of keys yields at
// most MaxEd25519Keys Ed25519 and MaxRSAKeys RSA keys, the first usable ones
// in document order, so that a large set cannot multiply the cost of
// checking a forged signature.
func TestParseKeyCaps(t *testing.T) {
	rsaBase := rsaJWK("", &testRSAKey().PublicKey)
	rsaKey := func(kid string) map[string]any { return with(rsaBase, "kid", kid) }
	ids := func(prefix string, n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("%s%d", prefix, i))
		}
		return out
	}
	tests := []struct {
		name           string
		keys           func(i int) map[string]any // the i-th key of 11,000
		wantED, wantRS []string
	}{
		{
			name:   "11,000 Ed25519 keys",
			keys:   func(i int) map[string]any { return okpJWK(fmt.Sprintf("ed%d", i), edPub(byte(i))) },
			wantED: ids("ed", MaxEd25519Keys),
		},
		{
			name:   "11,000 RSA keys",
			keys:   func(i int) map[string]any { return rsaKey(fmt.Sprintf("rsa%d", i)) },
			wantRS: ids("rsa", MaxRSAKeys),
		},
		{
			name: "both kinds interleaved, after unusable ones",
			keys: func(i int) map[string]any {
				switch {
				case i < 100:
					return with(okpJWK("bad", edPub(1)), "use", "enc")
				case i%2 == 0:
					return okpJWK(fmt.Sprintf("ed%d", (i-100)/2), edPub(byte(i)))
				}
				return rsaKey(fmt.Sprintf("rsa%d", (i-100)/2))
			},
			wantED: ids("ed", MaxEd25519Keys),
			wantRS: ids("rsa", MaxRSAKeys),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := make([]map[string]any, 11000)
			for i := range keys {
				keys[i] = tt.keys(i)
			}
			ed, rs, err := parse(jwksDoc(keys...))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			kids := func(ks []Key) []string {
				var out []string
				for _, k := range ks {
					out = append(out, k.ID)
				}
				return out
			}
			if diff := cmp.Diff(tt.wantED, kids(ed)); diff != "" {
				t.Errorf("Ed25519 keys kept (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantRS, kids(rs)); diff != "" {
				t.Errorf("RSA keys kept (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSetEd25519Hint(t *testing.T) {
	s := &Set{Ed25519: make([]Key, 3)}
	check := func(step string, want int) {
		t.Helper()
		if got := s.Ed25519Hint(); got != want {
			t.Errorf("%s: Ed25519Hint = %d, want %d", step, got, want)
		}
	}
	check("no hint yet", 0)
	s.SetEd25519Hint(2)
	check("SetEd25519Hint(2)", 2)
	s.SetEd25519Hint(3)
	check("SetEd25519Hint(3), out of range", 2)
	s.SetEd25519Hint(-1)
	check("SetEd25519Hint(-1)", 2)
	s.SetEd25519Hint(0)
	check("SetEd25519Hint(0)", 0)
	if got := (&Set{}).Ed25519Hint(); got != 0 {
		t.Errorf("empty set: Ed25519Hint = %d, want 0", got)
	}
}

func TestParseErrors(t *testing.T) {
	const secret = "SECRET-BODY-MARKER"
	tests := []struct {
		name string
		doc  string
	}{
		{"empty", ``},
		{"malformed JSON", `{"keys":[` + secret},
		{"not an object", `["` + secret + `"]`},
		{"keys not an array", `{"keys":{"` + secret + `":1}}`},
		{"no keys member", `{"` + secret + `":[]}`},
		{"null", `null`},
		{"empty keys", `{"keys":[]}`},
		{"zero usable keys", string(jwksDoc(map[string]any{"kty": "oct", "k": secret}, with(okpJWK("a", edPub(1)), "use", "enc")))},
		{"only a weak RSA key", string(jwksDoc(with(rsaJWK("r", &testRSAKey().PublicKey), "n", b64(modulus(1024).Bytes()))))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := parse([]byte(tt.doc))
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("parse error = %v, want one wrapping ErrUnavailable", err)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "jwks: ") || strings.Contains(msg, secret) {
				t.Errorf("error %q must start with \"jwks: \" and not quote the body", msg)
			}
		})
	}
}

func TestSetRSAKey(t *testing.T) {
	pub := &testRSAKey().PublicKey
	other := &rsa.PublicKey{N: modulus(2048), E: 65537}
	s := &Set{RSA: []Key{{ID: "a", RSA: pub}, {ID: "", RSA: other}, {ID: "a", RSA: other}}}
	tests := []struct {
		kid    string
		want   *rsa.PublicKey
		wantOK bool
	}{
		{"a", pub, true}, // first of duplicate kids
		{"b", nil, false},
		{"", nil, false}, // a JWT without kid selects nothing
	}
	for _, tt := range tests {
		t.Run("kid="+tt.kid, func(t *testing.T) {
			got, ok := s.RSAKey(tt.kid)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("RSAKey(%q) = %v, %v; want %v, %v", tt.kid, got, ok, tt.want, tt.wantOK)
			}
		})
	}
	if _, ok := (*Set)(nil).RSAKey("a"); ok {
		t.Error("nil Set found a key")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(jwksDoc(okpJWK("ed-1", edPub(1)), okpJWK("ed-2", edPub(2)), okpJWK("ed-3", edPub(3))))
	f.Add(jwksDoc(rsaJWK("rsa", &rsa.PublicKey{N: modulus(2048), E: 65537})))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"===="}]}`))
	f.Add([]byte(`{"keys":[1,null,{}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, data []byte) {
		ed, rs, err := parse(data)
		if err != nil {
			if !errors.Is(err, ErrUnavailable) || ed != nil || rs != nil {
				t.Fatalf("parse = %d, %d keys, %v", len(ed), len(rs), err)
			}
			return
		}
		if len(ed)+len(rs) == 0 {
			t.Fatal("parse succeeded with no keys")
		}
		for _, k := range ed {
			if len(k.Ed25519) != ed25519.PublicKeySize || k.RSA != nil {
				t.Fatalf("bad Ed25519 key %+v", k)
			}
		}
		for _, k := range rs {
			if k.RSA == nil || k.Ed25519 != nil || k.RSA.N.BitLen() < minRSABits || k.RSA.E < 3 || k.RSA.E%2 == 0 {
				t.Fatalf("bad RSA key %+v", k)
			}
		}
	})
}
