package webhook

import (
	"encoding/json"
	"time"

	"github.com/genaihook/genaihook/verify"
)

// EventType is the "type" of a delivery. Gemini may add types at any time:
// a type not listed here is valid and reported by Known as false.
type EventType string

// The event types of Gemini webhooks.
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

// Event is one webhook delivery, parsed.
type Event struct {
	// WebhookID is the webhook-id header: the same on every retry of one
	// event. Parse leaves it empty; Handler sets it.
	WebhookID string
	Type      EventType
	// Version is the envelope version, "v1" today; another value is kept,
	// not rejected.
	Version   string
	Timestamp time.Time
	Data      Data
	// UserMetadata is the job's webhook_config.user_metadata, read from
	// data.user_metadata or, failing that, a top-level user_metadata.
	UserMetadata map[string]any
	// Raw is the body exactly as received.
	Raw json.RawMessage
	// Auth says how the delivery was authenticated (scheme, key, webhook-id,
	// timestamp). Handler sets it; it is zero for Parse and for polled events.
	Auth verify.Result
	// Polled is true when the event was not delivered but built by
	// dispatch's fallback poller from the job's state.
	Polled bool
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
// string; it is kept as the text of either.
type ErrorCode string
