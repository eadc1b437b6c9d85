package dispatch

import (
	"context"
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/genaihook/genaihook/webhook"
)

// BenchmarkPendingFutures parks 100,000 Futures, reports the heap they
// hold (bytes/future, excluding the ids, which the caller owns), then
// resolves every one by Deliver.
func BenchmarkPendingFutures(b *testing.B) {
	const n = 100_000
	ids := make([]string, n)
	events := make([]*webhook.Event, n)
	for i := range ids {
		ids[i] = "batches/job" + strconv.Itoa(i)
		events[i] = &webhook.Event{Type: webhook.BatchSucceeded, Data: webhook.Data{ID: ids[i]}}
	}
	futures := make([]*Future, n)
	ctx := context.Background()
	b.ReportAllocs()
	var perFuture float64
	for b.Loop() {
		clear(futures)
		d := mustNew(b, withRetention(time.Hour, n))
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i, id := range ids {
			futures[i] = d.Watch(context.Background(), id)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perFuture = float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / n
		for _, ev := range events {
			if err := d.Deliver(ctx, ev); err != nil {
				b.Fatal(err)
			}
		}
		for _, f := range futures {
			select {
			case <-f.Done():
			default:
				b.Fatal("future not resolved")
			}
		}
		d.Close()
	}
	b.ReportMetric(perFuture, "B/pending-future")
}

// BenchmarkDeliverLatency measures from the start of Deliver to the return
// of a Wait already parked in another goroutine.
func BenchmarkDeliverLatency(b *testing.B) {
	d := mustNew(b)
	defer d.Close()
	ctx := context.Background()
	lat := make([]time.Duration, 0, 1<<16)
	ready := make(chan struct{})
	woke := make(chan time.Time)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		id := "v1_int" + strconv.Itoa(i)
		i++
		ev := &webhook.Event{Type: webhook.InteractionCompleted, Data: webhook.Data{ID: id}}
		go func() {
			f := d.Watch(context.Background(), id)
			ready <- struct{}{}
			<-f.Done()
			woke <- time.Now()
		}()
		<-ready
		// Let the waiter park on Done.
		runtime.Gosched()
		start := time.Now()
		if err := d.Deliver(ctx, ev); err != nil {
			b.Fatal(err)
		}
		end := <-woke
		if len(lat) < cap(lat) {
			lat = append(lat, end.Sub(start))
		}
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		return float64(lat[int(p*float64(len(lat)-1))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(pct(0.50), "p50-µs")
	b.ReportMetric(pct(0.99), "p99-µs")
}

// BenchmarkDeliver is the hot path alone, without a genai client: an event
// for a job nobody waits for. "duplicate" delivers the same 1,024 events
// again and again (Gemini's retries); "new" delivers a new job's event each
// time to a store kept full (10,000 events), so that each evicts the
// oldest: the steady state of a busy receiver.
func BenchmarkDeliver(b *testing.B) {
	b.Run("duplicate", func(b *testing.B) {
		d := mustNew(b)
		defer d.Close()
		ctx := context.Background()
		evs := make([]*webhook.Event, 1024)
		for i := range evs {
			evs[i] = &webhook.Event{Type: webhook.BatchSucceeded, Data: webhook.Data{ID: "batches/b" + strconv.Itoa(i)}}
		}
		for _, ev := range evs {
			d.Deliver(ctx, ev)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			d.Deliver(ctx, evs[i&1023])
			i++
		}
	})
	b.Run("new", func(b *testing.B) {
		const stored = 10_000
		d := mustNew(b, withRetention(time.Hour, stored))
		defer d.Close()
		ctx := context.Background()
		evs := make([]*webhook.Event, 1<<16)
		for i := range evs {
			evs[i] = &webhook.Event{Type: webhook.BatchSucceeded, Data: webhook.Data{ID: "batches/b" + strconv.Itoa(i)}}
		}
		for _, ev := range evs[:stored] {
			d.Deliver(ctx, ev)
		}
		b.ReportAllocs()
		i := stored
		for b.Loop() {
			ev := evs[i&(len(evs)-1)]
			i++
			if err := d.Deliver(ctx, ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}
