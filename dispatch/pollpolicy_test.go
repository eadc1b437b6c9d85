package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/genai"
	"google.golang.org/genai/interactions/models/apierrors"
	"google.golang.org/genai/interactions/models/components"
	"google.golang.org/genai/interactions/models/interactions"

	"github.com/genaihook/genaihook/webhook"
)

// scriptedAPI is a Gemini API that answers the GETs of each path with its
// scripted answers in turn, the last one repeated, and counts them.
type scriptedAPI struct {
	srv *httptest.Server

	mu      sync.Mutex
	answers map[string][]apiAnswer
	gets    map[string]int
}

type apiAnswer struct {
	status int // 0: 200
	header http.Header
	body   string
}

func newScriptedAPI(t *testing.T) *scriptedAPI {
	a := &scriptedAPI{answers: make(map[string][]apiAnswer), gets: make(map[string]int)}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		script := a.answers[r.URL.Path]
		n := a.gets[r.URL.Path]
		a.gets[r.URL.Path]++
		a.mu.Unlock()
		if len(script) == 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotImplemented)
			fmt.Fprintf(w, `{"error":{"code":501,"message":"no script for %s"}}`, r.URL.Path)
			return
		}
		ans := script[min(n, len(script)-1)]
		for k, v := range ans.header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(max(ans.status, http.StatusOK))
		fmt.Fprint(w, ans.body)
	}))
	t.Cleanup(a.srv.Close)
	return a
}

// script sets the answers to GET path ("/v1beta/batches/x").
func (a *scriptedAPI) script(path string, answers ...apiAnswer) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.answers[path] = answers
	a.gets[path] = 0
}

func (a *scriptedAPI) count(path string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.gets[path]
}

func (a *scriptedAPI) client(t *testing.T) *genai.Client {
	c, err := genai.NewClient(context.Background(), &genai.ClientConfig{
		Backend: genai.BackendGeminiAPI, APIKey: "k", HTTPOptions: genai.HTTPOptions{BaseURL: a.srv.URL},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ok(body string) apiAnswer { return apiAnswer{body: body} }

func apiErr(status int, header http.Header) apiAnswer {
	return apiAnswer{status: status, header: header, body: fmt.Sprintf(
		`{"error":{"code":%d,"message":"%s","status":"X"}}`, status, http.StatusText(status))}
}

func batchJSON(state string) string {
	return `{"name":"batches/b1","metadata":{"name":"batches/b1","state":"` + state + `"}}`
}

func interactionJSON(status string) string {
	return `{"id":"v1_ChdOdXRoYXJHZW5lcmF0ZWRJZDEyMzQ1Njc4OQ","status":"` + status + `","created":"2026-05-01T12:00:00Z","updated":"2026-05-01T12:00:00Z"}`
}

const (
	testVideoOp       = "models/veo/operations/x"
	testInteractionID = "v1_ChdOdXRoYXJHZW5lcmF0ZWRJZDEyMzQ1Njc4OQ"
	videoRunning      = `{"name":"models/veo/operations/x"}`
	videoGenerated    = `{"name":"models/veo/operations/x","done":true,"response":{"generateVideoResponse":{"generatedSamples":[{"video":{"uri":"https://example.com/v.mp4"}}]}}}`
)

// drive advances clk to every timer armed until done is closed: the
// typed waits sleep between reads, the scheduler between polls. It fails
// the test after 500 timers.
func drive(t *testing.T, clk *fakeClock, done <-chan struct{}) {
	t.Helper()
	for range 500 {
		select {
		case <-done:
			return
		case at := <-clk.armed:
			if at.After(clk.Now()) {
				clk.AdvanceTo(at)
			} else {
				clk.Advance(0)
			}
		case <-time.After(10 * time.Second): // a failure guard, not a wait for success
			t.Fatal("timed out driving the clock")
		}
	}
	t.Fatal("still not done after 500 timers")
}

// TestEventsAreConfirmed checks that, with a genai client, an event
// resolves a wait only once the job read back through the API confirms
// it: at once, or at a second read 2 s later when the first lags the
// event, with Event.Job the job read; an event the API does not confirm
// costs those two reads and resolves nothing, and the wait goes back to
// its schedule.
func TestEventsAreConfirmed(t *testing.T) {
	tests := []struct {
		name     string
		event    webhook.EventType
		id       string
		path     string
		answers  []string
		reads    int
		resolved bool
		want     string // the state of Event.Job
		wantErr  error
	}{
		{"batch confirmed at the first read", webhook.BatchSucceeded, "batches/b1", "/v1beta/batches/b1",
			[]string{batchJSON("BATCH_STATE_SUCCEEDED")}, 1, true, "JOB_STATE_SUCCEEDED", nil},
		{"batch confirmed at the second read", webhook.BatchSucceeded, "batches/b1", "/v1beta/batches/b1",
			[]string{batchJSON("BATCH_STATE_RUNNING"), batchJSON("BATCH_STATE_SUCCEEDED")}, 2, true, "JOB_STATE_SUCCEEDED", nil},
		{"batch never confirmed", webhook.BatchSucceeded, "batches/b1", "/v1beta/batches/b1",
			[]string{batchJSON("BATCH_STATE_RUNNING")}, 2, false, "", nil},
		{"batch state contradicts event", webhook.BatchSucceeded, "batches/b1", "/v1beta/batches/b1",
			[]string{batchJSON("BATCH_STATE_FAILED")}, 1, true, "JOB_STATE_FAILED", ErrJobFailed},
		{"video confirmed at the second read", webhook.VideoGenerated, testVideoOp, "/v1beta/" + testVideoOp,
			[]string{videoRunning, videoGenerated}, 2, true, "done", nil},
		{"video never done", webhook.VideoGenerated, testVideoOp, "/v1beta/" + testVideoOp,
			[]string{videoRunning}, 2, false, "", nil},
		{"interaction pause confirmed at the second read", webhook.InteractionRequiresAction, testInteractionID, "/v1beta/interactions/" + testInteractionID,
			[]string{interactionJSON("in_progress"), interactionJSON("requires_action")}, 2, true, "requires_action", nil},
		{"interaction completion never confirmed", webhook.InteractionCompleted, testInteractionID, "/v1beta/interactions/" + testInteractionID,
			[]string{interactionJSON("in_progress")}, 2, false, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newScriptedAPI(t)
			var answers []apiAnswer
			for _, b := range tt.answers {
				answers = append(answers, ok(b))
			}
			api.script(tt.path, answers...)
			clk := newFakeClock()
			d, err := New(api.client(t), testURL, WithLogger(nil), withClock(clk.Now), withAfterFunc(clk.AfterFunc), withPollJitter(0), withoutSweeps())
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			f := d.Watch(ctx, tt.id)
			clk.drainArmed() // the quiet period's timer
			if err := d.Deliver(ctx, event(tt.event, tt.id, clk.Now())); err != nil {
				t.Fatal(err)
			}
			var sleeps []time.Duration
		drive:
			for {
				select {
				case <-f.Done():
					break drive
				case at := <-clk.armed:
					if at.Sub(clk.Now()) >= 10*time.Second {
						break drive // back to the poll schedule
					}
					sleeps = append(sleeps, at.Sub(clk.Now()))
					clk.AdvanceTo(at)
				case <-time.After(10 * time.Second): // a failure guard, not a wait for success
					t.Fatal("timed out driving the clock")
				}
			}
			if n := api.count(tt.path); n != tt.reads {
				t.Errorf("%d reads, want %d", n, tt.reads)
			}
			if want := []time.Duration{0, confirmLag}[:tt.reads]; fmt.Sprint(sleeps) != fmt.Sprint(want) {
				t.Errorf("reads after %v, want %v", sleeps, want)
			}
			if !tt.resolved {
				if ev, err := peek(f); !errors.Is(err, errPending) {
					t.Fatalf("resolved by an event the API does not confirm: %v, %v", ev, err)
				}
				cancel()
				if _, err := f.Result(); !errors.Is(err, context.Canceled) {
					t.Fatalf("Result after cancel = %v", err)
				}
				return
			}
			ev, err := f.Result()
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Errorf("error = %v, want %v", err, tt.wantErr)
			}
			if ev == nil || !ev.Polled {
				t.Fatalf("event = %+v, want the one read from the API", ev)
			}
			if got := jobState(ev.Job); got != tt.want {
				t.Errorf("Job state = %q, want %q", got, tt.want)
			}
		})
	}
}

// jobState is the state of an Event.Job.
func jobState(job any) string {
	switch j := job.(type) {
	case *genai.BatchJob:
		return string(j.State)
	case *genai.GenerateVideosOperation:
		if j.Done {
			return "done"
		}
		return "running"
	case *interactions.Interaction:
		return string(j.Status)
	}
	return fmt.Sprintf("%T", job)
}

func TestClassifyPollError(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	header := func(v string) http.Header { return http.Header{"Retry-After": {v}} }
	retryInfo := func(delay string) []map[string]any {
		return []map[string]any{
			{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED"},
			{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay},
		}
	}
	resp := func(status int, h http.Header) *http.Response { return &http.Response{StatusCode: status, Header: h} }
	tests := []struct {
		name string
		err  error
		want pollStatus
	}{
		{"core 404", genai.APIError{Code: 404, Status: "NOT_FOUND"}, pollStatus{notFound: true}},
		{"core 403, wrapped", fmt.Errorf("dispatch: poll batch: %w", genai.APIError{Code: 403}), pollStatus{notFound: true}},
		{"core 500", genai.APIError{Code: 500}, pollStatus{}},
		{"core 400", genai.APIError{Code: 400}, pollStatus{}},
		{"core 429 with RetryInfo", genai.APIError{Code: 429, Details: retryInfo("30s")}, pollStatus{retryAfter: 30 * time.Second}},
		{"core 503 with fractional RetryInfo", genai.APIError{Code: 503, Details: retryInfo("1.5s")}, pollStatus{retryAfter: 1500 * time.Millisecond}},
		{"core 429 without a hint", genai.APIError{Code: 429}, pollStatus{}},
		{"core 500 with RetryInfo", genai.APIError{Code: 500, Details: retryInfo("30s")}, pollStatus{}},
		{"interactions 404", &apierrors.APIError{StatusCode: 404}, pollStatus{notFound: true}},
		{"interactions 429, seconds", &apierrors.APIError{StatusCode: 429, RawResponse: resp(429, header("120"))}, pollStatus{retryAfter: 2 * time.Minute}},
		{"interactions 503, HTTP date", &apierrors.APIError{StatusCode: 503, RawResponse: resp(503, header(now.Add(90*time.Second).Format(http.TimeFormat)))}, pollStatus{retryAfter: 90 * time.Second}},
		{"interactions 503, date past", &apierrors.APIError{StatusCode: 503, RawResponse: resp(503, header(now.Add(-time.Hour).Format(http.TimeFormat)))}, pollStatus{}},
		{"interactions 429, huge", &apierrors.APIError{StatusCode: 429, RawResponse: resp(429, header("999999999"))}, pollStatus{retryAfter: maxRetryAfter}},
		{"interactions 429, garbage", &apierrors.APIError{StatusCode: 429, RawResponse: resp(429, header("soon"))}, pollStatus{}},
		{"interactions client error 403", &apierrors.GetInteractionByIDClientError{HTTPMeta: components.HTTPMetadata{Response: resp(403, nil)}}, pollStatus{notFound: true}},
		{"interactions server error 503", &apierrors.GetInteractionByIDServerError{HTTPMeta: components.HTTPMetadata{Response: resp(503, header("7"))}}, pollStatus{retryAfter: 7 * time.Second}},
		{"interactions unparsed 404", &apierrors.ResponseValidationError{StatusCode: 404}, pollStatus{notFound: true}},
		{"custom poller's ErrJobNotFound", fmt.Errorf("my poller: %w", ErrJobNotFound), pollStatus{notFound: true}},
		{"transport error", errors.New("connection refused"), pollStatus{}},
		{"timeout", context.DeadlineExceeded, pollStatus{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := classifyPollError(tt.err, now); got != tt.want {
				t.Errorf("classifyPollError = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestNotFoundEndsWaits checks that a job the API keeps answering 404 or
// 403 for ends its waits with ErrJobNotFound, not at the first answer but
// after notFoundPolls in a row over notFoundSpan, and that other errors
// never do.
func TestNotFoundEndsWaits(t *testing.T) {
	notFound := genai.APIError{Code: 404, Message: "not found", Status: "NOT_FOUND"}
	forbidden := genai.APIError{Code: 403, Message: "denied", Status: "PERMISSION_DENIED"}
	unavailable := genai.APIError{Code: 500, Message: "internal", Status: "INTERNAL"}
	tests := []struct {
		name    string
		id      string
		answers []error // nil: still running; the last one repeats
		polls   int     // polls until the waits end; 0: they never do
	}{
		// Polls at +60, +90, +150, +270 s: the third is only 90 s after the first.
		{"404 on a batch", "batches/gone", []error{notFound}, 4},
		{"403 on an interaction", "v1_gone", []error{forbidden}, 4},
		{"404 then 403", "batches/gone", []error{notFound, forbidden}, 4},
		// Video polls come every 30 s: 5 polls span 2 minutes.
		{"404 on a video", "models/veo/operations/gone", []error{notFound}, 5},
		// Four 404s over 7 min, but a poll that found the job breaks the run.
		{"found in between", "batches/late", []error{notFound, notFound, nil, notFound, notFound, nil}, 0},
		{"500 forever", "batches/flaky", []error{unavailable}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			var mu sync.Mutex
			polls := 0
			p := pollerFunc(func(ctx context.Context, id string) (*webhook.Event, error) {
				mu.Lock()
				defer mu.Unlock()
				err := tt.answers[min(polls, len(tt.answers)-1)]
				polls++
				if err != nil {
					return nil, fmt.Errorf("dispatch: poll %s: %w", id, err)
				}
				return nil, nil
			})
			d := mustNew(t, WithLogger(nil), withPoller(p), withClock(clk.Now), withAfterFunc(clk.AfterFunc), withPollJitter(0))
			defer d.Close()
			a, b := d.Watch(context.Background(), tt.id), d.Watch(context.Background(), tt.id)
			maxPolls := max(tt.polls, 12)
			for {
				mu.Lock()
				n := polls
				mu.Unlock()
				select {
				case <-a.Done():
				case at := <-clk.armed:
					if n < maxPolls {
						clk.AdvanceTo(at)
						continue
					}
				case <-time.After(10 * time.Second): // a failure guard
					t.Fatal("timed out")
				}
				break
			}
			if tt.polls == 0 {
				if _, err := peek(a); !errors.Is(err, errPending) {
					t.Fatalf("wait ended after %d polls: %v", polls, err)
				}
				return
			}
			// The waits of a key end one after the other: a is done, so
			// b is being finished, and is waited for rather than sampled.
			select {
			case <-a.Done():
			default:
				t.Fatalf("waits still pending after %d polls", maxPolls)
			}
			select {
			case <-b.Done():
			case <-time.After(10 * time.Second): // a failure guard
				t.Fatal("the second wait did not end with the first")
			}
			mu.Lock()
			n := polls
			mu.Unlock()
			if n != tt.polls {
				t.Errorf("waits ended after %d polls, want %d", n, tt.polls)
			}
			for _, f := range []*Future{a, b} {
				ev, err := f.Result()
				var apiErr genai.APIError
				if ev != nil || !errors.Is(err, ErrJobNotFound) || !errors.As(err, &apiErr) {
					t.Errorf("Result = %v, %v; want ErrJobNotFound wrapping the API error", ev, err)
				}
			}
			assertIdle(t, d)
			d.mu.Lock()
			defer d.mu.Unlock()
			if len(d.notFound) != 0 {
				t.Errorf("not-found runs left: %v", d.notFound)
			}
		})
	}
}

// TestNotFoundThroughGenAIPoller checks the classification of the errors
// genai really returns, for each family, from a Wait to its end.
func TestNotFoundThroughgenAIPoller(t *testing.T) {
	tests := []struct {
		name, id, path string
		status         int
	}{
		{"batch 404", "batches/gone", "/v1beta/batches/gone", 404},
		{"video 404", "models/veo/operations/gone", "/v1beta/models/veo/operations/gone", 404},
		{"interaction 404", testInteractionID, "/v1beta/interactions/" + testInteractionID, 404},
		{"interaction 403", testInteractionID, "/v1beta/interactions/" + testInteractionID, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newScriptedAPI(t)
			api.script(tt.path, apiErr(tt.status, nil))
			clk := newFakeClock()
			d := mustNew(t, WithLogger(nil), withPoller(genAIPoller(api.client(t))),
				withClock(clk.Now), withAfterFunc(clk.AfterFunc), withPollJitter(0))
			defer d.Close()
			f := d.Watch(context.Background(), tt.id)
			drive(t, clk, f.Done())
			if _, err := f.Result(); !errors.Is(err, ErrJobNotFound) || !strings.Contains(err.Error(), tt.id) {
				t.Fatalf("Result = %v, want ErrJobNotFound", err)
			}
			if n := api.count(tt.path); n < notFoundPolls {
				t.Errorf("ended after %d polls", n)
			}
		})
	}
}

// TestRetryAfterDelaysNextPoll checks that a 429 or 503 puts the next poll
// no sooner than its Retry-After (or RetryInfo) asks, and that other
// errors and shorter hints keep the backoff.
func TestRetryAfterDelaysNextPoll(t *testing.T) {
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC).Add(defaultQuietPeriod) // the first poll
	resp := func(status int, retryAfter string) *http.Response {
		return &http.Response{StatusCode: status, Header: http.Header{"Retry-After": {retryAfter}}}
	}
	tests := []struct {
		name string
		err  error
		want time.Duration // from the failed poll to the next
	}{
		{"429 seconds", &apierrors.APIError{StatusCode: 429, RawResponse: resp(429, "300")}, 300 * time.Second},
		{"503 HTTP date", &apierrors.GetInteractionByIDServerError{HTTPMeta: components.HTTPMetadata{
			Response: resp(503, base.Add(17*time.Minute).Format(http.TimeFormat))}}, 17 * time.Minute},
		{"429 RetryInfo (core)", genai.APIError{Code: 429, Details: []map[string]any{
			{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "45s"}}}, 45 * time.Second},
		{"429 shorter than the backoff", &apierrors.APIError{StatusCode: 429, RawResponse: resp(429, "5")}, defaultPollInterval},
		{"500 with Retry-After", &apierrors.APIError{StatusCode: 500, RawResponse: resp(500, "300")}, defaultPollInterval},
		{"transport error", errors.New("connection reset"), defaultPollInterval},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			p := &scriptedPoller{calls: make(chan string), answers: make(chan pollAnswer)}
			d := mustNew(t, WithLogger(nil), withPoller(p), withClock(clk.Now), withAfterFunc(clk.AfterFunc), withPollJitter(0))
			defer d.Close()
			f := d.Watch(context.Background(), "v1_limited")
			defer d.stop(f, context.Canceled)
			clk.AdvanceTo(recv(t, clk.armed, "first timer"))
			recv(t, p.calls, "poll")
			p.answers <- pollAnswer{err: tt.err}
			if got := recv(t, clk.armed, "next timer").Sub(clk.Now()); got != tt.want {
				t.Errorf("next poll after %v, want %v", got, tt.want)
			}
		})
	}
}

// logRecorder is a slog.Handler that sends each record's message and
// attributes on a channel.
type logRecorder struct{ c chan string }

func (h logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h logRecorder) WithGroup(string) slog.Handler            { return h }
func (h logRecorder) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	h.c <- b.String()
	return nil
}

// TestQuietWaitWithoutPollerLogs checks that a wait with no Poller that
// hears nothing for its quiet period logs once, at warn level, naming the
// id and the likely causes.
func TestQuietWaitWithoutPollerLogs(t *testing.T) {
	tests := []struct {
		name    string
		id      string
		event   bool // delivered within the quiet period
		poller  bool
		wantLog bool
	}{
		{"batch heard nothing", "batches/silent", false, false, true},
		{"video heard nothing", "models/veo/operations/silent", false, false, true},
		{"interaction heard nothing", "v1_silent", false, false, true},
		{"event within the quiet period", "batches/fast", true, false, false},
		{"with a poller", "batches/polled", false, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			logs := logRecorder{c: make(chan string, 16)}
			opts := []Option{WithLogger(slog.New(logs)), withClock(clk.Now), withAfterFunc(clk.AfterFunc), withPollJitter(0)}
			var p *scriptedPoller
			if tt.poller {
				p = &scriptedPoller{calls: make(chan string, 1), answers: make(chan pollAnswer, 1)}
				opts = append(opts, withPoller(p))
			}
			d := mustNew(t, opts...)
			defer d.Close()
			f := d.Watch(context.Background(), tt.id)
			defer d.stop(f, context.Canceled)
			clk.drainArmed()
			if tt.event {
				clk.Advance(time.Second)
				d.Deliver(context.Background(), event(webhook.BatchSucceeded, tt.id, clk.Now()))
			}
			if tt.poller {
				p.answers <- pollAnswer{}
			}
			clk.Advance(defaultQuietPeriod)
			if tt.poller {
				recv(t, p.calls, "poll")
				recv(t, clk.armed, "next poll") // the poll is done, its next one scheduled
			}
			if !tt.wantLog {
				select {
				case l := <-logs.c:
					t.Fatalf("logged %q", l)
				default:
				}
				return
			}
			l := recv(t, logs.c, "log line")
			for _, want := range []string{"WARN", "id=" + tt.id, "no poller", "exactly as genai returned it",
				"reach the webhook URL", "refuse the deliveries", "genai client to dispatch.New"} {
				if !strings.Contains(l, want) {
					t.Errorf("log line %q lacks %q", l, want)
				}
			}
			// Logged once: the wait is no longer scheduled, so no timer
			// can log it again.
			clk.Advance(24 * time.Hour)
			if n := clk.live(); n != 0 {
				t.Errorf("%d timers left", n)
			}
			d.mu.Lock()
			n := len(d.heap)
			d.mu.Unlock()
			if n != 0 {
				t.Errorf("%d waits still scheduled", n)
			}
			select {
			case l := <-logs.c:
				t.Errorf("logged again: %q", l)
			default:
			}
		})
	}
}

// TestPollSchedulePerKind checks each kind of job's schedule: videos, for
// whose failure no event comes, are polled early and every 20 s while they
// may still run; batches and interactions keep the default schedule; and
// WithPollSchedule applies to every kind.
func TestPollSchedulePerKind(t *testing.T) {
	s := time.Second
	videoGaps := []time.Duration{30 * s}
	for range videoSteadyPolls {
		videoGaps = append(videoGaps, 30*s)
	}
	videoGaps = append(videoGaps, 60*s, 120*s, 240*s, 480*s, 600*s, 600*s)
	defaultGaps := []time.Duration{60 * s, 30 * s, 60 * s, 120 * s, 240 * s, 480 * s, 600 * s, 600 * s}
	tests := []struct {
		name string
		id   string
		opts []Option
		gaps []time.Duration // first poll, then between polls
	}{
		{"video", "models/veo-3.0-generate-001/operations/op1", nil, videoGaps},
		{"video, short name", "operations/op1", nil, videoGaps},
		{"batch", "batches/b1", nil, defaultGaps},
		{"interaction", "v1_i1", nil, defaultGaps},
		{"video, WithPollSchedule", "models/veo/operations/op1", []Option{WithPollSchedule(2*s, 3*s, 10*s)},
			append(append([]time.Duration{2 * s}, slices.Repeat([]time.Duration{3 * s}, videoSteadyPolls)...), 6*s, 10*s, 10*s)},
		{"batch, WithPollSchedule", "batches/b1", []Option{WithPollSchedule(2*s, 3*s, 10*s)},
			[]time.Duration{2 * s, 3 * s, 6 * s, 10 * s, 10 * s}},
		{"video, WithPollSchedule of the cap only", "models/veo/operations/op1", []Option{WithPollSchedule(0, 0, 40*s)},
			append(append([]time.Duration{30 * s}, slices.Repeat([]time.Duration{30 * s}, videoSteadyPolls)...), 40*s, 40*s)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			p := &scriptedPoller{calls: make(chan string), answers: make(chan pollAnswer)}
			d := mustNew(t, append([]Option{WithLogger(nil), withPoller(p), withClock(clk.Now), withAfterFunc(clk.AfterFunc), withPollJitter(0)}, tt.opts...)...)
			defer d.Close()
			f := d.Watch(context.Background(), tt.id)
			defer d.stop(f, context.Canceled)
			for i, gap := range tt.gaps {
				at := recv(t, clk.armed, "timer")
				if got := at.Sub(clk.Now()); got != gap {
					t.Fatalf("wait %d = %v, want %v", i, got, gap)
				}
				clk.AdvanceTo(at)
				recv(t, p.calls, "poll")
				p.answers <- pollAnswer{}
			}
		})
	}
}

// TestFailedVideoNoticedWithin36s checks, with the default jitter, that a
// video that fails within six minutes, for which Gemini sends no event,
// resolves its wait within 36 s of failing.
func TestFailedVideoNoticedWithin36s(t *testing.T) {
	for _, failAt := range []time.Duration{time.Second, 29 * time.Second, 61 * time.Second, 150 * time.Second, 281 * time.Second, 359 * time.Second} {
		t.Run(failAt.String(), func(t *testing.T) {
			for range 20 { // the jitter is random: try it a few times
				clk := newFakeClock()
				start := clk.Now()
				const id = "models/veo-3.0-generate-001/operations/op1"
				p := pollerFunc(func(ctx context.Context, id string) (*webhook.Event, error) {
					if clk.Now().Sub(start) < failAt {
						return nil, nil
					}
					ev := event(webhook.VideoGenerated, id, time.Time{})
					ev.Data.ErrorMessage = "video generation failed"
					return ev, nil
				})
				d := mustNew(t, WithLogger(nil), withPoller(p), withClock(clk.Now), withAfterFunc(clk.AfterFunc))
				f := d.Watch(context.Background(), id)
				drive(t, clk, f.Done())
				if late := clk.Now().Sub(start) - failAt; late > videoPollInterval*12/10 {
					t.Fatalf("failure at +%v noticed %v later", failAt, late)
				}
				if _, err := f.Result(); !errors.Is(err, ErrJobFailed) {
					t.Fatalf("Result = %v, want ErrJobFailed", err)
				}
				d.Close()
			}
		})
	}
}

// TestOutcomeReadWithoutEventIsLogged checks that a job whose outcome the
// reads find before any event came is logged once, naming the likely
// causes (events not reaching this receiver), and that one whose event
// prompted the read is not; nor is a failed video, for which Gemini sends
// no event.
func TestOutcomeReadWithoutEventIsLogged(t *testing.T) {
	for _, tt := range []struct {
		name    string
		id      string
		deliver bool
		read    func(id string) *webhook.Event
		wantLog bool
	}{
		{"batch, no event", "batches/b1", false, func(id string) *webhook.Event { return event(webhook.BatchSucceeded, id, t0) }, true},
		{"batch, after its event", "batches/b1", true, func(id string) *webhook.Event { return event(webhook.BatchSucceeded, id, t0) }, false},
		{"failed video, no event", "models/veo/operations/v1", false, func(id string) *webhook.Event {
			ev := event(webhook.VideoGenerated, id, t0)
			ev.Data.ErrorMessage = "blocked"
			return ev
		}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				logs := logRecorder{c: make(chan string, 16)}
				p := pollerFunc(func(_ context.Context, id string) (*webhook.Event, error) { return tt.read(id), nil })
				d := mustNew(t, WithLogger(slog.New(logs)), withPoller(p))
				defer d.Close()
				f := d.Watch(t.Context(), tt.id)
				if tt.deliver {
					d.Deliver(t.Context(), tt.read(tt.id))
				}
				<-f.Done()
				got := false
				for len(logs.c) > 0 {
					l := <-logs.c
					got = got || strings.Contains(l, "no event received") && strings.Contains(l, "webhook URL")
				}
				if got != tt.wantLog {
					t.Errorf("logged the missing event: %v, want %v", got, tt.wantLog)
				}
			})
		})
	}
}
