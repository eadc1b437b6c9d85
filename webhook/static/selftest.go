package static

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/genai/interactions/models/operations"
	"google.golang.org/genai/interactions/models/webhooks"

	"github.com/genaihook/genaihook/verify"
	"github.com/genaihook/genaihook/webhook"
)

// selfTestTimeout bounds a SelfTest whose ctx has no deadline.
const selfTestTimeout = 30 * time.Second

// Report is what a SelfTest found. More fields may be added; do not
// compare Reports whole.
type Report struct {
	// State is the webhook's state as Gemini reported it before the ping:
	// "enabled", "disabled" or "disabled_due_to_failed_deliveries".
	State string
	// KeyID is the fingerprint of the secret that verified the ping
	// (verify.Result.KeyID: "sha256:" and 16 hex digits), "" when none did.
	KeyID string
}

// Handler returns the http.Handler to serve at Config.URI: a
// webhook.NewHandler with this webhook's Verifier, fn and opts, watched by
// SelfTest. Serve it, rather than a Handler built by hand, so that SelfTest
// can see the ping arrive; each static delivery still goes to fn, the ping
// included (its type is not one webhook.EventType.Known reports, and
// dispatch.Dispatcher.Deliver ignores such types). It may be called several
// times; every Handler it returns is watched. It panics if fn is nil, as
// webhook.NewHandler does.
func (w *Webhook) Handler(fn webhook.HandlerFunc, opts ...webhook.Option) *webhook.Handler {
	if fn == nil {
		panic("static: Handler called with a nil HandlerFunc")
	}
	w.watch.handlers.Add(1)
	return webhook.NewHandler(watchedVerifier{w}, func(ctx context.Context, ev *webhook.Event) error {
		err := fn(ctx, ev)
		if ev.Auth.Scheme == verify.SchemeHMAC {
			w.watch.handled(ev.Auth.KeyID, err)
		}
		return err
	}, opts...)
}

// SelfTest proves that the webhook works end to end: it reads the
// webhook's state, has Gemini ping it (client.Webhooks.Ping), and waits for
// the ping to reach a Handler of this Webhook in this process, verify, and
// be accepted by the HandlerFunc. It waits until ctx ends, or 30 seconds
// when ctx has no deadline. Any static delivery that verifies meanwhile
// counts: the ping's event type is undocumented, and any such delivery
// proves the same path.
//
// Behind a load balancer, the ping reaches one replica, maybe another
// one: run SelfTest where it can succeed (a single instance at deploy
// time, or each replica through its own URI), or treat ErrUnreachable as
// a warning there.
//
// The Report holds the state, and the fingerprint of the secret that
// verified. SelfTest returns an error wrapping:
//   - ErrDisabled if the webhook is not enabled (Gemini sends it nothing;
//     Register enables it);
//   - ErrUnreachable if Handler was never called, or no delivery reached
//     the Handler before the deadline: Config.URI does not lead to it (the
//     public address, the path, TLS, a firewall), or the ping went to
//     another replica;
//   - ErrNotVerified if deliveries reached the Handler but none was
//     accepted: the error wraps the verify error of the first that failed
//     (verify.ErrNoMatchingSignature: this process lacks the current
//     secret, so Reload, or Rotate; verify.ErrTooOld or ErrTooNew: this
//     host's clock is off) or the HandlerFunc's error;
//   - the SDK's error if reading the webhook or pinging it fails.
func (w *Webhook) SelfTest(ctx context.Context) (Report, error) {
	if w.watch.handlers.Load() == 0 {
		return Report{}, fmt.Errorf("%w: Handler was never called, so nothing in this process can receive the ping: serve the Handler of webhook %s at %s",
			ErrUnreachable, w.ID, w.cfg.URI)
	}
	hook, err := w.get(ctx)
	if err != nil {
		return Report{}, err
	}
	rep := Report{State: stateOf(hook)}
	if rep.State != string(webhooks.WebhookStateEnabled) {
		return rep, fmt.Errorf("%w: webhook %s is %s, so Gemini delivers nothing to it: Register enables it", ErrDisabled, w.ID, rep.State)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, selfTestTimeout)
		defer cancel()
	}
	t := w.watch.add()
	defer w.watch.remove(t)
	if _, err := w.client.Webhooks.Ping(ctx, operations.PingWebhookRequest{ID: w.ID}, noRetry); err != nil {
		return rep, fmt.Errorf("static: pinging webhook %s: %w", w.ID, err)
	}
	select {
	case rep.KeyID = <-t.ok:
		w.log.InfoContext(ctx, "static: self-test passed: the ping reached the handler and verified",
			slog.String("webhook", w.ID), slog.String("key", rep.KeyID))
		return rep, nil
	case <-ctx.Done():
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.failed != nil:
		return rep, fmt.Errorf("%w: the ping verified, but the HandlerFunc failed on it: %w", ErrNotVerified, t.failed)
	case t.rejected != nil:
		return rep, fmt.Errorf("%w: a delivery reached the handler of webhook %s but did not verify: %w", ErrNotVerified, w.ID, t.rejected)
	}
	return rep, fmt.Errorf("%w: nothing reached this process's handler for webhook %s before the deadline (%w): "+
		"does %s lead here (address, path, TLS, firewall)? Behind a load balancer, the ping may have gone to another replica",
		ErrUnreachable, w.ID, context.Cause(ctx), w.cfg.URI)
}

// watchedVerifier is the Webhook's Verifier, reporting to waiting
// self-tests the v1 deliveries it refuses.
type watchedVerifier struct{ w *Webhook }

func (o watchedVerifier) Verify(ctx context.Context, h http.Header, body []byte) (verify.Result, error) {
	res, err := o.w.v.Verify(ctx, h, body)
	if err != nil && o.w.watch.waiting.Load() > 0 && !errors.Is(err, verify.ErrJWKSUnavailable) && hasV1(h) {
		o.w.watch.rejected(err)
	}
	return res, err
}

// AcceptsDynamic lets webhook.NewHandler warn about a dynamic verifier
// without a binding check, as it does for a *verify.Verifier.
func (o watchedVerifier) AcceptsDynamic() bool { return o.w.v.AcceptsDynamic() }

func hasV1(h http.Header) bool {
	for k, vs := range h {
		if strings.EqualFold(k, "webhook-signature") {
			for _, v := range vs {
				if strings.Contains(v, "v1,") {
					return true
				}
			}
		}
	}
	return false
}

// watchers are the self-tests waiting for a delivery.
type watchers struct {
	handlers atomic.Int64 // Handlers made
	waiting  atomic.Int64 // len(set), read without the lock
	mu       sync.Mutex
	set      map[*watch]struct{}
}

// watch is one waiting self-test. A delivery that verifies and is accepted
// ends it (ok); failures are kept for when the deadline comes, so that a
// forged delivery cannot end a self-test that the genuine ping would pass.
type watch struct {
	ok       chan string // the KeyID; buffered
	mu       sync.Mutex
	rejected error // the first verify failure
	failed   error // the first HandlerFunc failure
}

func (ws *watchers) add() *watch {
	t := &watch{ok: make(chan string, 1)}
	ws.mu.Lock()
	if ws.set == nil {
		ws.set = map[*watch]struct{}{}
	}
	ws.set[t] = struct{}{}
	ws.waiting.Store(int64(len(ws.set)))
	ws.mu.Unlock()
	return t
}

func (ws *watchers) remove(t *watch) {
	ws.mu.Lock()
	delete(ws.set, t)
	ws.waiting.Store(int64(len(ws.set)))
	ws.mu.Unlock()
}

// each calls f for every waiting self-test.
func (ws *watchers) each(f func(*watch)) {
	if ws.waiting.Load() == 0 {
		return
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for t := range ws.set {
		f(t)
	}
}

func (ws *watchers) handled(keyID string, err error) {
	ws.each(func(t *watch) {
		if err == nil {
			select {
			case t.ok <- keyID:
			default:
			}
			return
		}
		t.mu.Lock()
		if t.failed == nil {
			t.failed = err
		}
		t.mu.Unlock()
	})
}

func (ws *watchers) rejected(err error) {
	ws.each(func(t *watch) {
		t.mu.Lock()
		if t.rejected == nil {
			t.rejected = err
		}
		t.mu.Unlock()
	})
}
