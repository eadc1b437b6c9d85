package dispatch

import (
	"errors"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/genaihook/genaihook/webhook"
)

// The poll schedule of interactions, and of batches when there is no batch
// listing to sweep (see batchSweepInterval), unless WithPollSchedule
// changes it.
const (
	// defaultQuietPeriod is how long a job is left alone before its first
	// read. Gemini pushes an event within seconds of the state change, so a
	// job that ends within this period is read once, to confirm its event.
	defaultQuietPeriod = 60 * time.Second
	// defaultPollInterval is the wait after the first read; it doubles
	// after each read that finds the job still running.
	defaultPollInterval = 30 * time.Second
	// defaultMaxPollInterval caps the doubling: a job whose event is lost
	// is noticed within 10 minutes of its end, and an hour of running costs
	// about ten reads where a 10 s loop costs 360.
	defaultMaxPollInterval = 10 * time.Minute
	// defaultPollJitter spreads each wait by ±20%, so that jobs started
	// together are not read together.
	defaultPollJitter = 0.2
	// defaultPollTimeout bounds one read.
	defaultPollTimeout = 30 * time.Second
	// defaultPollConcurrency bounds the reads in flight at once.
	defaultPollConcurrency = 4
)

// Bounds of the in-memory store.
const (
	// defaultRetention is how long an event nobody has waited for yet is
	// kept: Gemini itself retries a delivery for 24 hours.
	defaultRetention = 24 * time.Hour
	// defaultMaxStored bounds the events kept: past it, expired events go
	// first, then the oldest. Events are a few hundred bytes.
	defaultMaxStored = 10_000
	// markRetention is how long a consumed requires_action (and a tracked
	// job) is remembered after its last use: a batch may run 48 hours
	// before it expires, and its event may be retried for 24 more.
	markRetention = 72 * time.Hour
	// defaultMaxMarks bounds the consumed requires_action events (and
	// tracked jobs) apart from the events, so that no burst of deliveries
	// makes the store forget them; about 120 bytes each plus the key.
	defaultMaxMarks = 100_000
)

// Option configures a Dispatcher; pass options to New.
type Option func(*config)

type config struct {
	poller      poller
	now         func() time.Time
	afterFunc   func(time.Duration, func()) (stop func() bool)
	logger      *slog.Logger
	ttl         time.Duration
	maxStored   int
	store       Store
	storeSet    bool
	verifier    webhook.Verifier
	verifierSet bool
	binder      *webhook.Binder
	binderSet   bool
	quiet       time.Duration // 0: the kind's own, see scheduleOf
	interval    time.Duration
	maxInterval time.Duration
	jitter      float64
	pollTimeout time.Duration
	concurrency int
	seed        uint64 // of the jitter, see saltOf
	noSweeps    bool   // no reconciliation through the batch listing, for tests
}

func defaultConfig() config {
	return config{
		now: time.Now,
		afterFunc: func(d time.Duration, f func()) func() bool {
			return time.AfterFunc(d, f).Stop
		},
		logger:      slog.Default(),
		ttl:         defaultRetention,
		maxStored:   defaultMaxStored,
		jitter:      defaultPollJitter,
		pollTimeout: defaultPollTimeout,
		concurrency: defaultPollConcurrency,
		seed:        rand.Uint64(),
	}
}

// WithStore replaces the in-memory store with s, e.g. one shared by the
// replicas of a receiver, so that a Wait on one replica resolves from an
// event delivered to another, and survives a restart. The in-memory store
// keeps an event nobody awaits yet for 24 hours, at most 10,000 of them,
// and the requires_action events already returned for 72 hours, at most
// 100,000, bounded apart so that event traffic never evicts them. The
// bounds are the store's, though it is split into up to 64 shards by a hash
// of the job's id (so that deliveries for different jobs seldom wait for
// one another), and count expired entries until they are dropped. A new
// entry drops its own shard's expired entries; if the store is still at
// its bound, the expired entries of the other shards; and only if it is
// still at its bound, one live entry: the oldest of its own shard, or of
// another shard when its own holds none. So no live entry goes while the
// store holds fewer live entries than its bound. New returns an error for
// a nil s.
func WithStore(s Store) Option { return func(c *config) { c.store, c.storeSet = s, true } }

// WithBinder sets the Binder whose tokens InteractionWebhookConfig puts in
// user_metadata and Handler accepts. Without it New makes one with a random
// secret, which binds the interactions this process creates; give every
// replica of a receiver the same Binder, made from a secret they share, and
// keep that secret across restarts when interactions outlive the process.
// New returns an error for a nil b.
func WithBinder(b *webhook.Binder) Option {
	return func(c *config) { c.binder, c.binderSet = b, true }
}

// WithLogger sets where read errors, store errors and refused deliveries'
// reasons are logged; nil discards. The default is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			l = slog.New(slog.DiscardHandler)
		}
		c.logger = l
	}
}

// WithPollSchedule sets the schedule of the reads that end a wait whose
// event does not come, for every kind of job: the first read comes quiet
// after the wait began, the next interval after that, each later one twice
// the previous wait, capped at maxInterval; each wait is spread by ±20%,
// within the cap. A zero value keeps each kind's default (see the package
// doc: 60 s, 30 s and 10 minutes for interactions; for videos 30 s, then
// 30 s for six minutes; for batches, which sweeps of the batch listing
// reconcile every 4 minutes, 8 minutes, 8 minutes and 10 minutes). The
// sweeps go on with any schedule; a sweep that sees a batch running puts
// its next own read off to quiet from then. Without a genai client there
// are no reads, and quiet is how long a wait that heard nothing goes
// before it is logged (60 s by default).
func WithPollSchedule(quiet, interval, maxInterval time.Duration) Option {
	return func(c *config) {
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

// WithVerifier sets how the Handler verifies deliveries. The default
// verifies dynamic webhooks with Google's keys, as
// verify.New(verify.Config{JWKSURL: verify.GeminiJWKSURL}) does. Give a
// *verify.Verifier of your own to accept static webhooks too (with
// verify.Config.Secrets, adding JWKSURL to keep dynamic ones), to accept the
// JWT form (verify.Config.Audience), or, in tests, to trust a fake's keys.
// New returns an error for a nil v.
func WithVerifier(v webhook.Verifier) Option {
	return func(c *config) { c.verifier, c.verifierSet = v, true }
}

// check reports the first option that cannot work, with the fix.
func (c *config) check() error {
	if c.verifierSet && c.verifier == nil {
		return errors.New("dispatch: WithVerifier: nil Verifier; make one with verify.New, or leave the option out to verify with Google's keys")
	}
	if c.binderSet && c.binder == nil {
		return errors.New("dispatch: WithBinder: nil Binder; make one with webhook.NewBinder(secret), or leave the option out for a random one")
	}
	if c.storeSet && c.store == nil {
		return errors.New("dispatch: WithStore: nil Store; leave the option out for the in-memory one")
	}
	return nil
}
