package dispatch

import (
	"context"
	"sync"
	"time"

	"github.com/genaihook/genaihook/webhook"
)

// Store keeps what must outlive a single Deliver or Wait: events that
// arrived before anyone waited for them, requires_action events already
// consumed, and the jobs this receiver created. The default is in memory,
// bounded by WithRetention; a store shared by several replicas makes a Wait
// on one replica see an event delivered to another.
//
// Keys are opaque strings made by the Dispatcher. A Store must be safe for
// concurrent use. Errors are returned to the caller: Deliver passes them on
// (so the webhook handler answers 5xx and Gemini retries), Binding too,
// and a Watch that cannot read the store logs the error and goes on waiting.
type Store interface {
	// Save offers ev as key's event. It keeps ev, and reports true, only if
	// ev supersedes the event key already holds and the event last consumed
	// under key (see Supersedes); otherwise it changes nothing and reports
	// false, which is how duplicates and stale events are recognised.
	Save(ctx context.Context, key string, ev *webhook.Event) (bool, error)
	// Load returns the event key holds, or nil when it has none (never
	// saved, expired, evicted or consumed).
	Load(ctx context.Context, key string) (*webhook.Event, error)
	// Consume marks ev as used up under key: Load stops returning it, and
	// Save refuses any event that does not supersede it.
	Consume(ctx context.Context, key string, ev *webhook.Event) error
	// Track remembers that this receiver created the job behind key, with
	// target the key of the job id that key is an alias of ("" for none).
	Track(ctx context.Context, key, target string) error
	// Tracked reports whether key was tracked and is still remembered, and
	// its target.
	Tracked(ctx context.Context, key string) (target string, ok bool, err error)
}

// Broadcaster is implemented by a Store shared by several replicas, so
// that a wait pending on one replica resolves from an event delivered to
// another. New calls Subscribe once; the store then calls wake (from any
// goroutine, serially or not) for every event another replica's Save
// accepted, with the key it was saved under. Close calls the returned
// cancel, after which wake must not be called.
type Broadcaster interface {
	Subscribe(wake func(key string, ev *webhook.Event)) (cancel func())
}

// Supersedes reports whether event a replaces event b as the latest news
// about a job: a is newer, or, at the same timestamp (Gemini's are often
// to the second), a ends the job while b only asked for action, or both
// ask for action but are different deliveries (distinct webhook ids). A
// duplicate delivery of b never supersedes b. Any event supersedes nil.
func Supersedes(a, b *webhook.Event) bool {
	if b == nil {
		return true
	}
	if !a.Timestamp.Equal(b.Timestamp) {
		return a.Timestamp.After(b.Timestamp)
	}
	ao, bo := outcomeOf(a), outcomeOf(b)
	if bo == webhook.OutcomeNeedsAction && ao != webhook.OutcomeNeedsAction {
		return true
	}
	return ao == webhook.OutcomeNeedsAction && bo == webhook.OutcomeNeedsAction &&
		a.WebhookID != "" && b.WebhookID != "" && a.WebhookID != b.WebhookID
}

// Defaults of the in-memory store, changed with WithRetention.
const (
	// DefaultRetention is how long an event nobody has waited for yet is
	// kept: Gemini itself retries a delivery for 24 hours, so an app that
	// waits later than that cannot count on the event anyway, and the
	// poller covers it.
	DefaultRetention = 24 * time.Hour
	// DefaultMaxStored bounds the entries of the in-memory store (events,
	// consumed marks, tracked jobs), the oldest going first. Events are a
	// few hundred bytes, so this caps the store at a few megabytes.
	DefaultMaxStored = 10000
	// TrackRetention is how long Track remembers a job: a batch may run 48
	// hours before it expires, and its event may be retried for 24 more.
	TrackRetention = 72 * time.Hour
)

// memoryStore is the default Store: a map with a FIFO of entries in order
// of creation, evicted when expired or when the map exceeds max.
type memoryStore struct {
	now func() time.Time
	ttl time.Duration
	max int

	mu      sync.Mutex
	entries map[string]*memEntry
	fifo    []*memEntry
	head    int // fifo[head:] is live
}

type memEntry struct {
	key       string
	ev        *webhook.Event // current event, nil if none
	consumed  *webhook.Event // last consumed event
	tracked   bool
	target    string
	evExpires time.Time
	expires   time.Time // the entry goes after this
}

func newMemoryStore(now func() time.Time, ttl time.Duration, max int) *memoryStore {
	return &memoryStore{now: now, ttl: ttl, max: max, entries: make(map[string]*memEntry)}
}

func (s *memoryStore) Save(_ context.Context, key string, ev *webhook.Event) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	e := s.entryLocked(key, now, true)
	cur := e.ev
	if cur != nil && now.After(e.evExpires) {
		cur = nil
	}
	if !Supersedes(ev, cur) || (e.consumed != nil && !Supersedes(ev, e.consumed)) {
		return false, nil
	}
	e.ev = ev
	e.evExpires = now.Add(s.ttl)
	e.expires = laterOf(e.expires, e.evExpires)
	return true, nil
}

func (s *memoryStore) Load(_ context.Context, key string) (*webhook.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	e := s.entryLocked(key, now, false)
	if e == nil || e.ev == nil || now.After(e.evExpires) {
		return nil, nil
	}
	return e.ev, nil
}

func (s *memoryStore) Consume(_ context.Context, key string, ev *webhook.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	e := s.entryLocked(key, now, true)
	if Supersedes(ev, e.consumed) {
		e.consumed = ev
	}
	if e.ev != nil && !Supersedes(e.ev, e.consumed) {
		e.ev = nil
	}
	e.expires = laterOf(e.expires, now.Add(s.ttl))
	return nil
}

func (s *memoryStore) Track(_ context.Context, key, target string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	e := s.entryLocked(key, now, true)
	e.tracked = true
	if target != "" {
		e.target = target
	}
	e.expires = laterOf(e.expires, now.Add(max(s.ttl, TrackRetention)))
	return nil
}

func (s *memoryStore) Tracked(_ context.Context, key string) (string, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entryLocked(key, s.now(), false)
	if e == nil || !e.tracked {
		return "", false, nil
	}
	return e.target, true, nil
}

// entryLocked returns key's live entry, creating it when create is set,
// after evicting what has expired or overflows.
func (s *memoryStore) entryLocked(key string, now time.Time, create bool) *memEntry {
	e := s.entries[key]
	if e != nil && now.After(e.expires) {
		delete(s.entries, key)
		e = nil
	}
	if e == nil && create {
		e = &memEntry{key: key, expires: now}
		s.entries[key] = e
		s.fifo = append(s.fifo, e)
	}
	s.evictLocked(now)
	return e
}

func (s *memoryStore) evictLocked(now time.Time) {
	for s.head < len(s.fifo) {
		e := s.fifo[s.head]
		if s.entries[e.key] == e {
			if !now.After(e.expires) && len(s.entries) <= s.max {
				break
			}
			delete(s.entries, e.key)
		}
		s.fifo[s.head] = nil
		s.head++
	}
	if s.head > 64 && s.head*2 > len(s.fifo) {
		n := copy(s.fifo, s.fifo[s.head:])
		clear(s.fifo[n:])
		s.fifo = s.fifo[:n]
		s.head = 0
	}
}

// len reports the live entries, for tests.
func (s *memoryStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.entries)
}

func laterOf(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
