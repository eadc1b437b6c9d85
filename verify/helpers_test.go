package verify

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/genaihook/genaihook/internal/jwks/jwkstest"
	"github.com/golang-jwt/jwt/v5"
)

// The public Standard Webhooks test vector, which every Standard Webhooks
// library passes.
const (
	vecSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vecID        = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vecTimestamp = "1614265330"
	vecBody      = `{"test": 2432232314}`
	vecSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

var vecTime = time.Unix(1614265330, 0)

// clock is an injectable clock that tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// headers builds delivery headers; empty values are left out.
func headers(id, ts, sig string) http.Header {
	h := http.Header{}
	if id != "" {
		h.Set("webhook-id", id)
	}
	if ts != "" {
		h.Set("webhook-timestamp", ts)
	}
	if sig != "" {
		h.Set("webhook-signature", sig)
	}
	return h
}

// fingerprint computes Result.KeyID for a secret independently of the code
// under test.
func fingerprint(t testing.TB, secret string) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(secret[len("whsec_"):])
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(key)
	return "sha256:" + hex.EncodeToString(sum[:])[:16]
}

// hmacEntry signs id.ts.body with key the way a Standard Webhooks sender
// does, with ts as raw header text.
func hmacEntry(key []byte, id, ts string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// v1aEntry signs id.ts.body with priv as a dynamic Gemini delivery does.
func v1aEntry(priv ed25519.PrivateKey, id, ts string, body []byte) string {
	msg := append([]byte(id+"."+ts+"."), body...)
	return "v1a," + base64.StdEncoding.EncodeToString(ed25519.Sign(priv, msg))
}

// jwtHashID is the Result.WebhookID of a JWT delivery whose token has no
// jti, computed independently of the code under test.
func jwtHashID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "jwt:" + base64.RawURLEncoding.EncodeToString(sum[:])
}

func newSecret(t testing.TB) string {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// edKey is an Ed25519 key pair with its kid.
type edKey struct {
	kid  string
	pub  ed25519.PublicKey
	priv ed25519.PrivateKey
}

func newEdKey(t testing.TB, kid string) edKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return edKey{kid: kid, pub: pub, priv: priv}
}

func (k edKey) jwk() map[string]any {
	return map[string]any{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": k.kid,
		"x": base64.RawURLEncoding.EncodeToString(k.pub)}
}

// rsaKey is an RSA key pair with its kid.
type rsaKey struct {
	kid  string
	priv *rsa.PrivateKey
}

// RSA key generation is slow, so the test keys are made once.
var rsaPrivateKeys = sync.OnceValues(func() ([2]*rsa.PrivateKey, error) {
	var ks [2]*rsa.PrivateKey
	for i := range ks {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return ks, err
		}
		ks[i] = k
	}
	return ks, nil
})

func newRSAKey(t testing.TB, kid string, n int) rsaKey {
	t.Helper()
	ks, err := rsaPrivateKeys()
	if err != nil {
		t.Fatal(err)
	}
	return rsaKey{kid: kid, priv: ks[n]}
}

func (k rsaKey) jwk() map[string]any {
	return map[string]any{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": k.kid,
		"n": base64.RawURLEncoding.EncodeToString(k.priv.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.priv.E)).Bytes())}
}

// sign returns an RS256 JWT with claims, naming kid.
func (k rsaKey) sign(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = k.kid
	s, err := tok.SignedString(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// jwksServer serves a JWK Set that tests can swap, take down, block, and
// count fetches of.
type jwksServer struct {
	*httptest.Server
	fetches atomic.Int64
	down    atomic.Bool

	mu    sync.Mutex
	keys  []map[string]any
	gate  chan struct{} // when non-nil, requests wait for it to close
	enter chan struct{} // when non-nil, receives one value per request
}

func newJWKSServer(t testing.TB, keys ...map[string]any) *jwksServer {
	t.Helper()
	s := &jwksServer{keys: keys}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(w http.ResponseWriter, r *http.Request) {
	s.fetches.Add(1)
	s.mu.Lock()
	gate, enter := s.gate, s.enter
	doc, _ := json.Marshal(map[string]any{"keys": s.keys})
	s.mu.Unlock()
	if enter != nil {
		enter <- struct{}{}
	}
	if gate != nil {
		<-gate
	}
	if s.down.Load() {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age="+strconv.Itoa(3600))
	w.Write(doc)
}

func (s *jwksServer) setKeys(keys ...map[string]any) {
	s.mu.Lock()
	s.keys = keys
	s.mu.Unlock()
}

func (s *jwksServer) url() string { return s.URL + "/.well-known/jwks.json" }

// countVerifies makes v count the Ed25519 verifications it performs.
func countVerifies(v *Verifier) *atomic.Int64 {
	n := new(atomic.Int64)
	v.onEd25519Verify = func() { n.Add(1) }
	return n
}

// jwksDoc is a JWK Set document holding keys.
func jwksDoc(keys ...map[string]any) []byte {
	doc, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		panic(err)
	}
	return doc
}

// bubbleConfig returns a dynamic Config whose keys tr serves; the URL is
// never dialled.
func bubbleConfig(tr *jwkstest.Transport, now func() time.Time) Config {
	return Config{JWKSURL: "https://keys.example/jwks.json", HTTPClient: tr.Client(), Now: now}
}
