package webhooktest_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/genaihook/genaihook/webhook/webhooktest"
)

type senderJWK struct {
	Kty, Crv, Kid, X, N, E, Alg, Use string
}

func parseJWKS(t *testing.T, b []byte) []senderJWK {
	t.Helper()
	var set struct{ Keys []senderJWK }
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatalf("JWKS is not JSON: %v\n%s", err, b)
	}
	return set.Keys
}

func TestKeysJWKS(t *testing.T) {
	keys := senderKeys()
	set := parseJWKS(t, keys.JWKS())
	if len(set) != 4 {
		t.Fatalf("JWKS has %d keys, want 3 Ed25519 and 1 RSA", len(set))
	}
	kids := map[string]bool{}
	for i, k := range set[:3] {
		kids[k.Kid] = true
		if diff := cmp.Diff(senderJWK{Kty: "OKP", Crv: "Ed25519", Kid: k.Kid, X: k.X, Alg: "EdDSA", Use: "sig"}, k); diff != "" || k.Kid == "" {
			t.Errorf("key %d (-want +got):\n%s", i, diff)
		}
		if x, err := base64.RawURLEncoding.DecodeString(k.X); err != nil || len(x) != ed25519.PublicKeySize {
			t.Errorf("key %d: x = %q is not a base64url Ed25519 public key", i, k.X)
		}
	}
	kid, priv := keys.Ed25519Key()
	if newest := set[2]; newest.Kid != kid || newest.X != base64.RawURLEncoding.EncodeToString(priv.Public().(ed25519.PublicKey)) {
		t.Errorf("the last Ed25519 key is %q, want the signing key %q", newest.Kid, kid)
	}
	r := set[3]
	rsaKid, rsaPriv := keys.RSAKey()
	if r.Kty != "RSA" || r.Kid != rsaKid || r.Alg != "RS256" || r.Use != "sig" || r.Crv != "" || r.X != "" {
		t.Errorf("RSA key = %+v", r)
	}
	n, _ := base64.RawURLEncoding.DecodeString(r.N)
	e, _ := base64.RawURLEncoding.DecodeString(r.E)
	if new(big.Int).SetBytes(n).Cmp(rsaPriv.N) != 0 || new(big.Int).SetBytes(e).Int64() != int64(rsaPriv.E) || rsaPriv.N.BitLen() != 2048 {
		t.Error("RSA n, e do not match the 2048-bit signing key")
	}
	kids[r.Kid] = true
	if len(kids) != 4 {
		t.Errorf("kids are not unique: %v", kids)
	}
}

func TestKeysServeHTTP(t *testing.T) {
	keys := senderKeys()
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		w := httptest.NewRecorder()
		keys.ServeHTTP(w, httptest.NewRequest(method, "/.well-known/jwks.json", nil))
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: status %d, Content-Type %q", method, w.Code, w.Header().Get("Content-Type"))
		}
		if got := w.Header().Get("Cache-Control"); got != "public, max-age=300" {
			t.Errorf("%s: Cache-Control %q", method, got)
		}
		if method == http.MethodGet && w.Body.String() != string(keys.JWKS()) {
			t.Errorf("GET body differs from JWKS()")
		}
	}
	w := httptest.NewRecorder()
	keys.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/", nil))
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: status %d, want 405", w.Code)
	}
}

func TestKeysRotate(t *testing.T) {
	k := webhooktest.NewKeys()
	before := parseJWKS(t, k.JWKS())
	k.Rotate()
	after := parseJWKS(t, k.JWKS())
	if len(after) != 4 {
		t.Fatalf("after Rotate the JWKS has %d keys, want 4", len(after))
	}
	// The oldest Ed25519 key goes, the other two stay, a new one signs.
	if diff := cmp.Diff(before[1:3], after[0:2]); diff != "" {
		t.Errorf("kept Ed25519 keys (-before +after):\n%s", diff)
	}
	kid, _ := k.Ed25519Key()
	if after[2].Kid != kid || kid == before[2].Kid || kid == before[0].Kid {
		t.Errorf("new Ed25519 kid %q, signing kid %q", after[2].Kid, kid)
	}
	rsaKid, _ := k.RSAKey()
	if after[3].Kid != rsaKid || rsaKid == before[3].Kid || after[3].N == before[3].N {
		t.Error("the RSA key was not replaced")
	}
}
