package webhook

import (
	"bytes"
	"context"
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

	"github.com/genaihook/genaihook/verify"
)

// fakeVerifier accepts a delivery whose webhook-signature is "valid" and
// reports the scheme named by the X-Test-Scheme header (v1 by default). A
// webhook-signature of "keys-down" fails as when Google's key endpoint is.
type fakeVerifier struct{}

func (fakeVerifier) Verify(_ context.Context, h http.Header, _ []byte) (verify.Result, error) {
	switch h.Get("Webhook-Signature") {
	case "valid":
	case "keys-down":
		return verify.Result{}, &verify.Error{Err: verify.ErrJWKSUnavailable, Reason: "GET https://example.com/jwks.json: HTTP status 503"}
	default:
		return verify.Result{}, &verify.Error{Err: verify.ErrNoMatchingSignature, Reason: "no v1 entry matched"}
	}
	scheme := verify.Scheme(h.Get("X-Test-Scheme"))
	if scheme == "" {
		scheme = verify.SchemeHMAC
	}
	return verify.Result{Scheme: scheme, WebhookID: h.Get("Webhook-Id"), SecretIndex: -1, KeyID: "test"}, nil
}

const (
	testBody    = `{"type":"batch.succeeded","version":"v1","timestamp":"2026-01-22T12:00:00Z","data":{"id":"batches/abc123"}}`
	unknownBody = `{"type":"batch.completed","version":"v9","timestamp":"2026-01-22T12:00:00Z","data":{"id":"batches/abc123"},"new":true}`
)

func delivery(id, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/gemini/webhook", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Webhook-Id", id)
	r.Header.Set("Webhook-Timestamp", "1769083200")
	r.Header.Set("Webhook-Signature", "valid")
	return r
}

func dynamicDelivery(id, body string) *http.Request {
	r := delivery(id, body)
	r.Header.Set("X-Test-Scheme", string(verify.SchemeEd25519))
	return r
}

// recorder counts HandlerFunc calls and keeps the events.
type recorder struct {
	mu     sync.Mutex
	events []*Event
	err    error
}

func (rc *recorder) fn(_ context.Context, ev *Event) error {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.events = append(rc.events, ev)
	return rc.err
}

func (rc *recorder) calls() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.events)
}

// syncBuffer is a log sink safe for the handler's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testLogger(buf *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type failingDedup struct{}

func (failingDedup) Begin(context.Context, string) (func(bool), bool, error) {
	return nil, false, errors.New("store down")
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestHandlerStatus(t *testing.T) {
	boom := func(context.Context, *Event) error { return errors.New("queue full") }
	panics := func(context.Context, *Event) error { panic("kaboom") }
	notBound := func(context.Context, *Event) error { return fmt.Errorf("%w: test", ErrNotBound) }
	undecided := func(context.Context, *Event) error { return errors.New("job store down") }
	bound := func(context.Context, *Event) error { return nil }
	// atCap is a valid event padded with JSON whitespace to exactly n bytes.
	atCap := func(n int) string { return testBody + strings.Repeat(" ", n-len(testBody)) }

	tests := []struct {
		name     string
		fn       HandlerFunc // nil: a recorder that succeeds
		opts     []Option
		req      func() *http.Request
		code     int
		body     string // exact
		calls    int    // HandlerFunc calls, for the recorder
		logHas   string
		header   map[string]string
		notInLog string
	}{
		{
			name: "success", req: func() *http.Request { return delivery("msg_1", testBody) },
			code: 200, body: "ok\n", calls: 1,
		},
		{
			name: "unknown type is acknowledged", req: func() *http.Request { return delivery("msg_1", unknownBody) },
			code: 200, body: "ok\n", calls: 1,
		},
		{
			name: "GET", req: func() *http.Request { return httptest.NewRequest(http.MethodGet, "/gemini/webhook", nil) },
			code: 405, body: "method not allowed\n", header: map[string]string{"Allow": "POST"},
		},
		{
			name: "PUT", req: func() *http.Request { r := delivery("msg_1", testBody); r.Method = http.MethodPut; return r },
			code: 405, body: "method not allowed\n", header: map[string]string{"Allow": "POST"},
		},
		{
			name: "body over the cap, length known", opts: []Option{WithMaxBodyBytes(64)},
			req:  func() *http.Request { return delivery("msg_1", testBody) },
			code: 413, body: "request body too large\n", logHas: "body too large",
		},
		{
			name: "body over the cap, chunked", opts: []Option{WithMaxBodyBytes(64)},
			req: func() *http.Request {
				r := delivery("msg_1", testBody)
				r.ContentLength = -1
				r.Body = io.NopCloser(strings.NewReader(testBody))
				return r
			},
			code: 413, body: "request body too large\n",
		},
		{
			name: "body at the cap", opts: []Option{WithMaxBodyBytes(int64(len(testBody)))},
			req:  func() *http.Request { return delivery("msg_1", testBody) },
			code: 200, body: "ok\n", calls: 1,
		},
		{
			name: "default cap: 64 KiB accepted",
			req:  func() *http.Request { return delivery("msg_1", atCap(64<<10)) },
			code: 200, body: "ok\n", calls: 1,
		},
		{
			name: "default cap: 64 KiB + 1 refused",
			req:  func() *http.Request { return delivery("msg_1", atCap(64<<10+1)) },
			code: 413, body: "request body too large\n", logHas: "limit=65536",
		},
		{
			name: "default cap: 64 KiB + 1 refused, chunked",
			req: func() *http.Request {
				r := delivery("msg_1", atCap(64<<10+1))
				r.ContentLength = -1
				r.Body = io.NopCloser(strings.NewReader(atCap(64<<10 + 1)))
				return r
			},
			code: 413, body: "request body too large\n",
		},
		{
			name: "body unreadable",
			req: func() *http.Request {
				r := delivery("msg_1", testBody)
				r.ContentLength = -1
				r.Body = io.NopCloser(errReader{})
				return r
			},
			code: 400, body: "cannot read request body\n",
		},
		{
			name: "bad signature",
			req: func() *http.Request {
				r := delivery("msg_1", testBody)
				r.Header.Set("Webhook-Signature", "v1,c2VjcmV0LXNpZ25hdHVyZQ==")
				return r
			},
			code: 401, body: "invalid signature\n", logHas: "no v1 entry matched", notInLog: "c2VjcmV0LXNpZ25hdHVyZQ",
		},
		{
			name: "signing keys unavailable",
			req: func() *http.Request {
				r := dynamicDelivery("msg_1", testBody)
				r.Header.Set("Webhook-Signature", "keys-down")
				return r
			},
			code: 503, body: "cannot verify the delivery now, retry later\n", header: map[string]string{"Retry-After": "30"},
			logHas: `level=ERROR msg="webhook: cannot verify now (signing keys unavailable, or not all checked)`,
		},
		{
			name: "signing keys unavailable, static-looking delivery",
			req: func() *http.Request {
				r := delivery("msg_1", testBody)
				r.Header.Set("Webhook-Signature", "keys-down")
				return r
			},
			code: 503, body: "cannot verify the delivery now, retry later\n", header: map[string]string{"Retry-After": "30"},
			logHas: "HTTP status 503",
		},
		{
			name: "rejected: no Retry-After",
			req: func() *http.Request {
				r := delivery("msg_1", testBody)
				r.Header.Set("Webhook-Signature", "forged")
				return r
			},
			code: 401, body: "invalid signature\n", header: map[string]string{"Retry-After": ""},
		},
		{
			name: "malformed event", req: func() *http.Request {
				return delivery("msg_1", `{"type":"batch.succeeded","timestamp":"2026-01-22T12:00:00Z","data":{}}`)
			},
			code: 400, body: "webhook: malformed event: data.id: required\n",
		},
		{
			name: "binding rejects a dynamic delivery", opts: []Option{WithBinding(notBound)},
			req:  func() *http.Request { return dynamicDelivery("msg_1", testBody) },
			code: 403, body: "delivery not bound to this receiver\n", logHas: "not bound",
		},
		{
			name: "binding undecided", opts: []Option{WithBinding(undecided)},
			req:  func() *http.Request { return dynamicDelivery("msg_1", testBody) },
			code: 503, body: "cannot check the delivery now, retry later\n", logHas: "job store down",
		},
		{
			name: "binding undecided through AnyOf", opts: []Option{WithBinding(AnyOf(notBound, undecided))},
			req:  func() *http.Request { return dynamicDelivery("msg_1", testBody) },
			code: 503, body: "cannot check the delivery now, retry later\n", logHas: "level=ERROR",
		},
		{
			name: "binding accepts a dynamic delivery", opts: []Option{WithBinding(bound)},
			req:  func() *http.Request { return dynamicDelivery("msg_1", testBody) },
			code: 200, body: "ok\n", calls: 1,
		},
		{
			name: "dynamic Ed25519 delivery, no binding configured",
			req:  func() *http.Request { return dynamicDelivery("msg_1", testBody) },
			code: 403, body: "delivery not bound to this receiver\n", logHas: "webhook.WithBinding(binder.Check)",
		},
		{
			name: "dynamic JWT delivery, no binding configured",
			req: func() *http.Request {
				r := delivery("msg_1", testBody)
				r.Header.Set("X-Test-Scheme", string(verify.SchemeJWT))
				return r
			},
			code: 403, body: "delivery not bound to this receiver\n", logHas: "level=WARN",
		},
		{
			name: "dynamic delivery, nil binding check", opts: []Option{WithBinding(nil)},
			req:  func() *http.Request { return dynamicDelivery("msg_1", testBody) },
			code: 403, body: "delivery not bound to this receiver\n", logHas: "no binding check configured",
		},
		{
			name: "dynamic delivery, InsecureSkipBinding", opts: []Option{InsecureSkipBinding()},
			req:  func() *http.Request { return dynamicDelivery("msg_1", testBody) },
			code: 200, body: "ok\n", calls: 1,
		},
		{
			name: "WithBinding after InsecureSkipBinding wins", opts: []Option{InsecureSkipBinding(), WithBinding(notBound)},
			req:  func() *http.Request { return dynamicDelivery("msg_1", testBody) },
			code: 403, body: "delivery not bound to this receiver\n",
		},
		{
			name: "InsecureSkipBinding after WithBinding wins", opts: []Option{WithBinding(notBound), InsecureSkipBinding()},
			req:  func() *http.Request { return dynamicDelivery("msg_1", testBody) },
			code: 200, body: "ok\n", calls: 1,
		},
		{
			name: "static delivery, no binding configured",
			req:  func() *http.Request { return delivery("msg_1", testBody) },
			code: 200, body: "ok\n", calls: 1,
		},
		{
			name: "nil options are ignored", opts: []Option{nil, WithBinding(bound), nil},
			req:  func() *http.Request { return dynamicDelivery("msg_1", testBody) },
			code: 200, body: "ok\n", calls: 1,
		},
		{
			name: "binding skips static deliveries", opts: []Option{WithBinding(notBound)},
			req:  func() *http.Request { return delivery("msg_1", testBody) },
			code: 200, body: "ok\n", calls: 1,
		},
		{
			name: "deduplicator fails", opts: []Option{WithDeduplicator(failingDedup{})},
			req:  func() *http.Request { return delivery("msg_1", testBody) },
			code: 503, body: "cannot check the delivery now, retry later\n", logHas: "store down",
		},
		{
			name: "fn fails", fn: boom, req: func() *http.Request { return delivery("msg_1", testBody) },
			code: 500, body: "internal error\n", logHas: "queue full",
		},
		{
			name: "fn panics", fn: panics, req: func() *http.Request { return delivery("msg_1", testBody) },
			code: 500, body: "internal error\n", logHas: "kaboom",
		},
		{
			name: "fn panics, no budget", fn: panics, opts: []Option{WithTimeout(0)},
			req:  func() *http.Request { return delivery("msg_1", testBody) },
			code: 500, body: "internal error\n", logHas: "runtime/debug.Stack",
		},
		{
			name: "fn fails after its budget", opts: []Option{WithTimeout(time.Nanosecond)},
			fn:   func(ctx context.Context, _ *Event) error { <-ctx.Done(); return ctx.Err() },
			req:  func() *http.Request { return delivery("msg_1", testBody) },
			code: 503, body: "timed out, retry later\n", logHas: "time budget",
		},
		{
			name: "no deduplicator, no budget", opts: []Option{WithDeduplicator(nil), WithTimeout(-1)},
			req:  func() *http.Request { return delivery("msg_1", testBody) },
			code: 200, body: "ok\n", calls: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncBuffer
			rec := &recorder{}
			fn := tt.fn
			if fn == nil {
				fn = rec.fn
			}
			h := NewHandler(fakeVerifier{}, fn, append([]Option{WithLogger(testLogger(&logs))}, tt.opts...)...)
			w := serve(h, tt.req())
			if w.Code != tt.code || w.Body.String() != tt.body {
				t.Errorf("answer = %d %q, want %d %q", w.Code, w.Body.String(), tt.code, tt.body)
			}
			for k, v := range tt.header {
				if got := w.Header().Get(k); got != v { // v "": header absent
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			if got := rec.calls(); got != tt.calls {
				t.Errorf("HandlerFunc called %d times, want %d", got, tt.calls)
			}
			if tt.logHas != "" && !strings.Contains(logs.String(), tt.logHas) {
				t.Errorf("log lacks %q:\n%s", tt.logHas, logs.String())
			}
			if tt.notInLog != "" && strings.Contains(logs.String(), tt.notInLog) {
				t.Errorf("log holds %q:\n%s", tt.notInLog, logs.String())
			}
		})
	}
}

func TestHandlerEvent(t *testing.T) {
	rec := &recorder{}
	h := NewHandler(fakeVerifier{}, rec.fn, WithLogger(nil))
	if w := serve(h, delivery("msg_42", unknownBody)); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	ev := rec.events[0]
	want := verify.Result{Scheme: verify.SchemeHMAC, WebhookID: "msg_42", SecretIndex: -1, KeyID: "test"}
	if ev.WebhookID != "msg_42" || ev.Auth != want {
		t.Errorf("WebhookID %q, Auth %+v; want msg_42, %+v", ev.WebhookID, ev.Auth, want)
	}
	if ev.Type.Known() || ev.Version != "v9" || string(ev.Raw) != unknownBody {
		t.Errorf("event = %+v", ev)
	}
}

func TestHandlerDuplicate(t *testing.T) {
	rec := &recorder{}
	h := NewHandler(fakeVerifier{}, rec.fn, WithLogger(nil))
	for i, want := range []string{"ok\n", "duplicate\n", "duplicate\n"} {
		if w := serve(h, delivery("msg_1", testBody)); w.Code != 200 || w.Body.String() != want {
			t.Errorf("delivery %d: %d %q, want 200 %q", i, w.Code, w.Body.String(), want)
		}
	}
	if w := serve(h, delivery("msg_2", testBody)); w.Body.String() != "ok\n" {
		t.Errorf("another id: %q", w.Body.String())
	}
	if rec.calls() != 2 {
		t.Errorf("HandlerFunc called %d times, want 2", rec.calls())
	}
}

func TestHandlerNoWebhookID(t *testing.T) {
	rec := &recorder{}
	h := NewHandler(fakeVerifier{}, rec.fn, WithLogger(nil))
	for range 2 {
		if w := serve(h, delivery("", testBody)); w.Code != 200 || w.Body.String() != "ok\n" {
			t.Errorf("delivery without webhook-id: %d %q", w.Code, w.Body.String())
		}
	}
	if rec.calls() != 2 {
		t.Errorf("HandlerFunc called %d times, want 2 (nothing to deduplicate on)", rec.calls())
	}
}

func TestHandlerRetryAfterFailure(t *testing.T) {
	var attempts, processed atomic.Int32
	fn := func(context.Context, *Event) error {
		if attempts.Add(1) == 1 {
			return errors.New("database unavailable")
		}
		processed.Add(1)
		return nil
	}
	h := NewHandler(fakeVerifier{}, fn, WithLogger(nil))
	for i, want := range []int{500, 200, 200} {
		if w := serve(h, delivery("msg_1", testBody)); w.Code != want {
			t.Errorf("delivery %d: status %d, want %d", i, w.Code, want)
		}
		if i == 0 && processed.Load() != 0 {
			t.Error("processed before the retry")
		}
	}
	if attempts.Load() != 2 || processed.Load() != 1 {
		t.Errorf("attempts %d, processed %d; want 2, 1", attempts.Load(), processed.Load())
	}
}

func TestHandlerSurvivesPanics(t *testing.T) {
	var logs syncBuffer
	var mu sync.Mutex
	attempts := map[string]int{}
	fn := func(_ context.Context, ev *Event) error {
		mu.Lock()
		attempts[ev.WebhookID]++
		first := attempts[ev.WebhookID] == 1
		mu.Unlock()
		var i int
		fmt.Sscanf(ev.WebhookID, "msg_%d", &i)
		if first && i%2 == 0 {
			ids := strings.Fields("") // a real runtime panic: index out of range
			_ = ids[i]
		}
		return nil
	}
	h := NewHandler(fakeVerifier{}, fn, WithLogger(testLogger(&logs)))
	for i := range 6 {
		want := 500
		if i%2 == 1 {
			want = 200
		}
		if w := serve(h, delivery("msg_"+fmt.Sprint(i), testBody)); w.Code != want {
			t.Errorf("delivery %d: %d, want %d", i, w.Code, want)
		}
	}
	log := logs.String()
	for _, s := range []string{"handler panicked", "index out of range", "handler_test.go"} {
		if !strings.Contains(log, s) {
			t.Errorf("log lacks %q", s)
		}
	}
	// A panicked attempt is not remembered: the retry is processed.
	if w := serve(h, delivery("msg_0", testBody)); w.Code != 200 || w.Body.String() != "ok\n" {
		t.Errorf("retry of the panicked delivery: %d %q", w.Code, w.Body.String())
	}
}

// TestHandlerConcurrentDuplicates is the acceptance test for deduplication:
// 1,000 deliveries of 100 ids from 32 goroutines run fn exactly 100 times,
// and every delivery is acknowledged.
func TestHandlerConcurrentDuplicates(t *testing.T) {
	const ids, copies, workers = 100, 10, 32
	var perID [ids]atomic.Int32
	var total atomic.Int32
	fn := func(_ context.Context, ev *Event) error {
		var i int
		fmt.Sscanf(ev.WebhookID, "msg_%d", &i)
		perID[i].Add(1)
		total.Add(1)
		// Not needed to pass: widens the window in which copies overlap,
		// so that the test exercises waiting, not only the seen set.
		time.Sleep(time.Millisecond)
		return nil
	}
	dedup := &overlapCounter{d: NewMemoryDeduplicator(MemoryConfig{}), held: map[string]bool{}}
	h := NewHandler(fakeVerifier{}, fn, WithLogger(nil), WithDeduplicator(dedup))

	jobs := make(chan int)
	var wg sync.WaitGroup
	var notOK atomic.Int32
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				// Copies of one id are adjacent, so they arrive together.
				w := serve(h, delivery(fmt.Sprintf("msg_%d", j/copies), testBody))
				if w.Code != 200 {
					notOK.Add(1)
				}
			}
		})
	}
	for j := range ids * copies {
		jobs <- j
	}
	close(jobs)
	wg.Wait()

	if total.Load() != ids {
		t.Errorf("fn ran %d times, want %d", total.Load(), ids)
	}
	for i := range perID {
		if n := perID[i].Load(); n != 1 {
			t.Errorf("id %d processed %d times", i, n)
		}
	}
	if notOK.Load() != 0 {
		t.Errorf("%d deliveries not acknowledged", notOK.Load())
	}
	if dedup.overlaps.Load() == 0 {
		t.Error("no copy arrived while another was processed: the test did not test concurrency")
	}
	t.Logf("%d copies arrived while their id was being processed", dedup.overlaps.Load())
}

// overlapCounter counts the Begin calls made while the same id is held.
type overlapCounter struct {
	d        Deduplicator
	mu       sync.Mutex
	held     map[string]bool
	overlaps atomic.Int32
}

func (o *overlapCounter) Begin(ctx context.Context, id string) (func(bool), bool, error) {
	o.mu.Lock()
	if o.held[id] {
		o.overlaps.Add(1)
	}
	o.mu.Unlock()
	release, dup, err := o.d.Begin(ctx, id)
	if release == nil {
		return release, dup, err
	}
	o.mu.Lock()
	o.held[id] = true
	o.mu.Unlock()
	return func(ok bool) {
		o.mu.Lock()
		delete(o.held, id)
		o.mu.Unlock()
		release(ok)
	}, dup, err
}

func TestHandlerTimeBudget(t *testing.T) {
	var logs syncBuffer
	var calls atomic.Int32
	fn := func(ctx context.Context, _ *Event) error {
		calls.Add(1)
		<-ctx.Done()
		return fmt.Errorf("hand-off: %w", ctx.Err())
	}
	h := NewHandler(fakeVerifier{}, fn, WithTimeout(time.Millisecond), WithLogger(testLogger(&logs)))
	for range 2 {
		if w := serve(h, delivery("msg_1", testBody)); w.Code != 503 || w.Body.String() != "timed out, retry later\n" {
			t.Fatalf("fn out of time: %d %q, want 503", w.Code, w.Body.String())
		}
	}
	if calls.Load() != 2 {
		t.Errorf("fn ran %d times, want 2: a timed-out attempt must not count as processed", calls.Load())
	}
	if !strings.Contains(logs.String(), "time budget") {
		t.Errorf("log lacks the timeout:\n%s", logs.String())
	}
}

// TestHandlerCopyWaitsWithinBudget: a copy arriving while the first is in
// fn waits for it, gives up with 503 when its budget is spent, and a later
// copy finds the first's success.
func TestHandlerCopyWaitsWithinBudget(t *testing.T) {
	started, unblock := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	fn := func(context.Context, *Event) error {
		calls.Add(1)
		close(started)
		<-unblock // ignores ctx: the worst case
		return nil
	}
	h := NewHandler(fakeVerifier{}, fn, WithTimeout(10*time.Millisecond), WithLogger(nil))

	first := make(chan *httptest.ResponseRecorder)
	go func() { first <- serve(h, delivery("msg_1", testBody)) }()
	<-started
	if w := serve(h, delivery("msg_1", testBody)); w.Code != 503 {
		t.Fatalf("copy during the first's fn: %d, want 503", w.Code)
	}
	close(unblock)
	if w := <-first; w.Code != 200 || w.Body.String() != "ok\n" {
		t.Fatalf("first (late but successful): %d %q", w.Code, w.Body.String())
	}
	if w := serve(h, delivery("msg_1", testBody)); w.Code != 200 || w.Body.String() != "duplicate\n" {
		t.Fatalf("copy after the first: %d %q", w.Code, w.Body.String())
	}
	if calls.Load() != 1 {
		t.Errorf("fn ran %d times, want 1", calls.Load())
	}
}

func TestHandlerUnderTimeoutHandler(t *testing.T) {
	unblock := make(chan struct{})
	var calls atomic.Int32
	fn := func(context.Context, *Event) error {
		if calls.Add(1) == 1 {
			<-unblock // ignores ctx
			return errors.New("gave up late")
		}
		return nil
	}
	h := NewHandler(fakeVerifier{}, fn, WithLogger(nil))
	th := http.TimeoutHandler(h, 5*time.Millisecond, "timed out\n")
	if w := serve(th, delivery("msg_1", testBody)); w.Code != 503 {
		t.Fatalf("hard limit: %d, want 503", w.Code)
	}
	close(unblock)
	// The retry waits for the abandoned attempt, which failed, then runs.
	if w := serve(h, delivery("msg_1", testBody)); w.Code != 200 || w.Body.String() != "ok\n" {
		t.Fatalf("retry: %d %q", w.Code, w.Body.String())
	}
	if calls.Load() != 2 {
		t.Errorf("fn ran %d times, want 2", calls.Load())
	}
}

func TestHandlerAbortHandlerPanic(t *testing.T) {
	h := NewHandler(fakeVerifier{}, func(context.Context, *Event) error { panic(http.ErrAbortHandler) }, WithLogger(nil))
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Errorf("recovered %v, want http.ErrAbortHandler passed on", v)
		}
	}()
	serve(h, delivery("msg_1", testBody))
}

func TestHandlerFnContext(t *testing.T) {
	var deadline time.Time
	var hasDeadline bool
	fn := func(ctx context.Context, _ *Event) error {
		deadline, hasDeadline = ctx.Deadline()
		return nil
	}
	start := time.Now()
	serve(NewHandler(fakeVerifier{}, fn, WithLogger(nil)), delivery("msg_1", testBody))
	if d := deadline.Sub(start); !hasDeadline || d < DefaultTimeout || d > DefaultTimeout+time.Second {
		t.Errorf("fn deadline %v after start (set %v), want about %v", deadline.Sub(start), hasDeadline, DefaultTimeout)
	}
}

func TestHandlerMounting(t *testing.T) {
	rec := &recorder{}
	h := NewHandler(fakeVerifier{}, rec.fn, WithLogger(nil))

	mux := http.NewServeMux()
	mux.Handle("POST /gemini/webhook", h)
	mux.Handle("/hooks/", http.StripPrefix("/hooks", h))
	outer := http.NewServeMux()
	outer.Handle("/api/", http.StripPrefix("/api", mux))

	tests := []struct {
		name, path string
		handler    http.Handler
		code       int
	}{
		{"ServeMux with method pattern", "/gemini/webhook", mux, 200},
		{"ServeMux subtree under StripPrefix", "/hooks/anything/at/all", mux, 200},
		{"nested StripPrefix", "/api/gemini/webhook", outer, 200},
		{"unmatched path", "/elsewhere", mux, 404},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := delivery(fmt.Sprintf("msg_%d", i), testBody)
			r.URL.Path = tt.path
			if w := serve(tt.handler, r); w.Code != tt.code {
				t.Errorf("status %d, want %d", w.Code, tt.code)
			}
		})
	}
	if rec.calls() != 3 {
		t.Errorf("HandlerFunc called %d times, want 3", rec.calls())
	}
}

// verifierFunc adapts a function to Verifier; a nil one is a typed nil.
type verifierFunc func(context.Context, http.Header, []byte) (verify.Result, error)

func (f verifierFunc) Verify(ctx context.Context, h http.Header, b []byte) (verify.Result, error) {
	return f(ctx, h, b)
}

// mapVerifier is a Verifier of map kind; a nil one is a typed nil.
type mapVerifier map[string]bool

func (mapVerifier) Verify(context.Context, http.Header, []byte) (verify.Result, error) {
	return verify.Result{}, nil
}

func TestNewHandlerPanicsOnNil(t *testing.T) {
	ok := func(context.Context, *Event) error { return nil }
	tests := []struct {
		name string
		f    func()
		want string // in the panic message
	}{
		{"nil verifier", func() { NewHandler(nil, ok) }, "nil Verifier: pass the *verify.Verifier that verify.New returned"},
		{"typed nil *verify.Verifier", func() {
			var v *verify.Verifier // as left by an unchecked verify.New error
			NewHandler(v, ok)
		}, "nil *verify.Verifier: pass the *verify.Verifier that verify.New returned, after checking its error"},
		{"typed nil func verifier", func() { NewHandler(verifierFunc(nil), ok) }, "nil webhook.verifierFunc"},
		{"typed nil map verifier", func() { NewHandler(mapVerifier(nil), ok) }, "nil webhook.mapVerifier"},
		{"nil fn", func() { NewHandler(fakeVerifier{}, nil) }, "nil HandlerFunc"},
		{"typed nil deduplicator", func() {
			var d *MemoryDeduplicator
			NewHandler(fakeVerifier{}, ok, WithDeduplicator(d))
		}, "WithDeduplicator was given a nil *webhook.MemoryDeduplicator"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil {
					t.Fatal("no panic")
				}
				if msg := fmt.Sprint(r); !strings.Contains(msg, tt.want) || !strings.HasPrefix(msg, "webhook: NewHandler: ") {
					t.Errorf("panic %q, want it to name the fix: %q", msg, tt.want)
				}
			}()
			tt.f()
		})
	}
}

// TestNewHandlerAcceptsNonNil: values that are not nil, or of a kind that
// cannot be, pass; an untyped nil Deduplicator turns deduplication off.
func TestNewHandlerAcceptsNonNil(t *testing.T) {
	ok := func(context.Context, *Event) error { return nil }
	for name, v := range map[string]Verifier{
		"struct":    fakeVerifier{},
		"func":      verifierFunc(fakeVerifier{}.Verify),
		"empty map": mapVerifier{},
		"pointer":   &freshIDs{v: newRealVerifier(t)},
	} {
		t.Run(name, func(t *testing.T) {
			if h := NewHandler(v, ok, WithLogger(nil), WithDeduplicator(nil)); h.dedup != nil {
				t.Error("WithDeduplicator(nil) did not turn deduplication off")
			}
		})
	}
}

// dynVerifier is a fakeVerifier that reports whether it accepts dynamic
// deliveries, as *verify.Verifier does.
type dynVerifier struct {
	fakeVerifier
	dynamic bool
}

func (d dynVerifier) AcceptsDynamic() bool { return d.dynamic }

// TestNewHandlerWarnsWithoutBinding: a Handler whose verifier accepts
// dynamic deliveries but that has no binding check says so once, at
// construction, with the fix; and every dynamic delivery it refuses is
// logged with the fix too.
func TestNewHandlerWarnsWithoutBinding(t *testing.T) {
	bound := func(context.Context, *Event) error { return nil }
	tests := []struct {
		name string
		v    Verifier
		opts []Option
		want string // the one warning expected at construction; "" for none
	}{
		{"dynamic verifier, no binding", dynVerifier{dynamic: true}, nil, "every dynamic delivery will be refused with 403"},
		{"dynamic verifier, nil binding", dynVerifier{dynamic: true}, []Option{WithBinding(nil)}, "webhook.WithBinding(binder.Check)"},
		{"dynamic verifier, binding", dynVerifier{dynamic: true}, []Option{WithBinding(bound)}, ""},
		{"dynamic verifier, InsecureSkipBinding", dynVerifier{dynamic: true}, []Option{InsecureSkipBinding()}, "InsecureSkipBinding is set"},
		{"static verifier, no binding", dynVerifier{dynamic: false}, nil, ""},
		{"static verifier, InsecureSkipBinding", dynVerifier{dynamic: false}, []Option{InsecureSkipBinding()}, ""},
		{"verifier that does not say", fakeVerifier{}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncBuffer
			NewHandler(tt.v, func(context.Context, *Event) error { return nil }, append([]Option{WithLogger(testLogger(&logs))}, tt.opts...)...)
			got := logs.String()
			if tt.want == "" {
				if got != "" {
					t.Errorf("logged at construction:\n%s", got)
				}
				return
			}
			if n := strings.Count(got, "\n"); n != 1 || !strings.Contains(got, "level=WARN") || !strings.Contains(got, tt.want) {
				t.Errorf("logged %d lines, want one warning with %q:\n%s", n, tt.want, got)
			}
		})
	}
}

// TestHandlerWarnsOnEveryRefusal: each dynamic delivery refused for want
// of a binding check is logged at warn level with the fix, and never
// reaches fn or the deduplicator.
func TestHandlerWarnsOnEveryRefusal(t *testing.T) {
	var logs syncBuffer
	rec := &recorder{}
	h := NewHandler(fakeVerifier{}, rec.fn, WithLogger(testLogger(&logs)))
	for i, id := range []string{"msg_1", "msg_1", "msg_2"} {
		if w := serve(h, dynamicDelivery(id, testBody)); w.Code != 403 {
			t.Errorf("delivery %d: %d, want 403", i, w.Code)
		}
	}
	if n := strings.Count(logs.String(), "level=WARN msg=\"webhook: dynamic delivery refused: no binding check configured; to accept dynamic deliveries, give NewHandler a check"); n != 3 {
		t.Errorf("%d refusals logged with the fix, want 3:\n%s", n, logs.String())
	}
	if rec.calls() != 0 {
		t.Errorf("fn ran %d times", rec.calls())
	}
	// A static delivery with the same id is new: the refusals remembered nothing.
	if w := serve(h, delivery("msg_1", testBody)); w.Code != 200 || w.Body.String() != "ok\n" {
		t.Errorf("static after refusals: %d %q", w.Code, w.Body.String())
	}
}

// TestReadBodyDoesNotTrustContentLength checks that a request declaring a
// large body but sending little does not make the handler allocate what it
// declared: that would let idle connections pin MaxBodyBytes each.
func TestReadBodyDoesNotTrustContentLength(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{}"))
	r.ContentLength = DefaultMaxBodyBytes
	body, err := readBody(httptest.NewRecorder(), r, DefaultMaxBodyBytes)
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != "{}" {
		t.Errorf("body = %q, want %q", body, "{}")
	}
	if cap(body) > maxPrealloc {
		t.Errorf("readBody allocated %d bytes for a 2-byte body declaring %d", cap(body), r.ContentLength)
	}

	// A body larger than the preallocation is still read whole.
	want := strings.Repeat("x", 3*maxPrealloc)
	r = httptest.NewRequest(http.MethodPost, "/", strings.NewReader(want))
	body, err = readBody(httptest.NewRecorder(), r, DefaultMaxBodyBytes)
	if err != nil || string(body) != want {
		t.Errorf("readBody of %d bytes = %d bytes, %v", len(want), len(body), err)
	}
}

// FuzzHandlerBinding checks, for any body, scheme and signature verdict,
// that the Handler never passes an unbound dynamic delivery on, answers
// only statuses of its table, and answers 503 exactly when the keys were
// unavailable (fn never fails here).
func FuzzHandlerBinding(f *testing.F) {
	binder := newTestBinder(f, 1)
	md, _ := json.Marshal(binder.Metadata("job-1"))
	f.Add([]byte(testBody), "v1a", "valid", "msg_1")
	f.Add([]byte(`{"type":"interaction.completed","timestamp":"2026-01-22T12:00:00Z","data":{"id":"x","user_metadata":`+string(md)+`}}`), "v1a", "valid", "msg_2")
	f.Add([]byte(`{"type":"x","timestamp":"2026-01-22T12:00:00Z","data":{"id":"x"},"user_metadata":`+string(md)+`}`), "jwt", "valid", "")
	f.Add([]byte(testBody), "v1", "keys-down", "msg_3")
	f.Add([]byte(`{}`), "v1", "forged", "msg_4")
	f.Add(bytes.Repeat([]byte(" "), 4<<10+1), "v1", "keys-down", "msg_5")
	allowed := map[int]bool{200: true, 400: true, 401: true, 403: true, 413: true, 503: true}
	f.Fuzz(func(t *testing.T, body []byte, scheme, sig, id string) {
		for _, opts := range [][]Option{nil, {WithBinding(binder.Check)}} {
			var passed []*Event
			fn := func(_ context.Context, ev *Event) error { passed = append(passed, ev); return nil }
			h := NewHandler(fakeVerifier{}, fn, append(opts, WithLogger(nil), WithMaxBodyBytes(4<<10))...)
			r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
			r.Header.Set("Webhook-Id", id)
			r.Header.Set("Webhook-Signature", sig)
			r.Header.Set("X-Test-Scheme", scheme)
			w := serve(h, r)
			if !allowed[w.Code] {
				t.Fatalf("status %d", w.Code)
			}
			if len(body) > 4<<10 {
				if w.Code != 413 {
					t.Fatalf("status %d for a %d-byte body", w.Code, len(body))
				}
			} else if (w.Code == 503) != (sig == "keys-down") {
				t.Fatalf("status %d for signature %q", w.Code, sig)
			}
			if (w.Code == 200) != (len(passed) == 1) {
				t.Fatalf("status %d after %d calls", w.Code, len(passed))
			}
			for _, ev := range passed {
				if !ev.Auth.Scheme.Dynamic() {
					continue
				}
				if opts == nil {
					t.Fatalf("dynamic delivery passed on without a binding check")
				}
				if err := binder.Check(context.Background(), ev); err != nil {
					t.Fatalf("unbound dynamic delivery passed on: %v", err)
				}
			}
		}
	})
}
