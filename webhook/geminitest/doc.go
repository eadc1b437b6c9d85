// Package geminitest is a fake Gemini API for integration tests, in the
// manner of net/http/httptest: NewServer starts it on a loopback address,
// and the unmodified google.golang.org/genai client talks to it through
// genai.HTTPOptions.BaseURL (Server.Client makes such a client). It creates
// and reports batches, Veo video operations and interactions (model, agent,
// and background video interactions whose output is a video), manages
// static webhooks, and, when a job changes state, delivers the event to the
// job's webhook_config uris or to the subscribed static webhooks, signed
// like Gemini's and retried, with a webhooktest.Sender. A dynamic delivery
// echoes the job's user_metadata, so an app that binds its jobs with a
// webhook.Binder receives them as in production. Nothing in it needs
// network access beyond loopback.
//
//	srv := geminitest.NewServer()
//	defer srv.Close()
//	srv.Logf = t.Errorf // a delivery that fails fails the test (t.Logf: only logs it)
//	client := srv.Client(ctx)
//	job, err := client.Batches.Create(ctx, "gemini-2.5-flash", src,
//		&genai.CreateBatchJobConfig{WebhookConfig: &genai.WebhookConfig{Uris: []string{appURL}}})
//	err = srv.Finish(job.Name, geminitest.Succeed) // GET now reports it; the event is on its way
//	err = srv.WaitIdle(ctx)                        // every delivery settled; srv.Failed() lists the failures
//
// A job stays pending until the test ends it with Server.Finish (or
// Server.AutoFinish elapses). Server.Trigger starts an interaction on the
// server's side, as a scheduled trigger does, so that an app receives the
// events of an interaction it never created.
//
// # Video through interactions
//
// Gemini is moving video generation to background interactions with Omni
// models. The fake treats an interaction as a video one when the request
// has a response_format of type "video" (interactions.VideoResponseFormat),
// a generation_config.video_config, the deprecated response_modalities
// "video", or a model whose name starts with "gemini-omni". Once it
// completes (interaction.completed, like any interaction), its steps end
// with a model_output holding a video content, which the client surfaces as
// Interaction.OutputVideo: a URI the fake serves (video/mp4), or with
// delivery "inline" the bytes.
//
// Its helpers panic where a test could not go on, and say so. It is the
// only test double of this module that imports the genai SDK; handler unit
// tests need only package webhooktest.
package geminitest
