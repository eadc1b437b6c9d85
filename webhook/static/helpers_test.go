package static

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genai"
	"google.golang.org/genai/interactions/models/operations"

	"github.com/genaihook/genaihook/verify"
	"github.com/genaihook/genaihook/webhook"
	"github.com/genaihook/genaihook/webhook/geminitest"
)

// memStore is a SecretStore in memory, shared by the replicas of a test.
type memStore struct {
	mu      sync.Mutex
	secrets []string
	saveErr error
	saves   int
}

func (m *memStore) Load(context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.secrets), nil
}

func (m *memStore) Save(_ context.Context, s string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.saveErr != nil {
		return m.saveErr
	}
	m.saves++
	m.secrets = append(m.secrets, s)
	return nil
}

func (m *memStore) all() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.secrets)
}

// offsetClock is real time moved forward by hand, shared by the fake and
// the verifier so that a rotation's 24 hours can pass.
type offsetClock struct{ off atomic.Int64 }

func (c *offsetClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *offsetClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

// env is a fake Gemini and an app endpoint whose handler is set later.
type env struct {
	t      *testing.T
	srv    *geminitest.Server
	client *genai.Client
	app    *httptest.Server
	clock  *offsetClock
	mu     sync.Mutex
	h      http.Handler
	store  *memStore
}

func newEnv(t *testing.T, configure func(*geminitest.Server)) *env {
	t.Helper()
	e := &env{t: t, clock: &offsetClock{}, store: &memStore{}}
	e.srv = geminitest.NewUnstartedServer()
	e.srv.Now = e.clock.Now
	e.srv.Logf = t.Logf
	if configure != nil {
		configure(e.srv)
	}
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	e.app = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		h := e.h
		e.mu.Unlock()
		if h == nil {
			http.Error(w, "no handler yet", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(e.app.Close)
	e.client = e.srv.Client(context.Background())
	return e
}

func (e *env) serve(h http.Handler) {
	e.mu.Lock()
	e.h = h
	e.mu.Unlock()
}

func (e *env) config() Config {
	return Config{
		URI:     e.app.URL + "/gemini/webhook",
		Secrets: e.store,
		Verify:  verify.Config{Now: e.clock.Now},
		Logger:  slog.New(slog.DiscardHandler),
	}
}

func (e *env) register(cfg Config) *Webhook {
	e.t.Helper()
	w, err := Register(context.Background(), e.client, cfg)
	if err != nil {
		e.t.Fatalf("Register: %v", err)
	}
	return w
}

// hooks lists the fake's webhooks.
func (e *env) hooks() []string {
	e.t.Helper()
	res, err := e.client.Webhooks.List(context.Background(), operations.ListWebhooksRequest{})
	if err != nil {
		e.t.Fatal(err)
	}
	var ids []string
	if res.WebhookListResponse != nil {
		for _, h := range res.WebhookListResponse.Webhooks {
			ids = append(ids, *h.ID)
		}
	}
	return ids
}

// finishBatch creates a batch without webhook_config and succeeds it, so
// that its event goes to the static webhooks; it returns the batch name.
func (e *env) finishBatch() string {
	e.t.Helper()
	job, err := e.client.Batches.Create(context.Background(), "gemini-2.5-flash", &genai.BatchJobSource{
		InlinedRequests: []*genai.InlinedRequest{{Contents: genai.Text("hi")}},
	}, nil)
	if err != nil {
		e.t.Error(err)
		return ""
	}
	if err := e.srv.Finish(job.Name, geminitest.Succeed); err != nil {
		e.t.Error(err)
	}
	return job.Name
}

func (e *env) waitIdle() {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.srv.WaitIdle(ctx); err != nil {
		e.t.Fatal(err)
	}
}

// recorder is a HandlerFunc that keeps the events it gets.
type recorder struct {
	mu     sync.Mutex
	events []*webhook.Event
	err    error
}

func (r *recorder) handle(_ context.Context, ev *webhook.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.events = append(r.events, ev)
	return nil
}

func (r *recorder) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []string
	for _, ev := range r.events {
		if ev.Type.Known() {
			ids = append(ids, ev.Data.ID)
		}
	}
	return ids
}

// keyID is the fingerprint verify reports for secret.
func keyID(t *testing.T, secret string) string {
	t.Helper()
	v, err := verify.New(verify.Config{Secrets: []string{secret}})
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Now()
	sig, err := verify.Sign(secret, "msg_x", ts, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"Webhook-Id": {"msg_x"}, "Webhook-Timestamp": {itoa(ts.Unix())}, "Webhook-Signature": {sig}}
	res, err := v.Verify(context.Background(), h, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res.KeyID
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// logSink captures log records, to check what was logged and that no
// secret was.
type logSink struct {
	mu  sync.Mutex
	buf []byte
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	return len(p), nil
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
}

var _ io.Writer = (*logSink)(nil)
var errBoom = errors.New("boom")
