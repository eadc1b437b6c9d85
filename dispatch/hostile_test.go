package dispatch_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/genai"

	"github.com/genaihook/genaihook/dispatch"
	"github.com/genaihook/genaihook/verify"
	"github.com/genaihook/genaihook/webhook"
	"github.com/genaihook/genaihook/webhook/webhooktest"
)

// The hostile-input suite: every request a public webhook URL may receive
// from someone who is not Gemini, or from a Gemini customer who is not us,
// sent at the HTTP level to the receiver as the README wires it:
//
//	d, err := dispatch.New(client, url, dispatch.WithVerifier(v))
//	http.Handle("POST /gemini/webhook", d.Handler())
//
// with a verifier that accepts every scheme at once (a static secret,
// Google's keys for v1a, and the JWT form for this endpoint's audience),
// the most a receiver exposes. The genai client is nil, so that an event
// that reaches Deliver resolves its waits at once: a forgery that got
// through would show as a resolved wait, not only as a status.
//
// Each case builds a fresh receiver, registers a wait, sends one request
// (after a prelude for replays), and checks the status, whether the
// HandlerFunc (Deliver) ran, and whether the wait resolved. The expected
// statuses are those of the webhook package's status table and of verify's
// Verify documentation.

const (
	hostileURL   = "https://receiver.example/gemini/webhook" // the receiver's public URL, and the JWT audience
	hostileJob   = "batches/hostile-job-1"                   // the job every case waits for unless it says otherwise
	hostileOther = "batches/hostile-job-2"                   // a job of ours nobody waits for
	hostileID    = "msg_2f1c9a7e-5b3d-4e8f-9a21-7c6d5e4f3a2b"
	hostileInter = "v1_ChdOdXRoYXJHaG9zdGlsZUludGVyYWN0aW9u" // an interaction id, realistic length
)

// hostileEnv is what every case shares: Google's keys (fakes), served on
// loopback, and a static secret.
type hostileEnv struct {
	keys    *webhooktest.Keys
	jwksURL string
	secret  string
	now     time.Time
	foreign *webhook.Binder // another genaihook receiver's binder: a foreign customer's tokens
}

func newHostileEnv(t *testing.T) *hostileEnv {
	t.Helper()
	keys := webhooktest.NewKeys()
	srv := httptest.NewServer(keys)
	t.Cleanup(srv.Close)
	raw := make([]byte, 32)
	rand.Read(raw)
	foreign, err := webhook.NewBinder(bytes.Repeat([]byte{42}, webhook.MinBinderSecret))
	if err != nil {
		t.Fatal(err)
	}
	return &hostileEnv{
		keys:    keys,
		jwksURL: srv.URL + "/.well-known/jwks.json",
		secret:  "whsec_" + base64.StdEncoding.EncodeToString(raw),
		now:     time.Now().Truncate(time.Second),
		foreign: foreign,
	}
}

// hostileDedup is the handler's default deduplicator, counting the
// deliveries the HandlerFunc (Deliver) processed: the Handler releases an
// id as processed only once it returned nil (an id refused by the binding
// is released unprocessed).
type hostileDedup struct {
	webhook.Deduplicator
	ran atomic.Int64
}

func (s *hostileDedup) Begin(ctx context.Context, id string) (func(bool), bool, error) {
	release, dup, err := s.Deduplicator.Begin(ctx, id)
	if release == nil {
		return release, dup, err
	}
	return func(processed bool) {
		if processed {
			s.ran.Add(1)
		}
		release(processed)
	}, dup, err
}

// hostileRig is one receiver, wired as the README says.
type hostileRig struct {
	env   *hostileEnv
	clock atomic.Pointer[time.Time] // the verifier's clock
	d     *dispatch.Dispatcher
	mux   *http.ServeMux
	h     *webhook.Handler
	dedup *hostileDedup
	md    map[string]any // user_metadata of an interaction this receiver created
}

func newHostileRig(t *testing.T, env *hostileEnv, c *hostileCase) *hostileRig {
	t.Helper()
	r := &hostileRig{env: env}
	r.clock.Store(&env.now)
	jwksURL := env.jwksURL
	if c.jwks != nil {
		srv := httptest.NewServer(c.jwks)
		t.Cleanup(srv.Close)
		jwksURL = srv.URL + "/.well-known/jwks.json"
	}
	if c.jwksDown {
		srv := httptest.NewServer(http.NotFoundHandler())
		jwksURL = srv.URL + "/.well-known/jwks.json"
		srv.Close() // nothing listens there any more
	}
	v, err := verify.New(verify.Config{
		Secrets:  []string{env.secret},
		JWKSURL:  jwksURL,
		Audience: hostileURL,
		Issuer:   webhooktest.GeminiIssuer,
		Now:      func() time.Time { return *r.clock.Load() },
	})
	if err != nil {
		t.Fatal(err)
	}
	r.d, err = dispatch.New(nil, hostileURL, dispatch.WithVerifier(v), dispatch.WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.d.Close() })
	r.dedup = &hostileDedup{Deduplicator: webhook.NewMemoryDeduplicator(webhook.MemoryConfig{})}
	r.h = r.d.Handler(append([]webhook.Option{webhook.WithLogger(nil), webhook.WithDeduplicator(r.dedup)}, c.opts...)...)
	r.mux = http.NewServeMux()
	r.mux.Handle("POST /gemini/webhook", r.h)
	r.md = r.d.InteractionWebhookConfig().UserMetadata
	return r
}

// serve sends req to the receiver as mounted by the README.
func (r *hostileRig) serve(req *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	r.mux.ServeHTTP(w, req)
	return w
}

// hostileDelivery is one request, field by field, so that a case can
// change any of them.
type hostileDelivery struct {
	method string
	id, ts string   // webhook-id and webhook-timestamp; "-" leaves the header out
	sig    []string // webhook-signature values; nil leaves it out
	body   []byte
	header http.Header // further headers
}

func (del hostileDelivery) request() *http.Request {
	method := del.method
	if method == "" {
		method = http.MethodPost
	}
	req := httptest.NewRequest(method, hostileURL, bytes.NewReader(del.body))
	req.Header.Set("Content-Type", "application/json")
	if del.id != "-" {
		req.Header["Webhook-Id"] = []string{del.id}
	}
	if del.ts != "-" {
		req.Header["Webhook-Timestamp"] = []string{del.ts}
	}
	if del.sig != nil {
		req.Header["Webhook-Signature"] = del.sig
	}
	for k, vs := range del.header {
		req.Header[k] = vs
	}
	return req
}

// hostileBody is the body of an event of type typ about job, at the
// environment's time, with user_metadata md when not nil.
func (env *hostileEnv) body(typ webhook.EventType, job string, md map[string]any) []byte {
	p := webhooktest.NewPayload(typ, job)
	p.Timestamp = env.now
	p.UserMetadata = md
	return p.Body()
}

func (env *hostileEnv) ts(d time.Duration) string {
	return strconv.FormatInt(env.now.Add(d).Unix(), 10)
}

// hmacSig signs as a static webhook with secret: "v1,<base64>".
func hmacSig(secret, id, ts string, body []byte) string {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		panic(err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// v1aSig signs as a dynamic webhook with priv: "v1a,<base64>".
func v1aSig(priv ed25519.PrivateKey, id, ts string, body []byte) string {
	return "v1a," + base64.StdEncoding.EncodeToString(ed25519.Sign(priv, append([]byte(id+"."+ts+"."), body...)))
}

// hmacDelivery is a valid static delivery of body.
func (env *hostileEnv) hmacDelivery(body []byte) hostileDelivery {
	ts := env.ts(0)
	return hostileDelivery{id: hostileID, ts: ts, body: body, sig: []string{hmacSig(env.secret, hostileID, ts, body)}}
}

// v1aDelivery is a valid dynamic delivery of body, signed with Google's
// current key.
func (env *hostileEnv) v1aDelivery(body []byte) hostileDelivery {
	ts := env.ts(0)
	_, priv := env.keys.Ed25519Key()
	return hostileDelivery{id: hostileID, ts: ts, body: body, sig: []string{v1aSig(priv, hostileID, ts, body)}}
}

// claims are those of a valid JWT delivery to this receiver.
func (env *hostileEnv) claims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss": webhooktest.GeminiIssuer,
		"aud": hostileURL,
		"iat": env.now.Unix(),
		"exp": env.now.Add(5 * time.Minute).Unix(),
		"jti": "jti-hostile-1",
	}
}

// jwtToken signs claims with method and key under kid ("" for none).
func jwtToken(method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		panic(err)
	}
	return s
}

// rs256 is a genuine RS256 token under Google's current RSA key.
func (env *hostileEnv) rs256(claims jwt.MapClaims) string {
	kid, key := env.keys.RSAKey()
	return jwtToken(jwt.SigningMethodRS256, key, kid, claims)
}

// jwtDelivery is a JWT delivery of body with token.
func (env *hostileEnv) jwtDelivery(token string, body []byte) hostileDelivery {
	return hostileDelivery{id: hostileID, ts: env.ts(0), body: body, sig: []string{token}}
}

// hostileCase is one row of the suite.
type hostileCase struct {
	name     string
	jwks     http.Handler     // the key endpoint; nil serves the environment's keys
	jwksDown bool             // the key endpoint refuses connections
	opts     []webhook.Option // handler options beyond the README's (only a shorter budget)
	wait     string           // the job waited for; "" is hostileJob
	// prelude runs before the wait is registered (replays send the original
	// here); it returns nothing, and fails the test if it cannot set up.
	prelude func(t *testing.T, r *hostileRig)
	send    func(r *hostileRig) hostileDelivery
	raw     func(r *hostileRig) *http.Request // instead of send, for requests a delivery cannot describe
	direct  bool                              // serve the Handler itself rather than the README's mux

	status   int
	ran      bool // the HandlerFunc (Deliver) ran
	resolved bool // the wait resolved
	check    func(t *testing.T, w *httptest.ResponseRecorder)
}

// want sets the outcome c expects: the status, whether the HandlerFunc
// ran, whether the wait resolved.
func (c hostileCase) want(status int, ran, resolved bool) hostileCase {
	c.status, c.ran, c.resolved = status, ran, resolved
	return c
}

func retryAfter30(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	if got := w.Header().Get("Retry-After"); got != "30" {
		t.Errorf("Retry-After = %q, want 30", got)
	}
}

func answered(body string) func(t *testing.T, w *httptest.ResponseRecorder) {
	return func(t *testing.T, w *httptest.ResponseRecorder) {
		t.Helper()
		if got := strings.TrimSpace(w.Body.String()); got != body {
			t.Errorf("body = %q, want %q", got, body)
		}
	}
}

// deliver sends del in a prelude and requires status.
func (r *hostileRig) deliver(t *testing.T, del hostileDelivery, status int) {
	t.Helper()
	if w := r.serve(del.request()); w.Code != status {
		t.Fatalf("prelude: status %d (%s), want %d", w.Code, strings.TrimSpace(w.Body.String()), status)
	}
}

func TestHostileInputs(t *testing.T) {
	env := newHostileEnv(t)
	cases := hostileCases(env)
	t.Logf("%d cases", len(cases))
	if len(cases) < 60 {
		t.Fatalf("only %d cases", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newHostileRig(t, env, &c)
			if c.prelude != nil {
				c.prelude(t, r)
			}
			wait := c.wait
			if wait == "" {
				wait = hostileJob
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			fut := r.d.Watch(ctx, wait)
			select {
			case <-fut.Done():
				ev, err := fut.Result()
				t.Fatalf("wait on %s resolved before the request: %v, %v", wait, ev, err)
			default:
			}
			ran0 := r.dedup.ran.Load()
			var req *http.Request
			if c.raw != nil {
				req = c.raw(r)
			} else {
				req = c.send(r).request()
			}
			var w *httptest.ResponseRecorder
			if c.direct {
				w = httptest.NewRecorder()
				r.h.ServeHTTP(w, req)
			} else {
				w = r.serve(req)
			}
			ran := r.dedup.ran.Load() > ran0
			resolved := false
			select {
			case <-fut.Done():
				resolved = true
			default:
			}
			if w.Code != c.status || ran != c.ran || resolved != c.resolved {
				t.Errorf("status %d (%q), HandlerFunc ran %v, wait resolved %v; want %d, %v, %v",
					w.Code, strings.TrimSpace(w.Body.String()), ran, resolved, c.status, c.ran, c.resolved)
			}
			if c.check != nil {
				c.check(t, w)
			}
		})
	}
}

// hostileCases returns the suite's table.
func hostileCases(env *hostileEnv) []hostileCase {
	var cs []hostileCase
	add := func(c hostileCase) { cs = append(cs, c) }
	jobBody := env.body(webhook.BatchSucceeded, hostileJob, nil)
	_, edPriv := env.keys.Ed25519Key()
	rsaKid, rsaKey := env.keys.RSAKey()
	edKid, _ := env.keys.Ed25519Key()

	// Controls: genuine deliveries of each scheme are accepted and resolve the wait.
	add(hostileCase{name: "control/hmac", send: func(r *hostileRig) hostileDelivery { return env.hmacDelivery(jobBody) }}.want(200, true, true))
	add(hostileCase{name: "control/v1a", send: func(r *hostileRig) hostileDelivery { return env.v1aDelivery(jobBody) }}.want(200, true, true))
	add(hostileCase{name: "control/jwt", send: func(r *hostileRig) hostileDelivery {
		return env.jwtDelivery(env.rs256(env.claims()), jobBody)
	}}.want(200, true, true))
	add(hostileCase{name: "control/jwt-bearer", send: func(r *hostileRig) hostileDelivery {
		return env.jwtDelivery("Bearer "+env.rs256(env.claims()), jobBody)
	}}.want(200, true, true))
	add(hostileCase{name: "control/v1a-token-bound-interaction", wait: hostileInter, send: func(r *hostileRig) hostileDelivery {
		return env.v1aDelivery(env.body(webhook.InteractionCompleted, hostileInter, r.md))
	}}.want(200, true, true))
	add(hostileCase{name: "control/hmac-unawaited-job", send: func(r *hostileRig) hostileDelivery {
		return env.hmacDelivery(env.body(webhook.BatchSucceeded, hostileOther, nil))
	}}.want(200, true, false))

	// The JWT form (verify: RS256 only, kid from the JWKS, exp required,
	// aud and iss checked).
	jwtCase := func(name, token string) {
		add(hostileCase{name: "jwt/" + name, send: func(r *hostileRig) hostileDelivery { return env.jwtDelivery(token, jobBody) }}.want(401, false, false))
	}
	jwtCase("alg-none", jwtToken(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, rsaKid, env.claims()))
	pubDER, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		panic(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	jwtCase("hs256-with-rsa-public-key-pem", jwtToken(jwt.SigningMethodHS256, pubPEM, rsaKid, env.claims()))
	jwtCase("hs256-with-rsa-public-key-der", jwtToken(jwt.SigningMethodHS256, pubDER, rsaKid, env.claims()))
	jwtCase("hs256-with-rsa-modulus", jwtToken(jwt.SigningMethodHS256, rsaKey.N.Bytes(), rsaKid, env.claims()))
	jwtCase("rs384-genuine-key", jwtToken(jwt.SigningMethodRS384, rsaKey, rsaKid, env.claims()))
	jwtCase("eddsa-with-the-v1a-key", jwtToken(jwt.SigningMethodEdDSA, edPriv, edKid, env.claims()))
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	jwtCase("rs256-another-key-same-kid", jwtToken(jwt.SigningMethodRS256, other, rsaKid, env.claims()))
	jwtCase("unknown-kid", jwtToken(jwt.SigningMethodRS256, rsaKey, "no-such-kid", env.claims()))
	jwtCase("empty-kid", jwtToken(jwt.SigningMethodRS256, rsaKey, "", env.claims()))
	jwtCase("10KB-kid", jwtToken(jwt.SigningMethodRS256, rsaKey, strings.Repeat("k", 10<<10), env.claims()))
	jwtCase("kid-of-an-ed25519-key", jwtToken(jwt.SigningMethodRS256, rsaKey, edKid, env.claims()))
	claims := func(edit func(jwt.MapClaims)) jwt.MapClaims { c := env.claims(); edit(c); return c }
	jwtCase("expired", env.rs256(claims(func(c jwt.MapClaims) { c["exp"] = env.now.Add(-time.Hour).Unix() })))
	jwtCase("expired-just-past-leeway", env.rs256(claims(func(c jwt.MapClaims) { c["exp"] = env.now.Add(-31 * time.Second).Unix() })))
	jwtCase("not-yet-valid", env.rs256(claims(func(c jwt.MapClaims) { c["nbf"] = env.now.Add(time.Hour).Unix() })))
	jwtCase("wrong-audience", env.rs256(claims(func(c jwt.MapClaims) { c["aud"] = "https://attacker.example/hook" })))
	jwtCase("audience-prefix", env.rs256(claims(func(c jwt.MapClaims) { c["aud"] = hostileURL + "x" })))
	jwtCase("no-audience", env.rs256(claims(func(c jwt.MapClaims) { delete(c, "aud") })))
	jwtCase("wrong-issuer", env.rs256(claims(func(c jwt.MapClaims) { c["iss"] = "https://accounts.google.com" })))
	jwtCase("missing-exp", env.rs256(claims(func(c jwt.MapClaims) { delete(c, "exp") })))
	jwtCase("exp-as-string", env.rs256(claims(func(c jwt.MapClaims) { c["exp"] = strconv.FormatInt(env.now.Add(time.Hour).Unix(), 10) })))
	genuine := env.rs256(env.claims())
	parts := strings.Split(genuine, ".")
	forgedClaims, _ := json.Marshal(claims(func(c jwt.MapClaims) { c["aud"] = "https://attacker.example/hook" }))
	jwtCase("payload-swapped-signature-kept", parts[0]+"."+base64.RawURLEncoding.EncodeToString(forgedClaims)+"."+parts[2])
	jwtCase("signature-stripped", parts[0]+"."+parts[1]+".")
	jwtCase("alg-None-capitalised", noneToken(`{"alg":"None","kid":"`+rsaKid+`"}`, env.claims()))
	jwtCase("alg-NONE-upper", noneToken(`{"alg":"NONE","kid":"`+rsaKid+`"}`, env.claims()))
	jwtCase("alg-missing", noneToken(`{"kid":"`+rsaKid+`"}`, env.claims()))
	jwtCase("kid-path-traversal", jwtToken(jwt.SigningMethodRS256, other, "../../../../etc/passwd", env.claims()))
	// Keys the token carries or points at must never be used: only the
	// JWKS of the configuration.
	jwtCase("embedded-jwk-attacker-key", func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, env.claims())
		tok.Header["kid"] = "attacker"
		tok.Header["jwk"] = map[string]any{"kty": "RSA", "kid": "attacker",
			"n": base64.RawURLEncoding.EncodeToString(other.N.Bytes()), "e": "AQAB"}
		s, err := tok.SignedString(other)
		if err != nil {
			panic(err)
		}
		return s
	}())
	jwtCase("jku-to-attacker-keys-real-kid", func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, env.claims())
		tok.Header["kid"] = rsaKid
		tok.Header["jku"] = "https://attacker.example/jwks.json"
		tok.Header["x5u"] = "https://attacker.example/cert.pem"
		s, err := tok.SignedString(other)
		if err != nil {
			panic(err)
		}
		return s
	}())
	add(hostileCase{name: "jwt/beside-a-genuine-hmac-entry", send: func(r *hostileRig) hostileDelivery {
		// Two values: a list of entries, where a token is no entry.
		del := env.hmacDelivery(jobBody)
		del.sig = []string{genuineJWT(env), del.sig[0]}
		return del
	}}.want(401, false, false))
	add(hostileCase{name: "jwt/no-jti-swapped-body-replayed-token",
		prelude: func(t *testing.T, r *hostileRig) {
			r.deliver(t, env.jwtDelivery(noJTI(env), env.body(webhook.InteractionCompleted, hostileInter, r.md)), 200)
		},
		send: func(r *hostileRig) hostileDelivery {
			del := env.jwtDelivery(noJTI(env), jobBody)
			del.id = "msg_fresh-id-chosen-by-the-attacker"
			return del
		},
		check: answered("duplicate")}.want(200, false, false))
	add(hostileCase{name: "jwt/exp-within-leeway", send: func(r *hostileRig) hostileDelivery {
		return env.jwtDelivery(env.rs256(claims(func(c jwt.MapClaims) { c["exp"] = env.now.Add(-29 * time.Second).Unix() })), jobBody)
	}}.want(200, true, true))
	add(hostileCase{name: "jwt/webhook-timestamp-past-tolerance", send: func(r *hostileRig) hostileDelivery {
		del := env.jwtDelivery(genuine, jobBody)
		del.ts = env.ts(-301 * time.Second)
		return del
	}}.want(401, false, false))
	// A JWT signs its claims, not the body: a token already accepted, sent
	// again with a body naming the awaited job (and a fresh webhook-id
	// header), is the same delivery (its id comes from the token's jti),
	// so a duplicate that runs nothing.
	swapPrelude := func(t *testing.T, r *hostileRig) {
		r.deliver(t, env.jwtDelivery(genuine, env.body(webhook.InteractionCompleted, hostileInter, r.md)), 200)
	}
	add(hostileCase{name: "jwt/swapped-body-replayed-token", prelude: swapPrelude, send: func(r *hostileRig) hostileDelivery {
		del := env.jwtDelivery(genuine, jobBody)
		del.id = "msg_fresh-id-chosen-by-the-attacker"
		return del
	}, check: answered("duplicate")}.want(200, false, false))
	add(hostileCase{name: "jwt/swapped-body-foreign-audience", send: func(r *hostileRig) hostileDelivery {
		return env.jwtDelivery(env.rs256(claims(func(c jwt.MapClaims) { c["aud"] = "https://foreign.example/hook" })), jobBody)
	}}.want(401, false, false))

	// Every single-byte change of a valid HMAC and a valid v1a delivery:
	// body, webhook-id, webhook-timestamp and signature, each byte XORed
	// with 1 (digits stay digits, letters letters). None verifies.
	flip := func(s string, i int) string { b := []byte(s); b[i] ^= 1; return string(b) }
	for _, scheme := range []string{"hmac", "v1a"} {
		valid := env.hmacDelivery
		if scheme == "v1a" {
			valid = env.v1aDelivery
		}
		base := valid(jobBody)
		for i := range base.body {
			add(hostileCase{name: fmt.Sprintf("byte/%s/body/%d", scheme, i), send: func(r *hostileRig) hostileDelivery {
				del := valid(jobBody)
				del.body = []byte(flip(string(del.body), i))
				return del
			}}.want(401, false, false))
		}
		for i := range base.id {
			add(hostileCase{name: fmt.Sprintf("byte/%s/webhook-id/%d", scheme, i), send: func(r *hostileRig) hostileDelivery {
				del := valid(jobBody)
				del.id = flip(del.id, i)
				return del
			}}.want(401, false, false))
		}
		for i := range base.ts {
			add(hostileCase{name: fmt.Sprintf("byte/%s/timestamp/%d", scheme, i), send: func(r *hostileRig) hostileDelivery {
				del := valid(jobBody)
				del.ts = flip(del.ts, i)
				return del
			}}.want(401, false, false))
		}
		for i := range base.sig[0] {
			add(hostileCase{name: fmt.Sprintf("byte/%s/signature/%d", scheme, i), send: func(r *hostileRig) hostileDelivery {
				del := valid(jobBody)
				del.sig = []string{flip(del.sig[0], i)}
				return del
			}}.want(401, false, false))
		}
	}

	// The signature header's shape.
	sigCase := func(name string, sig func(del hostileDelivery) []string, status int, ran, resolved bool) {
		add(hostileCase{name: "header/" + name, send: func(r *hostileRig) hostileDelivery {
			del := env.hmacDelivery(jobBody)
			del.sig = sig(del)
			return del
		}}.want(status, ran, resolved))
	}
	hmacB64 := func(del hostileDelivery) string { return strings.TrimPrefix(del.sig[0], "v1,") }
	v1aOf := func(del hostileDelivery) string { return v1aSig(edPriv, del.id, del.ts, del.body) }
	sigCase("another-secret", func(del hostileDelivery) []string {
		raw := make([]byte, 32)
		rand.Read(raw)
		return []string{hmacSig("whsec_"+base64.StdEncoding.EncodeToString(raw), del.id, del.ts, del.body)}
	}, 401, false, false)
	sigCase("hmac-labelled-v1a", func(del hostileDelivery) []string { return []string{"v1a," + hmacB64(del)} }, 401, false, false)
	sigCase("hmac-labelled-v2", func(del hostileDelivery) []string { return []string{"v2," + hmacB64(del)} }, 401, false, false)
	sigCase("only-v1a-and-v2-entries", func(del hostileDelivery) []string {
		return []string{"v1a," + base64.StdEncoding.EncodeToString(make([]byte, 64)) + " v2," + hmacB64(del)}
	}, 401, false, false)
	sigCase("ed25519-labelled-v1", func(del hostileDelivery) []string { return []string{"v1," + strings.TrimPrefix(v1aOf(del), "v1a,")} }, 401, false, false)
	sigCase("hmac-truncated-base64", func(del hostileDelivery) []string { return []string{del.sig[0][:len(del.sig[0])-4]} }, 401, false, false)
	sigCase("hmac-lowercased", func(del hostileDelivery) []string { return []string{strings.ToLower(del.sig[0])} }, 401, false, false)
	sigCase("empty-value", func(hostileDelivery) []string { return []string{""} }, 401, false, false)
	sigCase("blank-value", func(hostileDelivery) []string { return []string{"   "} }, 401, false, false)
	sigCase("empty-entry-v1-comma", func(hostileDelivery) []string { return []string{"v1,"} }, 401, false, false)
	sigCase("empty-entry-comma", func(hostileDelivery) []string { return []string{","} }, 401, false, false)
	sigCase("empty-entries-only", func(hostileDelivery) []string { return []string{"v1, v1a, v1,"} }, 401, false, false)
	sigCase("empty-entry-before-genuine", func(del hostileDelivery) []string { return []string{"v1, " + del.sig[0]} }, 200, true, true)
	sigCase("10000-entries", func(hostileDelivery) []string {
		return []string{strings.TrimSpace(strings.Repeat("v1,"+base64.StdEncoding.EncodeToString(make([]byte, 32))+" ", 10000))}
	}, 401, false, false)
	sigCase("10000-entries-genuine-last", func(del hostileDelivery) []string {
		return []string{strings.Repeat("v1,x ", 9999) + del.sig[0]}
	}, 401, false, false)
	sigCase("10000-header-values", func(del hostileDelivery) []string {
		vs := make([]string, 10000)
		for i := range vs {
			vs[i] = "v1,x"
		}
		return append(vs, del.sig[0])
	}, 401, false, false)
	sigCase("17-entries-genuine-last", func(del hostileDelivery) []string {
		return []string{strings.Repeat("v1,eA== ", verify.MaxSignatureEntries) + del.sig[0]}
	}, 401, false, false)
	sigCase("comma-split-by-a-proxy", func(del hostileDelivery) []string { return []string{"v1", hmacB64(del)} }, 200, true, true)
	sigCase("two-values-genuine-second", func(del hostileDelivery) []string { return []string{"v1,eA==", del.sig[0]} }, 200, true, true)
	sigCase("jwt-shaped-garbage", func(hostileDelivery) []string { return []string{"a.b.c"} }, 401, false, false)
	add(hostileCase{name: "header/v1a-comma-split-by-a-proxy", send: func(r *hostileRig) hostileDelivery {
		del := env.v1aDelivery(jobBody)
		del.sig = []string{"v1a", strings.TrimPrefix(del.sig[0], "v1a,")}
		return del
	}}.want(200, true, true))
	add(hostileCase{name: "header/v1a-three-entries", send: func(r *hostileRig) hostileDelivery {
		del := env.v1aDelivery(jobBody)
		del.sig = []string{del.sig[0] + " " + del.sig[0] + " " + del.sig[0]}
		return del
	}}.want(401, false, false))
	add(hostileCase{name: "header/v1a-key-not-in-jwks", send: func(r *hostileRig) hostileDelivery {
		del := env.v1aDelivery(jobBody)
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		del.sig = []string{v1aSig(priv, del.id, del.ts, del.body)}
		return del
	}}.want(401, false, false))
	for _, h := range []string{"id", "ts", "sig"} {
		add(hostileCase{name: "header/missing-" + h, send: func(r *hostileRig) hostileDelivery {
			del := env.hmacDelivery(jobBody)
			switch h {
			case "id":
				del.id = "-"
			case "ts":
				del.ts = "-"
			case "sig":
				del.sig = nil
			}
			return del
		}}.want(401, false, false))
	}
	idCase := func(name, id string, status int, ran, resolved bool) {
		add(hostileCase{name: "header/webhook-id-" + name, send: func(r *hostileRig) hostileDelivery {
			del := env.hmacDelivery(jobBody)
			del.id = id
			del.sig = []string{hmacSig(env.secret, id, del.ts, del.body)}
			return del
		}}.want(status, ran, resolved))
	}
	idCase("at-the-cap", strings.Repeat("i", verify.MaxWebhookIDLen), 200, true, true)
	idCase("over-the-cap", strings.Repeat("i", verify.MaxWebhookIDLen+1), 401, false, false)
	idCase("10KB", strings.Repeat("i", 10<<10), 401, false, false)

	// Timestamps, each correctly signed over the text sent.
	tsCase := func(name, ts string, status int, ran, resolved bool) {
		for _, scheme := range []string{"hmac", "v1a"} {
			add(hostileCase{name: "timestamp/" + scheme + "/" + name, send: func(r *hostileRig) hostileDelivery {
				del := env.hmacDelivery(jobBody)
				del.ts = ts
				if scheme == "v1a" {
					del.sig = []string{v1aSig(edPriv, del.id, ts, del.body)}
				} else {
					del.sig = []string{hmacSig(env.secret, del.id, ts, del.body)}
				}
				return del
			}}.want(status, ran, resolved))
		}
	}
	tsCase("at-tolerance-past", env.ts(-verify.DefaultTolerance), 200, true, true)
	tsCase("at-tolerance-future", env.ts(verify.DefaultTolerance), 200, true, true)
	tsCase("just-past-tolerance-past", env.ts(-verify.DefaultTolerance-time.Second), 401, false, false)
	tsCase("just-past-tolerance-future", env.ts(verify.DefaultTolerance+time.Second), 401, false, false)
	tsCase("non-numeric", "yesterday", 401, false, false)
	tsCase("rfc3339", env.now.Format(time.RFC3339), 401, false, false)
	tsCase("negative", "-"+env.ts(0), 401, false, false)
	tsCase("minus-one", "-1", 401, false, false)
	tsCase("fractional", env.ts(0)+".5", 401, false, false)
	tsCase("milliseconds", strconv.FormatInt(env.now.UnixMilli(), 10), 401, false, false)
	tsCase("overflowing-int64", "99999999999999999999", 401, false, false)
	tsCase("max-int64", "9223372036854775807", 401, false, false)
	tsCase("plus-sign", "+"+env.ts(0), 401, false, false)
	tsCase("leading-space", " "+env.ts(0), 401, false, false)
	tsCase("empty", "", 401, false, false)

	// Replays.
	add(hostileCase{name: "replay/hmac-accepted-delivery", wait: hostileOther,
		prelude: func(t *testing.T, r *hostileRig) { r.deliver(t, env.hmacDelivery(jobBody), 200) },
		send:    func(r *hostileRig) hostileDelivery { return env.hmacDelivery(jobBody) },
		check:   answered("duplicate")}.want(200, false, false))
	add(hostileCase{name: "replay/v1a-accepted-delivery",
		prelude: func(t *testing.T, r *hostileRig) {
			r.deliver(t, env.v1aDelivery(env.body(webhook.InteractionCompleted, hostileInter, r.md)), 200)
		},
		send: func(r *hostileRig) hostileDelivery {
			return env.v1aDelivery(env.body(webhook.InteractionCompleted, hostileInter, r.md))
		},
		check: answered("duplicate")}.want(200, false, false))
	// A pause goes to one wait only: once a wait returned it, replaying its
	// delivery must not hand it to the next wait.
	pause := func(r *hostileRig) hostileDelivery {
		return env.v1aDelivery(env.body(webhook.InteractionRequiresAction, hostileInter, r.md))
	}
	add(hostileCase{name: "replay/requires-action-already-consumed", wait: hostileInter,
		prelude: func(t *testing.T, r *hostileRig) {
			r.deliver(t, pause(r), 200)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := r.d.Wait(ctx, hostileInter); err != nil {
				t.Fatalf("prelude: Wait = %v", err)
			}
		},
		send:  pause,
		check: answered("duplicate")}.want(200, false, false))
	add(hostileCase{name: "replay/gemini-style-retry-resigned", wait: hostileOther,
		prelude: func(t *testing.T, r *hostileRig) { r.deliver(t, env.hmacDelivery(jobBody), 200) },
		send: func(r *hostileRig) hostileDelivery {
			del := env.hmacDelivery(jobBody)
			del.ts = env.ts(time.Minute)
			del.sig = []string{hmacSig(env.secret, del.id, del.ts, del.body)}
			return del
		},
		check: answered("duplicate")}.want(200, false, false))
	add(hostileCase{name: "replay/after-the-tolerance", wait: hostileOther,
		prelude: func(t *testing.T, r *hostileRig) {
			r.deliver(t, env.hmacDelivery(jobBody), 200)
			later := env.now.Add(verify.DefaultTolerance + time.Second)
			r.clock.Store(&later)
		},
		send: func(r *hostileRig) hostileDelivery { return env.hmacDelivery(jobBody) }}.want(401, false, false))

	// Gemini retries a delivery whose answer was lost. A v1a delivery bound
	// because its job was awaited is, once processed, a duplicate like any
	// other: the status table answers 200 "duplicate" for a webhook-id
	// already processed, and Gemini's protocol wants 2xx for duplicates
	// (anything else is retried for 24 hours and counts towards switching
	// the endpoint off).
	add(hostileCase{name: "replay/v1a-bound-by-awaited-job-after-it-resolved", wait: hostileOther,
		prelude: func(t *testing.T, r *hostileRig) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			fut := r.d.Watch(ctx, hostileJob)
			r.deliver(t, env.v1aDelivery(jobBody), 200)
			<-fut.Done()
		},
		send:  func(r *hostileRig) hostileDelivery { return env.v1aDelivery(jobBody) },
		check: answered("duplicate")}.want(200, false, false))
	add(hostileCase{name: "header/two-webhook-ids-signed-first", send: func(r *hostileRig) hostileDelivery {
		del := env.hmacDelivery(jobBody)
		del.header = http.Header{"Webhook-Id": {del.id, "msg_second"}}
		return del
	}}.want(200, true, true))
	add(hostileCase{name: "header/two-webhook-ids-signed-second", send: func(r *hostileRig) hostileDelivery {
		del := env.hmacDelivery(jobBody)
		del.header = http.Header{"Webhook-Id": {"msg_first", del.id}}
		return del
	}}.want(401, false, false))

	// A foreign customer's deliveries: validly signed by Google, about
	// jobs that are not ours.
	add(hostileCase{name: "foreign/v1a-unawaited-batch", send: func(r *hostileRig) hostileDelivery {
		return env.v1aDelivery(env.body(webhook.BatchSucceeded, "batches/foreign-customer-job", nil))
	}}.want(403, false, false))
	add(hostileCase{name: "foreign/v1a-interaction-no-token", send: func(r *hostileRig) hostileDelivery {
		return env.v1aDelivery(env.body(webhook.InteractionCompleted, "v1_ForeignCustomerInteraction0000000000", nil))
	}}.want(403, false, false))
	add(hostileCase{name: "foreign/v1a-interaction-foreign-receivers-token", send: func(r *hostileRig) hostileDelivery {
		return env.v1aDelivery(env.body(webhook.InteractionCompleted, "v1_ForeignCustomerInteraction0000000000", env.foreign.Metadata("gh_foreign")))
	}}.want(403, false, false))
	add(hostileCase{name: "foreign/v1a-our-token-key-swapped", send: func(r *hostileRig) hostileDelivery {
		md := map[string]any{webhook.MetadataKey: "gh_another_key", webhook.MetadataToken: r.md[webhook.MetadataToken]}
		return env.v1aDelivery(env.body(webhook.InteractionCompleted, "v1_ForeignCustomerInteraction0000000000", md))
	}}.want(403, false, false))
	add(hostileCase{name: "foreign/v1a-our-job-id-as-interaction", send: func(r *hostileRig) hostileDelivery {
		// The awaited batch's opaque id, under an interaction type: another family.
		return env.v1aDelivery(env.body(webhook.InteractionCompleted, strings.TrimPrefix(hostileJob, "batches/"), nil))
	}}.want(403, false, false))
	add(hostileCase{name: "foreign/v1a-short-video-id", send: func(r *hostileRig) hostileDelivery {
		return env.v1aDelivery(env.body(webhook.VideoGenerated, "operations/foreign-op", nil))
	}}.want(403, false, false))
	add(hostileCase{name: "foreign/jwt-for-their-endpoint", send: func(r *hostileRig) hostileDelivery {
		return env.jwtDelivery(env.rs256(claims(func(c jwt.MapClaims) { c["aud"] = "https://foreign.example/hook" })),
			env.body(webhook.BatchSucceeded, "batches/foreign-customer-job", nil))
	}}.want(401, false, false))

	// Bodies, validly signed (static, so no binding is needed): whatever
	// their bytes, they reach Parse only within the cap.
	bodyCase := func(name string, body []byte, status int, ran, resolved bool) {
		add(hostileCase{name: "body/" + name, send: func(r *hostileRig) hostileDelivery { return env.hmacDelivery(body) }}.want(status, ran, resolved))
	}
	padded := func(n int) []byte { // a valid event about hostileJob of exactly n bytes
		b := env.body(webhook.BatchSucceeded, hostileJob, nil)
		prefix := `{"pad":"`
		fill := n - len(b) - len(prefix) - len(`",`) + 1
		return []byte(prefix + strings.Repeat("x", fill) + `",` + string(b[1:]))
	}
	bodyCase("at-the-cap", padded(webhook.DefaultMaxBodyBytes), 200, true, true)
	bodyCase("cap-plus-one", padded(webhook.DefaultMaxBodyBytes+1), 413, false, false)
	bodyCase("1MiB", padded(1<<20), 413, false, false)
	deep := func(n int) []byte {
		b := env.body(webhook.BatchSucceeded, hostileJob, nil)
		return []byte(`{"nest":` + strings.Repeat("[", n) + strings.Repeat("]", n) + `,` + string(b[1:]))
	}
	bodyCase("nesting-100000-deep", deep(100000), 413, false, false)
	bodyCase("nesting-30000-deep-within-cap", deep(30000), 400, false, false)
	// Invalid UTF-8 (RFC 8259 §8.1 requires UTF-8): Parse documents no
	// refusal, and decodes it as encoding/json does, each bad byte becoming
	// U+FFFD. Signed, it is accepted; an id so mangled names no job of ours.
	bodyCase("invalid-utf8-in-unknown-field", []byte("{\"note\":\"\xff\xfe\","+string(jobBody[1:])), 200, true, true)
	bodyCase("invalid-utf8-in-id", []byte(strings.Replace(string(jobBody), hostileJob, hostileJob+"\xff", 1)), 200, true, false)
	bodyCase("invalid-utf8-in-type", []byte(strings.Replace(string(jobBody), `"batch.succeeded"`, "\"batch.succeeded\xff\"", 1)), 200, true, false)
	bodyCase("huge-integer-error-code", []byte(strings.Replace(string(env.body(webhook.BatchFailed, hostileJob, nil)), `"data":{`, `"data":{"error_code":`+strings.Repeat("9", 400)+`,`, 1)), 200, true, true)
	bodyCase("huge-exponent-unknown-field", []byte(`{"n":1e999999999,`+string(jobBody[1:])), 200, true, true)
	bodyCase("huge-number-as-timestamp", []byte(strings.Replace(string(jobBody), `"timestamp":"`+env.now.UTC().Format(time.RFC3339)+`"`, `"timestamp":1e999`, 1)), 400, false, false)
	bodyCase("duplicate-type", []byte(strings.Replace(string(jobBody), `{"type":"batch.succeeded"`, `{"type":"batch.succeeded","type":"batch.failed"`, 1)), 400, false, false)
	bodyCase("duplicate-data-id", []byte(strings.Replace(string(jobBody), `"data":{`, `"data":{"id":"batches/hostile-job-3",`, 1)), 400, false, false)
	bodyCase("data-and-DATA", []byte(strings.Replace(string(jobBody), `"data":{`, `"DATA":{"id":"batches/hostile-job-3"},"data":{`, 1)), 400, false, false)
	bodyCase("duplicate-key-in-unknown-object", []byte(`{"x":{"a":1,"a":2},`+string(jobBody[1:])), 400, false, false)
	bodyCase("empty", []byte{}, 400, false, false)
	bodyCase("json-array", []byte(`[`+string(jobBody)+`]`), 400, false, false)
	bodyCase("json-null", []byte(`null`), 400, false, false)
	bodyCase("trailing-garbage", append(append([]byte{}, jobBody...), `{}`...), 400, false, false)
	bodyCase("known-type-data-not-object", []byte(strings.Replace(string(jobBody), `"data":{"id":"`+hostileJob+`"}`, `"data":"`+hostileJob+`"`, 1)), 400, false, false)
	bodyCase("known-type-no-data-id", []byte(strings.Replace(string(jobBody), `"data":{"id":"`+hostileJob+`"}`, `"data":{}`, 1)), 400, false, false)
	bodyCase("type-not-a-string", []byte(strings.Replace(string(jobBody), `"type":"batch.succeeded"`, `"type":7`, 1)), 400, false, false)
	bodyCase("unknown-type-no-data", []byte(`{"type":"batch.progress","version":"v1","timestamp":"`+env.now.UTC().Format(time.RFC3339)+`"}`), 200, true, false)
	add(hostileCase{name: "body/cap-plus-one-no-content-length", raw: func(r *hostileRig) *http.Request {
		req := env.hmacDelivery(padded(webhook.DefaultMaxBodyBytes + 1)).request()
		req.ContentLength = -1 // chunked: the cap is found by reading
		return req
	}}.want(413, false, false))
	add(hostileCase{name: "body/content-length-understated", raw: func(r *hostileRig) *http.Request {
		req := env.hmacDelivery(padded(webhook.DefaultMaxBodyBytes + 1)).request()
		req.ContentLength = 10
		return req
	}}.want(413, false, false))
	bodyCase("no-type", []byte(strings.Replace(string(jobBody), `"type":"batch.succeeded",`, ``, 1)), 400, false, false)

	// Methods and encodings.
	add(hostileCase{name: "method/GET-on-the-mux", raw: func(r *hostileRig) *http.Request {
		del := env.hmacDelivery(jobBody)
		del.method = http.MethodGet
		return del.request()
	}, check: func(t *testing.T, w *httptest.ResponseRecorder) {
		if got := w.Header().Get("Allow"); !strings.Contains(got, "POST") {
			t.Errorf("Allow = %q", got)
		}
	}}.want(405, false, false))
	for _, m := range []string{http.MethodPut, http.MethodGet, http.MethodDelete, "PROPFIND"} {
		add(hostileCase{name: "method/" + m + "-on-the-handler", direct: true, raw: func(r *hostileRig) *http.Request {
			del := env.hmacDelivery(jobBody)
			del.method = m
			return del.request()
		}, check: func(t *testing.T, w *httptest.ResponseRecorder) {
			if got := w.Header().Get("Allow"); got != "POST" {
				t.Errorf("Allow = %q, want POST", got)
			}
		}}.want(405, false, false))
	}
	gz := func(b []byte) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(b)
		zw.Close()
		return buf.Bytes()
	}
	add(hostileCase{name: "encoding/gzip-signed-over-plain", send: func(r *hostileRig) hostileDelivery {
		del := env.hmacDelivery(jobBody)
		del.body = gz(jobBody)
		del.header = http.Header{"Content-Encoding": {"gzip"}}
		return del
	}}.want(401, false, false))
	add(hostileCase{name: "encoding/gzip-signed-over-compressed", send: func(r *hostileRig) hostileDelivery {
		del := env.hmacDelivery(gz(jobBody))
		del.header = http.Header{"Content-Encoding": {"gzip"}}
		return del
	}}.want(400, false, false))
	add(hostileCase{name: "encoding/br-label-on-plain-body", send: func(r *hostileRig) hostileDelivery {
		// The handler authenticates and parses the bytes as received; a
		// label it does not decode changes nothing.
		del := env.hmacDelivery(jobBody)
		del.header = http.Header{"Content-Encoding": {"br"}}
		return del
	}}.want(200, true, true))

	// The key endpoint (dynamic deliveries only; a static one needs no key).
	v1a := func(r *hostileRig) hostileDelivery { return env.v1aDelivery(jobBody) }
	add(hostileCase{name: "keys/down-v1a", jwksDown: true, send: v1a, check: retryAfter30}.want(503, false, false))
	add(hostileCase{name: "keys/down-jwt", jwksDown: true, send: func(r *hostileRig) hostileDelivery {
		return env.jwtDelivery(genuine, jobBody)
	}, check: retryAfter30}.want(503, false, false))
	add(hostileCase{name: "keys/down-static-unaffected", jwksDown: true, send: func(r *hostileRig) hostileDelivery {
		return env.hmacDelivery(jobBody)
	}}.want(200, true, true))
	add(hostileCase{name: "keys/down-forged-static-still-401", jwksDown: true, send: func(r *hostileRig) hostileDelivery {
		del := env.hmacDelivery(jobBody)
		del.sig = []string{flip(del.sig[0], 5)}
		return del
	}}.want(401, false, false))
	add(hostileCase{name: "keys/500", jwks: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusInternalServerError)
	}), send: v1a, check: retryAfter30}.want(503, false, false))
	add(hostileCase{name: "keys/html", jwks: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write([]byte("<html>captive portal</html>"))
	}), send: v1a, check: retryAfter30}.want(503, false, false))
	add(hostileCase{name: "keys/oversized-document", jwks: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(`{"keys":[],"pad":"` + strings.Repeat("x", 2<<20) + `"}`))
	}), send: v1a, check: retryAfter30}.want(503, false, false))
	// A slow endpoint: it answers only once the test ends; the handler's
	// budget (shortened here so that the suite stays fast) runs out first.
	slowDone := make(chan struct{})
	var slowOnce sync.Once
	add(hostileCase{name: "keys/slow", opts: []webhook.Option{webhook.WithTimeout(100 * time.Millisecond)},
		jwks: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			select {
			case <-req.Context().Done():
			case <-slowDone:
			}
		}),
		prelude: func(t *testing.T, r *hostileRig) {
			t.Cleanup(func() { slowOnce.Do(func() { close(slowDone) }) })
		},
		send: v1a}.want(503, false, false))
	add(hostileCase{name: "keys/redirect-to-plain-http", jwks: http.RedirectHandler("http://keys.example/jwks.json", http.StatusFound),
		send: v1a, check: retryAfter30}.want(503, false, false))
	add(hostileCase{name: "keys/redirect-loop", jwks: http.RedirectHandler("/.well-known/jwks.json", http.StatusFound),
		send: v1a, check: retryAfter30}.want(503, false, false))
	add(hostileCase{name: "keys/rsa-key-labelled-okp", jwks: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		// The v1a key's kid and x, but as an RSA key: key types never cross.
		var doc struct{ Keys []map[string]any }
		json.Unmarshal(env.keys.JWKS(), &doc)
		for _, k := range doc.Keys {
			if k["kty"] == "OKP" {
				k["kty"], k["n"], k["e"] = "RSA", k["x"], "AQAB"
				delete(k, "crv")
			}
		}
		json.NewEncoder(w).Encode(doc)
	}), send: v1a}.want(401, false, false)) // no Ed25519 key in a set fetched for this very call: a no-match, not "undecided"
	manyKeys := func(realFirst bool) http.Handler {
		var real []any
		if err := json.Unmarshal(env.keys.JWKS(), &struct{ Keys *[]any }{&real}); err != nil {
			panic(err)
		}
		var keys []any
		if realFirst {
			keys = append(keys, real...)
		}
		x := make([]byte, ed25519.PublicKeySize)
		for i := range 10000 {
			rand.Read(x)
			keys = append(keys, map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": "k" + strconv.Itoa(i), "x": base64.RawURLEncoding.EncodeToString(x)})
		}
		if !realFirst {
			keys = append(keys, real...)
		}
		doc, err := json.Marshal(map[string]any{"keys": keys})
		if err != nil {
			panic(err)
		}
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(doc)
		})
	}
	add(hostileCase{name: "keys/10000-genuine-first", jwks: manyKeys(true), send: v1a}.want(200, true, true))
	add(hostileCase{name: "keys/10000-genuine-last", jwks: manyKeys(false), send: v1a, check: retryAfter30}.want(503, false, false))
	// Ed25519 and RSA keys are capped apart: the RSA key, the first of its
	// kind, is kept whatever precedes it.
	add(hostileCase{name: "keys/10000-genuine-last-jwt", jwks: manyKeys(false), send: func(r *hostileRig) hostileDelivery {
		return env.jwtDelivery(genuine, jobBody)
	}}.want(200, true, true))

	return cs
}

// noneToken is an unsigned token with the given JOSE header.
func noneToken(header string, claims jwt.MapClaims) string {
	body, err := json.Marshal(claims)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString(body) + "."
}

func genuineJWT(env *hostileEnv) string { return env.rs256(env.claims()) }

// noJTI is a genuine token without jti: its delivery's id is the token's hash.
func noJTI(env *hostileEnv) string {
	c := env.claims()
	delete(c, "jti")
	return env.rs256(c)
}

// TestHostileForgeryFloodFetchesKeysBounded sends a flood of forged
// dynamic deliveries (v1a under unknown keys, JWTs naming unknown kids):
// each is refused, none runs the HandlerFunc or resolves the wait, and
// together they cost at most the first fetch of the keys and one refetch
// (verify: at most one refetch per JWKSRefetchInterval, whatever the
// traffic; the verifier's clock stands still here).
func TestHostileForgeryFloodFetchesKeysBounded(t *testing.T) {
	env := newHostileEnv(t)
	var fetches atomic.Int64
	c := hostileCase{jwks: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		fetches.Add(1)
		env.keys.ServeHTTP(w, req)
	})}
	r := newHostileRig(t, env, &c)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fut := r.d.Watch(ctx, hostileJob)
	body := env.body(webhook.BatchSucceeded, hostileJob, nil)
	_, rsaKey := env.keys.RSAKey()
	statuses := map[int]int{}
	for i := range 200 {
		var del hostileDelivery
		if i%2 == 0 {
			del = env.v1aDelivery(body)
			_, priv, _ := ed25519.GenerateKey(rand.Reader)
			del.sig = []string{v1aSig(priv, del.id, del.ts, del.body)}
		} else {
			del = env.jwtDelivery(jwtToken(jwt.SigningMethodRS256, rsaKey, "unknown-"+strconv.Itoa(i), env.claims()), body)
		}
		statuses[r.serve(del.request()).Code]++
	}
	if statuses[401] != 200 {
		t.Errorf("statuses %v, want 200 × 401", statuses)
	}
	if n := r.dedup.ran.Load(); n != 0 {
		t.Errorf("HandlerFunc ran %d times", n)
	}
	select {
	case <-fut.Done():
		t.Error("a forgery resolved the wait")
	default:
	}
	if n := fetches.Load(); n > 2 {
		t.Errorf("%d fetches of the keys for 200 forgeries, want at most 2", n)
	}
	// The genuine delivery still gets through.
	if w := r.serve(env.v1aDelivery(body).request()); w.Code != 200 {
		t.Errorf("genuine delivery after the flood: status %d", w.Code)
	}
}

// TestHostileRetryAfterWaitEndsWithClient is the retry case of the table
// (replay/v1a-bound-by-awaited-job-after-it-resolved) with a genai client,
// as the README wires the receiver, for a video event whose data.id has
// the short form "operations/…" (PROTOCOL: the form of data.id is not
// settled), which the binding cannot read back. Gemini retries a delivery
// whose answer was lost; once the wait that bound it has ended, its retry
// must still be answered 200 "duplicate" (the status table's row for a
// webhook-id already processed), not 403, which Gemini retries for 24
// hours and counts towards switching the endpoint off.
func TestHostileRetryAfterWaitEndsWithClient(t *testing.T) {
	env := newHostileEnv(t)
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error":{"code":503,"message":"unavailable","status":"UNAVAILABLE"}}`, http.StatusServiceUnavailable)
	}))
	t.Cleanup(api.Close)
	client, err := genai.NewClient(context.Background(), &genai.ClientConfig{
		Backend: genai.BackendGeminiAPI, APIKey: "test", HTTPOptions: genai.HTTPOptions{BaseURL: api.URL},
	})
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(verify.Config{JWKSURL: env.jwksURL, Now: func() time.Time { return env.now }})
	if err != nil {
		t.Fatal(err)
	}
	d, err := dispatch.New(client, hostileURL, dispatch.WithVerifier(v), dispatch.WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	mux := http.NewServeMux()
	mux.Handle("POST /gemini/webhook", d.Handler(webhook.WithLogger(nil)))
	const op = "models/veo-3.0-generate-001/operations/hostile-op-1"
	body := env.body(webhook.VideoGenerated, "operations/hostile-op-1", nil)
	send := func() *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, env.v1aDelivery(body).request())
		return w
	}
	ctx, cancel := context.WithCancel(context.Background())
	fut := d.Watch(ctx, op)
	if w := send(); w.Code != 200 {
		t.Fatalf("first delivery, awaited: status %d (%s)", w.Code, strings.TrimSpace(w.Body.String()))
	}
	cancel() // the wait ends (here cancelled; a confirmed outcome ends it the same way)
	<-fut.Done()
	if w := send(); w.Code != 200 {
		t.Errorf("Gemini's retry of the processed delivery: status %d (%s), want 200 duplicate",
			w.Code, strings.TrimSpace(w.Body.String()))
	}
}
