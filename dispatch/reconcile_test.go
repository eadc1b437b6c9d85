package dispatch

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/genai"

	"github.com/genaihook/genaihook/webhook"
	"github.com/genaihook/genaihook/webhook/geminitest"
)

// The sweeps, through the real genai client, against the fake Gemini served
// in process inside a synctest bubble. The jitter is off, so the sweeps
// come at 4, 8, 12… minutes and a batch's own read 8 minutes after its
// wait began or after the last sweep that saw it running.

// newBubbleFake returns a fake Gemini for a bubble (made outside it: it
// holds a listener it never starts).
func newBubbleFake(t *testing.T) *geminitest.Server {
	srv := geminitest.NewUnstartedServer()
	srv.Logf = t.Errorf
	t.Cleanup(srv.Close)
	return srv
}

// newBubbleDispatcher returns, inside a bubble, a Dispatcher reading
// through a genai client whose requests tr serves.
func newBubbleDispatcher(t *testing.T, tr *inProcess, opts ...Option) (*Dispatcher, *genai.Client) {
	client, err := genai.NewClient(t.Context(), &genai.ClientConfig{
		Backend: genai.BackendGeminiAPI, APIKey: "test",
		HTTPOptions: genai.HTTPOptions{BaseURL: "http://gemini.invalid"},
		HTTPClient:  &http.Client{Transport: tr},
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(client, testURL, append([]Option{WithLogger(nil), withPollJitter(0)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, client
}

const listPath = "/v1beta/batches"

// at sleeps until the bubble's clock reads start+d, then lets it settle.
func at(start time.Time, d time.Duration) {
	time.Sleep(time.Until(start.Add(d)))
	synctest.Wait()
}

func createBatches(t *testing.T, c *genai.Client, n int) []string {
	names := make([]string, n)
	for i := range names {
		var err error
		if names[i], err = simBatch(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
	return names
}

// TestSweepResolvesBatches checks that a sweep resolves the waits whose
// batch the listing shows ended, with the event a read of the batch builds,
// without reading any batch on its own; that a batch the sweeps keep seeing
// running is never read alone; that its event is still confirmed by one
// read; and that the sweeps stop once no batch is awaited.
func TestSweepResolvesBatches(t *testing.T) {
	srv := newBubbleFake(t)
	synctest.Test(t, func(t *testing.T) {
		tr := &inProcess{h: srv}
		d, client := newBubbleDispatcher(t, tr)
		start := time.Now()
		names := createBatches(t, client, 3)
		var fs []*Future
		for _, n := range names {
			fs = append(fs, d.Watch(t.Context(), n))
		}
		if err := srv.Finish(names[0], geminitest.Succeed); err != nil {
			t.Fatal(err)
		}
		if err := srv.Finish(names[1], geminitest.Fail(13, "internal")); err != nil {
			t.Fatal(err)
		}
		at(start, batchSweepInterval-time.Second)
		for i, f := range fs {
			if _, err := peek(f); !errors.Is(err, errPending) {
				t.Fatalf("wait %d resolved before the first sweep: %v", i, err)
			}
		}
		at(start, batchSweepInterval+time.Second)
		ev, err := peek(fs[0])
		if err != nil || ev.Type != webhook.BatchSucceeded || !ev.Polled || jobState(ev.Job) != string(genai.JobStateSucceeded) {
			t.Errorf("succeeded batch: %+v, %v", ev, err)
		}
		if _, err := peek(fs[1]); !errors.Is(err, ErrJobFailed) {
			t.Errorf("failed batch: %v, want ErrJobFailed", err)
		}
		if _, err := peek(fs[2]); !errors.Is(err, errPending) {
			t.Errorf("running batch: %v, want it pending", err)
		}
		if n := tr.count(http.MethodGet, listPath); n != 1 {
			t.Errorf("%d List calls, want 1", n)
		}
		at(start, 44*time.Minute+time.Second) // sweeps at 8, 12, …, 44 minutes
		if n := tr.count(http.MethodGet, listPath); n != 11 {
			t.Errorf("%d List calls in 44 minutes, want 11", n)
		}
		for _, n := range names {
			if g := tr.count(http.MethodGet, "/v1beta/"+n); g != 0 {
				t.Errorf("%s read %d times on its own, want 0", n, g)
			}
		}
		if err := srv.Finish(names[2], geminitest.Succeed); err != nil {
			t.Fatal(err)
		}
		if err := d.Deliver(t.Context(), event(webhook.BatchSucceeded, names[2], time.Now())); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if ev, err := peek(fs[2]); err != nil || !ev.Polled {
			t.Errorf("delivered batch: %+v, %v", ev, err)
		}
		if g := tr.count(http.MethodGet, "/v1beta/"+names[2]); g != 1 {
			t.Errorf("event confirmed by %d reads, want 1", g)
		}
		at(start, 49*time.Minute) // the sweep due at 48 minutes finds nothing awaited
		if n := tr.count(http.MethodGet, listPath); n != 11 {
			t.Errorf("%d List calls, want 11: a sweep listed with no batch awaited", n)
		}
		assertIdle(t, d)
	})
}

// TestSweepPages checks the bounds of one sweep when the server returns one
// batch a page (a server-side cap): it stops at batchSweepPages pages, a
// batch beyond them is read on its own when its read comes due, and a
// sweep stops at the page where it has seen every pending batch.
func TestSweepPages(t *testing.T) {
	srv := newBubbleFake(t)
	synctest.Test(t, func(t *testing.T) {
		tr := &inProcess{h: srv, intercept: func(r *http.Request) *http.Response {
			if r.URL.Path == listPath {
				q := r.URL.Query()
				q.Set("pageSize", "1")
				r.URL.RawQuery = q.Encode()
			}
			return nil
		}}
		d, client := newBubbleDispatcher(t, tr)
		start := time.Now()
		first := createBatches(t, client, 1)[0] // the fake lists oldest first
		for _, n := range createBatches(t, client, batchSweepPages+5) {
			if err := srv.Finish(n, geminitest.Succeed); err != nil {
				t.Fatal(err)
			}
		}
		last := createBatches(t, client, 1)[0]
		ff, fl := d.Watch(t.Context(), first), d.Watch(t.Context(), last)
		at(start, batchSweepInterval+time.Second)
		if n := tr.count(http.MethodGet, listPath); n != batchSweepPages {
			t.Fatalf("%d List calls in the first sweep, want %d", n, batchSweepPages)
		}
		if err := srv.Finish(last, geminitest.Succeed); err != nil { // its event lost
			t.Fatal(err)
		}
		at(start, reconciledBatchWait-time.Second)
		if _, err := peek(fl); !errors.Is(err, errPending) {
			t.Fatalf("batch beyond the pages resolved before its own read: %v", err)
		}
		at(start, reconciledBatchWait+time.Second)
		if ev, err := peek(fl); err != nil || ev.Type != webhook.BatchSucceeded {
			t.Fatalf("batch beyond the pages: %+v, %v; want it read on its own", ev, err)
		}
		if g := tr.count(http.MethodGet, "/v1beta/"+last); g != 1 {
			t.Errorf("batch beyond the pages read %d times, want 1", g)
		}
		before := tr.count(http.MethodGet, listPath)
		at(start, 3*batchSweepInterval+time.Second)
		if n := tr.count(http.MethodGet, listPath) - before; n != 1 {
			t.Errorf("%d List calls for a batch on the first page, want 1", n)
		}
		if g := tr.count(http.MethodGet, "/v1beta/"+first); g != 0 {
			t.Errorf("batch on the first page read %d times on its own, want 0", g)
		}
		if _, err := peek(ff); !errors.Is(err, errPending) {
			t.Errorf("running batch: %v, want it pending", err)
		}
	})
}

// listAnswers returns an inProcess intercept that answers every List with
// status and the JSON body, and lets every other request through.
func listAnswers(status int, body string) func(*http.Request) *http.Response {
	return func(r *http.Request) *http.Response {
		if r.URL.Path != listPath {
			return nil
		}
		return &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json"}},
			Body: io.NopCloser(strings.NewReader(body))}
	}
}

// TestSweepListFails checks that a List answered 503 with a retry delay
// puts the next sweep off by that delay, and that the batches are read on
// their own meanwhile.
func TestSweepListFails(t *testing.T) {
	srv := newBubbleFake(t)
	synctest.Test(t, func(t *testing.T) {
		tr := &inProcess{h: srv, intercept: listAnswers(http.StatusServiceUnavailable, `{"error":{"code":503,"message":"busy","status":"UNAVAILABLE",`+
			`"details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"900s"}]}}`)}
		d, client := newBubbleDispatcher(t, tr)
		start := time.Now()
		name := createBatches(t, client, 1)[0]
		f := d.Watch(t.Context(), name)
		at(start, reconciledBatchWait+time.Second)
		if n := tr.count(http.MethodGet, listPath); n != 1 {
			t.Errorf("%d List calls, want 1", n)
		}
		if g := tr.count(http.MethodGet, "/v1beta/"+name); g != 1 {
			t.Errorf("batch read %d times on its own while the listing fails, want 1", g)
		}
		at(start, batchSweepInterval+15*time.Minute-time.Second)
		if n := tr.count(http.MethodGet, listPath); n != 1 {
			t.Errorf("%d List calls before the retry delay passed, want 1", n)
		}
		at(start, batchSweepInterval+15*time.Minute+time.Second)
		if n := tr.count(http.MethodGet, listPath); n != 2 {
			t.Errorf("%d List calls after the retry delay, want 2", n)
		}
		if _, err := peek(f); !errors.Is(err, errPending) {
			t.Errorf("running batch: %v, want it pending", err)
		}
	})
}

// TestSweepNotListed checks that a batch the complete listing does not
// show, and that the API does not know, ends its waits with ErrJobNotFound
// after three sweeps, each of which had it read.
func TestSweepNotListed(t *testing.T) {
	srv := newBubbleFake(t)
	synctest.Test(t, func(t *testing.T) {
		tr := &inProcess{h: srv}
		d, _ := newBubbleDispatcher(t, tr)
		start := time.Now()
		const name = "batches/nope"
		f := d.Watch(context.Background(), name)
		at(start, 3*batchSweepInterval-time.Second)
		if _, err := peek(f); !errors.Is(err, errPending) {
			t.Fatalf("ended before its third read: %v", err)
		}
		at(start, 3*batchSweepInterval+time.Second)
		if _, err := peek(f); !errors.Is(err, ErrJobNotFound) {
			t.Fatalf("Result = %v, want ErrJobNotFound", err)
		}
		if g := tr.count(http.MethodGet, "/v1beta/"+name); g != notFoundPolls {
			t.Errorf("read %d times, want %d", g, notFoundPolls)
		}
	})
}

// TestSweepStaleListing checks that a listing that keeps showing an ended
// batch running (its event lost) cannot put the batch's own read off for
// ever: after maxPutOffs sweeps in a row (about an hour) the read happens,
// and finds it ended.
func TestSweepStaleListing(t *testing.T) {
	srv := newBubbleFake(t)
	synctest.Test(t, func(t *testing.T) {
		tr := &inProcess{h: srv}
		tr.intercept = func(r *http.Request) *http.Response {
			if r.URL.Path != listPath {
				return nil
			}
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, r)
			b := rec.Body.Bytes()
			for _, st := range []string{"BATCH_STATE_SUCCEEDED", "JOB_STATE_SUCCEEDED"} {
				b = bytes.ReplaceAll(b, []byte(st), []byte("BATCH_STATE_RUNNING"))
			}
			return &http.Response{StatusCode: rec.Code, Header: rec.Header(), Body: io.NopCloser(bytes.NewReader(b))}
		}
		d, client := newBubbleDispatcher(t, tr)
		start := time.Now()
		name := createBatches(t, client, 1)[0]
		f := d.Watch(t.Context(), name)
		at(start, time.Minute)
		if err := srv.Finish(name, geminitest.Succeed); err != nil { // its event lost
			t.Fatal(err)
		}
		at(start, time.Minute+75*time.Minute)
		if _, err := peek(f); err != nil {
			t.Errorf("75 min after the end: %v; own reads %d, List calls %d",
				err, tr.count(http.MethodGet, "/v1beta/"+name), tr.count(http.MethodGet, listPath))
		}
	})
}

// TestSweepListRefused checks that a List refused for good (403) ends the
// sweeps: no List after the first, and the batches are read on their own
// on the schedule of other jobs, so that a lost event is still noticed.
func TestSweepListRefused(t *testing.T) {
	srv := newBubbleFake(t)
	synctest.Test(t, func(t *testing.T) {
		tr := &inProcess{h: srv, intercept: listAnswers(http.StatusForbidden, `{"error":{"code":403,"message":"no","status":"PERMISSION_DENIED"}}`)}
		d, client := newBubbleDispatcher(t, tr)
		start := time.Now()
		name := createBatches(t, client, 1)[0]
		f := d.Watch(t.Context(), name)
		at(start, time.Minute)
		if err := srv.Finish(name, geminitest.Succeed); err != nil { // its event lost
			t.Fatal(err)
		}
		at(start, time.Minute+5*time.Minute)
		if _, err := peek(f); err != nil {
			t.Errorf("5 min after the end, with List refused: %v", err)
		}
		later := createBatches(t, client, 1)[0]
		g := d.Watch(t.Context(), later)
		at(start, 90*time.Minute)
		if n := tr.count(http.MethodGet, listPath); n != 1 {
			t.Errorf("%d List calls, want 1: a refused List ends the sweeps", n)
		}
		if r := tr.count(http.MethodGet, "/v1beta/"+later); r < 5 {
			t.Errorf("a batch pending for 85 min read %d times on its own, want it on the default schedule", r)
		}
		if _, err := peek(g); !errors.Is(err, errPending) {
			t.Errorf("running batch: %v, want it pending", err)
		}
	})
}
