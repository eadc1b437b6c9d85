// Command quickstart replaces three polling loops with webhooks: it starts
// a Gemini batch, a Veo video generation and a Deep Research interaction,
// each asking Gemini to push its completion to this program, waits for all
// three with dispatch, and prints how soon each completion was detected,
// how many reads of the API it cost, and what a 10-second polling loop
// would have cost.
//
// Offline (the default) it needs no account and finishes in seconds:
//
//	go run ./examples/quickstart
//
// It starts the fake Gemini of package geminitest, which ends every job
// after a second or two and signs its deliveries like Gemini's dynamic
// webhooks (Standard Webhooks "v1a", Ed25519 keys published as a JWKS), and
// talks to it through the real genai client.
//
// Against the real Gemini API, set:
//
//	GEMINI_API_KEY        an API key of the Gemini Developer API (webhooks
//	                      are not available on Vertex AI)
//	GENAIHOOK_PUBLIC_URL  the https URL at which Gemini can reach this
//	                      program, path included, e.g. the address of a
//	                      tunnel (ngrok, cloudflared) forwarding to
//	                      GENAIHOOK_LISTEN_ADDR:
//	                      https://abcd.ngrok.app/gemini/webhook
//	GENAIHOOK_LISTEN_ADDR where it listens (default ":8080"); it serves the
//	                      path of GENAIHOOK_PUBLIC_URL
//	GEMINI_WEBHOOK_SECRET optional: the whsec_ signing secret of a static
//	                      webhook pointing at the same URL, to accept its
//	                      HMAC-signed deliveries too (the jobs here ask for
//	                      dynamic webhooks, which need no secret)
//
// then run the same command. The jobs are real and billed: one small batch
// request, one Veo video, one Deep Research task; a live run takes minutes.
// Keep the secret out of shell history and logs; this program never prints
// it.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"time"

	"google.golang.org/genai"
	"google.golang.org/genai/interactions/models/interactions"
	"google.golang.org/genai/interactions/models/operations"

	"github.com/genaihook/genaihook/dispatch"
	"github.com/genaihook/genaihook/verify"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	// The genai client, a listening receiver and the verifier's settings:
	// the fake Gemini's, or the real one's (see setup.go).
	e, err := setup(ctx)
	if err != nil {
		return err
	}
	defer e.close()

	// The wiring: a dispatcher, and its handler at the URL. (Against the
	// real API the default verifier, with Google's keys, would do; the
	// fake signs with keys of its own, and a static webhook's secret
	// needs a verifier too.)
	v, err := verify.New(e.verify)
	if err != nil {
		return err
	}
	d, err := dispatch.New(e.client, e.url, dispatch.WithVerifier(v), dispatch.WithLogger(e.log))
	if err != nil {
		return err
	}
	defer d.Close()
	e.mux.Handle("POST "+e.path, d.Handler())

	// Three jobs, each asking Gemini to push its completion to e.url.
	batch, err := e.client.Batches.Create(ctx, "gemini-2.5-flash",
		&genai.BatchJobSource{InlinedRequests: []*genai.InlinedRequest{{Contents: genai.Text("Say hello in French.")}}},
		&genai.CreateBatchJobConfig{WebhookConfig: d.WebhookConfig()})
	if err != nil {
		return fmt.Errorf("create batch: %w", err)
	}
	video, err := e.client.Models.GenerateVideos(ctx, "veo-3.0-generate-001", "A paper boat on a rainy street, close-up.", nil,
		&genai.GenerateVideosConfig{WebhookConfig: d.WebhookConfig()})
	if err != nil {
		return fmt.Errorf("generate video: %w", err)
	}
	input := interactions.NewInteractionsInput("Summarise this week's news about webhooks in Go, in three bullet points.")
	research, err := e.client.Interactions.Create(ctx, operations.CreateInteractionRequest{
		Body: operations.NewCreateInteractionRequestBody(interactions.CreateAgentInteraction{
			Agent: interactions.AgentOptionDeepResearchPreview042026, Input: &input,
			Background: genai.Ptr(true), WebhookConfig: d.InteractionWebhookConfig(),
		}),
	})
	if err != nil || research.Interaction.GetID() == nil {
		return fmt.Errorf("create interaction: %v", err)
	}

	// Wait for the three at once: no polling loop.
	fmt.Println("Waiting for three jobs...")
	rows := []*row{{job: "batch", id: batch.Name}, {job: "video", id: video.Name}, {job: "deep research", id: *research.Interaction.GetID()}}
	var wg sync.WaitGroup
	for _, r := range rows {
		wg.Go(func() {
			r.ev, r.err = d.Wait(ctx, r.id)
			r.detected = time.Now()
		})
	}
	wg.Wait()
	return e.report(rows)
}
