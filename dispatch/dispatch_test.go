package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genai"

	"github.com/genaihook/genaihook/webhook"
)

func event(t webhook.EventType, id string, ts time.Time) *webhook.Event {
	return &webhook.Event{Type: t, Version: "v1", Timestamp: ts, Data: webhook.Data{ID: id}}
}

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// assertIdle checks that d holds nothing for waits any more.
func assertIdle(t *testing.T, d *Dispatcher) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.waiters) != 0 || len(d.heap) != 0 || d.pending != 0 {
		t.Fatalf("dispatcher not idle: %d keys, %d scheduled, %d pending", len(d.waiters), len(d.heap), d.pending)
	}
}

func TestIDForms(t *testing.T) {
	const (
		batch = webhook.BatchSucceeded
		video = webhook.VideoGenerated
		inter = webhook.InteractionCompleted
	)
	tests := []struct {
		name, wait string
		typ        webhook.EventType
		data       string
		match      bool
	}{
		{"batch full/full", "batches/abc123", batch, "batches/abc123", true},
		{"batch full/short", "batches/abc123", batch, "abc123", true},
		{"video full/full", "models/veo-3.0-generate-001/operations/op1", video, "models/veo-3.0-generate-001/operations/op1", true},
		{"video full/operations", "models/veo-3.0-generate-001/operations/op1", video, "operations/op1", true},
		{"video full/short", "models/veo-3.0-generate-001/operations/op1", video, "op1", true},
		{"video operations/full", "operations/op1", video, "models/veo-3.0-generate-001/operations/op1", true},
		{"interaction bare", "v1_int123", inter, "v1_int123", true},
		{"interaction prefixed event", "v1_int123", inter, "interactions/v1_int123", true},
		{"video event for a video interaction", "v1_int123", video, "v1_int123", true},
		{"other batch", "batches/abc123", batch, "batches/abc124", false},
		{"prefix of id", "batches/abc123", batch, "abc12", false},
		// The event's type names its family: the same opaque id in another
		// family is another job.
		{"interaction event, batch wait", "batches/abc", inter, "abc", false},
		{"batch event, interaction wait", "abc", batch, "batches/abc", false},
		{"batch event, video wait", "operations/abc", batch, "abc", false},
		{"interaction event, video wait", "operations/abc", inter, "abc", false},
		{"degenerate data.id", "batches/abc", batch, "batches/", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustNew(t)
			defer d.Close()
			f := d.Watch(context.Background(), tt.wait)
			if err := d.Deliver(context.Background(), event(tt.typ, tt.data, t0)); err != nil {
				t.Fatal(err)
			}
			select {
			case <-f.Done():
				if !tt.match {
					t.Fatalf("Watch(%q) resolved by %s for data.id %q", tt.wait, tt.typ, tt.data)
				}
				ev, err := f.Result()
				if err != nil || ev.Data.ID != tt.data {
					t.Fatalf("Result() = %v, %v", ev, err)
				}
			default:
				if tt.match {
					t.Fatalf("Watch(%q) not resolved by %s for data.id %q", tt.wait, tt.typ, tt.data)
				}
				d.stop(f, context.Canceled)
			}
			assertIdle(t, d)
		})
	}
}

// Ids of no form genai returns are refused rather than matched by accident.
func TestDegenerateIDsRefused(t *testing.T) {
	d := mustNew(t)
	defer d.Close()
	for _, id := range []string{"", "batches/", "batches//", "batches/a/b", "batches/abc/", "/abc",
		"models/veo/operations/", "models//operations/op", "models/veo/operations/op/x", "operations/",
		"files/x", "projects/p/locations/l/batchPredictionJobs/1", "a b", "a\x00b"} {
		if _, err := d.Wait(context.Background(), id); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Wait(%q) = %v, want ErrInvalidID", id, err)
		}
	}
	assertIdle(t, d)
}

// Stopping many waits on one job is linear in their number, and the poll
// id keeps the most qualified form seen when the wait that gave it stops.
func TestStopIsConstantTime(t *testing.T) {
	d := mustNew(t)
	defer d.Close()
	const n = 40_000
	fs := make([]*Future, n)
	for i := range fs {
		fs[i] = d.Watch(context.Background(), "operations/op1")
	}
	long := d.Watch(context.Background(), "models/veo-3.0-generate-001/operations/op1")
	for _, f := range fs { // each stop walked the list before: O(n²) in all
		d.stop(f, context.Canceled)
	}
	d.mu.Lock()
	h := d.waiters[idKey("operations/op1")]
	d.mu.Unlock()
	if h != long {
		t.Fatalf("head after the stops = %v, want the last wait", h)
	}
	short := d.Watch(context.Background(), "operations/op1")
	d.stop(long, context.Canceled)
	d.mu.Lock()
	id := d.waiters[idKey("operations/op1")].id
	d.mu.Unlock()
	if id != "models/veo-3.0-generate-001/operations/op1" {
		t.Errorf("poll id regressed to %q", id)
	}
	d.stop(short, context.Canceled)
	assertIdle(t, d)
}

func TestFamilyOf(t *testing.T) {
	got := map[string]webhook.Family{}
	for _, id := range []string{"batches/a", "models/veo/operations/o", "operations/o", "v1_int", "files/x", ""} {
		got[id] = familyOf(id)
	}
	want := map[string]webhook.Family{
		"batches/a": webhook.FamilyBatch, "models/veo/operations/o": webhook.FamilyVideo,
		"operations/o": webhook.FamilyVideo, "v1_int": webhook.FamilyInteraction,
		"files/x": webhook.FamilyUnknown, "": webhook.FamilyUnknown,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("familyOf (-want +got):\n%s", diff)
	}
}

func TestEarlyEventResolvesLaterWaits(t *testing.T) {
	d := mustNew(t)
	defer d.Close()
	ctx := context.Background()
	if err := d.Deliver(ctx, event(webhook.BatchSucceeded, "batches/b1", t0)); err != nil {
		t.Fatal(err)
	}
	for i := range 3 { // a terminal event is not consumed: every wait sees it
		ev, err := d.Wait(ctx, "batches/b1")
		if err != nil || ev.Type != webhook.BatchSucceeded {
			t.Fatalf("Wait #%d = %v, %v", i, ev, err)
		}
	}
	assertIdle(t, d)
	if s := d.stats(); s.deliveries != 1 || s.resolved != 3 {
		t.Errorf("Stats = %+v", s)
	}
}

func TestSeveralWaitersAllResolve(t *testing.T) {
	d := mustNew(t)
	defer d.Close()
	var fs []*Future
	for range 5 {
		fs = append(fs, d.Watch(context.Background(), "models/veo/operations/op1"))
	}
	d.stop(fs[2], context.Canceled) // a stopped one in the middle does not break the list
	if err := d.Deliver(context.Background(), event(webhook.VideoGenerated, "op1", t0)); err != nil {
		t.Fatal(err)
	}
	for i, f := range fs {
		ev, err := f.Result()
		if i == 2 {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("stopped future: %v, %v", ev, err)
			}
			continue
		}
		if err != nil || ev.Type != webhook.VideoGenerated {
			t.Errorf("future %d: %v, %v", i, ev, err)
		}
	}
	assertIdle(t, d)
}

func TestDuplicatesAndUnknownTypes(t *testing.T) {
	d := mustNew(t)
	defer d.Close()
	ctx := context.Background()
	ev := event(webhook.InteractionCompleted, "i1", t0)
	for range 3 {
		if err := d.Deliver(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Deliver(ctx, event("interaction.progress", "i2", t0)); err != nil {
		t.Fatal(err)
	}
	f := d.Watch(context.Background(), "i2")
	if _, err := peek(f); !errors.Is(err, errPending) {
		t.Fatalf("unknown type resolved a wait: %v", err)
	}
	d.stop(f, context.Canceled)
	if got, err := d.Wait(ctx, "i1"); err != nil || got != ev {
		t.Fatalf("Wait = %v, %v", got, err)
	}
	if s := d.stats(); s.deliveries != 4 || s.ignored != 1 {
		t.Errorf("Stats = %+v", s)
	}
	if err := d.Deliver(ctx, nil); err == nil {
		t.Error("Deliver(nil) succeeded")
	}
}

func TestRequiresActionRewait(t *testing.T) {
	ctx := context.Background()
	ra1 := event(webhook.InteractionRequiresAction, "int1", t0)
	ra1.WebhookID = "msg_1"
	ra2 := event(webhook.InteractionRequiresAction, "int1", t0.Add(time.Minute))
	ra2.WebhookID = "msg_2"
	done := event(webhook.InteractionCompleted, "int1", t0.Add(time.Minute)) // same second as ra2

	t.Run("event before wait", func(t *testing.T) {
		d := mustNew(t)
		defer d.Close()
		d.Deliver(ctx, ra1)
		if ev, err := d.Wait(ctx, "int1"); err != nil || ev != ra1 {
			t.Fatalf("first Wait = %v, %v", ev, err)
		}
		f := d.Watch(context.Background(), "int1")
		d.Deliver(ctx, ra1) // a redelivery of the consumed event
		polled := *ra1
		polled.WebhookID, polled.Polled = "", true
		d.Deliver(ctx, &polled) // a poll that sees the same pause
		if _, err := peek(f); !errors.Is(err, errPending) {
			t.Fatalf("second wait resolved by the stale event: %v", err)
		}
		d.Deliver(ctx, ra2)
		if ev, _ := f.Result(); ev != ra2 {
			t.Fatalf("second wait = %v, want the next requires_action", ev)
		}
		d.Deliver(ctx, done)
		if ev, err := d.Wait(ctx, "int1"); err != nil || ev != done {
			t.Fatalf("third Wait = %v, %v", ev, err)
		}
		// completed is terminal: later waits keep seeing it.
		if ev, err := d.Wait(ctx, "int1"); err != nil || ev != done {
			t.Fatalf("fourth Wait = %v, %v", ev, err)
		}
		assertIdle(t, d)
	})
	t.Run("waiters before event", func(t *testing.T) {
		d := mustNew(t)
		defer d.Close()
		a, b := d.Watch(context.Background(), "int1"), d.Watch(context.Background(), "int1")
		d.Deliver(ctx, ra1)
		// One pause, one wait: two would answer one function call twice.
		evA, _ := peek(a)
		evB, _ := peek(b)
		if (evA == ra1) == (evB == ra1) || evA != nil && evA != ra1 || evB != nil && evB != ra1 {
			t.Fatalf("waiters got %v and %v, want the pause for exactly one", evA, evB)
		}
		c := d.Watch(context.Background(), "int1")
		if _, err := peek(c); !errors.Is(err, errPending) {
			t.Fatalf("a wait after the resolved requires_action got it again: %v", err)
		}
		d.Deliver(ctx, done)
		for _, f := range []*Future{a, b, c} {
			if ev, _ := f.Result(); ev != done && ev != ra1 {
				t.Fatalf("got %v, want completed", ev)
			}
		}
		if ev, _ := c.Result(); ev != done {
			t.Fatalf("got %v, want completed", ev)
		}
	})
	t.Run("stale requires_action after completed", func(t *testing.T) {
		d := mustNew(t)
		defer d.Close()
		d.Deliver(ctx, done)
		d.Deliver(ctx, ra1) // out of order: older
		if ev, _ := d.Wait(ctx, "int1"); ev != done {
			t.Fatalf("got %v, want completed", ev)
		}
	})
}

func TestCancelFreesState(t *testing.T) {
	p := pollerFunc(func(context.Context, string) (*webhook.Event, error) { return nil, nil })
	d := mustNew(t, withPoller(p))
	defer d.Close()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 3)
	for _, id := range []string{"batches/x", "batches/x", "v1_int"} {
		f := d.Watch(ctx, id)
		go func() {
			_, err := f.Result()
			errc <- err
		}()
	}
	cancel()
	for range 3 {
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("Wait = %v, want context.Canceled", err)
		}
	}
	assertIdle(t, d)
	if s := d.stats(); s.pending != 0 {
		t.Errorf("Pending = %d", s.pending)
	}
	if _, err := d.Wait(ctx, "batches/x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with done ctx = %v", err)
	}
	assertIdle(t, d)
}

func TestCloseEndsWaits(t *testing.T) {
	d := mustNew(t, withPoller(pollerFunc(func(context.Context, string) (*webhook.Event, error) { return nil, nil })))
	errc := make(chan error)
	for _, id := range []string{"batches/a", "batches/a", "models/m/operations/b"} {
		f := d.Watch(context.Background(), id) // registered before the goroutine starts
		go func() {
			_, err := f.Result()
			errc <- err
		}()
	}
	f := d.Watch(context.Background(), "v1_other")
	if p := d.stats().pending; p != 4 {
		t.Fatalf("Pending = %d, want 4", p)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := <-errc; !errors.Is(err, ErrClosed) {
			t.Fatalf("Wait = %v, want ErrClosed", err)
		}
	}
	if _, err := f.Result(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Future = %v", err)
	}
	if _, err := d.Wait(context.Background(), "batches/a"); !errors.Is(err, ErrClosed) {
		t.Errorf("Wait after Close = %v", err)
	}
	if err := d.Deliver(context.Background(), event(webhook.BatchSucceeded, "a", t0)); !errors.Is(err, ErrClosed) {
		t.Errorf("Deliver after Close = %v", err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	assertIdle(t, d)
}

func TestInvalidIDs(t *testing.T) {
	d := mustNew(t)
	defer d.Close()
	for _, f := range []*Future{d.Watch(context.Background(), ""), d.Watch(context.Background(), "/")} {
		if _, err := f.Result(); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Result = %v", err)
		}
		if d.stop(f, context.Canceled) {
			t.Error("Stop on a resolved future reported true")
		}
	}
}

func TestWebhookConfigBuilders(t *testing.T) {
	b, err := webhook.NewBinder([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	d := mustNew(t, WithBinder(b))
	defer d.Close()

	if cfg := d.WebhookConfig(); cfg.UserMetadata != nil || !cmp.Equal(cfg.Uris, []string{testURL}) {
		t.Errorf("WebhookConfig() = %+v", cfg)
	}
	ic, ic2 := d.InteractionWebhookConfig(), d.InteractionWebhookConfig()
	if !cmp.Equal(ic.Uris, []string{testURL}) {
		t.Errorf("uris = %v", ic.Uris)
	}
	if err := b.Check(context.Background(), &webhook.Event{UserMetadata: metadataJSON(t, ic.UserMetadata)}); err != nil {
		t.Errorf("binder rejects the builder's metadata %v: %v", ic.UserMetadata, err)
	}
	if ic.UserMetadata[webhook.MetadataKey] == ic2.UserMetadata[webhook.MetadataKey] {
		t.Error("two configs share a token key")
	}
	// Without WithBinder the dispatcher binds with a random secret of its own.
	md := mustNew(t).InteractionWebhookConfig().UserMetadata
	if md[webhook.MetadataToken] == nil || b.Check(context.Background(), &webhook.Event{UserMetadata: metadataJSON(t, md)}) == nil {
		t.Errorf("metadata without WithBinder = %v", md)
	}
}

func TestNewRefusesMisconfiguration(t *testing.T) {
	tests := []struct {
		name   string
		client *genai.Client
		url    string
		opt    Option
		want   string // in the error
	}{
		{"zero client", &genai.Client{}, testURL, nil, "genai.NewClient"},
		{"nil binder", nil, testURL, WithBinder(nil), "webhook.NewBinder"},
		{"nil store", nil, testURL, WithStore(nil), "WithStore"},
		{"empty webhook URL", nil, "", nil, "empty"},
		{"http webhook URL", nil, "http://example.com/hook", nil, "use https"},
		{"relative webhook URL", nil, "/gemini/webhook", nil, "no host"},
		{"webhook URL of another scheme", nil, "ftp://example.com/hook", nil, "use https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []Option
			if tt.opt != nil {
				opts = append(opts, tt.opt)
			}
			d, err := New(tt.client, tt.url, opts...)
			if err == nil {
				d.Close()
				t.Fatal("New accepted it")
			}
			if !strings.HasPrefix(err.Error(), "dispatch: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want an error containing %q", err, tt.want)
			}
		})
	}
	for _, uri := range []string{"https://example.com/hook", "http://127.0.0.1:8080/hook", "http://localhost/hook"} {
		d, err := New(nil, uri)
		if err != nil {
			t.Errorf("New(nil, %q): %v", uri, err)
			continue
		}
		d.Close()
	}
}

func TestBinding(t *testing.T) {
	ctx := context.Background()
	d := mustNew(t)
	defer d.Close()
	ev := event(webhook.BatchSucceeded, "batches/mine", t0)
	if err := d.bound(ctx, ev); !errors.Is(err, webhook.ErrNotBound) {
		t.Fatalf("unknown job: %v", err)
	}
	f := d.Watch(context.Background(), "batches/mine")
	if err := d.bound(ctx, ev); err != nil {
		t.Fatalf("awaited job: %v", err)
	}
	d.stop(f, context.Canceled)
	d.store.Track(ctx, "batches/mine") // as another replica's wait does, in a shared store
	if err := d.bound(ctx, event(webhook.BatchSucceeded, "mine", t0)); err != nil {
		t.Fatalf("tracked job, short form: %v", err)
	}
	if err := d.bound(ctx, event(webhook.BatchSucceeded, "", t0)); !errors.Is(err, webhook.ErrNotBound) {
		t.Fatalf("no id: %v", err)
	}
	// A token from the builders binds a job nobody awaits yet.
	withToken := event(webhook.InteractionCompleted, "v1_ChdOdXRoYXJHZnJvbVRoZUZha2VHZW1pbmk", t0)
	withToken.UserMetadata = metadataJSON(t, d.InteractionWebhookConfig().UserMetadata)
	if err := d.bound(ctx, withToken); err != nil {
		t.Fatalf("token from the builder: %v", err)
	}
	// Another receiver's token does not.
	other := mustNew(t)
	defer other.Close()
	withToken.UserMetadata = metadataJSON(t, other.InteractionWebhookConfig().UserMetadata)
	if err := d.bound(ctx, withToken); !errors.Is(err, webhook.ErrNotBound) {
		t.Fatalf("another receiver's token: %v", err)
	}
}

// An event stamped far in the future must not pin itself as the job's
// latest news: the genuine event that follows still supersedes it.
func TestFutureTimestampDoesNotPin(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	d := mustNew(t, withClock(clk.Now), WithLogger(nil))
	defer d.Close()
	pause := event(webhook.InteractionRequiresAction, "v1_int", time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC))
	pause.WebhookID = "msg_1"
	d.Deliver(ctx, pause)
	if ev, err := d.Watch(context.Background(), "v1_int").Result(); err != nil || ev.Type != webhook.InteractionRequiresAction {
		t.Fatalf("pause: %v, %v", ev, err)
	}
	clk.Advance(time.Minute)
	done := event(webhook.InteractionCompleted, "v1_int", clk.Now())
	done.WebhookID = "msg_2"
	d.Deliver(ctx, done)
	if ev, err := d.Watch(context.Background(), "v1_int").Result(); err != nil || ev != done {
		t.Fatalf("the genuine later event did not supersede the future-stamped one: %v, %v", ev, err)
	}
}

func TestRetention(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	d := mustNew(t, withClock(clk.Now), withRetention(time.Hour, 3))
	defer d.Close()
	d.Deliver(ctx, event(webhook.BatchSucceeded, "batches/old", t0))
	clk.Advance(time.Hour + time.Second)
	f := d.Watch(context.Background(), "batches/old")
	if _, err := peek(f); !errors.Is(err, errPending) {
		t.Fatalf("expired event resolved a wait: %v", err)
	}
	d.stop(f, context.Canceled)
	for i := range 5 {
		d.Deliver(ctx, event(webhook.BatchSucceeded, fmt.Sprintf("batches/b%d", i), t0))
	}
	if n := d.store.(*memoryStore).len(); n > 3 {
		t.Fatalf("store holds %d entries, max 3", n)
	}
	for i, want := range []bool{false, false, true, true, true} {
		f := d.Watch(context.Background(), fmt.Sprintf("batches/b%d", i))
		_, err := peek(f)
		if got := err == nil; got != want {
			t.Errorf("b%d kept = %v, want %v", i, got, want)
		}
		d.stop(f, context.Canceled)
	}
}

func TestEventError(t *testing.T) {
	failed := event(webhook.BatchFailed, "batches/f", t0)
	failed.Data.ErrorCode, failed.Data.ErrorMessage = "3", "bad input"
	videoErr := event(webhook.VideoGenerated, "op", t0)
	videoErr.Data.ErrorMessage = "blocked"
	tests := []struct {
		ev   *webhook.Event
		want error
	}{
		{event(webhook.BatchSucceeded, "b", t0), nil},
		{failed, ErrJobFailed},
		{event(webhook.BatchExpired, "b", t0), ErrJobExpired},
		{event(webhook.BatchCancelled, "b", t0), ErrJobCancelled},
		{event(webhook.InteractionCancelled, "i", t0), ErrJobCancelled},
		{event(webhook.InteractionRequiresAction, "i", t0), nil},
		{videoErr, ErrJobFailed},
	}
	for _, tt := range tests {
		err := eventError(tt.ev)
		if tt.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tt.ev.Type, err)
			}
			continue
		}
		var je *JobError
		if !errors.Is(err, tt.want) || !errors.As(err, &je) {
			t.Errorf("%s: %v, want %v", tt.ev.Type, err, tt.want)
		}
	}
	err := eventError(failed)
	if got := err.Error(); got != "dispatch: job batches/f failed: bad input (code 3)" {
		t.Errorf("Error() = %q", got)
	}
	if errors.Is(err, ErrJobExpired) {
		t.Error("failed job matches ErrJobExpired")
	}
}

// blockingLoadStore is a memoryStore whose Load hangs until its ctx ends,
// like a shared store that is unreachable.
type blockingLoadStore struct{ *memoryStore }

func (s blockingLoadStore) Load(ctx context.Context, key string) (*webhook.Event, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestWaitCtxBoundsStoreLoad checks that Wait honours its ctx while the
// store lookup of an early event hangs, and releases the wait.
func TestWaitCtxBoundsStoreLoad(t *testing.T) {
	d := mustNew(t, WithLogger(nil), WithStore(blockingLoadStore{newMemoryStore(time.Now, time.Hour, 10)}))
	defer d.Close()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 2)
	go func() {
		_, err := d.Wait(ctx, "batches/slow")
		errc <- err
	}()
	cancel()
	for range 1 {
		select {
		case err := <-errc:
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Wait = %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second): // a failure guard, not a wait for success
			t.Fatal("Wait ignored its ctx while the store lookup hung")
		}
	}
	assertIdle(t, d)
}

// stuckStore is a store whose Load ignores its ctx until released, as a
// store held up behind another goroutine's slow write can.
type stuckStore struct {
	*memoryStore
	release chan struct{}
}

func (s stuckStore) Load(ctx context.Context, key string) (*webhook.Event, error) {
	<-s.release
	return s.memoryStore.Load(ctx, key)
}

// A Wait returns by its deadline even when the store lookup ignores ctx,
// and the wait it held is released.
func TestWaitDeadlineWithStuckStore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := stuckStore{newMemoryStore(time.Now, time.Hour, 10), make(chan struct{})}
		d := mustNew(t, WithLogger(nil), WithStore(s))
		defer d.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := d.Wait(ctx, "batches/stuck")
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) != 100*time.Millisecond {
			t.Fatalf("Wait = %v after %v, want the deadline after 100ms", err, time.Since(start))
		}
		close(s.release)
		synctest.Wait()
		assertIdle(t, d)
	})
}

// The end of a job supersedes a pause whatever their timestamps, and a
// pause never supersedes the end.
func TestTerminalBeatsPauseWhateverTheClock(t *testing.T) {
	ctx := context.Background()
	d := mustNew(t, WithLogger(nil))
	defer d.Close()
	pause := event(webhook.InteractionRequiresAction, "v1_x", t0.Add(4*time.Minute+50*time.Second))
	pause.WebhookID = "msg_1"
	d.Deliver(ctx, pause)
	done := event(webhook.InteractionCompleted, "v1_x", t0)
	done.WebhookID = "msg_2"
	d.Deliver(ctx, done)
	if ev, err := d.Wait(ctx, "v1_x"); err != nil || ev != done {
		t.Fatalf("Wait = %v, %v; want the completion", ev, err)
	}
	late := event(webhook.InteractionRequiresAction, "v1_x", t0.Add(time.Hour))
	late.WebhookID = "msg_3"
	d.Deliver(ctx, late)
	if ev, err := d.Wait(ctx, "v1_x"); err != nil || ev != done {
		t.Fatalf("Wait after a later-stamped pause = %v, %v; want the completion", ev, err)
	}
}

// failingTrackStore is the memory store whose Track fails, as a shared
// store that is down does.
type failingTrackStore struct{ *memoryStore }

func (failingTrackStore) Track(context.Context, string) error { return errors.New("store down") }

// After the store failed to record a wait, the binding (without a client)
// answers a job it does not know as undecided for two minutes, since the
// job may be that wait's, then refuses it again.
func TestBindingDoubtsAfterFailedTrack(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	d := mustNew(t, WithLogger(nil), withClock(clk.Now), WithStore(failingTrackStore{newMemoryStore(clk.Now, time.Hour, 10)}))
	defer d.Close()
	other := event(webhook.BatchSucceeded, "batches/elsewhere", clk.Now())
	if err := d.bound(ctx, other); !errors.Is(err, webhook.ErrNotBound) {
		t.Fatalf("before any failure: %v, want ErrNotBound", err)
	}
	f := d.Watch(ctx, "batches/mine") // its Track fails
	defer d.stop(f, context.Canceled)
	if err := d.bound(ctx, other); err == nil || errors.Is(err, webhook.ErrNotBound) {
		t.Fatalf("right after a failed Track: %v, want undecided", err)
	}
	clk.Advance(trackDoubt + time.Second)
	if err := d.bound(ctx, other); !errors.Is(err, webhook.ErrNotBound) {
		t.Fatalf("%v after the failed Track: %v, want ErrNotBound", trackDoubt+time.Second, err)
	}
}

// metadataJSON returns md, a job's user_metadata, as Gemini echoes it in
// an event's webhook.Event.UserMetadata.
func metadataJSON(t testing.TB, md map[string]any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(md)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
