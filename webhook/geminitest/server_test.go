package geminitest_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/genai"
	"google.golang.org/genai/interactions/models/apierrors"
	ia "google.golang.org/genai/interactions/models/interactions"
	"google.golang.org/genai/interactions/models/operations"
	"google.golang.org/genai/interactions/models/webhooks"
	"google.golang.org/genai/interactions/retry"

	"github.com/genaihook/genaihook/verify"
	"github.com/genaihook/genaihook/webhook"
	"github.com/genaihook/genaihook/webhook/geminitest"
	"github.com/genaihook/genaihook/webhook/webhooktest"
)

// noRetry turns off the interactions client's default retries, which would
// slow a failing test down by up to 30 s.
var noRetry = operations.WithRetries(retry.Config{Strategy: "none"})

// receiver is an app endpoint: a webhook.Handler with a real Verifier on
// an httptest.Server, recording the events it accepts. Like a production
// receiver it binds dynamic deliveries: it accepts one whose user_metadata
// holds its Binder's token (put there with bind), or whose data.id is a job
// it created (recorded with created: for batches, which may carry no
// user_metadata).
type receiver struct {
	URL    string
	binder *webhook.Binder
	mu     sync.Mutex
	evs    []*webhook.Event
	jobs   map[string]bool
	got    chan struct{} // receives once per accepted event, never blocks
}

// newReceiver starts a receiver whose verifier gets cfg(url), url being
// the receiver's own URL (the audience of JWT deliveries).
func newReceiver(t *testing.T, cfg func(url string) verify.Config) *receiver {
	t.Helper()
	binder, err := webhook.NewBinder([]byte("geminitest receiver binder key, 32+ bytes"))
	if err != nil {
		t.Fatal(err)
	}
	rc := &receiver{binder: binder, jobs: map[string]bool{}, got: make(chan struct{}, 100)}
	var h http.Handler
	ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	ts.Start()
	t.Cleanup(ts.Close)
	rc.URL = ts.URL + "/hook"
	v, err := verify.New(cfg(rc.URL))
	if err != nil {
		t.Fatalf("verify.New: %v", err)
	}
	h = webhook.NewHandler(v, func(_ context.Context, ev *webhook.Event) error {
		rc.mu.Lock()
		rc.evs = append(rc.evs, ev)
		rc.mu.Unlock()
		select {
		case rc.got <- struct{}{}:
		default:
		}
		return nil
	}, webhook.WithBinding(webhook.AnyOf(rc.binder.Check, rc.createdJob)), webhook.WithLogger(quiet))
	return rc
}

// bind returns md with the receiver's binding token added, for a job's
// webhook_config.user_metadata.
func (rc *receiver) bind(md map[string]any) map[string]any {
	out := rc.binder.Metadata("test-job")
	for k, v := range md {
		out[k] = v
	}
	return out
}

// created records id as a job this receiver created.
func (rc *receiver) created(id string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.jobs[id] = true
}

// createdJob is a webhook.BindingCheck accepting the events of jobs
// recorded with created.
func (rc *receiver) createdJob(_ context.Context, ev *webhook.Event) error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if !rc.jobs[ev.Data.ID] {
		return fmt.Errorf("%w: %q is no job of this receiver", webhook.ErrNotBound, ev.Data.ID)
	}
	return nil
}

// metadata is ev's user_metadata decoded, or nil without one.
func metadata(ev *webhook.Event) map[string]any {
	var md map[string]any
	if ev.UserMetadata != nil && json.Unmarshal(ev.UserMetadata, &md) != nil {
		panic(fmt.Sprintf("user_metadata %q is not a JSON object", ev.UserMetadata))
	}
	return md
}

// appMetadata is ev's user_metadata without the binding entries.
func appMetadata(ev *webhook.Event) map[string]any {
	md := metadata(ev)
	if md == nil {
		return nil
	}
	delete(md, webhook.MetadataKey)
	delete(md, webhook.MetadataToken)
	return md
}

// quiet discards the handler's warnings about deliveries a test expects
// it to refuse.
var quiet = slog.New(slog.DiscardHandler)

func (rc *receiver) events() []*webhook.Event {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]*webhook.Event(nil), rc.evs...)
}

// only returns the single event received, failing the test otherwise.
func (rc *receiver) only(t *testing.T) *webhook.Event {
	t.Helper()
	evs := rc.events()
	if len(evs) != 1 {
		t.Fatalf("receiver got %d events, want 1: %v", len(evs), eventTypes(evs))
	}
	return evs[0]
}

func eventTypes(evs []*webhook.Event) []webhook.EventType {
	var ts []webhook.EventType
	for _, ev := range evs {
		ts = append(ts, ev.Type)
	}
	return ts
}

func staticReceiver(t *testing.T, secrets ...string) *receiver {
	return newReceiver(t, func(string) verify.Config { return verify.Config{Secrets: secrets} })
}

func dynamicReceiver(t *testing.T, srv *geminitest.Server) *receiver {
	return newReceiver(t, func(url string) verify.Config {
		return verify.Config{JWKSURL: srv.JWKSURL(), Audience: url}
	})
}

func newServer(t *testing.T) (*geminitest.Server, *genai.Client) {
	t.Helper()
	srv := geminitest.NewServer()
	t.Cleanup(srv.Close)
	return srv, srv.Client(t.Context())
}

func waitIdle(t *testing.T, srv *geminitest.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := srv.WaitIdle(ctx); err != nil {
		t.Fatalf("WaitIdle: %v", err)
	}
}

func finish(t *testing.T, srv *geminitest.Server, id string, o geminitest.Outcome) {
	t.Helper()
	if err := srv.Finish(id, o); err != nil {
		t.Fatalf("Finish(%q, %v): %v", id, o, err)
	}
}

func inlined(texts ...string) *genai.BatchJobSource {
	src := &genai.BatchJobSource{}
	for i, text := range texts {
		src.InlinedRequests = append(src.InlinedRequests, &genai.InlinedRequest{
			Contents: genai.Text(text),
			Metadata: map[string]string{"key": "req-" + string(rune('1'+i))},
		})
	}
	return src
}

func createWebhook(t *testing.T, c *genai.Client, uri string, events ...webhooks.WebhookSubscribedEvent) *webhooks.Webhook {
	t.Helper()
	res, err := c.Webhooks.Create(t.Context(), operations.CreateWebhookRequest{
		Body: webhooks.WebhookInput{Name: genai.Ptr("test hook"), URI: uri, SubscribedEvents: events},
	}, noRetry)
	if err != nil {
		t.Fatalf("Webhooks.Create: %v", err)
	}
	return res.Webhook
}

func wantAPIError(t *testing.T, err error, code int, status string) genai.APIError {
	t.Helper()
	var ae genai.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v (%T), want a genai.APIError", err, err)
	}
	if ae.Code != code || ae.Status != status {
		t.Errorf("APIError code %d status %q, want %d %q (message %q)", ae.Code, ae.Status, code, status, ae.Message)
	}
	return ae
}

// wantWebhooksError checks an error of the webhooks client, which hands
// the body over undecoded: Google's error shape.
func wantWebhooksError(t *testing.T, err error, code int) {
	t.Helper()
	var ae *apierrors.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v (%T), want an *apierrors.APIError", err, err)
	}
	if ae.StatusCode != code {
		t.Errorf("StatusCode = %d, want %d (body %s)", ae.StatusCode, code, ae.Body)
	}
	var body struct {
		Error struct {
			Code   int    `json:"code"`
			Status string `json:"status"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(ae.Body), &body); err != nil || body.Error.Code != code || body.Error.Status == "" {
		t.Errorf("error body %s is not Google's error shape for %d", ae.Body, code)
	}
}

// TestServerBatchInlinedDynamic follows an inlined batch with a dynamic
// webhook from Batches.Create to the receiver's verified event (v1a,
// Ed25519 keys from the server's JWKS).
func TestServerBatchInlinedDynamic(t *testing.T) {
	srv, c := newServer(t)
	rc := dynamicReceiver(t, srv)
	ctx := t.Context()

	job, err := c.Batches.Create(ctx, "gemini-2.5-flash", inlined("hello", "world"), &genai.CreateBatchJobConfig{
		DisplayName: "inlined",
		WebhookConfig: &genai.WebhookConfig{
			Uris:         []string{rc.URL},
			UserMetadata: rc.bind(map[string]any{"job_id": "j-42", "attempt": 1}),
		},
	})
	if err != nil {
		t.Fatalf("Batches.Create: %v", err)
	}
	if !strings.HasPrefix(job.Name, "batches/") || job.State != genai.JobStatePending ||
		job.Model != "models/gemini-2.5-flash" || job.DisplayName != "inlined" || job.CreateTime.IsZero() {
		t.Fatalf("created job = %+v", job)
	}
	got, err := c.Batches.Get(ctx, job.Name, nil)
	if err != nil || got.State != genai.JobStatePending || got.Dest != nil {
		t.Fatalf("Get before Finish = %+v, %v", got, err)
	}

	finish(t, srv, job.Name, geminitest.Succeed)
	got, err = c.Batches.Get(ctx, job.Name, nil)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.State != genai.JobStateSucceeded || got.EndTime.IsZero() || got.Dest == nil || len(got.Dest.InlinedResponses) != 2 {
		t.Fatalf("Get after Finish = %+v", got)
	}
	r0 := got.Dest.InlinedResponses[0]
	if r0.Response == nil || r0.Response.Text() == "" || r0.Metadata["key"] != "req-1" {
		t.Errorf("inlined response = %+v", r0)
	}

	waitIdle(t, srv)
	ev := rc.only(t)
	if ev.Type != webhook.BatchSucceeded || ev.Data.ID != job.Name || ev.Auth.Scheme != verify.SchemeEd25519 {
		t.Errorf("event = %s %q via %s", ev.Type, ev.Data.ID, ev.Auth.Scheme)
	}
	if diff := cmp.Diff(map[string]any{"job_id": "j-42", "attempt": float64(1)}, appMetadata(ev)); diff != "" {
		t.Errorf("user_metadata (-want +got):\n%s", diff)
	}
	ds := srv.Deliveries()
	if len(ds) != 1 || !ds[0].Done || ds[0].Err != nil || ds[0].URL != rc.URL || ds[0].Webhook != "" ||
		ds[0].Scheme != verify.SchemeEd25519 || ds[0].JobID != job.Name || len(ds[0].Attempts) != 1 {
		t.Errorf("Deliveries() = %+v", ds)
	}
}

// TestServerBatchOutcomesStatic ends file batches every way, with events
// going to a static webhook verified with its new_signing_secret.
func TestServerBatchOutcomesStatic(t *testing.T) {
	srv, c := newServer(t)
	ctx := t.Context()
	var rc *receiver
	hook := func() *webhooks.Webhook {
		// The receiver needs the secret, the webhook the receiver's URL:
		// create the webhook at a placeholder, then point it at rc.
		wh := createWebhook(t, c, "https://placeholder.example/hook",
			webhooks.WebhookSubscribedEventBatchSucceeded, webhooks.WebhookSubscribedEventBatchFailed,
			webhooks.WebhookSubscribedEventBatchExpired, "batch.cancelled")
		rc = staticReceiver(t, *wh.NewSigningSecret)
		res, err := c.Webhooks.Update(ctx, operations.UpdateWebhookRequest{
			ID: *wh.ID, UpdateMask: genai.Ptr("uri"), Body: webhooks.WebhookUpdate{URI: &rc.URL},
		}, noRetry)
		if err != nil {
			t.Fatalf("Webhooks.Update: %v", err)
		}
		return res.Webhook
	}()
	if hook.URI != rc.URL {
		t.Fatalf("updated uri = %q", hook.URI)
	}

	tests := []struct {
		name      string
		outcome   geminitest.Outcome
		cancel    bool // through Batches.Cancel instead of Finish
		shortID   bool // Finish with the bare id
		wantState genai.JobState
		wantType  webhook.EventType
		check     func(t *testing.T, job *genai.BatchJob, ev *webhook.Event)
	}{
		{name: "succeed", outcome: geminitest.Succeed, wantState: genai.JobStateSucceeded, wantType: webhook.BatchSucceeded,
			check: func(t *testing.T, job *genai.BatchJob, ev *webhook.Event) {
				if job.Dest == nil || !strings.HasPrefix(job.Dest.FileName, "files/") {
					t.Errorf("Dest = %+v, want a responses file", job.Dest)
				}
				if ev.Data.OutputFileURI != job.Dest.FileName {
					t.Errorf("output_file_uri = %q, want the file batches.get names, %q", ev.Data.OutputFileURI, job.Dest.FileName)
				}
			}},
		{name: "fail", outcome: geminitest.Fail(13, "internal error"), shortID: true, wantState: genai.JobStateFailed, wantType: webhook.BatchFailed,
			check: func(t *testing.T, job *genai.BatchJob, ev *webhook.Event) {
				if n, ok := ev.Data.ErrorCode.Int(); !ok || n != 13 || ev.Data.ErrorMessage != "internal error" {
					t.Errorf("error = %q %q", ev.Data.ErrorCode, ev.Data.ErrorMessage)
				}
			}},
		{name: "expire", outcome: geminitest.Expire, wantState: genai.JobStateExpired, wantType: webhook.BatchExpired},
		{name: "cancel", cancel: true, wantState: genai.JobStateCancelled, wantType: webhook.BatchCancelled},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job, err := c.Batches.Create(ctx, "models/gemini-2.5-flash", &genai.BatchJobSource{FileName: "files/input" + tt.name}, nil)
			if err != nil {
				t.Fatalf("Batches.Create: %v", err)
			}
			switch {
			case tt.cancel:
				if err := c.Batches.Cancel(ctx, job.Name, nil); err != nil {
					t.Fatalf("Batches.Cancel: %v", err)
				}
			case tt.shortID:
				finish(t, srv, strings.TrimPrefix(job.Name, "batches/"), tt.outcome)
			default:
				finish(t, srv, job.Name, tt.outcome)
			}
			got, err := c.Batches.Get(ctx, job.Name, nil)
			if err != nil || got.State != tt.wantState {
				t.Fatalf("Get = %+v, %v; want state %s", got, err, tt.wantState)
			}
			waitIdle(t, srv)
			evs := rc.events()
			if len(evs) != i+1 {
				t.Fatalf("receiver has %d events, want %d", len(evs), i+1)
			}
			ev := evs[i]
			if ev.Type != tt.wantType || ev.Data.ID != job.Name || ev.Auth.Scheme != verify.SchemeHMAC || ev.UserMetadata != nil {
				t.Errorf("event = %s %q via %s, metadata %v", ev.Type, ev.Data.ID, ev.Auth.Scheme, ev.UserMetadata)
			}
			if tt.check != nil {
				tt.check(t, got, ev)
			}
			if err := c.Batches.Cancel(ctx, job.Name, nil); !tt.cancel {
				wantAPIError(t, err, http.StatusBadRequest, "FAILED_PRECONDITION")
			} else if err != nil {
				t.Errorf("second Cancel of a cancelled batch: %v", err)
			}
		})
	}
}

// TestServerBatchListDelete pages through batches with List and All, and
// deletes one.
func TestServerBatchListDelete(t *testing.T) {
	srv, c := newServer(t)
	ctx := t.Context()
	page, err := c.Batches.List(ctx, nil)
	if err != nil || len(page.Items) != 0 {
		t.Fatalf("List of none = %+v, %v", page.Items, err)
	}
	var names []string
	for range 3 {
		job, err := c.Batches.Create(ctx, "gemini-2.5-flash", inlined("x"), nil)
		if err != nil {
			t.Fatalf("Batches.Create: %v", err)
		}
		names = append(names, job.Name)
	}
	finish(t, srv, names[1], geminitest.Succeed)

	page, err = c.Batches.List(ctx, &genai.ListBatchJobsConfig{PageSize: 2})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(page.Items) != 2 || page.NextPageToken == "" {
		t.Fatalf("first page: %d items, next %q", len(page.Items), page.NextPageToken)
	}
	if page.Items[1].State != genai.JobStateSucceeded {
		t.Errorf("listed state = %s", page.Items[1].State)
	}
	next, err := page.Next(ctx)
	if err != nil || len(next.Items) != 1 || next.Items[0].Name != names[2] {
		t.Fatalf("second page = %+v, %v", next.Items, err)
	}
	var all []string
	for job, err := range c.Batches.All(ctx) {
		if err != nil {
			t.Fatalf("All: %v", err)
		}
		all = append(all, job.Name)
	}
	if diff := cmp.Diff(names, all); diff != "" {
		t.Errorf("All (-want +got):\n%s", diff)
	}

	if _, err := c.Batches.Delete(ctx, names[0], nil); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err = c.Batches.Get(ctx, names[0], nil)
	wantAPIError(t, err, http.StatusNotFound, "NOT_FOUND")
	_, err = c.Batches.Delete(ctx, names[0], nil)
	wantAPIError(t, err, http.StatusNotFound, "NOT_FOUND")
	if err := srv.Finish(names[0], geminitest.Succeed); err == nil {
		t.Error("Finish of a deleted batch succeeded")
	}
	err = c.Batches.Cancel(ctx, "batches/nope", nil)
	wantAPIError(t, err, http.StatusNotFound, "NOT_FOUND")
	_, err = c.Batches.Create(ctx, "gemini-2.5-flash", inlined("x"), &genai.CreateBatchJobConfig{
		WebhookConfig: &genai.WebhookConfig{Uris: []string{"not a url"}},
	})
	wantAPIError(t, err, http.StatusBadRequest, "INVALID_ARGUMENT")
}

// TestServerBatchUserMetadataBug reproduces the live 400 for a batch
// webhookConfig with userMetadata, and shows the same batch without
// metadata going through.
func TestServerBatchUserMetadataBug(t *testing.T) {
	srv, c := newServer(t)
	srv.BatchUserMetadataBug = true
	ctx := t.Context()
	rc := dynamicReceiver(t, srv)
	wc := &genai.WebhookConfig{Uris: []string{rc.URL}, UserMetadata: map[string]any{"job_id": "j-1"}}
	_, err := c.Batches.Create(ctx, "gemini-2.5-flash", inlined("x"), &genai.CreateBatchJobConfig{WebhookConfig: wc})
	ae := wantAPIError(t, err, http.StatusBadRequest, "INVALID_ARGUMENT")
	const want = `Invalid JSON payload received. Unknown name "userMetadata" at 'batch.webhook_config': Cannot find field.`
	if ae.Message != want {
		t.Errorf("message = %q, want %q", ae.Message, want)
	}

	// Without metadata the batch is created, and its event, carrying no
	// token, is bound by being a job the receiver created.
	wc.UserMetadata = nil
	job, err := c.Batches.Create(ctx, "gemini-2.5-flash", inlined("x"), &genai.CreateBatchJobConfig{WebhookConfig: wc})
	if err != nil {
		t.Fatalf("Create without metadata: %v", err)
	}
	rc.created(job.Name)
	finish(t, srv, job.Name, geminitest.Succeed)
	waitIdle(t, srv)
	if ev := rc.only(t); ev.Data.ID != job.Name || ev.UserMetadata != nil {
		t.Errorf("event %q with metadata %v", ev.Data.ID, ev.UserMetadata)
	}

	// Video webhookConfig is unaffected.
	_, err = c.Models.GenerateVideos(ctx, "veo-3.0-generate-001", "a cat", nil, &genai.GenerateVideosConfig{
		WebhookConfig: &genai.WebhookConfig{Uris: []string{rc.URL}, UserMetadata: map[string]any{"k": "v"}},
	})
	if err != nil {
		t.Errorf("GenerateVideos with metadata: %v", err)
	}
}

// TestServerVideos generates videos with a dynamic webhook in the JWT form
// (aud = the delivery URI), polls the operation, downloads the video, and
// fails another one.
func TestServerVideos(t *testing.T) {
	srv, c := newServer(t)
	srv.DynamicScheme = verify.SchemeJWT
	ctx := t.Context()
	rc := dynamicReceiver(t, srv)

	op, err := c.Models.GenerateVideos(ctx, "veo-3.0-generate-001", "a cat", nil, &genai.GenerateVideosConfig{
		NumberOfVideos: 2,
		WebhookConfig:  &genai.WebhookConfig{Uris: []string{rc.URL}, UserMetadata: rc.bind(map[string]any{"k": "v"})},
	})
	if err != nil {
		t.Fatalf("GenerateVideos: %v", err)
	}
	if !strings.HasPrefix(op.Name, "models/veo-3.0-generate-001/operations/") || op.Done {
		t.Fatalf("operation = %+v", op)
	}
	got, err := c.Operations.GetVideosOperation(ctx, op, nil)
	if err != nil || got.Done {
		t.Fatalf("GetVideosOperation before Finish = %+v, %v", got, err)
	}
	// The short operation id works too.
	finish(t, srv, op.Name[strings.LastIndex(op.Name, "/")+1:], geminitest.Succeed)
	got, err = c.Operations.GetVideosOperation(ctx, op, nil)
	if err != nil {
		t.Fatalf("GetVideosOperation: %v", err)
	}
	if !got.Done || got.Error != nil || got.Response == nil || len(got.Response.GeneratedVideos) != 2 {
		t.Fatalf("done operation = %+v", got)
	}
	video := got.Response.GeneratedVideos[0].Video
	data, err := c.Files.Download(ctx, genai.NewDownloadURIFromVideo(video), nil)
	if err != nil || len(data) == 0 {
		t.Errorf("Files.Download = %d bytes, %v", len(data), err)
	}

	waitIdle(t, srv)
	ev := rc.only(t)
	if ev.Type != webhook.VideoGenerated || ev.Data.ID != op.Name || ev.Auth.Scheme != verify.SchemeJWT {
		t.Errorf("event = %s %q via %s", ev.Type, ev.Data.ID, ev.Auth.Scheme)
	}
	if ev.Data.OutputFileURI != video.URI || !strings.HasPrefix(ev.Data.FileName, "files/") {
		t.Errorf("output_file_uri %q (video %q), file_name %q", ev.Data.OutputFileURI, video.URI, ev.Data.FileName)
	}
	if ev.Auth.Claims == nil || !cmp.Equal(ev.Auth.Claims.Audience, []string{rc.URL}) {
		t.Errorf("JWT claims = %+v, want aud %s", ev.Auth.Claims, rc.URL)
	}
	if metadata(ev)["k"] != "v" {
		t.Errorf("user_metadata = %v", ev.UserMetadata)
	}

	failed, err := c.Models.GenerateVideosFromSource(ctx, "veo-3.0-generate-001", &genai.GenerateVideosSource{Prompt: "a dog"},
		&genai.GenerateVideosConfig{WebhookConfig: &genai.WebhookConfig{Uris: []string{rc.URL}}})
	if err != nil {
		t.Fatalf("GenerateVideosFromSource: %v", err)
	}
	finish(t, srv, failed.Name, geminitest.Fail(3, "blocked"))
	got, err = c.Operations.GetVideosOperation(ctx, failed, nil)
	if err != nil || !got.Done || got.Response != nil {
		t.Fatalf("failed operation = %+v, %v", got, err)
	}
	if diff := cmp.Diff(map[string]any{"code": float64(3), "message": "blocked"}, got.Error); diff != "" {
		t.Errorf("Error (-want +got):\n%s", diff)
	}
	waitIdle(t, srv)
	if n := len(rc.events()); n != 1 {
		t.Errorf("a failed video sent an event: %d events", n)
	}

	_, err = c.Operations.GetVideosOperation(ctx, &genai.GenerateVideosOperation{Name: "models/veo/operations/nope"}, nil)
	wantAPIError(t, err, http.StatusNotFound, "NOT_FOUND")
}

func modelInteraction(model string, wc *ia.WebhookConfig) operations.CreateInteractionRequest {
	in := ia.NewInteractionsInput("hello")
	return operations.CreateInteractionRequest{Body: operations.NewCreateInteractionRequestBody(ia.CreateModelInteraction{
		Model: ia.Model(model), Input: &in, Background: genai.Ptr(true), WebhookConfig: wc,
	})}
}

func agentInteraction(wc *ia.WebhookConfig) operations.CreateInteractionRequest {
	in := ia.NewInteractionsInput("research this")
	return operations.CreateInteractionRequest{Body: operations.NewCreateInteractionRequestBody(ia.CreateAgentInteraction{
		Agent: ia.AgentOptionDeepResearchPreview042026, Input: &in, Background: genai.Ptr(true), WebhookConfig: wc,
	})}
}

// TestServerInteractions takes background interactions, model and agent,
// through requires_action, completion, failure and cancellation.
func TestServerInteractions(t *testing.T) {
	srv, c := newServer(t)
	ctx := t.Context()
	rc := dynamicReceiver(t, srv)
	wc := &ia.WebhookConfig{Uris: []string{rc.URL}, UserMetadata: rc.bind(map[string]any{"job_id": "j-43"})}

	res, err := c.Interactions.Create(ctx, agentInteraction(wc), noRetry)
	if err != nil {
		t.Fatalf("Interactions.Create(agent): %v", err)
	}
	in := res.Interaction
	if in.ID == nil || !strings.HasPrefix(*in.ID, "v1_") || in.Status != ia.InteractionStatusInProgress ||
		in.Agent == nil || *in.Agent != ia.AgentOptionDeepResearchPreview042026 || in.Created == nil || in.WebhookConfig == nil {
		t.Fatalf("created interaction = %+v", in)
	}
	id := *in.ID
	get := func(id string) *ia.Interaction {
		t.Helper()
		res, err := c.Interactions.Get(ctx, operations.GetInteractionByIDRequest{ID: id}, noRetry)
		if err != nil {
			t.Fatalf("Interactions.Get: %v", err)
		}
		return res.Interaction
	}

	finish(t, srv, id, geminitest.RequireAction)
	if s := get(id).Status; s != ia.InteractionStatusRequiresAction {
		t.Errorf("status = %s, want requires_action", s)
	}
	finish(t, srv, id, geminitest.Succeed)
	done := get(id)
	if done.Status != ia.InteractionStatusCompleted || done.OutputText == nil || *done.OutputText == "" {
		t.Errorf("completed interaction = %+v", done)
	}

	res, err = c.Interactions.Create(ctx, modelInteraction("gemini-2.5-flash", wc), noRetry)
	if err != nil {
		t.Fatalf("Interactions.Create(model): %v", err)
	}
	failedID := *res.Interaction.ID
	finish(t, srv, failedID, geminitest.Fail(13, "model overloaded"))
	if s := get(failedID).Status; s != ia.InteractionStatusFailed {
		t.Errorf("status = %s, want failed", s)
	}

	res, err = c.Interactions.Create(ctx, modelInteraction("gemini-2.5-flash", wc), noRetry)
	if err != nil {
		t.Fatalf("Interactions.Create(model): %v", err)
	}
	cancelID := *res.Interaction.ID
	cres, err := c.Interactions.Cancel(ctx, operations.CancelInteractionByIDRequest{ID: cancelID}, noRetry)
	if err != nil || cres.Interaction.Status != ia.InteractionStatusCancelled {
		t.Fatalf("Cancel = %+v, %v", cres, err)
	}
	_, err = c.Interactions.Cancel(ctx, operations.CancelInteractionByIDRequest{ID: cancelID}, noRetry)
	var pre *apierrors.CancelInteractionByIDClientError
	if !errors.As(err, &pre) || pre.HTTPMeta.Response.StatusCode != http.StatusBadRequest || *pre.Error_.Code != "failed_precondition" {
		t.Errorf("second Cancel: %v (%T)", err, err)
	}

	waitIdle(t, srv)
	type seen struct {
		Type webhook.EventType
		ID   string
		Code string
		Meta any
	}
	var got []seen
	for _, ev := range rc.events() {
		if ev.Auth.Scheme != verify.SchemeEd25519 {
			t.Errorf("%s via %s", ev.Type, ev.Auth.Scheme)
		}
		got = append(got, seen{ev.Type, ev.Data.ID, string(ev.Data.ErrorCode), metadata(ev)["job_id"]})
	}
	want := []seen{
		{webhook.InteractionRequiresAction, id, "", "j-43"},
		{webhook.InteractionCompleted, id, "", "j-43"},
		{webhook.InteractionFailed, failedID, "13", "j-43"},
		{webhook.InteractionCancelled, cancelID, "", "j-43"},
	}
	// Deliveries run concurrently, so, as with Gemini, order is not
	// guaranteed.
	bySeen := cmpopts.SortSlices(func(a, b seen) bool { return a.ID+string(a.Type) < b.ID+string(b.Type) })
	if diff := cmp.Diff(want, got, bySeen); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	_, err = c.Interactions.Get(ctx, operations.GetInteractionByIDRequest{ID: "v1_nope"}, noRetry)
	var nf *apierrors.GetInteractionByIDClientError
	if !errors.As(err, &nf) || nf.HTTPMeta.Response.StatusCode != http.StatusNotFound ||
		nf.Error_.Code == nil || *nf.Error_.Code != "not_found" || nf.Error_.Message == nil {
		t.Errorf("Get unknown: %v (%T)", err, err)
	}
	_, err = c.Interactions.Cancel(ctx, operations.CancelInteractionByIDRequest{ID: "v1_nope"}, noRetry)
	var cnf *apierrors.CancelInteractionByIDClientError
	if !errors.As(err, &cnf) || cnf.HTTPMeta.Response.StatusCode != http.StatusNotFound {
		t.Errorf("Cancel unknown: %v (%T)", err, err)
	}
	_, err = c.Interactions.Create(ctx, modelInteraction("gemini-2.5-flash", &ia.WebhookConfig{Uris: []string{"ftp://x"}}), noRetry)
	var bad *apierrors.CreateInteractionClientError
	if !errors.As(err, &bad) || bad.HTTPMeta.Response.StatusCode != http.StatusBadRequest || *bad.Error_.Code != "invalid_request" {
		t.Errorf("Create with a bad uri: %v (%T)", err, err)
	}
}

// TestServerWebhooksCRUD drives the static webhook API: create, list,
// get, update, ping, delete.
func TestServerWebhooksCRUD(t *testing.T) {
	srv, c := newServer(t)
	ctx := t.Context()
	rc := func() *receiver {
		wh := createWebhook(t, c, "https://placeholder.example/hook", webhooks.WebhookSubscribedEventInteractionCompleted)
		rc := staticReceiver(t, *wh.NewSigningSecret)
		_, err := c.Webhooks.Update(ctx, operations.UpdateWebhookRequest{
			ID: *wh.ID, UpdateMask: genai.Ptr("uri"), Body: webhooks.WebhookUpdate{URI: &rc.URL},
		}, noRetry)
		if err != nil {
			t.Fatalf("Update: %v", err)
		}
		return rc
	}()

	wh := createWebhook(t, c, rc.URL, webhooks.WebhookSubscribedEventBatchSucceeded, webhooks.WebhookSubscribedEventVideoGenerated)
	secret := *wh.NewSigningSecret
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if !strings.HasPrefix(secret, "whsec_") || err != nil || len(key) != 32 {
		t.Errorf("new_signing_secret %q: want whsec_ and base64 of 32 bytes", secret)
	}
	if !strings.HasPrefix(*wh.ID, "wh_") || *wh.State != webhooks.WebhookStateEnabled || *wh.Name != "test hook" ||
		len(wh.SigningSecrets) != 1 || wh.CreateTime == nil || wh.UpdateTime == nil {
		t.Errorf("created webhook = %+v", wh)
	}
	if ts := *wh.SigningSecrets[0].TruncatedSecret; !strings.HasPrefix(secret, strings.TrimSuffix(ts, "...")) || len(ts) >= len(secret) {
		t.Errorf("truncated_secret %q", ts)
	}

	for i := range 2 {
		createWebhook(t, c, "https://other.example/"+string(rune('a'+i)), webhooks.WebhookSubscribedEventBatchFailed)
	}
	lres, err := c.Webhooks.List(ctx, operations.ListWebhooksRequest{PageSize: genai.Ptr(3)}, noRetry)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	l := lres.WebhookListResponse
	if len(l.Webhooks) != 3 || l.NextPageToken == nil || *l.Webhooks[1].ID != *wh.ID || l.Webhooks[1].NewSigningSecret != nil {
		t.Fatalf("first page = %+v", l)
	}
	lres, err = c.Webhooks.List(ctx, operations.ListWebhooksRequest{PageSize: genai.Ptr(3), PageToken: l.NextPageToken}, noRetry)
	if err != nil || len(lres.WebhookListResponse.Webhooks) != 1 || lres.WebhookListResponse.NextPageToken != nil {
		t.Fatalf("second page = %+v, %v", lres, err)
	}

	gres, err := c.Webhooks.Get(ctx, operations.GetWebhookRequest{ID: *wh.ID}, noRetry)
	if err != nil || gres.Webhook.URI != rc.URL || gres.Webhook.NewSigningSecret != nil {
		t.Fatalf("Get = %+v, %v", gres, err)
	}

	// Ping goes to this webhook only, HMAC-signed, with an undocumented type.
	if _, err := c.Webhooks.Ping(ctx, operations.PingWebhookRequest{ID: *wh.ID}, noRetry); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	waitIdle(t, srv)
	// The receiver knows the first webhook's secret only, so the ping,
	// signed with the second's, was refused; verify it with the right one.
	ds := srv.Deliveries()
	if len(ds) != 1 || ds[0].Type != geminitest.PingEventType || ds[0].Webhook != *wh.ID || ds[0].JobID != *wh.ID {
		t.Fatalf("deliveries = %+v", ds)
	}
	v, err := verify.New(verify.Config{Secrets: []string{secret}})
	if err != nil {
		t.Fatal(err)
	}
	first := ds[0].Attempts[0]
	if res, err := v.Verify(ctx, first.RequestHeader, first.RequestBody); err != nil || res.Scheme != verify.SchemeHMAC {
		t.Errorf("ping does not verify with the webhook's secret: %v", err)
	}
	ev, err := webhook.Parse(first.RequestBody)
	if err != nil || ev.Type.Known() {
		t.Errorf("ping parses as %+v, %v; want an unknown type", ev, err)
	}

	// Disabled: no delivery.
	ures, err := c.Webhooks.Update(ctx, operations.UpdateWebhookRequest{
		ID: *wh.ID, UpdateMask: genai.Ptr("state,name"),
		Body: webhooks.WebhookUpdate{State: webhooks.WebhookUpdateStateDisabled.ToPointer(), Name: genai.Ptr("renamed")},
	}, noRetry)
	if err != nil || *ures.Webhook.State != webhooks.WebhookStateDisabled || *ures.Webhook.Name != "renamed" {
		t.Fatalf("Update = %+v, %v", ures, err)
	}
	job, err := c.Batches.Create(ctx, "gemini-2.5-flash", inlined("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	finish(t, srv, job.Name, geminitest.Succeed)
	waitIdle(t, srv)
	if n := len(srv.Deliveries()); n != 1 {
		t.Errorf("a disabled webhook got a delivery: %d deliveries", n)
	}
	_, err = c.Webhooks.Update(ctx, operations.UpdateWebhookRequest{
		ID: *wh.ID, UpdateMask: genai.Ptr("state"),
		Body: webhooks.WebhookUpdate{State: webhooks.WebhookUpdateStateDisabledDueToFailedDeliveries.ToPointer()},
	}, noRetry)
	wantWebhooksError(t, err, http.StatusBadRequest)

	// Interactions go to the first webhook, the one the receiver trusts.
	res, err := c.Interactions.Create(ctx, modelInteraction("gemini-2.5-flash", nil), noRetry)
	if err != nil {
		t.Fatal(err)
	}
	finish(t, srv, *res.Interaction.ID, geminitest.Succeed)
	waitIdle(t, srv)
	if ev := rc.only(t); ev.Type != webhook.InteractionCompleted || ev.Data.ID != *res.Interaction.ID || ev.Auth.Scheme != verify.SchemeHMAC {
		t.Errorf("event = %s %q via %s", ev.Type, ev.Data.ID, ev.Auth.Scheme)
	}

	if _, err := c.Webhooks.Delete(ctx, operations.DeleteWebhookRequest{ID: *wh.ID}, noRetry); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err = c.Webhooks.Get(ctx, operations.GetWebhookRequest{ID: *wh.ID}, noRetry)
	wantWebhooksError(t, err, http.StatusNotFound)
	_, err = c.Webhooks.Delete(ctx, operations.DeleteWebhookRequest{ID: *wh.ID}, noRetry)
	wantWebhooksError(t, err, http.StatusNotFound)
	_, err = c.Webhooks.Ping(ctx, operations.PingWebhookRequest{ID: *wh.ID}, noRetry)
	wantWebhooksError(t, err, http.StatusNotFound)
	_, err = c.Webhooks.Create(ctx, operations.CreateWebhookRequest{
		Body: webhooks.WebhookInput{URI: "https://x.example/", SubscribedEvents: []webhooks.WebhookSubscribedEvent{"batch.completed"}},
	}, noRetry)
	wantWebhooksError(t, err, http.StatusBadRequest)
}

// TestServerRotateSigningSecret rotates a static webhook's secret with
// both revocation behaviours. The receiver only knows the newest secret.
func TestServerRotateSigningSecret(t *testing.T) {
	srv := geminitest.NewUnstartedServer()
	var clock atomic.Int64
	clock.Store(time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC).Unix())
	now := func() time.Time { return time.Unix(clock.Load(), 0) }
	srv.Now = now
	srv.Retry = []time.Duration{} // a refused delivery is not retried
	srv.Start()
	defer srv.Close()
	c := srv.Client(t.Context())
	ctx := t.Context()

	// The receiver's verifier is replaced at each rotation: it holds only
	// the newest secret, as an app that has just deployed it.
	var cur atomic.Pointer[verify.Verifier]
	var mu sync.Mutex
	var evs []*webhook.Event
	h := webhook.NewHandler(verifierFunc(func(ctx context.Context, h http.Header, b []byte) (verify.Result, error) {
		return cur.Load().Verify(ctx, h, b)
	}), func(_ context.Context, ev *webhook.Event) error {
		mu.Lock()
		evs = append(evs, ev)
		mu.Unlock()
		return nil
	}, webhook.WithLogger(quiet))
	ts := httptest.NewServer(h)
	defer ts.Close()
	trust := func(secret string) {
		v, err := verify.New(verify.Config{Secrets: []string{secret}, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		cur.Store(v)
	}

	wh := createWebhook(t, c, ts.URL, webhooks.WebhookSubscribedEventBatchSucceeded)
	old := *wh.NewSigningSecret
	trust(old)
	rotate := func(b webhooks.RevocationBehavior) string {
		t.Helper()
		res, err := c.Webhooks.RotateSigningSecret(ctx, operations.RotateSigningSecretRequest{
			ID: *wh.ID, Body: webhooks.RotateSigningSecretRequest{RevocationBehavior: b.ToPointer()},
		}, noRetry)
		if err != nil {
			t.Fatalf("RotateSigningSecret: %v", err)
		}
		return *res.WebhookRotateSigningSecretResponse.Secret
	}
	// deliver finishes a batch and returns the signature header sent and
	// whether the receiver accepted it.
	deliver := func() (sig string, ok bool) {
		t.Helper()
		job, err := c.Batches.Create(ctx, "gemini-2.5-flash", inlined("x"), nil)
		if err != nil {
			t.Fatal(err)
		}
		finish(t, srv, job.Name, geminitest.Succeed)
		waitIdle(t, srv)
		ds := srv.Deliveries()
		d := ds[len(ds)-1]
		if d.JobID != job.Name {
			t.Fatalf("last delivery is for %s, want %s", d.JobID, job.Name)
		}
		return d.Attempts[0].RequestHeader.Get("webhook-signature"), d.Err == nil
	}
	entries := func(sig string) int { return len(strings.Fields(sig)) }

	newer := rotate(webhooks.RevocationBehaviorRevokePreviousSecretsAfterH24)
	if newer == old || !strings.HasPrefix(newer, "whsec_") {
		t.Fatalf("rotated secret %q", newer)
	}
	trust(newer)
	gres, err := c.Webhooks.Get(ctx, operations.GetWebhookRequest{ID: *wh.ID}, noRetry)
	if err != nil {
		t.Fatal(err)
	}
	var expiries []*time.Time
	for _, s := range gres.Webhook.SigningSecrets {
		expiries = append(expiries, s.ExpireTime)
	}
	if len(expiries) != 2 || expiries[0] != nil || expiries[1] == nil || !expiries[1].Equal(now().Add(24*time.Hour)) {
		t.Errorf("signing_secrets expire times = %v, want [none, now+24h]", expiries)
	}

	// During the overlap both secrets sign.
	if sig, ok := deliver(); entries(sig) != 2 || !ok {
		t.Errorf("during the overlap: %d v1 entries, accepted %v; want 2, true", entries(sig), ok)
	}
	clock.Add(int64(24*time.Hour/time.Second) - 1)
	if sig, ok := deliver(); entries(sig) != 2 || !ok {
		t.Errorf("just before expiry: %d v1 entries, accepted %v; want 2, true", entries(sig), ok)
	}
	// After it only the new one does: a receiver still on the old secret
	// now refuses the delivery.
	clock.Add(1)
	trust(old)
	if sig, ok := deliver(); entries(sig) != 1 || ok {
		t.Errorf("after expiry, old secret: %d v1 entries, accepted %v; want 1, false", entries(sig), ok)
	}
	trust(newer)
	if sig, ok := deliver(); entries(sig) != 1 || !ok {
		t.Errorf("after expiry, new secret: %d v1 entries, accepted %v; want 1, true", entries(sig), ok)
	}

	newest := rotate(webhooks.RevocationBehaviorRevokePreviousSecretsImmediately)
	trust(newer)
	if sig, ok := deliver(); entries(sig) != 1 || ok {
		t.Errorf("revoked immediately, previous secret: %d entries, accepted %v; want 1, false", entries(sig), ok)
	}
	trust(newest)
	if sig, ok := deliver(); entries(sig) != 1 || !ok {
		t.Errorf("revoked immediately, new secret: %d entries, accepted %v; want 1, true", entries(sig), ok)
	}
	gres, err = c.Webhooks.Get(ctx, operations.GetWebhookRequest{ID: *wh.ID}, noRetry)
	if err != nil || len(gres.Webhook.SigningSecrets) != 1 || gres.Webhook.SigningSecrets[0].ExpireTime != nil {
		t.Errorf("signing_secrets after immediate revocation = %+v, %v", gres.Webhook.SigningSecrets, err)
	}
	mu.Lock()
	n := len(evs)
	mu.Unlock()
	if n != 4 {
		t.Errorf("receiver accepted %d events, want 4", n)
	}

	_, err = c.Webhooks.RotateSigningSecret(ctx, operations.RotateSigningSecretRequest{ID: "wh_nope"}, noRetry)
	wantWebhooksError(t, err, http.StatusNotFound)
}

type verifierFunc func(ctx context.Context, h http.Header, body []byte) (verify.Result, error)

func (f verifierFunc) Verify(ctx context.Context, h http.Header, body []byte) (verify.Result, error) {
	return f(ctx, h, body)
}

// TestServerRetriesAndDisable retries a failing receiver on the Retry
// schedule, and disables a static webhook whose deliveries keep failing.
func TestServerRetriesAndDisable(t *testing.T) {
	srv, c := newServer(t)
	srv.Retry = []time.Duration{0, time.Millisecond}
	srv.DisableAfterFailures = 2
	ctx := t.Context()
	var calls atomic.Int32
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer failing.Close()
	wh := createWebhook(t, c, failing.URL, webhooks.WebhookSubscribedEventBatchSucceeded)

	for i := range 2 {
		job, err := c.Batches.Create(ctx, "gemini-2.5-flash", inlined("x"), nil)
		if err != nil {
			t.Fatal(err)
		}
		finish(t, srv, job.Name, geminitest.Succeed)
		waitIdle(t, srv)
		d := srv.Deliveries()[i]
		if d.Err == nil || !errors.Is(d.Err, webhooktest.ErrUndelivered) || len(d.Attempts) != 3 {
			t.Fatalf("delivery %d: err %v, %d attempts; want ErrUndelivered after 3", i, d.Err, len(d.Attempts))
		}
		ids := map[string]bool{}
		for _, a := range d.Attempts {
			ids[a.RequestHeader.Get("webhook-id")] = true
		}
		if len(ids) != 1 {
			t.Errorf("webhook-id changed across retries: %v", ids)
		}
	}
	if n := calls.Load(); n != 6 {
		t.Errorf("receiver called %d times, want 6", n)
	}
	gres, err := c.Webhooks.Get(ctx, operations.GetWebhookRequest{ID: *wh.ID}, noRetry)
	if err != nil || *gres.Webhook.State != webhooks.WebhookStateDisabledDueToFailedDeliveries {
		t.Fatalf("state = %v, %v; want disabled_due_to_failed_deliveries", gres.Webhook.State, err)
	}
	_, err = c.Webhooks.Update(ctx, operations.UpdateWebhookRequest{
		ID: *wh.ID, UpdateMask: genai.Ptr("state"), Body: webhooks.WebhookUpdate{State: webhooks.WebhookUpdateStateEnabled.ToPointer()},
	}, noRetry)
	if err != nil {
		t.Fatalf("re-enable: %v", err)
	}
}

// TestServerAutoFinish ends jobs after AutoFinish with AutoOutcome, and
// falls back to Succeed where the outcome does not apply.
func TestServerAutoFinish(t *testing.T) {
	srv, c := newServer(t)
	srv.AutoFinish = 5 * time.Millisecond
	srv.AutoOutcome = geminitest.Expire
	ctx := t.Context()
	rc := dynamicReceiver(t, srv)
	wc := &genai.WebhookConfig{Uris: []string{rc.URL}, UserMetadata: rc.bind(nil)}
	job, err := c.Batches.Create(ctx, "gemini-2.5-flash", inlined("x"), &genai.CreateBatchJobConfig{WebhookConfig: wc})
	if err != nil {
		t.Fatal(err)
	}
	op, err := c.Models.GenerateVideos(ctx, "veo-3.0-generate-001", "a cat", nil, &genai.GenerateVideosConfig{WebhookConfig: wc})
	if err != nil {
		t.Fatal(err)
	}
	timeout := time.After(10 * time.Second)
	for range 2 {
		select {
		case <-rc.got:
		case <-timeout:
			t.Fatalf("AutoFinish: events %v", eventTypes(rc.events()))
		}
	}
	got, err := c.Batches.Get(ctx, job.Name, nil)
	if err != nil || got.State != genai.JobStateExpired {
		t.Errorf("batch state = %v, %v; want expired", got.State, err)
	}
	vop, err := c.Operations.GetVideosOperation(ctx, op, nil)
	if err != nil || !vop.Done || vop.Response == nil {
		t.Errorf("video operation = %+v, %v; want done with videos", vop, err)
	}
	types := map[webhook.EventType]bool{}
	for _, ev := range rc.events() {
		types[ev.Type] = true
	}
	if !types[webhook.BatchExpired] || !types[webhook.VideoGenerated] {
		t.Errorf("events = %v", eventTypes(rc.events()))
	}
	if err := srv.Finish(job.Name, geminitest.Succeed); err == nil {
		t.Error("Finish after AutoFinish succeeded")
	}
}

// TestServerFinishErrors covers Finish's refusals.
func TestServerFinishErrors(t *testing.T) {
	srv, c := newServer(t)
	ctx := t.Context()
	job, err := c.Batches.Create(ctx, "gemini-2.5-flash", inlined("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	op, err := c.Models.GenerateVideos(ctx, "veo-3.0-generate-001", "a cat", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		id string
		o  geminitest.Outcome
	}{
		{"batches/nope", geminitest.Succeed},
		{job.Name, geminitest.RequireAction},
		{op.Name, geminitest.Expire},
		{op.Name, geminitest.Cancel},
	} {
		if err := srv.Finish(tt.id, tt.o); err == nil {
			t.Errorf("Finish(%q, %v) succeeded", tt.id, tt.o)
		}
	}
	finish(t, srv, job.Name, geminitest.Succeed)
	if err := srv.Finish(job.Name, geminitest.Fail(1, "x")); err == nil {
		t.Error("second Finish succeeded")
	}
	srv.Close()
	srv.Close() // idempotent
	if err := srv.Finish(op.Name, geminitest.Succeed); err == nil {
		t.Error("Finish after Close succeeded")
	}
}

// TestServerCloseStopsTimers closes a server with a pending AutoFinish
// and a delivery waiting to retry, without waiting for either.
func TestServerCloseStopsTimers(t *testing.T) {
	srv := geminitest.NewUnstartedServer()
	srv.AutoFinish = time.Hour
	srv.Retry = []time.Duration{time.Hour}
	srv.Start()
	c := srv.Client(t.Context())
	ctx := t.Context()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer failing.Close()
	if _, err := c.Batches.Create(ctx, "gemini-2.5-flash", inlined("x"), nil); err != nil {
		t.Fatal(err)
	}
	job, err := c.Batches.Create(ctx, "gemini-2.5-flash", inlined("x"),
		&genai.CreateBatchJobConfig{WebhookConfig: &genai.WebhookConfig{Uris: []string{failing.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	finish(t, srv, job.Name, geminitest.Succeed)
	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	if err := srv.WaitIdle(ctx); err != nil {
		t.Errorf("WaitIdle after Close: %v", err)
	}
	if d := srv.Deliveries(); len(d) != 1 || !d[0].Done || d[0].Err == nil {
		t.Errorf("abandoned delivery = %+v", d)
	}
	geminitest.NewUnstartedServer().Close() // never started
}

// TestServerWire checks what the SDK does not expose: routing of unknown
// paths and methods, Google's error shape, the JWKS, Content-Type.
func TestServerWire(t *testing.T) {
	srv, _ := newServer(t)
	tests := []struct {
		method, path string
		body         string
		wantCode     int
		wantStatus   string
	}{
		{"GET", "/v1beta/nope/404", "", 404, "NOT_FOUND"},
		{"GET", "/v1/batches", "", 404, "NOT_FOUND"},
		{"GET", "/v1beta/batches/x:frobnicate", "", 404, "NOT_FOUND"},
		{"PUT", "/v1beta/batches/x", "", 405, "UNIMPLEMENTED"},
		{"GET", "/v1beta/webhooks/wh_1:ping", "", 405, "UNIMPLEMENTED"},
		{"POST", "/v1beta/models/m:batchGenerateContent", "{", 400, "INVALID_ARGUMENT"},
		{"POST", "/v1beta/models/m:batchGenerateContent", `{"batch":{}}`, 400, "INVALID_ARGUMENT"},
		{"POST", "/v1beta/models/m:predictLongRunning", `{}`, 400, "INVALID_ARGUMENT"},
		{"GET", "/v1beta/batches?pageToken=bogus", "", 400, "INVALID_ARGUMENT"},
		{"PATCH", "/v1beta/webhooks/wh_1?update_mask=secret", `{}`, 400, "INVALID_ARGUMENT"},
		{"POST", "/v1beta/webhooks/wh_1:rotateSigningSecret", `{"revocation_behavior":"later"}`, 400, "INVALID_ARGUMENT"},
		{"GET", "/v1beta/files/nope:download", "", 404, "NOT_FOUND"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			var body struct {
				Error struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
					Status  string `json:"status"`
				} `json:"error"`
			}
			if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
				t.Fatalf("body: %v", err)
			}
			if res.StatusCode != tt.wantCode || body.Error.Code != tt.wantCode || body.Error.Status != tt.wantStatus ||
				body.Error.Message == "" || res.Header.Get("Content-Type") != "application/json" {
				t.Errorf("%d %s %+v, want %d %s", res.StatusCode, res.Header.Get("Content-Type"), body.Error, tt.wantCode, tt.wantStatus)
			}
		})
	}

	// The Interactions API's own error format: a string code.
	ires, err := http.Post(srv.URL+"/v1beta/interactions", "application/json", strings.NewReader(`{"model":"m"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer ires.Body.Close()
	var ierr struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.NewDecoder(ires.Body).Decode(&ierr); err != nil || ires.StatusCode != 400 ||
		ierr.Error.Code != "invalid_request" || ierr.Error.Message == "" {
		t.Errorf("interactions error: %d %+v %v", ires.StatusCode, ierr, err)
	}

	res, err := http.Get(srv.JWKSURL())
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || string(b) != string(srv.Keys.JWKS()) {
		t.Errorf("JWKS: %d %s", res.StatusCode, b)
	}
}

// TestServerForegroundInteraction completes a foreground model
// interaction at once, without an event.
func TestServerForegroundInteraction(t *testing.T) {
	srv, c := newServer(t)
	ctx := t.Context()
	in := ia.NewInteractionsInput("hello")
	res, err := c.Interactions.Create(ctx, operations.CreateInteractionRequest{Body: operations.NewCreateInteractionRequestBody(
		ia.CreateModelInteraction{Model: "gemini-2.5-flash", Input: &in})}, noRetry)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if res.Interaction.Status != ia.InteractionStatusCompleted || res.Interaction.OutputText == nil {
		t.Errorf("foreground interaction = %+v", res.Interaction)
	}
	if _, err := c.Interactions.Delete(ctx, operations.DeleteInteractionRequest{ID: *res.Interaction.ID}, noRetry); err != nil {
		t.Errorf("Delete: %v", err)
	}
	waitIdle(t, srv)
	if n := len(srv.Deliveries()); n != 0 {
		t.Errorf("%d deliveries", n)
	}
}
