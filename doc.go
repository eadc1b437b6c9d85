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
//   - package dispatch turns a polling loop into one call: Wait(ctx, job.Name)
//     returns when the job ends, the pushed event saying when and a read of
//     the job through the genai client saying what; the same reads, on a
//     backoff schedule, catch a lost event;
//   - packages webhook/webhooktest (a fake sender, for handler unit tests,
//     with no genai dependency) and webhook/geminitest (a fake Gemini API
//     that the real genai client talks to and that pushes signed events) are
//     for tests without an account or a public URL.
//
// # From a polling loop to Wait
//
// Today's SDK examples poll:
//
//	for !terminal(job.State) {
//		time.Sleep(10 * time.Second)
//		job, _ = client.Batches.Get(ctx, job.Name, nil)
//	}
//
// With genaihook the job is created with a webhook_config pointing at your
// receiver, and the caller waits (errors handled as usual):
//
//	d, err := dispatch.New(client, "https://example.com/gemini/webhook")
//	defer d.Close()
//	http.Handle("POST /gemini/webhook", d.Handler())
//	job, err := client.Batches.Create(ctx, model, src, &genai.CreateBatchJobConfig{WebhookConfig: d.WebhookConfig()})
//	ev, err := d.Wait(ctx, job.Name) // a *dispatch.JobError unless the job succeeded
//	job = ev.Job.(*genai.BatchJob)   // (when err is nil or a *JobError) the job as the API reports it
//
// Dynamic webhooks are signed with Google's global keys, which prove the
// sender but not the intended receiver: any Gemini customer could replay
// their own deliveries here. d.Handler accepts a dynamic delivery only when
// it is bound to this receiver (a token it minted, a job it awaits, or a job
// the API reads as this project's), and even then the wait resolves only
// once the API confirms the event. Static webhooks, signed with a secret of
// your own, need no binding: give their secrets to the Handler through
// dispatch.WithVerifier. dispatch.New checks its configuration and returns
// an error naming the fix, so a mistake fails at startup, not on the first
// delivery. The command examples/quickstart runs
// this whole flow offline against the fake Gemini of package geminitest.
//
// The packages depend on each other in one direction only: verify knows
// nothing of events, webhook nothing of waiting, dispatch nothing of HTTP
// beyond handing the handler its binding.
package genaihook
