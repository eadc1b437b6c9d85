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
	epoch  time.Time // expiries are kept as offsets from it, see since

	mu       sync.Mutex
	seen     map[string]uint64 // id -> seq of its newest queue entry
	queue    []seenEntry       // insertion order = expiry order; queue[head:] is live
	head     int
	seq      uint64 // numbers queue entries consecutively; the last one has seq
	inflight map[string]*flight
}

// seenEntry is a remembered id. Its expiry is an offset from the epoch
// rather than a time.Time: half the size with the seq it no longer needs,
// and one pointer fewer for the garbage collector in a queue of up to
// MaxEntries.
type seenEntry struct {
	id      string
	expires time.Duration
}

// flight is an id being processed. processed is written before done is
// closed and read after, so it needs no lock.
type flight struct {
	d         *MemoryDeduplicator
	id        string
	done      chan struct{} // made by the first waiter, guarded by d.mu
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
		seen:     make(map[string]uint64),
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
	d.epoch = d.now()
	return d
}

// since returns t as an offset from d.epoch. With time.Now as the clock it
// uses the monotonic clock, so a wall-clock jump neither expires ids early
// nor keeps them forever.
func (d *MemoryDeduplicator) since(t time.Time) time.Duration { return t.Sub(d.epoch) }

// Begin implements Deduplicator. It returns dup for an id processed less
// than the window ago, waits while another caller holds id, and otherwise
// hands id to the caller. Its only error is ctx.Err(), while waiting.
func (d *MemoryDeduplicator) Begin(ctx context.Context, id string) (func(bool), bool, error) {
	for {
		d.mu.Lock()
		now := d.since(d.now())
		d.expire(now)
		if seq, ok := d.seen[id]; ok && now < d.entry(seq).expires {
			d.mu.Unlock()
			return nil, true, nil
		}
		f, busy := d.inflight[id]
		if !busy {
			f = &flight{d: d, id: id}
			d.inflight[id] = f
			d.mu.Unlock()
			return f.release, false, nil
		}
		if f.done == nil {
			// Most ids are never waited for: the channel is made only
			// for the first copy that has to wait.
			f.done = make(chan struct{})
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
		d.remember(f.id, d.since(d.now()))
	}
	f.processed = processed
	if f.done != nil {
		close(f.done)
	}
}

// Len returns the number of remembered ids, expired ones not yet dropped
// included.
func (d *MemoryDeduplicator) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.seen)
}

func (d *MemoryDeduplicator) remember(id string, now time.Duration) {
	d.expire(now)
	d.seq++
	d.seen[id] = d.seq
	d.queue = append(d.queue, seenEntry{id: id, expires: now + d.window})
	for len(d.seen) > d.max {
		d.pop()
	}
}

// entry returns the queue entry numbered seq, which must be live: entries
// are numbered consecutively and leave the queue only from its front.
func (d *MemoryDeduplicator) entry(seq uint64) *seenEntry {
	return &d.queue[len(d.queue)-int(d.seq-seq)-1]
}

// expire drops the expired entries at the front of the queue.
func (d *MemoryDeduplicator) expire(now time.Duration) {
	for d.head < len(d.queue) && now >= d.queue[d.head].expires {
		d.pop()
	}
}

func (d *MemoryDeduplicator) pop() {
	e := d.queue[d.head]
	seq := d.seq - uint64(len(d.queue)-d.head-1)
	d.queue[d.head] = seenEntry{}
	d.head++
	if d.seen[e.id] == seq {
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
