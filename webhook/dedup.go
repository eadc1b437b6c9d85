package webhook

import (
	"context"
	"sync"
	"time"
)

// Deduplicator decides whether a delivery's webhook-id was already
// processed. Handler calls Begin once per verified delivery, before its
// HandlerFunc, and skips the HandlerFunc when dup is true.
//
// Implementations must be safe for concurrent use and keep these rules:
//
//   - An id counts as processed only once a release(true) was called for it.
//     release(false) forgets the attempt, so Gemini's retry runs again.
//   - While one caller holds an id (Begin returned a release not yet called),
//     another Begin for the same id must not return a second release: it
//     waits for the holder, then reports dup if the holder succeeded, or
//     takes the id itself if it failed. If ctx ends first, it returns
//     ctx.Err() (Handler answers 503, and Gemini retries).
//   - release is called exactly once; it is nil when dup is true or err is
//     non-nil.
//
// A Deduplicator shared by several replicas (e.g. on Redis) gives
// exactly-once processing across them; the in-memory one covers one process.
type Deduplicator interface {
	Begin(ctx context.Context, id string) (release func(processed bool), dup bool, err error)
}

// Defaults of MemoryDeduplicator.
const (
	// DefaultDedupWindow is how long a processed id is remembered: Gemini
	// retries for 24 hours from the first attempt, and an id is stored no
	// earlier than that attempt, so 24 hours suffice; the extra hour absorbs
	// clock skew and slow retries.
	DefaultDedupWindow = 25 * time.Hour
	// DefaultDedupMaxEntries bounds memory: some 140 bytes per id plus the
	// id itself (about 40 bytes for Gemini's "msg_<uuid>"), so under 20 MB
	// at the bound.
	DefaultDedupMaxEntries = 100_000
)

// MemoryConfig configures NewMemoryDeduplicator. The zero value is usable.
type MemoryConfig struct {
	// Window is how long a processed id is remembered. 0 means
	// DefaultDedupWindow.
	Window time.Duration
	// MaxEntries bounds the number of remembered ids; past it the oldest is
	// forgotten first. 0 means DefaultDedupMaxEntries.
	MaxEntries int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// MemoryDeduplicator is the in-memory Deduplicator Handler uses by default.
// It remembers processed ids for a window, in bounded memory, and makes
// concurrent copies of one id wait for the first. It starts no goroutines:
// expired ids are dropped as new ones arrive. It is safe for concurrent use.
//
// One mutex guards it. A Begin/release pair of a new id costs about a
// microsecond with every CPU contending for it (BenchmarkMemoryDeduplicator),
// a few percent of the HTTP request around it, and the lock is held for a
// map operation only, never while a HandlerFunc runs; sharding would add
// code for no measurable gain.
type MemoryDeduplicator struct {
	window time.Duration
	max    int
	now    func() time.Time

	mu       sync.Mutex
	seen     map[string]seenEntry // id -> its newest queue entry
	queue    []seenEntry          // insertion order = expiry order; queue[head:] is live
	head     int
	seq      uint64
	inflight map[string]*flight
}

type seenEntry struct {
	id      string
	seq     uint64
	expires time.Time
}

// flight is an id being processed. processed is written before done is
// closed and read after, so it needs no lock.
type flight struct {
	d         *MemoryDeduplicator
	id        string
	done      chan struct{}
	processed bool
	released  bool // guarded by d.mu
}

// NewMemoryDeduplicator returns an empty MemoryDeduplicator. Negative
// values in cfg count as zero.
func NewMemoryDeduplicator(cfg MemoryConfig) *MemoryDeduplicator {
	d := &MemoryDeduplicator{
		window:   cfg.Window,
		max:      cfg.MaxEntries,
		now:      cfg.Now,
		seen:     make(map[string]seenEntry),
		inflight: make(map[string]*flight),
	}
	if d.window <= 0 {
		d.window = DefaultDedupWindow
	}
	if d.max <= 0 {
		d.max = DefaultDedupMaxEntries
	}
	if d.now == nil {
		d.now = time.Now
	}
	return d
}

// Begin implements Deduplicator. It returns dup for an id processed less
// than the window ago, waits while another caller holds id, and otherwise
// hands id to the caller. Its only error is ctx.Err(), while waiting.
func (d *MemoryDeduplicator) Begin(ctx context.Context, id string) (func(bool), bool, error) {
	for {
		d.mu.Lock()
		now := d.now()
		d.expire(now)
		if e, ok := d.seen[id]; ok && now.Before(e.expires) {
			d.mu.Unlock()
			return nil, true, nil
		}
		f, busy := d.inflight[id]
		if !busy {
			f = &flight{done: make(chan struct{})}
			d.inflight[id] = f
			d.mu.Unlock()
			return d.releaser(id, f), false, nil
		}
		d.mu.Unlock()
		select {
		case <-f.done:
			if f.processed {
				return nil, true, nil
			}
			// The holder failed: compete for the id again.
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

func (d *MemoryDeduplicator) releaser(id string, f *flight) func(bool) {
	f.d, f.id = d, id
	return f.release
}

// release ends f's hold on its id. Calls after the first are ignored.
func (f *flight) release(processed bool) {
	d := f.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if f.released {
		return
	}
	f.released = true
	delete(d.inflight, f.id)
	if processed {
		d.remember(f.id, d.now())
	}
	f.processed = processed
	close(f.done)
}

// Len returns the number of remembered ids, expired ones not yet dropped
// included.
func (d *MemoryDeduplicator) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.seen)
}

func (d *MemoryDeduplicator) remember(id string, now time.Time) {
	d.expire(now)
	d.seq++
	e := seenEntry{id: id, seq: d.seq, expires: now.Add(d.window)}
	d.seen[id] = e
	d.queue = append(d.queue, e)
	for len(d.seen) > d.max {
		d.pop()
	}
}

// expire drops the expired entries at the front of the queue.
func (d *MemoryDeduplicator) expire(now time.Time) {
	for d.head < len(d.queue) && !now.Before(d.queue[d.head].expires) {
		d.pop()
	}
}

func (d *MemoryDeduplicator) pop() {
	e := d.queue[d.head]
	d.queue[d.head] = seenEntry{}
	d.head++
	if d.seen[e.id].seq == e.seq {
		delete(d.seen, e.id)
	}
	// Compact once the dead prefix outweighs the live part, so the queue
	// stays within twice the live entries.
	if d.head > 64 && d.head*2 >= len(d.queue) {
		n := copy(d.queue, d.queue[d.head:])
		clear(d.queue[n:])
		d.queue = d.queue[:n]
		d.head = 0
	}
}
