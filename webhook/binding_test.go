package webhook

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func newTestBinder(t testing.TB, fill byte) *Binder {
	t.Helper()
	b, err := NewBinder(bytes.Repeat([]byte{fill}, MinBinderSecret))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNewBinderBadSecret(t *testing.T) {
	oneSet := make([]byte, MinBinderSecret)
	oneSet[MinBinderSecret-1] = 1
	tests := []struct {
		name    string
		secret  []byte
		wantErr string // "" means accepted
	}{
		{"empty", nil, "need at least"},
		{"16 bytes", bytes.Repeat([]byte{1}, 16), "need at least"},
		{"one byte short", bytes.Repeat([]byte{1}, MinBinderSecret-1), "need at least"},
		{"all zero", make([]byte, MinBinderSecret), "zero bytes"},
		{"all zero, long", make([]byte, 64), "fill it with crypto/rand.Read"},
		{"one non-zero byte", oneSet, ""},
		{"MinBinderSecret bytes", bytes.Repeat([]byte{1}, MinBinderSecret), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := NewBinder(tt.secret)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("NewBinder: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("NewBinder = %v, %v; want an error saying %q", b, err, tt.wantErr)
			}
		})
	}
}

func TestBinderCheck(t *testing.T) {
	b := newTestBinder(t, 1)
	other := newTestBinder(t, 2)
	good := b.Token("job-7")
	raw, _ := base64.RawURLEncoding.DecodeString(good)
	raw[len(raw)-1] ^= 1
	flipped := base64.RawURLEncoding.EncodeToString(raw)

	tests := []struct {
		name string
		md   map[string]any
		ok   bool
	}{
		{"minted here", b.Metadata("job-7"), true},
		{"empty key", b.Metadata(""), true},
		{"metadata with other entries", map[string]any{"x": 1.0, MetadataKey: "job-7", MetadataToken: good}, true},
		{"no metadata", nil, false},
		{"no token", map[string]any{MetadataKey: "job-7"}, false},
		{"no key", map[string]any{MetadataToken: good}, false},
		{"token for another key", map[string]any{MetadataKey: "job-8", MetadataToken: good}, false},
		{"token from another receiver", other.Metadata("job-7"), false},
		{"token tampered", map[string]any{MetadataKey: "job-7", MetadataToken: flipped}, false},
		{"token truncated", map[string]any{MetadataKey: "job-7", MetadataToken: good[:20]}, false},
		{"token not base64url", map[string]any{MetadataKey: "job-7", MetadataToken: "!!!!"}, false},
		{"token not a string", map[string]any{MetadataKey: "job-7", MetadataToken: 1.0}, false},
		// A struct decoding this object would read the key "victim".
		{"key and a case variant of it", map[string]any{MetadataKey: "job-7", MetadataToken: good, "GENAIHOOK_KEY": "victim"}, false},
		{"token and a case variant of it", map[string]any{MetadataKey: "job-7", MetadataToken: good, "Genaihook_Token": "x"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := b.Check(context.Background(), &Event{UserMetadata: metadataJSON(t, tt.md)})
			if tt.ok && err != nil {
				t.Errorf("Check = %v, want nil", err)
			}
			if !tt.ok && !errors.Is(err, ErrNotBound) {
				t.Errorf("Check = %v, want ErrNotBound", err)
			}
		})
	}
}

func TestBinderTokensDiffer(t *testing.T) {
	b := newTestBinder(t, 1)
	if t1, t2 := b.Token("k"), b.Token("k"); t1 == t2 {
		t.Error("two tokens for one key are equal: the nonce is missing")
	}
}

func TestBinderSecretCopied(t *testing.T) {
	secret := bytes.Repeat([]byte{1}, MinBinderSecret)
	b, _ := NewBinder(secret)
	md := b.Metadata("k")
	secret[0] = 9
	if err := b.Check(context.Background(), &Event{UserMetadata: metadataJSON(t, md)}); err != nil {
		t.Errorf("Check after the caller changed its secret: %v", err)
	}
}

func TestAnyOf(t *testing.T) {
	ctx := context.Background()
	pass := func(context.Context, *Event) error { return nil }
	reject := func(context.Context, *Event) error { return fmt.Errorf("%w: no", ErrNotBound) }
	down := errors.New("store down")
	broken := func(context.Context, *Event) error { return down }

	tests := []struct {
		name   string
		checks []BindingCheck
		want   error // nil, ErrNotBound or down
	}{
		{"none", nil, ErrNotBound},
		{"only nil", []BindingCheck{nil}, ErrNotBound},
		{"one passes", []BindingCheck{reject, pass}, nil},
		{"pass before broken", []BindingCheck{pass, broken}, nil},
		{"all reject", []BindingCheck{reject, reject}, ErrNotBound},
		{"undecided wins over rejection", []BindingCheck{reject, broken}, down},
		{"broken then pass", []BindingCheck{broken, pass}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := AnyOf(tt.checks...)(ctx, &Event{})
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("AnyOf = %v, want %v", err, tt.want)
			}
			if errors.Is(tt.want, down) && errors.Is(err, ErrNotBound) {
				t.Errorf("undecided check reported as not bound: %v", err)
			}
		})
	}
}

// TestHandlerReplayedDynamicDelivery: a foreign job's validly signed dynamic
// delivery, replayed to this receiver, is rejected with a Binder's check and
// by default (no check configured: every dynamic delivery is refused); only
// InsecureSkipBinding lets it through. Static deliveries are never checked.
func TestHandlerReplayedDynamicDelivery(t *testing.T) {
	mine := newTestBinder(t, 1)
	theirs := newTestBinder(t, 2)

	body := func(md map[string]any) string {
		ev := map[string]any{
			"type": "interaction.completed", "version": "v1", "timestamp": "2026-01-22T12:00:00Z",
			"data": map[string]any{"id": "interactions/x"},
		}
		if md != nil {
			ev["data"].(map[string]any)["user_metadata"] = md
		}
		b, err := json.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	modes := []struct {
		name string
		opts []Option
	}{
		{"binder", []Option{WithBinding(mine.Check)}},
		{"default", nil},
		{"insecure", []Option{InsecureSkipBinding()}},
	}
	tests := []struct {
		name    string
		body    string
		dynamic bool
		want    [3]int // per mode: binder, default, insecure
	}{
		{"dynamic, own token", body(mine.Metadata("job-1")), true, [3]int{200, 403, 200}},
		{"dynamic, foreign job without metadata", body(nil), true, [3]int{403, 403, 200}},
		{"dynamic, foreign job with its own metadata", body(map[string]any{"customer": "acme"}), true, [3]int{403, 403, 200}},
		{"dynamic, foreign job with a foreign token", body(theirs.Metadata("job-1")), true, [3]int{403, 403, 200}},
		{"dynamic, own token copied to another key", body(map[string]any{MetadataKey: "job-2", MetadataToken: mine.Token("job-1")}), true, [3]int{403, 403, 200}},
		{"static, no metadata", body(nil), false, [3]int{200, 200, 200}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for m, mode := range modes {
				rec := &recorder{}
				h := NewHandler(fakeVerifier{}, rec.fn, append(mode.opts, WithLogger(nil))...)
				r := delivery(fmt.Sprintf("msg_%d", i), tt.body)
				if tt.dynamic {
					r = dynamicDelivery(fmt.Sprintf("msg_%d", i), tt.body)
				}
				w := serve(h, r)
				if want := tt.want[m]; w.Code != want {
					t.Errorf("%s: status %d, want %d", mode.name, w.Code, want)
				}
				if calls := rec.calls(); (w.Code == 200) != (calls == 1) {
					t.Errorf("%s: status %d, HandlerFunc called %d times", mode.name, w.Code, calls)
				}
			}
		})
	}
}

// TestHandlerRejectedBindingNotRemembered: a rejected replay must not mark
// the webhook-id as processed, or an attacker could pre-empt a genuine
// delivery by replaying one with a guessed id.
func TestHandlerRejectedBindingNotRemembered(t *testing.T) {
	b := newTestBinder(t, 1)
	rec := &recorder{}
	h := NewHandler(fakeVerifier{}, rec.fn, WithBinding(b.Check), WithLogger(nil))
	foreign := `{"type":"interaction.completed","timestamp":"2026-01-22T12:00:00Z","data":{"id":"x"}}`
	if w := serve(h, dynamicDelivery("msg_1", foreign)); w.Code != 403 {
		t.Fatalf("foreign: %d", w.Code)
	}
	md, _ := json.Marshal(b.Metadata("k"))
	own := `{"type":"interaction.completed","timestamp":"2026-01-22T12:00:00Z","data":{"id":"x","user_metadata":` + string(md) + `}}`
	if w := serve(h, dynamicDelivery("msg_1", own)); w.Code != 200 || w.Body.String() != "ok\n" {
		t.Fatalf("own after foreign: %d %q", w.Code, w.Body.String())
	}
}

// BenchmarkBinderCheck is the binding check every dynamic delivery pays
// before reaching the HandlerFunc.
func BenchmarkBinderCheck(b *testing.B) {
	binder := newTestBinder(b, 1)
	ev := &Event{UserMetadata: metadataJSON(b, binder.Metadata("job-1"))}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := binder.Check(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
}

// metadataJSON returns md as Event.UserMetadata holds it, the JSON object.
func metadataJSON(t testing.TB, md map[string]any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(md)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBinderCheckReadsRawMetadata pins how Check reads UserMetadata, the
// object as sent: as encoding/json reads it into a map[string]any.
func TestBinderCheckReadsRawMetadata(t *testing.T) {
	b := newTestBinder(t, 1)
	good := b.Token("job-7")
	tests := []struct {
		name string
		md   string
		ok   bool
	}{
		{"spaced", `{ "genaihook_key" : "job-7" , "x": [1, {"genaihook_key": 2}], "genaihook_token" : "` + good + `" }`, true},
		{"other members first", `{"a":{"b":[null,true]},"genaihook_token":"` + good + `","genaihook_key":"job-7"}`, true},
		{"an escaped key", `{"genaihook_key":"job\u002d7","genaihook_token":"` + good + `"}`, true},
		{"names in another case", `{"GENAIHOOK_KEY":"job-7","genaihook_token":"` + good + `"}`, false},
		{"key not a string", `{"genaihook_key":7,"genaihook_token":"` + good + `"}`, false},
		{"key null", `{"genaihook_key":null,"genaihook_token":"` + good + `"}`, false},
		{"nil", ``, false},
		{"not an object", `["genaihook_key","job-7"]`, false},
		{"empty", `{}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var md json.RawMessage
			if tt.md != "" {
				md = json.RawMessage(tt.md)
			}
			err := b.Check(context.Background(), &Event{UserMetadata: md})
			if tt.ok && err != nil {
				t.Errorf("Check = %v, want nil", err)
			}
			if !tt.ok && !errors.Is(err, ErrNotBound) {
				t.Errorf("Check = %v, want ErrNotBound", err)
			}
		})
	}
}
