package webhooktest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	crand "crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/genaihook/genaihook/verify"
)

// GeminiIssuer is the iss claim of the JWTs a Sender makes with SchemeJWT.
// Google has not documented the claims; this is the API's origin.
const GeminiIssuer = "https://generativelanguage.googleapis.com"

// ServeURL is the request URL of deliveries made by Sender.Serve, and so
// the JWT audience there when Sender.Audience is empty.
const ServeURL = "https://example.com/webhook"

// GeminiRetry is Gemini's retry schedule, for Sender.Retry: the waits before
// each retry of the exponential Standard Webhooks schedule (5 s, 5 min,
// 30 min, 2 h, 5 h, 10 h), seven attempts within 24 hours. A test that uses
// it injects Sender.Sleep rather than wait. Do not modify it.
var GeminiRetry = []time.Duration{
	5 * time.Second,
	5 * time.Minute,
	30 * time.Minute,
	2 * time.Hour,
	5 * time.Hour,
	10 * time.Hour,
}

// wrongRSAKey signs JWTs under Faults.WrongSecret: made once, as RSA key
// generation is slow, and published nowhere.
var wrongRSAKey = sync.OnceValue(func() *rsa.PrivateKey { return newRSAKey().key })

// ErrUndelivered is wrapped by the error of a delivery that never got a 2xx
// answer: every attempt of the retry schedule failed.
var ErrUndelivered = errors.New("webhooktest: delivery failed")

// maxResponseBody caps what an Attempt keeps of the receiver's answer.
const maxResponseBody = 64 << 10

// defaultClient is Sender's client when Client is nil. Gemini expects an
// answer "within a few seconds", and a webhook sender does not follow
// redirects: a 3xx is a failed attempt.
var defaultClient = &http.Client{
	Timeout: 10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// Sender signs and delivers webhook events the way Gemini does, following
// Standard Webhooks 1.0: a POST of the compact JSON envelope with the
// webhook-id, webhook-timestamp and webhook-signature headers, retried on
// any answer but 2xx, keeping the webhook-id and re-signing each attempt
// with its own timestamp.
//
// NewSender returns one with fresh test keys and the Verifier that accepts
// them. Or set Secrets for a static webhook (HMAC) or Keys for a dynamic one,
// the other fields as needed, then deliver with Serve (in process, to an
// http.Handler) or Send (over HTTP, to a URL). Do not change the fields while
// a delivery is in flight; otherwise a Sender is safe for concurrent use, and
// it must not be copied after first use.
type Sender struct {
	// Secrets sign static deliveries ("whsec_…", as verify.Config takes
	// them). Each secret adds one "v1," entry to webhook-signature, as
	// Gemini sends during a rotation overlap.
	Secrets []string
	// Keys sign dynamic deliveries with its newest keys.
	Keys *Keys
	// Scheme chooses the signature: verify.SchemeHMAC, verify.SchemeEd25519
	// ("v1a", what live dynamic deliveries carry) or verify.SchemeJWT (the
	// RS256 JWT Google documents). Empty means SchemeHMAC when Secrets is
	// set, else SchemeEd25519.
	Scheme verify.Scheme
	// Audience is the aud claim of JWT deliveries; empty means the target
	// URL, as Gemini uses the delivery URI.
	Audience string
	// Issuer is the iss claim of JWT deliveries; empty means GeminiIssuer.
	Issuer string
	// Client sends deliveries for Send; nil means a client with a 10 s
	// timeout that does not follow redirects.
	Client *http.Client
	// Now is the clock read at each attempt for webhook-timestamp (and to
	// fill a zero Payload.Timestamp); nil means time.Now.
	Now func() time.Time
	// Retry is the wait before each retry of an attempt that got no 2xx
	// answer; its length is the number of retries. Nil (or empty) means a
	// single attempt, so that a failing handler fails its test at once.
	// GeminiRetry is Gemini's schedule; []time.Duration{0, 0} retries
	// twice without waiting.
	Retry []time.Duration
	// Sleep waits between attempts; it must return early with an error when
	// ctx ends. nil means a real timer. A test can inject one that advances
	// a fake clock instead.
	Sleep func(ctx context.Context, d time.Duration) error
	// Faults are deliberate misbehaviours, for testing a receiver's
	// defences. The zero value sends correct deliveries.
	Faults Faults

	mu      sync.Mutex
	history []*Delivery
}

// NewSender returns a Sender with fresh test credentials for scheme, and a
// Verifier that accepts what it signs, so that a handler test needs no
// secret or key of its own:
//
//   - verify.SchemeHMAC (or ""): a static webhook; the Sender signs with a
//     new random "whsec_" secret, the Verifier holds it in Config.Secrets.
//   - verify.SchemeEd25519: a dynamic webhook as live deliveries carry it
//     ("v1a"); the Sender signs with NewKeys, the Verifier fetches their
//     JWKS in process (its Config.JWKSURL is verify.GeminiJWKSURL, but its
//     Config.HTTPClient answers from the Keys without any network, so no
//     server runs and nothing needs closing). A webhook.Handler passes
//     dynamic deliveries on only with a binding check: give it
//     webhook.WithBinding, or webhook.InsecureSkipBinding in a test.
//   - verify.SchemeJWT: the RS256 JWT form Google documents, likewise, with
//     the Sender's Audience and the Verifier's both ServeURL.
//
// The Sender's other fields are zero: one attempt per delivery, no faults.
// Like the httptest helpers NewSender is for tests: it panics if scheme is
// unknown or a key cannot be generated.
func NewSender(scheme verify.Scheme) (*Sender, *verify.Verifier) {
	var s *Sender
	var cfg verify.Config
	switch scheme {
	case "", verify.SchemeHMAC:
		secret := newSigningSecret()
		s = &Sender{Secrets: []string{secret}}
		cfg.Secrets = []string{secret}
	case verify.SchemeEd25519, verify.SchemeJWT:
		s = &Sender{Keys: NewKeys(), Scheme: scheme}
		cfg.JWKSURL = verify.GeminiJWKSURL
		cfg.HTTPClient = &http.Client{Transport: keysTransport{s.Keys}}
		if scheme == verify.SchemeJWT {
			s.Audience, cfg.Audience = ServeURL, ServeURL
		}
	default:
		panic(fmt.Sprintf("webhooktest: NewSender: unknown signature scheme %q", scheme))
	}
	v, err := verify.New(cfg)
	if err != nil {
		panic("webhooktest: NewSender: " + err.Error())
	}
	return s, v
}

// keysTransport answers every request with the JWKS of its Keys, in
// process: a Verifier's HTTP client that reaches no network.
type keysTransport struct{ keys *Keys }

func (t keysTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		req.Body.Close()
	}
	rec := httptest.NewRecorder()
	t.keys.ServeHTTP(rec, req)
	res := rec.Result()
	res.Request = req
	return res, nil
}

// newSigningSecret returns "whsec_" and the standard base64 of 32 random
// bytes, the form of Standard Webhooks secrets.
func newSigningSecret() string {
	b := make([]byte, 32)
	crand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// Faults make a Sender misbehave in the ways a receiver must survive. Each
// field is independent; several can be combined.
type Faults struct {
	// Duplicate is how many extra copies of a delivery to send after it
	// was first accepted: same webhook-id and body, new timestamp and
	// signature, as when Gemini retries because an answer was lost. They
	// are recorded as attempts with Duplicate set.
	Duplicate int
	// TimestampSkew shifts the sender's signing clock: webhook-timestamp
	// (and a JWT's iat and exp) is Now plus TimestampSkew, correctly
	// signed. Negative is a stale delivery (a replay), positive one from
	// the future; beyond the verifier's tolerance either is rejected.
	TimestampSkew time.Duration
	// TamperBody changes the body after signing (a space inserted after
	// the opening brace: still valid JSON, no longer the signed bytes).
	// The documented JWT form does not cover the body, so under SchemeJWT
	// this goes undetected by the signature.
	TamperBody bool
	// TamperSignature flips a bit of every signature sent.
	TamperSignature bool
	// WrongSecret signs with an unrelated random secret or key instead of
	// the configured ones (under SchemeJWT, with the kid of the real key).
	WrongSecret bool
	// OmitHeaders lists request headers to leave out, e.g.
	// "webhook-signature" or "webhook-timestamp".
	OmitHeaders []string
}

// Attempt is one POST of a delivery and the receiver's answer.
type Attempt struct {
	// Time is the sender's clock (Now) when the attempt was made.
	Time time.Time
	// Status is the answer's status code; 0 when there was no answer.
	Status int
	// Err is why there was no answer (a network error, a timeout).
	Err error
	// Header and Body are the answer's header and body (at most 64 KiB).
	Header http.Header
	Body   []byte
	// RequestHeader is what was sent: webhook-id, webhook-timestamp,
	// webhook-signature, Content-Type.
	RequestHeader http.Header
	// RequestBody is the body sent; it differs from Delivery.Body only
	// under Faults.TamperBody.
	RequestBody []byte
	// Duplicate marks an extra copy sent by Faults.Duplicate.
	Duplicate bool
}

// OK reports whether the receiver accepted the attempt (a 2xx status).
func (a Attempt) OK() bool { return a.Status >= 200 && a.Status <= 299 }

// Delivery is one event delivered (or not) to one target, with every
// attempt made.
type Delivery struct {
	// WebhookID is the webhook-id header, the same on every attempt.
	WebhookID string
	// URL is the target: the URL given to Send, or ServeURL.
	URL string
	// Payload is the event, with its Timestamp filled in.
	Payload Payload
	// Body is the signed body.
	Body []byte
	// Attempts are the attempts in order, duplicates last.
	Attempts []Attempt
}

// OK reports whether some attempt (not counting duplicates) was accepted.
func (d *Delivery) OK() bool {
	for _, a := range d.Attempts {
		if a.OK() && !a.Duplicate {
			return true
		}
	}
	return false
}

// Send delivers p by POSTing it to url, retrying on Retry's schedule until
// an attempt gets a 2xx answer, then sending any Faults.Duplicate copies.
// It returns the Delivery, recorded in History, whatever happened.
//
// Send returns an error wrapping ErrUndelivered if no attempt got a 2xx
// answer, an error wrapping the context's error if ctx ended first, an
// error (and a Delivery without attempts) if url does not parse, or an
// error (and a nil Delivery) if the Sender cannot sign: no Secrets or Keys
// for the Scheme, or a secret that is not base64.
func (s *Sender) Send(ctx context.Context, url string, p Payload) (*Delivery, error) {
	return s.deliver(ctx, url, p, s.overHTTP())
}

// Serve delivers p in process to h, as Send does over the network, with the
// same arguments in the same order: each attempt is a server-side request
// to ServeURL, as httptest.NewRequest makes, answered into an
// httptest.ResponseRecorder. It fails as Send does.
func (s *Sender) Serve(ctx context.Context, h http.Handler, p Payload) (*Delivery, error) {
	return s.deliver(ctx, ServeURL, p, inProcess(h))
}

// History returns every delivery made so far, oldest first, including ones
// still in progress, as a snapshot that later attempts do not change.
func (s *Sender) History() []*Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Delivery, len(s.history))
	for i, d := range s.history {
		c := *d
		c.Attempts = append([]Attempt(nil), d.Attempts...)
		out[i] = &c
	}
	return out
}

// transport makes attempts and reports the answers. server selects
// server-side requests (in-process delivery) over client ones.
type transport struct {
	do     func(req *http.Request) (status int, h http.Header, body []byte, err error)
	server bool
}

func (s *Sender) overHTTP() transport { return transport{do: s.sendHTTP} }

func (s *Sender) sendHTTP(req *http.Request) (int, http.Header, []byte, error) {
	c := s.Client
	if c == nil {
		c = defaultClient
	}
	res, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, maxResponseBody))
	io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20)) // let the connection be reused
	return res.StatusCode, res.Header, body, err
}

func inProcess(h http.Handler) transport {
	return transport{server: true, do: func(req *http.Request) (int, http.Header, []byte, error) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		res := rec.Result()
		body := rec.Body.Bytes()
		if len(body) > maxResponseBody {
			body = body[:maxResponseBody]
		}
		return res.StatusCode, res.Header, bytes.Clone(body), nil
	}}
}

func (s *Sender) deliver(ctx context.Context, url string, p Payload, do transport) (*Delivery, error) {
	scheme, err := s.scheme()
	if err != nil {
		return nil, err
	}
	p = s.fill(p)
	id := p.WebhookID
	if id == "" {
		id = newWebhookID()
	}
	d := &Delivery{WebhookID: id, URL: url, Payload: p, Body: p.Body()}
	s.mu.Lock()
	s.history = append(s.history, d)
	s.mu.Unlock()

	retry := s.Retry
	for i := 0; ; i++ {
		if err := ctx.Err(); err != nil {
			return d, fmt.Errorf("webhooktest: delivery %s: %w", d.WebhookID, err)
		}
		a, err := s.attempt(ctx, scheme, d, do, false)
		if err != nil {
			return d, err
		}
		if a.OK() {
			break
		}
		if i == len(retry) {
			return d, fmt.Errorf("%w: %s to %s: %d attempts, last %s", ErrUndelivered, d.WebhookID, url, i+1, describe(a))
		}
		if err := s.sleep(ctx, retry[i]); err != nil {
			return d, fmt.Errorf("webhooktest: delivery %s: %w", d.WebhookID, err)
		}
	}
	for range s.Faults.Duplicate {
		if err := ctx.Err(); err != nil {
			return d, fmt.Errorf("webhooktest: delivery %s: %w", d.WebhookID, err)
		}
		if _, err := s.attempt(ctx, scheme, d, do, true); err != nil {
			return d, err
		}
	}
	return d, nil
}

// attempt makes and records one attempt. Its error is a signing or request
// construction failure, never the receiver's answer.
func (s *Sender) attempt(ctx context.Context, scheme verify.Scheme, d *Delivery, do transport, dup bool) (Attempt, error) {
	now := s.now()
	req, sent, err := s.newRequest(ctx, scheme, d.URL, d.WebhookID, d.Body, now, do.server)
	if err != nil {
		return Attempt{}, err
	}
	a := Attempt{Time: now, RequestHeader: req.Header.Clone(), RequestBody: sent, Duplicate: dup}
	a.Status, a.Header, a.Body, a.Err = do.do(req)
	s.mu.Lock()
	d.Attempts = append(d.Attempts, a)
	s.mu.Unlock()
	return a, nil
}

func describe(a Attempt) string {
	if a.Err != nil {
		return a.Err.Error()
	}
	return "status " + strconv.Itoa(a.Status)
}

// newRequest builds one signed POST. server selects a server-side request
// (for in-process delivery) over a client one. It returns the body sent.
func (s *Sender) newRequest(ctx context.Context, scheme verify.Scheme, url, id string, body []byte, now time.Time, server bool) (*http.Request, []byte, error) {
	signedAt := now.Add(s.Faults.TimestampSkew)
	ts := time.Unix(signedAt.Unix(), 0)
	aud := s.Audience
	if aud == "" {
		aud = url
	}
	sig, err := s.sign(scheme, id, ts, signedAt, body, aud)
	if err != nil {
		return nil, nil, err
	}
	sent := body
	if s.Faults.TamperBody {
		sent = tamper(body)
	}
	var req *http.Request
	if server {
		req = httptest.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(sent))
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(sent))
		if err != nil {
			return nil, nil, fmt.Errorf("webhooktest: %w", err)
		}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	for _, h := range s.Faults.OmitHeaders {
		req.Header.Del(h)
	}
	return req, sent, nil
}

// sign makes the webhook-signature value; ts is the signed timestamp,
// clock the signing time for JWT claims.
func (s *Sender) sign(scheme verify.Scheme, id string, ts, clock time.Time, body []byte, aud string) (string, error) {
	var sig string
	var err error
	switch scheme {
	case verify.SchemeHMAC:
		sig, err = s.signHMAC(id, ts, body)
	case verify.SchemeEd25519:
		sig = s.signEd25519(id, ts, body)
	case verify.SchemeJWT:
		sig, err = s.signJWT(id, clock, aud)
	}
	if err != nil {
		return "", err
	}
	if s.Faults.TamperSignature {
		sig = tamperSignature(sig)
	}
	return sig, nil
}

func (s *Sender) signHMAC(id string, ts time.Time, body []byte) (string, error) {
	entries := make([]string, len(s.Secrets))
	for i, secret := range s.Secrets {
		if s.Faults.WrongSecret {
			secret = newSigningSecret()
		}
		e, err := verify.Sign(secret, id, ts, body)
		if err != nil {
			return "", fmt.Errorf("webhooktest: Sender.Secrets[%d]: %w", i, err)
		}
		entries[i] = e
	}
	return strings.Join(entries, " "), nil
}

func (s *Sender) signEd25519(id string, ts time.Time, body []byte) string {
	_, key := s.Keys.Ed25519Key()
	if s.Faults.WrongSecret {
		_, key, _ = ed25519.GenerateKey(crand.Reader)
	}
	msg := make([]byte, 0, len(id)+len(body)+22)
	msg = append(msg, id...)
	msg = append(msg, '.')
	msg = strconv.AppendInt(msg, ts.Unix(), 10)
	msg = append(msg, '.')
	msg = append(msg, body...)
	return "v1a," + base64.StdEncoding.EncodeToString(ed25519.Sign(key, msg))
}

func (s *Sender) signJWT(id string, now time.Time, aud string) (string, error) {
	kid, key := s.Keys.RSAKey()
	if s.Faults.WrongSecret {
		key = wrongRSAKey()
	}
	iss := s.Issuer
	if iss == "" {
		iss = GeminiIssuer
	}
	now = now.Truncate(time.Second)
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.RegisteredClaims{
		Issuer:    iss,
		Subject:   id,
		Audience:  jwt.ClaimStrings{aud},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(5 * time.Minute)),
	})
	tok.Header["kid"] = kid
	sig, err := tok.SignedString(key)
	if err != nil {
		return "", fmt.Errorf("webhooktest: signing JWT: %w", err)
	}
	return sig, nil
}

// scheme resolves Sender.Scheme and checks that the Sender can sign with it.
func (s *Sender) scheme() (verify.Scheme, error) {
	scheme := s.Scheme
	if scheme == "" {
		scheme = verify.SchemeEd25519
		if len(s.Secrets) > 0 {
			scheme = verify.SchemeHMAC
		}
	}
	switch scheme {
	case verify.SchemeHMAC:
		if len(s.Secrets) == 0 {
			return "", errors.New("webhooktest: Sender has no Secrets to sign with")
		}
		for i, secret := range s.Secrets {
			if _, err := verify.Sign(secret, "", time.Time{}, nil); err != nil {
				return "", fmt.Errorf("webhooktest: Sender.Secrets[%d]: %w", i, err)
			}
		}
	case verify.SchemeEd25519, verify.SchemeJWT:
		if s.Keys == nil {
			return "", fmt.Errorf("webhooktest: Sender has no Keys to sign %s deliveries with", scheme)
		}
	default:
		return "", fmt.Errorf("webhooktest: unknown signature scheme %q", scheme)
	}
	return scheme, nil
}

func (s *Sender) fill(p Payload) Payload {
	if p.Timestamp.IsZero() {
		p.Timestamp = s.now().UTC().Truncate(time.Second)
	}
	return p
}

func (s *Sender) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Sender) sleep(ctx context.Context, d time.Duration) error {
	if s.Sleep != nil {
		return s.Sleep(ctx, d)
	}
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// newWebhookID returns "msg_" and a random UUID, the form live deliveries
// carry.
func newWebhookID() string {
	var u [16]byte
	crand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	return fmt.Sprintf("msg_%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// tamper returns body with a space after its first byte: for a JSON object
// still the same value, but no longer the signed bytes.
func tamper(body []byte) []byte {
	if len(body) == 0 {
		return []byte(" ")
	}
	out := make([]byte, 0, len(body)+1)
	out = append(out, body[0], ' ')
	return append(out, body[1:]...)
}

// tamperSignature flips one bit in every signature: each "version,base64"
// entry, or the signature segment of a JWT.
func tamperSignature(sig string) string {
	if strings.Count(sig, ".") == 2 && !strings.Contains(sig, ",") {
		i := strings.LastIndexByte(sig, '.')
		return sig[:i+1] + flipBit(sig[i+1:], base64.RawURLEncoding)
	}
	entries := strings.Fields(sig)
	for i, e := range entries {
		if v, b64, ok := strings.Cut(e, ","); ok {
			entries[i] = v + "," + flipBit(b64, base64.StdEncoding)
		}
	}
	return strings.Join(entries, " ")
}

func flipBit(s string, enc *base64.Encoding) string {
	b, err := enc.DecodeString(s)
	if err != nil || len(b) == 0 {
		return s + "x"
	}
	b[0] ^= 1
	return enc.EncodeToString(b)
}
