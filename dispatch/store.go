package dispatch

import (
	"context"
	"hash/maphash"
	"iter"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/genaihook/genaihook/webhook"
)

// Store keeps what must outlive a single Deliver or Wait: events that
// arrived before anyone waited for them, requires_action events already
// consumed, and the jobs a replica awaits. The default is in memory and
// bounded (see New); a store shared by several replicas makes a Wait on one
// replica see an event delivered to another, and lets any replica's handler
// accept the events of a job another replica awaits.
//
// Keys are opaque strings made by the Dispatcher (a job's family and its
// server-assigned id, at most a few hundred bytes). A Store must be safe for
// concurrent use. Errors are returned to the caller: Deliver passes them on
// (so the webhook handler answers 5xx and Gemini retries), the binding
// check too, and a Wait that cannot read the store logs the error and goes
// on waiting.
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
	// Save refuses any event that does not supersede it. It reports whether
	// this call used ev up, that is whether ev supersedes the event last
	// consumed under key; of two calls with the same ev, at most one may
	// report true, so that one pause goes to one wait. The mark is kept for
	// at least 72 hours, whatever other traffic the store sees.
	Consume(ctx context.Context, key string, ev *webhook.Event) (bool, error)
	// Track remembers, for at least 72 hours after the last call, that a
	// replica awaits the job behind key. A Dispatcher calls it when a wait
	// starts, on every Store but its own in-memory default.
	Track(ctx context.Context, key string) error
	// Tracked reports whether key was tracked and is still remembered.
	Tracked(ctx context.Context, key string) (bool, error)
	// Subscribe is called once, by New. A store shared by several replicas
	// then calls wake (from any goroutine, serially or not) for every event
	// another replica's Save accepted, with the key it was saved under (it
	// may call it for this replica's own saves too: a Save whose answer was
	// lost is then not missed); and
	// wake("", nil), once it serves again, when it may have missed some or
	// failed writes (after a reconnection), so that the Dispatcher, for
	// every pending wait, tracks its job again and reads the store again.
	// Close calls the returned cancel, after which wake must not be called.
	// A store used by one process only returns a cancel that does nothing.
	Subscribe(wake func(key string, ev *webhook.Event)) (cancel func())
}

// Supersedes reports whether event a replaces event b as the latest news
// about a job: a ends the job while b only asked for action (whatever
// their timestamps), or, unless b ends the job while a only asks for
// action, a is newer, or at the same timestamp (Gemini's are often to the
// second) both ask for action but are different deliveries (distinct
// webhook ids). A duplicate delivery of b never supersedes b. Any event
// supersedes nil. Two requires_action events read from the API (see
// Event.Polled) are told apart by the fingerprint of the pause that the
// Dispatcher gives them as WebhookID ("read:" followed by the
// interaction's step count and pending function call ids): a differs from b
// if its fingerprint does, and it is not older.
func Supersedes(a, b *webhook.Event) bool {
	if b == nil {
		return true
	}
	return supersedes(a, b.Timestamp, outcomeOf(b), b.WebhookID)
}

// readPausePrefix starts the WebhookID of a requires_action read from the
// API: a fingerprint of the pause, not a delivery's webhook-id.
const readPausePrefix = "read:"

func isReadPause(webhookID string) bool { return strings.HasPrefix(webhookID, readPausePrefix) }

// supersedes is Supersedes against an event known only by what ordering
// needs of it.
func supersedes(a *webhook.Event, at time.Time, bo webhook.Outcome, webhookID string) bool {
	ao := outcomeOf(a)
	// An event that ends the job is its last news, whatever the clocks say:
	// a pause stamped later (a skewed clock, or a stamp up to the tolerance
	// ahead) must neither hold the end off nor replace it.
	switch {
	case ao.Terminal() && bo == webhook.OutcomeNeedsAction:
		return true
	case ao == webhook.OutcomeNeedsAction && bo.Terminal():
		return false
	}
	if ao == webhook.OutcomeNeedsAction && bo == webhook.OutcomeNeedsAction && isReadPause(a.WebhookID) && isReadPause(webhookID) {
		// Two pauses read from the API: the read's fingerprint tells them
		// apart, whatever their update times (to the second, and moved by
		// changes that are not a new pause).
		return a.WebhookID != webhookID && !a.Timestamp.Before(at)
	}
	if !a.Timestamp.Equal(at) {
		return a.Timestamp.After(at)
	}
	if bo == webhook.OutcomeNeedsAction && ao != webhook.OutcomeNeedsAction {
		return true
	}
	return ao == webhook.OutcomeNeedsAction && bo == webhook.OutcomeNeedsAction &&
		a.WebhookID != "" && webhookID != "" && a.WebhookID != webhookID
}

// memoryStore is the default Store. Keys are spread by a hash over
// shards, each with its own lock, so that deliveries for different jobs
// seldom wait for one another; a key's event and its mark share a shard,
// so that Consume and Save decide under one lock. In each shard, events
// and marks (tracked jobs and consumed events) live in two maps, each with
// a queue of its entries in order of expiry: an entry touched goes to the
// back with a fresh expiry, and one retention per queue keeps the order.
// Events and marks are each bounded store-wide, by a count that a new
// entry reserves room in, and that counts every entry held, expired or
// not, until it is dropped. A write drops the expired entries at the front
// of its shard's queues; then, while the store is full, the expired
// entries of the other shards (one shard lock at a time, and only of the
// shards whose earliest expiry, kept in an atomic, has passed: a store full
// of live entries locks no other shard), and only then the oldest of its
// shard (or, when its shard has none, of another shard). A read changes
// nothing and reads the clock before it locks.
type memoryStore struct {
	now      func() time.Time
	base     time.Time // clock zero: expiries are nanoseconds after it
	ttl      int64     // of events
	markTTL  int64     // of marks
	maxEv    int64
	maxMarks int64
	log      *slog.Logger
	seed     maphash.Seed
	shards   []shard // a power of two of them

	// The counts are written by every new entry: on cache lines of their
	// own, they do not slow the reads of the fields above.
	_        [64]byte
	nEvents  atomic.Int64 // held in all shards
	_        [56]byte
	nMarks   atomic.Int64
	dropped  atomic.Int64 // marks dropped over the bound, not yet logged
	logMu    sync.Mutex
	logged   bool  // whether dropped marks were ever logged; guarded by logMu
	loggedAt int64 // and when last; guarded by logMu
}

// shard is one lock's part of a memoryStore.
type shard struct {
	mu     sync.Mutex
	events map[string]*eventEntry
	spare  *eventEntry // the last entry dropped, for the next new event: a full store saves without allocating
	marks  map[string]*markEntry
	evq    queue
	markq  queue
	_      [64]byte // no false sharing with the next shard's lock
}

// Sharding of the memory store: as many shards as give each at least
// minShardEvents events of the bound on average, a power of two, at most
// maxShards. A small store is one shard, whose oldest event is the
// store's.
const (
	maxShards      = 64
	minShardEvents = 128
)

// eventEntry is a saved event.
type eventEntry struct {
	node
	ev *webhook.Event
}

// markEntry says a key was tracked, or an event under it consumed, or both.
type markEntry struct {
	node
	consumed *consumedMark
	tracked  bool
}

// consumedMark is what Save needs of a consumed event to tell its
// redelivery from news: the event itself may hold a 64 KiB body.
type consumedMark struct {
	at        time.Time
	webhookID string
	outcome   webhook.Outcome
}

func markOf(ev *webhook.Event) consumedMark {
	return consumedMark{at: ev.Timestamp, webhookID: ev.WebhookID, outcome: outcomeOf(ev)}
}

// supersededBy reports whether ev supersedes the consumed event m (any
// event supersedes a nil m).
func (m *consumedMark) supersededBy(ev *webhook.Event) bool {
	return m == nil || supersedes(ev, m.at, m.outcome, m.webhookID)
}

// node links an entry into its queue.
type node struct {
	key        string
	expires    int64 // the entry goes once the clock passes this
	prev, next *node
}

// queue is a list of nodes in order of expiry, the first to expire first.
// It is changed under its shard's lock; first, the expiry of its head
// (math.MaxInt64 when it is empty), may be read without it, by writes to
// other shards that look for expired entries to drop.
type queue struct {
	head, tail *node
	first      atomic.Int64
}

// init makes q empty; a queue must be inited before use.
func (q *queue) init() { q.first.Store(math.MaxInt64) }

// expiredBy reports whether q held, when its shard's lock was last
// released, a node expired by now. It reads no more than an atomic.
func (q *queue) expiredBy(now int64) bool { return now > q.first.Load() }

// push appends x to expire at expires or, if later, with the last node,
// so that the order holds even when clock readings race to the lock.
func (q *queue) push(x *node, expires int64) {
	x.prev, x.next = q.tail, nil
	if q.tail != nil {
		expires = max(expires, q.tail.expires)
		q.tail.next = x
	} else {
		q.head = x
		q.first.Store(expires)
	}
	x.expires = expires
	q.tail = x
}

func (q *queue) remove(x *node) {
	if x.prev != nil {
		x.prev.next = x.next
	} else {
		q.head = x.next
		if x.next != nil {
			q.first.Store(x.next.expires)
		} else {
			q.first.Store(math.MaxInt64)
		}
	}
	if x.next != nil {
		x.next.prev = x.prev
	} else {
		q.tail = x.prev
	}
	x.prev, x.next = nil, nil
}

func newMemoryStore(now func() time.Time, ttl time.Duration, maxEvents int) *memoryStore {
	maxEvents = max(maxEvents, 1)
	n := 1
	for n < maxShards && maxEvents/(2*n) >= minShardEvents {
		n *= 2
	}
	s := &memoryStore{
		now:      now,
		base:     now(),
		ttl:      int64(ttl),
		markTTL:  int64(max(ttl, markRetention)),
		maxEv:    int64(maxEvents),
		maxMarks: int64(max(defaultMaxMarks, maxEvents)),
		log:      slog.Default(),
		seed:     maphash.MakeSeed(),
		shards:   make([]shard, n),
	}
	for i := range s.shards {
		s.shards[i].events = make(map[string]*eventEntry)
		s.shards[i].marks = make(map[string]*markEntry)
		s.shards[i].evq.init()
		s.shards[i].markq.init()
	}
	return s
}

// shardOf returns the shard that holds key's entries.
func (s *memoryStore) shardOf(key string) *shard {
	if len(s.shards) == 1 {
		return &s.shards[0]
	}
	return &s.shards[maphash.String(s.seed, key)&uint64(len(s.shards)-1)]
}

// clock reads the time as nanoseconds after s.base: an expiry then takes
// 8 bytes, not a time.Time's 24, and is monotonic when s.now is time.Now.
func (s *memoryStore) clock() int64 { return int64(s.now().Sub(s.base)) }

func (s *memoryStore) Save(_ context.Context, key string, ev *webhook.Event) (bool, error) {
	now := s.clock()
	sh := s.shardOf(key)
	for {
		sh.mu.Lock()
		saved, full := s.saveLocked(sh, key, ev, now)
		sh.mu.Unlock()
		if !full {
			return saved, nil
		}
		s.evictEvent(sh, now)
	}
}

// saveLocked is Save under sh's lock. It reports full, having changed
// nothing but sh's expired events, when ev is new to the store, the store
// is full, and either another shard holds expired events (to be dropped
// first) or sh holds no event to drop for it.
func (s *memoryStore) saveLocked(sh *shard, key string, ev *webhook.Event, now int64) (saved, full bool) {
	s.expireLocked(sh, now)
	e := sh.events[key]
	var cur *webhook.Event
	if e != nil && now <= e.expires {
		cur = e.ev
	}
	if !Supersedes(ev, cur) {
		return false, false
	}
	if m := sh.marks[key]; m != nil && now <= m.expires && !m.consumed.supersededBy(ev) {
		return false, false
	}
	if e == nil {
		for !reserve(&s.nEvents, s.maxEv) {
			if sh.evq.head == nil || s.expiredElsewhere(sh, false, now) {
				return false, true
			}
			s.dropEventLocked(sh) // first, so that its entry serves the new one
		}
		e = sh.spare
		sh.spare = nil
		if e == nil {
			e = new(eventEntry)
		}
		e.key = key
		sh.events[key] = e
	} else {
		sh.evq.remove(&e.node)
	}
	e.ev = ev
	sh.evq.push(&e.node, now+s.ttl)
	return true, false
}

// reserve counts one more entry in n unless that would exceed max, and
// reports whether it did.
func reserve(n *atomic.Int64, max int64) bool {
	for {
		c := n.Load()
		if c >= max {
			return false
		}
		if n.CompareAndSwap(c, c+1) {
			return true
		}
	}
}

// expiredElsewhere reports whether a shard other than from holds an
// expired mark (if marks) or event (if not), as of its lock's last
// release. It takes no lock.
func (s *memoryStore) expiredElsewhere(from *shard, marks bool, now int64) bool {
	for i := range s.shards {
		sh := &s.shards[i]
		q := &sh.evq
		if marks {
			q = &sh.markq
		}
		if sh != from && q.expiredBy(now) {
			return true
		}
	}
	return false
}

// expireElsewhere drops the expired entries of the shards other than from
// whose mark queue (if marks) or event queue (if not) holds some, one
// shard lock at a time, and reports whether it found any such shard.
func (s *memoryStore) expireElsewhere(from *shard, marks bool, now int64) bool {
	found := false
	for sh := range s.others(from) {
		q := &sh.evq
		if marks {
			q = &sh.markq
		}
		if !q.expiredBy(now) {
			continue
		}
		found = true
		sh.mu.Lock()
		s.expireLocked(sh, now)
		sh.mu.Unlock()
	}
	return found
}

// evictEvent makes room for an event new to a full store, saved to shard
// from: it drops the other shards' expired events, if any (after which the
// new event is to be tried again, when its shard's oldest may go), or else
// the oldest event of the first other shard that has one.
func (s *memoryStore) evictEvent(from *shard, now int64) {
	if s.expireElsewhere(from, false, now) {
		return
	}
	for sh := range s.others(from) {
		sh.mu.Lock()
		s.expireLocked(sh, now)
		done := s.nEvents.Load() < s.maxEv
		if !done && sh.evq.head != nil {
			s.dropEventLocked(sh)
			done = true
		}
		sh.mu.Unlock()
		if done {
			return
		}
	}
}

// evictMark is evictEvent for marks, and reports how many of them it
// dropped over the bound.
func (s *memoryStore) evictMark(from *shard, now int64) int {
	if s.expireElsewhere(from, true, now) {
		return 0
	}
	for sh := range s.others(from) {
		sh.mu.Lock()
		s.expireLocked(sh, now)
		done, n := s.nMarks.Load() < s.maxMarks, 0
		if !done && sh.markq.head != nil {
			s.dropMarkLocked(sh)
			done, n = true, 1
		}
		sh.mu.Unlock()
		if done {
			return n
		}
	}
	return 0
}

// others yields the shards other than from, the next one first.
func (s *memoryStore) others(from *shard) iter.Seq[*shard] {
	return func(yield func(*shard) bool) {
		i := 0
		for i < len(s.shards) && &s.shards[i] != from {
			i++
		}
		for j := 1; j < len(s.shards); j++ {
			if !yield(&s.shards[(i+j)&(len(s.shards)-1)]) {
				return
			}
		}
	}
}

func (s *memoryStore) Load(_ context.Context, key string) (*webhook.Event, error) {
	now := s.clock()
	sh := s.shardOf(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if e := sh.events[key]; e != nil && now <= e.expires {
		return e.ev, nil
	}
	return nil, nil
}

func (s *memoryStore) Consume(_ context.Context, key string, ev *webhook.Event) (bool, error) {
	var used bool
	s.withMark(key, func(sh *shard, m *markEntry) {
		used = m.consumed == nil || m.consumed.supersededBy(ev)
		if m.consumed == nil {
			m.consumed = new(markOf(ev))
		} else if used {
			*m.consumed = markOf(ev)
		}
		if e := sh.events[key]; e != nil && !m.consumed.supersededBy(e.ev) {
			sh.evq.remove(&e.node)
			delete(sh.events, key)
			s.nEvents.Add(-1)
		}
	})
	return used, nil
}

func (s *memoryStore) Track(_ context.Context, key string) error {
	s.withMark(key, func(_ *shard, m *markEntry) { m.tracked = true })
	return nil
}

// withMark runs f on key's mark, made if there is none, under the lock of
// key's shard; when the store holds its bound of marks, one is evicted
// first, outside that lock.
func (s *memoryStore) withMark(key string, f func(sh *shard, m *markEntry)) {
	now := s.clock()
	sh := s.shardOf(key)
	dropped := 0
	for {
		sh.mu.Lock()
		m, n := s.touchMarkLocked(sh, key, now)
		dropped += n
		if m != nil {
			f(sh, m)
			sh.mu.Unlock()
			s.logDropped(dropped, now)
			return
		}
		sh.mu.Unlock()
		dropped += s.evictMark(sh, now)
	}
}

func (s *memoryStore) Tracked(_ context.Context, key string) (bool, error) {
	now := s.clock()
	sh := s.shardOf(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	m := sh.marks[key]
	return m != nil && m.tracked && now <= m.expires, nil
}

func (s *memoryStore) Subscribe(func(string, *webhook.Event)) func() { return func() {} }

// touchMarkLocked returns key's mark in sh, made if need be, with its
// expiry renewed, after dropping what has expired, and how many marks it
// dropped over the bound to make room. It returns a nil mark, having
// changed nothing but the expired, when the mark is new, the store full of
// marks, and either another shard holding expired marks (to be dropped
// first) or sh without one to drop.
func (s *memoryStore) touchMarkLocked(sh *shard, key string, now int64) (*markEntry, int) {
	s.expireLocked(sh, now)
	m := sh.marks[key]
	dropped := 0
	if m == nil {
		for !reserve(&s.nMarks, s.maxMarks) {
			if sh.markq.head == nil || s.expiredElsewhere(sh, true, now) {
				return nil, dropped
			}
			s.dropMarkLocked(sh)
			dropped++
		}
		m = &markEntry{node: node{key: key}}
		sh.marks[key] = m
	} else {
		sh.markq.remove(&m.node)
	}
	sh.markq.push(&m.node, now+s.markTTL)
	return m, dropped
}

// expireLocked drops the expired entries of sh, all at the front of their
// queues.
func (s *memoryStore) expireLocked(sh *shard, now int64) {
	for sh.evq.head != nil && now > sh.evq.head.expires {
		s.dropEventLocked(sh)
	}
	for sh.markq.head != nil && now > sh.markq.head.expires {
		s.dropMarkLocked(sh)
	}
}

// dropEventLocked drops the oldest event of sh, which has one.
func (s *memoryStore) dropEventLocked(sh *shard) {
	x := sh.evq.head
	sh.evq.remove(x)
	e := sh.events[x.key]
	delete(sh.events, x.key)
	s.nEvents.Add(-1)
	if sh.spare == nil && e != nil {
		*e = eventEntry{}
		sh.spare = e
	}
}

// dropMarkLocked drops the oldest mark of sh, which has one.
func (s *memoryStore) dropMarkLocked(sh *shard) {
	x := sh.markq.head
	sh.markq.remove(x)
	delete(sh.marks, x.key)
	s.nMarks.Add(-1)
}

// markLogInterval spaces the warnings about marks dropped over the bound.
const markLogInterval = int64(time.Minute)

// logDropped counts n marks just dropped over the bound, and warns of
// those not yet reported unless a warning was given within the last
// markLogInterval.
func (s *memoryStore) logDropped(n int, now int64) {
	if n > 0 {
		s.dropped.Add(int64(n))
	} else if s.dropped.Load() == 0 {
		return
	}
	s.logMu.Lock()
	if s.logged && now-s.loggedAt < markLogInterval {
		s.logMu.Unlock()
		return
	}
	s.logged, s.loggedAt = true, now
	s.logMu.Unlock()
	s.log.Warn("dispatch: store: too many tracked jobs and consumed requires_action events; forgot the oldest",
		slog.Int64("forgotten", s.dropped.Swap(0)), slog.Int64("max", s.maxMarks))
}

// len reports the entries held, events and marks, for tests.
func (s *memoryStore) len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.events) + len(sh.marks)
		sh.mu.Unlock()
	}
	return n
}
