package webhook

import (
	"log/slog"
	"time"
)

// Defaults of Handler.
const (
	// DefaultMaxBodyBytes caps a delivery's body: 64 KiB. Gemini's events
	// are a few hundred bytes (a status snapshot, ids and the job's
	// user_metadata), and Standard Webhooks recommends payloads under
	// 20 kB; the cap leaves room for generous user_metadata while bounding
	// what a flood of unauthenticated requests can make the Handler buffer.
	DefaultMaxBodyBytes = 64 << 10
	// DefaultTimeout is the time budget of a delivery. Gemini wants an
	// answer "within a few seconds" and does not say how many; 3 seconds
	// leaves room for the network and for Gemini's own timer, and is a
	// thousand times what a hand-off to a queue or store should take.
	DefaultTimeout = 3 * time.Second
)

// Option configures a Handler; pass options to NewHandler.
type Option func(*options)

type options struct {
	logger   *slog.Logger
	maxBody  int64
	dedup    Deduplicator
	timeout  time.Duration
	binding  BindingCheck
	dedupSet bool
	// skipBinding accepts dynamic deliveries unchecked (InsecureSkipBinding).
	skipBinding bool
}

func defaultOptions() options {
	return options{
		logger:  slog.Default(),
		maxBody: DefaultMaxBodyBytes,
		timeout: DefaultTimeout,
	}
}

// WithLogger sets where the Handler logs rejected deliveries, HandlerFunc
// errors and recovered panics. The default is slog.Default(), so that a
// panic or a flood of forged deliveries is seen; nil discards. Logs never
// hold a signature, a secret or a body.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l == nil {
			l = slog.New(slog.DiscardHandler)
		}
		o.logger = l
	}
}

// WithMaxBodyBytes caps the body of a delivery; a larger one is answered
// 413. n <= 0 means DefaultMaxBodyBytes.
func WithMaxBodyBytes(n int64) Option {
	return func(o *options) {
		if n <= 0 {
			n = DefaultMaxBodyBytes
		}
		o.maxBody = n
	}
}

// WithDeduplicator replaces the default MemoryDeduplicator, e.g. with one
// shared by several replicas. nil turns deduplication off: every delivery
// then reaches the HandlerFunc, duplicates included.
func WithDeduplicator(d Deduplicator) Option {
	return func(o *options) {
		o.dedup = d
		o.dedupSet = true
	}
}

// WithTimeout sets the time budget of a delivery, so that Gemini gets its
// answer before it gives up. It starts once the body has been read and
// covers every step that may wait on someone else: Verify (a key fetch),
// the binding check, the Deduplicator and the HandlerFunc, whose ctx all
// carry this one deadline; the HandlerFunc gets what the steps before it
// left. A Verify, a binding check or a HandlerFunc that fails once the
// deadline has passed is answered 503 (Gemini retries) rather than 401,
// 403 or 500. d <= 0 removes the budget; ctx then ends only with the
// request. The default is DefaultTimeout.
//
// The HandlerFunc runs on the request's goroutine, as net/http handlers do,
// and must honour ctx: one that ignores it delays the answer. For a hard
// limit on the answer whatever the HandlerFunc does, wrap the Handler in
// http.TimeoutHandler; deduplication stays correct, because an id is only
// remembered once the HandlerFunc returns nil.
//
// A HandlerFunc should only hand the event off (to a channel, a queue, a
// store) and return; slow work belongs in a worker that reads from there.
func WithTimeout(d time.Duration) Option {
	return func(o *options) { o.timeout = d }
}

// WithBinding sets the check every dynamic delivery must pass to reach the
// HandlerFunc. A dynamic delivery (verify.Scheme.Dynamic) is signed with
// Google's global keys: its signature proves that Google sent it to some
// Gemini customer, not to this receiver, so the Handler needs another proof
// that the job is this receiver's (see Binder, and AnyOf to combine checks).
//
// The Handler runs check after parsing and deduplication (so that a retry
// of a delivery already processed is answered "duplicate" without it), within
// the time budget (WithTimeout), and answers 403 when it returns an error
// wrapping ErrNotBound and 503 (Gemini retries) for any other error, which
// means it could not decide, or for any error once the budget has ended. Static
// deliveries, signed with a secret of this receiver's own webhook, are not
// checked. Without WithBinding, or with a nil check, every dynamic delivery
// is refused with 403. The last of WithBinding and InsecureSkipBinding
// given to NewHandler wins.
func WithBinding(check BindingCheck) Option {
	return func(o *options) {
		o.binding = check
		o.skipBinding = false
	}
}

// InsecureSkipBinding makes the Handler pass dynamic deliveries to the
// HandlerFunc without any binding check. It MUST NOT be used on an endpoint
// that anyone but Google and a trusted test can reach.
//
// A dynamic delivery is signed with Google's global keys, which prove that
// Google sent it to some Gemini customer, not to this receiver. Any Gemini
// customer can create a job whose webhook_config points at a server of
// their own, receive its validly signed deliveries, and replay them to this
// endpoint within the verifier's timestamp tolerance (5 minutes by
// default): without a binding check each replay reaches the HandlerFunc as
// a genuine event, as often as the sender likes, about jobs this receiver
// never created.
//
// It exists for tests, and for receivers that treat every event as a hint
// only and re-read the job through the Gemini API with their own
// credentials before acting on it, so that a replay costs one read and
// changes nothing. Everyone else uses WithBinding. NewHandler logs a
// warning when it is set with a Verifier that accepts dynamic deliveries.
// The last of WithBinding and InsecureSkipBinding given to NewHandler wins.
func InsecureSkipBinding() Option {
	return func(o *options) {
		o.binding = nil
		o.skipBinding = true
	}
}
