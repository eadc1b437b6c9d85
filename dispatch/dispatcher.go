package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/genaihook/genaihook/webhook"
)

// Dispatcher matches webhook events to the waits for them. Deliver feeds it
// events (it is a webhook.HandlerFunc); Wait and Watch wait for a job's
// event; the optional Poller resolves waits whose event never comes.
//
// A Dispatcher is safe for concurrent use. New starts no goroutine; the
// poll scheduler's timer and the polls it runs end with Close.
type Dispatcher struct {
	cfg   config
	store Store
	log   *slog.Logger

	mu        sync.Mutex
	closed    bool
	waiters   map[string]*Future // by key, head of a list linked by next
	pending   int
	heap      pollHeap // heads of id keys awaiting their next poll
	stopTimer func() bool
	armedAt   int64  // due time of the armed timer, unix ns
	timerGen  uint64 // identifies the armed timer

	unsubscribe func() // from a Broadcaster store

	pollCtx     context.Context
	cancelPolls context.CancelFunc
	closing     chan struct{}
	sem         chan struct{}
	wg          sync.WaitGroup

	deliveries, ignored, resolved, resolvedByPoll, polls, pollErrors atomic.Uint64
}

// New returns a Dispatcher configured by opts. It starts no goroutine.
//
// New checks the configuration now, so that a mistake fails at start-up
// rather than when the first job is created or the first poll is due: it
// returns an error naming the fix if WithPoller was given a nil Poller or a
// GenAIPoller of a nil client, if WithBinder was given a nil Binder, or if
// the URL of WithWebhookURL is not an absolute https URL (http is allowed
// only to a loopback host).
func New(opts ...Option) (*Dispatcher, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.binder == nil {
		cfg.binder = newRandomBinder()
	}
	d := &Dispatcher{
		cfg:     cfg,
		store:   cfg.store,
		log:     cfg.logger,
		waiters: make(map[string]*Future),
		closing: make(chan struct{}),
		sem:     make(chan struct{}, cfg.concurrency),
	}
	if d.store == nil {
		ms := newMemoryStore(cfg.now, cfg.ttl, cfg.maxStored)
		ms.log = cfg.logger
		d.store = ms
	}
	d.pollCtx, d.cancelPolls = context.WithCancel(context.Background())
	if b, ok := d.store.(Broadcaster); ok {
		d.unsubscribe = b.Subscribe(d.wakeRemote)
	}
	return d, nil
}

// wakeRemote resolves the waits on key with an event another replica
// delivered and saved.
func (d *Dispatcher) wakeRemote(key string, ev *webhook.Event) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	waiting := d.waiters[key] != nil
	d.mu.Unlock()
	if !waiting || (needsAction(ev) && !d.consume(context.Background(), []string{key}, ev)) {
		return // nobody here waits, or a wait elsewhere got the pause first
	}
	d.mu.Lock()
	h := d.takeLocked(key)
	d.mu.Unlock()
	d.finishList(h, ev)
}

// Deliver hands ev to every Wait and Future waiting for its job, matched by
// data.id in full or short form within the family its type names, and by
// the correlation key in its user_metadata when that key is authenticated
// (see Binding), and keeps it (within the retention bounds) for waits that
// start later. Its signature is a webhook.HandlerFunc:
//
//	http.Handle("POST /gemini/webhook", webhook.NewHandler(v, d.Deliver, d.Binding()))
//
// Events of a type webhook does not know are counted and otherwise ignored:
// Gemini may add progress events, and a wait resolved by one would end
// early; a new terminal type is still caught by the poller. A duplicate, or
// an event older than what the job already reported, resolves nothing. An
// event whose timestamp is more than five minutes ahead of the clock is
// ordered by the clock instead: the waits then get a copy of ev whose
// Timestamp is the clock's while Raw still holds the body as received.
// Deliver does constant work and starts no goroutine.
//
// It returns ErrClosed after Close, an error for a nil event, and the
// store's error when the event could not be recorded, so that the handler
// answers 5xx and Gemini retries.
func (d *Dispatcher) Deliver(ctx context.Context, ev *webhook.Event) error {
	if ev == nil {
		return errors.New("dispatch: nil event")
	}
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if closed {
		return ErrClosed
	}
	d.deliveries.Add(1)
	if !ev.Type.Known() && !ev.Polled {
		d.ignored.Add(1)
		d.log.DebugContext(ctx, "dispatch: ignoring event of unknown type", slog.String("type", string(ev.Type)), slog.String("id", ev.Data.ID))
		return nil
	}
	return d.complete(ctx, d.clampTimestamp(ctx, ev))
}

// complete records ev under each of its keys and resolves the waits the
// store accepted it for.
func (d *Dispatcher) complete(ctx context.Context, ev *webhook.Event) error {
	var buf [maxKeys]string
	keys, err := d.keysOf(ctx, ev, buf[:0])
	if err != nil {
		return err
	}
	return d.record(ctx, keys, ev)
}

// record saves ev under keys and resolves the waits on the keys the store
// accepted it for. len(keys) must be at most maxKeys.
func (d *Dispatcher) record(ctx context.Context, keys []string, ev *webhook.Event) error {
	var err error
	var saved [maxKeys]bool
	for i, k := range keys {
		ok, serr := d.store.Save(ctx, k, ev)
		if serr != nil {
			err = fmt.Errorf("dispatch: store: %w", serr)
			break
		}
		saved[i] = ok
	}
	if needsAction(ev) {
		// A pause goes to the waits pending now only if this call uses it
		// up: a wait that started meanwhile may have found it stored and
		// taken it first. With nobody waiting it stays stored, unused, for
		// the first wait that comes.
		d.mu.Lock()
		waiting := false
		for i, k := range keys {
			waiting = waiting || saved[i] && d.waiters[k] != nil
		}
		d.mu.Unlock()
		if !waiting || !d.consume(ctx, keys, ev) {
			return err
		}
	}
	var lists [maxKeys]*Future
	d.mu.Lock()
	for i, k := range keys {
		if saved[i] {
			lists[i] = d.takeLocked(k)
		}
	}
	d.mu.Unlock()
	for _, h := range lists {
		d.finishList(h, ev)
	}
	return err
}

// maxKeys bounds the keys of one event: two for its id (a video event
// meets interaction waits too), its correlation key, and the id that key
// was tracked with.
const maxKeys = 4

// keysOf appends ev's keys to keys: its id's, its correlation key's, and
// the id the correlation key was tracked with.
func (d *Dispatcher) keysOf(ctx context.Context, ev *webhook.Event, keys []string) ([]string, error) {
	keys = eventKeys(ev.Type, ev.Data.ID, keys)
	if c := d.trustedKey(ctx, ev); c != "" {
		ck := corrKey(c)
		keys = append(keys, ck)
		target, ok, err := d.store.Tracked(ctx, ck)
		if err != nil {
			return nil, fmt.Errorf("dispatch: store: %w", err)
		}
		if ok && target != "" && !slices.Contains(keys, target) {
			keys = append(keys, target)
		}
	}
	return keys, nil
}

// trustedKey returns ev's correlation key when its user_metadata can be
// trusted to name it: the event was delivered by a static webhook (signed
// with this receiver's own secret), built by the app or the poller, or
// carries a token of this receiver's Binder for that key. A dynamic
// delivery bound only by its data.id could otherwise plant entries under
// keys of its choosing.
func (d *Dispatcher) trustedKey(ctx context.Context, ev *webhook.Event) string {
	c := KeyOf(ev.UserMetadata)
	if c == "" || !ev.Auth.Scheme.Dynamic() || d.cfg.binder.Check(ctx, ev) == nil {
		return c
	}
	return ""
}

// maxFutureSkew bounds how far past the clock an event's timestamp may be
// trusted to order it against the job's other events: Gemini stamps an
// event when it happens, so anything beyond a clock skew would let one
// event hold off every later one (see Supersedes).
const maxFutureSkew = 5 * time.Minute

// clampTimestamp returns ev, or a copy of it stamped with the clock when
// its timestamp lies more than maxFutureSkew in the future.
func (d *Dispatcher) clampTimestamp(ctx context.Context, ev *webhook.Event) *webhook.Event {
	now := d.cfg.now()
	if !ev.Timestamp.After(now.Add(maxFutureSkew)) {
		return ev
	}
	d.log.WarnContext(ctx, "dispatch: event timestamp is in the future; ordering it by the clock instead",
		slog.String("id", truncateID(ev.Data.ID)), slog.Time("timestamp", ev.Timestamp))
	c := *ev
	c.Timestamp = now
	return &c
}

// consume marks a requires_action event as used under all its keys, before
// the waits it resolves see it, so that a wait started afterwards waits for
// the next event. It reports whether this call used ev up, as decided under
// keys[0], the same key for every caller with the same event, so that of
// two callers at most one gets true; a store that fails counts as true (a
// pause that cannot be marked is handed over rather than lost).
func (d *Dispatcher) consume(ctx context.Context, keys []string, ev *webhook.Event) bool {
	used := true
	for i, k := range keys {
		ok, err := d.store.Consume(ctx, k, ev)
		if err != nil {
			d.log.WarnContext(ctx, "dispatch: store: consume", slog.String("id", ev.Data.ID), slog.Any("error", err))
			continue
		}
		if i == 0 {
			used = ok
		}
	}
	return used
}

// takeLocked detaches every Future waiting on key.
func (d *Dispatcher) takeLocked(key string) *Future {
	h := d.waiters[key]
	if h == nil {
		return nil
	}
	delete(d.waiters, key)
	d.unscheduleLocked(h)
	for f := h; f != nil; f = f.next {
		f.linked = false
		d.pending--
	}
	return h
}

func (d *Dispatcher) finishList(h *Future, ev *webhook.Event) {
	var n uint64
	for f := h; f != nil; f = f.next {
		n++
	}
	if n == 0 {
		return
	}
	// Counted before the waits see their event, so Stats read after a
	// Wait returns includes it.
	d.resolved.Add(n)
	if ev.Polled {
		d.resolvedByPoll.Add(n)
	}
	for f := h; f != nil; {
		next := f.next
		f.next, f.prev = nil, nil
		f.finish(ev, nil)
		f = next
	}
}

// Wait waits for the event of the job id, as genai returned it
// (BatchJob.Name "batches/…", GenerateVideosOperation.Name
// "models/…/operations/…", an Interaction's ID), and returns it. It returns
// at once if the event arrived before the call; it returns the next one if
// the job's last event was an interaction.requires_action already returned
// to an earlier wait. With a Poller, an event found by polling resolves it
// too (Event.Polled is then true).
//
// The returned event may report a failure: see EventError, or WaitBatch
// and its siblings. Wait returns ctx's error when ctx ends first, releasing
// everything the wait held; ErrClosed when the Dispatcher is closed;
// ErrInvalidID for an empty id.
func (d *Dispatcher) Wait(ctx context.Context, id string) (*webhook.Event, error) {
	return d.wait(ctx, d.watch(ctx, id, false, d.slowStore()))
}

// slowStore reports whether store calls may block for long (any Store but
// the in-memory one, which only takes a lock held for map operations).
// A Wait then looks the store up in a goroutine of its own, so that its ctx
// ends it on time even while the store is held up.
func (d *Dispatcher) slowStore() bool {
	_, mem := d.store.(*memoryStore)
	return !mem
}

// WaitKey is Wait for the correlation key of a webhook_config made by the
// builders (see KeyOf), for a job whose id the caller does not hold. Such a
// wait resolves from events only: prefer Wait, after Track(ctx, id, key),
// which matches the key too and can poll.
func (d *Dispatcher) WaitKey(ctx context.Context, key string) (*webhook.Event, error) {
	return d.wait(ctx, d.watchKey(ctx, key, d.slowStore()))
}

func (d *Dispatcher) wait(ctx context.Context, f *Future) (*webhook.Event, error) {
	select {
	case <-f.done:
		return f.Result()
	case <-ctx.Done():
		if f.Stop() {
			return nil, ctx.Err()
		}
		<-f.done // resolved meanwhile: its event is not lost
		return f.Result()
	}
}

// Watch is the non-blocking form of Wait: it registers interest in the job
// id and returns a Future that resolves as Wait would. It reads the store
// once before it returns, so that an event already there resolves the
// Future at once; with a Store other than the default one that read may
// take as long as the store does. A Future holds no goroutine; select on
// Done for thousands of them, or hand them to a loop. Call Stop on a
// Future no longer wanted, to release it.
func (d *Dispatcher) Watch(id string) *Future { return d.watch(context.Background(), id, false, false) }

// WatchKey is the non-blocking form of WaitKey.
func (d *Dispatcher) WatchKey(key string) *Future {
	return d.watchKey(context.Background(), key, false)
}

func (d *Dispatcher) watchKey(ctx context.Context, key string, async bool) *Future {
	if key == "" {
		return d.watch(ctx, "", true, async)
	}
	return d.watch(ctx, corrKey(key), true, async)
}

// watch registers a Future on id and resolves it from the store when its
// event is already there: at once, or, with async, from a goroutine of its
// own. ctx bounds that store lookup, so that a Wait whose ctx ends is not
// held by a slow store; once an event is found, consuming a
// requires_action is not cut short, or a later wait could get the stale
// pause.
func (d *Dispatcher) watch(ctx context.Context, id string, corr, async bool) *Future {
	f := &Future{d: d, id: id, done: make(chan struct{}), hidx: -1, corr: corr}
	key := f.key()
	if key == "" {
		f.finish(nil, ErrInvalidID)
		return f
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		f.finish(nil, ErrClosed)
		return f
	}
	d.linkLocked(f, key)
	d.mu.Unlock()

	// Registered first, then looked up: a Deliver that saved before our
	// registration is visible here, one that saves after it finds us.
	lookup := func() {
		if ev := d.load(ctx, key); ev != nil {
			d.resolveLoaded(ctx, f, key, ev)
		}
	}
	if async {
		d.wg.Add(1) // Close waits for the store calls it makes
		go func() {
			defer d.wg.Done()
			lookup()
		}()
	} else {
		lookup()
	}
	return f
}

// linkLocked registers f on key; the first Future on a key keeps its poll
// schedule.
func (d *Dispatcher) linkLocked(f *Future, key string) {
	f.linked = true
	d.pending++
	h := d.waiters[key]
	if h == nil {
		d.waiters[key] = f
		if !f.corr { // polled, or without a poller logged once if nothing comes
			d.scheduleLocked(f, d.nowNanos()+int64(d.cfg.quiet), 0)
		}
		return
	}
	// Second in line: the head keeps the poll schedule.
	f.next, f.prev = h.next, h
	if h.next != nil {
		h.next.prev = f
	}
	h.next = f
	if !f.corr && len(f.id) > len(h.id) {
		h.id = f.id // poll with the most qualified form seen
	}
}

// load returns key's stored event, nil when there is none or the store
// failed (logged: the wait goes on, and the poller still covers it).
func (d *Dispatcher) load(ctx context.Context, key string) *webhook.Event {
	ev, err := d.store.Load(ctx, key)
	if err != nil && ctx.Err() == nil {
		d.log.Warn("dispatch: store: load", slog.String("key", key), slog.Any("error", err))
	}
	return ev
}

func (d *Dispatcher) resolveLoaded(ctx context.Context, f *Future, key string, ev *webhook.Event) {
	for ev != nil {
		d.mu.Lock()
		if !f.linked {
			d.mu.Unlock()
			return
		}
		d.unlinkLocked(f, key)
		d.mu.Unlock()
		if !needsAction(ev) || d.consumeLoaded(ctx, key, ev) {
			d.resolved.Add(1)
			if ev.Polled {
				d.resolvedByPoll.Add(1)
			}
			f.finish(ev, nil)
			return
		}
		// Another wait used this pause up first: f waits for the next
		// event, unless it was stopped meanwhile. Registered again first,
		// then looked up, as in watch.
		d.mu.Lock()
		switch {
		case d.closed:
			d.mu.Unlock()
			f.finish(nil, ErrClosed)
			return
		case f.stopped:
			d.mu.Unlock()
			f.finish(nil, ErrStopped)
			return
		}
		d.linkLocked(f, key)
		d.mu.Unlock()
		ev = d.load(ctx, key)
	}
}

// consumeLoaded uses up a stored pause for the wait on key, under all the
// pause's keys, and reports whether this wait got it.
func (d *Dispatcher) consumeLoaded(ctx context.Context, key string, ev *webhook.Event) bool {
	ctx = context.WithoutCancel(ctx) // once found, a pause is not half consumed
	var buf [maxKeys + 1]string
	keys, _ := d.keysOf(ctx, ev, buf[:0])
	if !slices.Contains(keys, key) {
		keys = append(keys, key)
	}
	return d.consume(ctx, keys, ev)
}

// unlinkLocked removes f from key's list in constant time, handing the
// poll schedule on when f was the head, and with it the most qualified form
// of the id seen, so that the poll id never regresses to a shorter one.
func (d *Dispatcher) unlinkLocked(f *Future, key string) {
	n := f.next
	switch {
	case d.waiters[key] != f:
		f.prev.next = n
		if n != nil {
			n.prev = f.prev
		}
	case n == nil:
		delete(d.waiters, key)
		d.unscheduleLocked(f)
	default:
		d.waiters[key] = n
		n.prev = nil
		n.due, n.tries = f.due, f.tries
		if len(f.id) > len(n.id) {
			n.id = f.id
		}
		if f.hidx >= 0 {
			n.hidx = f.hidx
			d.heap[n.hidx] = n
			f.hidx = -1
		}
	}
	f.next, f.prev = nil, nil
	f.linked = false
	d.pending--
}

// Close ends every pending wait with ErrClosed, stops the poll timer,
// cancels the polls in flight and waits for them to return. Later calls to
// Wait, Watch and Deliver fail with ErrClosed. Close is idempotent and
// always returns nil.
func (d *Dispatcher) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	if d.stopTimer != nil {
		d.stopTimer()
		d.stopTimer = nil
	}
	lists := make([]*Future, 0, len(d.waiters))
	for _, h := range d.waiters {
		for f := h; f != nil; f = f.next {
			f.linked = false
			f.hidx = -1
			d.pending--
		}
		lists = append(lists, h)
	}
	clear(d.waiters)
	d.heap = nil
	d.mu.Unlock()

	close(d.closing)
	d.cancelPolls()
	if d.unsubscribe != nil {
		d.unsubscribe()
	}
	for _, h := range lists {
		for f := h; f != nil; {
			next := f.next
			f.next, f.prev = nil, nil
			f.finish(nil, ErrClosed)
			f = next
		}
	}
	d.wg.Wait()
	return nil
}

// Stats counts what a Dispatcher has done since New.
type Stats struct {
	// Deliveries counts the events passed to Deliver.
	Deliveries uint64
	// Ignored counts the deliveries of unknown types, which resolve nothing.
	Ignored uint64
	// Polls counts the calls to Poller.Poll; PollErrors those that failed.
	Polls, PollErrors uint64
	// Resolved counts the waits and Futures resolved with an event;
	// ResolvedByPoll those whose event the poller found.
	Resolved, ResolvedByPoll uint64
	// Pending is the number of waits and Futures waiting now.
	Pending int
}

// Stats returns the counters of d.
func (d *Dispatcher) Stats() Stats {
	d.mu.Lock()
	pending := d.pending
	d.mu.Unlock()
	return Stats{
		Deliveries: d.deliveries.Load(), Ignored: d.ignored.Load(),
		Polls: d.polls.Load(), PollErrors: d.pollErrors.Load(),
		Resolved: d.resolved.Load(), ResolvedByPoll: d.resolvedByPoll.Load(),
		Pending: pending,
	}
}

func (d *Dispatcher) nowNanos() int64 { return d.cfg.now().UnixNano() }
