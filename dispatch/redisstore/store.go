package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/genaihook/genaihook/dispatch"
	"github.com/genaihook/genaihook/webhook"
)

// Defaults of Config.
const (
	// DefaultPrefix starts every key and the channel when Config.Prefix is
	// empty.
	DefaultPrefix = "genaihook:"
	// DefaultRetention is how long an event nobody consumed is kept when
	// Config.Retention is 0: the 24 hours during which Gemini retries a
	// delivery, as the in-memory store does.
	DefaultRetention = 24 * time.Hour
	// DefaultMaxEventBytes bounds an encoded event: 1 MiB. An event whose
	// body is within the webhook Handler's default cap (64 KiB) encodes to
	// under 300 KiB (the body in base64, and its user_metadata decoded and
	// encoded again, where each invalid UTF-8 byte becomes three).
	DefaultMaxEventBytes = 1 << 20
	// DefaultDedupLease is how long a replica that runs the callback of a
	// delivery holds its webhook-id before another replica may take it
	// over: twenty times the webhook Handler's default time budget, so
	// that only a replica that died mid-callback loses its hold.
	DefaultDedupLease = time.Minute
	// markRetention is how long tracked jobs and consumed marks are kept
	// at least, as dispatch.Store requires.
	markRetention = 72 * time.Hour
	// healthInterval is how long the subscription waits for a message
	// before it pings the server, and then for the answer before it
	// reconnects.
	healthInterval = 5 * time.Second
)

// Errors returned by Store.
var (
	// ErrTooLarge is returned, wrapped, by Save for an event that encodes
	// to more than Config.MaxEventBytes; nothing is stored, and the
	// delivery is answered 5xx, as for any store error. Raise the bound
	// with the Handler's body cap (webhook.WithMaxBodyBytes).
	ErrTooLarge = errors.New("redisstore: event too large")
	// ErrCorrupt is returned, wrapped, by Load for a stored value that does
	// not decode: written by something else under the prefix, or by a
	// newer version of this package.
	ErrCorrupt = errors.New("redisstore: stored value does not decode")
)

// Config configures New. The zero value is usable.
type Config struct {
	// Prefix starts every key and the channel, so that several receivers
	// (or several environments) share one Redis. "" means DefaultPrefix.
	// A prefix containing "{" puts all keys in one Cluster slot.
	Prefix string
	// Retention is how long an event nobody consumed is kept after the
	// Save that kept it. 0 means DefaultRetention (24 hours). Tracked jobs
	// and consumed marks are kept for 72 hours (what dispatch.Store asks:
	// a batch may run 48 hours and its event be retried for 24 more), or
	// Retention if longer, after the last Track or Consume.
	Retention time.Duration
	// MaxEventBytes bounds an encoded event; past it Save returns
	// ErrTooLarge. 0 means DefaultMaxEventBytes.
	MaxEventBytes int
	// DedupWindow is how long a processed webhook-id is remembered. 0
	// means webhook.DefaultDedupWindow (25 hours).
	DedupWindow time.Duration
	// DedupLease is how long a replica running a delivery's callback holds
	// its webhook-id (see Begin). It must exceed the webhook Handler's time
	// budget. 0 means DefaultDedupLease.
	DedupLease time.Duration
	// Now is the clock that decides whether an event, a tracked job or a
	// consumed mark has expired; nil means time.Now. Redis also drops each
	// key on its own clock, the same duration after it was written, so an
	// entry goes as soon as either clock says it expired. Replicas whose
	// clocks disagree see entries expire that much apart. Processed
	// webhook-ids expire on Redis's clock only.
	Now func() time.Time
	// Logger receives the subscription's warnings (lost connection,
	// undecodable message) and failed releases of webhook-ids. nil means
	// slog.Default().
	Logger *slog.Logger
}

// Store is a dispatch.Store and a webhook.Deduplicator on Redis. It is
// safe for concurrent use; it starts a goroutine only in Subscribe, which
// its cancel stops.
type Store struct {
	client   redis.UniversalClient
	prefix   string
	channel  string
	ttl      time.Duration
	markTTL  time.Duration
	maxBytes int
	window   time.Duration
	lease    time.Duration
	now      func() time.Time
	log      *slog.Logger
	// reread is signalled when a Load failed: the Dispatcher may have
	// missed an event then, and Subscribe asks it to read again once
	// reads work.
	reread chan struct{}
}

var (
	_ dispatch.Store       = (*Store)(nil)
	_ webhook.Deduplicator = (*Store)(nil)
)

// New returns a Store on client, which may be a *redis.Client, a
// *redis.ClusterClient or any other redis.UniversalClient; the Store never
// closes it. New sends nothing to the server: a Redis that cannot be
// reached shows in the errors of the Store's methods.
//
// New returns an error if client is nil (or a nil pointer), if a duration or MaxEventBytes in
// cfg is negative, or if DedupLease is not shorter than DedupWindow.
func New(client redis.UniversalClient, cfg Config) (*Store, error) {
	if v := reflect.ValueOf(client); client == nil || v.Kind() == reflect.Pointer && v.IsNil() {
		return nil, errors.New("redisstore: New: nil client")
	}
	if cfg.Retention < 0 || cfg.DedupWindow < 0 || cfg.DedupLease < 0 || cfg.MaxEventBytes < 0 {
		return nil, errors.New("redisstore: New: negative Retention, DedupWindow, DedupLease or MaxEventBytes")
	}
	s := &Store{
		client:   client,
		prefix:   orDefault(cfg.Prefix, DefaultPrefix),
		ttl:      orDefault(cfg.Retention, DefaultRetention),
		maxBytes: orDefault(cfg.MaxEventBytes, DefaultMaxEventBytes),
		window:   orDefault(cfg.DedupWindow, webhook.DefaultDedupWindow),
		lease:    orDefault(cfg.DedupLease, DefaultDedupLease),
		now:      cfg.Now,
		log:      cfg.Logger,
	}
	if s.lease >= s.window {
		return nil, fmt.Errorf("redisstore: New: DedupLease %v is not shorter than DedupWindow %v", s.lease, s.window)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.markTTL = max(s.ttl, markRetention)
	s.channel = s.prefix + "events"
	s.reread = make(chan struct{}, 1)
	return s, nil
}

// orDefault returns v, or def if v is zero.
func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// tag returns s percent-encoded so that it can stand between the braces
// of a hash tag: without braces, and never empty.
func tag(s string) string {
	if s == "" {
		return "%"
	}
	if !strings.ContainsAny(s, "{}%") {
		return s
	}
	r := strings.NewReplacer("%", "%25", "{", "%7B", "}", "%7D")
	return r.Replace(s)
}

// keys returns the Redis keys of job key k: its event, its consumed mark
// and its tracking mark.
func (s *Store) keys(k string) (ev, consumed, tracked string) {
	base := s.prefix + "{" + tag(k) + "}:"
	return base + "e", base + "c", base + "t"
}

// nonce returns a value no other call will: the scripts tell by it a
// resent command from another call.
func nonce() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// ms returns t as Unix milliseconds, the unit of stored expiries.
func ms(t time.Time) int64 { return t.UnixMilli() }

// pexpire returns d in milliseconds, at least 1, for PEXPIRE and SET PX.
func pexpire(d time.Duration) int64 { return max(d.Milliseconds(), 1) }

// order is what ordering needs of an event, as the scripts read it.
type order struct {
	sec, nsec string // of the timestamp
	class     string // "2" ends the job, "1" asks for action, "0" other
	webhookID string
}

func orderOf(ev *webhook.Event) order {
	o := order{
		sec:       strconv.FormatInt(ev.Timestamp.Unix(), 10),
		nsec:      strconv.Itoa(ev.Timestamp.Nanosecond()),
		class:     "0",
		webhookID: ev.WebhookID,
	}
	switch out := ev.Type.Outcome(); {
	case out.Terminal():
		o.class = "2"
	case out == webhook.OutcomeNeedsAction:
		o.class = "1"
	}
	return o
}

// Save implements dispatch.Store. It stores ev, with the event's expiry,
// and publishes it to the other replicas' subscriptions, in one script
// that reads what the key holds first. Besides Redis's errors it returns
// ErrTooLarge (wrapped) for an event over Config.MaxEventBytes.
func (s *Store) Save(ctx context.Context, key string, ev *webhook.Event) (bool, error) {
	blob, err := encode(ev, s.maxBytes)
	if err != nil {
		return false, err
	}
	evKey, cKey, _ := s.keys(key)
	now := s.now()
	o := orderOf(ev)
	msg := message(key, blob)
	r, err := saveScript.Run(ctx, s.client, []string{evKey, cKey},
		ms(now), ms(now.Add(s.ttl)), pexpire(s.ttl),
		o.sec, o.nsec, o.class, o.webhookID, nonce(), blob, s.channel, msg).Int()
	if err != nil {
		return false, fmt.Errorf("redisstore: save %q: %w", key, err)
	}
	return r == 1, nil
}

// Load implements dispatch.Store. Besides Redis's errors it returns
// ErrCorrupt (wrapped) for a value it cannot decode. After an error from
// Redis, Subscribe's wake("", nil) follows once reads work again, so that
// a wait whose lookup failed is looked up again.
func (s *Store) Load(ctx context.Context, key string) (*webhook.Event, error) {
	evKey, _, _ := s.keys(key)
	vals, err := s.client.HMGet(ctx, evKey, "x", "b").Result()
	if err != nil {
		if ctx.Err() == nil {
			select {
			case s.reread <- struct{}{}:
			default:
			}
		}
		return nil, fmt.Errorf("redisstore: load %q: %w", key, err)
	}
	exp, blob := vals[0], vals[1]
	if exp == nil || blob == nil {
		return nil, nil
	}
	if !alive(exp, s.now()) {
		return nil, nil
	}
	b, ok := blob.(string)
	if !ok {
		return nil, fmt.Errorf("redisstore: load %q: %w", key, ErrCorrupt)
	}
	ev, err := decode([]byte(b))
	if err != nil {
		return nil, fmt.Errorf("redisstore: load %q: %w", key, err)
	}
	return ev, nil
}

// alive reports whether a stored expiry (Unix milliseconds, as a string)
// is not before now; an unreadable one counts as expired.
func alive(exp any, now time.Time) bool {
	str, _ := exp.(string)
	x, err := strconv.ParseInt(str, 10, 64)
	return err == nil && ms(now) <= x
}

// Consume implements dispatch.Store, in one script: of two replicas
// consuming one event at once, one gets true. It returns Redis's errors.
func (s *Store) Consume(ctx context.Context, key string, ev *webhook.Event) (bool, error) {
	evKey, cKey, _ := s.keys(key)
	now := s.now()
	o := orderOf(ev)
	r, err := consumeScript.Run(ctx, s.client, []string{cKey, evKey},
		ms(now), ms(now.Add(s.markTTL)), pexpire(s.markTTL),
		o.sec, o.nsec, o.class, o.webhookID, nonce()).Int()
	if err != nil {
		return false, fmt.Errorf("redisstore: consume %q: %w", key, err)
	}
	return r == 1, nil
}

// Track implements dispatch.Store. It returns Redis's errors.
func (s *Store) Track(ctx context.Context, key string) error {
	_, _, tKey := s.keys(key)
	exp := ms(s.now().Add(s.markTTL))
	if err := s.client.Set(ctx, tKey, exp, time.Duration(pexpire(s.markTTL))*time.Millisecond).Err(); err != nil {
		return fmt.Errorf("redisstore: track %q: %w", key, err)
	}
	return nil
}

// Tracked implements dispatch.Store. It returns Redis's errors.
func (s *Store) Tracked(ctx context.Context, key string) (bool, error) {
	_, _, tKey := s.keys(key)
	v, err := s.client.Get(ctx, tKey).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("redisstore: tracked %q: %w", key, err)
	}
	return alive(v, s.now()), nil
}
