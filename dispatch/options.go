package dispatch

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/genaihook/genaihook/internal/httpsurl"
	"github.com/genaihook/genaihook/webhook"
)

// Defaults of the fallback poll schedule, changed with WithPollSchedule and
// WithPollJitter.
const (
	// DefaultQuietPeriod is how long a batch or an interaction is left
	// alone before its first poll. Gemini pushes an event within seconds of the state change, so a
	// job that finishes within this period resolves from its webhook and is
	// never polled; polling sooner would only duplicate the push.
	DefaultQuietPeriod = 60 * time.Second
	// DefaultPollInterval is the wait after the first poll of a batch or an
	// interaction; it doubles
	// after each poll that finds the job still running.
	DefaultPollInterval = 30 * time.Second
	// DefaultMaxPollInterval caps the doubling. Jobs of this kind run for
	// minutes to hours, so a job whose webhook is lost is noticed within 10
	// minutes of its end, and an hour of running costs about ten calls
	// where a 10 s loop costs 360.
	DefaultMaxPollInterval = 10 * time.Minute
	// DefaultPollJitter spreads each wait by ±20%, so that jobs started
	// together do not poll together.
	DefaultPollJitter = 0.2
	// DefaultPollTimeout bounds one Poller.Poll call.
	DefaultPollTimeout = 30 * time.Second
	// DefaultPollConcurrency bounds the polls in flight at once.
	DefaultPollConcurrency = 4
)

// Option configures a Dispatcher; pass options to New.
type Option func(*config)

type config struct {
	poller        Poller
	pollerSet     bool
	scheduleSet   bool // WithPollSchedule: one schedule for every kind of job
	now           func() time.Time
	afterFunc     func(time.Duration, func()) (stop func() bool)
	logger        *slog.Logger
	ttl           time.Duration
	maxStored     int
	store         Store
	binder        *webhook.Binder
	binderSet     bool
	webhookURL    string
	webhookURLSet bool
	quiet         time.Duration
	interval      time.Duration
	maxInterval   time.Duration
	jitter        float64
	pollTimeout   time.Duration
	concurrency   int

	// notFound is poll scheduler state, not configuration: the keys whose
	// last polls found no job (see notFoundLocked). Guarded by the
	// Dispatcher's mu; allocated on first use.
	notFound map[string]notFoundRun
}

func defaultConfig() config {
	return config{
		now: time.Now,
		afterFunc: func(d time.Duration, f func()) func() bool {
			return time.AfterFunc(d, f).Stop
		},
		logger:      slog.Default(),
		ttl:         DefaultRetention,
		maxStored:   DefaultMaxStored,
		quiet:       DefaultQuietPeriod,
		interval:    DefaultPollInterval,
		maxInterval: DefaultMaxPollInterval,
		jitter:      DefaultPollJitter,
		pollTimeout: DefaultPollTimeout,
		concurrency: DefaultPollConcurrency,
	}
}

// WithPoller turns on the fallback poller: a job still pending after the
// quiet period is polled through p, then on a backoff schedule, until it is
// terminal or nobody waits for it. Without it, waits resolve only from
// delivered events. See GenAIPoller. New returns an error for a nil p, or
// a GenAIPoller of a nil client.
func WithPoller(p Poller) Option {
	return func(c *config) { c.poller, c.pollerSet = p, true }
}

// WithClock sets the clock read for retention and poll schedules; nil
// means time.Now. Tests that also want the poll timers on their clock add
// WithAfterFunc.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.now = now
		}
	}
}

// WithAfterFunc sets how the poll scheduler arms its one timer: afterFunc
// must call f once, in its own goroutine, d after it was called on the
// clock of WithClock, unless the returned stop is called first (stop
// reports whether it prevented the call), like time.AfterFunc. nil means
// time.AfterFunc. A fake clock implementing it lets tests advance time
// without sleeping.
func WithAfterFunc(afterFunc func(d time.Duration, f func()) (stop func() bool)) Option {
	return func(c *config) {
		if afterFunc != nil {
			c.afterFunc = afterFunc
		}
	}
}

// WithLogger sets where poll errors and store errors are logged (deliveries
// of unknown types at debug level); nil discards. The default is
// slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			l = slog.New(slog.DiscardHandler)
		}
		c.logger = l
	}
}

// WithRetention bounds the in-memory store: an event that arrives before
// anyone waits for it is kept for ttl (0: DefaultRetention), and at most
// max events are kept (0: DefaultMaxStored), expired ones evicted first,
// then the oldest. Tracked jobs and consumed pauses are bounded apart (see
// DefaultMaxStored), so event traffic never evicts them. It has no effect
// with WithStore.
func WithRetention(ttl time.Duration, max int) Option {
	return func(c *config) {
		if ttl > 0 {
			c.ttl = ttl
		}
		if max > 0 {
			c.maxStored = max
		}
	}
}

// WithStore replaces the in-memory store, e.g. with one shared by replicas.
func WithStore(s Store) Option { return func(c *config) { c.store = s } }

// WithBinder sets the Binder whose tokens the webhook_config builders put
// in user_metadata and Binding requires of dynamic deliveries. Without it
// New makes one with a random secret, which binds every job this process
// creates; give every replica of a receiver the same Binder, made from a
// secret they share, and keep that secret across restarts when jobs outlive
// the process. New returns an error for a nil b.
func WithBinder(b *webhook.Binder) Option {
	return func(c *config) { c.binder, c.binderSet = b, true }
}

// WithWebhookURL sets the URL the webhook_config builders ask Gemini to
// deliver to: this receiver's public address, path included, e.g.
// "https://example.com/gemini/webhook". New returns an error unless it is
// an absolute https URL (http only to a loopback host, for tests), so that
// a job never silently goes without its webhook.
func WithWebhookURL(uri string) Option {
	return func(c *config) { c.webhookURL, c.webhookURLSet = uri, true }
}

// WithPollSchedule sets the fallback poll schedule for every kind of job
// (without it, video generations have a shorter schedule of their own, see
// the package doc): the first poll comes quiet after the wait began, the
// next interval after that, each later one twice the previous wait, capped
// at maxInterval. Zero values keep the defaults (DefaultQuietPeriod,
// DefaultPollInterval, DefaultMaxPollInterval).
func WithPollSchedule(quiet, interval, maxInterval time.Duration) Option {
	return func(c *config) {
		c.scheduleSet = true
		if quiet > 0 {
			c.quiet = quiet
		}
		if interval > 0 {
			c.interval = interval
		}
		if maxInterval > 0 {
			c.maxInterval = maxInterval
		}
	}
}

// WithPollJitter sets the random spread of each poll wait, as a fraction
// (0.2 is ±20%); 0 makes the schedule exact. Values outside [0, 1) are
// clamped.
func WithPollJitter(frac float64) Option {
	return func(c *config) { c.jitter = min(max(frac, 0), 0.99) }
}

// WithPollTimeout bounds each Poll call (0: DefaultPollTimeout).
func WithPollTimeout(d time.Duration) Option {
	return func(c *config) {
		if d > 0 {
			c.pollTimeout = d
		}
	}
}

// WithPollConcurrency bounds the polls in flight at once (0:
// DefaultPollConcurrency).
func WithPollConcurrency(n int) Option {
	return func(c *config) {
		if n > 0 {
			c.concurrency = n
		}
	}
}

// check reports the first option that cannot work, with the fix.
func (c *config) check() error {
	if c.pollerSet {
		if c.poller == nil {
			return errors.New("dispatch: WithPoller: nil Poller; pass dispatch.GenAIPoller(client), or leave the option out to resolve waits from webhooks only")
		}
		if p, ok := c.poller.(*genaiPoller); ok {
			if p.client == nil {
				return errors.New("dispatch: GenAIPoller: nil *genai.Client; pass the client made by genai.NewClient")
			}
			if p.client.Batches == nil || p.client.Operations == nil || p.client.Interactions == nil {
				return errors.New("dispatch: GenAIPoller: the *genai.Client was not made by genai.NewClient (its services are nil); pass the client genai.NewClient returned")
			}
		}
	}
	if c.binderSet && c.binder == nil {
		return errors.New("dispatch: WithBinder: nil Binder; make one with webhook.NewBinder(secret), or leave the option out for a random one")
	}
	if c.webhookURLSet {
		if err := httpsurl.Check(c.webhookURL); err != nil {
			return fmt.Errorf("dispatch: WithWebhookURL: %w (give the public URL Gemini can reach, e.g. https://example.com/gemini/webhook)", err)
		}
	}
	return nil
}
