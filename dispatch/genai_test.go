package dispatch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/genai"
	"google.golang.org/genai/interactions/models/interactions"
	"google.golang.org/genai/interactions/models/operations"
	"google.golang.org/genai/interactions/retry"

	"github.com/genaihook/genaihook/dispatch"
	"github.com/genaihook/genaihook/verify"
	"github.com/genaihook/genaihook/webhook"
	"github.com/genaihook/genaihook/webhook/geminitest"
)

// The tests of this file and of e2e_*_test.go run the real genai client
// against the fake Gemini of package geminitest, with the receiver wired
// as the README wires it: dispatch.New(client, url), d.Handler(), with
// the fake's keys given by WithVerifier. None sleeps: each waits for an outcome under a generous
// deadline that only a failure reaches.

// testTimeout bounds each test's waits: far beyond what a passing run
// takes, even under -race on a loaded machine.
const testTimeout = 30 * time.Second

// interactionsNoRetry turns off the Interactions client's own retries, so
// that a failing call fails the test at once.
var interactionsNoRetry = operations.WithRetries(retry.Config{Strategy: "none"})

// apiLog is the transport of the genai client in these tests: it counts
// the reads (GETs) the client makes, by resource, and can rewrite the
// fake's answer to a read, to make it answer what it cannot (a video
// filtered by safety checks).
type apiLog struct {
	base http.RoundTripper

	mu      sync.Mutex
	gets    map[string]int                  // by URL path
	rewrite map[string]func(map[string]any) // by URL path
}

func (a *apiLog) RoundTrip(req *http.Request) (*http.Response, error) {
	var edit func(map[string]any)
	if req.Method == http.MethodGet {
		a.mu.Lock()
		a.gets[req.URL.Path]++
		edit = a.rewrite[req.URL.Path]
		a.mu.Unlock()
	}
	res, err := a.base.RoundTrip(req)
	if err != nil || edit == nil || res.StatusCode != http.StatusOK {
		return res, err
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	var v map[string]any
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, err
	}
	edit(v)
	if body, err = json.Marshal(v); err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(body))
	res.ContentLength = int64(len(body))
	res.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return res, nil
}

// reads returns how many times the client has read the resource name, as
// the API path names it: "batches/abc", "models/m/operations/op",
// "interactions/v1_abc".
func (a *apiLog) reads(name string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.gets["/v1beta/"+name]
}

// answer makes every later successful read of the resource name return
// the fake's answer as edit changes it.
func (a *apiLog) answer(name string, edit func(map[string]any)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.rewrite["/v1beta/"+name] = edit
}

// fakeGemini is one Gemini project: the fake API, and a genai client of it
// whose reads are logged.
type fakeGemini struct {
	*geminitest.Server
	client *genai.Client
	api    *apiLog
}

// newFakeGemini starts a fake Gemini, configured by configure (before
// Start) when it is not nil. By default a delivery that fails for good
// fails the test (Logf is t.Errorf); a test that expects refusals sets
// Logf to t.Logf. The server is closed when the test ends.
func newFakeGemini(t *testing.T, configure func(*geminitest.Server)) *fakeGemini {
	t.Helper()
	srv := geminitest.NewUnstartedServer()
	srv.Logf = t.Errorf
	if configure != nil {
		configure(srv)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	api := &apiLog{base: tr, gets: make(map[string]int), rewrite: make(map[string]func(map[string]any))}
	client, err := genai.NewClient(context.Background(), &genai.ClientConfig{
		Backend:     genai.BackendGeminiAPI,
		APIKey:      "test",
		HTTPOptions: genai.HTTPOptions{BaseURL: srv.URL},
		HTTPClient:  &http.Client{Transport: api},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fakeGemini{Server: srv, client: client, api: api}
}

// idle waits until every delivery of g has settled, and returns those
// made for the job id.
func (g *fakeGemini) idle(t *testing.T, id string) []geminitest.Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := g.WaitIdle(ctx); err != nil {
		t.Fatalf("WaitIdle: %v", err)
	}
	var ds []geminitest.Delivery
	for _, d := range g.Deliveries() {
		if d.JobID == id {
			ds = append(ds, d)
		}
	}
	return ds
}

// finish ends the job id on g with o.
func (g *fakeGemini) finish(t *testing.T, id string, o geminitest.Outcome) {
	t.Helper()
	if err := g.Finish(id, o); err != nil {
		t.Fatal(err)
	}
}

// newReceiver starts the receiver exactly as the README wires it, with
// Google's key endpoint replaced by jwksURL:
//
//	d, err := dispatch.New(client, url, dispatch.WithVerifier(v))
//	http.Handle("POST /gemini/webhook", d.Handler())
//
// client may be nil. The Dispatcher logs nothing unless opts say so, and
// is closed when the test ends.
func newReceiver(t *testing.T, jwksURL string, client *genai.Client, opts ...dispatch.Option) (*dispatch.Dispatcher, string) {
	t.Helper()
	mux := http.NewServeMux()
	rs := httptest.NewServer(mux)
	t.Cleanup(rs.Close)
	url := rs.URL + "/gemini/webhook"
	v, err := verify.New(verify.Config{JWKSURL: jwksURL})
	if err != nil {
		t.Fatal(err)
	}
	d, err := dispatch.New(client, url, append([]dispatch.Option{dispatch.WithVerifier(v), dispatch.WithLogger(nil)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	mux.Handle("POST /gemini/webhook", d.Handler(webhook.WithLogger(nil)))
	return d, url
}

// unreachableURL returns a loopback webhook URL on which nothing listens:
// deliveries to it are lost.
func unreachableURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/gemini/webhook"
}

func createBatch(ctx context.Context, c *genai.Client, cfg *genai.WebhookConfig) (*genai.BatchJob, error) {
	return c.Batches.Create(ctx, "gemini-2.5-flash", &genai.BatchJobSource{InlinedRequests: []*genai.InlinedRequest{{
		Contents: []*genai.Content{genai.NewContentFromText("hello", genai.RoleUser)},
	}}}, &genai.CreateBatchJobConfig{WebhookConfig: cfg})
}

func createVideo(ctx context.Context, c *genai.Client, cfg *genai.WebhookConfig) (*genai.GenerateVideosOperation, error) {
	return c.Models.GenerateVideosFromSource(ctx, "veo-3.0-generate-001", &genai.GenerateVideosSource{Prompt: "a cat"},
		&genai.GenerateVideosConfig{WebhookConfig: cfg})
}

// createResearch starts a background Deep Research interaction.
func createResearch(ctx context.Context, c *genai.Client, wc *interactions.WebhookConfig) (string, error) {
	in := interactions.NewInteractionsInput("research this")
	res, err := c.Interactions.Create(ctx, operations.CreateInteractionRequest{
		Body: operations.NewCreateInteractionRequestBody(interactions.CreateAgentInteraction{
			Agent: interactions.AgentOptionDeepResearchPreview042026, Input: &in, Background: genai.Ptr(true),
			WebhookConfig: wc,
		}),
	}, interactionsNoRetry)
	if err != nil {
		return "", err
	}
	return *res.Interaction.ID, nil
}

// TestWaitsAgainstFakeGemini follows one job of each family through the
// genai client, the fake, the handler and Wait, and checks the typed job
// each wait returns with its event.
func TestWaitsAgainstFakeGemini(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	g := newFakeGemini(t, func(s *geminitest.Server) { s.BatchUserMetadataBug = true })
	// Gemini sends no event for a failed video: the poller finds it.
	d, _ := newReceiver(t, g.JWKSURL(), g.client, dispatch.WithPollSchedule(300*time.Millisecond, 100*time.Millisecond, time.Second))

	// Batch: the API refuses user_metadata (the live bug), so the config
	// carries none; the job is matched by its id and bound by reading it.
	cfg := d.WebhookConfig()
	if cfg.UserMetadata != nil {
		t.Errorf("WebhookConfig().UserMetadata = %v, want none", cfg.UserMetadata)
	}
	cfg.UserMetadata = map[string]any{"app": "test"}
	if _, err := createBatch(ctx, g.client, cfg); err == nil {
		t.Fatal("batch with user_metadata accepted although BatchUserMetadataBug is on")
	}
	job, err := createBatch(ctx, g.client, d.WebhookConfig())
	if err != nil {
		t.Fatal(err)
	}
	g.finish(t, job.Name, geminitest.Succeed) // before anyone waits
	for _, del := range g.idle(t, job.Name) {
		if del.Err != nil {
			t.Fatalf("delivery of our batch, nobody waiting: %v", del.Err)
		}
	}
	if n := g.api.reads(job.Name); n != 1 {
		t.Errorf("binding the delivery of a batch nobody awaits read it %d times, want 1", n)
	}
	ev, err := d.Wait(ctx, job.Name)
	if err != nil || ev.Type != webhook.BatchSucceeded || !ev.Polled {
		t.Fatalf("Wait(batch) = %+v, %v", ev, err)
	}
	if got, ok := ev.Job.(*genai.BatchJob); !ok || got.State != genai.JobStateSucceeded || got.Name != job.Name {
		t.Fatalf("Wait(batch).Job = %#v", ev.Job)
	}

	// Video: a failure, found by polling (no event exists for it), carries
	// Gemini's error.
	op, err := createVideo(ctx, g.client, d.WebhookConfig())
	if err != nil {
		t.Fatal(err)
	}
	f := d.Watch(ctx, op.Name)
	g.finish(t, op.Name, geminitest.Fail(3, "prompt blocked"))
	ev, err = f.Result()
	var je *dispatch.JobError
	if !errors.Is(err, dispatch.ErrJobFailed) || !errors.As(err, &je) || je.Message != "prompt blocked" || je.Code != "3" || je.ID != op.Name {
		t.Fatalf("Wait(video) error = %#v", err)
	}
	if gotOp, ok := ev.Job.(*genai.GenerateVideosOperation); !ok || !gotOp.Done || gotOp.Error == nil {
		t.Fatalf("Wait(video).Job = %#v", ev.Job)
	}
	if ds := g.idle(t, op.Name); len(ds) != 0 {
		t.Errorf("the fake sent %d events for a failed video, want none", len(ds))
	}

	// Interaction: requires_action, then completed; the second wait gets
	// the second event.
	id, err := createResearch(ctx, g.client, d.InteractionWebhookConfig())
	if err != nil {
		t.Fatal(err)
	}
	f = d.Watch(ctx, id)
	g.finish(t, id, geminitest.RequireAction)
	ev, err = f.Result()
	if it, ok := ev.Job.(*interactions.Interaction); err != nil || !ok || it.Status != interactions.InteractionStatusRequiresAction {
		t.Fatalf("first Wait(interaction) = %+v, %v", ev, err)
	}
	f = d.Watch(ctx, id)
	g.finish(t, id, geminitest.Succeed)
	ev, err = f.Result()
	if it, ok := ev.Job.(*interactions.Interaction); err != nil || !ok || it.Status != interactions.InteractionStatusCompleted || ev.Type != webhook.InteractionCompleted {
		t.Fatalf("second Wait(interaction) = %+v, %v", ev, err)
	}

	// Another project's batch, pointed at this receiver (as a replay of
	// its delivery would be): the API does not know it here, so its
	// delivery is refused, after one read.
	other := newFakeGemini(t, func(s *geminitest.Server) {
		s.Keys = g.Keys // Google signs every project's deliveries with the same keys
		s.Retry = []time.Duration{}
		s.Logf = t.Logf
	})
	foreign, err := createBatch(ctx, other.client, d.WebhookConfig())
	if err != nil {
		t.Fatal(err)
	}
	other.finish(t, foreign.Name, geminitest.Succeed)
	ds := other.idle(t, foreign.Name)
	if len(ds) != 1 || ds[0].Err == nil || len(ds[0].Attempts) != 1 || ds[0].Attempts[0].Status != http.StatusForbidden {
		t.Errorf("foreign batch delivery: %+v", ds)
	}
	if n := g.api.reads(foreign.Name); n != 1 {
		t.Errorf("binding the foreign delivery read the job %d times, want 1", n)
	}

	// An id of no form genai returns is refused, not polled.
	if _, err := d.Wait(ctx, "files/x"); !errors.Is(err, dispatch.ErrInvalidID) {
		t.Errorf("Wait(files/x) = %v, want ErrInvalidID", err)
	}
	g.idle(t, "")
	if f := g.Failed(); len(f) != 0 {
		t.Errorf("failed deliveries: %+v", f)
	}
}

// lostDeliveries returns a fake Gemini and a Dispatcher reading through its
// client whose webhook URL is one nothing listens on, so that every
// delivery is lost and only the reads, on a short schedule, resolve waits.
func lostDeliveries(t *testing.T) (*fakeGemini, *dispatch.Dispatcher) {
	t.Helper()
	g := newFakeGemini(t, func(s *geminitest.Server) {
		s.Retry = []time.Duration{}
		s.Logf = t.Logf // the lost delivery is the point
	})
	d, err := dispatch.New(g.client, unreachableURL(t), dispatch.WithLogger(nil),
		dispatch.WithPollSchedule(20*time.Millisecond, 20*time.Millisecond, 100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return g, d
}

// A batch whose webhook never arrives (here: its config points where
// nothing listens) and that is cancelled, for which no event may come at
// all, resolves by reading the job.
func TestLostBatchEventFoundByReading(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	g, d := lostDeliveries(t)
	job, err := createBatch(ctx, g.client, d.WebhookConfig())
	if err != nil {
		t.Fatal(err)
	}
	f := d.Watch(ctx, job.Name)
	g.finish(t, job.Name, geminitest.Cancel)
	ev, err := f.Result()
	var je *dispatch.JobError
	if !errors.Is(err, dispatch.ErrJobCancelled) || !errors.As(err, &je) || je.Type != webhook.BatchCancelled {
		t.Fatalf("Wait = %v, %#v; want a JobError of batch.cancelled", ev, err)
	}
	if got, ok := ev.Job.(*genai.BatchJob); !ok || got.State != genai.JobStateCancelled || !ev.Polled {
		t.Fatalf("Wait = %+v", ev)
	}
	if ds := g.idle(t, job.Name); len(ds) != 1 || ds[0].Err == nil {
		t.Errorf("deliveries = %+v, want one that failed", ds)
	}
}
