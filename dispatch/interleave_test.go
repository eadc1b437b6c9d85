package dispatch

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/genaihook/genaihook/webhook"
)

// TestInterleavings runs 10,000 small random schedules of Deliver, Wait,
// Watch and Stop on one job: the event before, during and after the
// registrations, duplicated, with several waiters. Once a Deliver and a
// Watch have both returned, the Future must have resolved: a lost wakeup
// fails at once, without waiting.
func TestInterleavings(t *testing.T) {
	const rounds = 10000
	r := rand.New(rand.NewPCG(20260501, 5))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // failure guard
	defer cancel()
	d := mustNew(t)
	defer d.Close()
	forms := func(n int) []string {
		return []string{fmt.Sprintf("batches/j%d", n), fmt.Sprintf("j%d", n)}
	}
	for n := range rounds {
		id := forms(n)[0] // a wait takes the id as genai returned it

		evID := forms(n)[r.IntN(2)]
		nDeliver := 1 + r.IntN(3)
		nBefore := r.IntN(nDeliver + 1) // deliveries made before anyone waits
		nWatch, nWait := r.IntN(3), r.IntN(3)
		if nWatch+nWait == 0 {
			nWatch = 1
		}
		stopper := r.IntN(4) == 0
		yields := r.IntN(3)

		ev := event(webhook.BatchSucceeded, evID, t0)
		for range nBefore {
			if err := d.Deliver(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		futures := make([]*Future, nWatch)
		waitErrs := make(chan error, nWait)
		for range nDeliver - nBefore {
			wg.Go(func() {
				for range yields {
					runtime.Gosched()
				}
				if err := d.Deliver(ctx, ev); err != nil {
					t.Error(err)
				}
			})
		}
		for i := range nWatch {
			wg.Go(func() { futures[i] = d.Watch(context.Background(), id) })
		}
		for range nWait {
			wg.Go(func() {
				got, err := d.Wait(ctx, id)
				if err == nil && got != ev {
					err = fmt.Errorf("Wait returned %v", got)
				}
				waitErrs <- err
			})
		}
		if stopper {
			wg.Go(func() {
				f := d.Watch(context.Background(), id)
				runtime.Gosched()
				if !d.stop(f, context.Canceled) {
					if got, err := f.Result(); err != nil || got != ev {
						t.Errorf("round %d: stopper resolved with %v, %v", n, got, err)
					}
				}
			})
		}
		wg.Wait()
		close(waitErrs)
		for err := range waitErrs {
			if err != nil {
				t.Fatalf("round %d: Wait: %v", n, err)
			}
		}
		for i, f := range futures {
			if got, err := peek(f); err != nil || got != ev {
				t.Fatalf("round %d (wait %q, event %q, %d before of %d): future %d: %v, %v",
					n, id, evID, nBefore, nDeliver, i, got, err)
			}
		}
	}
	assertIdle(t, d)
	if s := d.stats(); s.pending != 0 {
		t.Errorf("Pending = %d", s.pending)
	}
}

// yieldingStore is the memory store with a scheduling point before every
// call, so that the calls of concurrent waits interleave as a networked
// store's would.
type yieldingStore struct{ *memoryStore }

func (s yieldingStore) Load(ctx context.Context, key string) (*webhook.Event, error) {
	runtime.Gosched()
	return s.memoryStore.Load(ctx, key)
}

func (s yieldingStore) Consume(ctx context.Context, key string, ev *webhook.Event) (bool, error) {
	runtime.Gosched()
	return s.memoryStore.Consume(ctx, key, ev)
}

// TestStoredPauseGoesToOneWait starts two waits after an
// interaction.requires_action was stored: exactly one of them may get it
// (two handlers acting on one function call would be a bug), and the other
// goes on to the next event.
func TestStoredPauseGoesToOneWait(t *testing.T) {
	for _, tt := range []struct {
		name   string
		store  func() Store
		rounds int
	}{
		{"memory store", nil, 5000},
		{"store whose calls interleave", func() Store { return yieldingStore{newMemoryStore(time.Now, time.Hour, 100_000)} }, 2000},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var opts []Option
			if tt.store != nil {
				opts = append(opts, WithStore(tt.store()))
			}
			d := mustNew(t, opts...)
			defer d.Close()
			ctx := context.Background()
			for n := range tt.rounds {
				id := fmt.Sprintf("v1_p%d", n)
				pause := event(webhook.InteractionRequiresAction, id, t0)
				pause.WebhookID = "msg_" + id
				if err := d.Deliver(ctx, pause); err != nil {
					t.Fatal(err)
				}
				var a, b *Future
				var wg sync.WaitGroup
				wg.Go(func() { a = d.Watch(context.Background(), id) })
				wg.Go(func() { b = d.Watch(context.Background(), id) })
				wg.Wait()
				got := 0
				for _, f := range []*Future{a, b} {
					if ev, err := peek(f); err == nil && ev == pause {
						got++
					}
				}
				if got != 1 {
					t.Fatalf("round %d: the stored pause went to %d waits, want 1", n, got)
				}
				done := event(webhook.InteractionCompleted, id, t0.Add(time.Second))
				d.Deliver(ctx, done)
				for _, f := range []*Future{a, b} {
					if ev, err := f.Result(); err != nil || (ev != pause && ev != done) {
						t.Fatalf("round %d: a wait ended with %v, %v", n, ev, err)
					}
				}
			}
			assertIdle(t, d)
		})
	}
}

// apiTruth is a scripted API for TestConfirmedInterleavings: each job's
// state, and how many of its next reads fail.
type apiTruth struct {
	mu    sync.Mutex
	state map[string]webhook.EventType // "" while running
	fails map[string]int
	reads int
}

func (a *apiTruth) set(id string, st webhook.EventType, fails int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.state[id], a.fails[id] = st, fails
}

// Poll answers as the API would: the pause stamped t0, the completion a
// second later, both read with no webhook id.
func (a *apiTruth) Poll(_ context.Context, id string) (*webhook.Event, error) {
	runtime.Gosched()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.reads++
	if a.fails[id] > 0 {
		a.fails[id]--
		return nil, errors.New("503 Service Unavailable")
	}
	switch st := a.state[id]; st {
	case webhook.InteractionRequiresAction:
		return event(st, id, t0), nil
	case webhook.InteractionCompleted:
		return event(st, id, t0.Add(time.Second)), nil
	}
	return nil, nil
}

// TestConfirmedInterleavings runs 10,000 random schedules of an
// interaction's life with a genai client's confirmation, on a store whose
// calls interleave or the in-memory one: a requires_action then a
// completion, each delivered zero to three times (duplicates, and a
// delivery lost), with up to three of the confirming reads failing, and
// waits and Futures registering before, during and after. Exactly one
// wait gets the pause, however often the API is read again while it
// stands; every other wait gets the completion; nothing resolves from an
// event alone.
func TestConfirmedInterleavings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rounds = 10000
		r := rand.New(rand.NewPCG(20261130, 9))
		api := &apiTruth{state: map[string]webhook.EventType{}, fails: map[string]int{}}
		ds := []*Dispatcher{
			mustNew(t, WithLogger(nil), withPoller(api)),
			mustNew(t, WithLogger(nil), withPoller(api), WithStore(yieldingStore{newMemoryStore(time.Now, time.Hour, 100_000)})),
		}
		for _, d := range ds {
			defer d.Close()
		}
		ctx := context.Background()
		for n := range rounds {
			d := ds[r.IntN(len(ds))]
			id := fmt.Sprintf("v1_r%d", n)
			nWaiters := 1 + r.IntN(4)
			deliver := func(typ webhook.EventType, copies int) {
				for range copies {
					ev := event(typ, id, time.Now())
					ev.WebhookID = "msg_" + string(typ) + id
					if err := d.Deliver(ctx, ev); err != nil {
						t.Error(err)
					}
				}
			}
			results := make(chan *webhook.Event, nWaiters)
			fail := func(ev *webhook.Event, err error) {
				t.Helper()
				if err != nil {
					t.Errorf("round %d: %v", n, err)
				}
				results <- ev
			}

			// The pause: the API shows it, its event comes (or not) while
			// the waits register.
			api.set(id, webhook.InteractionRequiresAction, r.IntN(4))
			var wg sync.WaitGroup
			copies := r.IntN(4)
			wg.Go(func() { deliver(webhook.InteractionRequiresAction, copies) })
			for range nWaiters {
				if r.IntN(2) == 0 {
					wg.Go(func() { fail(d.Wait(ctx, id)) })
				} else {
					f := d.Watch(ctx, id)
					wg.Go(func() { fail(f.Result()) })
				}
			}
			first := <-results // the fake clock runs until a wait resolves
			if first == nil || first.Type != webhook.InteractionRequiresAction || !first.Polled {
				t.Fatalf("round %d: first result %+v, want the pause read from the API", n, first)
			}
			time.Sleep(time.Hour) // the API read again and again: the same pause
			if len(results) != 0 {
				ev := <-results
				t.Fatalf("round %d: a second wait got %v while only the first pause stood", n, ev.Type)
			}

			// The app acted: the interaction completes.
			api.set(id, webhook.InteractionCompleted, r.IntN(4))
			deliver(webhook.InteractionCompleted, r.IntN(4))
			for range nWaiters - 1 {
				if ev := <-results; ev == nil || ev.Type != webhook.InteractionCompleted || !ev.Polled {
					t.Fatalf("round %d: result %+v, want the completion read from the API", n, ev)
				}
			}
			wg.Wait()
		}
		for _, d := range ds {
			assertIdle(t, d)
		}
		t.Logf("%d reads for %d rounds", api.reads, rounds)
	})
}
