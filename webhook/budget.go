package webhook

import (
	"context"
	"sync"
	"time"
)

// budget is the context of one delivery when the Handler has a time budget
// (WithTimeout): context.WithTimeout's behaviour without its price on
// every request. context.WithTimeout makes a timer, a channel and a
// registration with the parent at once, four allocations and a timer in
// the runtime's heap for each delivery, though most deliveries never wait
// on anything: an HMAC check, an uncontended deduplicator and a
// HandlerFunc that hands the event off do not call Done.
//
// A budget costs one allocation. Its Deadline is known from the start;
// Err reads the clock and the parent; the channel, the timer and the
// watch on the parent are made by the first call to Done, and only if the
// budget has not already ended then. As the context.Context contract
// requires, once Done has been called Err is non-nil exactly when the
// channel is closed: both change together, under mu.
type budget struct {
	parent   context.Context
	deadline time.Time

	mu         sync.Mutex
	err        error         // why it ended; nil while it runs
	done       chan struct{} // made by the first Done; closed when err is set
	timer      *time.Timer   // armed by the first Done
	stopParent func() bool   // stops the watch on parent that Done started
	afters     []*afterFunc  // registered by AfterFunc, run when it ends
}

// afterFunc is a function registered with budget.AfterFunc; ran is set
// once it has been started or stopped, under budget.mu.
type afterFunc struct {
	f   func()
	ran bool
}

// newBudget returns a budget ending d from now, or when parent ends if that
// is sooner, as context.WithTimeout(parent, d) does.
func newBudget(parent context.Context, d time.Duration) *budget {
	deadline := time.Now().Add(d)
	if pd, ok := parent.Deadline(); ok && pd.Before(deadline) {
		deadline = pd
	}
	return &budget{parent: parent, deadline: deadline}
}

// Deadline returns when the budget runs out.
func (b *budget) Deadline() (time.Time, bool) { return b.deadline, true }

// Value returns the parent's value for key.
func (b *budget) Value(key any) any { return b.parent.Value(key) }

// Err returns context.DeadlineExceeded once the deadline has passed, the
// parent's error once it has ended, context.Canceled once the delivery has
// been answered, and nil before any of these.
func (b *budget) Err() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.check()
}

// Done returns a channel closed when Err becomes non-nil. The first call
// arms the timer and the watch on the parent, unless the budget has
// already ended, when the channel it returns is closed already.
func (b *budget) Done() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.doneLocked()
}

// AfterFunc arranges for f to run in its own goroutine once the budget
// ends, as context.AfterFunc(b, f) would, and returns a function that
// stops it (reporting whether it did). The context package calls it to
// tie a context derived from the budget (context.WithCancel and the
// others) to the budget's end; without it, each derived context would cost
// a goroutine of its own watching Done until either ended.
func (b *budget) AfterFunc(f func()) (stop func() bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.doneLocked()
	a := &afterFunc{f: f}
	if b.err != nil {
		a.ran = true
		go f()
	} else {
		b.afters = append(b.afters, a)
	}
	return func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		stopped := !a.ran
		a.ran = true
		return stopped
	}
}

// doneLocked is Done with b.mu held.
func (b *budget) doneLocked() <-chan struct{} {
	if b.done != nil {
		return b.done
	}
	ended := b.err != nil
	b.done = make(chan struct{})
	switch {
	case ended:
		close(b.done)
	case b.check() == nil:
		b.timer = time.AfterFunc(time.Until(b.deadline), func() { b.end(context.DeadlineExceeded) })
		if b.parent.Done() != nil {
			b.stopParent = context.AfterFunc(b.parent, func() { b.end(b.parent.Err()) })
		}
	}
	return b.done
}

// check ends the budget if its parent has ended or its deadline has
// passed, and returns its error. b.mu must be held.
func (b *budget) check() error {
	if b.err == nil {
		if err := b.parent.Err(); err != nil {
			b.endLocked(err)
		} else if !time.Now().Before(b.deadline) {
			b.endLocked(context.DeadlineExceeded)
		}
	}
	return b.err
}

// end ends the budget with err, unless it has already ended. The Handler
// calls it with context.Canceled once it has answered, as the cancel
// function of context.WithTimeout would be called, so that work a
// HandlerFunc left running with ctx stops too.
func (b *budget) end(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.err == nil {
		b.endLocked(err)
	}
}

func (b *budget) endLocked(err error) {
	b.err = err
	if b.done != nil {
		close(b.done)
	}
	if b.timer != nil {
		b.timer.Stop()
	}
	if b.stopParent != nil {
		b.stopParent()
	}
	for _, a := range b.afters {
		if !a.ran {
			a.ran = true
			go a.f()
		}
	}
	b.afters = nil
}

// String names the context, as the standard library's contexts do.
func (b *budget) String() string { return "webhook.budget" }
