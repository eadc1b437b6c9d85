package dispatch

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/genaihook/genaihook/webhook"
)

// scriptedPoller answers each Poll with the next of its answers and reports
// the call on calls.
type scriptedPoller struct {
	calls   chan string
	answers chan pollAnswer
}

type pollAnswer struct {
	ev  *webhook.Event
	err error
}

func (p *scriptedPoller) Poll(ctx context.Context, id string) (*webhook.Event, error) {
	p.calls <- id
	select {
	case a := <-p.answers:
		return a.ev, a.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func recv[T any](t *testing.T, c <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-c:
		return v
	case <-time.After(10 * time.Second): // a failure guard, not a wait for success
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func TestLostWebhookResolvedByPoller(t *testing.T) {
	clk := newFakeClock()
	p := &scriptedPoller{calls: make(chan string), answers: make(chan pollAnswer)}
	d := mustNew(t, WithLogger(nil), withPoller(p), withClock(clk.Now), withAfterFunc(clk.AfterFunc), withPollJitter(0))
	defer d.Close()
	start := clk.Now()

	f := d.Watch(context.Background(), "batches/lost")
	if at := recv(t, clk.armed, "first timer"); !at.Equal(start.Add(defaultQuietPeriod)) {
		t.Fatalf("first poll at +%v, want +%v", at.Sub(start), defaultQuietPeriod)
	}
	// A second waiter on the same job shares the schedule.
	f2 := d.Watch(context.Background(), "batches/lost")
	clk.Advance(defaultQuietPeriod - time.Second)
	if s := d.stats(); s.polls != 0 {
		t.Fatalf("polled during the quiet period: %+v", s)
	}
	clk.Advance(time.Second)

	// Waits between polls: 30s, 60s, 120s, 240s, 480s, then the 10 min cap.
	wantGaps := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 10 * time.Minute, 10 * time.Minute}
	for i, gap := range wantGaps {
		if id := recv(t, p.calls, "poll"); id != "batches/lost" {
			t.Fatalf("polled %q", id)
		}
		var err error
		if i == 2 {
			err = errors.New("503 from the API") // retried, never fatal
		}
		p.answers <- pollAnswer{err: err}
		at := recv(t, clk.armed, "next timer")
		if got := at.Sub(clk.Now()); got != gap {
			t.Fatalf("wait after poll %d = %v, want %v", i+1, got, gap)
		}
		clk.AdvanceTo(at)
	}
	recv(t, p.calls, "last poll")
	cancelled := event(webhook.BatchCancelled, "batches/lost", clk.Now())
	p.answers <- pollAnswer{ev: cancelled}
	<-f.Done()
	<-f2.Done()
	for _, f := range []*Future{f, f2} {
		ev, err := f.Result()
		if !errors.Is(err, ErrJobCancelled) || ev.Type != webhook.BatchCancelled || !ev.Polled {
			t.Fatalf("Result = %+v, %v; want the polled event and ErrJobCancelled", ev, err)
		}
	}
	s := d.stats()
	if s.polls != uint64(len(wantGaps)+1) || s.pollErrors != 1 || s.resolvedByPoll != 2 || s.resolved != 2 {
		t.Errorf("Stats = %+v", s)
	}
	assertIdle(t, d)
}

// TestWebhookIsConfirmedByOneRead checks that an event within the quiet
// period has the job read at once, and that the read resolves the wait:
// one read for the completion, none after it.
func TestWebhookIsConfirmedByOneRead(t *testing.T) {
	clk := newFakeClock()
	p := &scriptedPoller{calls: make(chan string), answers: make(chan pollAnswer)}
	d := mustNew(t, WithLogger(nil), withPoller(p), withClock(clk.Now), withAfterFunc(clk.AfterFunc))
	defer d.Close()
	f := d.Watch(context.Background(), "v1_fast")
	recv(t, clk.armed, "timer")
	clk.Advance(5 * time.Second)
	d.Deliver(context.Background(), event(webhook.InteractionCompleted, "v1_fast", clk.Now()))
	if at := recv(t, clk.armed, "timer of the read"); !at.Equal(clk.Now()) {
		t.Fatalf("read armed for +%v, want now", at.Sub(clk.Now()))
	}
	if ev, err := peek(f); !errors.Is(err, errPending) {
		t.Fatalf("resolved before the read: %v, %v", ev, err)
	}
	clk.Advance(0)
	recv(t, p.calls, "read")
	p.answers <- pollAnswer{ev: event(webhook.InteractionCompleted, "v1_fast", clk.Now())}
	if ev, err := f.Result(); err != nil || !ev.Polled {
		t.Fatalf("Result = %v, %v", ev, err)
	}
	clk.Advance(time.Hour) // no timer left to fire
	assertIdle(t, d)
	if s := d.stats(); s.polls != 1 {
		t.Errorf("Polls = %d, want 1", s.polls)
	}
}

func TestStopHandsScheduleOn(t *testing.T) {
	clk := newFakeClock()
	p := &scriptedPoller{calls: make(chan string), answers: make(chan pollAnswer)}
	d := mustNew(t, WithLogger(nil), withPoller(p), withClock(clk.Now), withAfterFunc(clk.AfterFunc), withPollJitter(0))
	defer d.Close()
	a := d.Watch(context.Background(), "batches/j")
	recv(t, clk.armed, "timer")
	b := d.Watch(context.Background(), "batches/j")
	d.stop(a, context.Canceled)
	clk.Advance(defaultQuietPeriod)
	recv(t, p.calls, "poll of the remaining waiter")
	p.answers <- pollAnswer{ev: event(webhook.BatchSucceeded, "batches/j", clk.Now())}
	<-b.Done()
	if _, err := b.Result(); err != nil {
		t.Fatal(err)
	}
	assertIdle(t, d)
}

func TestPolledRequiresActionIsNotStale(t *testing.T) {
	// A poll that finds the pause already consumed keeps polling.
	clk := newFakeClock()
	p := &scriptedPoller{calls: make(chan string), answers: make(chan pollAnswer)}
	d := mustNew(t, WithLogger(nil), withPoller(p), withClock(clk.Now), withAfterFunc(clk.AfterFunc), withPollJitter(0))
	defer d.Close()
	ra := event(webhook.InteractionRequiresAction, "int", clk.Now())
	first := d.Watch(context.Background(), "int")
	clk.drainArmed()
	clk.Advance(defaultQuietPeriod)
	recv(t, p.calls, "poll")
	p.answers <- pollAnswer{ev: ra}
	if ev, _ := first.Result(); ev != ra {
		t.Fatal("first wait")
	}
	readsDone(t, d) // else the next wait joins the read still ending
	f := d.Watch(context.Background(), "int")
	clk.drainArmed() // Watch has armed the timer; only the next arming matters
	clk.Advance(defaultQuietPeriod)
	recv(t, p.calls, "poll")
	p.answers <- pollAnswer{ev: event(webhook.InteractionRequiresAction, "int", ra.Timestamp)}
	at := recv(t, clk.armed, "rescheduled")
	if _, err := peek(f); !errors.Is(err, errPending) {
		t.Fatalf("stale polled pause resolved the wait: %v", err)
	}
	clk.AdvanceTo(at)
	recv(t, p.calls, "poll")
	p.answers <- pollAnswer{ev: event(webhook.InteractionCompleted, "int", clk.Now())}
	<-f.Done()
	if ev, _ := f.Result(); ev.Type != webhook.InteractionCompleted {
		t.Fatalf("got %v", ev.Type)
	}
}

func TestBackoffJitter(t *testing.T) {
	d := mustNew(t, WithPollSchedule(time.Second, 10*time.Second, 100*time.Second))
	defer d.Close()
	for tries, base := range []time.Duration{10, 20, 40, 80, 100, 100} {
		base *= time.Second
		for range 50 {
			w := d.backoff(uint8(tries))
			if w < base*8/10 || w > base*12/10 {
				t.Fatalf("backoff(%d) = %v, want %v ±20%%", tries, w, base)
			}
		}
	}
	if w := d.backoff(255); w > 120*time.Second {
		t.Fatalf("backoff(60000) = %v", w)
	}
}

func TestCloseStopsPolls(t *testing.T) {
	clk := newFakeClock()
	p := &scriptedPoller{calls: make(chan string), answers: make(chan pollAnswer)}
	d := mustNew(t, WithLogger(nil), withPoller(p), withClock(clk.Now), withAfterFunc(clk.AfterFunc), withPollJitter(0))
	f := d.Watch(context.Background(), "batches/x")
	recv(t, clk.armed, "timer")
	clk.Advance(defaultQuietPeriod)
	recv(t, p.calls, "poll")
	d.Close() // cancels the poll in flight (it returns ctx's error) and waits for it
	if _, err := f.Result(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Result = %v", err)
	}
}

// TestNoTimerLeftWhenNothingToPoll checks that the poll timer is stopped
// once no wait is left to poll, whether the waits were cancelled or
// resolved.
func TestNoTimerLeftWhenNothingToPoll(t *testing.T) {
	clk := newFakeClock()
	p := &scriptedPoller{calls: make(chan string), answers: make(chan pollAnswer)}
	d := mustNew(t, WithLogger(nil), withPoller(p), withClock(clk.Now), withAfterFunc(clk.AfterFunc))
	defer d.Close()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	f := d.Watch(context.Background(), "batches/a")
	go func() {
		_, err := waitFuture(ctx, d, f)
		errc <- err
	}()
	recv(t, clk.armed, "timer")
	cancel()
	if err := recv(t, errc, "cancelled wait"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v", err)
	}
	if n := clk.live(); n != 0 {
		t.Errorf("%d timer(s) still armed after the only wait was cancelled", n)
	}

	g := d.Watch(context.Background(), "v1_b")
	d.Deliver(context.Background(), event(webhook.InteractionCompleted, "v1_b", clk.Now()))
	clk.Advance(0)
	recv(t, p.calls, "read")
	p.answers <- pollAnswer{ev: event(webhook.InteractionCompleted, "v1_b", clk.Now())}
	if _, err := g.Result(); err != nil {
		t.Fatal(err)
	}
	if n := clk.live(); n != 0 {
		t.Errorf("%d timer(s) still armed after the only wait resolved", n)
	}
	assertIdle(t, d)
}

// TestPolledEventCompleted checks that what a custom Poller leaves out of
// its event (the id, the timestamp, the raw envelope) is filled in, and Raw
// describes the event the waiter gets.
func TestPolledEventCompleted(t *testing.T) {
	clk := newFakeClock()
	p := &scriptedPoller{calls: make(chan string), answers: make(chan pollAnswer)}
	d := mustNew(t, WithLogger(nil), withPoller(p), withClock(clk.Now), withAfterFunc(clk.AfterFunc), withPollJitter(0))
	defer d.Close()
	f := d.Watch(context.Background(), "batches/bare")
	recv(t, clk.armed, "first timer")
	clk.Advance(defaultQuietPeriod)
	recv(t, p.calls, "poll")
	stamp := clk.Now().Add(-time.Minute)
	p.answers <- pollAnswer{ev: &webhook.Event{Type: webhook.BatchSucceeded, Timestamp: stamp}}
	<-f.Done()
	ev, err := f.Result()
	if err != nil {
		t.Fatal(err)
	}
	if !ev.Polled || ev.Data.ID != "batches/bare" || !ev.Timestamp.Equal(stamp) {
		t.Fatalf("event = %+v", ev)
	}
	raw, err := webhook.Parse(ev.Raw)
	if err != nil {
		t.Fatalf("Raw does not parse: %v (%s)", err, ev.Raw)
	}
	if raw.Data.ID != "batches/bare" || raw.Type != webhook.BatchSucceeded {
		t.Errorf("Raw = %s", ev.Raw)
	}
}

// A poll queued behind the concurrency limit does not run once every wait
// on its job has stopped.
func TestQueuedPollOfStoppedWaitDoesNotRun(t *testing.T) {
	clk := newFakeClock()
	// Room for an answer to a poll that should not happen, so that the
	// test ends either way.
	p := &scriptedPoller{calls: make(chan string, 4), answers: make(chan pollAnswer, 2)}
	d := mustNew(t, WithLogger(nil), withPoller(p), withClock(clk.Now), withAfterFunc(clk.AfterFunc),
		withPollJitter(0), withPollConcurrency(1))
	defer d.Close()
	waits := map[string]*Future{"batches/a": d.Watch(context.Background(), "batches/a"), "batches/b": d.Watch(context.Background(), "batches/b")}
	clk.drainArmed()
	clk.Advance(defaultQuietPeriod)
	first := recv(t, p.calls, "first poll")
	for id, f := range waits {
		if id != first {
			d.stop(f, context.Canceled) // its poll is queued behind the first
		}
	}
	p.answers <- pollAnswer{} // the first job is still running
	p.answers <- pollAnswer{} // for the queued poll, were it to run
	d.wg.Wait()               // both poll goroutines have returned
	if len(p.calls) != 0 {
		t.Fatalf("polled %q after its wait stopped", <-p.calls)
	}
	d.stop(waits[first], context.Canceled)
}

// A custom Poller that reports a pause without a timestamp: once a wait
// got the pause, a later wait is not given the same pause again by the
// next poll, and resolves with the job's end.
func TestPolledPauseWithoutTimestamp(t *testing.T) {
	clk := newFakeClock()
	p := &scriptedPoller{calls: make(chan string, 8), answers: make(chan pollAnswer)}
	d := mustNew(t, WithLogger(nil), withPoller(p), withClock(clk.Now), withAfterFunc(clk.AfterFunc), withPollJitter(0))
	defer d.Close()
	pause := func() *webhook.Event { return &webhook.Event{Type: webhook.InteractionRequiresAction} }

	f := d.Watch(context.Background(), "v1_nots")
	clk.drainArmed()
	clk.Advance(defaultQuietPeriod)
	recv(t, p.calls, "first poll")
	p.answers <- pollAnswer{ev: pause()}
	<-f.Done()
	if ev, err := f.Result(); err != nil || ev.Type != webhook.InteractionRequiresAction {
		t.Fatalf("first wait = %v, %v", ev, err)
	}

	g := d.Watch(context.Background(), "v1_nots") // after acting on the pause
	at := recv(t, clk.armed, "timer of the second wait")
	clk.AdvanceTo(at)
	recv(t, p.calls, "second poll")
	p.answers <- pollAnswer{ev: pause()} // the same pause, still
	at = recv(t, clk.armed, "next timer")
	if _, err := peek(g); !errors.Is(err, errPending) {
		t.Fatalf("the same pause resolved the second wait: %v", err)
	}
	clk.AdvanceTo(at)
	recv(t, p.calls, "third poll")
	p.answers <- pollAnswer{ev: &webhook.Event{Type: webhook.InteractionCompleted}}
	<-g.Done()
	if ev, err := g.Result(); err != nil || ev.Type != webhook.InteractionCompleted {
		t.Fatalf("second wait = %v, %v", ev, err)
	}
}
