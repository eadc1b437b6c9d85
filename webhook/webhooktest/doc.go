// Package webhooktest unit-tests code that receives Gemini API webhooks, in
// the manner of net/http/httptest: a Sender signs and delivers events
// exactly as Gemini does, to an http.Handler in process or to a URL. It
// does not import the genai SDK: a handler test that uses it compiles only
// the standard library, this module's verify and webhook packages and their
// dependencies. The fake Gemini API, for integration tests with the genai
// client, is package geminitest. The helpers here panic where a test could
// not go on, and say so.
//
// A first handler test:
//
//	func TestHandler(t *testing.T) {
//		s, v := webhooktest.NewSender(verify.SchemeHMAC)
//		h := webhook.NewHandler(v, handle)
//		p := webhooktest.NewPayload(webhook.BatchSucceeded, "batches/123")
//		if _, err := s.Serve(t.Context(), h, p); err != nil {
//			t.Fatal(err)
//		}
//	}
//
// NewSender makes a test secret (or, for dynamic webhooks, test keys) and
// the Verifier that accepts it, in one call. A [Sender] POSTs an event
// envelope ([Payload], built with [NewPayload]) with the webhook-id,
// webhook-timestamp and webhook-signature headers of Standard Webhooks 1.0.
// With Secrets it signs like a static webhook (one "v1" HMAC entry per
// secret, as during a rotation overlap); with [Keys] like a dynamic one
// ("v1a" Ed25519 by default, as live deliveries carry, or the RS256 JWT
// that Google documents). [Sender.Serve] delivers in process and
// [Sender.Send] over HTTP, with the same arguments in the same order. By
// default a Sender makes one attempt; set Retry to retry every answer but
// 2xx ([GeminiRetry] is Gemini's own schedule, with a Sleep that tests
// inject), keeping the webhook-id and re-signing each attempt with its own
// timestamp. It records every attempt and answer ([Sender.History]).
//
// [Faults] make it misbehave the ways a receiver must survive: duplicates,
// stale or future timestamps, a tampered body or signature, a wrong secret,
// missing headers.
//
// A webhook.Handler passes a dynamic delivery on only when its binding
// check accepts it, so give the Payload the user_metadata that the app's
// jobs carry, such as a webhook.Binder's Metadata, or build the handler with
// webhook.InsecureSkipBinding in a test that is not about binding:
//
//	s, v := webhooktest.NewSender(verify.SchemeEd25519)
//	h := webhook.NewHandler(v, fn, webhook.WithBinding(binder.Check))
//	p := webhooktest.NewPayload(webhook.InteractionCompleted, "v1_abc")
//	p.UserMetadata = binder.Metadata("job-1") // as Gemini echoes the job's
//	d, err := s.Serve(ctx, h, p)
//
// A [Keys] also serves its public keys as a JWKS document, for a Verifier
// configured with a URL: mount it on an httptest.Server.
package webhooktest
