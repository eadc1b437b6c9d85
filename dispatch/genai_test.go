package dispatch_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/genai"
	"google.golang.org/genai/interactions/models/interactions"
	"google.golang.org/genai/interactions/models/operations"
	"google.golang.org/genai/interactions/retry"

	"github.com/genaihook/genaihook/dispatch"
	"github.com/genaihook/genaihook/verify"
	"github.com/genaihook/genaihook/webhook"
	"github.com/genaihook/genaihook/webhook/webhooktest"
)

var noRetry = operations.WithRetries(retry.Config{Strategy: "none"})

// receiver starts a loopback receiver and returns the Dispatcher it
// feeds, whose webhook_config builders point at it: dynamic (v1a)
// verification with srv's keys, bound by d.Binding().
func receiver(t *testing.T, srv *webhooktest.Server, opts ...dispatch.Option) *dispatch.Dispatcher {
	t.Helper()
	v, err := verify.New(verify.Config{JWKSURL: srv.JWKSURL()})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	rs := httptest.NewServer(mux)
	t.Cleanup(rs.Close)
	d, err := dispatch.New(append(opts, dispatch.WithWebhookURL(rs.URL+"/gemini/webhook"))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	mux.Handle("POST /gemini/webhook", webhook.NewHandler(v, d.Deliver, d.Binding(), webhook.WithLogger(nil)))
	return d
}

func startBatch(ctx context.Context, c *genai.Client, cfg *genai.WebhookConfig) (*genai.BatchJob, error) {
	return c.Batches.Create(ctx, "gemini-2.5-flash", &genai.BatchJobSource{InlinedRequests: []*genai.InlinedRequest{{
		Contents: []*genai.Content{genai.NewContentFromText("hello", genai.RoleUser)},
	}}}, &genai.CreateBatchJobConfig{WebhookConfig: cfg})
}

func TestTypedWaitsAgainstFakeGemini(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv := webhooktest.NewUnstartedServer()
	srv.BatchUserMetadataBug = true
	srv.Start()
	defer srv.Close()
	client := srv.Client(ctx)
	// Gemini sends no event for a failed video: the poller finds it.
	d := receiver(t, srv, dispatch.WithLogger(nil),
		dispatch.WithPoller(dispatch.GenAIPoller(client)),
		dispatch.WithPollSchedule(300*time.Millisecond, 100*time.Millisecond, time.Second))

	// Batch: user_metadata is refused by the API (the live bug), so the
	// config carries none; matching is by job id, binding by Track.
	withMetadata := d.BatchWebhookConfig()
	withMetadata.UserMetadata = map[string]any{"app": "test"}
	if _, err := startBatch(ctx, client, withMetadata); err == nil {
		t.Fatal("batch with user_metadata accepted although BatchUserMetadataBug is on")
	}
	job, err := startBatch(ctx, client, d.BatchWebhookConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Track(ctx, job.Name, ""); err != nil {
		t.Fatal(err)
	}
	if err := srv.Finish(job.Name, webhooktest.Succeed); err != nil { // before anyone waits
		t.Fatal(err)
	}
	got, err := dispatch.WaitBatch(ctx, d, client, job.Name)
	if err != nil || got.State != genai.JobStateSucceeded {
		t.Fatalf("WaitBatch = %+v, %v", got, err)
	}
	// A short id names the same batch, for the wait as for the read.
	short := strings.TrimPrefix(job.Name, "batches/")
	if got, err := dispatch.WaitBatch(ctx, d, client, short); err != nil || got.Name != job.Name {
		t.Fatalf("WaitBatch(%q) = %+v, %v", short, got, err)
	}

	// Video: token-bound metadata; a failure, found by polling, carries
	// Gemini's error.
	vcfg := d.VideoWebhookConfig(map[string]any{"app": "test"})
	op, err := client.Models.GenerateVideos(ctx, "veo-3.0-generate-001", "a cat", nil, &genai.GenerateVideosConfig{WebhookConfig: vcfg})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Finish(op.Name, webhooktest.Fail(3, "prompt blocked"))
	gotOp, err := dispatch.WaitVideo(ctx, d, client, op)
	var je *dispatch.JobError
	if !errors.Is(err, dispatch.ErrJobFailed) || !errors.As(err, &je) || je.Message != "prompt blocked" || je.Code != "3" || !je.Polled {
		t.Fatalf("WaitVideo error = %v", err)
	}
	if gotOp == nil || !gotOp.Done {
		t.Fatalf("WaitVideo op = %+v", gotOp)
	}

	// Interaction: requires_action, then completed; the second wait gets
	// the second event.
	in := interactions.NewInteractionsInput("research this")
	res, err := client.Interactions.Create(ctx, operations.CreateInteractionRequest{
		Body: operations.NewCreateInteractionRequestBody(interactions.CreateAgentInteraction{
			Agent: interactions.AgentOptionDeepResearchPreview042026, Input: &in, Background: genai.Ptr(true),
			WebhookConfig: d.InteractionWebhookConfig(nil),
		}),
	}, noRetry)
	if err != nil {
		t.Fatal(err)
	}
	id := *res.Interaction.ID
	go srv.Finish(id, webhooktest.RequireAction)
	it, err := dispatch.WaitInteraction(ctx, d, client, id, noRetry)
	if err != nil || it.Status != interactions.InteractionStatusRequiresAction {
		t.Fatalf("first WaitInteraction = %v, %v", it.Status, err)
	}
	go srv.Finish(id, webhooktest.Succeed)
	it, err = dispatch.WaitInteraction(ctx, d, client, id, noRetry)
	if err != nil || it.Status != interactions.InteractionStatusCompleted {
		t.Fatalf("second WaitInteraction = %v, %v", it.Status, err)
	}

	// A batch this receiver did not create (someone else's delivery,
	// replayed here) is refused.
	foreign, err := startBatch(ctx, client, d.BatchWebhookConfig())
	if err != nil {
		t.Fatal(err)
	}
	srv.Finish(foreign.Name, webhooktest.Succeed)
	if err := srv.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
	for _, del := range srv.Deliveries() {
		if del.JobID != foreign.Name {
			continue
		}
		if del.Err == nil || del.Delivery == nil || del.Delivery.Attempts[0].Status != http.StatusForbidden {
			t.Errorf("foreign batch delivery: %+v", del)
		}
	}
	if s := d.Stats(); s.ResolvedByPoll != 1 || s.Pending != 0 {
		t.Errorf("Stats = %+v", s)
	}
}

func TestGenAIPoller(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv := webhooktest.NewServer()
	defer srv.Close()
	client := srv.Client(ctx)
	p := dispatch.GenAIPoller(client)

	newBatch := func() string {
		job, err := startBatch(ctx, client, nil)
		if err != nil {
			t.Fatal(err)
		}
		return job.Name
	}
	newVideo := func() string {
		op, err := client.Models.GenerateVideos(ctx, "veo-3.0-generate-001", "a cat", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return op.Name
	}
	newInteraction := func() string {
		in := interactions.NewInteractionsInput("q")
		res, err := client.Interactions.Create(ctx, operations.CreateInteractionRequest{
			Body: operations.NewCreateInteractionRequestBody(interactions.CreateAgentInteraction{
				Agent: interactions.AgentOptionDeepResearchPreview042026, Input: &in, Background: genai.Ptr(true),
			}),
		}, noRetry)
		if err != nil {
			t.Fatal(err)
		}
		return *res.Interaction.ID
	}
	tests := []struct {
		name    string
		newJob  func() string
		outcome *webhooktest.Outcome // nil: still running
		want    webhook.EventType
		wantErr error
	}{
		{"batch running", newBatch, nil, "", nil},
		{"batch succeeded", newBatch, &webhooktest.Succeed, webhook.BatchSucceeded, nil},
		{"batch failed", newBatch, ptr(webhooktest.Fail(13, "internal")), webhook.BatchFailed, dispatch.ErrJobFailed},
		{"batch expired", newBatch, &webhooktest.Expire, webhook.BatchExpired, dispatch.ErrJobExpired},
		{"batch cancelled", newBatch, &webhooktest.Cancel, webhook.BatchCancelled, dispatch.ErrJobCancelled},
		{"video running", newVideo, nil, "", nil},
		{"video generated", newVideo, &webhooktest.Succeed, webhook.VideoGenerated, nil},
		{"video failed", newVideo, ptr(webhooktest.Fail(3, "blocked")), webhook.VideoGenerated, dispatch.ErrJobFailed},
		{"interaction running", newInteraction, nil, "", nil},
		{"interaction completed", newInteraction, &webhooktest.Succeed, webhook.InteractionCompleted, nil},
		{"interaction requires action", newInteraction, &webhooktest.RequireAction, webhook.InteractionRequiresAction, nil},
		{"interaction failed", newInteraction, ptr(webhooktest.Fail(13, "agent crashed")), webhook.InteractionFailed, dispatch.ErrJobFailed},
		{"interaction cancelled", newInteraction, &webhooktest.Cancel, webhook.InteractionCancelled, dispatch.ErrJobCancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := tt.newJob()
			if tt.outcome != nil {
				if err := srv.Finish(id, *tt.outcome); err != nil {
					t.Fatal(err)
				}
			}
			ev, err := p.Poll(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == "" {
				if ev != nil {
					t.Fatalf("running job polled as %+v", ev)
				}
				return
			}
			if ev == nil || ev.Type != tt.want || !ev.Polled || ev.Data.ID != id || len(ev.Raw) == 0 {
				t.Fatalf("Poll = %+v", ev)
			}
			if err := dispatch.EventError(ev); !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("EventError = %v, want %v", err, tt.wantErr)
			}
		})
	}
	if _, err := p.Poll(ctx, "batches/nope"); err == nil {
		t.Error("Poll of a missing batch succeeded")
	}
	if _, err := p.Poll(ctx, "files/x"); err == nil {
		t.Error("Poll of an id of no known family succeeded")
	}
}

func ptr[T any](v T) *T { return &v }

// A batch whose webhook never arrives (here: its config points nowhere)
// and that is cancelled, for which no event may come at all, resolves
// through GenAIPoller.
func TestLostWebhookThroughGenAIPoller(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	srv := webhooktest.NewUnstartedServer()
	srv.Retry = []time.Duration{}
	srv.Start()
	defer srv.Close()
	client := srv.Client(ctx)
	d, err := dispatch.New(dispatch.WithPoller(dispatch.GenAIPoller(client)),
		dispatch.WithPollSchedule(20*time.Millisecond, 20*time.Millisecond, 100*time.Millisecond),
		dispatch.WithWebhookURL("http://127.0.0.1:1/unreachable"),
		dispatch.WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	job, err := startBatch(ctx, client, d.BatchWebhookConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Finish(job.Name, webhooktest.Cancel); err != nil {
		t.Fatal(err)
	}
	got, err := dispatch.WaitBatch(ctx, d, client, job.Name)
	if !errors.Is(err, dispatch.ErrJobCancelled) || got.State != genai.JobStateCancelled {
		t.Fatalf("WaitBatch = %v, %v", got, err)
	}
	var je *dispatch.JobError
	if !errors.As(err, &je) || !je.Polled {
		t.Fatalf("error = %#v, want a polled JobError", err)
	}
	if s := d.Stats(); s.Polls == 0 || s.ResolvedByPoll != 1 {
		t.Errorf("Stats = %+v", s)
	}
}
