package dispatch_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/genai"
	"google.golang.org/genai/interactions/models/interactions"
	"google.golang.org/genai/interactions/models/operations"

	"github.com/genaihook/genaihook/webhook"
	"github.com/genaihook/genaihook/webhook/geminitest"
)

// createVideoInteraction asks for a video through a background
// interaction with an Omni model, as Gemini is moving video generation
// there: the result comes in the interaction's output_video.
func createVideoInteraction(ctx context.Context, c *genai.Client, wc *interactions.WebhookConfig) (string, error) {
	in := interactions.NewInteractionsInput("a cat on a skateboard")
	format := interactions.NewCreateModelInteractionResponseFormat(interactions.NewResponseFormat(interactions.VideoResponseFormat{
		Delivery: interactions.VideoResponseFormatDeliveryURI.ToPointer(),
	}))
	res, err := c.Interactions.Create(ctx, operations.CreateInteractionRequest{
		Body: operations.NewCreateInteractionRequestBody(interactions.CreateModelInteraction{
			Model:          interactions.ModelGeminiOmniFlashPreview,
			Input:          &in,
			Background:     genai.Ptr(true),
			ResponseFormat: &format,
			WebhookConfig:  wc,
		}),
	}, interactionsNoRetry)
	if err != nil {
		return "", err
	}
	return *res.Interaction.ID, nil
}

// checkVideoOutput fails the test unless ev is the completion of the video
// interaction id, with the interaction read back and its video.
func checkVideoOutput(t *testing.T, g *fakeGemini, id string, ev *webhook.Event, err error) {
	t.Helper()
	if err != nil || ev == nil || ev.Type != webhook.InteractionCompleted || ev.Data.ID != id || !ev.Polled {
		t.Fatalf("Wait(%s) = %+v, %v", id, ev, err)
	}
	it, ok := ev.Job.(*interactions.Interaction)
	if !ok || it.Status != interactions.InteractionStatusCompleted {
		t.Fatalf("Wait(%s).Job = %#v", id, ev.Job)
	}
	v := it.OutputVideo
	if v == nil || v.URI == nil || v.MimeType == nil || *v.MimeType != interactions.VideoContentMimeTypeVideoMp4 {
		t.Fatalf("Wait(%s).Job.OutputVideo = %+v", id, v)
	}
	if !strings.HasPrefix(*v.URI, g.URL+"/v1beta/files/") || !strings.HasSuffix(*v.URI, ":download?alt=media") {
		t.Errorf("OutputVideo.URI = %q, want a download URI of the fake's", *v.URI)
	}
}

// TestVideoInteraction waits on a background video interaction created
// with the Dispatcher's InteractionWebhookConfig: its interaction.completed
// delivery, bound by the config's token, prompts the read that resolves
// the wait with the interaction and its output video. The default poll
// schedule's first read comes after a minute, so the wait resolves only
// through the delivery.
func TestVideoInteraction(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	g := newFakeGemini(t, nil)
	d, url := newReceiver(t, g.JWKSURL(), g.client)
	wc := d.InteractionWebhookConfig()
	if len(wc.Uris) != 1 || wc.Uris[0] != url || wc.UserMetadata[webhook.MetadataToken] == nil {
		t.Fatalf("InteractionWebhookConfig() = %+v", wc)
	}
	id, err := createVideoInteraction(ctx, g.client, wc)
	if err != nil {
		t.Fatal(err)
	}
	f := d.Watch(ctx, id)
	g.finish(t, id, geminitest.Succeed)
	ev, err := f.Result()
	checkVideoOutput(t, g, id, ev, err)
	ds := g.idle(t, id)
	if len(ds) != 1 || ds[0].Type != webhook.InteractionCompleted || ds[0].Err != nil {
		t.Errorf("deliveries = %+v, want one interaction.completed, accepted", ds)
	}
}

// TestVideoInteractionWithoutDelivery is TestVideoInteraction with the
// delivery lost (the webhook URL is one nothing listens on, as when
// dynamic webhooks do not fire for video interactions): the reads on the
// poll schedule resolve the wait all the same.
func TestVideoInteractionWithoutDelivery(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	g, d := lostDeliveries(t)
	id, err := createVideoInteraction(ctx, g.client, d.InteractionWebhookConfig())
	if err != nil {
		t.Fatal(err)
	}
	f := d.Watch(ctx, id)
	g.finish(t, id, geminitest.Succeed)
	ev, err := f.Result()
	checkVideoOutput(t, g, id, ev, err)
	if ds := g.idle(t, id); len(ds) != 1 || ds[0].Err == nil {
		t.Errorf("deliveries = %+v, want one that failed", ds)
	}
}
