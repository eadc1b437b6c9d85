package dispatch

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
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
			wg.Go(func() { futures[i] = d.Watch(id) })
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
				f := d.Watch(id)
				runtime.Gosched()
				if !f.Stop() {
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
			if got, err := f.Result(); err != nil || got != ev {
				t.Fatalf("round %d (wait %q, event %q, %d before of %d): future %d: %v, %v",
					n, id, evID, nBefore, nDeliver, i, got, err)
			}
		}
	}
	assertIdle(t, d)
	if s := d.Stats(); s.Pending != 0 {
		t.Errorf("Pending = %d", s.Pending)
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
				wg.Go(func() { a = d.Watch(id) })
				wg.Go(func() { b = d.Watch(id) })
				wg.Wait()
				got := 0
				for _, f := range []*Future{a, b} {
					if ev, err := f.Result(); err == nil && ev == pause {
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
