package geminitest_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genai"
	"google.golang.org/genai/interactions/models/apierrors"
	ia "google.golang.org/genai/interactions/models/interactions"
	"google.golang.org/genai/interactions/models/operations"
	"google.golang.org/genai/interactions/models/webhooks"

	"github.com/genaihook/genaihook/webhook/geminitest"
)

// conformanceClock is the fake's clock, moved by the test.
type conformanceClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *conformanceClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *conformanceClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Id forms, as the genai SDK reads and forms them, with the fake's random
// parts.
var (
	batchName     = regexp.MustCompile(`^batches/[a-z0-9]{12}$`)
	videoName     = regexp.MustCompile(`^models/veo-3\.0-generate-001/operations/[a-z0-9]{12}$`)
	interactionID = regexp.MustCompile(`^v1_[A-Za-z0-9_-]{32}$`)
	webhookID     = regexp.MustCompile(`^wh_[a-z0-9]{16}$`)
	fileName      = regexp.MustCompile(`^files/[a-z0-9]{12}$`)
)

func wantMatch(t *testing.T, what string, re *regexp.Regexp, s string) {
	t.Helper()
	if !re.MatchString(s) {
		t.Errorf("%s %q does not match %s", what, s, re)
	}
}

func wantTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if !got.Equal(want) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

// TestConformance drives every endpoint the Server documents through the
// unmodified genai client, and checks each typed field the client parses:
// states, names and id forms, timestamps, done flags, outputs and error
// shapes.
func TestConformance(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	t1 := t0.Add(7 * time.Minute)
	clk := &conformanceClock{t: t0}
	srv := geminitest.NewUnstartedServer()
	srv.Now = clk.now
	srv.Logf = t.Logf
	srv.Start()
	c := srv.Client(t.Context())
	ctx := t.Context()
	// A receiver that accepts everything, closed after srv (cleanups run
	// last first), so that no delivery fails.
	ok := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(ok.Close)
	t.Cleanup(srv.Close)

	t.Run("batches", func(t *testing.T) {
		clk.set(t0)
		job, err := c.Batches.Create(ctx, "gemini-2.5-flash", inlined("a", "b"), &genai.CreateBatchJobConfig{DisplayName: "conf"})
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		wantMatch(t, "Name", batchName, job.Name)
		if job.State != genai.JobStatePending || job.Model != "models/gemini-2.5-flash" || job.DisplayName != "conf" ||
			!job.EndTime.IsZero() || job.Dest != nil {
			t.Errorf("created = %+v", job)
		}
		wantTime(t, "CreateTime", job.CreateTime, t0)
		wantTime(t, "UpdateTime", job.UpdateTime, t0)

		clk.set(t1)
		finish(t, srv, job.Name, geminitest.Succeed)
		got, err := c.Batches.Get(ctx, job.Name, nil)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if got.Name != job.Name || got.State != genai.JobStateSucceeded || got.Dest == nil || len(got.Dest.InlinedResponses) != 2 {
			t.Fatalf("succeeded = %+v", got)
		}
		wantTime(t, "CreateTime", got.CreateTime, t0)
		wantTime(t, "UpdateTime", got.UpdateTime, t1)
		wantTime(t, "EndTime", got.EndTime, t1)
		for i, r := range got.Dest.InlinedResponses {
			if r.Response == nil || r.Response.Text() == "" || r.Metadata["key"] != "req-"+string(rune('1'+i)) {
				t.Errorf("inlined response %d = %+v", i, r)
			}
		}

		fileJob, err := c.Batches.Create(ctx, "models/gemini-2.5-flash", &genai.BatchJobSource{FileName: "files/input"}, nil)
		if err != nil {
			t.Fatalf("Create(file): %v", err)
		}
		finish(t, srv, fileJob.Name, geminitest.Succeed)
		got, err = c.Batches.Get(ctx, fileJob.Name, nil)
		if err != nil || got.Dest == nil {
			t.Fatalf("Get(file) = %+v, %v", got, err)
		}
		wantMatch(t, "Dest.FileName", fileName, got.Dest.FileName)
		if out, err := c.Files.Download(ctx, genai.NewDownloadURIFromFile(&genai.File{DownloadURI: got.Dest.FileName}), nil); err != nil || len(out) == 0 {
			t.Errorf("Files.Download(%s) = %d bytes, %v", got.Dest.FileName, len(out), err)
		}

		for _, tt := range []struct {
			o    geminitest.Outcome
			want genai.JobState
		}{{geminitest.Fail(3, "bad"), genai.JobStateFailed}, {geminitest.Expire, genai.JobStateExpired}} {
			j, err := c.Batches.Create(ctx, "gemini-2.5-flash", inlined("x"), nil)
			if err != nil {
				t.Fatal(err)
			}
			finish(t, srv, j.Name, tt.o)
			got, err := c.Batches.Get(ctx, j.Name, nil)
			if err != nil || got.State != tt.want || got.Dest != nil || got.Error != nil {
				t.Errorf("%v: Get = %+v, %v", tt.o, got, err)
			}
		}

		pending, err := c.Batches.Create(ctx, "gemini-2.5-flash", inlined("x"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Batches.Cancel(ctx, pending.Name, nil); err != nil {
			t.Fatalf("Cancel: %v", err)
		}
		if got, err := c.Batches.Get(ctx, pending.Name, nil); err != nil || got.State != genai.JobStateCancelled {
			t.Errorf("cancelled = %+v, %v", got, err)
		}
		wantAPIError(t, c.Batches.Cancel(ctx, job.Name, nil), http.StatusBadRequest, "FAILED_PRECONDITION")

		page, err := c.Batches.List(ctx, &genai.ListBatchJobsConfig{PageSize: 2})
		if err != nil || len(page.Items) != 2 || page.NextPageToken == "" || page.Items[0].Name != job.Name {
			t.Fatalf("List = %+v, %v", page, err)
		}
		var n int
		for j, err := range c.Batches.All(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			wantMatch(t, "listed Name", batchName, j.Name)
			n++
		}
		if n != 5 {
			t.Errorf("All listed %d batches, want 5", n)
		}

		del, err := c.Batches.Delete(ctx, pending.Name, nil)
		if err != nil || del.Error != nil {
			t.Fatalf("Delete = %+v, %v", del, err)
		}
		_, err = c.Batches.Get(ctx, pending.Name, nil)
		ae := wantAPIError(t, err, http.StatusNotFound, "NOT_FOUND")
		if ae.Message == "" {
			t.Error("404 without a message")
		}
		_, err = c.Batches.Delete(ctx, pending.Name, nil)
		wantAPIError(t, err, http.StatusNotFound, "NOT_FOUND")
	})

	t.Run("videos", func(t *testing.T) {
		clk.set(t0)
		op, err := c.Models.GenerateVideosFromSource(ctx, "veo-3.0-generate-001", &genai.GenerateVideosSource{Prompt: "a cat"},
			&genai.GenerateVideosConfig{NumberOfVideos: 2, AspectRatio: "16:9"})
		if err != nil {
			t.Fatalf("GenerateVideos: %v", err)
		}
		wantMatch(t, "Name", videoName, op.Name)
		if op.Done || op.Response != nil || op.Error != nil {
			t.Errorf("created = %+v", op)
		}
		got, err := c.Operations.GetVideosOperation(ctx, op, nil)
		if err != nil || got.Done || got.Response != nil {
			t.Fatalf("running = %+v, %v", got, err)
		}
		finish(t, srv, op.Name, geminitest.Succeed)
		got, err = c.Operations.GetVideosOperation(ctx, op, nil)
		if err != nil || got.Name != op.Name || !got.Done || got.Error != nil || got.Response == nil || len(got.Response.GeneratedVideos) != 2 {
			t.Fatalf("done = %+v, %v", got, err)
		}
		for i, v := range got.Response.GeneratedVideos {
			if v.Video == nil || v.Video.URI == "" {
				t.Fatalf("video %d = %+v", i, v.Video)
			}
			b, err := c.Files.Download(ctx, genai.NewDownloadURIFromGeneratedVideo(v), nil)
			if err != nil || len(b) == 0 {
				t.Errorf("Files.Download(video %d) = %d bytes, %v", i, len(b), err)
			}
		}

		failed, err := c.Models.GenerateVideosFromSource(ctx, "veo-3.0-generate-001", &genai.GenerateVideosSource{Prompt: "x"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		finish(t, srv, failed.Name, geminitest.Fail(3, "blocked"))
		got, err = c.Operations.GetVideosOperation(ctx, failed, nil)
		if err != nil || !got.Done || got.Response != nil {
			t.Fatalf("failed = %+v, %v", got, err)
		}
		if diff := cmp.Diff(map[string]any{"code": float64(3), "message": "blocked"}, got.Error); diff != "" {
			t.Errorf("Error (-want +got):\n%s", diff)
		}

		_, err = c.Operations.GetVideosOperation(ctx, &genai.GenerateVideosOperation{Name: "models/veo-3.0-generate-001/operations/nope"}, nil)
		wantAPIError(t, err, http.StatusNotFound, "NOT_FOUND")
		_, err = c.Models.GenerateVideosFromSource(ctx, "veo-3.0-generate-001", &genai.GenerateVideosSource{Prompt: "x"},
			&genai.GenerateVideosConfig{NumberOfVideos: 9})
		wantAPIError(t, err, http.StatusBadRequest, "INVALID_ARGUMENT")
	})

	t.Run("interactions", func(t *testing.T) {
		clk.set(t0)
		wc := &ia.WebhookConfig{Uris: []string{ok.URL}, UserMetadata: map[string]any{"k": "v"}}
		for _, tt := range []struct {
			name  string
			req   operations.CreateInteractionRequest
			agent bool
			video bool
		}{
			{"model", modelInteraction("gemini-2.5-flash", wc), false, false},
			{"agent", agentInteraction(wc), true, false},
			{"video", videoInteraction(wc), false, true},
		} {
			t.Run(tt.name, func(t *testing.T) {
				clk.set(t0)
				res, err := c.Interactions.Create(ctx, tt.req, noRetry)
				if err != nil {
					t.Fatalf("Create: %v", err)
				}
				in := res.Interaction
				if in.ID == nil || in.Status != ia.InteractionStatusInProgress || in.Created == nil || in.Updated == nil ||
					(in.Agent != nil) != tt.agent || (in.Model != nil) == tt.agent {
					t.Fatalf("created = %+v", in)
				}
				wantMatch(t, "ID", interactionID, *in.ID)
				if *in.Created != "2026-05-01T10:00:00Z" || *in.Updated != *in.Created {
					t.Errorf("created %s updated %s", *in.Created, *in.Updated)
				}
				if in.WebhookConfig == nil || !cmp.Equal(in.WebhookConfig.Uris, wc.Uris) || !cmp.Equal(in.WebhookConfig.UserMetadata, wc.UserMetadata) {
					t.Errorf("webhook_config = %+v", in.WebhookConfig)
				}
				clk.set(t1)
				finish(t, srv, *in.ID, geminitest.Succeed)
				got, err := c.Interactions.Get(ctx, operations.GetInteractionByIDRequest{ID: *in.ID}, noRetry)
				if err != nil {
					t.Fatalf("Get: %v", err)
				}
				done := got.Interaction
				if done.Status != ia.InteractionStatusCompleted || *done.Updated != "2026-05-01T10:07:00Z" || *done.Created != *in.Created {
					t.Errorf("completed = %+v", done)
				}
				if tt.video != (done.OutputVideo != nil) || tt.video == (done.OutputText != nil) {
					t.Errorf("output text %v video %+v", done.OutputText, done.OutputVideo)
				}
				if _, err := c.Interactions.Delete(ctx, operations.DeleteInteractionRequest{ID: *in.ID}, noRetry); err != nil {
					t.Fatalf("Delete: %v", err)
				}
				_, err = c.Interactions.Get(ctx, operations.GetInteractionByIDRequest{ID: *in.ID}, noRetry)
				var nf *apierrors.GetInteractionByIDClientError
				if !errors.As(err, &nf) || nf.HTTPMeta.Response.StatusCode != 404 || *nf.Error_.Code != "not_found" || *nf.Error_.Message == "" {
					t.Errorf("Get after Delete: %v (%T)", err, err)
				}
			})
		}

		res, err := c.Interactions.Create(ctx, modelInteraction("gemini-2.5-flash", nil), noRetry)
		if err != nil {
			t.Fatal(err)
		}
		cres, err := c.Interactions.Cancel(ctx, operations.CancelInteractionByIDRequest{ID: *res.Interaction.ID}, noRetry)
		if err != nil || cres.Interaction.Status != ia.InteractionStatusCancelled || *cres.Interaction.ID != *res.Interaction.ID {
			t.Fatalf("Cancel = %+v, %v", cres, err)
		}
		res, err = c.Interactions.Create(ctx, modelInteraction("gemini-2.5-flash", nil), noRetry)
		if err != nil {
			t.Fatal(err)
		}
		finish(t, srv, *res.Interaction.ID, geminitest.RequireAction)
		got, err := c.Interactions.Get(ctx, operations.GetInteractionByIDRequest{ID: *res.Interaction.ID}, noRetry)
		if err != nil || got.Interaction.Status != ia.InteractionStatusRequiresAction {
			t.Errorf("requires_action = %+v, %v", got, err)
		}
		_, err = c.Interactions.Delete(ctx, operations.DeleteInteractionRequest{ID: "v1_nope"}, noRetry)
		var dnf *apierrors.DeleteInteractionClientError
		if !errors.As(err, &dnf) || *dnf.Error_.Code != "not_found" {
			t.Errorf("Delete unknown: %v (%T)", err, err)
		}
		in := ia.NewInteractionsInput("x")
		_, err = c.Interactions.Create(ctx, operations.CreateInteractionRequest{Body: operations.NewCreateInteractionRequestBody(
			ia.CreateAgentInteraction{Agent: ia.AgentOptionDeepResearchPreview042026, Input: &in})}, noRetry)
		var bad *apierrors.CreateInteractionClientError
		if !errors.As(err, &bad) || bad.HTTPMeta.Response.StatusCode != 400 || *bad.Error_.Code != "invalid_request" {
			t.Errorf("foreground agent: %v (%T)", err, err)
		}
	})

	t.Run("webhooks", func(t *testing.T) {
		clk.set(t0)
		wh := createWebhook(t, c, ok.URL, webhooks.WebhookSubscribedEventBatchSucceeded, webhooks.WebhookSubscribedEventVideoGenerated)
		wantMatch(t, "ID", webhookID, *wh.ID)
		if *wh.Name != "test hook" || wh.URI != ok.URL || *wh.State != webhooks.WebhookStateEnabled ||
			len(wh.SubscribedEvents) != 2 || wh.NewSigningSecret == nil || len(wh.SigningSecrets) != 1 ||
			wh.SigningSecrets[0].ExpireTime != nil || *wh.SigningSecrets[0].TruncatedSecret != (*wh.NewSigningSecret)[:10]+"..." {
			t.Fatalf("created = %+v", wh)
		}
		wantTime(t, "CreateTime", *wh.CreateTime, t0)
		wantTime(t, "UpdateTime", *wh.UpdateTime, t0)

		got, err := c.Webhooks.Get(ctx, operations.GetWebhookRequest{ID: *wh.ID}, noRetry)
		if err != nil || got.Webhook.NewSigningSecret != nil || *got.Webhook.ID != *wh.ID {
			t.Fatalf("Get = %+v, %v", got, err)
		}
		list, err := c.Webhooks.List(ctx, operations.ListWebhooksRequest{}, noRetry)
		if err != nil || len(list.WebhookListResponse.Webhooks) != 1 || list.WebhookListResponse.NextPageToken != nil {
			t.Fatalf("List = %+v, %v", list, err)
		}

		clk.set(t1)
		up, err := c.Webhooks.Update(ctx, operations.UpdateWebhookRequest{ID: *wh.ID, UpdateMask: genai.Ptr("state"),
			Body: webhooks.WebhookUpdate{State: webhooks.WebhookUpdateStateDisabled.ToPointer()}}, noRetry)
		if err != nil || *up.Webhook.State != webhooks.WebhookStateDisabled || *up.Webhook.Name != "test hook" {
			t.Fatalf("Update = %+v, %v", up, err)
		}
		wantTime(t, "UpdateTime", *up.Webhook.UpdateTime, t1)
		wantTime(t, "CreateTime", *up.Webhook.CreateTime, t0)

		if _, err := c.Webhooks.Ping(ctx, operations.PingWebhookRequest{ID: *wh.ID}, noRetry); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		rot, err := c.Webhooks.RotateSigningSecret(ctx, operations.RotateSigningSecretRequest{ID: *wh.ID,
			Body: webhooks.RotateSigningSecretRequest{RevocationBehavior: webhooks.RevocationBehaviorRevokePreviousSecretsAfterH24.ToPointer()}}, noRetry)
		if err != nil || rot.WebhookRotateSigningSecretResponse.Secret == nil || *rot.WebhookRotateSigningSecretResponse.Secret == *wh.NewSigningSecret {
			t.Fatalf("Rotate = %+v, %v", rot, err)
		}
		got, err = c.Webhooks.Get(ctx, operations.GetWebhookRequest{ID: *wh.ID}, noRetry)
		if err != nil || len(got.Webhook.SigningSecrets) != 2 || got.Webhook.SigningSecrets[1].ExpireTime == nil {
			t.Fatalf("after Rotate = %+v, %v", got, err)
		}
		wantTime(t, "old secret ExpireTime", *got.Webhook.SigningSecrets[1].ExpireTime, t1.Add(geminitest.SecretOverlap))

		if _, err := c.Webhooks.Delete(ctx, operations.DeleteWebhookRequest{ID: *wh.ID}, noRetry); err != nil {
			t.Fatalf("Delete: %v", err)
		}
		_, err = c.Webhooks.Get(ctx, operations.GetWebhookRequest{ID: *wh.ID}, noRetry)
		var ae *apierrors.APIError
		if !errors.As(err, &ae) || ae.StatusCode != 404 {
			t.Fatalf("Get after Delete: %v (%T)", err, err)
		}
		if code, status, _ := googleError(t, []byte(ae.Body)); code != 404 || status != "NOT_FOUND" {
			t.Errorf("error %d %s", code, status)
		}
	})
	waitIdle(t, srv)
	if f := srv.Failed(); len(f) != 0 {
		t.Errorf("failed deliveries: %+v", f)
	}
}
