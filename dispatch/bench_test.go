package dispatch

import (
	"context"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/genaihook/genaihook/webhook"
)

// BenchmarkPendingFutures parks pending Futures (100,000, then
// 1,000,000), reports the heap they hold per pending wait once collected
// (B/pending-future: the Futures, the waiter table and the poll heap; not
// the ids, which the caller owns), then resolves every one by Deliver.
func BenchmarkPendingFutures(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run("pending="+strconv.Itoa(n), func(b *testing.B) { benchPendingFutures(b, n) })
	}
}

func benchPendingFutures(b *testing.B, n int) {
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
		// The largest of the rounds: the store of the round before, which a
		// stopped timer may keep reachable into this round's first GC and
		// not its second, can only make a round's figure low.
		perFuture = max(perFuture, float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(n))
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

// BenchmarkResolve measures the CPU time (user and system, of the whole
// process, from getrusage) that resolving one pending wait costs when the
// events come from 1 goroutine and from 64 at once, without a genai client
// (each event resolves its wait directly). Rounds of 16,384 Futures are
// parked, the clock stopped, then resolved by Deliver, the events split
// among the goroutines; the store is kept full (16,384 events), so each
// new event also evicts an older one. cpu-ns/wait at goroutines=64 over that
// at goroutines=1 is the cost of contention: lock handoffs, cache traffic
// and scheduling, even where the cores are fewer than the goroutines.
func BenchmarkResolve(b *testing.B) {
	for _, g := range []int{1, 64} {
		b.Run("goroutines="+strconv.Itoa(g), func(b *testing.B) { benchResolve(b, g) })
	}
}

func benchResolve(b *testing.B, goroutines int) {
	const round = 1 << 14
	d := mustNew(b, withRetention(time.Hour, round))
	defer d.Close()
	ctx := context.Background()
	evs := make([]*webhook.Event, round)
	futures := make([]*Future, round)
	var cpu time.Duration
	next := 0
	b.ReportAllocs()
	b.StopTimer()
	for done := 0; done < b.N; {
		n := min(round, b.N-done)
		for i := range n {
			id := "batches/r" + strconv.Itoa(next)
			next++
			evs[i] = &webhook.Event{Type: webhook.BatchSucceeded, Data: webhook.Data{ID: id}}
			futures[i] = d.Watch(ctx, id)
		}
		b.StartTimer()
		start := cpuTime(b)
		var wg sync.WaitGroup
		for g := range goroutines {
			part := evs[g*n/goroutines : (g+1)*n/goroutines]
			wg.Go(func() {
				for _, ev := range part {
					if err := d.Deliver(ctx, ev); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		cpu += cpuTime(b) - start
		b.StopTimer()
		for _, f := range futures[:n] {
			if ev, err := peek(f); err != nil || ev == nil {
				b.Fatalf("a wait did not resolve with its event: %v, %v", ev, err)
			}
		}
		done += n
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/wait")
}

// cpuTime returns the CPU time, user and system, the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
