package redisstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/genaihook/genaihook/dispatch"
	"github.com/genaihook/genaihook/dispatch/redisstore"
	"github.com/genaihook/genaihook/dispatch/redisstore/internal/redistest"
	"github.com/genaihook/genaihook/verify"
	"github.com/genaihook/genaihook/webhook"
)

// webhookURL is where the replicas say Gemini delivers; the tests call
// their handlers in process.
const webhookURL = "https://example.com/gemini/webhook"

// newSecret returns a random static webhook secret.
func newSecret(t testing.TB) string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return "whsec_" + base64.StdEncoding.EncodeToString(b[:])
}

// replica is one receiver process: its own Redis client, Store,
// Dispatcher and webhook Handler.
type replica struct {
	store *redisstore.Store
	d     *dispatch.Dispatcher
	h     http.Handler
}

// cluster is a receiver of several replicas on one Redis, with a sender
// that signs deliveries as a static Gemini webhook does.
type cluster struct {
	cfg      redisstore.Config // of every replica's Store
	logs     logBuffer
	secret   string
	replicas []*replica
	// runs counts, per webhook-id, the callbacks that succeeded; calls
	// counts every callback, failed ones included.
	runs  sync.Map // string -> *atomic.Int32
	calls atomic.Int64
	// failed counts the attempts answered 5xx; failing is closed at the
	// first.
	failed      atomic.Int64
	failing     chan struct{}
	failingOnce sync.Once
}

// quiet drops the logs of the replicas, which warn, as they should, while
// Redis restarts.
var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// logBuffer keeps what the replicas log, to show it when a test fails.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the lines logged that contain any of subs.
func (b *logBuffer) lines(subs ...string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for line := range strings.Lines(b.buf.String()) {
		for _, s := range subs {
			if strings.Contains(line, s) {
				out = append(out, strings.TrimSpace(line))
				break
			}
		}
	}
	return out
}

func newCluster(t testing.TB, srv *redistest.Server, n int, cfg redisstore.Config) *cluster {
	t.Helper()
	c := &cluster{cfg: cfg, secret: newSecret(t), failing: make(chan struct{})}
	v, err := verify.New(verify.Config{Secrets: []string{c.secret}})
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		c.replicas = append(c.replicas, c.newReplica(t, srv, v, cfg))
	}
	return c
}

func (c *cluster) newReplica(t testing.TB, srv *redistest.Server, v *verify.Verifier, cfg redisstore.Config) *replica {
	t.Helper()
	log := slog.New(slog.NewTextHandler(&c.logs, nil)).With("replica", len(c.replicas))
	cfg.Logger = log
	store := newStore(t, srv.Client(t), cfg)
	d, err := dispatch.New(nil, webhookURL, dispatch.WithStore(store), dispatch.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	// The callback is the Dispatcher's, counted; static deliveries need no
	// binding, so this is the handler d.Handler builds, seen from outside.
	fn := func(ctx context.Context, ev *webhook.Event) error {
		c.calls.Add(1)
		err := d.Deliver(ctx, ev)
		if err == nil {
			n, _ := c.runs.LoadOrStore(ev.WebhookID, new(atomic.Int32))
			n.(*atomic.Int32).Add(1)
		}
		return err
	}
	h := webhook.NewHandler(v, fn, webhook.WithDeduplicator(store), webhook.WithLogger(quiet))
	return &replica{store: store, d: d, h: h}
}

// body returns the delivery of job's success.
func body(job string, at time.Time) []byte {
	return fmt.Appendf(nil, `{"type":"batch.succeeded","version":"v1","timestamp":%q,"data":{"id":%q}}`,
		at.UTC().Format(time.RFC3339), job)
}

// send delivers one attempt to r, signed now, and returns the status.
func (c *cluster) send(t testing.TB, r *replica, webhookID string, b []byte) int {
	now := time.Now()
	sig, err := verify.Sign(c.secret, webhookID, now, b)
	if err != nil {
		t.Error(err)
		return 0
	}
	req := httptest.NewRequest(http.MethodPost, webhookURL, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", webhookID)
	req.Header.Set("webhook-timestamp", fmt.Sprint(now.Unix()))
	req.Header.Set("webhook-signature", sig)
	w := httptest.NewRecorder()
	r.h.ServeHTTP(w, req)
	if w.Code/100 == 5 {
		c.failed.Add(1)
		c.failingOnce.Do(func() { close(c.failing) })
	}
	return w.Code
}

// deliver sends until r answers 2xx, as Gemini retries (with its backoff
// shortened to milliseconds), and returns the attempts it took.
func (c *cluster) deliver(ctx context.Context, t testing.TB, r *replica, webhookID string, b []byte) int {
	wait := time.Millisecond
	for attempt := 1; ; attempt++ {
		code := c.send(t, r, webhookID, b)
		if code/100 == 2 {
			return attempt
		}
		if code == 0 {
			return attempt
		}
		if code/100 != 5 {
			t.Errorf("delivery %s answered %d, which Gemini does not retry", webhookID, code)
			return attempt
		}
		select {
		case <-ctx.Done():
			t.Errorf("delivery %s not accepted before the test's deadline", webhookID)
			return attempt
		case <-time.After(wait): // the sender's backoff, not a test's wait
		}
		wait = min(2*wait, 100*time.Millisecond)
	}
}

// TestReplicas runs three replicas, each with its own Redis client,
// Store, Dispatcher and Handler, as a load balancer would: every job's
// delivery goes round-robin to one replica, one in ten is delivered again
// to another replica (half of those at the same time as the first), and
// the job is awaited on a third replica, half of the waits starting
// before the delivery and half after. Redis is killed and restarted once
// mid-run, and the sender retries what failed, as Gemini does. Every wait
// must resolve with its job's event, and every delivery's callback must
// succeed exactly once, whatever replica each copy reached. A fourth
// replica started afterwards finds the events of jobs it never saw.
func TestReplicas(t *testing.T) {
	jobs := 10_000
	if testing.Short() {
		jobs = 1_000
	}
	srv := redistest.StartLocal(t, true)
	c := newCluster(t, srv, 3, redisstore.Config{Prefix: redistest.Prefix(t), DedupLease: 5 * time.Second})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	type result struct {
		ev  *webhook.Event
		err error
	}
	results := make([]chan result, jobs)
	for j := range results {
		results[j] = make(chan result, 2)
	}
	id := func(j int) string { return fmt.Sprintf("batches/job-%d", j) }
	// The waits get 30 s more once every delivery is accepted.
	waitCtx, waitCancel := context.WithCancel(ctx)
	defer waitCancel()
	var waits sync.WaitGroup
	wait := func(j int) {
		waits.Go(func() {
			ev, err := c.replicas[(j+2)%3].d.Wait(waitCtx, id(j))
			results[j] <- result{ev, err}
		})
	}
	for j := 0; j < jobs; j += 2 {
		wait(j) // before the delivery
	}

	// The sender: a pool of workers, as Gemini delivers many jobs at once.
	var delivered, retried atomic.Int64
	restart := make(chan struct{})
	var restartOnce sync.Once
	work := make(chan int)
	var senders sync.WaitGroup
	for range 32 {
		senders.Go(func() {
			for j := range work {
				webhookID := fmt.Sprintf("msg_%d", j)
				b := body(id(j), time.Now())
				primary := c.replicas[j%3]
				// One in ten is delivered again, to another replica: at
				// the same time as the first, or after it.
				other := c.replicas[(j+1+j/10%2)%3]
				var dup sync.WaitGroup
				if j%20 == 0 {
					dup.Go(func() { c.deliver(ctx, t, other, webhookID, b) })
				}
				if n := c.deliver(ctx, t, primary, webhookID, b); n > 1 {
					retried.Add(1)
				}
				dup.Wait()
				if j%20 == 10 {
					c.deliver(ctx, t, other, webhookID, b)
				}
				if j%2 == 1 {
					wait(j) // after the delivery
				}
				if delivered.Add(1) == int64(jobs/3) {
					restartOnce.Do(func() { close(restart) })
				}
			}
		})
	}
	go func() {
		defer close(work)
		for j := range jobs {
			select {
			case work <- j:
			case <-ctx.Done():
				return
			}
		}
	}()
	// Kill Redis a third of the way through, as a crash would, and start
	// it again on its data once deliveries fail (go-redis retries a
	// command for about a second first): the sender retries them.
	select {
	case <-restart:
		srv.Kill()
		select {
		case <-c.failing:
		case <-ctx.Done():
		}
		srv.Restart(t)
	case <-ctx.Done():
	}
	senders.Wait()
	time.AfterFunc(30*time.Second, waitCancel)
	waits.Wait()

	for j := range jobs {
		select {
		case r := <-results[j]:
			if r.err != nil || r.ev == nil || r.ev.Data.ID != id(j) {
				t.Errorf("Wait(%s) on replica %d = %v, %v; its replica logged:\n%s", id(j), (j+2)%3, r.ev, r.err,
					strings.Join(c.logs.lines(fmt.Sprintf("job-%d ", j), fmt.Sprintf("job-%d\"", j), "subscription", "replica="+fmt.Sprint((j+2)%3)), "\n"))
				ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
				ev, err := c.replicas[(j+2)%3].d.Wait(ctx, id(j))
				cancel()
				t.Logf("a new Wait(%s) on the same replica = %v, %v", id(j), ev, err)
			}
		default:
			t.Errorf("Wait(%s) did not return", id(j))
		}
		webhookID := fmt.Sprintf("msg_%d", j)
		n, ok := c.runs.Load(webhookID)
		if !ok || n.(*atomic.Int32).Load() != 1 {
			got := int32(0)
			if ok {
				got = n.(*atomic.Int32).Load()
			}
			t.Errorf("delivery %s: the callback succeeded %d times, want once", webhookID, got)
		}
		if t.Failed() && j > 10 {
			break // enough to go on
		}
	}
	t.Logf("%d jobs, %d deliveries with %d duplicates; %d callbacks run; %d attempts answered 5xx while Redis was down, %d jobs' first delivery retried",
		jobs, jobs+jobs/10, jobs/10, c.calls.Load(), c.failed.Load(), retried.Load())
	if c.failed.Load() == 0 {
		t.Error("no delivery failed while Redis was down: the restart tested nothing")
	}

	// A replica started now (a restarted process) finds what the others
	// received, without any delivery.
	v, err := verify.New(verify.Config{Secrets: []string{c.secret}})
	if err != nil {
		t.Fatal(err)
	}
	late := c.newReplica(t, srv, v, c.cfg)
	for j := 0; j < jobs; j += jobs / 100 {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		ev, err := late.d.Wait(ctx, id(j))
		cancel()
		if err != nil || ev.Data.ID != id(j) {
			t.Errorf("a replica started after the event: Wait(%s) = %v, %v", id(j), ev, err)
		}
	}
}

// TestHandlerRetryableWhenRedisDown checks that a delivery is never
// acknowledged while Redis is unreachable: the Handler answers 5xx, which
// Gemini retries, and the retry succeeds once Redis is back.
func TestHandlerRetryableWhenRedisDown(t *testing.T) {
	srv := redistest.StartLocal(t, true)
	c := newCluster(t, srv, 2, redisstore.Config{Prefix: redistest.Prefix(t)})
	f := c.replicas[1].d.Watch(t.Context(), "batches/down")
	srv.Kill()
	b := body("batches/down", time.Now())
	code := c.send(t, c.replicas[0], "msg_down", b)
	t.Logf("with Redis down the Handler answered %d", code)
	if code/100 != 5 {
		t.Fatalf("delivery with Redis down answered %d, want 5xx", code)
	}
	srv.Restart(t)
	if code := c.send(t, c.replicas[0], "msg_down", b); code != 200 {
		t.Fatalf("retry with Redis back answered %d, want 200", code)
	}
	select {
	case <-f.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("the wait on the other replica did not resolve within 20s of the retry")
	}
	if ev, err := f.Result(); err != nil || ev.Data.ID != "batches/down" {
		t.Fatalf("Wait = %v, %v", ev, err)
	}
}
