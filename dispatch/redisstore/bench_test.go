package redisstore_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/genaihook/genaihook/dispatch/redisstore"
	"github.com/genaihook/genaihook/dispatch/redisstore/internal/redistest"
)

// warmUp delivers one job through from and waits for it on to, so that
// to's subscription is up before anything is timed.
func warmUp(b *testing.B, c *cluster, from, to *replica) {
	b.Helper()
	ctx, cancel := context.WithTimeout(b.Context(), 10*time.Second)
	defer cancel()
	for i := 0; ; i++ {
		id := fmt.Sprintf("batches/warmup-%d", i)
		f := to.d.Watch(ctx, id)
		if code := c.send(b, from, "msg_warmup"+fmt.Sprint(i), body(id, time.Now())); code != 200 {
			b.Fatalf("warm-up delivery answered %d", code)
		}
		select {
		case <-f.Done():
			return
		case <-time.After(100 * time.Millisecond): // the subscription may not be up yet
		case <-ctx.Done():
			b.Fatal("the waiting replica never heard of a delivery to another")
		}
	}
}

// BenchmarkDeliverToWake measures, on loopback, the time from a signed
// delivery reaching one replica's webhook Handler to the Wait pending on
// another replica resolving: verification, the webhook-id claim, the Save
// script and its publication, and the other replica's subscription and
// Dispatcher. ns/op also counts starting the wait (a Track and a Load)
// and the end of the delivery (releasing the webhook-id); p50-µs and
// p99-µs are of the delivery-to-wake time alone.
func BenchmarkDeliverToWake(b *testing.B) {
	srv := redistest.Start(b)
	c := newCluster(b, srv, 2, redisstore.Config{Prefix: redistest.Prefix(b)})
	from, to := c.replicas[0], c.replicas[1]
	warmUp(b, c, from, to)
	ctx := b.Context()
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		id := fmt.Sprintf("batches/bench-%d", i)
		f := to.d.Watch(ctx, id)
		woken := make(chan time.Time, 1)
		go func() { <-f.Done(); woken <- time.Now() }()
		start := time.Now()
		if code := c.send(b, from, fmt.Sprintf("msg_%d", i), body(id, start)); code != 200 {
			b.Fatalf("delivery answered %d", code)
		}
		lat = append(lat, (<-woken).Sub(start))
		if _, err := f.Result(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

// BenchmarkDeliveries measures deliveries per second through the webhook
// Handlers of one replica, then of three (round-robin), all on one Redis
// and in this one process: each delivery is verified, claimed, saved and
// published, and every other replica decodes and offers it.
func BenchmarkDeliveries(b *testing.B) {
	srv := redistest.Start(b)
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("replicas=%d", n), func(b *testing.B) {
			c := newCluster(b, srv, n, redisstore.Config{Prefix: redistest.Prefix(b)})
			if n > 1 {
				warmUp(b, c, c.replicas[0], c.replicas[1])
			}
			var next atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1)
					id := fmt.Sprintf("batches/bench-%d", i)
					if code := c.send(b, c.replicas[i%int64(n)], fmt.Sprintf("msg_%d", i), body(id, time.Now())); code != 200 {
						b.Errorf("delivery answered %d", code)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
		})
	}
}
