package dispatch_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genai"

	"github.com/genaihook/genaihook/dispatch"
	"github.com/genaihook/genaihook/verify"
	"github.com/genaihook/genaihook/webhook"
	"github.com/genaihook/genaihook/webhook/webhooktest"
)

// The tests in this file attack the whole receiver as the module's README
// wires it (verify, webhook and dispatch together); they live here because
// dispatch is the package that ties the three.

// readme is the receiver exactly as the README wires it, with Google's key
// endpoint replaced by a local one:
//
//	d, err := dispatch.New(client, url, dispatch.WithVerifier(v))
//	http.Handle("POST /gemini/webhook", d.Handler())
type readme struct {
	url     string
	client  *http.Client // for the attackers
	d       *dispatch.Dispatcher
	handler http.Handler // d.Handler(), as mounted at url
}

// newReadme wires the README's receiver, verifying with the keys served at
// jwksURL and reading jobs through client (nil for none). withAudience
// also accepts the JWT form, for this endpoint only.
func newReadme(t *testing.T, jwksURL string, client *genai.Client, withAudience bool) *readme {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	r := &readme{url: srv.URL + "/gemini/webhook", client: srv.Client()}
	cfg := verify.Config{JWKSURL: jwksURL}
	if withAudience {
		cfg.Audience = r.url
	}
	v, err := verify.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.d, err = dispatch.New(client, r.url, dispatch.WithVerifier(v), dispatch.WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.d.Close() })
	r.handler = r.d.Handler(webhook.WithLogger(nil))
	mux.Handle("POST /gemini/webhook", r.handler)
	return r
}

// sender returns a Sender of one attempt per delivery, signing with keys
// as scheme does (for a JWT, with the given audience), that sends with
// the receiver's test client.
func (r *readme) sender(keys *webhooktest.Keys, scheme verify.Scheme, audience string) *webhooktest.Sender {
	return &webhooktest.Sender{Keys: keys, Scheme: scheme, Audience: audience, Client: r.client}
}

// send delivers p from s to the receiver over HTTP and returns the status
// of its one attempt, or 0 after reporting an error.
func (r *readme) send(t *testing.T, s *webhooktest.Sender, p webhooktest.Payload) int {
	t.Helper()
	del, _ := s.Send(context.Background(), r.url, p) // an error is a refusal; the status says which
	return firstStatus(t, p, del)
}

// serve is send in process, straight to the receiver's handler: for the
// flood, where the network would only add time. It may be called from any
// goroutine.
func (r *readme) serve(t *testing.T, s *webhooktest.Sender, p webhooktest.Payload) int {
	t.Helper()
	del, _ := s.Serve(context.Background(), r.handler, p)
	return firstStatus(t, p, del)
}

// firstStatus returns the status of the first attempt of del, the
// delivery of p, or 0 after reporting an error.
func firstStatus(t *testing.T, p webhooktest.Payload, del *webhooktest.Delivery) int {
	t.Helper()
	if del == nil || len(del.Attempts) == 0 {
		t.Errorf("send %s %s: no attempt", p.Type, p.Data["id"])
		return 0
	}
	return del.Attempts[0].Status
}

// post hands the receiver's handler, in process, body with the given
// request headers (a captured delivery's) and webhook-id, and returns the
// status. It may be called from any goroutine.
func (r *readme) post(h http.Header, webhookID string, body []byte) int {
	req := httptest.NewRequest(http.MethodPost, r.url, bytes.NewReader(body))
	req.Header = h.Clone()
	req.Header.Set("webhook-id", webhookID)
	rec := httptest.NewRecorder()
	r.handler.ServeHTTP(rec, req)
	return rec.Code
}

// stillPending fails the test if f has resolved.
func stillPending(t *testing.T, what string, f *dispatch.Future) {
	t.Helper()
	select {
	case <-f.Done():
		ev, err := f.Result()
		t.Fatalf("an attack resolved the wait on %s: %+v, %v", what, ev, err)
	default:
	}
}

// TestREADMESetupUnderAttack drives the README's receiver, without a genai
// client (binding by token or awaited job only), with the attacks a
// replayed or forged dynamic delivery makes possible. None may get past
// the handler's checks or resolve a wait, and the genuine deliveries
// afterwards still must.
func TestREADMESetupUnderAttack(t *testing.T) {
	google := webhooktest.NewKeys() // Google's global keys
	jwks := httptest.NewServer(google)
	t.Cleanup(jwks.Close)
	r := newReadme(t, jwks.URL, nil, false)
	// The waits outlive the flood, however slow the machine: no deadline.
	ctx := context.Background()

	// Our jobs: a batch (bound by the wait on it: batches carry no
	// user_metadata) and an interaction (bound by the token of the
	// Dispatcher's webhook_config, and awaited too).
	const batch = "batches/ours123"
	const interaction = "v1_ChdPdXJzSW50ZXJhY3Rpb25JZEZyb21HZW1pbmk"
	ours := r.d.InteractionWebhookConfig().UserMetadata
	batchWait, interactionWait := r.d.Watch(ctx, batch), r.d.Watch(ctx, interaction)

	v1a := r.sender(google, verify.SchemeEd25519, "")
	// Any Gemini customer holds unexpired RS256 tokens that Google issued
	// for their own endpoint.
	theirJWT := r.sender(google, verify.SchemeJWT, "https://attacker.example/hook")
	forger := r.sender(webhooktest.NewKeys(), verify.SchemeEd25519, "")
	const poisonedID = "msg_6f1c1e1e-0000-4000-8000-000000000001" // the id of the genuine delivery to come

	// Another customer's job, whose user_metadata names our correlation
	// key with a token of their own: replayed here with a valid signature.
	foreignMD := map[string]any{webhook.MetadataKey: ours[webhook.MetadataKey], webhook.MetadataToken: "bm90LW91ci10b2tlbi1ub3Qtb3VyLXRva2Vu"}
	payload := func(typ webhook.EventType, id string, edit func(*webhooktest.Payload)) webhooktest.Payload {
		p := webhooktest.NewPayload(typ, id)
		p.WebhookID = poisonedID
		if edit != nil {
			edit(&p)
		}
		return p
	}
	failed := func(p *webhooktest.Payload) {
		p.Data["error_code"] = 13
		p.Data["error_message"] = "forged"
	}

	// The forgery comes first, while the verifier has no keys yet: the
	// keys it then fetches postdate the forgery's signing, so no key that
	// verifies it can exist (401). Later, with keys cached since an
	// earlier second and the refetch rate-limited, a forgery is
	// undecided (503: Google may have rotated its keys since).
	attacks := []struct {
		name string
		s    *webhooktest.Sender
		p    webhooktest.Payload
		want int
	}{{
		name: "v1a signed with keys that are not Google's",
		s:    forger, p: payload(webhook.BatchFailed, batch, failed),
		want: http.StatusUnauthorized,
	}, {
		name: "JWT form with a body naming our batch as failed",
		s:    theirJWT, p: payload(webhook.BatchFailed, batch, failed),
		want: http.StatusUnauthorized,
	}, {
		name: "JWT form stamped in the year 9999, with our token",
		s:    theirJWT,
		p: payload(webhook.InteractionRequiresAction, interaction, func(p *webhooktest.Payload) {
			p.Timestamp = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
			p.UserMetadata = ours
		}),
		want: http.StatusUnauthorized,
	}, {
		name: "another customer's v1a delivery replayed, carrying our correlation key",
		s:    v1a,
		p: payload(webhook.InteractionFailed, "v1_ChdUaGVpckludGVyYWN0aW9uSWRGcm9tR2VtaW5p", func(p *webhooktest.Payload) {
			failed(p)
			p.UserMetadata = foreignMD
		}),
		want: http.StatusForbidden,
	}, {
		name: "another customer's v1a batch delivery replayed",
		s:    v1a, p: payload(webhook.BatchSucceeded, "batches/theirs456", nil),
		want: http.StatusForbidden,
	}, {
		name: "another customer's v1a delivery naming our batch by its bare id as an interaction",
		s:    v1a, p: payload(webhook.InteractionFailed, "ours123", failed),
		want: http.StatusForbidden,
	}}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			if got := r.send(t, a.s, a.p); got != a.want {
				t.Errorf("status = %d, want %d", got, a.want)
			}
		})
	}

	// A flood: 10,000 bodies under fresh correlation keys, all behind one
	// JWT another customer holds (it signs its claims, not the body, so
	// one token serves every body), and 500 genuine v1a deliveries of
	// another customer's jobs, replayed. It goes to the handler in
	// process: over the network it would only take longer.
	del, _ := theirJWT.Send(ctx, r.url, webhooktest.NewPayload(webhook.InteractionCompleted, "v1_flood"))
	if del == nil || len(del.Attempts) != 1 {
		t.Fatalf("capturing a JWT delivery: %+v", del)
	}
	token := del.Attempts[0].RequestHeader
	const flood, replays, senders = 10_000, 500, 4
	var n401, n403, nOther atomic.Int64
	var wg sync.WaitGroup
	for w := range senders {
		wg.Go(func() {
			for i := w; i < flood+replays; i += senders {
				p := webhooktest.NewPayload(webhook.InteractionCompleted, fmt.Sprintf("v1_flood%06d", i))
				p.UserMetadata = map[string]any{webhook.MetadataKey: fmt.Sprintf("gh_flood%06d", i)}
				var code int
				if i < flood {
					code = r.post(token, fmt.Sprintf("msg_flood%06d", i), p.Body())
				} else {
					code = r.serve(t, v1a, p)
				}
				switch code {
				case http.StatusUnauthorized:
					n401.Add(1)
				case http.StatusForbidden:
					n403.Add(1)
				default:
					nOther.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if n401.Load() != flood || n403.Load() != replays || nOther.Load() != 0 {
		t.Fatalf("flood: %d refused with 401 (want %d), %d with 403 (want %d), %d answered otherwise (want 0)",
			n401.Load(), flood, n403.Load(), replays, nOther.Load())
	}
	stillPending(t, batch, batchWait)
	stillPending(t, interaction, interactionWait)

	// The genuine deliveries, the batch's under the webhook-id the attacks
	// used: none of them may have poisoned the deduplicator.
	ok := webhooktest.NewPayload(webhook.BatchSucceeded, batch)
	ok.Data["output_file_uri"] = "files/ours123-out"
	ok.WebhookID = poisonedID
	if got := r.send(t, v1a, ok); got != http.StatusOK {
		t.Fatalf("genuine batch delivery: status %d", got)
	}
	done := webhooktest.NewPayload(webhook.InteractionCompleted, interaction)
	done.UserMetadata = ours
	if got := r.send(t, v1a, done); got != http.StatusOK {
		t.Fatalf("genuine interaction delivery: status %d", got)
	}
	// Without a client the delivered events resolve the waits; the handler
	// answers only after Deliver returned, so they are resolved by now.
	for _, tc := range []struct {
		f    *dispatch.Future
		want webhook.EventType
	}{{batchWait, webhook.BatchSucceeded}, {interactionWait, webhook.InteractionCompleted}} {
		select {
		case <-tc.f.Done():
		default:
			t.Fatalf("wait for %s not resolved when the handler answered", tc.want)
		}
		if ev, err := tc.f.Result(); err != nil || ev.Type != tc.want || ev.Polled || ev.Job != nil {
			t.Errorf("wait resolved with %+v, %v; want %s as delivered", ev, err, tc.want)
		}
	}
}

// With an Audience configured the JWT form is accepted, but only a token
// Google issued for this endpoint: another customer's token, attached to a
// body naming our job, is refused.
func TestJWTFormNeedsThisAudience(t *testing.T) {
	google := webhooktest.NewKeys()
	jwks := httptest.NewServer(google)
	t.Cleanup(jwks.Close)
	r := newReadme(t, jwks.URL, nil, true)
	const batch = "batches/ours789"
	wait := r.d.Watch(context.Background(), batch)
	forged := webhooktest.NewPayload(webhook.BatchFailed, batch)
	forged.Data["error_code"] = 13
	forged.Data["error_message"] = "forged"
	theirs := r.sender(google, verify.SchemeJWT, "https://attacker.example/hook")
	if got := r.send(t, theirs, forged); got != http.StatusUnauthorized {
		t.Fatalf("another endpoint's token: status %d, want 401", got)
	}
	stillPending(t, batch, wait)
	ours := r.sender(google, verify.SchemeJWT, r.url)
	if got := r.send(t, ours, webhooktest.NewPayload(webhook.BatchSucceeded, batch)); got != http.StatusOK {
		t.Fatalf("a token for this endpoint: status %d, want 200", got)
	}
	if ev, err := wait.Result(); err != nil || ev.Type != webhook.BatchSucceeded {
		t.Fatalf("wait = %+v, %v", ev, err)
	}
}

// TestREADMESetupWithClientReadsForeignJobOnce wires the README's receiver
// with a genai client of a fake Gemini: a replayed delivery of a job
// nobody awaits is bound by reading the job. One the API does not know
// (another project's) is refused with 403 after one read, and replaying
// it again, in any id form, within ten minutes costs no further read.
func TestREADMESetupWithClientReadsForeignJobOnce(t *testing.T) {
	g := newFakeGemini(t, nil)
	r := newReadme(t, g.JWKSURL(), g.client, false)
	v1a := r.sender(g.Keys, verify.SchemeEd25519, "") // Google's keys

	const foreign = "batches/theirs456"
	for i, id := range []string{foreign, foreign, "theirs456"} {
		p := webhooktest.NewPayload(webhook.BatchSucceeded, id)
		if got := r.send(t, v1a, p); got != http.StatusForbidden {
			t.Errorf("replay %d of %s: status %d, want 403", i+1, id, got)
		}
		if n := g.api.reads(foreign); n != 1 {
			t.Errorf("after replay %d of %s: %d reads of %s, want 1", i+1, id, n, foreign)
		}
	}

	// An interaction the API does not know, with a token not ours: the
	// same.
	const theirs = "v1_ChdUaGVpckludGVyYWN0aW9uSWRGcm9tR2VtaW5p"
	for i := range 2 {
		p := webhooktest.NewPayload(webhook.InteractionCompleted, theirs)
		p.UserMetadata = map[string]any{webhook.MetadataKey: "gh_theirs", webhook.MetadataToken: "bm90LW91ci10b2tlbi1ub3Qtb3VyLXRva2Vu"}
		if got := r.send(t, v1a, p); got != http.StatusForbidden {
			t.Errorf("replay %d of %s: status %d, want 403", i+1, theirs, got)
		}
		if n := g.api.reads("interactions/" + theirs); n != 1 {
			t.Errorf("after replay %d: %d reads of %s, want 1", i+1, n, theirs)
		}
	}
}
