package webhook

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	"github.com/genaihook/genaihook/verify"
)

// EventType is the "type" of a delivery. Gemini may add types at any time:
// a type not listed here is valid and reported by Known as false.
type EventType string

// The event types of Gemini webhooks, as Google documents them. The two
// cancelled types are documented but no longer in the API's enum; they are
// modelled so that a delivery of either is recognised.
const (
	BatchSucceeded            EventType = "batch.succeeded"
	BatchFailed               EventType = "batch.failed"
	BatchExpired              EventType = "batch.expired"
	BatchCancelled            EventType = "batch.cancelled"
	InteractionRequiresAction EventType = "interaction.requires_action"
	InteractionCompleted      EventType = "interaction.completed"
	InteractionFailed         EventType = "interaction.failed"
	InteractionCancelled      EventType = "interaction.cancelled"
	VideoGenerated            EventType = "video.generated"
)

// Known reports whether t is one of the nine types this package models.
// An unknown type is still a valid delivery: Handler passes it to its
// HandlerFunc and acknowledges it, because an endpoint that fails on new
// types gets switched off by Gemini.
func (t EventType) Known() bool {
	_, ok := eventTypes[t]
	return ok
}

// Family returns the kind of job t is about, or FamilyUnknown for a type
// this package does not know.
func (t EventType) Family() Family { return eventTypes[t].family }

// Outcome returns what t says happened to its job, or OutcomeUnknown for a
// type this package does not know.
func (t EventType) Outcome() Outcome { return eventTypes[t].outcome }

var eventTypes = map[EventType]struct {
	family  Family
	outcome Outcome
}{
	BatchSucceeded:            {FamilyBatch, OutcomeSucceeded},
	BatchFailed:               {FamilyBatch, OutcomeFailed},
	BatchExpired:              {FamilyBatch, OutcomeExpired},
	BatchCancelled:            {FamilyBatch, OutcomeCancelled},
	InteractionRequiresAction: {FamilyInteraction, OutcomeNeedsAction},
	InteractionCompleted:      {FamilyInteraction, OutcomeSucceeded},
	InteractionFailed:         {FamilyInteraction, OutcomeFailed},
	InteractionCancelled:      {FamilyInteraction, OutcomeCancelled},
	VideoGenerated:            {FamilyVideo, OutcomeSucceeded},
}

// Family is the kind of job an event is about.
type Family string

// The job families.
const (
	FamilyUnknown     Family = ""
	FamilyBatch       Family = "batch"
	FamilyVideo       Family = "video"
	FamilyInteraction Family = "interaction"
)

// Outcome is what an event says happened to its job.
type Outcome string

// The outcomes.
const (
	OutcomeUnknown     Outcome = ""
	OutcomeSucceeded   Outcome = "succeeded"
	OutcomeFailed      Outcome = "failed"
	OutcomeExpired     Outcome = "expired"
	OutcomeCancelled   Outcome = "cancelled"
	OutcomeNeedsAction Outcome = "needs_action"
)

// Terminal reports whether o ends its job: succeeded, failed, expired or
// cancelled. OutcomeNeedsAction is not terminal (the interaction waits for
// the caller and resumes), nor is OutcomeUnknown.
func (o Outcome) Terminal() bool {
	switch o {
	case OutcomeSucceeded, OutcomeFailed, OutcomeExpired, OutcomeCancelled:
		return true
	}
	return false
}

// Event is one webhook delivery, parsed.
type Event struct {
	// WebhookID is the webhook-id header: the same on every retry of one
	// event. Parse leaves it empty; Handler sets it.
	WebhookID string
	// Type is the event type as sent; see EventType.Known.
	Type EventType
	// Version is the envelope version, "v1" today; another value is kept,
	// not rejected.
	Version string
	// Timestamp is the event time from the body (not the webhook-timestamp
	// header of this attempt, which is in Auth.Timestamp).
	Timestamp time.Time
	// Data is the typed "data" object. For an unknown type whose data is not
	// an object of the expected shape it is zero; Raw still has it.
	Data Data
	// UserMetadata is the job's webhook_config.user_metadata, read from
	// data.user_metadata or, failing that, a top-level user_metadata: the
	// JSON object exactly as sent, a sub-slice of Raw. It is nil when
	// neither is a JSON object. To read it, json.Unmarshal it into your own
	// type, e.g. a map[string]any or a struct of the fields you set; treat
	// it as read-only, as Raw. Binder.Check refuses an object holding two
	// names of its fields that differ only in case, which a struct and a
	// map would read differently.
	UserMetadata json.RawMessage
	// Raw is the body exactly as received.
	Raw json.RawMessage
	// Auth says how the delivery was authenticated (scheme, key, webhook-id,
	// timestamp). Handler sets it; it is zero for Parse and for polled events.
	Auth verify.Result
	// Polled is true when the event was not delivered but built from the
	// job's state as the API reported it: by dispatch, which reads the job
	// back to confirm each delivery and polls when none comes.
	Polled bool
	// Job is the job as the API reported it when the event was built from
	// it (Polled is then true): a *genai.BatchJob, a
	// *genai.GenerateVideosOperation or an *interactions.Interaction of
	// google.golang.org/genai. It is nil for a delivery. An event handed to
	// several waiters shares one Job: treat it as read-only.
	Job any
}

// Data is the "data" object of an event. Fields Gemini did not send are
// empty; fields not modelled here stay in Event.Raw.
type Data struct {
	// ID names the job: "batches/…", "models/…/operations/…", an
	// interaction id, or a short form of these.
	ID            string    `json:"id"`
	OutputFileURI string    `json:"output_file_uri,omitempty"`
	FileName      string    `json:"file_name,omitempty"`
	VideoURI      string    `json:"video_uri,omitempty"`
	ErrorCode     ErrorCode `json:"error_code,omitempty"`
	ErrorMessage  string    `json:"error_message,omitempty"`
}

// ErrorCode is data.error_code, which Gemini may send as a number or a
// string; it is kept as the text of either ("3", "INVALID_ARGUMENT").
type ErrorCode string

// UnmarshalJSON accepts a JSON number (kept as written, e.g. "3"), a JSON
// string, or null (the empty code). Any other JSON value is an error.
func (c *ErrorCode) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0:
		return &errorCodeError{"must be a number or a string"}
	case string(b) == "null":
		*c = ""
		return nil
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return &errorCodeError{"must be a number or a string"}
		}
		*c = ErrorCode(s)
		return nil
	case b[0] == '-' || (b[0] >= '0' && b[0] <= '9'):
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return &errorCodeError{"must be a number or a string"}
		}
		*c = ErrorCode(n)
		return nil
	}
	return &errorCodeError{"must be a number or a string"}
}

// Int returns the code as an integer, and false when it is empty or not an
// integer (a symbolic code such as "INVALID_ARGUMENT").
func (c ErrorCode) Int() (int64, bool) {
	n, err := strconv.ParseInt(string(c), 10, 64)
	return n, err == nil
}
