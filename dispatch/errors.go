package dispatch

import (
	"errors"
	"fmt"

	"github.com/genaihook/genaihook/webhook"
)

// Errors returned by the Dispatcher and its Futures, for errors.Is.
var (
	// ErrClosed ends every wait that is pending when Close is called, and
	// every Wait, Watch or Deliver made after it.
	ErrClosed = errors.New("dispatch: dispatcher closed")
	// ErrStopped is the result of a Future stopped before it resolved.
	ErrStopped = errors.New("dispatch: wait stopped")
	// ErrPending is what Future.Result returns before Done is closed.
	ErrPending = errors.New("dispatch: result not ready")
	// ErrInvalidID is returned for an empty job id or correlation key.
	ErrInvalidID = errors.New("dispatch: empty job id")

	// ErrJobFailed, ErrJobExpired and ErrJobCancelled classify a *JobError
	// by the job's outcome.
	ErrJobFailed    = errors.New("dispatch: job failed")
	ErrJobExpired   = errors.New("dispatch: job expired")
	ErrJobCancelled = errors.New("dispatch: job cancelled")
	// ErrJobNotFound ends the waits on a job that the API says does not exist,
	// or is not the caller's: at least three polls in a row, the first and the
	// last at least two minutes apart, failed with 404 Not Found or 403
	// Permission Denied. One such answer is not enough: a job just created can
	// be briefly unknown. The error Wait then returns wraps ErrJobNotFound and
	// the last poll's error (a genai.APIError, for instance).
	ErrJobNotFound = errors.New("dispatch: job not found")
)

// JobError reports a job that ended without succeeding: failed, expired or
// cancelled. It carries Gemini's error_code and error_message when the event
// (or the polled job) had them. errors.Is matches it against ErrJobFailed,
// ErrJobExpired or ErrJobCancelled according to Outcome.
type JobError struct {
	// ID is the job id as the event or the poll named it.
	ID string
	// Type is the event type that reported the outcome.
	Type webhook.EventType
	// Outcome is OutcomeFailed, OutcomeExpired or OutcomeCancelled.
	Outcome webhook.Outcome
	// Code is data.error_code, empty when Gemini sent none.
	Code string
	// Message is data.error_message, empty when Gemini sent none.
	Message string
	// Polled is true when the fallback poller, not a webhook, found the
	// outcome.
	Polled bool
}

// Error returns "dispatch: job <id> <outcome>", followed by Gemini's error
// message and code when there are any.
func (e *JobError) Error() string {
	msg := fmt.Sprintf("dispatch: job %s %s", e.ID, e.Outcome)
	switch {
	case e.Code != "" && e.Message != "":
		msg += fmt.Sprintf(": %s (code %s)", e.Message, e.Code)
	case e.Message != "":
		msg += ": " + e.Message
	case e.Code != "":
		msg += ": code " + e.Code
	}
	return msg
}

// Is makes errors.Is(err, ErrJobFailed) (or Expired, Cancelled) true for a
// JobError of that outcome.
func (e *JobError) Is(target error) bool {
	switch target {
	case ErrJobFailed:
		return e.Outcome == webhook.OutcomeFailed
	case ErrJobExpired:
		return e.Outcome == webhook.OutcomeExpired
	case ErrJobCancelled:
		return e.Outcome == webhook.OutcomeCancelled
	}
	return false
}

// EventError returns the *JobError that ev reports, or nil when ev says the
// job succeeded or needs action. A video event carrying error_code or
// error_message counts as failed: Gemini documents no failure event for
// videos, and the poller reports a failed operation that way.
func EventError(ev *webhook.Event) error {
	if ev == nil {
		return nil
	}
	o := outcomeOf(ev)
	switch o {
	case webhook.OutcomeFailed, webhook.OutcomeExpired, webhook.OutcomeCancelled:
		return &JobError{
			ID: ev.Data.ID, Type: ev.Type, Outcome: o,
			Code: string(ev.Data.ErrorCode), Message: ev.Data.ErrorMessage, Polled: ev.Polled,
		}
	}
	return nil
}

// outcomeOf is ev.Type.Outcome(), except that a video event with error
// details is a failure.
func outcomeOf(ev *webhook.Event) webhook.Outcome {
	o := ev.Type.Outcome()
	if ev.Type.Family() == webhook.FamilyVideo && (ev.Data.ErrorCode != "" || ev.Data.ErrorMessage != "") {
		return webhook.OutcomeFailed
	}
	return o
}
