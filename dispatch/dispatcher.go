package dispatch

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/genai"

	"github.com/genaihook/genaihook/internal/httpsurl"
	"github.com/genaihook/genaihook/verify"
	"github.com/genaihook/genaihook/webhook"
)

// Dispatcher matches webhook events to the waits for them. Its Handler
// receives the events; Wait waits for a job's outcome. With a genai client
// the job's state, read back through the API, is the truth: an event only
// prompts that read, and the same reads, made on a backoff schedule, end
// the waits whose event never comes.
//
// A Dispatcher is safe for concurrent use. New starts no goroutine; the
// reads it schedules end with Close.
type Dispatcher struct {
	cfg   config
	store Store
	log   *slog.Logger
	url   string

	mu        sync.Mutex
	closed    bool
	shut      atomic.Bool        // closed, for Deliver to read without mu
	waiters   map[string]*Future // by key, head of a list linked by next
	pending   int
	heap      pollHeap // heads of keys awaiting their next poll
	stopTimer func() bool
	armedAt   int64  // due time of the armed timer, unix ns
	timerGen  uint64 // identifies the armed timer
	notFound  map[string]notFoundRun
	pollGen   uint32            // numbers the reads, see Future.gen
	reading   map[string]uint32 // the read in flight of each key, by gen
	owned     ownedJobs         // the binding's reads, with a lock of its own
	rec       reconciler        // the sweeps of the batch listing

	unsubscribe func() // from the store

	pollCtx     context.Context
	cancelPolls context.CancelFunc
	closing     chan struct{}
	sem         chan struct{}
	wg          sync.WaitGroup

	deliveries, ignored, resolved, resolvedByPoll, polls, pollErrors atomic.Uint64
	trackFailed                                                      atomic.Int64 // unix ns of the last Store.Track that failed
}

// New returns a Dispatcher that reads jobs through client and asks Gemini,
// through the webhook_config it builds (WebhookConfig,
// InteractionWebhookConfig), to deliver their events to webhookURL, the
// public address of this receiver's Handler, path included, e.g.
// "https://example.com/gemini/webhook".
//
// With a client, made by genai.NewClient, each event is confirmed by
// reading the job back before it resolves a wait, and the same read is
// made on a backoff schedule (see the package doc) for a wait whose event
// does not come. With a nil client, events resolve waits as they arrive:
// nothing but the signature and the binding (see Handler) then vouches for
// them, and a lost event is never noticed.
//
// New checks everything now, so that a mistake fails at start-up: it
// returns an error naming the fix when webhookURL is not an absolute https
// URL (http is allowed only to a loopback host, for tests), when client
// was not made by genai.NewClient, or when WithBinder, WithStore or
// WithVerifier was given nil. It starts no goroutine and makes no request:
// Google's keys are fetched when the first delivery needs them.
func New(client *genai.Client, webhookURL string, opts ...Option) (*Dispatcher, error) {
	cfg := defaultConfig()
	if client != nil {
		if client.Batches == nil || client.Operations == nil || client.Interactions == nil {
			return nil, errors.New("dispatch: New: the *genai.Client was not made by genai.NewClient (its services are nil); pass the client genai.NewClient returned, or nil to resolve waits from events alone")
		}
		cfg.poller = &genaiPoller{client: client}
	}
	if err := httpsurl.Check(webhookURL); err != nil {
		return nil, fmt.Errorf("dispatch: New: webhook URL: %w (give the public URL of this receiver's handler that Gemini can reach, e.g. https://example.com/gemini/webhook)", err)
	}
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.binder == nil {
		cfg.binder = newRandomBinder()
	}
	if cfg.verifier == nil {
		v, err := verify.New(verify.Config{JWKSURL: verify.GeminiJWKSURL})
		if err != nil {
			return nil, fmt.Errorf("dispatch: New: %w", err)
		}
		cfg.verifier = v
	}
	d := &Dispatcher{
		cfg:     cfg,
		store:   cfg.store,
		log:     cfg.logger,
		url:     webhookURL,
		waiters: make(map[string]*Future),
		closing: make(chan struct{}),
		sem:     make(chan struct{}, cfg.concurrency),
	}
	d.owned.sem = make(chan struct{}, maxOwnedReads)
	if d.store == nil {
		ms := newMemoryStore(cfg.now, cfg.ttl, cfg.maxStored)
		ms.log = cfg.logger
		d.store = ms
	}
	d.pollCtx, d.cancelPolls = context.WithCancel(context.Background())
	d.unsubscribe = d.store.Subscribe(d.wakeRemote)
	return d, nil
}

// wakeRemote handles an event another replica delivered and saved under
// key, or, for an empty key, a store that may have missed some: every
// pending wait then records again that it awaits its job, and reads the
// store again.
func (d *Dispatcher) wakeRemote(key string, ev *webhook.Event) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	if key != "" && ev != nil {
		d.mu.Unlock()
		d.offer(context.Background(), key, ev)
		return
	}
	keys := make([]string, 0, len(d.waiters))
	for k := range d.waiters {
		keys = append(keys, k)
	}
	d.wg.Add(1)
	d.mu.Unlock()
	go func() {
		defer d.wg.Done()
		for _, k := range keys {
			// The store may have lost, or never taken, the record that
			// the job is awaited (a Track that failed while it was down):
			// make it again, so that other replicas bind the job's events.
			d.track(d.pollCtx, k)
			if ev := d.load(d.pollCtx, k); ev != nil {
				d.offer(d.pollCtx, k, ev)
			}
		}
	}()
}

// track records in the store that a wait here awaits key's job, so that
// other replicas bind its events. A failure is logged and remembered: the
// binding then answers 503 rather than 403 for a while (see trackDoubt),
// and the store's next wake("", nil) records it again.
func (d *Dispatcher) track(ctx context.Context, key string) {
	if err := d.store.Track(ctx, key); err != nil && ctx.Err() == nil {
		d.trackFailed.Store(d.nowNanos())
		d.log.Warn("dispatch: store: track", slog.String("key", truncateID(key)), slog.Any("error", err))
	}
}

// offer hands the waits on key an event found in the store: with a
// poller, as a hint that the job's state be read now; otherwise the event
// resolves them (a requires_action only if this call uses it up).
func (d *Dispatcher) offer(ctx context.Context, key string, ev *webhook.Event) {
	d.mu.Lock()
	if d.cfg.poller != nil {
		d.hintLocked(key)
		d.mu.Unlock()
		return
	}
	if needsAction(ev) {
		d.mu.Unlock()
		if err := d.handPause(ctx, []string{key}, ev); err != nil {
			d.log.Warn("dispatch: a pause found in the store could not be handed over; it stays for a later read", slog.String("id", truncateID(ev.Data.ID)), slog.Any("error", err))
		}
		return
	}
	h := d.takeLocked(key)
	d.mu.Unlock()
	d.finishList(h, ev)
}

// holds reports whether key's stored event is ev or a copy of it.
func (d *Dispatcher) holds(ctx context.Context, key string, ev *webhook.Event) bool {
	got := d.load(ctx, key)
	return got != nil && got.Type == ev.Type && got.WebhookID == ev.WebhookID && got.Timestamp.Equal(ev.Timestamp)
}

// handPause gives the requires_action ev to one wait on the first of
// candidates that has any (see claim): two waits acting on one pause would
// answer one function call twice. With no wait at all ev is left
// unconsumed, for the first wait that comes.
func (d *Dispatcher) handPause(ctx context.Context, candidates []string, ev *webhook.Event) error {
	d.mu.Lock()
	var f *Future
	var key string
	for _, k := range candidates {
		if h := d.waiters[k]; h != nil {
			f, key = h, k
			break
		}
	}
	d.mu.Unlock()
	if f == nil {
		return nil
	}
	return d.claim(ctx, f, key, ev)
}

// claim resolves the wait f on key with ev, an event found in the store or
// a pause just read. f is taken out of its list first, so that nothing else
// resolves it meanwhile; a pause is then consumed under all of its keys
// (see claimKeys). If another wait got the pause first, f goes back to waiting with
// the poll schedule it had, and the store is read again for what was saved
// while f was out of its list: without a poller that resolves f, with one a
// terminal event found has the job read now. It returns the store's error
// when the pause could not be consumed; f then waits on.
func (d *Dispatcher) claim(ctx context.Context, f *Future, key string, ev *webhook.Event) error {
	for ev != nil {
		d.mu.Lock()
		if f.flags&linked == 0 {
			d.mu.Unlock()
			return nil // resolved or stopped meanwhile
		}
		s := d.unlinkKeepLocked(f, key)
		d.mu.Unlock()
		used, err := true, error(nil)
		if needsAction(ev) {
			var buf [maxKeys + 1]string
			used, err = d.consume(ctx, claimKeys(ev, key, buf[:0]), ev)
		}
		if used {
			d.resolved.Add(1)
			if ev.Polled {
				d.resolvedByPoll.Add(1)
			}
			f.finish(ev, nil)
			return nil
		}
		d.mu.Lock()
		switch {
		case d.closed:
			d.mu.Unlock()
			f.finishWith(closed)
			return err
		case f.flags&stopped != 0:
			d.mu.Unlock()
			f.finish(nil, stopErr(f.flags))
			return err
		}
		d.relinkLocked(f, key, s)
		d.mu.Unlock()
		if err != nil {
			return err // the pause stays stored, unconsumed, for a retry
		}
		if ev = d.load(ctx, key); ev == nil {
			return nil
		}
		if d.cfg.poller != nil {
			if !needsAction(ev) {
				d.mu.Lock()
				d.hintLocked(key)
				d.mu.Unlock()
			}
			return nil // a pause stored is the one just lost, or the poll's to find
		}
	}
	return nil
}

// claimKeys appends to keys the keys a pause ev is consumed under when it
// goes to a wait on key: ev's own, and key. Their first is ev's first for
// every caller, so that consume decides under one key (see consume).
func claimKeys(ev *webhook.Event, key string, keys []string) []string {
	keys = eventKeys(ev.Type, ev.Data.ID, keys)
	if !slices.Contains(keys, key) {
		keys = append(keys, key)
	}
	return keys
}

// sched is the poll schedule a head Future held when it left its list.
type sched struct {
	due   int64
	tries uint8
	flags uint8 // hinted, recheck, polling
	ok    bool  // f was the list's only Future: the schedule left with it
}

// unlinkKeepLocked is unlinkLocked, returning the schedule f takes with it
// when it was alone on key (when it was not, the next Future keeps it).
func (d *Dispatcher) unlinkKeepLocked(f *Future, key string) sched {
	var s sched
	if d.waiters[key] == f && f.next() == nil {
		s = sched{due: f.due, tries: f.tries, flags: f.flags & (hinted | recheck | polling), ok: true}
	}
	d.unlinkLocked(f, key)
	return s
}

// relinkLocked puts f back on key after claim took it out, resuming the
// schedule s it left with when no other wait has taken the key meanwhile,
// so that a pause waiting hours for a human is read no more often than the
// backoff says.
func (d *Dispatcher) relinkLocked(f *Future, key string, s sched) {
	if !s.ok || d.waiters[key] != nil {
		d.linkLocked(f, key)
		return
	}
	d.waiters[key] = f
	d.pending++
	f.flags |= linked | s.flags&(hinted|recheck)
	f.tries = s.tries
	if d.joinReadLocked(f, key) {
		return
	}
	f.due = s.due
	if s.flags&polling != 0 { // its read ended meanwhile
		f.due = d.nowNanos() + int64(d.scheduleOf(f.id).backoff(s.tries, d.cfg.jitter))
	}
	heap.Push(&d.heap, f)
	d.rearmLocked()
}

// joinReadLocked makes f, a new head of key, wait for the read of key in
// flight, if there is one, rather than schedule a read of its own: one
// read per job at a time. The read reschedules f when it ends.
func (d *Dispatcher) joinReadLocked(f *Future, key string) bool {
	g, ok := d.reading[key]
	if ok {
		f.flags |= polling
		f.gen = g
	}
	return ok
}

// Deliver hands ev to the waits for its job, matched by data.id in full or
// short form within the family its type names, and keeps it (within the
// store's bounds) for waits that start later. Handler calls it for every
// delivery it accepts; call it yourself only to feed events that reached
// you another way.
//
// With a genai client (see New) the event is a hint: the waits on its job
// resolve once the job's state, read back through the API, confirms an
// outcome (or a requires_action newer than the last one returned). The
// read is made at once, by the poll scheduler, once per job however many
// events arrive for it meanwhile; if it still shows the job running it is
// repeated once after 2 s, since the API's reads may lag its events, and
// then the wait goes on at its poll schedule. A completion thus costs one
// GET. Without a client, ev resolves the waits itself.
//
// Events of a type webhook does not know are counted and otherwise ignored:
// Gemini may add progress events, and a wait resolved by one would end
// early. A duplicate, or an event older than what the job already
// reported, resolves nothing. An event whose timestamp is more than five
// minutes ahead of the clock is ordered by the clock instead. Deliver does
// constant work and starts no goroutine.
//
// It returns ErrClosed after Close, an error for a nil event, and the
// store's error when the event could not be recorded, so that the handler
// answers 5xx and Gemini retries.
func (d *Dispatcher) Deliver(ctx context.Context, ev *webhook.Event) error {
	if ev == nil {
		return errors.New("dispatch: nil event")
	}
	if d.shut.Load() {
		return ErrClosed
	}
	d.deliveries.Add(1)
	if !ev.Type.Known() {
		d.ignored.Add(1)
		d.log.DebugContext(ctx, "dispatch: ignoring event of unknown type", slog.String("type", string(ev.Type)), slog.String("id", truncateID(ev.Data.ID)))
		return nil
	}
	var buf [maxKeys]string
	return d.record(ctx, eventKeys(ev.Type, ev.Data.ID, buf[:0]), d.clampTimestamp(ctx, ev), false)
}

// record saves ev under keys and hands it to the waits on the keys the
// store accepted it for: as a hint to read the job when there is a poller
// and ev is a delivery, or else to resolve them. read says ev was read from
// the API by the poller (a caller of Deliver cannot claim that by setting
// ev.Polled). len(keys) must be at most maxKeys.
func (d *Dispatcher) record(ctx context.Context, keys []string, ev *webhook.Event, read bool) error {
	stored := ev
	if ev.Job != nil {
		// The store keeps the event, not the job, which may be large (a
		// batch's inlined responses); a later wait reads the job again.
		c := *ev
		c.Job = nil
		stored = &c
	}
	var err error
	var saved [maxKeys]bool
	for i, k := range keys {
		ok, serr := d.store.Save(ctx, k, stored)
		if serr != nil {
			err = fmt.Errorf("dispatch: store: %w", serr)
			break
		}
		saved[i] = ok
	}
	if d.cfg.poller != nil {
		if !read {
			d.mu.Lock()
			for i, k := range keys {
				if saved[i] || err != nil { // a store that failed decides nothing: read
					d.hintLocked(k)
				}
			}
			d.mu.Unlock()
			return err
		}
		// The API's answer, whatever the store held: a hint stamped after
		// the job's own update time must not hide it. Only the pause
		// last consumed (see consume) decides whether a pause is new.
		for i := range keys {
			saved[i] = true
		}
	}
	if needsAction(ev) {
		var buf [maxKeys]string
		candidates := buf[:0]
		for i, k := range keys {
			// A redelivery of the pause the store holds is offered again:
			// the delivery before it may have failed to hand it over.
			if saved[i] || err == nil && d.holds(ctx, k, ev) {
				candidates = append(candidates, k)
			}
		}
		if perr := d.handPause(ctx, candidates, ev); err == nil {
			err = perr
		}
		return err
	}
	if !slices.Contains(saved[:len(keys)], true) {
		return err // a duplicate or a stale event: no wait to take
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

// storeTimeout bounds the store calls that consume a pause (see consume).
const storeTimeout = 5 * time.Second

// maxKeys bounds the keys of one event: a video event meets interaction
// waits too.
const maxKeys = 2

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

// consume marks a requires_action event as used under all its keys,
// before the wait it resolves sees it, so that a wait started afterwards
// waits for the next event. It reports whether this call used ev up, as
// decided under keys[0], the same key for every caller with the same event,
// so that of two callers at most one gets true. A store that fails under
// keys[0], or ctx ending first, makes it return false and the error: the
// pause then stays for a retry (Gemini's, or the next read) rather than be
// handed out twice. (A store that consumed it but failed to answer loses
// it for this event; the job's next one still comes.)
func (d *Dispatcher) consume(ctx context.Context, keys []string, ev *webhook.Event) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	var used bool
	for i, k := range keys {
		ok, err := d.store.Consume(ctx, k, ev)
		switch {
		case err != nil && i == 0:
			return false, fmt.Errorf("dispatch: store: %w", err)
		case err != nil:
			d.log.WarnContext(ctx, "dispatch: store: consume", slog.String("id", truncateID(ev.Data.ID)), slog.Any("error", err))
		case i == 0:
			used = ok
		}
	}
	return used, nil
}

// takeLocked detaches every Future waiting on key.
func (d *Dispatcher) takeLocked(key string) *Future {
	h := d.waiters[key]
	if h == nil {
		return nil
	}
	delete(d.waiters, key)
	d.unscheduleLocked(h)
	for f := h; f != nil; f = f.next() {
		f.flags &^= linked
		d.pending--
	}
	return h
}

func (d *Dispatcher) finishList(h *Future, ev *webhook.Event) {
	var n uint64
	for f := h; f != nil; f = f.next() {
		n++
	}
	if n == 0 {
		return
	}
	// Counted before the waits see their event, so stats read after a
	// Wait returns includes it.
	d.resolved.Add(n)
	if ev.Polled {
		d.resolvedByPoll.Add(n)
	}
	finishAll(h, &result{ev: ev})
}

// finishAll resolves every Future of the detached list h with r.
func finishAll(h *Future, r *result) {
	for f := h; f != nil; {
		next := f.next()
		f.sib = nil
		f.finishWith(r)
		f = next
	}
}

// Wait waits for the outcome of the job id, as genai returned it
// (BatchJob.Name "batches/…", GenerateVideosOperation.Name
// "models/…/operations/…", an Interaction's ID), and returns its event.
// An event that arrived before the call counts: with a genai client the job
// is then read at once, without one Wait returns at once. After an
// interaction.requires_action it returns the job's next event, not the
// same pause again; a pause goes to one wait only.
//
// With a genai client (see New) the event is built from the job as the API
// reported it (Event.Polled is true), and Event.Job holds that job in
// genai's own type: *genai.BatchJob, *genai.GenerateVideosOperation or
// *interactions.Interaction. Without one it is the delivered event, and
// Event.Job is nil.
//
// The error is nil when the job succeeded (batch.succeeded,
// video.generated with a video, interaction.completed) or asks for action
// (interaction.requires_action: act, then Wait again). Otherwise Wait
// returns the event and a *JobError (errors.Is ErrJobFailed,
// ErrJobExpired or ErrJobCancelled) carrying Gemini's error_code and
// error_message: for a failed, expired or cancelled job, a video
// operation that is done with every video filtered by safety checks or
// with no result at all, an interaction that ended incomplete or over its
// budget. Without an event, it returns ErrJobNotFound when the API keeps
// saying the job does not exist (see the package doc), ErrInvalidID for an
// id of no form genai returns, ErrClosed when the Dispatcher is closed, or
// ctx's error when ctx ends first, releasing everything the wait held. If
// ctx ends while a pause is being handed to this wait, Wait returns the
// pause once the store has recorded it (at once with the default store, at
// most 5 s later with another).
func (d *Dispatcher) Wait(ctx context.Context, id string) (*webhook.Event, error) {
	f := d.watch(ctx, id, d.slowStore(), false)
	select {
	case <-f.done:
	case <-ctx.Done():
		d.stop(f, ctx.Err())
		<-f.done // resolved meanwhile: its event is not lost
	}
	return f.Result()
}

// Watch is Wait for a select: it registers the wait and returns a Future
// that resolves as Wait would. The Future releases what it holds in the
// Dispatcher when ctx ends (Result then returns ctx's error, unless a
// pause was being handed to it at that moment, as for Wait) or when it
// resolves, whichever comes first; it holds no goroutine, so thousands of
// them cost only memory (about 240 bytes each while pending, measured with
// a million pending, with a ctx that cannot be canceled; context.AfterFunc
// adds its own for one that can). Watch reads the store once before it
// returns, so that an outcome already known resolves the Future at once;
// with a Store other than the default one that read takes as long as the
// store does, ctx bounding it.
func (d *Dispatcher) Watch(ctx context.Context, id string) *Future {
	return d.watch(ctx, id, false, true)
}

// slowStore reports whether store calls may block for long (any Store but
// the in-memory one, which only takes a lock held for map operations).
// A Wait then looks the store up in a goroutine of its own, so that its ctx
// ends it on time even while the store is held up.
func (d *Dispatcher) slowStore() bool {
	_, mem := d.store.(*memoryStore)
	return !mem
}

// stop ends f with err (ctx's, context.Canceled or DeadlineExceeded) and
// releases it, and reports whether it did, unless it has resolved or is
// being resolved: a wait that is taking a stored requires_action another
// wait used up first then ends with err rather than wait again.
func (d *Dispatcher) stop(f *Future, err error) bool {
	flag := canceled
	if errors.Is(err, context.DeadlineExceeded) {
		flag = deadline
	}
	d.mu.Lock()
	if f.flags&linked == 0 {
		f.flags |= flag
		d.mu.Unlock()
		return false
	}
	d.unlinkLocked(f, idKey(f.id))
	d.mu.Unlock()
	f.finish(nil, stopErr(flag))
	return true
}

// watch registers a Future on id and resolves it from the store when its
// event is already there: at once, or, with async, from a goroutine of its
// own. With release, ctx's end stops the Future. ctx bounds that store
// lookup, so that a Wait whose ctx ends is not
// held by a slow store; once an event is found, consuming a
// requires_action is not cut short, or a later wait could get the stale
// pause.
func (d *Dispatcher) watch(ctx context.Context, id string, async, release bool) *Future {
	f := &Future{id: id, done: make(chan struct{}), hidx: -1}
	key := idKey(id)
	if key == "" {
		f.finish(nil, fmt.Errorf("%w: %q (pass the id as genai returned it: BatchJob.Name, GenerateVideosOperation.Name, or an interaction's ID)", ErrInvalidID, truncateID(id)))
		return f
	}
	if err := ctx.Err(); err != nil {
		f.finish(nil, err)
		return f
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		f.finish(nil, ErrClosed)
		return f
	}
	d.linkLocked(f, key)
	if release && ctx.Done() != nil {
		f.res = &result{release: context.AfterFunc(ctx, func() { d.stop(f, ctx.Err()) })}
	}
	if async {
		d.wg.Add(1) // under mu, so that Close, once it holds mu, waits for it
	}
	d.mu.Unlock()

	// Registered first, then looked up: a Deliver that saved before our
	// registration is visible here, one that saves after it finds us.
	lookup := func() {
		if _, mem := d.store.(*memoryStore); !mem {
			d.track(ctx, key)
		}
		if ev := d.load(ctx, key); ev != nil {
			if d.cfg.poller != nil {
				d.mu.Lock()
				d.hintLocked(key)
				d.mu.Unlock()
				return
			}
			if err := d.claim(ctx, f, key, ev); err != nil {
				d.log.Warn("dispatch: a pause found in the store could not be handed over; the wait goes on", slog.String("id", truncateID(id)), slog.Any("error", err))
			}
		}
	}
	if async {
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
	f.flags |= linked
	d.pending++
	h := d.waiters[key]
	if h == nil {
		d.waiters[key] = f
		if d.joinReadLocked(f, key) {
			return
		}
		// Polled, or without a poller logged once if nothing comes.
		d.scheduleLocked(f, d.nowNanos()+int64(d.firstWait(f.id)), 0)
		return
	}
	// Second in line: the head keeps the poll schedule.
	n := h.next()
	f.sib = &siblings{next: n, prev: h}
	if n != nil {
		n.sib.prev = f
	}
	if h.sib == nil {
		h.sib = new(siblings)
	}
	h.sib.next = f
	if len(f.id) > len(h.id) {
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

// unlinkLocked removes f from key's list in constant time, handing the
// poll schedule on when f was the head, and with it the most qualified form
// of the id seen, so that the poll id never regresses to a shorter one.
func (d *Dispatcher) unlinkLocked(f *Future, key string) {
	n := f.next()
	switch {
	case d.waiters[key] != f:
		p := f.prev()
		p.sib.next = n
		if n != nil {
			n.sib.prev = p
		} else if p.sib.prev == nil {
			p.sib = nil // alone again
		}
	case n == nil:
		delete(d.waiters, key)
		d.unscheduleLocked(f)
	default:
		d.waiters[key] = n
		n.sib.prev = nil
		if n.sib.next == nil {
			n.sib = nil // alone now
		}
		n.due, n.tries, n.gen = f.due, f.tries, f.gen
		n.flags |= f.flags &^ (linked | stopped)
		if len(f.id) > len(n.id) {
			n.id = f.id
		}
		if f.hidx >= 0 {
			n.hidx = f.hidx
			d.heap[n.hidx] = n
			f.hidx = -1
		}
	}
	f.sib = nil
	f.flags &^= linked | polling | hinted | recheck
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
	d.shut.Store(true)
	if d.stopTimer != nil {
		d.stopTimer()
		d.stopTimer = nil
	}
	lists := make([]*Future, 0, len(d.waiters))
	for _, h := range d.waiters {
		for f := h; f != nil; f = f.next() {
			f.flags &^= linked
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
		finishAll(h, closed)
	}
	d.wg.Wait()
	return nil
}

// stats counts what a Dispatcher has done since New, for tests.
type stats struct {
	deliveries, ignored, polls, pollErrors, resolved, resolvedByPoll uint64
	pending                                                          int
}

func (d *Dispatcher) stats() stats {
	d.mu.Lock()
	pending := d.pending
	d.mu.Unlock()
	return stats{
		deliveries: d.deliveries.Load(), ignored: d.ignored.Load(),
		polls: d.polls.Load(), pollErrors: d.pollErrors.Load(),
		resolved: d.resolved.Load(), resolvedByPoll: d.resolvedByPoll.Load(),
		pending: pending,
	}
}

func (d *Dispatcher) nowNanos() int64 { return d.cfg.now().UnixNano() }
