package dispatch

import (
	"container/heap"
	"context"
	"log/slog"
	"math"
	"math/rand/v2"
	"time"
)

// The poll scheduler: one timer, armed for the earliest due poll of a heap
// of keys (each represented by the head Future of its list). When it fires,
// the due keys are polled, at most cfg.concurrency at a time, and those
// still pending go back on the heap with a doubled wait. No goroutine exists
// between polls.

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
func (d *Dispatcher) scheduleLocked(f *Future, due int64, tries uint16) {
	f.due, f.tries = due, tries
	heap.Push(&d.heap, f)
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
	tries uint16
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
	for len(d.heap) > 0 && d.heap[0].due <= now {
		f := heap.Pop(&d.heap).(*Future)
		jobs = append(jobs, pollJob{id: f.id, key: idKey(f.id), tries: f.tries})
	}
	d.rearmLocked()
	d.wg.Add(len(jobs))
	d.mu.Unlock()

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

// poll runs one Poll and reschedules the key if it is still awaited.
func (d *Dispatcher) poll(j pollJob) {
	defer func() {
		<-d.sem
		d.wg.Done()
	}()
	ctx, cancel := context.WithTimeout(d.pollCtx, d.cfg.pollTimeout)
	ev, err := d.cfg.poller.Poll(ctx, j.id)
	cancel()
	if d.pollCtx.Err() != nil {
		return // closing
	}
	d.polls.Add(1)
	switch {
	case err != nil:
		d.pollErrors.Add(1)
		d.log.Warn("dispatch: poll failed, will retry", slog.String("id", j.id), slog.Int("attempt", int(j.tries)+1), slog.Any("error", err))
	case ev != nil:
		ev.Polled = true
		if ev.Data.ID == "" || ev.Timestamp.IsZero() || ev.Raw == nil {
			// Complete what the Poller left out, and keep Raw the envelope
			// of the event as the waiter sees it.
			if ev.Data.ID == "" {
				ev.Data.ID = j.id
			}
			if ev.Timestamp.IsZero() {
				ev.Timestamp = d.cfg.now()
			}
			ev.Raw = envelopeJSON(ev)
		}
		if err := d.complete(d.pollCtx, ev); err != nil {
			d.log.Warn("dispatch: polled event not recorded", slog.String("id", j.id), slog.Any("error", err))
		}
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	// Still awaited (not terminal, an error, or a stale requires_action)
	// and not rescheduled by a newer list: wait longer.
	if h := d.waiters[j.key]; h != nil && h.hidx < 0 {
		tries := j.tries
		if tries < math.MaxUint16 {
			tries++
		}
		d.scheduleLocked(h, d.nowNanos()+int64(d.backoff(j.tries)), tries)
	}
}

// backoff is the wait after the poll numbered tries (from 0): interval,
// doubling, capped at maxInterval, spread by the jitter.
func (d *Dispatcher) backoff(tries uint16) time.Duration {
	w := d.cfg.interval
	for i := uint16(0); i < tries && w < d.cfg.maxInterval; i++ {
		w *= 2
	}
	w = min(w, d.cfg.maxInterval)
	if j := d.cfg.jitter; j > 0 {
		w = time.Duration(float64(w) * (1 + j*(2*rand.Float64()-1)))
	}
	return w
}
