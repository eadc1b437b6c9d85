//go:build !race

// The soak test runs only without the race detector: CI runs `go test
// -race ./...` on two cores, where 100,000 deliveries would take minutes,
// and runs this test in a step of its own without it.

package redisstore_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/genaihook/genaihook/dispatch"
	"github.com/genaihook/genaihook/dispatch/redisstore"
	"github.com/genaihook/genaihook/dispatch/redisstore/internal/redistest"
	"github.com/genaihook/genaihook/verify"
	"github.com/genaihook/genaihook/webhook"
	"github.com/genaihook/genaihook/webhook/webhooktest"
)

// The mix of the soak: of soakDeliveries deliveries, soakDupPct percent
// are duplicates of valid ones, soakForgedPct percent forged (bad
// signatures) and soakForeignPct percent foreign replays (validly signed
// dynamic deliveries of jobs that are not ours); the rest are the first
// deliveries of valid webhook-ids, one job each.
const (
	soakDeliveries = 100_000
	soakSenders    = 64
	soakDupPct     = 10
	soakForgedPct  = 5
	soakForeignPct = 1
	// soakHeapLimit bounds the peak HeapInuse of the whole test process
	// (three replicas, the senders and the bookkeeping of every job).
	soakHeapLimit = 512 << 20
)

// soakKind is what a soak task delivers.
type soakKind uint8

const (
	soakValid   soakKind = iota // a job's delivery, and its duplicate if any
	soakForged                  // a bad signature
	soakForeign                 // another customer's validly signed delivery
)

// soakTask is one delivery (with, for a valid one, its duplicate).
type soakTask struct {
	kind soakKind
	n    int // the job (valid), or the index among forged or foreign
}

// soakDedup is a replica's Store seen as a webhook.Deduplicator, counting
// per webhook-id the callbacks that succeeded: the Handler releases an id
// as processed only once its HandlerFunc (the Dispatcher's Deliver)
// returned nil.
type soakDedup struct {
	webhook.Deduplicator
	soak *soak
}

func (s soakDedup) Begin(ctx context.Context, id string) (func(bool), bool, error) {
	release, dup, err := s.Deduplicator.Begin(ctx, id)
	if release == nil {
		return release, dup, err
	}
	return func(processed bool) {
		if processed {
			s.soak.processed(id)
		}
		release(processed)
	}, dup, err
}

// soakReplica is one receiver process, served over loopback HTTP.
type soakReplica struct {
	client *redis.Client
	store  *redisstore.Store
	d      *dispatch.Dispatcher
	srv    *httptest.Server
}

// soak is the whole run: Gemini's signing material, the replicas, the
// sender's HTTP client and what was counted.
type soak struct {
	t       *testing.T
	secret  string
	keys    *webhooktest.Keys
	jwks    *httptest.Server
	logs    logBuffer
	reps    []*soakReplica
	tr      *http.Transport
	client  *http.Client
	valid   int
	futures []*dispatch.Future

	runs          []atomic.Int32 // successful callbacks per valid job
	wrongAccepted atomic.Int64   // callbacks of forged, foreign or unknown ids
	attempts      atomic.Int64
	answered5xx   [3]atomic.Int64 // by kind
	duplicates    atomic.Int64    // valid attempts answered "duplicate"
	transportErrs atomic.Int64
	failing       chan struct{}
	failingOnce   sync.Once
}

func (s *soak) processed(id string) {
	if j, ok := strings.CutPrefix(id, "msg_soak_"); ok {
		if n, err := strconv.Atoi(j); err == nil && n >= 0 && n < s.valid {
			s.runs[n].Add(1)
			return
		}
	}
	s.wrongAccepted.Add(1)
}

func soakJob(j int) string       { return fmt.Sprintf("batches/soak-%d", j) }
func soakWebhookID(j int) string { return fmt.Sprintf("msg_soak_%d", j) }

// dynamic reports whether job j is delivered as a dynamic webhook (v1a,
// bound by the wait on it) rather than a static one (HMAC).
func dynamic(j int) bool { return j%4 == 3 }

// waitFirst reports whether job j is awaited before its delivery; the
// others are awaited after it, from the event the store kept. A dynamic
// delivery is bound only by a wait, so it is always awaited first.
func waitFirst(j int) bool { return dynamic(j) || j%2 == 0 }

// TestSoak sends soakDeliveries deliveries over loopback HTTP, from
// soakSenders concurrent senders that retry every 5xx as Gemini does, to
// three replicas sharing one Redis, each with its own client, Store,
// Dispatcher and Handler (dispatch.New(nil, …) with WithStore and
// WithVerifier, served as d.Handler(webhook.WithDeduplicator(store))):
// static (HMAC) and dynamic (v1a) deliveries of jobs awaited on another
// replica, before or after the delivery; 10% duplicates, half sent at the
// same time as the first copy to another replica, half after it, to any
// replica; 5% forged (another secret or key, a flipped signature bit, a
// swapped body), half of them under a valid webhook-id; 1% foreign replays
// (validly signed dynamic deliveries of jobs nobody here awaits). Redis is
// killed once a third of the way through and restarted on its data.
//
// It asserts that the callback ran exactly once per valid webhook-id and
// never for a forged or foreign one (forged answered 401, foreign 403, or
// 503 just after the store failed),
// that every wait resolved, once, with its own job's event, that the
// goroutines return to their baseline once everything is closed, and that
// the heap stayed under soakHeapLimit; it logs the rate and the peak heap.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak test: skipped under -short")
	}
	baseline := runtime.NumGoroutine()
	start := time.Now()

	dups := soakDeliveries * soakDupPct / 100
	forged := soakDeliveries * soakForgedPct / 100
	foreign := soakDeliveries * soakForeignPct / 100
	valid := soakDeliveries - dups - forged - foreign
	if valid/dupEvery < dups {
		t.Fatalf("the mix needs %d duplicates of %d jobs, one every %d", dups, valid, dupEvery)
	}

	s := &soak{
		t:       t,
		secret:  newSecret(t),
		keys:    webhooktest.NewKeys(),
		valid:   valid,
		runs:    make([]atomic.Int32, valid),
		futures: make([]*dispatch.Future, valid),
		failing: make(chan struct{}),
	}
	s.jwks = httptest.NewServer(s.keys)
	srv := redistest.StartLocal(t, true)
	prefix := redistest.Prefix(t)
	for i := range 3 {
		s.reps = append(s.reps, s.newReplica(t, srv, prefix, i))
	}
	s.tr = &http.Transport{MaxIdleConns: 2 * soakSenders, MaxIdleConnsPerHost: soakSenders, IdleConnTimeout: time.Minute}
	s.client = &http.Client{Transport: s.tr, Timeout: 30 * time.Second}

	// Peak heap, sampled every 50 ms for the whole run.
	var peakHeap atomic.Uint64
	heapStop, heapDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(heapDone)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peakHeap.Load() {
				peakHeap.Store(ms.HeapInuse)
			}
			select {
			case <-heapStop:
				return
			case <-tick.C:
			}
		}
	}()

	// The tasks, in a fixed shuffled order.
	tasks := make([]soakTask, 0, valid+forged+foreign)
	for j := range valid {
		tasks = append(tasks, soakTask{soakValid, j})
	}
	for k := range forged {
		tasks = append(tasks, soakTask{soakForged, k})
	}
	for k := range foreign {
		tasks = append(tasks, soakTask{soakForeign, k})
	}
	rng := mrand.New(mrand.NewPCG(14, 3))
	rng.Shuffle(len(tasks), func(a, b int) { tasks[a], tasks[b] = tasks[b], tasks[a] })

	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Second)
	defer cancel()
	// The waits outlive the senders by at most 30 s (see below).
	waitCtx, waitCancel := context.WithCancel(ctx)
	defer waitCancel()

	var next, delivered atomic.Int64
	restart := make(chan struct{})
	var restartOnce sync.Once
	var senders sync.WaitGroup
	sendStart := time.Now()
	for range soakSenders {
		senders.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(tasks) || ctx.Err() != nil {
					return
				}
				task := tasks[i]
				n := 1
				switch task.kind {
				case soakValid:
					n = s.sendValid(ctx, waitCtx, task.n, task.n < dups*dupEvery && task.n%dupEvery == 0)
				case soakForged:
					s.sendForged(ctx, task.n)
				case soakForeign:
					s.sendForeign(ctx, task.n)
				}
				if delivered.Add(int64(n)) >= soakDeliveries/3 {
					restartOnce.Do(func() { close(restart) })
				}
			}
		})
	}
	// Kill Redis a third of the way through, as a crash would, and start it
	// again on its data once deliveries fail (go-redis retries a command
	// for about a second first); the senders retry what failed.
	var outage time.Duration
	select {
	case <-restart:
		killed := time.Now()
		srv.Kill()
		select {
		case <-s.failing:
		case <-ctx.Done():
		}
		srv.Restart(t)
		outage = time.Since(killed)
	case <-ctx.Done():
	}
	senders.Wait()
	sendTime := time.Since(sendStart)
	if err := ctx.Err(); err != nil {
		t.Errorf("the senders did not finish within the test's deadline: %v", err)
	}

	// Every wait resolves; a bounded guard, not a pause.
	guard := time.AfterFunc(30*time.Second, waitCancel)
	resolved, bad := 0, 0
	for j, f := range s.futures {
		if f == nil {
			if bad++; bad <= 10 {
				t.Errorf("job %d was never awaited (its sender did not finish)", j)
			}
			continue
		}
		<-f.Done()
		ev, err := f.Result()
		ev2, err2 := f.Result()
		switch {
		case err != nil || ev == nil || ev.Data.ID != soakJob(j) || ev.Type != webhook.BatchSucceeded || ev.WebhookID != soakWebhookID(j):
			if bad++; bad <= 10 {
				t.Errorf("Wait(%s) on replica %d = %v, %v", soakJob(j), (j+2)%3, ev, err)
			}
		case ev2 != ev || err2 != err:
			if bad++; bad <= 10 {
				t.Errorf("Wait(%s): a second Result = %v, %v, the first %v, %v", soakJob(j), ev2, err2, ev, err)
			}
		default:
			resolved++
		}
	}
	guard.Stop()
	if bad > 10 {
		t.Errorf("... %d waits in all did not resolve with their event", bad)
	}

	// Exactly one callback per valid webhook-id, none for any other.
	wrongRuns := 0
	for j := range s.runs {
		if got := s.runs[j].Load(); got != 1 {
			if wrongRuns++; wrongRuns <= 10 {
				kind := "static"
				if dynamic(j) {
					kind = "dynamic"
				}
				t.Errorf("delivery %s (%s, sent to replica %d, awaited on replica %d): the callback succeeded %d times, want once; the replicas logged about it:\n%s",
					soakWebhookID(j), kind, j%3, (j+2)%3, got, strings.Join(s.logs.lines(fmt.Sprintf("soak-%d ", j), fmt.Sprintf("soak-%d\\\"", j)), "\n"))
			}
		}
	}
	if wrongRuns > 10 {
		t.Errorf("... %d valid webhook-ids in all did not run their callback exactly once", wrongRuns)
	}
	if n := s.wrongAccepted.Load(); n != 0 {
		t.Errorf("%d callbacks ran for forged or foreign webhook-ids, want 0", n)
	}
	if s.answered5xx[soakValid].Load() == 0 {
		t.Error("no delivery was answered 5xx while Redis was down: the restart tested nothing")
	}
	if t.Failed() {
		if lines := s.logs.lines("level=ERROR", "level=WARN"); len(lines) > 0 {
			t.Logf("the replicas logged (last 20 of %d warnings and errors):\n%s", len(lines), strings.Join(lines[max(0, len(lines)-20):], "\n"))
		}
	}

	// Close everything, then the goroutines must return to the baseline.
	for _, r := range s.reps {
		_ = r.d.Close()
		r.srv.Close()
	}
	s.tr.CloseIdleConnections()
	s.jwks.Close()
	for _, r := range s.reps {
		_ = r.client.Close()
	}
	srv.Stop()
	close(heapStop)
	<-heapDone
	after := runtime.NumGoroutine()
	for deadline := time.Now().Add(5 * time.Second); after > baseline && time.Now().Before(deadline); after = runtime.NumGoroutine() {
		runtime.Gosched()
		time.Sleep(5 * time.Millisecond) // a failure guard for goroutines still unwinding, not a wait to pass
	}
	if after > baseline {
		buf := make([]byte, 1<<16)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("%d goroutines after the soak, %d before; stacks:\n%s", after, baseline, buf)
	}

	peak := peakHeap.Load()
	if peak > soakHeapLimit {
		t.Errorf("peak HeapInuse %d MiB, over the bound of %d MiB", peak>>20, soakHeapLimit>>20)
	}
	rate := float64(delivered.Load()) / sendTime.Seconds()
	t.Logf("%d deliveries (%d valid, %d duplicates, %d forged, %d foreign) from %d senders to 3 replicas in %v: %.0f deliveries/s; %d HTTP attempts, %d transport errors",
		delivered.Load(), valid, dups, forged, foreign, soakSenders, sendTime.Round(time.Millisecond), rate, s.attempts.Load(), s.transportErrs.Load())
	t.Logf("Redis killed and restarted in %v: 5xx answers valid=%d forged=%d foreign=%d; %d duplicate answers; %d of %d waits resolved with their event",
		outage.Round(time.Millisecond), s.answered5xx[soakValid].Load(), s.answered5xx[soakForged].Load(), s.answered5xx[soakForeign].Load(),
		s.duplicates.Load(), resolved, valid)
	t.Logf("goroutines: %d before, %d after; peak HeapInuse %.1f MiB; total %v", baseline, after, float64(peak)/(1<<20), time.Since(start).Round(time.Millisecond))
	// The figures as a benchmark line, for benchstat.
	t.Logf("BenchmarkSoak %d %.0f deliveries/s %d peak-HeapInuse-B %d goroutines-after", delivered.Load(), rate, peak, after-baseline)
}

// newReplica starts replica i: its own Redis client, Store, Verifier,
// Dispatcher and Handler, served on loopback.
func (s *soak) newReplica(t *testing.T, srv *redistest.Server, prefix string, i int) *soakReplica {
	t.Helper()
	log := slog.New(slog.NewTextHandler(&s.logs, &slog.HandlerOptions{Level: slog.LevelWarn})).With("replica", i)
	client := srv.Client(t)
	store := newStore(t, client, redisstore.Config{Prefix: prefix, DedupLease: 5 * time.Second, Logger: log})
	v, err := verify.New(verify.Config{
		Secrets:    []string{s.secret},
		JWKSURL:    s.jwks.URL + "/.well-known/jwks.json",
		HTTPClient: s.jwks.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := dispatch.New(nil, webhookURL, dispatch.WithStore(store), dispatch.WithVerifier(v), dispatch.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	h := d.Handler(webhook.WithDeduplicator(soakDedup{store, s}), webhook.WithLogger(quiet))
	mux := http.NewServeMux()
	mux.Handle("POST /gemini/webhook", h)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return &soakReplica{client: client, store: store, d: d, srv: hs}
}

// post makes one attempt and returns its status (0 for a transport error)
// and body.
func (s *soak) post(ctx context.Context, r *soakReplica, id string, ts time.Time, sig string, b []byte) (int, string) {
	s.attempts.Add(1)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.srv.URL+"/gemini/webhook", bytes.NewReader(b))
	if err != nil {
		s.t.Error(err)
		return 0, ""
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := s.client.Do(req)
	if err != nil {
		s.transportErrs.Add(1)
		return 0, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	return resp.StatusCode, string(body)
}

// deliver sends until r gives an answer that is not 5xx (nor a transport
// error), re-signing each attempt with its own timestamp as Gemini does,
// with Gemini's backoff shortened to milliseconds. It returns the final
// status and body.
func (s *soak) deliver(ctx context.Context, kind soakKind, r *soakReplica, id string, b []byte, sign func(id string, ts time.Time, b []byte) (string, []byte)) (int, string) {
	wait := time.Millisecond
	for {
		now := time.Now()
		sig, sent := sign(id, now, b)
		code, body := s.post(ctx, r, id, now, sig, sent)
		if code != 0 && code/100 != 5 {
			return code, body
		}
		if code/100 == 5 {
			s.answered5xx[kind].Add(1)
			s.failingOnce.Do(func() { close(s.failing) })
		}
		select {
		case <-ctx.Done():
			s.t.Errorf("delivery %s not answered but 5xx before the test's deadline", id)
			return code, body
		case <-time.After(wait): // the sender's backoff, not a test's wait
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// hmacSign signs as a static webhook.
func (s *soak) hmacSign(id string, ts time.Time, b []byte) (string, []byte) {
	sig, err := verify.Sign(s.secret, id, ts, b)
	if err != nil {
		s.t.Error(err)
	}
	return sig, b
}

// v1aSign signs as a dynamic webhook, with Google's (fake) current key.
func (s *soak) v1aSign(id string, ts time.Time, b []byte) (string, []byte) {
	_, priv := s.keys.Ed25519Key()
	return v1a(priv, id, ts, b), b
}

func v1a(priv ed25519.PrivateKey, id string, ts time.Time, b []byte) string {
	msg := append([]byte(id+"."+strconv.FormatInt(ts.Unix(), 10)+"."), b...)
	return "v1a," + base64.StdEncoding.EncodeToString(ed25519.Sign(priv, msg))
}

// sendValid delivers job j to replica j%3, awaited on replica (j+2)%3
// before or after, and, with dup, once more: at the same time, to replica
// (j+1)%3, or after the first was accepted, to replica j/dupEvery%3. It
// returns the deliveries made (1 or 2).
func (s *soak) sendValid(ctx, waitCtx context.Context, j int, dup bool) int {
	waiter := s.reps[(j+2)%3]
	if waitFirst(j) {
		s.futures[j] = waiter.d.Watch(waitCtx, soakJob(j))
	}
	sign := s.hmacSign
	if dynamic(j) {
		sign = s.v1aSign
	}
	b := body(soakJob(j), time.Now())
	check := func(r *soakReplica) {
		code, answer := s.deliver(ctx, soakValid, r, soakWebhookID(j), b, sign)
		if code != http.StatusOK {
			s.t.Errorf("valid delivery %s answered %d %q, want 200", soakWebhookID(j), code, answer)
		}
		if strings.Contains(answer, "duplicate") {
			s.duplicates.Add(1)
		}
	}
	var together sync.WaitGroup
	if dup && j/dupEvery%2 == 0 {
		together.Go(func() { check(s.reps[(j+1)%3]) })
	}
	check(s.reps[j%3])
	together.Wait()
	if dup && j/dupEvery%2 == 1 {
		check(s.reps[j/dupEvery%3])
	}
	if !waitFirst(j) {
		s.futures[j] = waiter.d.Watch(waitCtx, soakJob(j))
	}
	if dup {
		return 2
	}
	return 1
}

// dupEvery: every dupEvery-th job is delivered twice (the first ones,
// as many as the mix asks for).
const dupEvery = 8

// sendForged delivers a forged batch.failed of a valid job: signed with
// another secret, with a flipped signature bit, with another Ed25519 key,
// or a valid signature over another body. Half reuse the job's webhook-id.
// Its callback must never run (counted by soakDedup) and its job's wait
// must resolve with the genuine event (checked by TestSoak).
func (s *soak) sendForged(ctx context.Context, k int) {
	j := k * 16 % s.valid
	id := fmt.Sprintf("msg_forged_%d", k)
	if k%2 == 0 {
		id = soakWebhookID(j)
	}
	b := fmt.Appendf(nil, `{"type":"batch.failed","version":"v1","timestamp":%q,"data":{"id":%q,"error_code":"FORGED"}}`,
		time.Now().UTC().Format(time.RFC3339), soakJob(j))
	var sign func(string, time.Time, []byte) (string, []byte)
	switch k % 4 {
	case 0: // another secret
		other := newSecret(s.t)
		sign = func(id string, ts time.Time, b []byte) (string, []byte) {
			sig, _ := verify.Sign(other, id, ts, b)
			return sig, b
		}
	case 1: // a flipped bit
		sign = func(id string, ts time.Time, b []byte) (string, []byte) {
			sig, sent := s.hmacSign(id, ts, b)
			raw, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(sig, "v1,"))
			raw[k%len(raw)] ^= 1 << (k % 8)
			return "v1," + base64.StdEncoding.EncodeToString(raw), sent
		}
	case 2: // a key that is not Google's
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		sign = func(id string, ts time.Time, b []byte) (string, []byte) { return v1a(priv, id, ts, b), b }
	case 3: // a valid signature of the job's real event, sent with the forged body
		genuine := body(soakJob(j), time.Now())
		sign = func(id string, ts time.Time, b []byte) (string, []byte) {
			sig, _ := s.hmacSign(id, ts, genuine)
			return sig, b
		}
	}
	// A forger does not follow Gemini's retries: one attempt each.
	now := time.Now()
	sig, sent := sign(id, now, b)
	code, answer := s.post(ctx, s.reps[k%3], id, now, sig, sent)
	if code/100 == 5 {
		s.answered5xx[soakForged].Add(1)
	}
	// A v1a signature no cached key verifies is undecided (503, so that
	// Gemini would retry) while the verifier may not refetch the keys yet:
	// see verify.ErrJWKSUnavailable. Anything else forged is a 401.
	if code != http.StatusUnauthorized && (k%4 != 2 || code != http.StatusServiceUnavailable) {
		s.t.Errorf("forged delivery %d (%s) answered %d %q, want 401", k, id, code, answer)
	}
}

// sendForeign replays another customer's validly signed dynamic delivery:
// a batch, or an interaction without our token, nobody here awaits.
func (s *soak) sendForeign(ctx context.Context, k int) {
	job := fmt.Sprintf("batches/foreign-%d", k)
	if k%2 == 1 {
		job = fmt.Sprintf("v1_ForeignSoakInteraction%08d", k)
	}
	typ := `batch.succeeded`
	if k%2 == 1 {
		typ = `interaction.completed`
	}
	b := fmt.Appendf(nil, `{"type":%q,"version":"v1","timestamp":%q,"data":{"id":%q}}`, typ, time.Now().UTC().Format(time.RFC3339), job)
	id := fmt.Sprintf("msg_foreign_%d", k)
	// Sent once: a replay is the replayer's, and nobody retries it. It is
	// refused 403, or 503 in the two minutes after a failed Track (the
	// binding cannot tell it from the job of a wait the store failed to
	// record); it never reaches a callback (wrongAccepted).
	now := time.Now()
	sig, sent := s.v1aSign(id, now, b)
	code, answer := s.post(ctx, s.reps[k%3], id, now, sig, sent)
	if code/100 == 5 {
		s.answered5xx[soakForeign].Add(1)
	}
	if code != http.StatusForbidden && code != http.StatusServiceUnavailable {
		s.t.Errorf("foreign delivery %d (%s) answered %d %q, want 403 (or 503 after a failed Track)", k, job, code, answer)
	}
}
