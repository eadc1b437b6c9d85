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
		d.store = newMemoryStore(cfg.now, cfg.ttl, cfg.maxStored)
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
	h := d.takeLocked(key)
	d.mu.Unlock()
	if h != nil && needsAction(ev) {
		d.consume(context.Background(), []string{key}, ev)
	}
	d.finishList(h, ev)
}

// Deliver hands ev to every Wait and Future waiting for its job, matched by
// data.id in full or short form and by the correlation key in its
// user_metadata, and keeps it (within the retention bounds) for waits that
// start later. Its signature is a webhook.HandlerFunc:
//
//	http.Handle("/gemini/webhook", webhook.NewHandler(v, d.Deliver))
//
// Events of a type webhook does not know are counted and otherwise ignored:
// Gemini may add progress events, and a wait resolved by one would end
// early; a new terminal type is still caught by the poller. A duplicate, or
// an event older than what the job already reported, resolves nothing.
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
	var buf [3]string
	keys, err := d.keysOf(ctx, ev, buf[:0])
	if err != nil {
		return err
	}
	var lists [3]*Future
	taken := false
	for i, k := range keys {
		ok, serr := d.store.Save(ctx, k, ev)
		if serr != nil {
			err = fmt.Errorf("dispatch: store: %w", serr)
			break
		}
		if ok {
			d.mu.Lock()
			lists[i] = d.takeLocked(k)
			d.mu.Unlock()
			taken = taken || lists[i] != nil
		}
	}
	if taken && needsAction(ev) {
		d.consume(ctx, keys, ev)
	}
	for _, h := range lists {
		d.finishList(h, ev)
	}
	return err
}

// keysOf appends ev's keys to keys: its id's, its correlation key's, and
// the id the correlation key was tracked with.
func (d *Dispatcher) keysOf(ctx context.Context, ev *webhook.Event, keys []string) ([]string, error) {
	idk := idKey(ev.Data.ID)
	if idk != "" {
		keys = append(keys, idk)
	}
	if c := d.trustedKey(ctx, ev); c != "" {
		ck := corrKey(c)
		keys = append(keys, ck)
		target, ok, err := d.store.Tracked(ctx, ck)
		if err != nil {
			return nil, fmt.Errorf("dispatch: store: %w", err)
		}
		if ok && target != "" && target != idk {
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
// the next event.
func (d *Dispatcher) consume(ctx context.Context, keys []string, ev *webhook.Event) {
	for _, k := range keys {
		if err := d.store.Consume(ctx, k, ev); err != nil {
			d.log.WarnContext(ctx, "dispatch: store: consume", slog.String("id", ev.Data.ID), slog.Any("error", err))
		}
	}
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
		f.next = nil
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
	return d.wait(ctx, d.watch(ctx, id, false))
}

// WaitKey is Wait for the correlation key of a webhook_config made by the
// builders (see KeyOf), for a job whose id the caller does not hold. Such a
// wait resolves from events only: prefer Wait, after Track(ctx, id, key),
// which matches the key too and can poll.
func (d *Dispatcher) WaitKey(ctx context.Context, key string) (*webhook.Event, error) {
	return d.wait(ctx, d.watchKey(ctx, key))
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
// id and returns a Future that resolves as Wait would. A Future holds no
// goroutine; select on Done for thousands of them, or hand them to a loop.
// Call Stop on a Future no longer wanted, to release it.
func (d *Dispatcher) Watch(id string) *Future { return d.watch(context.Background(), id, false) }

// WatchKey is the non-blocking form of WaitKey.
func (d *Dispatcher) WatchKey(key string) *Future { return d.watchKey(context.Background(), key) }

func (d *Dispatcher) watchKey(ctx context.Context, key string) *Future {
	if key == "" {
		return d.watch(ctx, "", true)
	}
	return d.watch(ctx, corrKey(key), true)
}

// watch registers a Future on id and resolves it at once from the store
// when its event is already there. ctx bounds that store lookup, so that a
// Wait whose ctx ends is not held by a slow store; once an event is found,
// consuming a requires_action is not cut short, or a later wait could get
// the stale pause.
func (d *Dispatcher) watch(ctx context.Context, id string, corr bool) *Future {
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
	f.linked = true
	d.pending++
	if h := d.waiters[key]; h != nil {
		// Second in line: the head keeps the poll schedule.
		f.next = h.next
		h.next = f
		if !corr && len(id) > len(h.id) {
			h.id = id // poll with the most qualified form seen
		}
	} else {
		d.waiters[key] = f
		if d.cfg.poller != nil && !corr {
			d.scheduleLocked(f, d.nowNanos()+int64(d.cfg.quiet), 0)
		}
	}
	d.mu.Unlock()

	// Registered first, then looked up: a Deliver that saved before our
	// registration is visible here, one that saves after it finds us.
	ev, err := d.store.Load(ctx, key)
	if err != nil && ctx.Err() == nil {
		d.log.Warn("dispatch: store: load", slog.String("key", key), slog.Any("error", err))
	}
	if ev != nil {
		d.resolveLoaded(ctx, f, key, ev)
	}
	return f
}

func (d *Dispatcher) resolveLoaded(ctx context.Context, f *Future, key string, ev *webhook.Event) {
	d.mu.Lock()
	if !f.linked {
		d.mu.Unlock()
		return
	}
	d.unlinkLocked(f, key)
	d.mu.Unlock()
	if needsAction(ev) {
		var buf [3]string
		keys, _ := d.keysOf(context.WithoutCancel(ctx), ev, buf[:0])
		if !slices.Contains(keys, key) {
			keys = append(keys, key)
		}
		d.consume(context.WithoutCancel(ctx), keys, ev)
	}
	d.resolved.Add(1)
	if ev.Polled {
		d.resolvedByPoll.Add(1)
	}
	f.finish(ev, nil)
}

// unlinkLocked removes f from key's list, handing the poll schedule on when
// f was the head.
func (d *Dispatcher) unlinkLocked(f *Future, key string) {
	h := d.waiters[key]
	if h == f {
		n := f.next
		if n == nil {
			delete(d.waiters, key)
			d.unscheduleLocked(f)
		} else {
			d.waiters[key] = n
			n.due, n.tries = f.due, f.tries
			if f.hidx >= 0 {
				n.hidx = f.hidx
				d.heap[n.hidx] = n
				f.hidx = -1
			}
		}
	} else {
		for p := h; p != nil; p = p.next {
			if p.next == f {
				p.next = f.next
				break
			}
		}
	}
	f.next = nil
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
			f.next = nil
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
