package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"runtime/debug"

	"github.com/genaihook/genaihook/verify"
)

// Verifier authenticates a delivery from its headers and raw body.
// *verify.Verifier implements it; tests may use a fake.
//
// The Handler acts on what Verify returns without checking it again, so an
// implementation must keep these rules:
//
//   - Return an error for a delivery it cannot authenticate. An error
//     wrapping verify.ErrJWKSUnavailable means it could not decide (the
//     signing keys could not be fetched, or not all checked): the Handler
//     answers 503 and Gemini retries. So is an error returned once ctx,
//     which carries the Handler's time budget (WithTimeout), has ended.
//     Any other error is answered 401.
//   - Set Result.Scheme to a dynamic scheme (verify.Scheme.Dynamic) for a
//     delivery signed with keys that are not this receiver's own, such as
//     Google's global keys: only then does the Handler apply the receiver
//     binding. Any other scheme is taken as bound by its key, as a static
//     webhook's secret binds it.
//   - If it accepts the JWT form (a JWT in webhook-signature), check that
//     the token's audience names this receiver. The token is the only
//     signed part of such a delivery: without that check, any unexpired
//     token Google issued to anyone authenticates a body of the sender's
//     choosing.
//   - Fill Result.WebhookID from signed input only, or leave it empty. The
//     Handler deduplicates on Result.WebhookID, never on the webhook-id
//     header; the HMAC and Ed25519 schemes sign that header, but the JWT
//     form signs neither it nor the body, so an id taken from there would
//     let a sender suppress a genuine delivery by claiming its id first.
//
// An implementation may also have a method AcceptsDynamic() bool, as
// *verify.Verifier does, reporting whether it accepts dynamic deliveries at
// all; NewHandler then logs a warning when it is given such a Verifier but
// no binding check.
type Verifier interface {
	Verify(ctx context.Context, h http.Header, body []byte) (verify.Result, error)
}

// HandlerFunc receives each verified, parsed, bound, not yet processed
// event. It returns nil once the event is safely handed off (the delivery
// is then acknowledged and its webhook-id remembered), or an error to have
// Gemini deliver it again later. It must return within what is left of the
// Handler's time budget (WithTimeout), which ctx carries, and should honour
// ctx. dispatch.Dispatcher.Deliver is one.
type HandlerFunc func(ctx context.Context, ev *Event) error

// Handler is an http.Handler receiving Gemini webhook deliveries; see the
// package documentation for what it answers when. It ignores the request
// path, so it can be mounted anywhere. It is safe for concurrent use.
type Handler struct {
	v     Verifier
	fn    HandlerFunc
	opts  options
	dedup Deduplicator
}

// fixBinding is how to configure a binding check, for the logs that report
// a missing one.
const fixBinding = "give NewHandler a check that ties each job to this receiver: " +
	"webhook.WithBinding(binder.Check), with the webhook.Binder's Metadata in each job's user_metadata, " +
	"or serve the handler package dispatch builds (Dispatcher.Handler) instead of NewHandler"

// NewHandler returns a Handler that authenticates deliveries with v and
// passes each new event to fn.
//
// A dynamic delivery (verify.Scheme.Dynamic: signed with Google's global
// keys) reaches fn only if the binding check given with WithBinding accepts
// it. Without WithBinding, every dynamic delivery is refused with 403 and a
// warning naming the fix is logged each time; if v has a method
// AcceptsDynamic() bool that returns true, as a *verify.Verifier with a
// JWKSURL does, NewHandler also logs that warning once, now. Static
// deliveries are never checked.
//
// Without WithDeduplicator it deduplicates with a NewMemoryDeduplicator of
// default settings, on verify.Result's WebhookID; a delivery whose Result
// has none cannot be deduplicated and always reaches fn. nil options are
// ignored.
//
// NewHandler panics if v or fn is nil, including a typed nil such as a nil
// *verify.Verifier left by an unchecked error from verify.New, and if
// WithDeduplicator was given a typed nil: as http.Handle does for a nil
// handler, it refuses a programming error at construction rather than on
// the first delivery.
func NewHandler(v Verifier, fn HandlerFunc, opts ...Option) *Handler {
	if isNil(v) {
		if v == nil {
			panic("webhook: NewHandler: nil Verifier: pass the *verify.Verifier that verify.New returned, after checking its error")
		}
		panic(fmt.Sprintf("webhook: NewHandler: the Verifier is a nil %T: pass the *verify.Verifier that verify.New returned, after checking its error", v))
	}
	if fn == nil {
		panic("webhook: NewHandler: nil HandlerFunc: pass the function that receives each event, e.g. a dispatch.Dispatcher's Deliver")
	}
	h := &Handler{v: v, fn: fn, opts: defaultOptions()}
	for _, opt := range opts {
		if opt != nil {
			opt(&h.opts)
		}
	}
	h.dedup = h.opts.dedup
	if !h.opts.dedupSet {
		h.dedup = NewMemoryDeduplicator(MemoryConfig{})
	} else if h.dedup != nil && isNil(h.dedup) {
		panic(fmt.Sprintf("webhook: NewHandler: WithDeduplicator was given a nil %T: pass a Deduplicator such as NewMemoryDeduplicator's, or an untyped nil to turn deduplication off", h.dedup))
	}
	if d, ok := v.(interface{ AcceptsDynamic() bool }); ok && d.AcceptsDynamic() {
		switch {
		case h.opts.skipBinding:
			h.opts.logger.Warn("webhook: InsecureSkipBinding is set: dynamic deliveries are accepted without a binding check, " +
				"so anyone can replay here deliveries Google made to them; do not use it on an endpoint others can reach")
		case h.opts.binding == nil:
			h.opts.logger.Warn("webhook: no binding check configured: every dynamic delivery will be refused with 403; to accept them, " + fixBinding)
		}
	}
	return h
}

// isNil reports whether x is nil or holds a nil pointer, map, slice,
// function or channel. (The dynamic value of an interface is never itself
// of interface kind.)
func isNil(x any) bool {
	if x == nil {
		return true
	}
	switch rv := reflect.ValueOf(x); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Func, reflect.Chan, reflect.UnsafePointer:
		return rv.IsNil()
	}
	return false
}

// retryAfterKeys is the Retry-After of a 503 answered because the signing
// keys could not be fetched: the least time *verify.Verifier waits between
// two fetches by default (verify.Config.JWKSRefetchInterval), so that the
// retry may find the endpoint back and a fresh fetch allowed.
const retryAfterKeys = "30"

// The bodies of error answers. They are deliberately generic: the reason
// is logged, never sent, so a forger learns nothing.
const (
	msgMethod     = "method not allowed\n"
	msgTooLarge   = "request body too large\n"
	msgBadBody    = "cannot read request body\n"
	msgSignature  = "invalid signature\n"
	msgNotBound   = "delivery not bound to this receiver\n"
	msgNoKeys     = "cannot verify the delivery now, retry later\n"
	msgUndecided  = "cannot check the delivery now, retry later\n"
	msgInternal   = "internal error\n"
	msgTimeout    = "timed out, retry later\n"
	msgDuplicate  = "duplicate\n"
	msgDelivered  = "ok\n"
	headerWebhook = "Webhook-Id"
)

// ServeHTTP handles one delivery, answering as the table in the package
// documentation says.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	log := h.opts.logger
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		answer(w, http.StatusMethodNotAllowed, msgMethod)
		return
	}

	body, err := readBody(w, r, h.opts.maxBody)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			log.LogAttrs(ctx, slog.LevelWarn, "webhook: body too large", slog.Int64("limit", h.opts.maxBody), remote(r))
			answer(w, http.StatusRequestEntityTooLarge, msgTooLarge)
			return
		}
		log.LogAttrs(ctx, slog.LevelWarn, "webhook: cannot read body", slog.String("error", err.Error()), remote(r))
		answer(w, http.StatusBadRequest, msgBadBody)
		return
	}

	// One budget for everything that may wait on someone else: the key
	// fetch in Verify, the binding check's store, a concurrent copy in
	// dedup and the HandlerFunc.
	// budget arms no timer unless a step waits on its Done.
	reqCtx := ctx
	if h.opts.timeout > 0 {
		b := newBudget(reqCtx, h.opts.timeout)
		defer b.end(context.Canceled)
		ctx = b
	}

	res, err := h.v.Verify(ctx, r.Header, body)
	if err != nil {
		// verify's errors name the reason without secrets or signatures.
		// The webhook-id header is unauthenticated here: logged, truncated,
		// and used for nothing else.
		switch {
		case errors.Is(err, verify.ErrJWKSUnavailable):
			log.LogAttrs(ctx, slog.LevelError, "webhook: cannot verify now (signing keys unavailable, or not all checked); answering 503 so that Gemini retries",
				slog.String("reason", err.Error()), slog.String("webhook_id", truncate(r.Header.Get(headerWebhook), 100)), remote(r))
			w.Header().Set("Retry-After", retryAfterKeys)
			answer(w, http.StatusServiceUnavailable, msgNoKeys)
		case ctx.Err() != nil:
			// The budget ran out (or the client left) before the Verifier
			// decided: the delivery may be genuine.
			log.LogAttrs(ctx, slog.LevelError, "webhook: verification exceeded the time budget; answering 503 so that Gemini retries",
				slog.Duration("budget", h.opts.timeout), slog.String("reason", err.Error()),
				slog.String("webhook_id", truncate(r.Header.Get(headerWebhook), 100)), remote(r))
			answer(w, http.StatusServiceUnavailable, msgTimeout)
		default:
			log.LogAttrs(ctx, slog.LevelWarn, "webhook: delivery rejected", slog.String("reason", err.Error()),
				slog.String("webhook_id", truncate(r.Header.Get(headerWebhook), 100)), remote(r))
			answer(w, http.StatusUnauthorized, msgSignature)
		}
		return
	}

	ev, err := parse(body) // body is ours: no copy needed
	if err != nil {
		log.LogAttrs(ctx, slog.LevelWarn, "webhook: malformed event", slog.String("reason", err.Error()),
			slog.String("webhook_id", res.WebhookID), remote(r))
		// The body is authentic, so naming the bad field helps and leaks nothing.
		answer(w, http.StatusBadRequest, err.Error()+"\n")
		return
	}
	ev.WebhookID = res.WebhookID
	ev.Auth = res

	// Deduplication comes before the binding: a retry of a delivery
	// already processed is answered 200 even once the binding would no
	// longer accept it (its job no longer awaited), not 403, which Gemini
	// would retry for a day and count against the endpoint. An id that
	// fails the binding is released unprocessed.
	release := func(bool) {}
	if h.dedup != nil && ev.WebhookID != "" {
		rel, dup, err := h.dedup.Begin(ctx, ev.WebhookID)
		switch {
		case err != nil && ctx.Err() != nil:
			// Out of time (or the client left) while a concurrent copy of
			// this delivery was being processed: let Gemini retry.
			log.LogAttrs(ctx, slog.LevelWarn, "webhook: gave up waiting for a concurrent copy", slog.String("webhook_id", ev.WebhookID))
			answer(w, http.StatusServiceUnavailable, msgTimeout)
			return
		case err != nil:
			// Its store is down or slow: a retry can succeed.
			log.LogAttrs(ctx, slog.LevelError, "webhook: deduplicator failed; answering 503 so that Gemini retries", slog.String("error", err.Error()),
				slog.String("webhook_id", ev.WebhookID))
			answer(w, http.StatusServiceUnavailable, msgUndecided)
			return
		case dup:
			if log.Enabled(ctx, slog.LevelDebug) { // retries are routine: build no attributes for nothing
				log.LogAttrs(ctx, slog.LevelDebug, "webhook: duplicate delivery", slog.String("webhook_id", ev.WebhookID))
			}
			answer(w, http.StatusOK, msgDuplicate)
			return
		}
		release = rel
	}
	if res.Scheme.Dynamic() && !h.bound(ctx, w, r, ev) {
		release(false)
		return
	}

	err = h.call(ctx, ev)
	release(err == nil)
	var p *panicError
	switch {
	case err == nil:
		answer(w, http.StatusOK, msgDelivered)
	case errors.As(err, &p):
		if p.value == http.ErrAbortHandler {
			panic(http.ErrAbortHandler) // fn asked net/http to drop the connection
		}
		log.LogAttrs(ctx, slog.LevelError, "webhook: handler panicked", slog.Any("panic", p.value), slog.String("stack", string(p.stack)),
			slog.String("webhook_id", ev.WebhookID), slog.String("type", string(ev.Type)))
		answer(w, http.StatusInternalServerError, msgInternal)
	case errors.Is(ctx.Err(), context.DeadlineExceeded) && reqCtx.Err() == nil:
		log.LogAttrs(ctx, slog.LevelError, "webhook: handler exceeded its time budget", slog.Duration("budget", h.opts.timeout),
			slog.String("error", err.Error()), slog.String("webhook_id", ev.WebhookID), slog.String("type", string(ev.Type)))
		answer(w, http.StatusServiceUnavailable, msgTimeout)
	default:
		log.LogAttrs(ctx, slog.LevelError, "webhook: handler failed", slog.String("error", err.Error()),
			slog.String("webhook_id", ev.WebhookID), slog.String("type", string(ev.Type)))
		answer(w, http.StatusInternalServerError, msgInternal)
	}
}

// bound applies the receiver binding to a dynamic delivery, within the
// budget ctx carries. It reports whether the delivery may go on; if not, it
// has answered.
func (h *Handler) bound(ctx context.Context, w http.ResponseWriter, r *http.Request, ev *Event) bool {
	log := h.opts.logger
	switch {
	case h.opts.skipBinding:
		return true
	case h.opts.binding == nil:
		log.LogAttrs(ctx, slog.LevelWarn, "webhook: dynamic delivery refused: no binding check configured; to accept dynamic deliveries, "+fixBinding,
			slog.String("webhook_id", ev.WebhookID), slog.String("type", string(ev.Type)), remote(r))
		answer(w, http.StatusForbidden, msgNotBound)
		return false
	}
	err := h.opts.binding(ctx, ev)
	switch {
	case err == nil:
		return true
	case ctx.Err() != nil:
		// Out of time (or the client left) before the check decided, even
		// if it then reports ErrNotBound: the delivery may be genuine.
		log.LogAttrs(ctx, slog.LevelError, "webhook: binding check exceeded the time budget; answering 503 so that Gemini retries",
			slog.Duration("budget", h.opts.timeout), slog.String("error", err.Error()),
			slog.String("webhook_id", ev.WebhookID), slog.String("type", string(ev.Type)))
		answer(w, http.StatusServiceUnavailable, msgTimeout)
	case errors.Is(err, ErrNotBound):
		log.LogAttrs(ctx, slog.LevelWarn, "webhook: delivery not bound to this receiver", slog.String("reason", err.Error()),
			slog.String("webhook_id", ev.WebhookID), slog.String("type", string(ev.Type)), remote(r))
		answer(w, http.StatusForbidden, msgNotBound)
	default:
		// The check could not decide (its store is down, say): the delivery
		// may be genuine, so let Gemini retry.
		log.LogAttrs(ctx, slog.LevelError, "webhook: binding check could not decide; answering 503 so that Gemini retries", slog.String("error", err.Error()),
			slog.String("webhook_id", ev.WebhookID), slog.String("type", string(ev.Type)))
		answer(w, http.StatusServiceUnavailable, msgUndecided)
	}
	return false
}

type panicError struct {
	value any
	stack []byte
}

func (p *panicError) Error() string { return fmt.Sprintf("webhook: handler panicked: %v", p.value) }

// call runs fn on the request's goroutine, as net/http runs handlers: the
// budget is enforced through ctx, which fn must honour. A panic becomes an
// error, so that the id is released and the server keeps serving.
func (h *Handler) call(ctx context.Context, ev *Event) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &panicError{value: v, stack: debug.Stack()}
		}
	}()
	return h.fn(ctx, ev)
}

// The header values of every answer, shared by all of them: net/http only
// reads them, and Header.Set would make two new slices per answer. Their
// capacity is 1, so an append by middleware copies; middleware that
// overwrote an element in place would change every later answer, and is
// not something a ResponseWriter's user does.
var (
	textPlain = []string{"text/plain; charset=utf-8"}
	noSniff   = []string{"nosniff"}
)

func answer(w http.ResponseWriter, code int, msg string) {
	hdr := w.Header()
	hdr["Content-Type"] = textPlain
	hdr["X-Content-Type-Options"] = noSniff
	w.WriteHeader(code)
	io.WriteString(w, msg)
}

func remote(r *http.Request) slog.Attr { return slog.String("remote", r.RemoteAddr) }

// truncate shortens an unauthenticated header before it is logged.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// maxPrealloc bounds the buffer readBody allocates from the declared
// Content-Length before any byte has arrived: otherwise each connection that
// declares the maximum and then sends nothing would hold the whole cap of
// memory. Real deliveries, a few hundred bytes, still get one allocation.
const maxPrealloc = 16 << 10

// readBody reads the whole body, at most limit bytes; a longer one fails
// with *http.MaxBytesError, and the server then closes the connection.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	rd := http.MaxBytesReader(w, r.Body, limit)
	size := int64(512)
	if r.ContentLength >= 0 {
		size = min(r.ContentLength+1, maxPrealloc) // +1: read io.EOF without growing
	}
	buf := make([]byte, 0, size)
	for {
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
	}
}
