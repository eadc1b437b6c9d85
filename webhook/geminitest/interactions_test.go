package geminitest_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genai"
	ia "google.golang.org/genai/interactions/models/interactions"
	"google.golang.org/genai/interactions/models/operations"

	"github.com/genaihook/genaihook/webhook"
	"github.com/genaihook/genaihook/webhook/geminitest"
)

// videoInteraction is how an app asks Gemini for a video through a
// background interaction with an Omni model, delivered by URI or inline.
func videoInteraction(wc *ia.WebhookConfig) operations.CreateInteractionRequest {
	return videoInteractionDelivered(ia.VideoResponseFormatDeliveryURI, wc)
}

func videoInteractionDelivered(d ia.VideoResponseFormatDelivery, wc *ia.WebhookConfig) operations.CreateInteractionRequest {
	in := ia.NewInteractionsInput("a cat on a skateboard")
	format := ia.NewCreateModelInteractionResponseFormat(ia.NewResponseFormat(ia.VideoResponseFormat{
		AspectRatio: ia.VideoResponseFormatAspectRatioOneHundredAndSixtyNine.ToPointer(), Delivery: d.ToPointer(),
	}))
	return operations.CreateInteractionRequest{Body: operations.NewCreateInteractionRequestBody(ia.CreateModelInteraction{
		Model: ia.ModelGeminiOmniFlashPreview, Input: &in, Background: genai.Ptr(true),
		ResponseFormat: &format, WebhookConfig: wc,
	})}
}

// TestServerVideoInteraction follows a background video interaction from
// Interactions.Create to its interaction.completed event and the
// completed interaction, whose OutputVideo the test downloads.
func TestServerVideoInteraction(t *testing.T) {
	srv, c := newServer(t)
	ctx := t.Context()
	rc := dynamicReceiver(t, srv)
	wc := &ia.WebhookConfig{Uris: []string{rc.URL}, UserMetadata: rc.bind(map[string]any{"job_id": "v-1"})}

	res, err := c.Interactions.Create(ctx, videoInteraction(wc), noRetry)
	if err != nil {
		t.Fatalf("Interactions.Create: %v", err)
	}
	in := res.Interaction
	if in.ID == nil || in.Status != ia.InteractionStatusInProgress || in.OutputVideo != nil {
		t.Fatalf("created interaction = %+v", in)
	}
	if in.WebhookConfig == nil || !cmp.Equal(in.WebhookConfig.Uris, wc.Uris) || in.WebhookConfig.UserMetadata["job_id"] != "v-1" {
		t.Errorf("echoed webhook_config = %+v", in.WebhookConfig)
	}
	finish(t, srv, *in.ID, geminitest.Succeed)
	waitIdle(t, srv)
	if f := srv.Failed(); len(f) != 0 {
		t.Fatalf("failed deliveries: %+v", f)
	}
	ev := rc.only(t)
	if ev.Type != webhook.InteractionCompleted || ev.Data.ID != *in.ID || metadata(ev)["job_id"] != "v-1" {
		t.Errorf("event = %s %q %v", ev.Type, ev.Data.ID, ev.UserMetadata)
	}

	got, err := c.Interactions.Get(ctx, operations.GetInteractionByIDRequest{ID: *in.ID}, noRetry)
	if err != nil {
		t.Fatalf("Interactions.Get: %v", err)
	}
	done := got.Interaction
	if done.Status != ia.InteractionStatusCompleted || done.OutputVideo == nil || done.OutputVideo.URI == nil ||
		done.OutputVideo.MimeType == nil || *done.OutputVideo.MimeType != ia.VideoContentMimeTypeVideoMp4 || done.OutputText != nil {
		t.Fatalf("completed interaction = %+v, output_video %+v", done, done.OutputVideo)
	}
	resp, err := http.Get(*done.OutputVideo.URI)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "video/mp4" || len(body) == 0 {
		t.Errorf("download: %d %s, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
}

// TestServerTrigger starts an interaction on the server's side, as a
// scheduled trigger does: the receiver gets the events of an interaction
// the client never created, bound by the template's user_metadata, and the
// client can read it back.
func TestServerTrigger(t *testing.T) {
	srv, c := newServer(t)
	ctx := t.Context()
	rc := dynamicReceiver(t, srv)
	in := ia.NewInteractionsInput("daily digest")
	id, err := srv.Trigger(ia.CreateAgentInteraction{
		Agent: ia.AgentOptionDeepResearchPreview042026, Input: &in,
		WebhookConfig: &ia.WebhookConfig{Uris: []string{rc.URL}, UserMetadata: rc.bind(map[string]any{"trigger": "daily"})},
	})
	if err != nil {
		t.Fatalf("Trigger: %v", err)
	}
	got, err := c.Interactions.Get(ctx, operations.GetInteractionByIDRequest{ID: id}, noRetry)
	if err != nil || got.Interaction.Status != ia.InteractionStatusInProgress {
		t.Fatalf("Get(%s) = %+v, %v", id, got, err)
	}
	finish(t, srv, id, geminitest.Succeed)
	waitIdle(t, srv)
	ev := rc.only(t)
	if ev.Type != webhook.InteractionCompleted || ev.Data.ID != id || metadata(ev)["trigger"] != "daily" {
		t.Errorf("event = %s %q %v", ev.Type, ev.Data.ID, ev.UserMetadata)
	}

	if _, err := srv.Trigger(ia.CreateAgentInteraction{Agent: ia.AgentOptionDeepResearchPreview042026}); err == nil {
		t.Error("Trigger without input: no error")
	}
	srv.Close()
	if _, err := srv.Trigger(ia.CreateAgentInteraction{Agent: ia.AgentOptionDeepResearchPreview042026, Input: &in}); err == nil {
		t.Error("Trigger on a closed server: no error")
	}
}

// TestServerVideoInteractionForms checks each way a request asks for a
// video, and the inline delivery, whose output carries the bytes.
func TestServerVideoInteractionForms(t *testing.T) {
	srv, c := newServer(t)
	ctx := t.Context()
	in := ia.NewInteractionsInput("a dog")
	model := func(m ia.CreateModelInteraction) operations.CreateInteractionRequest {
		m.Input, m.Background = &in, genai.Ptr(true)
		return operations.CreateInteractionRequest{Body: operations.NewCreateInteractionRequestBody(m)}
	}
	tests := []struct {
		name        string
		req         operations.CreateInteractionRequest
		video, data bool
	}{
		{"response_format uri", videoInteraction(nil), true, false},
		{"response_format inline", videoInteractionDelivered(ia.VideoResponseFormatDeliveryInline, nil), true, true},
		{"video_config", model(ia.CreateModelInteraction{Model: "gemini-3-flash-preview",
			GenerationConfig: &ia.GenerationConfig{VideoConfig: &ia.VideoConfig{Task: ia.TaskTextToVideo.ToPointer()}}}), true, false},
		{"omni model", model(ia.CreateModelInteraction{Model: ia.ModelGeminiOmni11Flash}), true, false},
		{"text", model(ia.CreateModelInteraction{Model: "gemini-2.5-flash"}), false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := c.Interactions.Create(ctx, tt.req, noRetry)
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			finish(t, srv, *res.Interaction.ID, geminitest.Succeed)
			got, err := c.Interactions.Get(ctx, operations.GetInteractionByIDRequest{ID: *res.Interaction.ID}, noRetry)
			if err != nil {
				t.Fatal(err)
			}
			v := got.Interaction.OutputVideo
			if (v != nil) != tt.video || (got.Interaction.OutputText != nil) == tt.video {
				t.Fatalf("output video %+v, text %v; want video %v", v, got.Interaction.OutputText, tt.video)
			}
			if v != nil && ((v.Data != nil) != tt.data || (v.URI != nil) == tt.data) {
				t.Errorf("output video data %v uri %v; want inline %v", v.Data != nil, v.URI, tt.data)
			}
		})
	}
}
