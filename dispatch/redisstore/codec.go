package redisstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/genaihook/genaihook/verify"
	"github.com/genaihook/genaihook/webhook"
)

// record is an event as stored: every field of webhook.Event but the job
// the dispatcher read back through the API, which is the API's to keep.
// Raw and Meta (the event's UserMetadata) are kept as base64, byte for
// byte: a JSON encoder would reformat them.
type record struct {
	V         int               `json:"v"`
	WebhookID string            `json:"id"`
	Type      webhook.EventType `json:"type"`
	Version   string            `json:"ver"`
	Timestamp time.Time         `json:"ts"`
	Data      webhook.Data      `json:"data"`
	Meta      meta              `json:"meta"`
	Raw       []byte            `json:"raw"`
	Auth      verify.Result     `json:"auth"`
	Polled    bool              `json:"polled"`
}

// recordVersion is written in every record; decode refuses others.
const recordVersion = 1

// encode returns ev as stored, or an error wrapping ErrTooLarge if that
// takes more than max bytes.
func encode(ev *webhook.Event, max int) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	err := enc.Encode(record{
		V:         recordVersion,
		WebhookID: ev.WebhookID,
		Type:      ev.Type,
		Version:   ev.Version,
		Timestamp: ev.Timestamp,
		Data:      ev.Data,
		Meta:      meta(ev.UserMetadata),
		Raw:       []byte(ev.Raw),
		Auth:      ev.Auth,
		Polled:    ev.Polled,
	})
	if err != nil {
		return nil, fmt.Errorf("redisstore: encode event: %w", err)
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(b) > max {
		return nil, fmt.Errorf("%w: %d bytes encoded, over the bound of %d", ErrTooLarge, len(b), max)
	}
	return b, nil
}

// decode returns the event encode stored as b, or an error wrapping
// ErrCorrupt.
func decode(b []byte) (*webhook.Event, error) {
	var r record
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if r.V != recordVersion {
		return nil, fmt.Errorf("%w: record version %d", ErrCorrupt, r.V)
	}
	return &webhook.Event{
		WebhookID:    r.WebhookID,
		Type:         r.Type,
		Version:      r.Version,
		Timestamp:    r.Timestamp,
		Data:         r.Data,
		UserMetadata: json.RawMessage(r.Meta),
		Raw:          json.RawMessage(r.Raw),
		Auth:         r.Auth,
		Polled:       r.Polled,
	}, nil
}

// meta is a record's user_metadata: base64 of the bytes as received, or,
// in a record written before Event.UserMetadata held those bytes, the
// object itself, which is read back as it was stored. null is none.
type meta []byte

// UnmarshalJSON reads either form.
func (m *meta) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		*m = nil
		return nil
	case len(b) > 0 && b[0] == '{':
		*m = append(meta(nil), b...)
		return nil
	}
	var raw []byte
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*m = raw
	return nil
}

// A message on the channel is the length of the key an event was saved
// under (a uvarint), that key, and the event as stored. Keys are opaque
// bytes, so no text encoding would do.

// message returns the message of an event saved under key, whose
// encoding is blob.
func message(key string, blob []byte) []byte {
	b := make([]byte, 0, binary.MaxVarintLen64+len(key)+len(blob))
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	return append(b, blob...)
}

// parseMessage splits a message, or reports false if it is malformed.
func parseMessage(m string) (key, blob string, ok bool) {
	n, w := binary.Uvarint([]byte(m[:min(len(m), binary.MaxVarintLen64)]))
	if w <= 0 || n > uint64(len(m)-w) {
		return "", "", false
	}
	m = m[w:]
	return m[:n], m[n:], true
}
