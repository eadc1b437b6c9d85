package webhooktest

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"
	"time"

	"github.com/genaihook/genaihook/webhook"
)

// Payload is one event to deliver: the thin envelope Gemini POSTs, a
// status snapshot and pointers, never the results,
//
//	{"type":"batch.succeeded","version":"v1","timestamp":"2026-01-22T12:00:00Z","data":{"id":"batches/abc123",…}}
//
// Build one with NewPayload and add the fields of its type to Data.
type Payload struct {
	// Type is the event type; any string is sent as is.
	Type webhook.EventType
	// Version is the envelope version; empty means "v1".
	Version string
	// Timestamp is the event time. A Sender fills a zero Timestamp from its
	// clock once per delivery, so every retry carries the same body.
	Timestamp time.Time
	// WebhookID is the webhook-id header of the delivery, the same on every
	// retry; empty means a fresh "msg_" and random UUID for each delivery,
	// the form live deliveries carry. Set it to replay an event under the
	// id of an earlier one. It is not part of the body.
	WebhookID string
	// Data is the "data" object: "id" and the fields of Type.
	Data map[string]any
	// UserMetadata, when non-nil, is sent as data.user_metadata, where
	// dynamic webhooks echo the job's webhook_config.user_metadata. To test
	// a top-level user_metadata instead, put it in Extra.
	UserMetadata map[string]any
	// Extra holds further top-level members, sent after "data": fields
	// Gemini may add, which a receiver must keep and never reject.
	Extra map[string]any
}

// Body returns the envelope as compact JSON. Members come in a fixed order
// (type, version, timestamp, data, then Extra by key; keys inside objects
// sorted), so equal payloads give equal bytes. The timestamp is RFC 3339 in
// UTC. Body panics if a value in Data, UserMetadata or Extra cannot be
// encoded as JSON.
func (p Payload) Body() []byte {
	var b bytes.Buffer
	version := p.Version
	if version == "" {
		version = "v1"
	}
	data := p.Data
	if p.UserMetadata != nil {
		data = maps.Clone(data)
		if data == nil {
			data = map[string]any{}
		}
		data["user_metadata"] = p.UserMetadata
	}
	if data == nil {
		data = map[string]any{}
	}
	b.WriteString(`{"type":`)
	writeJSON(&b, string(p.Type))
	b.WriteString(`,"version":`)
	writeJSON(&b, version)
	b.WriteString(`,"timestamp":`)
	writeJSON(&b, p.Timestamp.UTC().Format(time.RFC3339Nano))
	b.WriteString(`,"data":`)
	writeJSON(&b, data)
	for _, k := range slices.Sorted(maps.Keys(p.Extra)) {
		b.WriteByte(',')
		writeJSON(&b, k)
		b.WriteByte(':')
		writeJSON(&b, p.Extra[k])
	}
	b.WriteByte('}')
	return b.Bytes()
}

// writeJSON appends v as compact JSON without HTML escaping, as a
// non-browser API sends it.
func writeJSON(b *bytes.Buffer, v any) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic("webhooktest: encoding payload: " + err.Error())
	}
	b.Truncate(b.Len() - 1) // Encode's newline
}

// NewPayload returns an event of type t about the job id, with data.id set
// and nothing else: add the fields of t to Data (output_file_uri,
// error_code, error_message, …) and the job's user_metadata to UserMetadata.
// Give id in the form Gemini's SDK uses: "batches/{id}" for a batch, the
// full "models/{model}/operations/{op}" name for a video operation, the bare
// id for an interaction.
func NewPayload(t webhook.EventType, id string) Payload {
	return Payload{Type: t, Data: map[string]any{"id": id}}
}
