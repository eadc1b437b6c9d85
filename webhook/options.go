package webhook

import (
	"log/slog"
	"time"
)

// Defaults of Handler.
const (
	// DefaultMaxBodyBytes caps a delivery's body. Gemini's events are well
	// under the 20 kB Standard Webhooks recommends; 1 MiB is generous.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultTimeout is the time budget of a HandlerFunc. Gemini wants an
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

// WithTimeout sets the time budget of the HandlerFunc, so that Gemini gets
// its answer before it gives up: the HandlerFunc's ctx carries this
// deadline, and an error returned once it has passed is answered 503 (Gemini
// retries) rather than 500. d <= 0 removes the budget; ctx then ends only
// with the request. The default is DefaultTimeout.
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

// WithBinding makes the Handler run check on every dynamic delivery
// (verify.Scheme.Dynamic: signed with Google's global keys) after parsing
// and before deduplication, answering 403 when it returns an error wrapping
// ErrNotBound and 500 for any other error. Static deliveries, signed with a
// secret of this receiver's own webhook, are not checked. nil turns the
// check off. See Binder and AnyOf.
func WithBinding(check BindingCheck) Option {
	return func(o *options) { o.binding = check }
}
