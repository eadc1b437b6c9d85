// Package storetest checks an implementation of dispatch.Store against the
// contract of that interface, so that the in-memory default, the Redis
// store and a store of your own are held to the same rules.
//
// Run it from a test of your store:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, opts storetest.Options) dispatch.Store {
//			return mystore.New(mystore.Config{Now: opts.Now, Retention: opts.Retention})
//		})
//	}
//
// A store shared by several replicas runs RunShared instead, which also
// spreads every check over several handles on one backend and tests
// Subscribe.
//
// The suite covers supersession (Save keeps only an event that supersedes
// both the event held and the event last consumed, as dispatch.Supersedes
// orders them), consumption (of concurrent Consume calls with one event, at
// most one reports true), tracking, expiry and concurrent use. It never
// sleeps to age entries: each store it makes reads a clock the suite moves
// forward, and must read no other clock to decide what has expired.
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/genaihook/genaihook/dispatch"
	"github.com/genaihook/genaihook/verify"
	"github.com/genaihook/genaihook/webhook"
)

// Options configure a store the suite makes. A store must honour each
// field; the suite chooses them so that no check waits on a real clock.
type Options struct {
	// Now is the clock the store must read, and the only one, to decide
	// whether an entry has expired. The suite starts it at a fixed instant
	// and moves it forward, by up to a few days, to age entries; it is
	// safe for concurrent use.
	Now func() time.Time
	// Retention is how long the store must keep an event that was neither
	// replaced nor consumed: Load returns it up to Retention after the
	// Save that kept it, and nil from a minute later on. The suite sets an
	// hour, well under the 72 hours marks are kept.
	Retention time.Duration
	// MaxEvents is the bound a store that limits the events it holds may
	// set to this many (the in-memory default does). The suite saves four
	// times as many events to check that tracked jobs and consumed events
	// survive such traffic. A store with no such bound ignores it.
	MaxEvents int
}

// Factory returns a new, empty store configured by opts. The suite calls
// it once per check; clean up with t.Cleanup.
type Factory func(t *testing.T, opts Options) dispatch.Store

// ReplicaFactory returns n stores (n >= 2) on one new, empty backend, each
// opened as a separate replica would open it (its own connections),
// all configured by opts. The suite calls it once per check; clean up with
// t.Cleanup.
type ReplicaFactory func(t *testing.T, opts Options, n int) []dispatch.Store

// Run tests a store used by one process: every check of the suite, each
// on a new store from newStore, as subtests of t. Subscribe is only
// checked to return a cancel that can be called.
func Run(t *testing.T, newStore Factory) {
	t.Helper()
	run(t, func(t *testing.T, opts Options, n int) []dispatch.Store {
		s := newStore(t, opts)
		out := make([]dispatch.Store, n)
		for i := range out {
			out[i] = s
		}
		return out
	}, false)
}

// RunShared tests a store shared by several replicas: every check of Run,
// with its calls spread over three replicas of one backend (a Save on one
// and a Load on another, concurrent Consume calls on all), and the checks
// of Subscribe: an event saved through one replica wakes the others with
// its key and an equal event, and no wake comes after cancel returned.
func RunShared(t *testing.T, newReplicas ReplicaFactory) {
	t.Helper()
	run(t, func(t *testing.T, opts Options, n int) []dispatch.Store {
		rs := newReplicas(t, opts, n)
		if len(rs) != n {
			t.Fatalf("storetest: the factory returned %d replicas, want %d", len(rs), n)
		}
		return rs
	}, true)
}

// replicas is what every check gets: n handles on one new backend.
type replicas func(t *testing.T, opts Options, n int) []dispatch.Store

// Constants of the suite.
const (
	retention = time.Hour
	maxEvents = 64
	nReplicas = 3
	// markRetention is how long the Store contract keeps tracked jobs
	// and consumed events at least.
	markRetention = 72 * time.Hour
)

// start is where every clock of the suite starts: a fixed instant, so
// that failures reproduce.
var start = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// clock is a manual clock safe for concurrent use.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// env is one check's store (as n replicas) and clock.
type env struct {
	t   *testing.T
	ctx context.Context
	clk *clock
	rs  []dispatch.Store
	op  int // counts calls, to spread them over the replicas
}

func newEnv(t *testing.T, mk replicas) *env {
	t.Helper()
	clk := &clock{now: start}
	rs := mk(t, Options{Now: clk.Now, Retention: retention, MaxEvents: maxEvents}, nReplicas)
	return &env{t: t, ctx: t.Context(), clk: clk, rs: rs}
}

// next returns the replica for the next call, in turn.
func (e *env) next() dispatch.Store {
	s := e.rs[e.op%len(e.rs)]
	e.op++
	return s
}

func (e *env) save(key string, ev *webhook.Event) bool {
	e.t.Helper()
	ok, err := e.next().Save(e.ctx, key, ev)
	if err != nil {
		e.t.Fatalf("Save(%q, %s): %v", key, describe(ev), err)
	}
	return ok
}

func (e *env) load(key string) *webhook.Event {
	e.t.Helper()
	ev, err := e.next().Load(e.ctx, key)
	if err != nil {
		e.t.Fatalf("Load(%q): %v", key, err)
	}
	return ev
}

func (e *env) consume(key string, ev *webhook.Event) bool {
	e.t.Helper()
	ok, err := e.next().Consume(e.ctx, key, ev)
	if err != nil {
		e.t.Fatalf("Consume(%q, %s): %v", key, describe(ev), err)
	}
	return ok
}

func (e *env) track(key string) {
	e.t.Helper()
	if err := e.next().Track(e.ctx, key); err != nil {
		e.t.Fatalf("Track(%q): %v", key, err)
	}
}

func (e *env) tracked(key string) bool {
	e.t.Helper()
	ok, err := e.next().Tracked(e.ctx, key)
	if err != nil {
		e.t.Fatalf("Tracked(%q): %v", key, err)
	}
	return ok
}

// wantLoad fails the check unless key holds an event equal to want (nil
// for none).
func (e *env) wantLoad(key string, want *webhook.Event) {
	e.t.Helper()
	got := e.load(key)
	if diff := diffEvents(want, got); diff != "" {
		e.t.Errorf("Load(%q) after %s: (-want +got)\n%s", key, e.t.Name(), diff)
	}
}

// check is one check of the suite.
type check struct {
	name string
	fn   func(*testing.T, replicas)
}

func run(t *testing.T, mk replicas, shared bool) {
	t.Helper()
	checks := []check{
		{"RoundTrip", testRoundTrip},
		{"Keys", testKeys},
		{"Supersession", testSupersession},
		{"SupersessionModel", testModel},
		{"Consumption", testConsumption},
		{"ConsumeKeepsNewerEvent", testConsumeKeepsNewer},
		{"Tracking", testTracking},
		{"Expiry", testExpiry},
		{"MarksOutliveEvents", testMarksOutliveEvents},
		{"ConcurrentConsume", testConcurrentConsume},
		{"ConcurrentSave", testConcurrentSave},
		{"ConcurrentMixed", testConcurrentMixed},
	}
	if shared {
		checks = append(checks, check{"Subscribe", testSubscribe})
	} else {
		checks = append(checks, check{"SubscribeCancel", testSubscribeCancel})
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) { c.fn(t, mk) })
	}
}

// event returns an event as the webhook handler makes it, for the job
// id, with every field set that a static delivery sets.
func event(typ webhook.EventType, id, webhookID string, at time.Time) *webhook.Event {
	body := fmt.Sprintf(`{"type":%q, "version":"v1","timestamp":%q,"data":{"id":%q}}`,
		typ, at.Format(time.RFC3339Nano), id)
	return &webhook.Event{
		WebhookID: webhookID,
		Type:      typ,
		Version:   "v1",
		Timestamp: at,
		Data:      webhook.Data{ID: id},
		Raw:       json.RawMessage(body),
		Auth: verify.Result{
			Scheme:    verify.SchemeHMAC,
			WebhookID: webhookID,
			Timestamp: at.Add(time.Second),
			KeyID:     "sha256:0123456789abcdef",
		},
	}
}

// richEvent returns an event with every field set, as a dynamic delivery
// authenticated by a JWT makes it, with JSON a store could be tempted to
// reformat.
func richEvent(at time.Time) *webhook.Event {
	raw := "{ \"type\": \"video.generated\",\n\t\"version\":\"v2\", \"timestamp\":\"" +
		at.Format(time.RFC3339Nano) + "\", \"data\": {\"id\":\"models/veo/operations/op1\", " +
		"\"error_code\": 3, \"note\": \"<&> \\u00e9\"}, \"user_metadata\": {\"k\": [1, 2.5, \"x\", null, true, {\"n\": {}}]}}  "
	return &webhook.Event{
		WebhookID: "msg_2f1e\u00e9<&>",
		Type:      webhook.VideoGenerated,
		Version:   "v2",
		Timestamp: at.In(time.FixedZone("", 2*3600)).Add(123456789 * time.Nanosecond),
		Data: webhook.Data{
			ID:            "models/veo/operations/op1",
			OutputFileURI: "gs://bucket/out.mp4",
			FileName:      "files/abc",
			VideoURI:      "https://example.com/v.mp4?a=1&b=<2>",
			ErrorCode:     "3",
			ErrorMessage:  "line1\nline2 \u2028 \"quoted\"",
		},
		UserMetadata: json.RawMessage(`{"k": [1, 2.5, "x", null, true, {"n": {}}], "big": 1e21, "empty": {}}`),
		Raw:          json.RawMessage(raw),
		Auth: verify.Result{
			Scheme:      verify.SchemeJWT,
			WebhookID:   "jwt:abc",
			Timestamp:   at.Add(-time.Minute),
			SecretIndex: -1,
			KeyID:       "kid-1",
			Claims: &verify.Claims{
				Issuer:    "https://accounts.google.com",
				Subject:   "sub",
				Audience:  []string{"a", "b"},
				ExpiresAt: at.Add(time.Hour),
				IssuedAt:  at.Add(-time.Minute),
				Raw:       map[string]any{"aud": []any{"a", "b"}, "exp": 1.7e9, "x": "y"},
			},
		},
		Polled: true,
	}
}

// describe names ev in failure messages.
func describe(ev *webhook.Event) string {
	if ev == nil {
		return "<nil>"
	}
	return fmt.Sprintf("{%s %s id=%q at=%s}", ev.Type, ev.Data.ID, ev.WebhookID,
		ev.Timestamp.Sub(start))
}

// diffEvents compares two events field by field, but for a field named
// Job (a job the dispatcher read back through the API, which a store need
// not keep).
func diffEvents(want, got *webhook.Event) string {
	if want == nil || got == nil {
		if want == got {
			return ""
		}
		return fmt.Sprintf("-%s\n+%s", describe(want), describe(got))
	}
	return cmp.Diff(withoutJob(want), withoutJob(got))
}

func withoutJob(ev *webhook.Event) webhook.Event {
	c := *ev
	if f := reflect.ValueOf(&c).Elem().FieldByName("Job"); f.IsValid() && f.CanSet() {
		f.SetZero()
	}
	return c
}

func testRoundTrip(t *testing.T, mk replicas) {
	e := newEnv(t, mk)
	e.wantLoad("b/never-saved", nil)
	for i, ev := range []*webhook.Event{
		richEvent(start),
		event(webhook.BatchSucceeded, "batches/b1", "msg_1", start),
		{Type: "some.future_type", Timestamp: start}, // nothing else set
	} {
		key := fmt.Sprintf("k/%d", i)
		if !e.save(key, ev) {
			t.Fatalf("Save(%q, %s) on an empty key = false, want true", key, describe(ev))
		}
		e.wantLoad(key, ev)
	}
}

func testKeys(t *testing.T, mk replicas) {
	e := newEnv(t, mk)
	keys := []string{
		"b/abc123", "b/abc1234", "B/abc123", "i/v1_x", "v/models/veo/operations/op",
		"{b/abc}", "}b{", "b/{x}", "{", "}", "%7B", "b/é", "b/a b", "b/\x00z",
		strings.Repeat("x", 300),
	}
	for i, k := range keys {
		if !e.save(k, event(webhook.BatchSucceeded, k, fmt.Sprint("msg_", i), start)) {
			t.Fatalf("Save(%q) on an empty key = false", k)
		}
	}
	for i, k := range keys {
		ev := e.load(k)
		if ev == nil || ev.WebhookID != fmt.Sprint("msg_", i) {
			t.Errorf("Load(%q) = %s, want the event saved under it (msg_%d)", k, describe(ev), i)
		}
	}
	// Marks are per key too.
	e.track(keys[5])
	e.consume(keys[6], event(webhook.BatchSucceeded, keys[6], "msg_6", start))
	for i, k := range keys {
		if got, want := e.tracked(k), i == 5; got != want {
			t.Errorf("Tracked(%q) = %v, want %v", k, got, want)
		}
		if got, want := e.load(k) == nil, i == 6; got != want {
			t.Errorf("Load(%q) == nil is %v, want %v", k, got, want)
		}
	}
}

func testSupersession(t *testing.T, mk replicas) {
	at := start
	ra := func(id string, d time.Duration) *webhook.Event {
		return event(webhook.InteractionRequiresAction, "i/1", id, at.Add(d))
	}
	done := func(id string, d time.Duration) *webhook.Event {
		return event(webhook.InteractionCompleted, "i/1", id, at.Add(d))
	}
	unknown := func(id string, d time.Duration) *webhook.Event {
		return event("interaction.something_new", "i/1", id, at.Add(d))
	}
	tests := []struct {
		name      string
		held, new *webhook.Event
		want      bool
	}{
		{"newer end over older end", done("a", 0), done("b", time.Second), true},
		{"older end under newer end", done("b", time.Second), done("a", 0), false},
		{"end a nanosecond newer", done("a", 0), done("b", time.Nanosecond), true},
		{"end a nanosecond older", done("b", time.Nanosecond), done("a", 0), false},
		{"redelivery of the end", done("a", 0), done("a", 0), false},
		{"end over a later pause", ra("a", time.Hour), done("b", 0), true},
		{"pause under an earlier end", done("a", 0), ra("b", time.Hour), false},
		{"newer pause over a pause", ra("a", 0), ra("b", time.Second), true},
		{"redelivery of a pause", ra("a", 0), ra("a", 0), false},
		{"second pause with the same stamp", ra("a", 0), ra("b", 0), true},
		{"pause without webhook id, same stamp", ra("", 0), ra("", 0), false},
		{"end over a pause of the same stamp", ra("a", 0), done("b", 0), true},
		{"unknown over a pause of the same stamp", ra("a", 0), unknown("b", 0), true},
		{"newer unknown over an end", done("a", 0), unknown("b", time.Second), true},
		{"same-stamp unknown under an end", done("a", 0), unknown("b", 0), false},
	}
	e := newEnv(t, mk)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := dispatch.Supersedes(tt.new, tt.held); got != tt.want {
				t.Fatalf("dispatch.Supersedes(%s, %s) = %v, want %v: the suite's table is out of date",
					describe(tt.new), describe(tt.held), got, tt.want)
			}
			e.t = t
			// Against the event held.
			key := fmt.Sprint("i/held", i)
			if !e.save(key, tt.held) {
				t.Fatalf("Save(%q, %s) on an empty key = false", key, describe(tt.held))
			}
			if got := e.save(key, tt.new); got != tt.want {
				t.Errorf("Save(%s) over held %s = %v, want %v", describe(tt.new), describe(tt.held), got, tt.want)
			}
			if tt.want {
				e.wantLoad(key, tt.new)
			} else {
				e.wantLoad(key, tt.held)
			}
			// Against the event consumed.
			key = fmt.Sprint("i/consumed", i)
			if !e.consume(key, tt.held) {
				t.Fatalf("Consume(%q, %s) on an empty key = false", key, describe(tt.held))
			}
			if got := e.save(key, tt.new); got != tt.want {
				t.Errorf("Save(%s) after consumed %s = %v, want %v", describe(tt.new), describe(tt.held), got, tt.want)
			}
			if got := e.consume(key, tt.new); got != tt.want {
				t.Errorf("Consume(%s) after consumed %s = %v, want %v", describe(tt.new), describe(tt.held), got, tt.want)
			}
		})
	}
}

// testModel offers random sequences of events and pauses under a few keys,
// with duplicates and reorderings, and compares every answer of the store
// with the contract applied to what it was offered.
func testModel(t *testing.T, mk replicas) {
	e := newEnv(t, mk)
	types := []webhook.EventType{
		webhook.InteractionRequiresAction, webhook.InteractionRequiresAction,
		webhook.InteractionCompleted, webhook.InteractionFailed, "interaction.future",
	}
	ids := []string{"", "msg_a", "msg_b", "msg_c"}
	stamps := []time.Duration{0, time.Nanosecond, time.Second, time.Second + time.Millisecond, 2 * time.Second}
	type model struct{ held, consumed *webhook.Event }
	rng := rand.New(rand.NewPCG(1, 2))
	const keys, steps = 6, 400
	ms := make([]model, keys)
	var offered []*webhook.Event
	for step := range steps {
		k := rng.IntN(keys)
		key := fmt.Sprint("i/model", k)
		m := &ms[k]
		var ev *webhook.Event
		if len(offered) > 0 && rng.IntN(4) == 0 {
			// A redelivery: an equal copy of an event offered before.
			c := *offered[rng.IntN(len(offered))]
			ev = &c
		} else {
			ev = event(types[rng.IntN(len(types))], "i/x", ids[rng.IntN(len(ids))],
				start.Add(stamps[rng.IntN(len(stamps))]))
			offered = append(offered, ev)
		}
		if rng.IntN(3) == 0 {
			want := m.consumed == nil || dispatch.Supersedes(ev, m.consumed)
			if want {
				m.consumed = ev
			}
			if m.held != nil && !dispatch.Supersedes(m.held, m.consumed) {
				m.held = nil
			}
			if got := e.consume(key, ev); got != want {
				t.Fatalf("step %d: Consume(%q, %s) = %v, want %v (consumed before: %s)",
					step, key, describe(ev), got, want, describe(m.consumed))
			}
		} else {
			want := dispatch.Supersedes(ev, m.held) &&
				(m.consumed == nil || dispatch.Supersedes(ev, m.consumed))
			if got := e.save(key, ev); got != want {
				t.Fatalf("step %d: Save(%q, %s) = %v, want %v (held: %s, consumed: %s)",
					step, key, describe(ev), got, want, describe(m.held), describe(m.consumed))
			}
			if want {
				m.held = ev
			}
		}
		if got := e.load(key); diffEvents(m.held, got) != "" {
			t.Fatalf("step %d: Load(%q) = %s, want %s", step, key, describe(got), describe(m.held))
		}
	}
}

func testConsumption(t *testing.T, mk replicas) {
	e := newEnv(t, mk)
	const key = "i/pause"
	p1 := event(webhook.InteractionRequiresAction, "i/1", "msg_1", start)
	if !e.save(key, p1) {
		t.Fatal("Save of a first pause = false")
	}
	if !e.consume(key, p1) {
		t.Fatal("first Consume of a pause = false, want true")
	}
	if e.consume(key, p1) {
		t.Error("second Consume of the same pause = true, want false")
	}
	e.wantLoad(key, nil)
	if e.save(key, p1) {
		t.Error("Save of a consumed pause's redelivery = true, want false")
	}
	older := event(webhook.InteractionRequiresAction, "i/1", "msg_0", start.Add(-time.Second))
	if e.save(key, older) {
		t.Error("Save of a pause older than the consumed one = true, want false")
	}
	e.wantLoad(key, nil)
	p2 := event(webhook.InteractionRequiresAction, "i/1", "msg_2", start.Add(time.Second))
	if !e.save(key, p2) {
		t.Fatal("Save of the next pause = false, want true")
	}
	e.wantLoad(key, p2)
	if !e.consume(key, p2) {
		t.Error("Consume of the next pause = false, want true")
	}
	end := event(webhook.InteractionCompleted, "i/1", "msg_3", start.Add(time.Second))
	if !e.save(key, end) {
		t.Fatal("Save of the end after a consumed pause = false, want true")
	}
	// Consuming an older pause again changes nothing and keeps the end.
	if e.consume(key, p1) {
		t.Error("Consume of an old pause after a newer one was consumed = true, want false")
	}
	e.wantLoad(key, end)
	// A consumed end is gone too, and its redelivery refused.
	if !e.consume(key, end) {
		t.Error("Consume of the end = false, want true")
	}
	e.wantLoad(key, nil)
	if e.save(key, end) {
		t.Error("Save of a consumed end's redelivery = true, want false")
	}
	// Consume needs no saved event.
	if !e.consume("i/never-saved", p1) {
		t.Error("Consume under a key that never held an event = false, want true")
	}
}

func testConsumeKeepsNewer(t *testing.T, mk replicas) {
	e := newEnv(t, mk)
	const key = "i/k"
	p1 := event(webhook.InteractionRequiresAction, "i/1", "msg_1", start)
	p2 := event(webhook.InteractionRequiresAction, "i/1", "msg_2", start.Add(time.Second))
	e.save(key, p1)
	e.save(key, p2)
	if !e.consume(key, p1) {
		t.Fatal("Consume of an older, replaced pause = false, want true (it was never consumed)")
	}
	e.wantLoad(key, p2)
}

func testTracking(t *testing.T, mk replicas) {
	e := newEnv(t, mk)
	if e.tracked("b/1") {
		t.Fatal("Tracked of a key never tracked = true")
	}
	e.track("b/1")
	e.track("b/1")
	if !e.tracked("b/1") {
		t.Fatal("Tracked after Track = false")
	}
	if e.tracked("b/2") {
		t.Error("Tracked of another key = true")
	}
	// Neither an event nor a pause under the key untracks it.
	e.save("b/1", event(webhook.BatchSucceeded, "b/1", "msg_1", start))
	e.consume("b/1", event(webhook.BatchSucceeded, "b/1", "msg_1", start))
	if !e.tracked("b/1") {
		t.Error("Tracked after Save and Consume under the key = false")
	}
	e.clk.Advance(markRetention - time.Minute)
	if !e.tracked("b/1") {
		t.Errorf("Tracked %v after Track = false, want true for at least %v", markRetention-time.Minute, markRetention)
	}
	// Each Track renews the 72 hours.
	e.track("b/3")
	e.clk.Advance(markRetention - time.Hour)
	e.track("b/3")
	e.clk.Advance(markRetention - time.Hour)
	if !e.tracked("b/3") {
		t.Errorf("Tracked %v after the last Track = false, want true", markRetention-time.Hour)
	}
}

func testExpiry(t *testing.T, mk replicas) {
	e := newEnv(t, mk)
	old := event(webhook.BatchSucceeded, "b/1", "msg_1", start)
	ev := event(webhook.BatchSucceeded, "b/1", "msg_2", start.Add(time.Second))
	e.save("b/1", ev)
	e.clk.Advance(retention - time.Second)
	e.wantLoad("b/1", ev)
	if e.save("b/1", old) {
		t.Error("Save of an older event while a newer one is held = true")
	}
	e.clk.Advance(time.Second + time.Minute)
	e.wantLoad("b/1", nil)
	// An expired event is no longer held: it refuses nothing.
	if !e.save("b/1", old) {
		t.Error("Save of an older event after the newer one expired = false, want true")
	}
	e.wantLoad("b/1", old)
	// A replacing Save renews the retention.
	e.clk.Advance(retention / 2)
	e.save("b/1", ev)
	e.clk.Advance(retention - time.Second)
	e.wantLoad("b/1", ev)
}

func testMarksOutliveEvents(t *testing.T, mk replicas) {
	e := newEnv(t, mk)
	pause := event(webhook.InteractionRequiresAction, "i/1", "msg_p", start)
	e.track("b/tracked")
	e.save("i/consumed", pause)
	e.consume("i/consumed", pause)
	// Traffic under other keys, beyond any bound on events.
	for i := range 4 * maxEvents {
		k := fmt.Sprint("b/traffic", i)
		e.save(k, event(webhook.BatchSucceeded, k, fmt.Sprint("msg_t", i), e.clk.Now()))
		e.clk.Advance(time.Minute)
	}
	e.clk.Advance(markRetention - time.Duration(4*maxEvents+1)*time.Minute)
	if !e.tracked("b/tracked") {
		t.Error("a tracked job was forgotten before 72 hours, after traffic under other keys")
	}
	if e.save("i/consumed", pause) {
		t.Error("a consumed pause was forgotten before 72 hours: its redelivery was saved")
	}
	if e.consume("i/consumed", pause) {
		t.Error("a consumed pause was forgotten before 72 hours: it was consumed again")
	}
}

// workers is how many goroutines race in the concurrency checks.
const workers = 8

func testConcurrentConsume(t *testing.T, mk replicas) {
	e := newEnv(t, mk)
	for k := range 20 {
		key := fmt.Sprint("i/race", k)
		pause := event(webhook.InteractionRequiresAction, "i/x", "msg_r", start)
		if k%2 == 0 {
			e.save(key, pause)
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				c := *pause // each replica decoded its own copy
				ok, err := e.rs[w%len(e.rs)].Consume(e.ctx, key, &c)
				if err != nil {
					t.Errorf("Consume: %v", err)
				}
				if ok {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Errorf("%d concurrent Consume calls of one pause under %q: %d reported true, want exactly 1", workers, key, n)
		}
		e.wantLoad(key, nil)
	}
}

func testConcurrentSave(t *testing.T, mk replicas) {
	e := newEnv(t, mk)
	for k := range 20 {
		key := fmt.Sprint("b/race", k)
		evs := make([]*webhook.Event, workers)
		for w := range evs {
			evs[w] = event(webhook.BatchSucceeded, "b/x", fmt.Sprint("msg_", w), start.Add(time.Duration(w)*time.Second))
		}
		oks := make([]bool, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				ok, err := e.rs[w%len(e.rs)].Save(e.ctx, key, evs[(w+k)%workers])
				if err != nil {
					t.Errorf("Save: %v", err)
				}
				oks[(w+k)%workers] = ok
			})
		}
		wg.Wait()
		newest := evs[workers-1]
		if !oks[workers-1] {
			t.Errorf("of concurrent Saves under %q, the newest event's reported false", key)
		}
		e.wantLoad(key, newest)
		// A duplicate offered by every replica at once is refused by all.
		var dups atomic.Int32
		for w := range workers {
			wg.Go(func() {
				c := *newest
				if ok, _ := e.rs[w%len(e.rs)].Save(e.ctx, key, &c); ok {
					dups.Add(1)
				}
			})
		}
		wg.Wait()
		if n := dups.Load(); n != 0 {
			t.Errorf("%d concurrent redeliveries of the held event under %q were saved, want none", n, key)
		}
	}
}

// testConcurrentMixed runs every method at once under many keys (for the
// race detector) and checks what must hold whatever the interleaving: an
// end saved is never lost to a pause consumed, one pause is consumed once,
// a tracked job stays tracked.
func testConcurrentMixed(t *testing.T, mk replicas) {
	e := newEnv(t, mk)
	const keys = 32
	pause := func(k int) *webhook.Event {
		return event(webhook.InteractionRequiresAction, "i/x", fmt.Sprint("msg_p", k), start)
	}
	end := func(k int) *webhook.Event {
		return event(webhook.InteractionCompleted, "i/x", fmt.Sprint("msg_e", k), start.Add(time.Second))
	}
	var wg sync.WaitGroup
	consumed := make([]atomic.Int32, keys)
	for k := range keys {
		key := fmt.Sprint("i/mixed", k)
		s := func(i int) dispatch.Store { return e.rs[(k+i)%len(e.rs)] }
		check := func(err error) {
			if err != nil {
				t.Errorf("%s: %v", key, err)
			}
		}
		wg.Go(func() { _, err := s(0).Save(e.ctx, key, pause(k)); check(err) })
		wg.Go(func() { _, err := s(1).Save(e.ctx, key, end(k)); check(err) })
		for i := range 2 {
			wg.Go(func() {
				ok, err := s(i).Consume(e.ctx, key, pause(k))
				check(err)
				if ok {
					consumed[k].Add(1)
				}
			})
		}
		wg.Go(func() { check(s(2).Track(e.ctx, key)) })
		wg.Go(func() { _, err := s(0).Load(e.ctx, key); check(err) })
		wg.Go(func() { _, err := s(1).Tracked(e.ctx, key); check(err) })
	}
	wg.Wait()
	for k := range keys {
		key := fmt.Sprint("i/mixed", k)
		if n := consumed[k].Load(); n != 1 {
			t.Errorf("%s: the pause was consumed %d times, want once", key, n)
		}
		e.wantLoad(key, end(k))
		if !e.tracked(key) {
			t.Errorf("%s: not tracked after Track", key)
		}
	}
}

func testSubscribeCancel(t *testing.T, mk replicas) {
	e := newEnv(t, mk)
	cancel := e.rs[0].Subscribe(func(string, *webhook.Event) {})
	if cancel == nil {
		t.Fatal("Subscribe returned a nil cancel")
	}
	e.save("b/1", event(webhook.BatchSucceeded, "b/1", "msg_1", start))
	cancel()
}

// wakeTimeout bounds the wait for a wake: a real backend delivers within
// milliseconds, so only a lost wake reaches it.
const wakeTimeout = 10 * time.Second

func testSubscribe(t *testing.T, mk replicas) {
	e := newEnv(t, mk)
	type wake struct {
		key string
		ev  *webhook.Event
	}
	var cancelled [nReplicas]atomic.Bool
	chans := make([]chan wake, len(e.rs))
	cancels := make([]func(), len(e.rs))
	for i, s := range e.rs {
		chans[i] = make(chan wake, 1024)
		cancels[i] = s.Subscribe(func(key string, ev *webhook.Event) {
			if cancelled[i].Load() {
				t.Errorf("replica %d: wake(%q, %s) after its cancel returned", i, key, describe(ev))
				return
			}
			if key == "" && ev == nil {
				return // a reconnection: the Dispatcher reads the store again
			}
			select {
			case chans[i] <- wake{key, ev}:
			default:
				t.Errorf("replica %d: more wakes than the check expects", i)
			}
		})
	}
	t.Cleanup(func() {
		for _, c := range cancels {
			c()
		}
	})
	// await waits for replica i to be woken for key with want, ignoring
	// other wakes.
	await := func(i int, key string, want *webhook.Event) {
		t.Helper()
		timeout := time.NewTimer(wakeTimeout)
		defer timeout.Stop()
		for {
			select {
			case w := <-chans[i]:
				if w.key != key {
					continue
				}
				if diff := diffEvents(want, w.ev); diff != "" {
					t.Errorf("replica %d woken for %q with another event: (-want +got)\n%s", i, key, diff)
				}
				return
			case <-timeout.C:
				t.Fatalf("replica %d not woken within %v for %q saved by replica 0", i, wakeTimeout, key)
			}
		}
	}
	// A subscription may take a moment to start: keep saving new events
	// until replica 1 hears one, then expect every later one promptly.
	ready := time.NewTimer(wakeTimeout)
	defer ready.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
warmup:
	for i := 0; ; i++ {
		key := fmt.Sprint("b/warmup", i)
		if _, err := e.rs[0].Save(e.ctx, key, event(webhook.BatchSucceeded, key, "msg_w", start)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-chans[1]:
			break warmup
		case <-ready.C:
			t.Fatalf("no wake within %v of saves on another replica: Subscribe does not work", wakeTimeout)
		case <-tick.C:
		}
	}
	ev := richEvent(start)
	if ok, err := e.rs[0].Save(e.ctx, "v/rich", ev); err != nil || !ok {
		t.Fatalf("Save = %v, %v", ok, err)
	}
	await(1, "v/rich", ev)
	await(2, "v/rich", ev)
	// Cancel replica 2: it must hear nothing more, while replica 1 does.
	cancels[2]()
	cancelled[2].Store(true)
	cancels[2] = func() {}
	for i := range 5 {
		key := fmt.Sprint("b/after", i)
		ev := event(webhook.BatchSucceeded, key, "msg_a", start)
		if ok, err := e.rs[0].Save(e.ctx, key, ev); err != nil || !ok {
			t.Fatalf("Save = %v, %v", ok, err)
		}
		await(1, key, ev)
	}
}
