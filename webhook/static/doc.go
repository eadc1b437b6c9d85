// Package static runs the life of a Gemini static webhook from a Go
// program: register it at startup, prove that it works, rotate its secret
// without dropping a delivery.
//
// A static webhook is registered once per project, with the Webhooks API
// (client.Webhooks in google.golang.org/genai), and receives the events of
// every batch, video and interaction, signed with a secret of its own
// (Standard Webhooks HMAC). The API leaves four chores to each program:
// Gemini shows the secret once, at creation or rotation, so it must be
// stored at once; a rotation keeps the old secret valid for 24 hours unless
// revoked at once, so the receiver must hold both meanwhile; Gemini
// switches off a webhook whose deliveries keep failing
// (disabled_due_to_failed_deliveries), without notice; and nothing shows
// that the endpoint is reachable and verifying until a job ends.
//
//	hook, err := static.Register(ctx, client, static.Config{
//		URI:     "https://app.example.com/gemini/webhook",
//		Secrets: store, // where secrets are kept: a secret manager, a file
//	})
//	http.Handle("POST /gemini/webhook", hook.Handler(d.Deliver))
//	// once the server listens:
//	rep, err := hook.SelfTest(ctx) // the ping arrived and verified, with rep.KeyID
//	// later, on a schedule or on demand:
//	err = hook.Rotate(ctx, webhooks.RevocationBehaviorRevokePreviousSecretsAfterH24)
//
// Register finds the project's webhook for the URI, creates it when
// missing (handing its secret to the SecretStore), fixes its events,
// re-enables it when disabled (loudly: events were lost meanwhile), and
// builds a verify.Verifier from the stored secrets that Gemini still lists,
// with their expiry. Handler serves deliveries with that Verifier through
// webhook.NewHandler, and lets SelfTest see the ping arrive. Rotate installs
// the new secret in the live Verifier (verify.Verifier.SetKeyring) as soon
// as Gemini returns it, keeps the old one until its expire_time (or drops
// it, when revoked at once), and stores the new one; Reload picks up
// secrets that other replicas stored.
//
// Secrets never appear in logs or errors; the SecretStore is the only place
// this package hands them.
package static
