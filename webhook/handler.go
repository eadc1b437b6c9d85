package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/genaihook/genaihook/verify"
)

// Verifier authenticates a delivery from its headers and raw body.
// *verify.Verifier implements it; tests may use a fake.
type Verifier interface {
	Verify(ctx context.Context, h http.Header, body []byte) (verify.Result, error)
}

// HandlerFunc receives each verified, parsed, not yet processed event. It
// returns nil once the event is safely handed off (the delivery is then
// acknowledged and its webhook-id remembered), or an error to have Gemini
// deliver it again later. It must return within the Handler's time budget
// (WithTimeout) and should honour ctx. dispatch.Dispatcher.Deliver is one.
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

// NewHandler returns a Handler that authenticates deliveries with v and
// passes each new event to fn. Without WithDeduplicator it deduplicates
// with a NewMemoryDeduplicator of default settings; a delivery whose
// verify.Result has no WebhookID (a JWT delivery sent without the header)
// cannot be deduplicated and always reaches fn. NewHandler panics if v
// or fn is nil, as http.Handle does for a nil handler: that is a
// programming error, not a condition to handle.
func NewHandler(v Verifier, fn HandlerFunc, opts ...Option) *Handler {
	if v == nil {
		panic("webhook: NewHandler: nil Verifier")
	}
	if fn == nil {
		panic("webhook: NewHandler: nil HandlerFunc")
	}
	h := &Handler{v: v, fn: fn, opts: defaultOptions()}
	for _, opt := range opts {
		opt(&h.opts)
	}
	h.dedup = h.opts.dedup
	if !h.opts.dedupSet {
		h.dedup = NewMemoryDeduplicator(MemoryConfig{})
	}
	return h
}

// The bodies of error answers. They are deliberately generic: the reason
// is logged, never sent, so a forger learns nothing.
const (
	msgMethod     = "method not allowed\n"
	msgTooLarge   = "request body too large\n"
	msgBadBody    = "cannot read request body\n"
	msgSignature  = "invalid signature\n"
	msgNotBound   = "delivery not bound to this receiver\n"
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

	res, err := h.v.Verify(ctx, r.Header, body)
	if err != nil {
		// verify's errors name the reason without secrets or signatures.
		log.LogAttrs(ctx, slog.LevelWarn, "webhook: delivery rejected", slog.String("reason", err.Error()),
			slog.String("webhook_id", truncate(r.Header.Get(headerWebhook), 100)), remote(r))
		answer(w, http.StatusUnauthorized, msgSignature)
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

	if h.opts.binding != nil && res.Scheme.Dynamic() {
		if err := h.opts.binding(ctx, ev); err != nil {
			if errors.Is(err, ErrNotBound) {
				log.LogAttrs(ctx, slog.LevelWarn, "webhook: delivery not bound to this receiver", slog.String("reason", err.Error()),
					slog.String("webhook_id", ev.WebhookID), slog.String("type", string(ev.Type)), remote(r))
				answer(w, http.StatusForbidden, msgNotBound)
				return
			}
			log.LogAttrs(ctx, slog.LevelError, "webhook: binding check failed", slog.String("error", err.Error()),
				slog.String("webhook_id", ev.WebhookID))
			answer(w, http.StatusInternalServerError, msgInternal)
			return
		}
	}

	fnCtx, cancel := ctx, context.CancelFunc(func() {})
	if h.opts.timeout > 0 {
		fnCtx, cancel = context.WithTimeout(ctx, h.opts.timeout)
	}
	defer cancel()

	release := func(bool) {}
	if h.dedup != nil && ev.WebhookID != "" {
		rel, dup, err := h.dedup.Begin(fnCtx, ev.WebhookID)
		switch {
		case err != nil && fnCtx.Err() != nil:
			// Out of time (or the client left) while a concurrent copy of
			// this delivery was being processed: let Gemini retry.
			log.LogAttrs(ctx, slog.LevelWarn, "webhook: gave up waiting for a concurrent copy", slog.String("webhook_id", ev.WebhookID))
			answer(w, http.StatusServiceUnavailable, msgTimeout)
			return
		case err != nil:
			log.LogAttrs(ctx, slog.LevelError, "webhook: deduplicator failed", slog.String("error", err.Error()),
				slog.String("webhook_id", ev.WebhookID))
			answer(w, http.StatusInternalServerError, msgInternal)
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

	err = h.call(fnCtx, ev)
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
	case errors.Is(fnCtx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
		log.LogAttrs(ctx, slog.LevelError, "webhook: handler exceeded its time budget", slog.Duration("budget", h.opts.timeout),
			slog.String("error", err.Error()), slog.String("webhook_id", ev.WebhookID), slog.String("type", string(ev.Type)))
		answer(w, http.StatusServiceUnavailable, msgTimeout)
	default:
		log.LogAttrs(ctx, slog.LevelError, "webhook: handler failed", slog.String("error", err.Error()),
			slog.String("webhook_id", ev.WebhookID), slog.String("type", string(ev.Type)))
		answer(w, http.StatusInternalServerError, msgInternal)
	}
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

func answer(w http.ResponseWriter, code int, msg string) {
	hdr := w.Header()
	hdr.Set("Content-Type", "text/plain; charset=utf-8")
	hdr.Set("X-Content-Type-Options", "nosniff")
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
// declares the maximum and then sends nothing would hold MaxBodyBytes of
// memory. Real deliveries are far smaller and still get one allocation.
const maxPrealloc = 32 << 10

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
