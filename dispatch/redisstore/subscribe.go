package redisstore

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/genaihook/genaihook/webhook"
)

// Subscribe implements dispatch.Store. It starts two goroutines. One
// holds a connection subscribed to the Store's channel and calls wake for
// every event any Store on the same Redis and prefix saved. That includes
// this Store's own, which the Dispatcher has handled already and handles
// again as any other replica would, to no effect; but a Save whose answer
// was lost on the way back (the event stored, the error returned, the
// delivery retried and then refused as a duplicate) still wakes this
// replica's waits.
//
// Both call wake("", nil), so that the Dispatcher reads the store again
// for every pending wait, whenever it may have missed an event, once the
// store answers reads again (a restarted Redis accepts subscriptions while
// it still loads its data, and go-redis may refuse new connections for a
// second after an outage): when the subscription starts; after every
// reconnection, whatever broke the connection (a Redis restart, a network
// blip, no answer to a ping within five seconds); after a Load failed, at
// most every 100 ms; and for a message it cannot decode. While Redis
// cannot be reached it retries from 10 ms to one second apart, and logs a
// warning when the subscription is lost and when it is back.
//
// The returned cancel closes the connection and returns once both
// goroutines have ended, so no wake is called after it returns; it waits
// for a wake in progress. Calls after the first do nothing. A Store serves
// one Subscribe at a time: with several, only one is told of a failed
// Load.
func (s *Store) Subscribe(wake func(key string, ev *webhook.Event)) (cancel func()) {
	ctx, stop := context.WithCancel(context.Background())
	l := &listener{s: s, wake: wake, ctx: ctx}
	var wg sync.WaitGroup
	wg.Go(l.run)
	wg.Go(l.rereads)
	var once sync.Once
	return func() {
		once.Do(func() {
			stop()
			l.mu.Lock()
			if l.ps != nil {
				_ = l.ps.Close() // unblocks a pending receive
			}
			l.mu.Unlock()
			wg.Wait()
		})
	}
}

// rereadSpacing spaces the wake("", nil) calls that follow failed loads,
// since each makes the Dispatcher read the store for every pending wait.
const rereadSpacing = 100 * time.Millisecond

// rereads calls wake("", nil) once reads work after a Load failed.
func (l *listener) rereads() {
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-l.s.reread:
		}
		if !l.readable(10*time.Millisecond, time.Second) {
			return
		}
		l.wake("", nil)
		if !sleep(l.ctx, rereadSpacing) {
			return
		}
	}
}

// listener is the goroutines behind one Subscribe.
type listener struct {
	s    *Store
	wake func(string, *webhook.Event)
	ctx  context.Context

	mu sync.Mutex
	ps *redis.PubSub // the current subscription; replaced on reconnection
}

// subscribe replaces the subscription, or reports false if cancelled.
func (l *listener) subscribe() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ps != nil {
		_ = l.ps.Close()
	}
	if l.ctx.Err() != nil {
		l.ps = nil
		return false
	}
	l.ps = l.s.client.Subscribe(l.ctx, l.s.channel)
	return true
}

func (l *listener) run() {
	defer func() {
		l.mu.Lock()
		if l.ps != nil {
			_ = l.ps.Close()
		}
		l.mu.Unlock()
	}()
	if !l.subscribe() {
		return
	}
	const minBackoff, maxBackoff = 10 * time.Millisecond, time.Second
	backoff := minBackoff
	pinged, down := false, false
	for {
		l.mu.Lock()
		ps := l.ps
		l.mu.Unlock()
		msg, err := ps.ReceiveTimeout(l.ctx, healthInterval)
		if l.ctx.Err() != nil {
			return
		}
		if err != nil {
			if isTimeout(err) && !down {
				if pinged {
					err = errors.New("no answer to a ping within " + healthInterval.String())
				} else {
					// Quiet for a while: make sure the connection is
					// still there. The answer is a message like any.
					pinged = true
					if err = ps.Ping(l.ctx); err == nil {
						continue
					}
				}
			}
			if !down {
				down = true
				l.s.log.Warn("redisstore: subscription lost; reconnecting, and pending waits will read the store again once back",
					slog.String("channel", l.s.channel), slog.Any("error", err))
			}
			pinged = false
			if !l.subscribe() || !sleep(l.ctx, backoff) {
				return
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			// A restarted Redis takes subscriptions while it is still
			// loading its data, and refuses reads until it is done: the
			// Dispatcher must not read the store again before then.
			if !l.readable(minBackoff, maxBackoff) {
				return
			}
			if down {
				l.s.log.Info("redisstore: subscription back", slog.String("channel", l.s.channel))
			}
			down, backoff = false, minBackoff
			l.wake("", nil)
		case *redis.Message:
			l.deliver(m.Payload)
		}
	}
}

// deliver wakes for one message.
func (l *listener) deliver(payload string) {
	key, blob, ok := parseMessage(payload)
	var ev *webhook.Event
	err := errCorruptMessage
	if ok {
		ev, err = decode([]byte(blob))
	}
	if err != nil {
		l.s.log.Warn("redisstore: undecodable message on the channel; pending waits will read the store again",
			slog.String("channel", l.s.channel), slog.Any("error", err))
		l.wake("", nil)
		return
	}
	l.wake(key, ev)
}

var errCorruptMessage = errors.New("malformed message")

// readable waits until the store answers a read, retrying from first to
// most apart, or reports false if the subscription is cancelled first.
func (l *listener) readable(first, most time.Duration) bool {
	wait := first
	for {
		// The read Load makes, of a key that does not exist.
		err := l.s.client.HMGet(l.ctx, l.s.channel, "x").Err()
		if err == nil {
			return true
		}
		if !sleep(l.ctx, wait) {
			return false
		}
		wait = min(2*wait, most)
	}
}

// isTimeout reports whether err is a read that timed out, which on a
// subscription only means that nothing was published.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// sleep waits for d, or reports false if ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
