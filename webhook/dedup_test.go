package webhook

import (
	"context"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// process runs one delivery of id through d and reports whether it was new.
func process(t *testing.T, d Deduplicator, id string, ok bool) bool {
	t.Helper()
	release, dup, err := d.Begin(context.Background(), id)
	if err != nil {
		t.Fatalf("Begin(%q): %v", id, err)
	}
	if dup {
		if release != nil {
			t.Fatalf("Begin(%q): dup with a release", id)
		}
		return false
	}
	release(ok)
	return true
}

func TestMemoryDeduplicatorWindow(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	d := NewMemoryDeduplicator(MemoryConfig{Window: time.Hour, Now: clock.Now})
	if !process(t, d, "a", true) {
		t.Fatal("first delivery reported as duplicate")
	}
	clock.Advance(59 * time.Minute)
	if process(t, d, "a", true) {
		t.Fatal("duplicate within the window processed again")
	}
	clock.Advance(time.Minute)
	if !process(t, d, "a", true) {
		t.Fatal("delivery after the window still a duplicate")
	}
	clock.Advance(30 * time.Minute)
	if process(t, d, "a", true) {
		t.Fatal("re-processed id forgotten early")
	}
	if d.Len() != 1 {
		t.Errorf("Len = %d, want 1", d.Len())
	}
	clock.Advance(2 * time.Hour)
	process(t, d, "b", true) // arrivals drop expired ids
	if d.Len() != 1 {
		t.Errorf("Len after expiry = %d, want 1", d.Len())
	}
}

// TestMemoryDeduplicatorLongestWindow: a Window whose end overflows the
// clock's range remembers an id for ever, rather than not at all.
func TestMemoryDeduplicatorLongestWindow(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	d := NewMemoryDeduplicator(MemoryConfig{Window: math.MaxInt64, Now: clock.Now})
	process(t, d, "a", true)
	clock.Advance(100 * 24 * time.Hour)
	if process(t, d, "a", true) {
		t.Fatal("an id processed with the longest window was processed again")
	}
}

func TestMemoryDeduplicatorDefaultWindowCoversRetries(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	d := NewMemoryDeduplicator(MemoryConfig{Now: clock.Now})
	process(t, d, "a", true)
	clock.Advance(24*time.Hour + 30*time.Minute)
	if process(t, d, "a", true) {
		t.Fatal("a retry 24.5 h later was processed again")
	}
}

func TestMemoryDeduplicatorBound(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	d := NewMemoryDeduplicator(MemoryConfig{MaxEntries: 3, Now: clock.Now})
	for i := range 5 {
		process(t, d, fmt.Sprint(i), true)
		clock.Advance(time.Second)
	}
	if d.Len() != 3 {
		t.Fatalf("Len = %d, want 3", d.Len())
	}
	for i, wantNew := range []bool{false, false, false} { // ids 2, 3, 4 kept
		if process(t, d, fmt.Sprint(i+2), true) != wantNew {
			t.Errorf("id %d: new = %v", i+2, !wantNew)
		}
	}
	if !process(t, d, "0", true) { // evicted, so processed again
		t.Error("evicted id 0 still remembered")
	}
	if d.Len() != 3 {
		t.Errorf("Len = %d, want 3", d.Len())
	}
}

func TestMemoryDeduplicatorQueueStaysBounded(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	const max = 100
	d := NewMemoryDeduplicator(MemoryConfig{MaxEntries: max, Window: time.Minute, Now: clock.Now})
	for i := range 100_000 {
		process(t, d, fmt.Sprint(i%(3*max)), true) // ids recur after eviction
		if i%7 == 0 {
			clock.Advance(time.Second)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n > max || d.seen.n > max {
		t.Errorf("live ring %d, seen %d; want <= %d", d.n, d.seen.n, max)
	}
	if len(d.ring) > max {
		t.Errorf("ring of %d entries grew past the bound", len(d.ring))
	}
}

func TestMemoryDeduplicatorFailureForgotten(t *testing.T) {
	d := NewMemoryDeduplicator(MemoryConfig{})
	if !process(t, d, "a", false) {
		t.Fatal("first attempt a duplicate")
	}
	if !process(t, d, "a", true) {
		t.Fatal("retry after a failure reported as duplicate")
	}
	if process(t, d, "a", true) {
		t.Fatal("retry after a success processed again")
	}
}

func TestMemoryDeduplicatorReleaseTwice(t *testing.T) {
	d := NewMemoryDeduplicator(MemoryConfig{})
	release, _, _ := d.Begin(context.Background(), "a")
	release(false)
	release(true) // ignored
	if !process(t, d, "a", true) {
		t.Fatal("a second release call took effect")
	}
}

// TestMemoryDeduplicatorStaleRelease checks that a release called again
// after its id was taken by another caller does not end that caller's hold.
func TestMemoryDeduplicatorStaleRelease(t *testing.T) {
	d := NewMemoryDeduplicator(MemoryConfig{})
	first, _, _ := d.Begin(context.Background(), "a")
	first(false)
	second, dup, err := d.Begin(context.Background(), "a")
	if err != nil || dup {
		t.Fatalf("Begin after a failure = %v, %v", dup, err)
	}
	first(true) // stale: ignored
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, dup, err := d.Begin(ctx, "a"); err != context.Canceled || dup {
		t.Fatalf("Begin while the second caller holds a = %v, %v; want it to wait (context.Canceled)", dup, err)
	}
	second(true)
	if process(t, d, "a", true) {
		t.Fatal("a processed again after the second caller succeeded")
	}
}

// TestMemoryDeduplicatorRingWraps checks the order of expiry and eviction
// once the ring has wrapped around, with ids that expire and recur.
func TestMemoryDeduplicatorRingWraps(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	const max = 70 // not a power of two: the ring grows to 64, then 70
	d := NewMemoryDeduplicator(MemoryConfig{MaxEntries: max, Window: 100 * time.Second, Now: clock.Now})
	for i := range 1000 {
		if !process(t, d, fmt.Sprint(i), true) {
			t.Fatalf("new id %d reported as duplicate", i)
		}
		clock.Advance(time.Second)
		// The newest max ids within the window are remembered; older ones
		// were evicted.
		for _, j := range []int{i - max, i - max + 1, i - 1, i} {
			if j < 0 {
				continue
			}
			want := j > i-max
			if got := seen(t, d, fmt.Sprint(j)); got != want {
				t.Fatalf("after id %d: id %d remembered = %v, want %v", i, j, got, want)
			}
		}
	}
	clock.Advance(100 * time.Second)
	if seen(t, d, "999") {
		t.Error("id 999 remembered past its window")
	}
}

// seen reports whether d answers id as a duplicate, without processing it.
func seen(t *testing.T, d *MemoryDeduplicator, id string) bool {
	t.Helper()
	release, dup, err := d.Begin(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !dup {
		release(false)
	}
	return dup
}

func TestMemoryDeduplicatorConcurrentCopies(t *testing.T) {
	for _, holderOK := range []bool{true, false} {
		t.Run(fmt.Sprintf("holder succeeds %v", holderOK), func(t *testing.T) {
			d := NewMemoryDeduplicator(MemoryConfig{})
			release, dup, err := d.Begin(context.Background(), "a")
			if err != nil || dup {
				t.Fatal(dup, err)
			}
			type result struct {
				release func(bool)
				dup     bool
				err     error
			}
			done := make(chan result)
			go func() {
				r, dup, err := d.Begin(context.Background(), "a")
				done <- result{r, dup, err}
			}()
			release(holderOK)
			got := <-done
			if got.err != nil {
				t.Fatal(got.err)
			}
			if got.dup != holderOK || (got.release != nil) == holderOK {
				t.Errorf("second copy: dup %v, release %v; holder succeeded %v", got.dup, got.release != nil, holderOK)
			}
			if got.release != nil {
				got.release(true)
			}
		})
	}
}

func TestMemoryDeduplicatorWaitCancelled(t *testing.T) {
	d := NewMemoryDeduplicator(MemoryConfig{})
	release, _, _ := d.Begin(context.Background(), "a")
	defer release(true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := d.Begin(ctx, "a"); err != context.Canceled {
		t.Errorf("Begin with a cancelled ctx while held = %v, want context.Canceled", err)
	}
	// A free id needs no waiting, so a cancelled ctx does not matter.
	if r, dup, err := d.Begin(ctx, "b"); err != nil || dup {
		t.Errorf("Begin(b) = %v, %v", dup, err)
	} else {
		r(true)
	}
}

// BenchmarkMemoryDeduplicatorNewAtBound is one new id per iteration into
// a full deduplicator, on one goroutine: the Handler's cost for a new
// delivery, where the oldest id makes room.
func BenchmarkMemoryDeduplicatorNewAtBound(b *testing.B) {
	ids := make([]string, 1<<16)
	for i := range ids {
		ids[i] = fmt.Sprintf("msg_%d", i)
	}
	d := NewMemoryDeduplicator(MemoryConfig{MaxEntries: 10_000})
	ctx := context.Background()
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		release, dup, _ := d.Begin(ctx, ids[i%len(ids)])
		if dup {
			b.Fatal("duplicate")
		}
		release(true)
		i++
	}
}

func BenchmarkMemoryDeduplicator(b *testing.B) {
	b.ReportAllocs()
	ids := make([]string, 1<<16)
	for i := range ids {
		ids[i] = fmt.Sprintf("msg_%d", i)
	}
	d := NewMemoryDeduplicator(MemoryConfig{MaxEntries: 10_000})
	ctx := context.Background()
	var next atomic.Uint64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := ids[next.Add(1)%uint64(len(ids))]
			release, dup, _ := d.Begin(ctx, id)
			if !dup {
				release(true)
			}
		}
	})
}
