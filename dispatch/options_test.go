package dispatch

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"

	"google.golang.org/genai"

	"github.com/genaihook/genaihook/webhook"
)

// Options that only tests need: the package's users get these from
// testing/synctest, or do not need them at all.

// testURL is the webhook URL of the Dispatchers tests make.
const testURL = "https://receiver.example/gemini/webhook"

// mustNew is New without a client, for tests: it fails tb on a
// configuration error.
func mustNew(tb testing.TB, opts ...Option) *Dispatcher {
	tb.Helper()
	d, err := New(nil, testURL, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

// pollerFunc adapts a function to poller.
type pollerFunc func(ctx context.Context, id string) (*webhook.Event, error)

func (p pollerFunc) Poll(ctx context.Context, id string) (*webhook.Event, error) { return p(ctx, id) }

// withPoller reads jobs through p instead of a genai client.
func withPoller(p poller) Option { return func(c *config) { c.poller = p } }

// genAIPoller is the poller New makes of client.
func genAIPoller(client *genai.Client) poller { return &genaiPoller{client: client} }

// withClock sets the clock read for retention and poll schedules.
func withClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// withAfterFunc sets how the poll scheduler arms its one timer, like
// time.AfterFunc on the clock of withClock.
func withAfterFunc(afterFunc func(d time.Duration, f func()) (stop func() bool)) Option {
	return func(c *config) { c.afterFunc = afterFunc }
}

// withRetention bounds the in-memory store's events.
func withRetention(ttl time.Duration, max int) Option {
	return func(c *config) { c.ttl, c.maxStored = ttl, max }
}

// withPollJitter sets the random spread of each poll wait.
func withPollJitter(frac float64) Option { return func(c *config) { c.jitter = frac } }

// withJitterSeed sets the seed of the poll jitter, so that a run repeats.
func withJitterSeed(seed uint64) Option { return func(c *config) { c.seed = seed } }

// withoutSweeps turns the sweeps of the batch listing off, for the tests
// that follow one job's own reads timer by timer.
func withoutSweeps() Option { return func(c *config) { c.noSweeps = true } }

// withPollConcurrency bounds the reads in flight at once.
func withPollConcurrency(n int) Option { return func(c *config) { c.concurrency = n } }

// errPending is what peek returns for a Future not resolved yet.
var errPending = errors.New("dispatch test: result not ready")

// peek is Result without waiting.
func peek(f *Future) (*webhook.Event, error) {
	select {
	case <-f.done:
		return f.Result()
	default:
		return nil, errPending
	}
}

// waitFuture is Wait for a Future already registered.
func waitFuture(ctx context.Context, d *Dispatcher, f *Future) (*webhook.Event, error) {
	select {
	case <-f.done:
	case <-ctx.Done():
		d.stop(f, ctx.Err())
		<-f.done
	}
	return f.Result()
}

// backoff is the wait after the read numbered tries (from 0) of a batch.
func (d *Dispatcher) backoff(tries uint8) time.Duration {
	return d.scheduleOf("batches/x").backoff(tries, d.cfg.jitter)
}

// readsDone waits until no read is in flight in d: a wait that starts
// while one is ending joins it (one read per job), which a test counting
// reads on a fake clock must not race with. The deadline is a failure
// guard.
func readsDone(t *testing.T, d *Dispatcher) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); runtime.Gosched() {
		d.mu.Lock()
		n := len(d.reading)
		d.mu.Unlock()
		if n == 0 {
			return
		}
	}
	t.Fatal("a read still in flight after 10 s")
}
