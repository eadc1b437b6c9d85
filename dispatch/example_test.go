package dispatch_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"time"

	"google.golang.org/genai"

	"github.com/genaihook/genaihook/dispatch"
	"github.com/genaihook/genaihook/verify"
	"github.com/genaihook/genaihook/webhook"
	"github.com/genaihook/genaihook/webhook/geminitest"
)

// The whole path from a job to its outcome, against the fake Gemini of
// package geminitest: in production the client is made by genai.NewClient
// with your API key, the Handler checks Google's keys (no WithVerifier),
// and the URL is your receiver's public address.
func Example() {
	ctx := context.Background()
	gemini := geminitest.NewServer()
	defer gemini.Close()
	client := gemini.Client(ctx)
	mux := http.NewServeMux()
	receiver := httptest.NewServer(mux)
	defer receiver.Close()

	// The fake signs with keys of its own; without WithVerifier the Handler
	// checks Google's.
	v, err := verify.New(verify.Config{JWKSURL: gemini.JWKSURL()})
	if err != nil {
		fmt.Println(err)
		return
	}
	d, err := dispatch.New(client, receiver.URL+"/gemini/webhook",
		dispatch.WithVerifier(v), dispatch.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()
	mux.Handle("POST /gemini/webhook", d.Handler())

	job, err := client.Batches.Create(ctx, "gemini-2.5-flash", &genai.BatchJobSource{
		InlinedRequests: []*genai.InlinedRequest{{Contents: genai.Text("Hello")}},
	}, &genai.CreateBatchJobConfig{WebhookConfig: d.WebhookConfig()})
	if err != nil {
		fmt.Println(err)
		return
	}
	gemini.Finish(job.Name, geminitest.Succeed) // the fake's job ends; Gemini pushes the event

	ev, err := d.Wait(ctx, job.Name)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ev.Type, ev.Job.(*genai.BatchJob).State)
	// Output: batch.succeeded JOB_STATE_SUCCEEDED
}

// A job that did not succeed ends its wait with a *JobError, which carries
// Gemini's error_code and error_message.
func ExampleDispatcher_Wait() {
	// No genai client: events resolve waits as they arrive (see New).
	d, err := dispatch.New(nil, "https://example.com/gemini/webhook")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()
	ctx := context.Background()

	// What the Handler passes on when Gemini's delivery arrives.
	go d.Deliver(ctx, &webhook.Event{Type: webhook.BatchFailed, Data: webhook.Data{
		ID: "batches/abc123", ErrorCode: "3", ErrorMessage: "invalid input file"}})

	_, err = d.Wait(ctx, "batches/abc123") // the id as Batches.Create returned it
	var je *dispatch.JobError
	fmt.Println(errors.Is(err, dispatch.ErrJobFailed), errors.As(err, &je) && je.Code == "3")
	fmt.Println(err)
	// Output:
	// true true
	// dispatch: job batches/abc123 failed: invalid input file (code 3)
}

// Watch returns a Future that a select can use: one loop waits for many
// jobs, each with its own deadline, and no goroutine per job.
func ExampleDispatcher_Watch() {
	d, err := dispatch.New(nil, "https://example.com/gemini/webhook")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	video := d.Watch(ctx, "models/veo-3.0-generate-001/operations/op1")
	research := d.Watch(ctx, "v1_ChdQcmV0ZW5kVGhpc0lzQW5JbnRlcmFjdGlvbg")

	d.Deliver(ctx, &webhook.Event{Type: webhook.InteractionCompleted, Data: webhook.Data{ID: "v1_ChdQcmV0ZW5kVGhpc0lzQW5JbnRlcmFjdGlvbg"}})
	d.Deliver(ctx, &webhook.Event{Type: webhook.VideoGenerated, Data: webhook.Data{ID: "operations/op1", VideoURI: "https://example.com/v.mp4"}})

	researchDone, videoDone := research.Done(), video.Done()
	for range 2 {
		select {
		case <-researchDone:
			ev, err := research.Result()
			fmt.Println("research:", ev.Type, err)
			researchDone = nil // never selected again
		case <-videoDone:
			ev, err := video.Result()
			fmt.Println("video:", ev.Data.VideoURI, err)
			videoDone = nil
		}
	}
	// Unordered output:
	// research: interaction.completed <nil>
	// video: https://example.com/v.mp4 <nil>
}

// Replicas of one receiver share a binding secret, so that each accepts
// the deliveries of interactions another created, and a Store (see
// WithStore), so that a Wait on one resolves from an event another
// received.
func ExampleWithBinder() {
	secret := []byte("a 32-byte secret the replicas share, from a secret manager")[:32]
	binder, err := webhook.NewBinder(secret)
	if err != nil {
		fmt.Println(err)
		return
	}
	a, _ := dispatch.New(nil, "https://example.com/gemini/webhook", dispatch.WithBinder(binder))
	defer a.Close()

	// The token of a's webhook_config binds the interaction's events to
	// every replica holding the secret.
	cfg := a.InteractionWebhookConfig()
	md, _ := json.Marshal(cfg.UserMetadata) // as Gemini echoes it in each event
	fmt.Println(binder.Check(context.Background(), &webhook.Event{UserMetadata: md}))
	// Output: <nil>
}

// Supersedes orders a job's events as a Store must: a job's end replaces a
// pause whatever their timestamps, and a duplicate replaces nothing.
func ExampleSupersedes() {
	t := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	pause := &webhook.Event{Type: webhook.InteractionRequiresAction, Timestamp: t.Add(time.Minute), WebhookID: "msg_1"}
	done := &webhook.Event{Type: webhook.InteractionCompleted, Timestamp: t, WebhookID: "msg_2"}
	fmt.Println(dispatch.Supersedes(done, pause), dispatch.Supersedes(pause, done), dispatch.Supersedes(pause, pause))
	// Output: true false false
}

// Every outcome but success is an error to branch on with errors.Is.
func ExampleJobError() {
	d, err := dispatch.New(nil, "https://example.com/gemini/webhook",
		dispatch.WithPollSchedule(30*time.Second, 0, 0)) // log a silent wait after 30 s, not 60
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()
	ctx := context.Background()
	d.Deliver(ctx, &webhook.Event{Type: webhook.BatchExpired, Data: webhook.Data{ID: "batches/old"}})

	for _, id := range []string{"batches/old", "files/not-a-job"} {
		_, err := d.Wait(ctx, id)
		switch {
		case errors.Is(err, dispatch.ErrJobExpired):
			fmt.Println(id, "expired: resubmit it")
		case errors.Is(err, dispatch.ErrJobFailed), errors.Is(err, dispatch.ErrJobCancelled):
			fmt.Println(id, "did not succeed")
		case errors.Is(err, dispatch.ErrJobNotFound):
			fmt.Println(id, "is unknown to the API")
		case errors.Is(err, dispatch.ErrInvalidID):
			fmt.Println(id, "is not a job id")
		}
	}
	// Output:
	// batches/old expired: resubmit it
	// files/not-a-job is not a job id
}
