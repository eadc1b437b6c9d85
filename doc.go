// Package genaihook is the receiving half of Gemini API webhooks for Go
// programs built on Google's SDK, google.golang.org/genai.
//
// Since May 2026 Gemini can POST a signed event to your server when a
// long-running job finishes: a Batch API job, a Veo video generation, a
// background Interaction such as the Deep Research agent. The genai SDK can
// ask for these webhooks but cannot receive them. genaihook can:
//
//   - package verify answers "is this delivery really from Gemini?" for
//     static webhooks (Standard Webhooks HMAC with whsec_ secrets, several
//     at once during a rotation) and dynamic ones (Ed25519 v1a signatures
//     and RS256 JWTs, checked against Google's published keys);
//   - package webhook parses the event into typed fields and provides an
//     http.Handler that verifies, deduplicates on webhook-id, routes to your
//     function and answers with the status codes Gemini's retry logic
//     expects;
//   - package webhook/webhooktest is a fake sender and a fake Gemini API
//     that the real genai client talks to, for tests without an account or
//     a public URL;
//   - package dispatch turns deliveries into futures: Wait(ctx, job.Name)
//     resolves the moment the event arrives, with polling through the SDK
//     only as a safety net for a lost webhook.
//
// # From a polling loop to Wait
//
// Today's SDK examples poll:
//
//	for {
//		job, _ = client.Batches.Get(ctx, job.Name, nil)
//		if terminal(job.State) {
//			break
//		}
//		time.Sleep(10 * time.Second)
//	}
//
// With genaihook the job is created with a webhook_config pointing at your
// receiver, and the caller waits on the pushed event:
//
//	v, err := verify.New(verify.Config{JWKSURL: verify.GeminiJWKSURL})
//	if err != nil {
//		log.Fatal(err) // a misconfiguration, and how to fix it
//	}
//	d, err := dispatch.New(dispatch.WithPoller(dispatch.GenAIPoller(client)),
//		dispatch.WithWebhookURL("https://example.com/gemini/webhook"))
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer d.Close()
//	http.Handle("POST /gemini/webhook", webhook.NewHandler(v, d.Deliver, d.Binding()))
//
//	job, err := client.Batches.Create(ctx, model, src, &genai.CreateBatchJobConfig{
//		WebhookConfig: d.BatchWebhookConfig(),
//	})
//	// ... handle err
//	err = d.Track(ctx, job.Name, "") // binds the batch's events to this receiver
//	ev, err := d.Wait(ctx, job.Name)
//
// Dynamic webhooks are signed with Google's global keys, which prove the
// sender but not the intended receiver: any Gemini customer could replay
// their own deliveries here. So the handler accepts a dynamic delivery only
// when a binding check accepts it, and refuses every one (403) when none is
// configured; d.Binding() accepts the jobs d created. Static webhooks,
// signed with a secret of your own, need no binding. verify.New and
// dispatch.New check their configuration and return an error naming the
// fix, so a mistake fails at startup, not on the first delivery. The command examples/quickstart
// runs this whole flow offline against the fake Gemini of package
// webhooktest.
//
// The packages depend on each other in one direction only: verify knows
// nothing of events, webhook nothing of waiting, dispatch nothing of HTTP.
package genaihook
