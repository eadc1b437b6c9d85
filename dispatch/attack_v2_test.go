package dispatch

// Hostile inputs and schedules against dispatch v2 (issue 9): ids, the
// binding by API read, confirmation reads, Futures and their contexts, and
// stores that fail or block. A test that fails here demonstrates a bug; its
// comment says what is expected and where that is promised.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/genai"

	"github.com/genaihook/genaihook/webhook"
)

// gatePoller is a poller that counts its reads and the reads in flight;
// with a gate, each read waits for one value from it (or its ctx) before
// answering.
type gatePoller struct {
	gate    chan struct{}
	entered chan string // when set, each read sends its id here first
	answer  func(n int, id string) (*webhook.Event, error)

	mu                           sync.Mutex
	calls, inflight, maxInflight int
	ids                          []string
}

func (p *gatePoller) Poll(ctx context.Context, id string) (*webhook.Event, error) {
	p.mu.Lock()
	p.calls++
	n := p.calls
	p.ids = append(p.ids, id)
	p.inflight++
	p.maxInflight = max(p.maxInflight, p.inflight)
	p.mu.Unlock()
	if p.entered != nil {
		p.entered <- id
	}
	defer func() {
		p.mu.Lock()
		p.inflight--
		p.mu.Unlock()
	}()
	if p.gate != nil {
		select {
		case <-p.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if p.answer == nil {
		return nil, nil
	}
	return p.answer(n, id)
}

func (p *gatePoller) stats() (calls, inflight, maxInflight int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls, p.inflight, p.maxInflight
}

// hostileStore is the in-memory store with hooks that replace any call.
type hostileStore struct {
	*memoryStore
	save    func(ctx context.Context, key string, ev *webhook.Event) (bool, error)
	consume func(ctx context.Context, key string, ev *webhook.Event) (bool, error)

	mu   sync.Mutex
	wake func(string, *webhook.Event)
}

func newHostileStore() *hostileStore {
	return &hostileStore{memoryStore: newMemoryStore(time.Now, time.Hour, 1000)}
}

func (s *hostileStore) Save(ctx context.Context, key string, ev *webhook.Event) (bool, error) {
	if s.save != nil {
		return s.save(ctx, key, ev)
	}
	return s.memoryStore.Save(ctx, key, ev)
}

func (s *hostileStore) Consume(ctx context.Context, key string, ev *webhook.Event) (bool, error) {
	if s.consume != nil {
		return s.consume(ctx, key, ev)
	}
	return s.memoryStore.Consume(ctx, key, ev)
}

func (s *hostileStore) Subscribe(wake func(string, *webhook.Event)) func() {
	s.mu.Lock()
	s.wake = wake
	s.mu.Unlock()
	return func() {}
}

func pauseAt(id string, ts time.Time, webhookID string) *webhook.Event {
	ev := event(webhook.InteractionRequiresAction, id, ts)
	ev.WebhookID = webhookID
	return ev
}

func notFoundErr(int, string) (*webhook.Event, error) {
	return nil, fmt.Errorf("reading: %w", ErrJobNotFound)
}

// ---------------------------------------------------------------- ids

// Wait refuses an id of no form genai returns. "batches/.." and
// "models/veo/operations/.." were accepted; genai's Batches.Get and
// GetVideosOperation then read GET /v1beta and GET /v1beta/models/veo (the
// URL is cleaned), which answer 200, so the wait polled a model forever.
//
// Wait refuses an id of no form genai returns (ErrInvalidID doc: "a bare
// interaction id, none with an empty segment"; Wait doc: "ErrInvalidID for
// an id of no form genai returns"; issue 9: "degenerate ids are refused").
// Dot segments are no server-assigned id, and an HTTP layer that cleans
// paths reads another resource for them. Error messages stay bounded for a
// huge id.
func TestAttackDegenerateIDs(t *testing.T) {
	d := mustNew(t, WithLogger(nil))
	defer d.Close()
	for _, id := range []string{
		"", "batches/", "batches//x", "/x", "x/", "batches/../x", "a b", "a\x00b",
		"models/veo/operations/", "operations//x", "interactions/x/y",
		"batches/..", "batches/.", "..", ".", "models/veo/operations/..",
	} {
		f := d.Watch(context.Background(), id)
		if _, err := peek(f); !errors.Is(err, ErrInvalidID) {
			t.Errorf("Watch(%q) = %v, want ErrInvalidID", id, err)
			d.stop(f, context.Canceled)
		}
	}
	huge := "batches/" + strings.Repeat("a", 1<<20) + "/"
	if _, err := d.Wait(context.Background(), huge); !errors.Is(err, ErrInvalidID) || len(err.Error()) > 1024 {
		t.Errorf("Wait(huge degenerate id) = %d-byte error, want a bounded ErrInvalidID", len(err.Error()))
	}
}

// A huge or odd (control characters, unicode) id is matched exactly, by its
// own events only, and never panics (package doc, Matching).
func TestAttackOddIDsMatchExactly(t *testing.T) {
	d := mustNew(t, WithLogger(nil))
	defer d.Close()
	ctx := context.Background()
	huge := strings.Repeat("z", 1<<20)
	for _, id := range []string{huge, "batches/" + huge, "v1_\n\r\t\x1b[31m", "batches/ünï¢ødé", "batches/abc.", "abc.."} {
		f := d.Watch(ctx, id)
		other := d.Watch(ctx, id+"x")
		typ := webhook.InteractionCompleted
		if strings.HasPrefix(id, "batches/") {
			typ = webhook.BatchSucceeded
		}
		if err := d.Deliver(ctx, event(typ, id, t0)); err != nil {
			t.Fatal(err)
		}
		if ev, err := peek(f); err != nil || ev.Data.ID != id {
			t.Errorf("Watch(%.20q) = %v, %v", id, ev, err)
		}
		if _, err := peek(other); err != errPending {
			t.Errorf("Watch(%.20q+x) resolved by the event of %.20q: %v", id, id, err)
		}
		d.stop(other, context.Canceled)
	}
	assertIdle(t, d)
}

// A video event with a bare id meets the waits on an interaction of that id
// and on the video operation, never a batch's (package doc, Matching: "an
// interaction's event never resolves a batch's wait", "A video event also
// meets the waits on an interaction of that id").
func TestAttackVideoBareIDFamilies(t *testing.T) {
	d := mustNew(t, WithLogger(nil))
	defer d.Close()
	ctx := context.Background()
	batch, inter, video := d.Watch(ctx, "batches/abc"), d.Watch(ctx, "abc"), d.Watch(ctx, "models/veo/operations/abc")
	ev := event(webhook.VideoGenerated, "abc", t0)
	ev.Data.VideoURI = "https://example.com/v.mp4"
	if err := d.Deliver(ctx, ev); err != nil {
		t.Fatal(err)
	}
	if _, err := peek(batch); err != errPending {
		t.Errorf("video event with bare id resolved the batch wait: %v", err)
	}
	for _, f := range []*Future{inter, video} {
		if _, err := peek(f); err != nil {
			t.Errorf("wait %q = %v, want resolved", f.id, err)
		}
	}
	// And the other way round: a batch event whose data.id is in
	// operation form meets no video or interaction wait.
	inter2, video2 := d.Watch(ctx, "op9"), d.Watch(ctx, "operations/op9")
	d.Deliver(ctx, event(webhook.BatchSucceeded, "models/veo/operations/op9", t0))
	d.Deliver(ctx, event(webhook.InteractionCompleted, "batches/op9", t0))
	if _, err := peek(video2); err != errPending {
		t.Errorf("batch/interaction event resolved a video wait: %v", err)
	}
	if _, err := peek(inter2); err != nil {
		t.Errorf("interaction event with data.id batches/op9 did not meet interaction wait op9: %v", err)
	}
}

// ---------------------------------------------------------------- binding

// A foreign job's delivery replayed costs one read within ten minutes,
// whatever id form it names, and one more after (Handler doc: "remembered
// as foreign for ten minutes, so that replaying its delivery costs one
// read").
func TestAttackBindingForeignReplayOneRead(t *testing.T) {
	clk := newFakeClock()
	p := &gatePoller{answer: notFoundErr}
	d := mustNew(t, WithLogger(nil), withPoller(p), withClock(clk.Now), withAfterFunc(clk.AfterFunc))
	defer d.Close()
	ctx := context.Background()
	for i := range 100 {
		id := "batches/foreign"
		if i%2 == 1 {
			id = "foreign" // the short form of the same batch
		}
		if err := d.bound(ctx, event(webhook.BatchSucceeded, id, t0)); !errors.Is(err, webhook.ErrNotBound) {
			t.Fatalf("replay %d: bound = %v, want ErrNotBound", i, err)
		}
	}
	if n, _, _ := p.stats(); n != 1 {
		t.Fatalf("100 replays cost %d reads, want 1", n)
	}
	clk.Advance(foreignTTL + time.Second)
	d.bound(ctx, event(webhook.BatchSucceeded, "batches/foreign", t0))
	if n, _, _ := p.stats(); n != 2 {
		t.Fatalf("replay after ten minutes: %d reads, want 2", n)
	}
}

// Concurrent replays of one foreign delivery share one read; distinct ones
// are read at most four at a time (package doc: "at most four reads in
// flight in all"; maxOwnedReads for the binding's), and each binding ends
// with its ctx.
func TestAttackBindingConcurrencyBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &gatePoller{gate: make(chan struct{}), answer: notFoundErr}
		d := mustNew(t, WithLogger(nil), withPoller(p))
		defer d.Close()
		var wg sync.WaitGroup
		errs := make(chan error, 200)
		for i := range 100 {
			wg.Go(func() { errs <- d.bound(t.Context(), event(webhook.BatchSucceeded, "batches/same", t0)) })
			wg.Go(func() {
				errs <- d.bound(t.Context(), event(webhook.InteractionCompleted, fmt.Sprintf("v1_foreign%d", i), t0))
			})
		}
		synctest.Wait()
		if _, inflight, _ := p.stats(); inflight > maxOwnedReads {
			t.Errorf("%d binding reads in flight, want at most %d", inflight, maxOwnedReads)
		}
		close(p.gate)
		wg.Wait()
		close(errs)
		for err := range errs {
			if !errors.Is(err, webhook.ErrNotBound) {
				t.Fatalf("bound = %v, want ErrNotBound", err)
			}
		}
		if n, _, max := p.stats(); n != 101 || max > maxOwnedReads {
			t.Errorf("%d reads (want 101: one for the replayed id), at most %d in flight", n, max)
		}
		d.owned.mu.Lock()
		if len(d.owned.inflight) != 0 {
			t.Errorf("%d in-flight binding reads left behind", len(d.owned.inflight))
		}
		d.owned.mu.Unlock()
	})
}

// Many distinct foreign ids leave the binding's memory bounded (maxOwned).
func TestAttackBindingMemoryBounded(t *testing.T) {
	p := &gatePoller{answer: notFoundErr}
	d := mustNew(t, WithLogger(nil), withPoller(p))
	defer d.Close()
	for i := range maxOwned + 2000 {
		d.bound(context.Background(), event(webhook.InteractionCompleted, fmt.Sprintf("v1_f%d", i), t0))
	}
	d.owned.mu.Lock()
	defer d.owned.mu.Unlock()
	if len(d.owned.answers) > maxOwned || len(d.owned.inflight) != 0 {
		t.Fatalf("binding remembers %d jobs (max %d), %d in flight", len(d.owned.answers), maxOwned, len(d.owned.inflight))
	}
}

// A read that fails for another reason than 404/403 leaves the binding
// undecided (503, not ErrNotBound), is not remembered, and a ctx that ends
// mid-read ends the binding at once, undecided (Handler doc: "a binding that
// cannot decide (the store or the read failed, or took too long) makes the
// handler answer 503").
func TestAttackBindingUndecided(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &gatePoller{answer: func(int, string) (*webhook.Event, error) { return nil, errors.New("500 boom") }}
		d := mustNew(t, WithLogger(nil), withPoller(p))
		defer d.Close()
		for range 2 {
			err := d.bound(t.Context(), event(webhook.BatchSucceeded, "batches/flaky", t0))
			if err == nil || errors.Is(err, webhook.ErrNotBound) {
				t.Fatalf("bound with a failing read = %v, want undecided", err)
			}
		}
		if n, _, _ := p.stats(); n != 2 {
			t.Fatalf("failed read remembered: %d reads for two deliveries", n)
		}
		p.gate = make(chan struct{}) // reads now hang until ctx ends
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- d.bound(ctx, event(webhook.BatchSucceeded, "batches/slow", t0)) }()
		synctest.Wait()
		cancel()
		synctest.Wait()
		select {
		case err := <-done:
			if err == nil || errors.Is(err, webhook.ErrNotBound) {
				t.Fatalf("bound cancelled mid-read = %v, want undecided", err)
			}
		default:
			t.Fatal("bound still blocked after its ctx ended")
		}
	})
}

// The same with the real genai client against an API that hangs: the read
// ends with the handler's ctx, undecided, and does not poison the next one.
func TestAttackBindingSlowAPI(t *testing.T) {
	arrived, release := make(chan string, 8), make(chan struct{})
	var mu sync.Mutex
	hang := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		h := hang
		mu.Unlock()
		arrived <- r.URL.Path
		if h {
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"error":{"code":404,"message":"not found","status":"NOT_FOUND"}}`)
	}))
	defer srv.Close()
	defer close(release)
	client, err := genai.NewClient(context.Background(), &genai.ClientConfig{
		Backend: genai.BackendGeminiAPI, APIKey: "k", HTTPOptions: genai.HTTPOptions{BaseURL: srv.URL},
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(client, testURL, WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.bound(ctx, event(webhook.BatchSucceeded, "batches/slow", t0)) }()
	<-arrived
	cancel()
	select {
	case err := <-done:
		if err == nil || errors.Is(err, webhook.ErrNotBound) {
			t.Fatalf("bound cancelled mid-read = %v, want undecided", err)
		}
	case <-time.After(10 * time.Second): // a failure guard, not a wait for success
		t.Fatal("bound ignored its ctx while the API hung")
	}
	mu.Lock()
	hang = false
	mu.Unlock()
	if err := d.bound(context.Background(), event(webhook.BatchSucceeded, "batches/slow", t0)); !errors.Is(err, webhook.ErrNotBound) {
		t.Fatalf("bound after the API answered 404 = %v, want ErrNotBound", err)
	}
}

// A video event naming only a short op id cannot be read (its model is
// missing): refused without a read. A huge data.id yields a bounded error.
func TestAttackBindingShortVideoAndHugeID(t *testing.T) {
	p := &gatePoller{answer: notFoundErr}
	d := mustNew(t, WithLogger(nil), withPoller(p))
	defer d.Close()
	for _, id := range []string{"operations/op1", "op1", "batches/op1"} {
		if err := d.bound(context.Background(), event(webhook.VideoGenerated, id, t0)); !errors.Is(err, webhook.ErrNotBound) {
			t.Errorf("bound(video %q) = %v, want ErrNotBound", id, err)
		}
	}
	if n, _, _ := p.stats(); n != 0 {
		t.Errorf("%d reads for unreadable video ids", n)
	}
	err := d.bound(context.Background(), event(webhook.InteractionCompleted, strings.Repeat("h", 1<<20), t0))
	if !errors.Is(err, webhook.ErrNotBound) || len(err.Error()) > 1024 {
		t.Errorf("bound(huge id): %d-byte error %v", len(err.Error()), errors.Is(err, webhook.ErrNotBound))
	}
}

// ---------------------------------------------------------------- confirmation

// A flood of distinct events for one awaited job keeps one read in flight;
// an event arriving during a read gets one more read at once, not lost
// (Deliver doc: "once per job however many events arrive for it
// meanwhile"; hintLocked: "an event arriving while the key is being read
// gets one more read after it").
func TestAttackEventFloodOneReadInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const id = "batches/flood"
		p := &gatePoller{gate: make(chan struct{}), answer: func(n int, id string) (*webhook.Event, error) {
			if n < 2 {
				return nil, nil // still running: the event was early
			}
			return event(webhook.BatchSucceeded, id, t0), nil
		}, entered: make(chan string, 10)}
		d := mustNew(t, WithLogger(nil), withPoller(p))
		defer d.Close()
		f := d.Watch(t.Context(), id)
		base := time.Now() // the bubble's clock: later stamps are clamped
		for i := range 200 {
			ev := event(webhook.BatchSucceeded, id, base.Add(-time.Duration(200-i)*time.Millisecond))
			ev.WebhookID = fmt.Sprint("msg_", i)
			d.Deliver(t.Context(), ev)
			if i == 0 {
				<-p.entered // the first event's read is in flight
			}
		}
		synctest.Wait()
		if n, inflight, _ := p.stats(); n != 1 || inflight != 1 {
			t.Fatalf("after 200 events: %d reads, %d in flight; want 1, 1", n, inflight)
		}
		p.gate <- struct{}{} // the first read finds the job running
		synctest.Wait()
		if n, _, _ := p.stats(); n != 2 {
			t.Fatalf("events during the read got %d reads in all, want 2 (one more, at once)", n)
		}
		p.gate <- struct{}{}
		synctest.Wait()
		if _, err := peek(f); err != nil {
			t.Fatalf("wait = %v, want resolved by the second read", err)
		}
		if _, _, max := p.stats(); max != 1 {
			t.Fatalf("%d reads of one job in flight at once", max)
		}
	})
}

// One read per job in flight holds across a re-wait: when every wait on a
// job stops during its read and a new wait then gets an event, the job must
// not be read twice at once (package doc: "one read per job in flight,
// however many events come meanwhile").
func TestAttackRewaitDuringReadTwoInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const id = "batches/rewait"
		p := &gatePoller{gate: make(chan struct{}), entered: make(chan string, 10)}
		d := mustNew(t, WithLogger(nil), withPoller(p))
		defer d.Close()
		ctx1, cancel1 := context.WithCancel(t.Context())
		d.Watch(ctx1, id)
		d.Deliver(t.Context(), event(webhook.BatchSucceeded, id, time.Now().Add(-time.Minute)))
		<-p.entered // read 1 in flight
		cancel1()
		synctest.Wait()
		d.Watch(t.Context(), id)
		ev := event(webhook.BatchSucceeded, id, time.Now().Add(-time.Second))
		ev.WebhookID = "msg_2"
		d.Deliver(t.Context(), ev)
		synctest.Wait()
		if _, _, max := p.stats(); max > 1 {
			t.Errorf("%d reads of %s in flight at once, want 1", max, id)
		}
	})
}

// A replayed stale pause after the API moved on resolves nothing, and the
// completion still resolves the next wait (package doc: "a forged, replayed
// or stale event costs at most two and resolves nothing").
func TestAttackStalePauseReplay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const id = "v1_stale"
		var mu sync.Mutex
		state := "pause"
		p := &gatePoller{answer: func(int, string) (*webhook.Event, error) {
			mu.Lock()
			defer mu.Unlock()
			switch state {
			case "pause":
				return pauseAt(id, t0, ""), nil
			case "done":
				return event(webhook.InteractionCompleted, id, t0.Add(time.Minute)), nil
			}
			return nil, nil
		}}
		d := mustNew(t, WithLogger(nil), withPoller(p))
		defer d.Close()
		p1 := pauseAt(id, t0, "msg_1")
		f1 := d.Watch(t.Context(), id)
		d.Deliver(t.Context(), p1)
		synctest.Wait()
		if ev, err := peek(f1); err != nil || ev.Type != webhook.InteractionRequiresAction {
			t.Fatalf("first wait = %v, %v", ev, err)
		}
		mu.Lock()
		state = "running"
		mu.Unlock()
		f2 := d.Watch(t.Context(), id)
		for range 10 {
			d.Deliver(t.Context(), p1)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if ev, err := peek(f2); err != errPending {
			t.Fatalf("replayed stale pause resolved the re-wait: %v, %v", ev, err)
		}
		mu.Lock()
		state = "done"
		mu.Unlock()
		d.Deliver(t.Context(), event(webhook.InteractionCompleted, id, t0.Add(time.Minute)))
		synctest.Wait()
		if ev, err := peek(f2); err != nil || ev.Type != webhook.InteractionCompleted {
			t.Fatalf("re-wait = %v, %v; want the completion", ev, err)
		}
	})
}

// A second pause of an interaction whose read reports the same update time
// as the first (Gemini stamps to the second: see Supersedes) is lost: the
// re-wait after acting on the first hangs, while the interaction waits for
// the answer to its new function call. Expected (Wait doc): "waiting again
// after acting on it returns the next event, never the same pause"; here
// the next event is a new, signed requires_action (new webhook-id) that the
// read confirms (status requires_action).
func TestAttackSameSecondSecondPauseLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const id = "v1_twocalls"
		T := time.Now().Truncate(time.Second)
		// The API's reads carry the pause's fingerprint (see
		// pauseFingerprint): the second pause has one more step and another
		// function call.
		var second atomic.Bool
		p := &gatePoller{answer: func(int, string) (*webhook.Event, error) {
			if second.Load() {
				return pauseAt(id, T, readPausePrefix+"3:call_1:call_2"), nil
			}
			return pauseAt(id, T, readPausePrefix+"1:call_1"), nil
		}}
		d := mustNew(t, WithLogger(nil), withPoller(p))
		defer d.Close()
		f1 := d.Watch(t.Context(), id)
		d.Deliver(t.Context(), pauseAt(id, T, "msg_1"))
		synctest.Wait()
		if _, err := peek(f1); err != nil {
			t.Fatalf("first pause: %v", err)
		}
		// The app answers the function call within the same second; the
		// interaction asks for another one.
		f2 := d.Watch(t.Context(), id)
		second.Store(true)
		d.Deliver(t.Context(), pauseAt(id, T, "msg_2"))
		time.Sleep(time.Hour)
		synctest.Wait()
		if _, err := peek(f2); err != nil {
			n, _, _ := p.stats()
			t.Fatalf("second pause (new webhook-id, confirmed requires_action by %d reads over an hour) never reached the re-wait: %v", n, err)
		}
	})
}

// A re-wait on an interaction that stays in the pause already returned (the
// app takes hours to answer, e.g. a human approval) is read on the backoff
// schedule, doubling up to 10 minutes (package doc: "first after 60 s,
// then after 30 s, doubling up to 10 minutes ... an hour of running costs
// about ten reads"). Each read of the stale pause re-registered the wait
// and restarted its schedule at the quiet period: one read a minute.
func TestAttackStalePauseReadsBackOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const id = "v1_slowhuman"
		p := &gatePoller{answer: func(int, string) (*webhook.Event, error) { return pauseAt(id, t0, ""), nil }}
		d := mustNew(t, WithLogger(nil), withPoller(p), withPollJitter(0))
		defer d.Close()
		d.Deliver(t.Context(), pauseAt(id, t0, "msg_1"))
		if _, err := d.Wait(t.Context(), id); err != nil {
			t.Fatal(err)
		}
		before, _, _ := p.stats()
		f := d.Watch(t.Context(), id)
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		n, _, _ := p.stats()
		if _, err := peek(f); err != errPending {
			t.Fatalf("re-wait got the stale pause: %v", err)
		}
		// 60 s, 30 s, 1, 2, 4, 8 min, then every 10: about 16 in two hours.
		if n-before > 20 {
			t.Fatalf("a re-wait on an unchanged pause made %d reads in two hours, want about 16 (backoff to 10 min)", n-before)
		}
	})
}

// ---------------------------------------------------------------- futures

// ctxChildren counts what a cancelCtx holds for its children, AfterFuncs
// included.
func ctxChildren(t *testing.T, ctx context.Context) int {
	v := reflect.ValueOf(ctx)
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		v = v.Elem()
	}
	c := v.FieldByName("children")
	if !c.IsValid() {
		t.Fatalf("no children field in %T", ctx)
	}
	return c.Len()
}

// Futures that resolve (by event, from the store, by poll, by Close) or
// whose ctx had already ended leave nothing registered on a long-lived
// cancellable ctx (Watch doc: "The Future releases what it holds ... when
// it resolves").
func TestAttackWatchReleasesAfterFunc(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &gatePoller{answer: func(_ int, id string) (*webhook.Event, error) {
			return event(webhook.BatchSucceeded, id, t0), nil
		}}
		polled := mustNew(t, WithLogger(nil), withPoller(p))
		plain := mustNew(t, WithLogger(nil))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		for i := range 500 {
			id := fmt.Sprint("batches/j", i)
			f := plain.Watch(ctx, id) // resolved by the event
			plain.Deliver(ctx, event(webhook.BatchSucceeded, id, t0))
			<-f.Done()
			<-plain.Watch(ctx, id).Done() // resolved from the store
			g := polled.Watch(ctx, id)    // resolved by the read an event asks for
			polled.Deliver(ctx, event(webhook.BatchSucceeded, id, t0))
			<-g.Done()
		}
		for i := range 500 {
			plain.Watch(ctx, fmt.Sprint("v1_pending", i))
		}
		plain.Close() // ends the pending ones
		polled.Close()
		if n := ctxChildren(t, ctx); n != 0 {
			t.Fatalf("%d AfterFuncs left on the caller's ctx after every Future resolved", n)
		}
		dead, kill := context.WithCancel(context.Background())
		kill()
		d := mustNew(t, WithLogger(nil))
		defer d.Close()
		if _, err := peek(d.Watch(dead, "batches/x")); !errors.Is(err, context.Canceled) {
			t.Fatalf("Watch(cancelled ctx) = %v", err)
		}
		assertIdle(t, d)
	})
}

// Close while a confirmation read is in flight and while Waits are blocked
// ends them all with ErrClosed, and Close returns once the read returned.
func TestAttackCloseDuringReadAndWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &gatePoller{gate: make(chan struct{})}
		d := mustNew(t, WithLogger(nil), withPoller(p))
		errs := make(chan error, 2)
		go func() { _, err := d.Wait(t.Context(), "batches/c"); errs <- err }()
		f := d.Watch(t.Context(), "v1_c")
		synctest.Wait()
		d.Deliver(t.Context(), event(webhook.BatchSucceeded, "batches/c", t0))
		synctest.Wait()
		d.Close()
		if err := <-errs; !errors.Is(err, ErrClosed) {
			t.Fatalf("Wait = %v", err)
		}
		if _, err := peek(f); !errors.Is(err, ErrClosed) {
			t.Fatalf("Watch = %v", err)
		}
		if _, inflight, _ := p.stats(); inflight != 0 {
			t.Fatalf("%d reads still in flight after Close", inflight)
		}
	})
}

// ---------------------------------------------------------------- stores

// Close returns once the polls in flight return (Close doc: "cancels the
// polls in flight and waits for them to return"). A poll that found a
// pause is stuck in a Store.Consume that honours its ctx, as a network
// store does: Close's cancel must reach it (it once got
// context.WithoutCancel(pollCtx), and Close hung as long as the store).
func TestAttackCloseHangsOnConsume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const id = "v1_hang"
		s := newHostileStore()
		release := make(chan struct{})
		s.consume = func(ctx context.Context, key string, ev *webhook.Event) (bool, error) {
			select {
			case <-ctx.Done():
				return false, ctx.Err()
			case <-release:
			}
			return s.memoryStore.Consume(ctx, key, ev)
		}
		p := &gatePoller{answer: func(int, string) (*webhook.Event, error) { return pauseAt(id, t0, ""), nil }}
		d := mustNew(t, WithLogger(nil), withPoller(p), WithStore(s))
		d.Watch(t.Context(), id)
		d.Deliver(t.Context(), pauseAt(id, t0, "msg_1"))
		synctest.Wait() // the read found the pause; Consume is blocked
		closed := make(chan struct{})
		go func() { d.Close(); close(closed) }()
		synctest.Wait()
		select {
		case <-closed:
		default:
			t.Error("Close blocked behind a Store.Consume its cancel cannot reach")
		}
		close(release)
		<-closed
	})
}

// Deliver honours ctx, the Handler's time budget (webhook doc: the budget
// "is enforced through ctx, which fn must honour"), also when a delivered
// pause for a pending wait is being consumed by a slow Store (it once got
// context.WithoutCancel(ctx) and held the delivery past its budget).
func TestAttackDeliverPauseIgnoresCtx(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const id = "v1_slowconsume"
		s := newHostileStore()
		release := make(chan struct{})
		s.consume = func(ctx context.Context, key string, ev *webhook.Event) (bool, error) {
			select {
			case <-ctx.Done():
				return false, ctx.Err()
			case <-release:
			}
			return s.memoryStore.Consume(ctx, key, ev)
		}
		d := mustNew(t, WithLogger(nil), WithStore(s))
		defer d.Close()
		d.Watch(t.Context(), id)
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- d.Deliver(ctx, pauseAt(id, t0, "msg_1")) }()
		time.Sleep(4 * time.Second)
		synctest.Wait()
		select {
		case <-done:
			close(release)
		default:
			t.Error("Deliver still running a second past its ctx's deadline, held by Store.Consume")
			close(release)
			<-done
		}
	})
}

// A pause goes to exactly one wait and is never lost (package doc,
// Outcomes: "it goes to exactly one wait"; issue 9: "a pause goes to exactly
// one wait and is never lost"). With a Store whose Consume fails, Deliver
// must answer an error (so that Gemini retries), and the retry, once the
// store is back, must hand the pause to the wait still pending; a later
// wait must not get it again.
func TestAttackFailingConsumePause(t *testing.T) {
	const id = "v1_double"
	s := newHostileStore()
	var mu sync.Mutex
	down := true
	s.consume = func(ctx context.Context, key string, ev *webhook.Event) (bool, error) {
		mu.Lock()
		dn := down
		mu.Unlock()
		if dn {
			return false, errors.New("store down")
		}
		return s.memoryStore.Consume(ctx, key, ev)
	}
	d := mustNew(t, WithLogger(nil), WithStore(s))
	defer d.Close()
	ctx := context.Background()
	f := d.Watch(ctx, id)
	pause := pauseAt(id, t0, "msg_1")
	err := d.Deliver(ctx, pause)
	if _, ferr := peek(f); ferr == nil && err == nil {
		t.Log("pause handed over although it could not be marked used")
	} else if err == nil {
		t.Errorf("Deliver = nil while the pause could be neither marked nor handed over: Gemini will not retry")
	}
	mu.Lock()
	down = false
	mu.Unlock()
	if _, ferr := peek(f); ferr != nil {
		d.Deliver(ctx, pause) // Gemini's retry of the same delivery
	}
	if ev, ferr := peek(f); ferr != nil {
		t.Fatalf("after the store came back and Gemini retried, the pending wait = %v, %v; want the pause", ev, ferr)
	}
	if ev, gerr := peek(d.Watch(ctx, id)); gerr != errPending {
		t.Fatalf("the re-wait after acting on the pause got %v, %v: the same pause twice", ev, gerr)
	}
}

// With a client an event is a hint that asks for a read (Deliver doc:
// "The read is made at once"); a hint needs no store. When Save fails the
// delivery is answered 5xx, and the pending wait's read is still made (it
// once was not: the wait sat until its quiet period or Gemini's retry).
func TestAttackSaveFailureDropsHint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const id = "batches/nosave"
		s := newHostileStore()
		s.save = func(context.Context, string, *webhook.Event) (bool, error) { return false, errors.New("store down") }
		p := &gatePoller{answer: func(int, string) (*webhook.Event, error) { return event(webhook.BatchSucceeded, id, t0), nil }}
		d := mustNew(t, WithLogger(nil), withPoller(p), WithStore(s))
		defer d.Close()
		f := d.Watch(t.Context(), id)
		if err := d.Deliver(t.Context(), event(webhook.BatchSucceeded, id, t0)); err == nil {
			t.Fatal("Deliver hid the store error")
		}
		synctest.Wait()
		if _, err := peek(f); err != nil {
			n, _, _ := p.stats()
			t.Fatalf("pending wait not confirmed after its event (%d reads): %v", n, err)
		}
	})
}

// Subscribe's wake("", nil) makes every pending wait read the store again
// (Store doc); wake(key, pause) from many goroutines at once hands the
// pause to exactly one wait.
func TestAttackStoreWake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newHostileStore()
		p := &gatePoller{answer: func(_ int, id string) (*webhook.Event, error) { return event(webhook.BatchSucceeded, id, t0), nil }}
		d := mustNew(t, WithLogger(nil), withPoller(p), WithStore(s))
		defer d.Close()
		f := d.Watch(t.Context(), "batches/remote")
		s.memoryStore.Save(t.Context(), "batches/remote", event(webhook.BatchSucceeded, "batches/remote", t0))
		s.wake("", nil)
		synctest.Wait()
		if _, err := peek(f); err != nil {
			t.Fatalf("wake(\"\", nil) did not re-check the pending wait: %v", err)
		}

		s2 := newHostileStore()
		d2 := mustNew(t, WithLogger(nil), WithStore(s2))
		defer d2.Close()
		const id = "v1_remotepause"
		var fs []*Future
		for range 5 {
			fs = append(fs, d2.Watch(t.Context(), id))
		}
		pause := pauseAt(id, t0, "msg_r")
		s2.memoryStore.Save(t.Context(), id, pause)
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() { s2.wake(id, pause) })
		}
		wg.Go(func() { s2.wake("", nil) })
		wg.Wait()
		synctest.Wait()
		got := 0
		for _, f := range fs {
			if _, err := peek(f); err == nil {
				got++
			}
		}
		if got != 1 {
			t.Fatalf("one pause woke %d waits, want 1", got)
		}
	})
}

// A Watch whose ctx is cancelled exactly while a pause resolves it either
// gets the pause or ctx's error; in the second case the pause is not lost
// (the next wait gets it), in the first the next wait does not get it again
// (package doc, Outcomes: "it goes to exactly one wait"). With and without
// confirmation reads.
func TestAttackCancelRacesPause(t *testing.T) {
	for _, withReads := range []bool{false, true} {
		t.Run(fmt.Sprint("reads=", withReads), func(t *testing.T) {
			var mu sync.Mutex
			pauses := make(map[string]*webhook.Event)
			opts := []Option{WithLogger(nil)}
			if withReads {
				opts = append(opts, withPoller(pollerFunc(func(_ context.Context, id string) (*webhook.Event, error) {
					mu.Lock()
					defer mu.Unlock()
					if p := pauses[id]; p != nil {
						return pauseAt(id, p.Timestamp, ""), nil
					}
					return nil, nil
				})))
			}
			d := mustNew(t, opts...)
			defer d.Close()
			for i := range 1000 {
				id := fmt.Sprint("v1_race", i)
				p := pauseAt(id, t0.Add(time.Duration(i)*time.Millisecond), fmt.Sprint("msg_", i))
				mu.Lock()
				pauses[id] = p
				mu.Unlock()
				ctx, cancel := context.WithCancel(context.Background())
				f := d.Watch(ctx, id)
				cancelled := make(chan struct{})
				go func() { cancel(); close(cancelled) }()
				d.Deliver(context.Background(), p)
				<-cancelled
				<-f.Done()
				_, ferr := f.Result()
				gctx, gcancel := context.WithCancel(context.Background())
				g := d.Watch(gctx, id)
				if withReads && ferr != nil {
					select { // the read the pause asks for is asynchronous
					case <-g.Done():
					case <-time.After(10 * time.Second): // a failure guard, not a wait for success
					}
				}
				_, gerr := peek(g)
				switch {
				case ferr != nil && gerr != nil:
					t.Fatalf("round %d: first wait cancelled (%v) and the pause lost: next wait %v", i, ferr, gerr)
				case ferr == nil && gerr == nil:
					t.Fatalf("round %d: one pause went to two waits", i)
				}
				gcancel()
			}
		})
	}
}
