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
		id := forms(n)[r.IntN(2)]
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
