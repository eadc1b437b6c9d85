package dispatch

import (
	"bytes"
	"context"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genai/interactions/models/interactions"

	"github.com/genaihook/genaihook/webhook"
)

// TestMemoryStoreExpiredBeforeLive checks that an entry whose retention
// was renewed outlives older ones that expired, whatever the order the
// entries were made in.
func TestMemoryStoreExpiredBeforeLive(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		write func(s *memoryStore, key string, at time.Time) // makes or renews key's entry
		held  func(s *memoryStore, key string) bool
		ttl   time.Duration // of the entries written
		bound func(s *memoryStore)
	}{{
		name: "events",
		write: func(s *memoryStore, key string, at time.Time) {
			s.Save(ctx, key, event(webhook.BatchSucceeded, key, at))
		},
		held: func(s *memoryStore, key string) bool {
			ev, _ := s.Load(ctx, key)
			return ev != nil
		},
		ttl:   time.Hour,
		bound: func(s *memoryStore) {},
	}, {
		name: "tracked jobs",
		write: func(s *memoryStore, key string, _ time.Time) {
			s.Track(ctx, key)
		},
		held: func(s *memoryStore, key string) bool {
			ok, _ := s.Tracked(ctx, key)
			return ok
		},
		ttl:   markRetention,
		bound: func(s *memoryStore) { s.maxMarks = 3 },
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			s := newMemoryStore(clk.Now, time.Hour, 3)
			tt.bound(s)
			for _, k := range []string{"a", "b", "c"} {
				tt.write(s, k, clk.Now())
			}
			clk.Advance(tt.ttl * 5 / 6)
			tt.write(s, "a", clk.Now()) // renewed: a now outlives b and c
			clk.Advance(tt.ttl/6 + time.Second)
			tt.write(s, "d", clk.Now()) // b and c expired: d must not cost a
			for _, k := range []string{"a", "d"} {
				if !tt.held(s, k) {
					t.Errorf("%s was evicted while b and c had expired", k)
				}
			}
			for _, k := range []string{"b", "c"} {
				if tt.held(s, k) {
					t.Errorf("expired %s still held", k)
				}
			}
		})
	}
}

// TestMemoryStoreShards checks how the store spreads over its shards: a
// store too small to give each shard a fair part of its bound stays one
// shard (whose oldest event is the store's); the bounds are the store's
// (it holds all it may, and no more, however its keys fall); and an entry
// new to a full store whose shard holds none to drop makes room in
// another shard.
func TestMemoryStoreShards(t *testing.T) {
	for _, tt := range []struct{ maxEvents, shards int }{
		{1, 1}, {3, 1}, {2*minShardEvents - 1, 1}, {2 * minShardEvents, 2},
		{defaultMaxStored, maxShards}, {1 << 20, maxShards},
	} {
		if s := newMemoryStore(time.Now, time.Hour, tt.maxEvents); len(s.shards) != tt.shards {
			t.Errorf("a bound of %d events: %d shards, want %d", tt.maxEvents, len(s.shards), tt.shards)
		}
	}

	ctx := context.Background()
	t.Run("full", func(t *testing.T) {
		clk := newFakeClock()
		s := newMemoryStore(clk.Now, time.Hour, defaultMaxStored)
		save := func(i int) {
			t.Helper()
			k := "b/" + strconv.Itoa(i)
			if ok, _ := s.Save(ctx, k, event(webhook.BatchSucceeded, "batches/"+strconv.Itoa(i), clk.Now())); !ok {
				t.Fatalf("Save(%q) refused a new key", k)
			}
		}
		for i := range defaultMaxStored {
			save(i)
		}
		for i := range defaultMaxStored {
			if ev, _ := s.Load(ctx, "b/"+strconv.Itoa(i)); ev == nil {
				t.Fatalf("a store holding its bound of events dropped event %d", i)
			}
		}
		for i := defaultMaxStored; i < 3*defaultMaxStored; i++ {
			save(i)
		}
		if n := s.len(); n != defaultMaxStored {
			t.Errorf("a full store holds %d events, want %d", n, defaultMaxStored)
		}
		for i := 3*defaultMaxStored - 100; i < 3*defaultMaxStored; i++ {
			if ev, _ := s.Load(ctx, "b/"+strconv.Itoa(i)); ev == nil {
				t.Errorf("event %d, among the last saved, was dropped", i)
			}
		}
	})

	t.Run("events elsewhere", func(t *testing.T) {
		clk := newFakeClock()
		s := newMemoryStore(clk.Now, time.Hour, 2*minShardEvents)
		full := keysOf(s, 0, 2*minShardEvents)
		for _, k := range full {
			clk.Advance(time.Second)
			s.Save(ctx, k, event(webhook.BatchSucceeded, "batches/x", clk.Now()))
		}
		newcomer := keysOf(s, 1, 1)[0]
		if ok, _ := s.Save(ctx, newcomer, event(webhook.BatchSucceeded, "batches/x", clk.Now())); !ok {
			t.Fatal("a new event into a full store was refused")
		}
		if n := s.len(); n != 2*minShardEvents {
			t.Errorf("store holds %d events, want %d", n, 2*minShardEvents)
		}
		if ev, _ := s.Load(ctx, full[0]); ev != nil {
			t.Error("the oldest event of the other shard was kept")
		}
		if ev, _ := s.Load(ctx, full[1]); ev == nil {
			t.Error("more than one event was dropped")
		}
	})
	t.Run("marks elsewhere", func(t *testing.T) {
		clk := newFakeClock()
		s := newMemoryStore(clk.Now, time.Hour, 2*minShardEvents)
		s.maxMarks = 4
		s.log = slog.New(slog.DiscardHandler)
		full := keysOf(s, 0, 4)
		for _, k := range full {
			clk.Advance(time.Second)
			s.Track(ctx, k)
		}
		newcomer := keysOf(s, 1, 1)[0]
		pause := event(webhook.InteractionRequiresAction, "v1_p", clk.Now())
		if ok, _ := s.Consume(ctx, newcomer, pause); !ok {
			t.Fatal("a first Consume into a full store did not use the pause up")
		}
		if ok, _ := s.Save(ctx, newcomer, pause); ok {
			t.Error("the consumed pause was not remembered")
		}
		if ok, _ := s.Tracked(ctx, full[0]); ok {
			t.Error("the oldest mark of the other shard was kept")
		}
		for _, k := range full[1:] {
			if ok, _ := s.Tracked(ctx, k); !ok {
				t.Errorf("%s forgotten: more than one mark was dropped", k)
			}
		}
	})
}

// TestMemoryStoreExpiredElsewhereBeforeLive checks that an entry new to a
// store full only by the count of expired entries in a shard nothing has
// touched since costs no live entry: the other shard's expired entries go
// first, and the store then holds all the live entries its bound allows.
func TestMemoryStoreExpiredElsewhereBeforeLive(t *testing.T) {
	ctx := context.Background()
	t.Run("events", func(t *testing.T) {
		clk := newFakeClock()
		s := newMemoryStore(clk.Now, time.Hour, 2*minShardEvents)
		if len(s.shards) != 2 {
			t.Fatalf("%d shards, want 2", len(s.shards))
		}
		for _, k := range keysOf(s, 1, minShardEvents) {
			s.Save(ctx, k, event(webhook.BatchSucceeded, "batches/x", clk.Now()))
		}
		clk.Advance(2 * time.Hour) // shard 1's events all expired
		live := keysOf(s, 0, minShardEvents+1)
		for _, k := range live {
			clk.Advance(time.Second)
			if ok, _ := s.Save(ctx, k, event(webhook.BatchSucceeded, "batches/x", clk.Now())); !ok {
				t.Fatalf("Save(%q) refused a new key", k)
			}
		}
		for _, k := range live {
			if ev, _ := s.Load(ctx, k); ev == nil {
				t.Errorf("live event %s evicted with %d live events held, bound %d", k, len(live), 2*minShardEvents)
			}
		}
		if n := s.nEvents.Load(); n != int64(len(live)) || s.len() != len(live) {
			t.Errorf("%d events held, counted %d; want %d", s.len(), n, len(live))
		}
	})
	t.Run("marks", func(t *testing.T) {
		clk := newFakeClock()
		s := newMemoryStore(clk.Now, time.Hour, 2*minShardEvents)
		s.maxMarks = 4
		var logs bytes.Buffer
		s.log = slog.New(slog.NewTextHandler(&logs, nil))
		for _, k := range keysOf(s, 1, 2) {
			s.Track(ctx, k)
		}
		clk.Advance(markRetention + time.Hour) // shard 1's marks all expired
		live := keysOf(s, 0, 3)
		pause := event(webhook.InteractionRequiresAction, "v1_p", clk.Now())
		if ok, _ := s.Consume(ctx, live[0], pause); !ok {
			t.Fatal("a first Consume did not use the pause up")
		}
		for _, k := range live[1:] {
			clk.Advance(time.Second)
			s.Track(ctx, k)
		}
		if ok, _ := s.Save(ctx, live[0], pause); ok {
			t.Error("the consumed pause was forgotten with 3 live marks, bound 4: its redelivery was saved")
		}
		if ok, _ := s.Consume(ctx, live[0], pause); ok {
			t.Error("the consumed pause was forgotten with 3 live marks, bound 4: it was used up twice")
		}
		for _, k := range live[1:] {
			if ok, _ := s.Tracked(ctx, k); !ok {
				t.Errorf("tracked %s forgotten with 3 live marks, bound 4", k)
			}
		}
		if n := s.nMarks.Load(); n != int64(len(live)) {
			t.Errorf("%d marks counted, want %d", n, len(live))
		}
		if logs.Len() != 0 {
			t.Errorf("warned of marks dropped over the bound when only expired ones were: %s", logs.String())
		}
	})
}

// TestMemoryStoreBoundsConcurrently saves, tracks and consumes new keys
// from several goroutines at once on a sharded store that is full of both
// events and marks, then checks that each count agrees with the entries
// held and that neither exceeds its bound.
func TestMemoryStoreBoundsConcurrently(t *testing.T) {
	ctx := context.Background()
	s := newMemoryStore(time.Now, time.Hour, 4*minShardEvents)
	s.maxMarks = 2 * minShardEvents
	s.log = slog.New(slog.DiscardHandler)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				k := "b/" + strconv.Itoa(g) + "-" + strconv.Itoa(i)
				s.Save(ctx, k, event(webhook.BatchSucceeded, "batches/x", t0))
				switch i % 3 {
				case 0:
					s.Track(ctx, k)
				case 1:
					s.Consume(ctx, k, event(webhook.InteractionRequiresAction, "v1_x", t0))
				}
			}
		})
	}
	wg.Wait()
	var events, marks int
	for i := range s.shards {
		events += len(s.shards[i].events)
		marks += len(s.shards[i].marks)
	}
	if events != int(s.nEvents.Load()) || events > int(s.maxEv) {
		t.Errorf("%d events held, counted %d, bound %d", events, s.nEvents.Load(), s.maxEv)
	}
	if marks != int(s.nMarks.Load()) || marks != int(s.maxMarks) {
		t.Errorf("%d marks held, counted %d, bound %d (and reached)", marks, s.nMarks.Load(), s.maxMarks)
	}
}

// TestMemoryStoreTrackOutlivesEvents checks that a burst of events for
// other jobs, twice the event bound, neither forgets a tracked job nor
// lets Gemini's retry of a consumed pause come back as new.
func TestMemoryStoreTrackOutlivesEvents(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	s := newMemoryStore(clk.Now, defaultRetention, defaultMaxStored)
	const key = "v1_mine"
	s.Track(ctx, key)
	pause := event(webhook.InteractionRequiresAction, "v1_mine", clk.Now())
	pause.WebhookID = "msg_1"
	if ok, err := s.Save(ctx, key, pause); !ok || err != nil {
		t.Fatalf("Save(pause) = %v, %v", ok, err)
	}
	s.Consume(ctx, key, pause)

	for i := range 2 * defaultMaxStored {
		clk.Advance(time.Second)
		id := "other" + strconv.Itoa(i)
		s.Save(ctx, "b/"+id, event(webhook.BatchSucceeded, "batches/"+id, clk.Now()))
	}

	if ok, _ := s.Tracked(ctx, key); !ok {
		t.Errorf("job tracked %v ago forgotten after %d events", clk.Now().Sub(t0), 2*defaultMaxStored)
	}
	retry := *pause
	if ok, _ := s.Save(ctx, key, &retry); ok {
		t.Error("a retry of the consumed pause was saved as new")
	}
	if ev, _ := s.Load(ctx, key); ev != nil {
		t.Error("Load returned the consumed pause after its retry")
	}
	next := *pause
	next.WebhookID = "msg_2"
	if ok, _ := s.Save(ctx, key, &next); !ok {
		t.Error("a new pause at the same timestamp was refused")
	}
}

// TestMemoryStoreReadsChangeNothing checks that the clock is never read
// with the store locked, and that Load and Tracked drop nothing, even
// when everything has expired.
func TestMemoryStoreReadsChangeNothing(t *testing.T) {
	for _, bound := range []int{10, defaultMaxStored} { // one shard, and every shard
		ctx := context.Background()
		clk := newFakeClock()
		var s *memoryStore
		var lockedReads atomic.Int32
		now := func() time.Time {
			if s != nil {
				for i := range s.shards {
					if mu := &s.shards[i].mu; !mu.TryLock() {
						lockedReads.Add(1)
					} else {
						mu.Unlock()
					}
				}
			}
			return clk.Now()
		}
		s = newMemoryStore(now, time.Hour, bound)
		pause := event(webhook.InteractionRequiresAction, "v1_p", clk.Now())
		s.Save(ctx, "b/a", event(webhook.BatchSucceeded, "batches/a", clk.Now()))
		s.Save(ctx, "i/v1_p", pause)
		s.Consume(ctx, "i/v1_p", pause)
		s.Track(ctx, "b/t")
		s.Load(ctx, "b/a")
		s.Tracked(ctx, "b/t")
		clk.Advance(markRetention + time.Hour)
		held := s.len()
		for _, k := range []string{"b/a", "i/v1_p", "b/t", "b/none"} {
			if ev, _ := s.Load(ctx, k); ev != nil {
				t.Errorf("%d shards: Load(%q) returned an expired event", len(s.shards), k)
			}
			if ok, _ := s.Tracked(ctx, k); ok {
				t.Errorf("%d shards: Tracked(%q) after its retention", len(s.shards), k)
			}
		}
		if n := s.len(); n != held {
			t.Errorf("%d shards: reads dropped %d entries", len(s.shards), held-n)
		}
		if n := lockedReads.Load(); n != 0 {
			t.Errorf("%d shards: the clock was read %d times with the store locked", len(s.shards), n)
		}
	}
}

// TestMemoryStoreMarkBound checks the bound on tracked jobs and consumed
// events: past it the oldest goes, with a warning at most once a minute.
func TestMemoryStoreMarkBound(t *testing.T) {
	ctx := context.Background()
	clk := newFakeClock()
	var logs bytes.Buffer
	s := newMemoryStore(clk.Now, time.Hour, 10)
	s.maxMarks = 3
	s.log = slog.New(slog.NewTextHandler(&logs, nil))
	tracked := func(k string) bool {
		ok, _ := s.Tracked(ctx, k)
		return ok
	}
	warnings := func() []string {
		return strings.FieldsFunc(logs.String(), func(r rune) bool { return r == '\n' })
	}

	pause := event(webhook.InteractionRequiresAction, "v1_p", clk.Now())
	s.Consume(ctx, "i/v1_p", pause)
	s.Track(ctx, "b/1")
	s.Track(ctx, "b/2")
	s.Track(ctx, "b/3")
	if ok, _ := s.Save(ctx, "i/v1_p", pause); !ok {
		t.Error("the oldest mark, a consumed pause, was kept over the bound")
	}
	for i := range 20 {
		s.Save(ctx, "b/x"+strconv.Itoa(i), event(webhook.BatchSucceeded, "batches/x", clk.Now()))
	}
	for _, k := range []string{"b/1", "b/2", "b/3"} {
		if !tracked(k) {
			t.Errorf("%s forgotten", k)
		}
	}
	if w := warnings(); len(w) != 1 || !strings.Contains(w[0], "level=WARN") || !strings.Contains(w[0], "forgotten=1") {
		t.Errorf("after the first drop, logged %q; want one warning of 1 forgotten", w)
	}

	s.Track(ctx, "b/4")
	s.Track(ctx, "b/5")
	if w := warnings(); len(w) != 1 {
		t.Errorf("warned %d times within a minute", len(w))
	}
	clk.Advance(time.Minute)
	s.Track(ctx, "b/6")
	if w := warnings(); len(w) != 2 || !strings.Contains(w[1], "forgotten=3") {
		t.Errorf("a minute later, logged %q; want a second warning of 3 forgotten", w)
	}
}

// BenchmarkMemoryStore measures the default store's operations: Save and
// Track of a new key once the store is full (so each also evicts), Load of
// a held event, and Save from every P at once. The Memory case reports
// the heap each entry holds, beyond its key and event.
func BenchmarkMemoryStore(b *testing.B) {
	ctx := context.Background()
	const pool = 1 << 18 // keys, several times either bound
	keys := make([]string, pool)
	for i := range keys {
		keys[i] = "b/job" + strconv.Itoa(i)
	}
	ev := event(webhook.BatchSucceeded, "batches/job", time.Now())
	fresh := func() *memoryStore {
		s := newMemoryStore(time.Now, defaultRetention, defaultMaxStored)
		s.log = slog.New(slog.DiscardHandler)
		return s
	}

	b.Run("SaveNew", func(b *testing.B) {
		s := fresh()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if ok, _ := s.Save(ctx, keys[i%pool], ev); !ok {
				b.Fatal("Save refused a new key")
			}
			i++
		}
	})
	b.Run("LoadHit", func(b *testing.B) {
		s := fresh()
		for _, k := range keys[:defaultMaxStored] {
			s.Save(ctx, k, ev)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if got, _ := s.Load(ctx, keys[i%defaultMaxStored]); got == nil {
				b.Fatal("Load missed")
			}
			i++
		}
	})
	b.Run("Track", func(b *testing.B) {
		s := fresh()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			s.Track(ctx, keys[i%pool])
			i++
		}
	})
	b.Run("SaveNewParallel", func(b *testing.B) {
		s := fresh()
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := rand.IntN(pool)
			for pb.Next() {
				s.Save(ctx, keys[i%pool], ev)
				i++
			}
		})
	})
	b.Run("Memory", func(b *testing.B) {
		var perEvent, perMark float64
		heap := func() int64 {
			var m runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m)
			return int64(m.HeapAlloc)
		}
		for b.Loop() {
			before := heap()
			s := fresh()
			for _, k := range keys[:defaultMaxStored] {
				s.Save(ctx, k, ev)
			}
			mid := heap()
			for _, k := range keys[:defaultMaxMarks] {
				s.Track(ctx, k)
			}
			after := heap()
			runtime.KeepAlive(s)
			perEvent = float64(mid-before) / defaultMaxStored
			perMark = float64(after-mid) / defaultMaxMarks
		}
		b.ReportMetric(perEvent, "B/event")
		b.ReportMetric(perMark, "B/tracked")
	})
}

// Pauses read from the API are told apart by their fingerprint, not their
// update time: the same pause read again, even stamped later, is not new;
// another pause stamped in the same second is.
func TestReadPausesByFingerprint(t *testing.T) {
	read := func(fp string, ts time.Time) *webhook.Event {
		ev := event(webhook.InteractionRequiresAction, "v1_x", ts)
		ev.Polled, ev.WebhookID = true, fp
		return ev
	}
	first := read(readPausePrefix+"1:call_1", t0)
	tests := []struct {
		name string
		a    *webhook.Event
		want bool
	}{
		{"the same pause read again", read(readPausePrefix+"1:call_1", t0), false},
		{"the same pause, updated later", read(readPausePrefix+"1:call_1", t0.Add(time.Minute)), false},
		{"another pause in the same second", read(readPausePrefix+"3:call_1:call_2", t0), true},
		{"another pause, stamped earlier", read(readPausePrefix+"3:call_1:call_2", t0.Add(-time.Second)), false},
	}
	for _, tt := range tests {
		if got := Supersedes(tt.a, first); got != tt.want {
			t.Errorf("%s: Supersedes = %v, want %v", tt.name, got, tt.want)
		}
	}
	in := &interactions.Interaction{Steps: []interactions.Step{
		{FunctionCallStep: &interactions.FunctionCallStep{ID: "call_1"}},
		{FunctionResultStep: &interactions.FunctionResultStep{}},
		{FunctionCallStep: &interactions.FunctionCallStep{ID: "call_2"}},
	}}
	if got, want := pauseFingerprint(in), readPausePrefix+"3:call_1:call_2"; got != want {
		t.Errorf("pauseFingerprint = %q, want %q", got, want)
	}
}

// keysOf returns n keys that s puts in its shard i.
func keysOf(s *memoryStore, i, n int) []string {
	var keys []string
	for j := 0; len(keys) < n; j++ {
		if k := "b/" + strconv.Itoa(j); s.shardOf(k) == &s.shards[i] {
			keys = append(keys, k)
		}
	}
	return keys
}
