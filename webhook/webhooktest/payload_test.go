package webhooktest_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/genaihook/genaihook/webhook"
	"github.com/genaihook/genaihook/webhook/webhooktest"
)

func TestPayloadBody(t *testing.T) {
	ts := time.Date(2026, 1, 22, 13, 0, 0, 0, time.FixedZone("CET", 3600))
	tests := []struct {
		name string
		p    webhooktest.Payload
		want string
	}{
		{
			name: "documented example",
			p: webhooktest.Payload{Type: webhook.BatchSucceeded, Timestamp: ts,
				Data: map[string]any{"output_file_uri": "gs://bucket/results.jsonl", "id": "batches/abc123"}},
			want: `{"type":"batch.succeeded","version":"v1","timestamp":"2026-01-22T12:00:00Z","data":{"id":"batches/abc123","output_file_uri":"gs://bucket/results.jsonl"}}`,
		},
		{
			name: "version kept, sub-second time, no data",
			p:    webhooktest.Payload{Type: "webhook.ping", Version: "v2", Timestamp: ts.Add(250 * time.Millisecond)},
			want: `{"type":"webhook.ping","version":"v2","timestamp":"2026-01-22T12:00:00.25Z","data":{}}`,
		},
		{
			name: "user metadata in data, extra members after data, no HTML escaping",
			p: webhooktest.Payload{Type: webhook.InteractionCompleted, Timestamp: ts,
				Data:         map[string]any{"id": "v1_<abc>&"},
				UserMetadata: map[string]any{"k": "a", "genaihook_token": "t"},
				Extra:        map[string]any{"z": 1, "user_metadata": map[string]any{"top": true}}},
			want: `{"type":"interaction.completed","version":"v1","timestamp":"2026-01-22T12:00:00Z","data":{"id":"v1_<abc>&","user_metadata":{"genaihook_token":"t","k":"a"}},"user_metadata":{"top":true},"z":1}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(tt.p.Body())
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Body (-want +got):\n%s", diff)
			}
			for range 10 { // map order varies between iterations
				if again := string(tt.p.Body()); again != got {
					t.Fatalf("Body is not deterministic: %s, then %s", got, again)
				}
			}
		})
	}
}

func TestPayloadBodyDoesNotModifyData(t *testing.T) {
	p := webhooktest.NewPayload(webhook.InteractionCompleted, "i1")
	p.UserMetadata = map[string]any{"k": "v"}
	p.Body()
	if _, ok := p.Data["user_metadata"]; ok {
		t.Error("Body added user_metadata to p.Data")
	}
}

func TestPayloadParse(t *testing.T) {
	ts := time.Date(2026, 1, 22, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		p    webhooktest.Payload
		want webhook.Data
	}{
		{withData(webhooktest.NewPayload(webhook.BatchSucceeded, "batches/abc123"), "output_file_uri", "gs://bucket/results.jsonl"),
			webhook.Data{ID: "batches/abc123", OutputFileURI: "gs://bucket/results.jsonl"}},
		{webhooktest.NewPayload(webhook.BatchSucceeded, "batches/inlined"), webhook.Data{ID: "batches/inlined"}},
		{withData(webhooktest.NewPayload(webhook.BatchFailed, "batches/abc123"), "error_code", 3, "error_message", "invalid input"),
			webhook.Data{ID: "batches/abc123", ErrorCode: "3", ErrorMessage: "invalid input"}},
		{webhooktest.NewPayload(webhook.BatchExpired, "batches/abc123"), webhook.Data{ID: "batches/abc123"}},
		{webhooktest.NewPayload(webhook.BatchCancelled, "batches/abc123"), webhook.Data{ID: "batches/abc123"}},
		{webhooktest.NewPayload(webhook.InteractionRequiresAction, "v1_abc"), webhook.Data{ID: "v1_abc"}},
		{webhooktest.NewPayload(webhook.InteractionCompleted, "v1_abc"), webhook.Data{ID: "v1_abc"}},
		{withData(webhooktest.NewPayload(webhook.InteractionFailed, "v1_abc"), "error_code", 13, "error_message", "internal"),
			webhook.Data{ID: "v1_abc", ErrorCode: "13", ErrorMessage: "internal"}},
		{webhooktest.NewPayload(webhook.InteractionCancelled, "v1_abc"), webhook.Data{ID: "v1_abc"}},
		{withData(webhooktest.NewPayload(webhook.VideoGenerated, "models/veo-3.0/operations/op1"), "output_file_uri", "https://example.com/v.mp4", "file_name", "files/v1"),
			webhook.Data{ID: "models/veo-3.0/operations/op1", OutputFileURI: "https://example.com/v.mp4", FileName: "files/v1"}},
	}
	types := map[webhook.EventType]bool{}
	for _, tt := range tests {
		t.Run(string(tt.p.Type), func(t *testing.T) {
			types[tt.p.Type] = true
			if !tt.p.Type.Known() {
				t.Errorf("type %q is not a known webhook.EventType", tt.p.Type)
			}
			tt.p.Timestamp = ts
			tt.p.UserMetadata = map[string]any{"job": "j1"}
			ev, err := webhook.Parse(tt.p.Body())
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if ev.Type != tt.p.Type || ev.Version != "v1" || !ev.Timestamp.Equal(ts) {
				t.Errorf("Parse = type %q version %q time %v", ev.Type, ev.Version, ev.Timestamp)
			}
			if diff := cmp.Diff(tt.want, ev.Data); diff != "" {
				t.Errorf("Data (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(`{"job":"j1"}`, string(ev.UserMetadata)); diff != "" {
				t.Errorf("UserMetadata (-want +got):\n%s", diff)
			}
		})
	}
	if len(types) != 9 {
		t.Errorf("builders cover %d event types, want 9", len(types))
	}
}

// withData returns p with the data fields kv, given as name, value pairs.
func withData(p webhooktest.Payload, kv ...any) webhooktest.Payload {
	for i := 0; i+1 < len(kv); i += 2 {
		p.Data[kv[i].(string)] = kv[i+1]
	}
	return p
}
