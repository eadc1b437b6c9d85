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
	// ErrInvalidID ends a wait on an id of no form genai returns
	// ("batches/{id}", "models/{model}/operations/{op}" or "operations/{op}",
	// a bare interaction id, none with an empty segment): it could only be
	// matched by accident.
	ErrInvalidID = errors.New("dispatch: not a job id as genai returns it")

	// ErrJobFailed, ErrJobExpired and ErrJobCancelled classify a *JobError
	// by the job's outcome.
	ErrJobFailed    = errors.New("dispatch: job failed")
	ErrJobExpired   = errors.New("dispatch: job expired")
	ErrJobCancelled = errors.New("dispatch: job cancelled")
	// ErrJobNotFound ends the waits on a job that the API says does not exist,
	// or is not the caller's: at least three reads in a row, the first and the
	// last at least two minutes apart, failed with 404 Not Found or 403
	// Permission Denied. One such answer is not enough: a job just created can
	// be briefly unknown. The error Wait then returns wraps ErrJobNotFound and
	// the last read's error (a genai.APIError, for instance).
	ErrJobNotFound = errors.New("dispatch: job not found")
)

// JobError reports a job that ended without succeeding: failed, expired or
// cancelled, or a video operation done without a video. It carries
// Gemini's error_code and error_message when the event (or the job read
// back) had them. errors.Is matches it against ErrJobFailed,
// ErrJobExpired or ErrJobCancelled according to Outcome.
type JobError struct {
	// ID is the job id as the event or the poll named it.
	ID string
	// Type is the event type that reported the outcome.
	Type webhook.EventType
	// Outcome is webhook.OutcomeFailed, webhook.OutcomeExpired or
	// webhook.OutcomeCancelled.
	Outcome webhook.Outcome
	// Code is data.error_code, empty when Gemini sent none.
	Code string
	// Message is data.error_message, empty when Gemini sent none.
	Message string
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

// eventError returns the *JobError that ev reports, or nil when ev says the
// job succeeded or needs action. A video event carrying error_code or
// error_message counts as failed: Gemini documents no failure event for
// videos, and the poller reports a failed operation that way.
func eventError(ev *webhook.Event) error {
	if ev == nil {
		return nil
	}
	o := outcomeOf(ev)
	switch o {
	case webhook.OutcomeFailed, webhook.OutcomeExpired, webhook.OutcomeCancelled:
		return &JobError{
			ID: ev.Data.ID, Type: ev.Type, Outcome: o,
			Code: string(ev.Data.ErrorCode), Message: ev.Data.ErrorMessage,
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

// needsAction reports whether ev asks for action (a requires_action):
// a pause, which goes to one wait only.
func needsAction(ev *webhook.Event) bool {
	return ev.Type.Outcome() == webhook.OutcomeNeedsAction
}
