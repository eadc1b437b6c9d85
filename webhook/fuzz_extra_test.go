package webhook_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"

	"github.com/genaihook/genaihook/webhook"
)

// FuzzBinderCheck feeds arbitrary bodies, as a dynamic delivery's signer
// chose them, through Parse to Binder.Check. Check must never panic, must
// reject with an error wrapping ErrNotBound (never another kind), and must
// accept only a key this Binder minted a token for, with that token (in one
// of its base64url spellings): user_metadata is the sender's to write,
// and a forged token must not bind a delivery to this receiver.
func FuzzBinderCheck(f *testing.F) {
	b, err := webhook.NewBinder(bytes.Repeat([]byte{7, 3}, webhook.MinBinderSecret/2))
	if err != nil {
		f.Fatal(err)
	}
	other, err := webhook.NewBinder(bytes.Repeat([]byte{9}, webhook.MinBinderSecret))
	if err != nil {
		f.Fatal(err)
	}
	// Tokens this Binder minted once (Token is random, and fuzzing workers
	// are separate processes: each would mint others), decoded below.
	tokens := map[string]string{
		"job-1":                     "jRpksMRCaSWhTn54_I9G1eCh2AQj1W_Chj3D1Agrx7o",
		"":                          "xTkUat0fecFz0hE4vja4Z1MHAtqdVrMLynlBSuAiJN4",
		"gh_AAAAAAAAAAAAAAAAAAAAAA": "l_marLR5xKuf8vw9duPotcNJAUNXs_lu4n5_2c8M-j8",
		"k\u00e9y":                  "Bp3QMJqvG9Tsqzoor2mU0vapM7ENd6DJdE_eBH6Ql2U",
	}
	minted := map[string][]byte{} // key → decoded token
	body := func(md map[string]any, top bool) []byte {
		ev := map[string]any{"type": "interaction.completed", "timestamp": "2026-01-22T12:00:00Z", "data": map[string]any{"id": "v1_abc"}}
		if top {
			ev["user_metadata"] = md
		} else {
			ev["data"].(map[string]any)["user_metadata"] = md
		}
		out, err := json.Marshal(ev)
		if err != nil {
			f.Fatal(err)
		}
		return out
	}
	i := 0
	for key, token := range tokens {
		i++
		md := map[string]any{webhook.MetadataKey: key, webhook.MetadataToken: token}
		sent, err := json.Marshal(md)
		if err != nil {
			f.Fatal(err)
		}
		if err := b.Check(context.Background(), &webhook.Event{UserMetadata: sent}); err != nil {
			f.Fatalf("token minted for %q: %v", key, err)
		}
		raw, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil {
			f.Fatal(err)
		}
		minted[key] = raw
		f.Add(body(md, i%2 == 0))
		f.Add(body(other.Metadata(key), false))
		f.Add(body(map[string]any{webhook.MetadataKey: key + "x", webhook.MetadataToken: md[webhook.MetadataToken]}, false))
		f.Add(body(map[string]any{webhook.MetadataKey: key, webhook.MetadataToken: md[webhook.MetadataToken].(string) + "A"}, false))
	}
	f.Add(body(map[string]any{webhook.MetadataKey: 1, webhook.MetadataToken: []any{"x"}}, false))
	f.Add([]byte(`{"type":"x","timestamp":"2026-01-22T12:00:00Z","data":{"id":"x"},"user_metadata":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := webhook.Parse(body)
		if err != nil {
			return
		}
		err = b.Check(context.Background(), ev)
		if err != nil {
			if !errors.Is(err, webhook.ErrNotBound) {
				t.Fatalf("Check error %v does not wrap ErrNotBound", err)
			}
			return
		}
		// What Check read, as encoding/json reads it into a map.
		var md map[string]any
		if err := json.Unmarshal(ev.UserMetadata, &md); err != nil {
			t.Fatalf("Check accepted user_metadata %q that encoding/json cannot read: %v", ev.UserMetadata, err)
		}
		key, ok1 := md[webhook.MetadataKey].(string)
		token, ok2 := md[webhook.MetadataToken].(string)
		if !ok1 || !ok2 {
			t.Fatalf("Check accepted user_metadata %q without two strings", ev.UserMetadata)
		}
		// A HandlerFunc decoding the same object into a struct
		// (case-insensitive names, the last one winning) reads the same
		// key and token.
		var st struct {
			Key   string `json:"genaihook_key"`
			Token string `json:"genaihook_token"`
		}
		if err := json.Unmarshal(ev.UserMetadata, &st); err != nil || st.Key != key || st.Token != token {
			t.Fatalf("Check accepted user_metadata %q that a struct reads as key %q, token %q (err %v)", ev.UserMetadata, st.Key, st.Token, err)
		}
		want, ok := minted[key]
		raw, err := base64.RawURLEncoding.DecodeString(token)
		if !ok || err != nil || !bytes.Equal(raw, want) {
			t.Fatalf("Check accepted key %q with token %q, which this Binder never minted for it", key, token)
		}
	})
}
