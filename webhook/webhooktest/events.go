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
// Build one with the helper named after its event type (BatchSucceeded,
// VideoGenerated, …) and adjust its fields, or fill it in by hand for an
// event type Gemini has not documented.
type Payload struct {
	// Type is the event type; any string is sent as is.
	Type webhook.EventType
	// Version is the envelope version; empty means "v1".
	Version string
	// Timestamp is the event time. A Sender fills a zero Timestamp from its
	// clock once per delivery, so every retry carries the same body.
	Timestamp time.Time
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

// BatchSucceeded returns a batch.succeeded event for the batch id (Gemini's
// SDK names batches "batches/…"). outputFileURI is sent as
// data.output_file_uri unless empty: Gemini sends it only for batches whose
// input was a file.
func BatchSucceeded(id, outputFileURI string) Payload {
	d := map[string]any{"id": id}
	if outputFileURI != "" {
		d["output_file_uri"] = outputFileURI
	}
	return Payload{Type: webhook.BatchSucceeded, Data: d}
}

// BatchFailed returns a batch.failed event with data.error_code (a JSON
// number) and data.error_message.
func BatchFailed(id string, code int, msg string) Payload {
	return Payload{Type: webhook.BatchFailed, Data: errorData(id, code, msg)}
}

// BatchExpired returns a batch.expired event: the batch was not processed in
// time.
func BatchExpired(id string) Payload { return idOnly(webhook.BatchExpired, id) }

// BatchCancelled returns a batch.cancelled event.
func BatchCancelled(id string) Payload { return idOnly(webhook.BatchCancelled, id) }

// InteractionRequiresAction returns an interaction.requires_action event for
// the interaction id: it paused, e.g. for a function call.
func InteractionRequiresAction(id string) Payload {
	return idOnly(webhook.InteractionRequiresAction, id)
}

// InteractionCompleted returns an interaction.completed event.
func InteractionCompleted(id string) Payload { return idOnly(webhook.InteractionCompleted, id) }

// InteractionFailed returns an interaction.failed event with data.error_code
// (a JSON number) and data.error_message.
func InteractionFailed(id string, code int, msg string) Payload {
	return Payload{Type: webhook.InteractionFailed, Data: errorData(id, code, msg)}
}

// InteractionCancelled returns an interaction.cancelled event.
func InteractionCancelled(id string) Payload { return idOnly(webhook.InteractionCancelled, id) }

// VideoGenerated returns a video.generated event for the operation id
// (Gemini's SDK names it "models/…/operations/…") with the documented
// data.output_file_uri and data.file_name, each omitted when empty. Google's
// cookbook reads data.video_uri instead; set it in Data to test that form.
func VideoGenerated(id, fileURI, fileName string) Payload {
	d := map[string]any{"id": id}
	if fileURI != "" {
		d["output_file_uri"] = fileURI
	}
	if fileName != "" {
		d["file_name"] = fileName
	}
	return Payload{Type: webhook.VideoGenerated, Data: d}
}

func idOnly(t webhook.EventType, id string) Payload {
	return Payload{Type: t, Data: map[string]any{"id": id}}
}

func errorData(id string, code int, msg string) map[string]any {
	return map[string]any{"id": id, "error_code": code, "error_message": msg}
}
