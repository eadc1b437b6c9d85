package webhook

import (
	"context"
	"hash/maphash"
	"math"
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
	// DefaultDedupMaxEntries bounds memory: an id is remembered by a
	// 128-bit hash, not kept itself, in 24 bytes of its ring entry and
	// 48 of a table that is at most half full, about 9 MB at the bound.
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
// It remembers an id by a 128-bit hash keyed with random seeds of its own
// (hash/maphash), not by the id: no string is kept or copied, entries have
// a fixed size and no pointers for the garbage collector to scan, and a
// new id at the bound replaces the oldest without allocating. A sender
// cannot choose ids that collide without the seeds, and two of a window's
// ids collide by chance with a probability of about n²/2¹²⁹ (1e-29 for
// 100,000 ids); a collision would answer a new delivery as a duplicate.
//
// One mutex guards it, held for a table and ring operation only, never while a
// HandlerFunc runs. A Begin/release pair of a new id costs one allocation,
// the release function (BenchmarkMemoryDeduplicator).
type MemoryDeduplicator struct {
	window time.Duration
	max    int
	now    func() time.Time
	epoch  time.Time // expiries are kept as offsets from it, see since
	seeds  [2]maphash.Seed

	mu   sync.Mutex
	seen idTable // id -> seq of its newest ring entry
	// ring holds the remembered ids in insertion order, which is expiry
	// order: n entries from ring[head], wrapping. It grows to max entries,
	// then the oldest entry makes room for the newest.
	ring     []seenEntry
	head, n  int
	seq      uint64 // numbers entries consecutively; the newest has seq
	inflight map[idKey]hold
	holds    uint64 // numbers holds, so that a stale release is ignored
}

// idKey is an id's 128-bit keyed hash.
type idKey [2]uint64

// seenEntry is a remembered id. Its expiry is an offset from the epoch
// rather than a time.Time: smaller, and no pointer for the garbage
// collector in a ring of up to MaxEntries.
type seenEntry struct {
	key     idKey
	expires time.Duration
}

// hold is an id being processed. waiters is made by the first copy that
// has to wait for it; most ids are never waited for.
type hold struct {
	n       uint64
	waiters *waiters
}

// waiters is what the copies waiting for a held id wait on. processed is
// written before done is closed and read after, so it needs no lock.
type waiters struct {
	done      chan struct{}
	processed bool
}

// NewMemoryDeduplicator returns an empty MemoryDeduplicator. Negative
// values in cfg count as zero.
func NewMemoryDeduplicator(cfg MemoryConfig) *MemoryDeduplicator {
	d := &MemoryDeduplicator{
		window:   cfg.Window,
		max:      cfg.MaxEntries,
		now:      cfg.Now,
		seeds:    [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		inflight: make(map[idKey]hold),
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

func (d *MemoryDeduplicator) key(id string) idKey {
	return idKey{maphash.String(d.seeds[0], id), maphash.String(d.seeds[1], id)}
}

// Begin implements Deduplicator. It returns dup for an id processed less
// than the window ago, waits while another caller holds id, and otherwise
// hands id to the caller. Its only error is ctx.Err(), while waiting.
func (d *MemoryDeduplicator) Begin(ctx context.Context, id string) (func(bool), bool, error) {
	k := d.key(id)
	for {
		d.mu.Lock()
		now := d.since(d.now())
		d.expire(now)
		if seq := d.seen.get(k); seq != 0 && now < d.entry(seq).expires {
			d.mu.Unlock()
			return nil, true, nil
		}
		h, busy := d.inflight[k]
		if !busy {
			d.holds++
			n := d.holds
			d.inflight[k] = hold{n: n}
			d.mu.Unlock()
			return func(processed bool) { d.release(k, n, processed) }, false, nil
		}
		if h.waiters == nil {
			h.waiters = &waiters{done: make(chan struct{})}
			d.inflight[k] = h
		}
		w := h.waiters
		d.mu.Unlock()
		select {
		case <-w.done:
			if w.processed {
				return nil, true, nil
			}
			// The holder failed: compete for the id again.
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// release ends hold number n on k. Calls after the first are ignored: the
// hold is gone, or k is held again under another number.
func (d *MemoryDeduplicator) release(k idKey, n uint64, processed bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	h, ok := d.inflight[k]
	if !ok || h.n != n {
		return
	}
	delete(d.inflight, k)
	if processed {
		d.remember(k, d.since(d.now()))
	}
	if h.waiters != nil {
		h.waiters.processed = processed
		close(h.waiters.done)
	}
}

// Len returns the number of remembered ids, expired ones not yet dropped
// included.
func (d *MemoryDeduplicator) Len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.seen.n
}

func (d *MemoryDeduplicator) remember(k idKey, now time.Duration) {
	d.expire(now)
	if d.n == d.max {
		d.pop()
	}
	if d.n == len(d.ring) {
		d.grow()
	}
	expires := now + d.window
	if expires < now { // a Window so long that the sum overflows: for ever
		expires = math.MaxInt64
	}
	d.ring[(d.head+d.n)%len(d.ring)] = seenEntry{key: k, expires: expires}
	d.n++
	d.seq++
	d.seen.put(k, d.seq)
}

// grow doubles the ring, up to max entries.
func (d *MemoryDeduplicator) grow() {
	ring := make([]seenEntry, min(max(2*len(d.ring), 64), d.max))
	for i := range d.n {
		ring[i] = d.ring[(d.head+i)%len(d.ring)]
	}
	d.ring, d.head = ring, 0
}

// entry returns the ring entry numbered seq, which must be live: entries
// are numbered consecutively and leave the ring only from its front.
func (d *MemoryDeduplicator) entry(seq uint64) *seenEntry {
	i := d.n - 1 - int(d.seq-seq)
	return &d.ring[(d.head+i)%len(d.ring)]
}

// expire drops the expired entries at the front of the ring.
func (d *MemoryDeduplicator) expire(now time.Duration) {
	for d.n > 0 && now >= d.ring[d.head].expires {
		d.pop()
	}
}

// pop drops the oldest entry.
func (d *MemoryDeduplicator) pop() {
	e := d.ring[d.head]
	if d.seen.get(e.key) == d.seq-uint64(d.n-1) {
		d.seen.delete(e.key)
	}
	d.head = (d.head + 1) % len(d.ring)
	d.n--
}

// idTable maps ids to the seq of their newest ring entry: an open
// addressing table with linear probing, which the keys, keyed hashes,
// spread evenly. Deletion shifts the entries after the deleted one back
// instead of leaving a tombstone, so that a table that replaces its oldest
// id by a new one for every delivery, as one at the bound does, keeps
// short probe sequences and never allocates. It is at most half full.
type idTable struct {
	slots []idSlot // a power of two of them, or none
	n     int
}

// idSlot is a slot of idTable; seq 0 marks it empty (seqs start at 1).
type idSlot struct {
	key idKey
	seq uint64
}

// get returns k's seq, or 0 if k is absent.
func (t *idTable) get(k idKey) uint64 {
	if t.n == 0 {
		return 0
	}
	mask := uint64(len(t.slots) - 1)
	for i := k[0] & mask; ; i = (i + 1) & mask {
		switch s := &t.slots[i]; {
		case s.seq == 0:
			return 0
		case s.key == k:
			return s.seq
		}
	}
}

// put sets k's seq, which must not be 0.
func (t *idTable) put(k idKey, seq uint64) {
	if 2*(t.n+1) > len(t.slots) {
		t.grow()
	}
	mask := uint64(len(t.slots) - 1)
	for i := k[0] & mask; ; i = (i + 1) & mask {
		switch s := &t.slots[i]; {
		case s.seq == 0:
			*s = idSlot{key: k, seq: seq}
			t.n++
			return
		case s.key == k:
			s.seq = seq
			return
		}
	}
}

// delete removes k, if present.
func (t *idTable) delete(k idKey) {
	if t.n == 0 {
		return
	}
	mask := uint64(len(t.slots) - 1)
	i := k[0] & mask
	for ; t.slots[i].key != k; i = (i + 1) & mask {
		if t.slots[i].seq == 0 {
			return
		}
	}
	if t.slots[i].seq == 0 {
		return
	}
	// Move back each later entry of the run whose home slot is not
	// cyclically within (i, j]: it was placed past i because i was taken.
	for j := (i + 1) & mask; t.slots[j].seq != 0; j = (j + 1) & mask {
		home := t.slots[j].key[0] & mask
		if i <= j && i < home && home <= j || i > j && (i < home || home <= j) {
			continue
		}
		t.slots[i] = t.slots[j]
		i = j
	}
	t.slots[i] = idSlot{}
	t.n--
}

func (t *idTable) grow() {
	old := t.slots
	t.slots = make([]idSlot, max(2*len(old), 64))
	t.n = 0
	for _, s := range old {
		if s.seq != 0 {
			t.put(s.key, s.seq)
		}
	}
}
