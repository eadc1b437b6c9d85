package dispatch

import (
	"context"

	"github.com/genaihook/genaihook/webhook"
)

// Future is a pending wait for one job, made by Watch: Wait that a select
// can use. It holds no goroutine. Done is closed when it resolves; Result
// then returns what Wait would have.
//
// Its fields are laid out to fit 64 bytes: a million pending waits are a
// million Futures.
type Future struct {
	id   string    // job id as given
	sib  *siblings // links to the other Futures on the same key, nil when there are none; guarded by d.mu
	done chan struct{}
	// res is how the Future resolved, set once, before done is closed.
	// Until then it is nil, or, for a Watch whose ctx can end, a result
	// holding only the stop of its context.AfterFunc.
	res *result

	// Poll schedule of the key, kept by the list's head; guarded by d.mu.
	due   int64  // unix ns of the next poll
	hidx  int32  // index in d.heap, -1 when not scheduled
	gen   uint32 // of the read in flight, when polling
	tries uint8  // polls so far, saturating
	flags uint8  // guarded by d.mu
	// putOffs counts the sweeps in a row that put off the key's own read
	// (see maxPutOffs); an own read resets it.
	putOffs uint8
}

// siblings links the Futures waiting on one key when there are several: a
// key's first Future is the head of a list linked by next; prev is nil for
// the head. Most keys have one Future, which then pays nothing for links.
type siblings struct{ next, prev *Future }

// next returns the Future after f on its key, nil for the last.
func (f *Future) next() *Future {
	if f.sib == nil {
		return nil
	}
	return f.sib.next
}

// prev returns the Future before f on its key, nil for the head.
func (f *Future) prev() *Future {
	if f.sib == nil {
		return nil
	}
	return f.sib.prev
}

// Future flags.
const (
	linked   uint8 = 1 << iota // in d.waiters
	canceled                   // its ctx was canceled while f was out of d.waiters
	deadline                   // its ctx's deadline passed while f was out of d.waiters
	polling                    // head whose key is being polled now
	hinted                     // an event arrived for the key while it was being polled
	recheck                    // the read after an event may be repeated once (see confirmLag)
	heard                      // an event for the key arrived: it was not lost
)

// stopped is the two flags that record a stop.
const stopped = canceled | deadline

// Done returns a channel closed when the Future has resolved.
func (f *Future) Done() <-chan struct{} { return f.done }

// Result waits for the Future to resolve, then returns what Wait returns:
// the job's event, with a *JobError when it did not succeed; or, without an
// event, ErrJobNotFound, ErrClosed, ErrInvalidID, or the error of the
// context given to Watch once it ended. Result after Done is closed returns
// at once, and every call returns the same.
func (f *Future) Result() (*webhook.Event, error) {
	<-f.done
	if f.res.err != nil {
		return nil, f.res.err
	}
	return f.res.ev, eventError(f.res.ev)
}

// result is how a Future resolved: an event, or an error. The Futures
// resolved together share one.
type result struct {
	ev  *webhook.Event
	err error
	// release, in the res of a pending Future only, stops the
	// context.AfterFunc of Watch.
	release func() bool
}

// closed is the result of the waits that Close ends.
var closed = &result{err: ErrClosed}

// stopErr is the error of a wait stopped with flags.
func stopErr(flags uint8) error {
	if flags&deadline != 0 {
		return context.DeadlineExceeded
	}
	return context.Canceled
}

// finish is called once, by whoever unlinked f (or never linked it).
func (f *Future) finish(ev *webhook.Event, err error) { f.finishWith(&result{ev: ev, err: err}) }

func (f *Future) finishWith(r *result) {
	if p := f.res; p != nil && p.release != nil {
		p.release()
	}
	f.res = r
	close(f.done)
}
