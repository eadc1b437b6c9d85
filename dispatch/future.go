package dispatch

import (
	"errors"

	"github.com/genaihook/genaihook/webhook"
)

// Future is a pending wait for one job's event, made by Watch or WatchKey.
// It holds no goroutine: Done is closed when it resolves, with the event,
// or with ErrClosed, or ErrStopped after Stop.
type Future struct {
	d    *Dispatcher
	id   string  // job id as given, or corrPrefix+key
	next *Future // next Future on the same key; guarded by d.mu
	prev *Future // previous one, nil for the head; guarded by d.mu
	done chan struct{}
	ev   *webhook.Event
	err  error

	// Poll schedule of the key, kept by the list's head; guarded by d.mu.
	due   int64 // unix ns of the next poll
	hidx  int32 // index in d.heap, -1 when not scheduled
	tries uint16

	linked  bool // in d.waiters; guarded by d.mu
	stopped bool // Stop was called while f was out of d.waiters; guarded by d.mu
	corr    bool // id is a correlation key
}

// Done returns a channel closed when the Future has resolved.
func (f *Future) Done() <-chan struct{} { return f.done }

// Result returns the event that resolved the Future, or the reason it
// ended without one: ErrClosed, ErrStopped, ErrInvalidID. Before Done is
// closed it returns ErrPending.
func (f *Future) Result() (*webhook.Event, error) {
	select {
	case <-f.done:
		return f.ev, f.err
	default:
		return nil, ErrPending
	}
}

// Stop abandons the Future and releases what it holds in the Dispatcher.
// It reports whether it stopped the Future: false means it had already
// resolved, or was being resolved, in which case Stop returns once Done is
// closed; Result then has the outcome, which Stop does not change. A Future
// that was taking a stored requires_action which another wait used up
// first ends with ErrStopped, and Stop reports true.
func (f *Future) Stop() bool {
	d := f.d
	d.mu.Lock()
	if !f.linked {
		// Resolved, or being resolved: a wait that lost a stored pause to
		// another ends with ErrStopped rather than wait again.
		f.stopped = true
		d.mu.Unlock()
		<-f.done
		return errors.Is(f.err, ErrStopped)
	}
	d.unlinkLocked(f, f.key())
	d.mu.Unlock()
	f.finish(nil, ErrStopped)
	return true
}

func (f *Future) key() string {
	if f.corr {
		return f.id
	}
	return idKey(f.id)
}

// finish is called once, by whoever unlinked f (or never linked it).
func (f *Future) finish(ev *webhook.Event, err error) {
	f.ev, f.err = ev, err
	close(f.done)
}
