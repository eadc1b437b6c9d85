// Package webhooktest is a fake Gemini for testing code that receives Gemini
// API webhooks, in the manner of net/http/httptest: a Sender that signs and
// delivers events exactly as Gemini does, and a fake Gemini API server that
// the unmodified google.golang.org/genai client talks to. Nothing in it needs
// network access beyond loopback. Its helpers panic where a test could not
// go on, and say so.
//
// # Sender: unit-testing a handler
//
// A [Sender] POSTs an event envelope ([Payload], built with [BatchSucceeded],
// [VideoGenerated] and the other builders, one per event type) with the
// webhook-id, webhook-timestamp and webhook-signature headers of Standard
// Webhooks 1.0. With Secrets it signs like a static webhook (one
// Standard Webhooks "v1" HMAC entry per secret, as during a rotation
// overlap); with [Keys] like a dynamic one ("v1a" Ed25519 by default, as live
// deliveries carry, or the RS256 JWT that Google documents). It delivers to
// a URL ([Sender.Send]) or in-process to an http.Handler ([Sender.Serve]),
// retries every answer but 2xx on a schedule that tests compress, keeps the
// webhook-id across retries and re-signs each attempt with its own
// timestamp, and records every attempt and answer ([Sender.History]).
//
//	s := &webhooktest.Sender{Secrets: []string{secret}, Retry: []time.Duration{0, 0}}
//	d, err := s.Serve(ctx, handler, webhooktest.BatchSucceeded("batches/123", ""))
//	// d.Attempts[0].Status is the handler's answer
//
// [Faults] make it misbehave the ways a receiver must survive: duplicates,
// reordering, delay, stale or future timestamps, a tampered body or
// signature, a wrong secret, missing headers.
//
// A [Keys] serves its public keys as a JWKS document; mount it on an
// httptest.Server and point verify.Config.JWKSURL at it to verify dynamic
// deliveries. A webhook.Handler passes a dynamic delivery on only when its
// binding check accepts it, so give the Payload the user_metadata that the
// app's jobs carry, such as a webhook.Binder's Metadata:
//
//	keys := webhooktest.NewKeys()
//	jwks := httptest.NewServer(keys)
//	defer jwks.Close()
//	v, _ := verify.New(verify.Config{JWKSURL: jwks.URL})
//	h := webhook.NewHandler(v, fn, webhook.WithBinding(binder.Check))
//	p := webhooktest.InteractionCompleted("v1_abc")
//	p.UserMetadata = binder.Metadata("job-1") // as Gemini echoes the job's
//	s := &webhooktest.Sender{Keys: keys}
//	d, err := s.Serve(ctx, h, p)
//
// # Server: integration-testing an app
//
// NewServer starts a fake Gemini API on a loopback address. Point the real
// genai client at its URL through genai.HTTPOptions.BaseURL; it creates and
// reports batches, video generations and interactions, manages static
// webhooks, and, when a job changes state, delivers the event to the job's
// webhook_config uris or to the subscribed static webhooks, signed and
// retried by a Sender. A dynamic delivery echoes the job's user_metadata,
// so an app that binds its jobs with a webhook.Binder receives them as in
// production. Close shuts it down.
package webhooktest
