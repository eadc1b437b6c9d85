package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/genaihook/genaihook/dispatch/redisstore"
	"github.com/genaihook/genaihook/dispatch/redisstore/internal/redistest"
	"github.com/genaihook/genaihook/webhook"
)

// dedupPair returns two Deduplicators that share their ids: for Redis, two
// replicas with their own clients; for the reference, one
// MemoryDeduplicator twice.
type dedupPair func(t *testing.T) (a, b webhook.Deduplicator)

func dedupImpls(t *testing.T) map[string]dedupPair {
	srv := redistest.Start(t)
	return map[string]dedupPair{
		"memory": func(t *testing.T) (webhook.Deduplicator, webhook.Deduplicator) {
			d := webhook.NewMemoryDeduplicator(webhook.MemoryConfig{})
			return d, d
		},
		"redis": func(t *testing.T) (webhook.Deduplicator, webhook.Deduplicator) {
			prefix := redistest.Prefix(t)
			return newStore(t, srv.Client(t), redisstore.Config{Prefix: prefix}),
				newStore(t, srv.Client(t), redisstore.Config{Prefix: prefix})
		},
	}
}

func begin(t *testing.T, d webhook.Deduplicator, id string) (func(bool), bool) {
	t.Helper()
	rel, dup, err := d.Begin(t.Context(), id)
	if err != nil {
		t.Fatalf("Begin(%q): %v", id, err)
	}
	if (rel == nil) != dup {
		t.Fatalf("Begin(%q) = release %v, dup %v: release must be nil exactly when dup", id, rel != nil, dup)
	}
	return rel, dup
}

// TestDedupSemantics checks the Redis Deduplicator against the rules of
// webhook.Deduplicator, and the in-memory reference against the same
// checks, across two replicas.
func TestDedupSemantics(t *testing.T) {
	for name, pair := range dedupImpls(t) {
		t.Run(name, func(t *testing.T) {
			t.Run("processed only after release(true)", func(t *testing.T) {
				a, b := pair(t)
				rel, _ := begin(t, a, "msg_1")
				rel(true)
				if _, dup := begin(t, b, "msg_1"); !dup {
					t.Error("Begin after release(true) on another replica: not a duplicate")
				}
				if _, dup := begin(t, a, "msg_2"); dup {
					t.Error("Begin of a new id: a duplicate")
				}
			})
			t.Run("release(false) forgets", func(t *testing.T) {
				a, b := pair(t)
				rel, _ := begin(t, a, "msg_1")
				rel(false)
				rel, dup := begin(t, b, "msg_1")
				if dup {
					t.Fatal("Begin after release(false): a duplicate, want the id again")
				}
				rel(true)
			})
			t.Run("a concurrent copy waits", func(t *testing.T) {
				a, b := pair(t)
				rel, _ := begin(t, a, "msg_1")
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Millisecond)
				defer cancel()
				r2, dup, err := b.Begin(ctx, "msg_1")
				if !errors.Is(err, context.DeadlineExceeded) || r2 != nil || dup {
					t.Fatalf("Begin while another replica holds the id = %v, %v, %v; want it to wait until ctx ends", r2 != nil, dup, err)
				}
				for _, processed := range []bool{true, false} {
					id := fmt.Sprint("msg_", processed)
					rel, _ := begin(t, a, id)
					got := make(chan bool, 1)
					go func() {
						r, dup, err := b.Begin(context.Background(), id)
						if err != nil {
							t.Error(err)
						}
						if r != nil {
							r(true)
						}
						got <- dup
					}()
					rel(processed)
					if dup := <-got; dup != processed {
						t.Errorf("the holder released with %v: the waiting copy's dup = %v, want %v", processed, dup, processed)
					}
				}
				rel(true)
			})
			t.Run("one run among many copies", func(t *testing.T) {
				a, b := pair(t)
				var runs atomic.Int32
				var wg sync.WaitGroup
				for i := range 16 {
					d := a
					if i%2 == 1 {
						d = b
					}
					wg.Go(func() {
						rel, dup, err := d.Begin(context.Background(), "msg_1")
						if err != nil {
							t.Error(err)
							return
						}
						if !dup {
							runs.Add(1)
							rel(true)
						}
					})
				}
				wg.Wait()
				if n := runs.Load(); n != 1 {
					t.Errorf("16 concurrent copies ran the callback %d times, want once", n)
				}
			})
			t.Run("copies of a failing callback each retry", func(t *testing.T) {
				a, b := pair(t)
				var runs atomic.Int32
				var wg sync.WaitGroup
				for i := range 8 {
					d := a
					if i%2 == 1 {
						d = b
					}
					wg.Go(func() {
						rel, dup, err := d.Begin(context.Background(), "msg_1")
						if err != nil || dup {
							t.Errorf("Begin = %v, %v; want the id, since every holder failed", dup, err)
							return
						}
						runs.Add(1)
						rel(false)
					})
				}
				wg.Wait()
				if n := runs.Load(); n != 8 {
					t.Errorf("8 copies of a failing callback ran %d times, want 8", n)
				}
			})
		})
	}
}

// TestDedupLease checks that a webhook-id held by a replica that died
// mid-callback is taken over once its lease runs out.
func TestDedupLease(t *testing.T) {
	srv := redistest.Start(t)
	prefix := redistest.Prefix(t)
	cfg := redisstore.Config{Prefix: prefix, DedupLease: 20 * time.Millisecond}
	dead := newStore(t, srv.Client(t), cfg)
	live := newStore(t, srv.Client(t), cfg)
	if _, dup := begin(t, dead, "msg_1"); dup {
		t.Fatal("first Begin: a duplicate")
	}
	// The holder never releases. The copy waits out the lease, then runs.
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	rel, dup, err := live.Begin(ctx, "msg_1")
	if err != nil || dup {
		t.Fatalf("Begin after the holder's lease = %v, %v; want the id", dup, err)
	}
	rel(true)
	if _, dup := begin(t, dead, "msg_1"); !dup {
		t.Error("Begin after the taker's release(true): not a duplicate")
	}
}

// TestDedupWindow checks that a processed id is kept for the window, on
// Redis's clock.
func TestDedupWindow(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client(t)
	prefix := redistest.Prefix(t)
	s := newStore(t, c, redisstore.Config{Prefix: prefix, DedupWindow: 2 * time.Hour})
	rel, _ := begin(t, s, "msg_1")
	if ttl := c.PTTL(t.Context(), prefix+"{msg_1}:w").Val(); ttl <= 0 || ttl > redisstore.DefaultDedupLease {
		t.Errorf("a held id expires in %v, want within the lease %v", ttl, redisstore.DefaultDedupLease)
	}
	rel(true)
	if ttl := c.PTTL(t.Context(), prefix+"{msg_1}:w").Val(); ttl < 2*time.Hour-time.Minute || ttl > 2*time.Hour {
		t.Errorf("a processed id expires in %v, want the window, 2h", ttl)
	}
}
