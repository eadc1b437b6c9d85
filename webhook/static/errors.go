package static

import "errors"

// Sentinel errors, for errors.Is. Each error of this package that wraps
// one says in its text what was found and what to do; none holds a secret.
var (
	// ErrNoSecret: the SecretStore holds no secret of the webhook that
	// Gemini still lists, and none could be obtained, so deliveries cannot
	// be verified.
	ErrNoSecret = errors.New("static: no signing secret")
	// ErrDisabled: the webhook is not enabled (disabled, or
	// disabled_due_to_failed_deliveries): Gemini sends it nothing.
	ErrDisabled = errors.New("static: webhook disabled")
	// ErrUnreachable: no delivery reached this process's Handler within the
	// self-test's time.
	ErrUnreachable = errors.New("static: ping did not reach the handler")
	// ErrNotVerified: the ping reached the Handler but did not verify (a
	// wrong or missing secret, or a clock out of tolerance), or verified
	// and the HandlerFunc failed on it.
	ErrNotVerified = errors.New("static: ping reached the handler but was not accepted")
)
