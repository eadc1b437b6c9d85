package dispatch

import (
	"container/heap"
	"context"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/genai"

	"github.com/genaihook/genaihook/webhook"
)

// Reconciliation of batches through Batches.List: while batch waits are
// pending, one sweep every few minutes lists the project's batches and
// resolves every wait whose batch the listing shows ended, with the event
// a read of that batch alone would have built (batchEvent). The listing is
// a read of the API, so it confirms as Batches.Get does; one page of it
// covers a hundred batches for the price of one Get. A batch the sweep sees
// still running has its own read put off, so that batches are read one by
// one only when the sweeps do not see them.
//
// What the SDK source fixes of the listing (google.golang.org/genai
// v1.77.0, Batches.List): GET /v1beta/batches?pageSize=&pageToken=,
// answered {"operations":[…],"nextPageToken":…}, each operation converted
// as Batches.Get converts its answer. What it does not fix, and the sweep
// therefore does not rely on: the order of the listing (newest or oldest
// first), the largest page the server returns (it may return fewer than
// asked), and whether a batch just created is listed at once. A sweep
// follows nextPageToken until it has seen every pending batch, the listing
// ends, or it has read batchSweepPages pages; the batches it has not seen
// keep their own reads. In a project holding more than batchSweepPages ×
// batchListPageSize batches older than the pending ones, listed oldest
// first, the sweeps never reach them: every batch is then read on its own,
// on the schedule of reconciledBatchWait, as if there were no sweeps.
const (
	// batchSweepInterval is the time between two sweeps (spread by the
	// poll jitter, ±20% by default, so 3.2 to 4.8 minutes). A batch whose
	// event is lost is resolved by the first sweep after it ends: within
	// 4.8 minutes, under the 5 minutes we promise for a lost event, for
	// about 15 sweeps an hour however many batches are pending. The first
	// sweep comes one interval after a batch wait begins (well past the
	// quiet period in which its event is expected).
	batchSweepInterval = 4 * time.Minute
	// batchListPageSize is the pageSize a sweep asks for. The API
	// documents no maximum; a server that returns fewer is followed by its
	// nextPageToken. A hundred keeps a page small even when the batches
	// carry their inlined responses, which the listing returns as Get
	// does.
	batchListPageSize = 100
	// batchSweepPages bounds the List calls of one sweep: 20 pages, 2,000
	// batches at the page size asked for.
	batchSweepPages = 20
	// reconciledBatchWait is, while sweeps run, the wait before a batch's
	// own read: after the wait began, after each sweep that saw it running,
	// and between its reads (doubling to the 10-minute cap). Two sweep
	// intervals: a batch is read on its own only when two sweeps in a row
	// (failed, or cut short by batchSweepPages) did not see it, so that one
	// failed List does not turn into a Get per pending batch. A batch a
	// complete listing does not show at all is read at once instead, at
	// most notFoundPolls times, so that a job that does not exist still
	// ends its waits with ErrJobNotFound, after about three sweeps.
	reconciledBatchWait = 2 * batchSweepInterval
	// maxPutOffs is how many sweeps in a row may put off a batch's own
	// read by showing it running: 15, about an hour of sweeps. The
	// listing's freshness is not documented: one that kept showing an
	// ended batch running, its event lost, would otherwise put off for
	// ever the one read that sees the truth. A batch still running is
	// therefore read on its own about once an hour, and one a lagging
	// listing misreports is noticed within about 70 minutes of its end.
	maxPutOffs = 15
)

// batchLister lists the project's batches a page at a time; genaiPoller is
// one. A Dispatcher whose poller is a batchLister sweeps.
type batchLister interface {
	// listBatches returns the page of batches that token names (the first
	// for ""), at most pageSize of them, and the next page's token ("" on
	// the last page), or an error, classified as Poll's are (429 and 503
	// delay the next sweep).
	listBatches(ctx context.Context, pageSize int32, token string) ([]*genai.BatchJob, string, error)
}

// reconciler is the sweeps' state in a Dispatcher; guarded by d.mu but for
// lists.
type reconciler struct {
	tick     *Future     // on d.heap, due at the next sweep, while one is armed
	sweeping bool        // a sweep is in flight: it arms the next itself
	refused  atomic.Bool // a List was refused for good: no more sweeps
	sweeps   uint64      // sweeps made, numbering the draws of their jitter
	lists    atomic.Uint64
}

// lister returns the Dispatcher's batch lister, nil when it has none.
func (d *Dispatcher) lister() batchLister {
	if d.cfg.noSweeps || d.rec.refused.Load() {
		return nil
	}
	l, _ := d.cfg.poller.(batchLister)
	return l
}

// sweepSalt separates the sweeps' jitter draws from the jobs'.
const sweepSalt = 0x5eed_5eed_5eed_5eed

// armSweepLocked puts the next sweep on the poll heap, due one jittered
// interval from now, or atLeast from now when that is later, unless a sweep
// is armed or in flight already. The caller rearms the timer.
func (d *Dispatcher) armSweepLocked(atLeast time.Duration) {
	if d.closed || d.rec.sweeping || d.lister() == nil {
		return
	}
	if d.rec.tick == nil {
		d.rec.tick = &Future{hidx: -1}
	}
	if d.rec.tick.hidx >= 0 {
		return
	}
	wait := jittered(batchSweepInterval, d.cfg.jitter, unitOf(d.cfg.seed^sweepSalt+d.rec.sweeps))
	d.rec.tick.due = d.nowNanos() + int64(max(wait, atLeast))
	heap.Push(&d.heap, d.rec.tick)
}

// sweep reconciles the pending batch waits with the listing, then arms the
// next sweep if batch waits are still pending.
func (d *Dispatcher) sweep() {
	defer d.wg.Done()
	retryAfter := d.reconcile()
	d.mu.Lock()
	defer d.mu.Unlock()
	d.rec.sweeping = false
	d.rec.sweeps++
	for k := range d.waiters {
		if strings.HasPrefix(k, batchCollection) {
			d.armSweepLocked(retryAfter)
			d.rearmLocked()
			return
		}
	}
}

// reconcile runs one sweep: it reads the listing page by page, resolving
// the waits on the batches it shows ended and putting off the reads of
// those it shows running, until every pending batch has been seen, the
// listing ends, or batchSweepPages pages have been read. It returns the
// least wait before the next sweep that a failed List asked for (429, 503),
// 0 when none. A failed List ends the sweep; the next one starts over.
func (d *Dispatcher) reconcile() time.Duration {
	l := d.lister()
	d.mu.Lock()
	want := make(map[string]string) // key → the id the waits gave
	for k, h := range d.waiters {
		if strings.HasPrefix(k, batchCollection) {
			want[k] = h.id
		}
	}
	d.mu.Unlock()
	token := ""
	for page := 0; page < batchSweepPages && len(want) > 0; page++ {
		select {
		case d.sem <- struct{}{}: // a List is one of the reads in flight
		case <-d.closing:
			return 0
		}
		ctx, cancel := context.WithTimeout(d.pollCtx, d.cfg.pollTimeout)
		jobs, next, err := l.listBatches(ctx, batchListPageSize, token)
		cancel()
		<-d.sem
		if d.pollCtx.Err() != nil {
			return 0 // closing
		}
		d.rec.lists.Add(1)
		if err != nil {
			if listRefused(err) {
				d.stopSweeps(err)
				return 0
			}
			d.log.Warn("dispatch: listing batches failed; the next sweep lists them again, and batches not seen meanwhile are read one by one",
				slog.Int("page", page+1), slog.Any("error", err))
			return classifyPollError(err, d.cfg.now()).retryAfter
		}
		var running []string
		for _, job := range jobs {
			if job == nil {
				continue
			}
			key := idKey(job.Name)
			id, ok := want[key]
			if !ok {
				continue // not awaited, or seen on an earlier page
			}
			delete(want, key)
			if ev := batchEvent(id, job); ev != nil {
				d.settleListed(id, key, ev)
			} else {
				running = append(running, key)
			}
		}
		d.putOffReads(running)
		if next == "" {
			d.readUnlisted(want)
			return 0
		}
		token = next
	}
	return 0
}

// listRefused reports whether err, from a List, is an answer that the
// next List would get too: 400, 401, 403 or 404 (the key may not list
// batches, or the API does not serve the listing).
func listRefused(err error) bool {
	switch code, _, _ := apiErrorOf(err); code {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound:
		return true
	}
	return false
}

// stopSweeps ends the sweeps of d for good after a List was refused (see
// listRefused): batches are then read on their own on the schedule of
// other jobs, as without a lister, and each pending batch whose own read
// is further off than that schedule's quiet period is brought forward to
// it, so that a lost event is still noticed within about ten minutes.
func (d *Dispatcher) stopSweeps(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.rec.refused.Swap(true) {
		return
	}
	d.log.Warn("dispatch: listing batches was refused; batches are now read one by one instead of by sweeps",
		slog.Any("error", err))
	now := d.nowNanos()
	for k, h := range d.waiters {
		if !strings.HasPrefix(k, batchCollection) || h.hidx < 0 {
			continue
		}
		s := d.scheduleOf(h.id)
		if due := now + int64(s.quiet); h.due > due {
			h.due = due
			heap.Fix(&d.heap, int(h.hidx))
		}
	}
	d.rearmLocked()
}

// eventGrace is how long after a batch's end a sweep that finds it ended
// takes its event to be still on its way rather than lost, and so does not
// log that events are not arriving.
const eventGrace = time.Minute

// settleListed resolves the waits on key with ev, built from the listing.
func (d *Dispatcher) settleListed(id, key string, ev *webhook.Event) {
	d.mu.Lock()
	h := d.waiters[key]
	heardOf := h != nil && h.flags&heard != 0
	d.mu.Unlock()
	if !ev.Timestamp.IsZero() && d.cfg.now().Sub(ev.Timestamp) < eventGrace {
		heardOf = true // ended moments ago: its event may still come
	}
	if h == nil {
		return // resolved or stopped since the sweep began
	}
	ctx, cancel := context.WithTimeout(d.pollCtx, d.cfg.pollTimeout)
	defer cancel()
	d.settleRead(ctx, id, key, heardOf, ev)
}

// putOffReads moves the next own read of each batch of keys, which the
// listing just showed running, to reconciledBatchWait from now (the
// schedule's quiet period), unless it is due sooner for a reason of its
// own: an event asked for it (the listing may predate the event), it is in
// flight, or maxPutOffs sweeps in a row have put it off already. The
// listing shows the batch exists, which ends a run of reads that did not
// find it.
func (d *Dispatcher) putOffReads(keys []string) {
	if len(keys) == 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.nowNanos()
	for _, k := range keys {
		delete(d.notFound, k)
		h := d.waiters[k]
		if h == nil || h.hidx < 0 || h.flags&(polling|hinted|recheck|heard) != 0 || h.putOffs >= maxPutOffs {
			continue
		}
		s := d.scheduleOf(h.id)
		if due := now + int64(jittered(s.quiet, d.cfg.jitter, s.draw(math.MaxUint8+1))); due > h.due {
			h.due = due
			h.putOffs++
			heap.Fix(&d.heap, int(h.hidx))
		}
	}
	// The timer may now fire before anything is due; it then rearms.
}

// readUnlisted has the batches of want, which a listing read to its end
// did not show, read on their own now, unless they have been read
// notFoundPolls times already: a batch that does not exist (or is not this
// project's) then ends its waits with ErrJobNotFound after about three
// sweeps instead of its sparse schedule, and one the listing omits for a
// reason of its own costs at most that many extra reads.
func (d *Dispatcher) readUnlisted(want map[string]string) {
	if len(want) == 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.nowNanos()
	for k := range want {
		h := d.waiters[k]
		if h == nil || h.hidx < 0 || h.tries >= notFoundPolls || h.due <= now {
			continue
		}
		h.due = now
		heap.Fix(&d.heap, int(h.hidx))
	}
	d.rearmLocked()
}
