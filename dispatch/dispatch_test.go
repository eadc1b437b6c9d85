package dispatch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genai"

	"github.com/genaihook/genaihook/verify"
	"github.com/genaihook/genaihook/webhook"
)

func event(t webhook.EventType, id string, ts time.Time) *webhook.Event {
	return &webhook.Event{Type: t, Version: "v1", Timestamp: ts, Data: webhook.Data{ID: id}}
}

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// assertIdle checks that d holds nothing for waits any more.
// mustNew is New for tests: it fails tb on a configuration error.
func mustNew(tb testing.TB, opts ...Option) *Dispatcher {
	tb.Helper()
	d, err := New(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

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
			f := d.Watch(tt.wait)
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
				f.Stop()
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
		if err := d.Track(context.Background(), id, ""); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Track(%q) = %v, want ErrInvalidID", id, err)
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
		fs[i] = d.Watch("operations/op1")
	}
	long := d.Watch("models/veo-3.0-generate-001/operations/op1")
	for _, f := range fs { // each stop walked the list before: O(n²) in all
		f.Stop()
	}
	d.mu.Lock()
	h := d.waiters[idKey("operations/op1")]
	d.mu.Unlock()
	if h != long {
		t.Fatalf("head after the stops = %v, want the last wait", h)
	}
	short := d.Watch("operations/op1")
	long.Stop()
	d.mu.Lock()
	id := d.waiters[idKey("operations/op1")].id
	d.mu.Unlock()
	if id != "models/veo-3.0-generate-001/operations/op1" {
		t.Errorf("poll id regressed to %q", id)
	}
	short.Stop()
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
	if s := d.Stats(); s.Deliveries != 1 || s.Resolved != 3 {
		t.Errorf("Stats = %+v", s)
	}
}

func TestSeveralWaitersAllResolve(t *testing.T) {
	d := mustNew(t)
	defer d.Close()
	var fs []*Future
	for range 5 {
		fs = append(fs, d.Watch("models/veo/operations/op1"))
	}
	fs[2].Stop() // a stopped one in the middle does not break the list
	if err := d.Deliver(context.Background(), event(webhook.VideoGenerated, "op1", t0)); err != nil {
		t.Fatal(err)
	}
	for i, f := range fs {
		ev, err := f.Result()
		if i == 2 {
			if !errors.Is(err, ErrStopped) {
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
	f := d.Watch("i2")
	if _, err := f.Result(); !errors.Is(err, ErrPending) {
		t.Fatalf("unknown type resolved a wait: %v", err)
	}
	f.Stop()
	if got, err := d.Wait(ctx, "i1"); err != nil || got != ev {
		t.Fatalf("Wait = %v, %v", got, err)
	}
	if s := d.Stats(); s.Deliveries != 4 || s.Ignored != 1 {
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
		f := d.Watch("int1")
		d.Deliver(ctx, ra1) // a redelivery of the consumed event
		polled := *ra1
		polled.WebhookID, polled.Polled = "", true
		d.Deliver(ctx, &polled) // a poll that sees the same pause
		if _, err := f.Result(); !errors.Is(err, ErrPending) {
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
		a, b := d.Watch("int1"), d.Watch("int1")
		d.Deliver(ctx, ra1)
		for _, f := range []*Future{a, b} {
			if ev, _ := f.Result(); ev != ra1 {
				t.Fatalf("waiter got %v", ev)
			}
		}
		c := d.Watch("int1")
		if _, err := c.Result(); !errors.Is(err, ErrPending) {
			t.Fatalf("a wait after the resolved requires_action got it again: %v", err)
		}
		d.Deliver(ctx, done)
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
	p := PollerFunc(func(context.Context, string) (*webhook.Event, error) { return nil, nil })
	d := mustNew(t, WithPoller(p))
	defer d.Close()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 3)
	for _, id := range []string{"batches/x", "batches/x", "v1_int"} {
		f := d.Watch(id)
		go func() {
			_, err := d.wait(ctx, f)
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
	if s := d.Stats(); s.Pending != 0 {
		t.Errorf("Pending = %d", s.Pending)
	}
	if _, err := d.Wait(ctx, "batches/x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with done ctx = %v", err)
	}
	assertIdle(t, d)
}

func TestCloseEndsWaits(t *testing.T) {
	d := mustNew(t, WithPoller(PollerFunc(func(context.Context, string) (*webhook.Event, error) { return nil, nil })))
	errc := make(chan error)
	for _, id := range []string{"batches/a", "batches/a", "models/m/operations/b"} {
		f := d.Watch(id) // registered before the goroutine starts
		go func() {
			_, err := d.wait(context.Background(), f)
			errc <- err
		}()
	}
	f := d.WatchKey("k1")
	if p := d.Stats().Pending; p != 4 {
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
	for _, f := range []*Future{d.Watch(""), d.Watch("/"), d.WatchKey("")} {
		if _, err := f.Result(); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Result = %v", err)
		}
		if f.Stop() {
			t.Error("Stop on a resolved future reported true")
		}
	}
	if err := d.Track(context.Background(), "", ""); !errors.Is(err, ErrInvalidID) {
		t.Errorf("Track = %v", err)
	}
}

func TestCorrelationKey(t *testing.T) {
	ctx := context.Background()
	d := mustNew(t, WithWebhookURL("https://me.example/hook"))
	defer d.Close()
	cfg := d.VideoWebhookConfig(map[string]any{"job": "j-42"})
	key := KeyOf(cfg.UserMetadata)
	if key == "" || cfg.UserMetadata["job"] != "j-42" {
		t.Fatalf("metadata = %v", cfg.UserMetadata)
	}
	if err := d.Track(ctx, "models/veo/operations/op9", key); err != nil {
		t.Fatal(err)
	}
	byID, byKey := d.Watch("models/veo/operations/op9"), d.WatchKey(key)
	// data.id in a form nobody expected: the key still matches both.
	ev := event(webhook.VideoGenerated, "projects/p/something-else", t0)
	ev.UserMetadata = cfg.UserMetadata
	ev.Auth = verify.Result{Scheme: verify.SchemeEd25519}
	d.Deliver(ctx, ev)
	for _, f := range []*Future{byID, byKey} {
		if got, err := f.Result(); err != nil || got != ev {
			t.Fatalf("Result = %v, %v", got, err)
		}
	}
	assertIdle(t, d)
}

// A dynamic delivery whose user_metadata names a correlation key without
// this receiver's token for it resolves nothing through that key and
// plants nothing under it: the key is not authenticated.
func TestCorrelationKeyNeedsToken(t *testing.T) {
	ctx := context.Background()
	d := mustNew(t, WithWebhookURL("https://me.example/hook"))
	defer d.Close()
	key := KeyOf(d.VideoWebhookConfig(nil).UserMetadata)
	if err := d.Track(ctx, "models/veo/operations/op9", key); err != nil {
		t.Fatal(err)
	}
	forged := event(webhook.VideoGenerated, "models/veo/operations/theirs", t0)
	forged.UserMetadata = map[string]any{webhook.MetadataKey: key}
	forged.Auth = verify.Result{Scheme: verify.SchemeEd25519}
	if err := d.Deliver(ctx, forged); err != nil {
		t.Fatal(err)
	}
	for _, f := range []*Future{d.Watch("models/veo/operations/op9"), d.WatchKey(key)} {
		if ev, err := f.Result(); !errors.Is(err, ErrPending) {
			t.Errorf("wait resolved by an unauthenticated key: %v, %v", ev, err)
		}
		f.Stop()
	}
	// The same key from a static (HMAC) delivery is authenticated.
	static := event(webhook.VideoGenerated, "models/veo/operations/theirs", t0)
	static.UserMetadata = forged.UserMetadata
	static.Auth = verify.Result{Scheme: verify.SchemeHMAC}
	d.Deliver(ctx, static)
	if ev, err := d.Watch("models/veo/operations/op9").Result(); err != nil || ev != static {
		t.Errorf("static delivery: %v, %v", ev, err)
	}
}

func TestWebhookConfigBuilders(t *testing.T) {
	b, err := webhook.NewBinder([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	const uri = "https://me.example/hook"
	d := mustNew(t, WithBinder(b), WithWebhookURL(uri))
	defer d.Close()
	user := map[string]any{"app": "x"}

	if cfg := d.BatchWebhookConfig(); cfg.UserMetadata != nil || !cmp.Equal(cfg.Uris, []string{uri}) {
		t.Errorf("batch config = %+v", cfg)
	}
	vc := d.VideoWebhookConfig(user)
	ic := d.InteractionWebhookConfig(nil)
	if !cmp.Equal(vc.Uris, []string{uri}) || !cmp.Equal(ic.Uris, []string{uri}) {
		t.Errorf("uris = %v, %v", vc.Uris, ic.Uris)
	}
	for _, md := range []map[string]any{vc.UserMetadata, ic.UserMetadata} {
		ev := &webhook.Event{UserMetadata: md}
		if err := b.Check(context.Background(), ev); err != nil {
			t.Errorf("binder rejects the builder's metadata %v: %v", md, err)
		}
	}
	if KeyOf(vc.UserMetadata) == KeyOf(ic.UserMetadata) {
		t.Error("two configs share a correlation key")
	}
	if len(user) != 1 {
		t.Errorf("caller's metadata modified: %v", user)
	}
	// Without WithBinder the dispatcher binds with a random secret of its own.
	md := mustNew(t, WithWebhookURL(uri)).VideoWebhookConfig(nil).UserMetadata
	if KeyOf(md) == "" || md[webhook.MetadataToken] == nil {
		t.Errorf("metadata without WithBinder = %v", md)
	}
}

func TestBuilderWithoutURLPanics(t *testing.T) {
	d := mustNew(t)
	defer d.Close()
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "WithWebhookURL") {
			t.Errorf("recover() = %v, want a panic naming WithWebhookURL", r)
		}
	}()
	d.BatchWebhookConfig()
}

func TestNewRefusesMisconfiguration(t *testing.T) {
	tests := []struct {
		name string
		opt  Option
		want string // in the error
	}{
		{"nil poller", WithPoller(nil), "GenAIPoller"},
		{"GenAIPoller of a nil client", WithPoller(GenAIPoller(nil)), "nil *genai.Client"},
		{"GenAIPoller of a zero client", WithPoller(GenAIPoller(&genai.Client{})), "genai.NewClient"},
		{"nil binder", WithBinder(nil), "webhook.NewBinder"},
		{"empty webhook URL", WithWebhookURL(""), "empty"},
		{"http webhook URL", WithWebhookURL("http://example.com/hook"), "use https"},
		{"relative webhook URL", WithWebhookURL("/gemini/webhook"), "no host"},
		{"webhook URL of another scheme", WithWebhookURL("ftp://example.com/hook"), "use https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := New(tt.opt)
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
		d, err := New(WithWebhookURL(uri))
		if err != nil {
			t.Errorf("New(WithWebhookURL(%q)): %v", uri, err)
			continue
		}
		d.Close()
	}
}

func TestBinding(t *testing.T) {
	ctx := context.Background()
	d := mustNew(t, WithWebhookURL("https://me.example/hook"))
	defer d.Close()
	ev := event(webhook.BatchSucceeded, "batches/mine", t0)
	if err := d.bound(ctx, ev); !errors.Is(err, webhook.ErrNotBound) {
		t.Fatalf("unknown job: %v", err)
	}
	f := d.Watch("batches/mine")
	if err := d.bound(ctx, ev); err != nil {
		t.Fatalf("awaited job: %v", err)
	}
	f.Stop()
	d.Track(ctx, "batches/mine", "")
	if err := d.bound(ctx, event(webhook.BatchSucceeded, "mine", t0)); err != nil {
		t.Fatalf("tracked job, short form: %v", err)
	}
	if err := d.bound(ctx, event(webhook.BatchSucceeded, "", t0)); !errors.Is(err, webhook.ErrNotBound) {
		t.Fatalf("no id: %v", err)
	}
	// A token from the builders binds a job nobody awaits yet.
	withToken := event(webhook.InteractionCompleted, "v1_ChdOdXRoYXJHZnJvbVRoZUZha2VHZW1pbmk", t0)
	withToken.UserMetadata = d.InteractionWebhookConfig(nil).UserMetadata
	if err := d.bound(ctx, withToken); err != nil {
		t.Fatalf("token from the builder: %v", err)
	}
	// Another receiver's token does not.
	other := mustNew(t, WithWebhookURL("https://other.example/hook"))
	defer other.Close()
	withToken.UserMetadata = other.InteractionWebhookConfig(nil).UserMetadata
	if err := d.bound(ctx, withToken); !errors.Is(err, webhook.ErrNotBound) {
		t.Fatalf("another receiver's token: %v", err)
	}
}

// An event stamped far in the future must not pin itself as the job's
// latest news: the genuine event that follows still supersedes it.
func TestFutureTimestampDoesNotPin(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	d := mustNew(t, WithClock(clk.Now), WithLogger(nil))
	defer d.Close()
	pause := event(webhook.InteractionRequiresAction, "v1_int", time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC))
	pause.WebhookID = "msg_1"
	d.Deliver(ctx, pause)
	if ev, err := d.Watch("v1_int").Result(); err != nil || ev.Type != webhook.InteractionRequiresAction {
		t.Fatalf("pause: %v, %v", ev, err)
	}
	clk.Advance(time.Minute)
	done := event(webhook.InteractionCompleted, "v1_int", clk.Now())
	done.WebhookID = "msg_2"
	d.Deliver(ctx, done)
	if ev, err := d.Watch("v1_int").Result(); err != nil || ev != done {
		t.Fatalf("the genuine later event did not supersede the future-stamped one: %v, %v", ev, err)
	}
}

func TestRetention(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	d := mustNew(t, WithClock(clk.Now), WithRetention(time.Hour, 3))
	defer d.Close()
	d.Deliver(ctx, event(webhook.BatchSucceeded, "batches/old", t0))
	clk.Advance(time.Hour + time.Second)
	f := d.Watch("batches/old")
	if _, err := f.Result(); !errors.Is(err, ErrPending) {
		t.Fatalf("expired event resolved a wait: %v", err)
	}
	f.Stop()
	for i := range 5 {
		d.Deliver(ctx, event(webhook.BatchSucceeded, fmt.Sprintf("batches/b%d", i), t0))
	}
	if n := d.store.(*memoryStore).len(); n > 3 {
		t.Fatalf("store holds %d entries, max 3", n)
	}
	for i, want := range []bool{false, false, true, true, true} {
		f := d.Watch(fmt.Sprintf("batches/b%d", i))
		_, err := f.Result()
		if got := err == nil; got != want {
			t.Errorf("b%d kept = %v, want %v", i, got, want)
		}
		f.Stop()
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
		err := EventError(tt.ev)
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
	err := EventError(failed)
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
	go func() {
		_, err := d.WaitKey(ctx, "k-slow")
		errc <- err
	}()
	cancel()
	for range 2 {
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

// An event that carries a job's correlation key under a data.id of another
// form, delivered before Track links the key to the job, still resolves a
// wait on the job's id.
func TestTrackAfterKeyedEvent(t *testing.T) {
	ctx := context.Background()
	d := mustNew(t, WithWebhookURL("https://me.example/hook"))
	defer d.Close()
	md := d.VideoWebhookConfig(nil).UserMetadata
	f := d.Watch("models/veo/operations/op7")
	ev := event(webhook.VideoGenerated, "projects/p/some-other-form", t0)
	ev.UserMetadata = md
	ev.Auth = verify.Result{Scheme: verify.SchemeEd25519}
	if err := d.Deliver(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Result(); !errors.Is(err, ErrPending) {
		t.Fatalf("resolved before Track: %v", err)
	}
	if err := d.Track(ctx, "models/veo/operations/op7", KeyOf(md)); err != nil {
		t.Fatal(err)
	}
	if got, err := f.Result(); err != nil || got != ev {
		t.Fatalf("after Track: %v, %v", got, err)
	}
	if got, err := d.Wait(ctx, "models/veo/operations/op7"); err != nil || got != ev {
		t.Fatalf("a later Wait: %v, %v", got, err)
	}
}

// WaitBatch refuses the id of another family rather than read it as a
// batch's.
func TestWaitBatchRefusesOtherFamilies(t *testing.T) {
	d := mustNew(t)
	defer d.Close()
	for _, id := range []string{"models/veo/operations/op1", "operations/op1", "files/x", ""} {
		if _, err := WaitBatch(context.Background(), d, nil, id); !errors.Is(err, ErrInvalidID) {
			t.Errorf("WaitBatch(%q) = %v, want ErrInvalidID", id, err)
		}
	}
}
