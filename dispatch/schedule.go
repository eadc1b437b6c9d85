package dispatch

import (
	"container/heap"
	"context"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"time"

	"github.com/genaihook/genaihook/webhook"
)

// The poll scheduler: one timer, armed for the earliest due poll of a heap
// of keys (each represented by the head Future of its list). When it fires,
// the due keys are polled, at most cfg.concurrency at a time, and those
// still pending go back on the heap with a doubled wait. No goroutine exists
// between polls. Without a Poller a key on the heap is not polled: when it
// comes due its wait has heard nothing for the quiet period, which is
// logged once.

// The schedule of video generations, unless WithPollSchedule changes the
// schedule: Gemini sends no event for a failed video, so polling is how a
// failure is noticed. Google documents Veo's latency as 11 s at best and 6
// minutes at peak hours. The first poll comes videoQuietPeriod after the
// wait began, the next videoSteadyPolls ones videoPollInterval apart (each
// wait ±20% with the default jitter, so 24 to 36 s), covering at least
// 24 + 14×24 = 360 s, then the waits double up to the maximum interval like
// other jobs'. A video that fails (or whose event is lost) within its
// first six minutes is therefore noticed within 36 s (plus the poll's own
// time), for one call every 30 s while it runs: 6 for a three-minute
// video, where a 10 s loop makes 18. (genai's example polls every 20 s:
// at most 12 s sooner, for half as many calls again.)
const (
	videoQuietPeriod  = 30 * time.Second
	videoPollInterval = 30 * time.Second
	videoSteadyPolls  = 14
)

// When a job is not found: at least notFoundPolls polls in a row answered
// 404 or 403, the first and the last at least notFoundSpan apart. A job
// just created can be briefly unknown to the API that reads it.
const (
	notFoundPolls = 3
	notFoundSpan  = 2 * time.Minute
)

// pollSchedule is the poll schedule of one kind of job.
type pollSchedule struct {
	quiet, interval, maxInterval time.Duration
	steady                       uint8  // waits at interval before the doubling starts (at least 1)
	salt                         uint64 // of the job, for its jitter (see spreadOf)
}

// scheduleOf returns the schedule of the job id: its kind's, with what
// WithPollSchedule set in place of the defaults.
func (d *Dispatcher) scheduleOf(id string) pollSchedule {
	s := pollSchedule{quiet: defaultQuietPeriod, interval: defaultPollInterval, maxInterval: defaultMaxPollInterval,
		salt: d.saltOf(id)}
	switch familyOf(id) {
	case webhook.FamilyVideo:
		s.quiet, s.interval, s.steady = videoQuietPeriod, videoPollInterval, videoSteadyPolls
	case webhook.FamilyBatch:
		if d.lister() != nil {
			s.quiet, s.interval = reconciledBatchWait, reconciledBatchWait
		}
	}
	if d.cfg.quiet > 0 {
		s.quiet = d.cfg.quiet
	}
	if d.cfg.interval > 0 {
		s.interval = d.cfg.interval
	}
	if d.cfg.maxInterval > 0 {
		s.maxInterval = d.cfg.maxInterval
	}
	return s
}

// firstWait is how long a new wait on id goes before its job's first
// read: the quiet period of its kind, spread by the jitter. Without a
// poller it is when a wait that heard nothing is logged: the quiet period
// of batches, whatever the kind.
func (d *Dispatcher) firstWait(id string) time.Duration {
	if d.cfg.poller == nil {
		if d.cfg.quiet > 0 {
			return d.cfg.quiet
		}
		return defaultQuietPeriod
	}
	s := d.scheduleOf(id)
	return jittered(s.quiet, d.cfg.jitter, s.draw(math.MaxUint8+1))
}

// notFoundRun counts the polls of a key in a row that found no job.
type notFoundRun struct {
	n     uint16
	since int64 // unix ns of the first
}

type pollHeap []*Future

func (h pollHeap) Len() int           { return len(h) }
func (h pollHeap) Less(i, j int) bool { return h[i].due < h[j].due }
func (h pollHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx = int32(i)
	h[j].hidx = int32(j)
}
func (h *pollHeap) Push(x any) {
	f := x.(*Future)
	f.hidx = int32(len(*h))
	*h = append(*h, f)
}
func (h *pollHeap) Pop() any {
	old := *h
	f := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	f.hidx = -1
	return f
}

// scheduleLocked puts the head f on the heap, due at the given unix ns.
func (d *Dispatcher) scheduleLocked(f *Future, due int64, tries uint8) {
	f.due, f.tries, f.putOffs = due, tries, 0
	heap.Push(&d.heap, f)
	if (d.rec.tick == nil || d.rec.tick.hidx < 0) && d.lister() != nil && familyOf(f.id) == webhook.FamilyBatch {
		d.armSweepLocked(0)
	}
	d.rearmLocked()
}

// unscheduleLocked takes the head f off the heap; when nothing is left to
// poll it also stops the timer, so that a Dispatcher whose waits have all
// ended or been cancelled holds no timer.
func (d *Dispatcher) unscheduleLocked(f *Future) {
	if f.hidx < 0 {
		return
	}
	heap.Remove(&d.heap, int(f.hidx))
	if len(d.heap) == 1 && d.heap[0] == d.rec.tick {
		// Only the sweep is left: the waits still pending, if any, are
		// being read, and arm it again when their read reschedules them.
		heap.Pop(&d.heap)
	}
	if len(d.heap) == 0 && d.stopTimer != nil {
		d.stopTimer()
		d.stopTimer = nil
	}
}

// rearmLocked makes sure the timer fires by the earliest due poll.
func (d *Dispatcher) rearmLocked() {
	if d.closed || len(d.heap) == 0 {
		return
	}
	due := d.heap[0].due
	if d.stopTimer != nil && d.armedAt <= due {
		return
	}
	if d.stopTimer != nil {
		d.stopTimer()
	}
	d.timerGen++
	gen := d.timerGen
	d.armedAt = due
	delay := max(time.Duration(due-d.nowNanos()), 0)
	d.stopTimer = d.cfg.afterFunc(delay, func() { d.onTimer(gen) })
}

type pollJob struct {
	id    string
	key   string
	tries uint8
	gen   uint32 // identifies the read, see Future.gen
}

// confirmLag is the wait before the read that confirms an event is
// repeated, once, when it still shows the job running: the API's reads may
// lag its events.
const confirmLag = 2 * time.Second

// hintLocked has key's job read now, because an event says it changed: the
// read confirms the event, or finds it stale. One read per key at a time:
// an event arriving while the key is being read gets one more read after
// it, not a read of its own.
func (d *Dispatcher) hintLocked(key string) {
	h := d.waiters[key]
	if h == nil || d.closed {
		return
	}
	h.flags |= recheck | heard
	switch {
	case h.flags&polling != 0:
		h.flags |= hinted
	case h.hidx >= 0:
		h.due = d.nowNanos()
		heap.Fix(&d.heap, int(h.hidx))
		d.rearmLocked()
	}
}

func (d *Dispatcher) onTimer(gen uint64) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	if gen == d.timerGen {
		d.stopTimer = nil
	}
	now := d.nowNanos()
	var jobs []pollJob
	var quiet []string
	for len(d.heap) > 0 && d.heap[0].due <= now {
		f := heap.Pop(&d.heap).(*Future)
		if f == d.rec.tick {
			d.rec.sweeping = true
			d.wg.Add(1) // under mu, so that Close, once it holds mu, waits for it
			go d.sweep()
			continue
		}
		if d.cfg.poller == nil {
			quiet = append(quiet, f.id) // logged once: not scheduled again
			continue
		}
		f.flags |= polling
		d.pollGen++
		f.gen = d.pollGen
		key := idKey(f.id)
		if d.reading == nil {
			d.reading = make(map[string]uint32)
		}
		d.reading[key] = f.gen
		jobs = append(jobs, pollJob{id: f.id, key: key, tries: f.tries, gen: f.gen})
	}
	for k := range d.notFound {
		if d.waiters[k] == nil {
			delete(d.notFound, k) // resolved or stopped between polls
		}
	}
	d.rearmLocked()
	d.wg.Add(len(jobs))
	if len(quiet) > 0 {
		d.wg.Add(1) // under mu, so that Close, once it holds mu, waits for it
	}
	d.mu.Unlock()

	if len(quiet) > 0 {
		go func() {
			defer d.wg.Done()
			d.quietWaits(quiet)
		}()
	}

	for i, j := range jobs {
		select {
		case d.sem <- struct{}{}:
			go d.poll(j)
		case <-d.closing:
			d.wg.Add(i - len(jobs))
			return
		}
	}
}

// quietWaits handles the waits without a poller that heard nothing for
// their quiet period: the store is read once more, in case an event saved
// there was missed (a store read that failed when the wait began, a
// replica's wake lost), and a wait still without one is logged, once.
func (d *Dispatcher) quietWaits(ids []string) {
	for _, id := range ids {
		key := idKey(id)
		if ev := d.load(d.pollCtx, key); ev != nil {
			d.offer(d.pollCtx, key, ev)
			continue
		}
		d.log.Warn("dispatch: no event yet for a wait, and no poller to read the job's state: "+
			"if the job should have ended by now, check that the id is exactly as genai returned it "+
			"(BatchJob.Name, GenerateVideosOperation.Name, the interaction's ID), "+
			"that Gemini can reach the webhook URL, "+
			"that the handler does not refuse the deliveries (its log says why; create the job with the Dispatcher's webhook_config), "+
			"and consider passing the genai client to dispatch.New, so that the job's state is read when no event comes",
			slog.String("id", truncateID(id)), slog.Duration("waited", d.firstWait(id)))
	}
}

// poll runs one Poll and reschedules the key if it is still awaited.
func (d *Dispatcher) poll(j pollJob) {
	defer func() {
		<-d.sem
		d.wg.Done()
	}()
	d.mu.Lock()
	h := d.waiters[j.key]
	awaited, heard := h != nil, h != nil && h.flags&heard != 0
	if !awaited {
		d.readDoneLocked(j)
	}
	d.mu.Unlock()
	if !awaited {
		return // every wait on the job stopped while this poll was queued
	}
	ctx, cancel := context.WithTimeout(d.pollCtx, d.cfg.pollTimeout)
	defer cancel()
	ev, err := d.cfg.poller.Poll(ctx, j.id)
	if d.pollCtx.Err() != nil {
		return // closing
	}
	d.polls.Add(1)
	var st pollStatus
	switch {
	case err != nil:
		d.pollErrors.Add(1)
		st = classifyPollError(err, d.cfg.now())
		msg := "dispatch: poll failed, will retry"
		if st.notFound {
			msg = "dispatch: poll found no such job; its waits end if it stays so for " + notFoundSpan.String()
		}
		d.log.Warn(msg, slog.String("id", truncateID(j.id)), slog.Int("attempt", int(j.tries)+1), slog.Any("error", err))
	case ev != nil:
		d.settleRead(ctx, j.id, j.key, heard, ev)
	}

	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	// Still awaited (not terminal, an error, or a stale requires_action)
	// by the list this read was for, not rescheduled meanwhile: wait
	// longer, or end the waits of a job that is not found.
	d.readDoneLocked(j)
	h = d.waiters[j.key]
	if h == nil {
		delete(d.notFound, j.key)
	}
	if h == nil || h.gen != j.gen || h.hidx >= 0 {
		d.mu.Unlock()
		return
	}
	again := h.flags
	h.flags &^= polling | hinted
	now := d.nowNanos()
	if run, ok := d.notFoundLocked(j.key, st.notFound, now); ok {
		h = d.takeLocked(j.key)
		d.mu.Unlock()
		hint := ""
		if familyOf(j.id) == webhook.FamilyInteraction {
			hint = " (a bare id is read as an interaction's: a batch's id is \"batches/…\", a video's \"models/…/operations/…\", as genai returned them)"
		}
		gone := fmt.Errorf("%w: %s%s: %d reads in a row over %v answered 404 or 403 (last: %w)",
			ErrJobNotFound, truncateID(j.id), hint, run.n, time.Duration(now-run.since), err)
		d.log.Warn("dispatch: job not found; ending its waits", slog.String("id", truncateID(j.id)), slog.Any("error", err))
		finishAll(h, &result{err: gone})
		return
	}
	tries := j.tries
	if tries < math.MaxUint8 {
		tries++
	}
	var wait time.Duration
	switch {
	case err != nil && again&(hinted|recheck) != 0:
		// The read an event asked for failed: try once more soon.
		h.flags &^= recheck
		wait = confirmLag
	case err != nil:
		wait = d.scheduleOf(j.id).backoff(j.tries, d.cfg.jitter)
	case again&hinted != 0:
		// An event came while the job was being read: read it again.
	case again&recheck != 0:
		h.flags &^= recheck
		wait = confirmLag
	default:
		wait = d.scheduleOf(j.id).backoff(j.tries, d.cfg.jitter)
	}
	wait = max(wait, st.retryAfter)
	d.scheduleLocked(h, now+int64(wait), tries)
	d.mu.Unlock()
}

// settleRead resolves the waits on key (on the job id, in the form they
// gave) with ev, the job's terminal or paused state read from the API, by a
// poll or a sweep: it completes what the read left out, keeps the error of
// a delivered event the read confirms, logs an outcome read while no event
// came (heard is false), and records ev as a read.
func (d *Dispatcher) settleRead(ctx context.Context, id, key string, heard bool, ev *webhook.Event) {
	ev.Polled = true
	if ev.Data.ID == "" || ev.Timestamp.IsZero() || ev.Raw == nil {
		// Complete what the Poller left out, and keep Raw the envelope
		// of the event as the waiter sees it.
		if ev.Data.ID == "" {
			ev.Data.ID = id
		}
		// A pause without a time stays without one: stamped with the
		// clock, every poll of the same pause would look like a new
		// one to the wait that already acted on it (see Supersedes).
		if ev.Timestamp.IsZero() && !needsAction(ev) {
			ev.Timestamp = d.cfg.now()
		}
		ev.Raw = envelopeJSON(ev)
	}
	d.keepDeliveredError(ctx, key, ev)
	if !heard && (outcomeOf(ev) != webhook.OutcomeFailed || ev.Type.Family() != webhook.FamilyVideo) {
		// Gemini sends no event for a failed video; any other outcome
		// read before its event came means the events are not arriving.
		d.log.Warn("dispatch: a job's outcome was found by reading it, with no event received: "+
			"check that Gemini can reach the webhook URL, that the job was created with the Dispatcher's webhook_config, "+
			"and that the URL serves the Dispatcher's Handler (its log says why it refuses deliveries)",
			slog.String("id", truncateID(id)), slog.String("type", string(ev.Type)))
	}
	var buf [maxKeys]string
	// The read's own deadline bounds the store calls too, so that a
	// store that hangs cannot hold this read's slot for ever.
	if err := d.record(ctx, eventKeys(ev.Type, ev.Data.ID, buf[:0]), ev, true); err != nil {
		d.log.Warn("dispatch: polled event not recorded", slog.String("id", truncateID(id)), slog.Any("error", err))
	}
}

// keepDeliveredError gives ev, a failure read from the API, the
// error_code and error_message of the delivered event it confirms when the
// read has none: genai's BatchJob carries no error for the Gemini API, while
// the batch.failed event does.
func (d *Dispatcher) keepDeliveredError(ctx context.Context, key string, ev *webhook.Event) {
	if eventError(ev) == nil || ev.Data.ErrorCode != "" {
		return
	}
	got := d.load(ctx, key)
	if got == nil || got.Polled || got.Type != ev.Type || got.Data.ErrorCode == "" && got.Data.ErrorMessage == "" {
		return
	}
	ev.Data.ErrorCode, ev.Data.ErrorMessage = got.Data.ErrorCode, got.Data.ErrorMessage
	ev.Raw = envelopeJSON(ev)
}

// readDoneLocked records that the read j is no longer in flight.
func (d *Dispatcher) readDoneLocked(j pollJob) {
	if d.reading[j.key] == j.gen {
		delete(d.reading, j.key)
	}
}

// notFoundLocked records whether the last poll of key found no job, and
// reports the run of such polls once it is long enough to end the waits.
func (d *Dispatcher) notFoundLocked(key string, notFound bool, now int64) (notFoundRun, bool) {
	if !notFound {
		delete(d.notFound, key)
		return notFoundRun{}, false
	}
	if d.notFound == nil {
		d.notFound = make(map[string]notFoundRun)
	}
	run, ok := d.notFound[key]
	if !ok {
		run.since = now
	}
	if run.n < math.MaxUint16 {
		run.n++
	}
	if run.n >= notFoundPolls && now-run.since >= int64(notFoundSpan) {
		delete(d.notFound, key)
		return run, true
	}
	d.notFound[key] = run
	return run, false
}

// backoff is the wait after the poll numbered tries (from 0): interval for
// the steady polls, then doubling, capped at maxInterval, spread by jitter.
func (s pollSchedule) backoff(tries uint8, jitter float64) time.Duration {
	w := s.interval
	for i := max(s.steady, 1) - 1; i < tries && w < s.maxInterval; i++ {
		w *= 2
	}
	return min(jittered(min(w, s.maxInterval), jitter, s.draw(uint64(tries))), s.maxInterval)
}

// draw returns the job's n-th uniform draw in [0, 1), for its jitter.
func (s pollSchedule) draw(n uint64) float64 { return unitOf(s.salt + n) }

// jittered spreads w by ±jitter (a fraction), as u, uniform in [0, 1),
// says.
func jittered(w time.Duration, jitter, u float64) time.Duration {
	if jitter > 0 {
		w = time.Duration(float64(w) * (1 + jitter*(2*u-1)))
	}
	return w
}

// The jitter is a function of the Dispatcher's seed (random unless a test
// sets it), the job's id and the number of its reads, rather than a draw
// from a shared source: the waits of one job are spread as with random
// draws, those of jobs started together apart from each other, and a run
// on a fake clock repeats exactly whatever order its reads finish in.

// saltOf returns the salt of the job id's draws.
func (d *Dispatcher) saltOf(id string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(id))
	return mix64(d.cfg.seed ^ h.Sum64())
}

// unitOf maps x to [0, 1), uniformly over x's bits.
func unitOf(x uint64) float64 { return float64(mix64(x)>>11) / (1 << 53) }

// mix64 is splitmix64's finaliser: each bit of x flips about half of the
// result's.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
