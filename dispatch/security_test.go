package dispatch_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/genaihook/genaihook/dispatch"
	"github.com/genaihook/genaihook/verify"
	"github.com/genaihook/genaihook/webhook"
	"github.com/genaihook/genaihook/webhook/webhooktest"
)

// The tests in this file attack the whole receiver as the module's README
// wires it (verify, webhook and dispatch together); they live here because
// dispatch is the package that ties the three.

// readme is the receiver exactly as the README wires it, with Google's key
// endpoint replaced by a local one serving keys: a verifier of dynamic
// deliveries, a dispatcher whose builders point at the receiver, and the
// handler bound by the dispatcher. reached counts the events that got past
// the handler's checks to its HandlerFunc.
type readme struct {
	url     string
	client  *http.Client
	d       *dispatch.Dispatcher
	reached atomic.Int64
}

func newReadme(t *testing.T, keys *webhooktest.Keys, withAudience bool) *readme {
	t.Helper()
	jwks := httptest.NewServer(keys)
	t.Cleanup(jwks.Close)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	r := &readme{url: srv.URL + "/gemini/webhook", client: srv.Client()}
	// Enough kept-alive connections for the concurrent senders below.
	r.client.Transport.(*http.Transport).MaxIdleConnsPerHost = 8
	cfg := verify.Config{JWKSURL: jwks.URL}
	if withAudience {
		cfg.Audience = r.url // accept the JWT form too, for this endpoint only
	}
	v, err := verify.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.d, err = dispatch.New(dispatch.WithWebhookURL(r.url), dispatch.WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.d.Close() })
	deliver := func(ctx context.Context, ev *webhook.Event) error {
		r.reached.Add(1)
		return r.d.Deliver(ctx, ev)
	}
	mux.Handle("POST /gemini/webhook", webhook.NewHandler(v, deliver, r.d.Binding(), webhook.WithLogger(nil)))
	return r
}

// post sends body with the given webhook headers and returns the status,
// or 0 after reporting an error. It may be called from any goroutine.
func (r *readme) post(t *testing.T, id string, ts time.Time, sig string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Webhook-Id", id)
	req.Header.Set("Webhook-Timestamp", strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set("Webhook-Signature", sig)
	res, err := r.client.Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// sign returns the webhook-signature s sends, or "" after reporting an
// error. It may be called from any goroutine.
func sign(t *testing.T, s *webhooktest.Sender, id string, ts time.Time, body []byte) string {
	t.Helper()
	sig, err := s.Sign(id, ts, body, "")
	if err != nil {
		t.Error(err)
	}
	return sig
}

// TestREADMESetupUnderAttack drives the README's receiver with the attacks
// a replayed or forged dynamic delivery makes possible. None may reach the
// HandlerFunc or resolve a wait, and the genuine deliveries afterwards
// still must.
func TestREADMESetupUnderAttack(t *testing.T) {
	google := webhooktest.NewKeys() // Google's global keys
	r := newReadme(t, google, false)
	ctx := context.Background()

	// Our jobs: a batch (bound by Track, no user_metadata) and an
	// interaction (bound by the token the builder put in its metadata).
	const batch = "batches/ours123"
	if err := r.d.Track(ctx, batch, ""); err != nil {
		t.Fatal(err)
	}
	const interaction = "v1_ChdPdXJzSW50ZXJhY3Rpb25JZEZyb21HZW1pbmk"
	ours := r.d.InteractionWebhookConfig(nil).UserMetadata
	if err := r.d.Track(ctx, interaction, dispatch.KeyOf(ours)); err != nil {
		t.Fatal(err)
	}
	batchWait, interactionWait := r.d.Watch(batch), r.d.Watch(interaction)

	v1a := &webhooktest.Sender{Keys: google, Scheme: verify.SchemeEd25519}
	// Any Gemini customer holds unexpired RS256 tokens that Google issued
	// for their own endpoint.
	theirJWT := &webhooktest.Sender{Keys: google, Scheme: verify.SchemeJWT, Audience: "https://attacker.example/hook"}
	forger := &webhooktest.Sender{Keys: webhooktest.NewKeys(), Scheme: verify.SchemeEd25519}
	now := time.Now()
	const poisonedID = "msg_6f1c1e1e-0000-4000-8000-000000000001" // the id of the genuine delivery to come

	// Another customer's job, with their own binder token and a
	// correlation key equal to ours: replayed here with a valid signature.
	theirs := dispatch.KeyOf(ours)
	foreignMD := map[string]any{webhook.MetadataKey: theirs, webhook.MetadataToken: "bm90LW91ci10b2tlbi1ub3Qtb3VyLXRva2Vu"}

	attacks := []struct {
		name string
		id   string
		ts   time.Time
		p    webhooktest.Payload
		sig  func(id string, ts time.Time, body []byte) string
		want int
	}{{
		name: "JWT form with a body naming our batch as failed",
		id:   poisonedID, ts: now,
		p:    webhooktest.BatchFailed(batch, 13, "forged"),
		sig:  func(id string, ts time.Time, b []byte) string { return sign(t, theirJWT, id, ts, b) },
		want: http.StatusUnauthorized,
	}, {
		name: "JWT form stamped in the year 9999",
		id:   "msg_pin", ts: now,
		p: func() webhooktest.Payload {
			p := webhooktest.InteractionRequiresAction(interaction)
			p.Timestamp = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
			p.UserMetadata = ours
			return p
		}(),
		sig:  func(id string, ts time.Time, b []byte) string { return sign(t, theirJWT, id, ts, b) },
		want: http.StatusUnauthorized,
	}, {
		name: "another customer's v1a delivery replayed, carrying our correlation key",
		id:   poisonedID, ts: now,
		p: func() webhooktest.Payload {
			p := webhooktest.InteractionFailed("v1_ChdUaGVpckludGVyYWN0aW9uSWRGcm9tR2VtaW5p", 13, "theirs")
			p.UserMetadata = foreignMD
			return p
		}(),
		sig:  func(id string, ts time.Time, b []byte) string { return sign(t, v1a, id, ts, b) },
		want: http.StatusForbidden,
	}, {
		name: "another customer's v1a batch delivery replayed",
		id:   poisonedID, ts: now,
		p:    webhooktest.BatchSucceeded("batches/theirs456", ""),
		sig:  func(id string, ts time.Time, b []byte) string { return sign(t, v1a, id, ts, b) },
		want: http.StatusForbidden,
	}, {
		name: "v1a signed with keys that are not Google's",
		id:   poisonedID, ts: now,
		p:    webhooktest.BatchFailed(batch, 13, "forged"),
		sig:  func(id string, ts time.Time, b []byte) string { return sign(t, forger, id, ts, b) },
		want: http.StatusUnauthorized,
	}}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			body := a.p.Body()
			if got := r.post(t, a.id, a.ts, a.sig(a.id, a.ts, body), body); got != a.want {
				t.Errorf("status = %d, want %d", got, a.want)
			}
		})
	}

	// A flood to evict our tracked jobs from the store: 10,000 bodies under
	// fresh correlation keys, all behind one JWT another customer holds (it
	// signs its claims, not the body, so one token serves every body), and
	// 500 genuine v1a deliveries of another customer's jobs, replayed.
	token := sign(t, theirJWT, "msg_flood", now, nil)
	const flood, replays, senders = 10_000, 500, 4
	refused := make(map[int]*atomic.Int64)
	for _, code := range []int{http.StatusUnauthorized, http.StatusForbidden} {
		refused[code] = new(atomic.Int64)
	}
	var wg sync.WaitGroup
	for w := range senders {
		wg.Go(func() {
			for i := w; i < flood+replays; i += senders {
				p := webhooktest.InteractionCompleted(fmt.Sprintf("v1_flood%06d", i))
				p.UserMetadata = map[string]any{webhook.MetadataKey: fmt.Sprintf("gh_flood%06d", i)}
				body := p.Body()
				id := fmt.Sprintf("msg_flood%06d", i)
				sig := token
				if i >= flood {
					sig = sign(t, v1a, id, now, body)
				}
				if c, ok := refused[r.post(t, id, now, sig, body)]; ok {
					c.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n401, n403 := refused[http.StatusUnauthorized].Load(), refused[http.StatusForbidden].Load(); n401 != flood || n403 != replays {
		t.Fatalf("flood: %d refused with 401 (want %d), %d with 403 (want %d)", n401, flood, n403, replays)
	}

	if n := r.reached.Load(); n != 0 {
		t.Fatalf("%d attacking deliveries reached the HandlerFunc", n)
	}
	for _, f := range []*dispatch.Future{batchWait, interactionWait} {
		if ev, err := f.Result(); err != dispatch.ErrPending {
			t.Fatalf("an attack resolved a wait: %+v, %v", ev, err)
		}
	}

	// The genuine deliveries, one of them under the id the attacks used.
	ok := webhooktest.BatchSucceeded(batch, "gs://bucket/out.jsonl")
	body := ok.Body()
	if got := r.post(t, poisonedID, now, sign(t, v1a, poisonedID, now, body), body); got != http.StatusOK {
		t.Fatalf("genuine batch delivery: status %d", got)
	}
	done := webhooktest.InteractionCompleted(interaction)
	done.UserMetadata = ours
	body = done.Body()
	if got := r.post(t, "msg_done", now, sign(t, v1a, "msg_done", now, body), body); got != http.StatusOK {
		t.Fatalf("genuine interaction delivery: status %d", got)
	}
	// The handler answers only after Deliver returned: the waits are
	// resolved by now.
	for _, tc := range []struct {
		f    *dispatch.Future
		want webhook.EventType
	}{{batchWait, webhook.BatchSucceeded}, {interactionWait, webhook.InteractionCompleted}} {
		if ev, err := tc.f.Result(); err != nil || ev.Type != tc.want {
			t.Errorf("wait resolved with %+v, %v; want %s", ev, err, tc.want)
		}
	}
}

// With an Audience configured the JWT form is accepted, but only a token
// Google issued for this endpoint: another customer's token, attached to a
// body naming our job, is refused.
func TestJWTFormNeedsThisAudience(t *testing.T) {
	google := webhooktest.NewKeys()
	r := newReadme(t, google, true)
	const batch = "batches/ours789"
	if err := r.d.Track(context.Background(), batch, ""); err != nil {
		t.Fatal(err)
	}
	wait := r.d.Watch(batch)
	now := time.Now()
	body := webhooktest.BatchFailed(batch, 13, "forged").Body()
	theirs := &webhooktest.Sender{Keys: google, Scheme: verify.SchemeJWT, Audience: "https://attacker.example/hook"}
	if got := r.post(t, "msg_1", now, sign(t, theirs, "msg_1", now, body), body); got != http.StatusUnauthorized {
		t.Fatalf("another endpoint's token: status %d, want 401", got)
	}
	if ev, err := wait.Result(); err != dispatch.ErrPending || r.reached.Load() != 0 {
		t.Fatalf("another endpoint's token resolved the wait: %+v, %v", ev, err)
	}
	ours := &webhooktest.Sender{Keys: google, Scheme: verify.SchemeJWT, Audience: r.url}
	body = webhooktest.BatchSucceeded(batch, "").Body()
	if got := r.post(t, "msg_2", now, sign(t, ours, "msg_2", now, body), body); got != http.StatusOK {
		t.Fatalf("a token for this endpoint: status %d, want 200", got)
	}
	if ev, err := wait.Result(); err != nil || ev.Type != webhook.BatchSucceeded {
		t.Fatalf("wait = %+v, %v", ev, err)
	}
}
