package redisstore

import (
	"testing"
	"time"

	"github.com/genaihook/genaihook/webhook"
)

// FuzzMessage checks that any bytes on the channel (anything may publish
// there) are split and decoded without panicking, and that a message
// made by message splits back into its parts.
func FuzzMessage(f *testing.F) {
	blob, err := encode(&webhook.Event{Type: webhook.BatchSucceeded, Timestamp: time.Unix(1, 2), Raw: []byte(`{}`)}, DefaultMaxEventBytes)
	if err != nil {
		f.Fatal(err)
	}
	f.Add("b/1", string(blob))
	f.Add("", "")
	f.Add("{x}", `{"v":1,"ts":"0001-01-01T00:00:00Z"}`)
	f.Fuzz(func(t *testing.T, key, blob string) {
		k, b, ok := parseMessage(string(message(key, []byte(blob))))
		if !ok || k != key || b != blob {
			t.Fatalf("parseMessage(message(%q, %q)) = %q, %q, %v", key, blob, k, b, ok)
		}
		// The same bytes as a whole message, and as an encoded event.
		parseMessage(key + blob)
		if ev, err := decode([]byte(blob)); err == nil && ev == nil {
			t.Fatal("decode returned neither an event nor an error")
		}
	})
}
