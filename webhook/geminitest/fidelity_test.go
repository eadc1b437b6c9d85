package geminitest_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/genai"
	"google.golang.org/genai/interactions/models/apierrors"
	ia "google.golang.org/genai/interactions/models/interactions"
	"google.golang.org/genai/interactions/models/operations"
	"google.golang.org/genai/interactions/models/webhooks"

	"github.com/genaihook/genaihook/webhook"
	"github.com/genaihook/genaihook/webhook/geminitest"
	"github.com/genaihook/genaihook/webhook/webhooktest"
)

// rawCall sends a request to the fake and returns the status and the body.
func rawCall(t *testing.T, srv *geminitest.Server, method, path, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header, b
}

// googleError decodes Google's error shape, every member required.
func googleError(t *testing.T, b []byte) (code int, status, message string) {
	t.Helper()
	var body struct {
		Error *struct {
			Code    *int    `json:"code"`
			Message *string `json:"message"`
			Status  *string `json:"status"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &body); err != nil || body.Error == nil || body.Error.Code == nil ||
		body.Error.Message == nil || body.Error.Status == nil {
		t.Fatalf("body %s is not Google's error shape (%v)", b, err)
	}
	return *body.Error.Code, *body.Error.Status, *body.Error.Message
}

// interactionsError decodes the body as the interactions client decodes
// its errors, into apierrors' typed error, whose code must be a string.
func interactionsError(t *testing.T, b []byte) (code, message string) {
	t.Helper()
	var e apierrors.GetInteractionByIDClientError
	if err := json.Unmarshal(b, &e); err != nil || e.Error_.Code == nil || e.Error_.Message == nil {
		t.Fatalf("body %s is not the Interactions API's error shape (%v)", b, err)
	}
	return *e.Error_.Code, *e.Error_.Message
}

// TestServerRejectsUnknownFieldsAndTrailingGarbage checks that every body
// the fake reads is read as strictly as Google's front end reads it: an
// unknown member at any modelled level, or anything after the JSON value,
// is 400 in the family's error shape, naming the member and where it was.
func TestServerRejectsUnknownFieldsAndTrailingGarbage(t *testing.T) {
	srv, c := newServer(t)
	wh := createWebhook(t, c, "https://example.com/hook", webhooks.WebhookSubscribedEventBatchSucceeded)
	const batch = `{"batch":{"inputConfig":{"fileName":"files/in"}}}`
	const video = `{"instances":[{"prompt":"a cat"}]}`
	const interaction = `{"model":"gemini-2.5-flash","input":"hi","background":true}`
	const hook = `{"uri":"https://example.com/h","subscribed_events":["batch.succeeded"]}`
	tests := []struct {
		name, method, path, body string
		interactions             bool   // the Interactions API's shape
		wantIn                   string // in the message
	}{
		{"batch unknown top", "POST", "/v1beta/models/m:batchGenerateContent", `{"batch":{"inputConfig":{"fileName":"files/in"}},"extra":1}`, false, `Unknown name "extra": Cannot find field.`},
		{"batch unknown nested", "POST", "/v1beta/models/m:batchGenerateContent", `{"batch":{"inputConfig":{"fileName":"files/in"},"webhookConfig":{"uris":[],"secret":"x"}}}`, false, `Unknown name "secret" at 'batch.webhook_config'`},
		{"batch unknown in requests", "POST", "/v1beta/models/m:batchGenerateContent", `{"batch":{"inputConfig":{"requests":{"requests":[{"request":{},"key":"k"}]}}}}`, false, `at 'batch.input_config.requests.requests[0]'`},
		{"batch trailing", "POST", "/v1beta/models/m:batchGenerateContent", batch + `{}`, false, "Unexpected token"},
		{"batch trailing garbage", "POST", "/v1beta/models/m:batchGenerateContent", batch + ` garbage`, false, "Unexpected token"},
		{"batch wrong type", "POST", "/v1beta/models/m:batchGenerateContent", `{"batch":{"displayName":7,"inputConfig":{"fileName":"files/in"}}}`, false, "Invalid value at 'batch.display_name'"},
		{"video unknown", "POST", "/v1beta/models/veo:predictLongRunning", `{"instances":[{"prompt":"a cat"}],"parameters":{"fps":24}}`, false, `Unknown name "fps" at 'parameters'`},
		{"video trailing", "POST", "/v1beta/models/veo:predictLongRunning", video + `]`, false, "Unexpected token"},
		{"cancel body", "POST", "/v1beta/batches/b1:cancel", `{"force":true}`, false, `Unknown name "force"`},
		{"interaction unknown", "POST", "/v1beta/interactions", `{"model":"gemini-2.5-flash","input":"hi","webhook_config":{"uris":[],"userMetadata":{}}}`, true, `Unknown name "userMetadata" at 'webhook_config'`},
		{"interaction camelCase", "POST", "/v1beta/interactions", `{"model":"gemini-2.5-flash","input":"hi","webhookConfig":{}}`, true, `Unknown name "webhookConfig"`},
		{"interaction trailing", "POST", "/v1beta/interactions", interaction + `x`, true, "Unexpected token"},
		{"webhook create unknown", "POST", "/v1beta/webhooks", `{"uri":"https://example.com/h","subscribed_events":["batch.succeeded"],"secret":"s"}`, false, `Unknown name "secret"`},
		{"webhook create trailing", "POST", "/v1beta/webhooks", hook + hook, false, "Unexpected token"},
		{"webhook update unknown", "PATCH", "/v1beta/webhooks/" + *wh.ID, `{"state":"disabled","color":"red"}`, false, `Unknown name "color"`},
		{"webhook rotate unknown", "POST", "/v1beta/webhooks/" + *wh.ID + ":rotateSigningSecret", `{"revocation":"now"}`, false, `Unknown name "revocation"`},
		{"webhook ping body", "POST", "/v1beta/webhooks/" + *wh.ID + ":ping", `{"x":1}`, false, `Unknown name "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, h, b := rawCall(t, srv, tt.method, tt.path, tt.body)
			if status != http.StatusBadRequest || h.Get("Content-Type") != "application/json" {
				t.Fatalf("%d %s %s, want 400 application/json", status, h.Get("Content-Type"), b)
			}
			var msg string
			if tt.interactions {
				var code string
				code, msg = interactionsError(t, b)
				if code != "invalid_request" {
					t.Errorf("code %q, want invalid_request", code)
				}
			} else {
				var code int
				var st string
				code, st, msg = googleError(t, b)
				if code != 400 || st != "INVALID_ARGUMENT" {
					t.Errorf("error %d %s, want 400 INVALID_ARGUMENT", code, st)
				}
			}
			if !strings.Contains(msg, tt.wantIn) {
				t.Errorf("message %q does not contain %q", msg, tt.wantIn)
			}
		})
	}
	if n := len(srv.Deliveries()); n != 0 {
		t.Errorf("%d deliveries: a refused request had an effect", n)
	}

	// Through the genai client too: a field the API does not define, added
	// with HTTPOptions.ExtraBody, is a genai.APIError.
	_, err := c.Batches.Create(t.Context(), "gemini-2.5-flash", inlined("x"), &genai.CreateBatchJobConfig{
		HTTPOptions: &genai.HTTPOptions{ExtraBody: map[string]any{"priority": 1}},
	})
	ae := wantAPIError(t, err, http.StatusBadRequest, "INVALID_ARGUMENT")
	if want := `Invalid JSON payload received. Unknown name "priority": Cannot find field.`; ae.Message != want {
		t.Errorf("message %q, want %q", ae.Message, want)
	}
}

// TestServerAcceptsProtoJSONNames checks that the core API, read as proto
// JSON, accepts a member's snake_case name as well as its camelCase one.
func TestServerAcceptsProtoJSONNames(t *testing.T) {
	srv, c := newServer(t)
	status, _, b := rawCall(t, srv, "POST", "/v1beta/models/m:batchGenerateContent",
		`{"batch":{"display_name":"snake","input_config":{"file_name":"files/in"}}}`)
	if status != http.StatusOK {
		t.Fatalf("%d %s", status, b)
	}
	var op struct{ Name string }
	json.Unmarshal(b, &op)
	job, err := c.Batches.Get(t.Context(), op.Name, nil)
	if err != nil || job.DisplayName != "snake" {
		t.Errorf("Get = %+v, %v", job, err)
	}
}

// TestServerErrorShapePerFamily checks that every error under a path has
// the shape the genai client decodes for its family, routing errors (an
// unknown sub-path, a wrong method) included.
func TestServerErrorShapePerFamily(t *testing.T) {
	srv, _ := newServer(t)
	tests := []struct {
		method, path string
		want         int
		interactions bool
	}{
		{"GET", "/v1beta/interactions/v1_nope", 404, true},
		{"PUT", "/v1beta/interactions/v1_nope", 405, true},
		{"GET", "/v1beta/interactions", 405, true},
		{"GET", "/v1beta/interactions/v1_nope/steps", 404, true},
		{"POST", "/v1beta/interactions/v1_nope:cancel", 404, true},
		{"POST", "/v1beta/interactions/v1_nope/cancel", 404, true},
		{"DELETE", "/v1beta/interactions/v1_nope", 404, true},
		{"GET", "/v1beta/batches/nope", 404, false},
		{"PUT", "/v1beta/batches/nope", 405, false},
		{"GET", "/v1beta/models/veo/operations/nope", 404, false},
		{"GET", "/v1beta/webhooks/wh_nope", 404, false},
		{"PUT", "/v1beta/webhooks/wh_nope", 405, false},
		{"GET", "/v1beta/webhooks/wh_nope/extra", 404, false},
		{"GET", "/v1beta/nope", 404, false},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			status, h, b := rawCall(t, srv, tt.method, tt.path, "")
			if status != tt.want || h.Get("Content-Type") != "application/json" {
				t.Fatalf("%d %s %s, want %d application/json", status, h.Get("Content-Type"), b, tt.want)
			}
			if tt.interactions {
				interactionsError(t, b)
				return
			}
			if code, _, _ := googleError(t, b); code != tt.want {
				t.Errorf("error.code %d, want %d", code, tt.want)
			}
		})
	}
}

// TestServerPageTokensAreStable deletes the last item of a page before
// asking for the next one: an offset token would skip the first live item
// of the next page.
func TestServerPageTokensAreStable(t *testing.T) {
	srv, c := newServer(t)
	ctx := t.Context()
	t.Run("batches", func(t *testing.T) {
		var names []string
		for range 4 {
			job, err := c.Batches.Create(ctx, "gemini-2.5-flash", inlined("x"), nil)
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, job.Name)
		}
		page, err := c.Batches.List(ctx, &genai.ListBatchJobsConfig{PageSize: 2})
		if err != nil || len(page.Items) != 2 || page.NextPageToken == "" {
			t.Fatalf("first page = %+v, %v", page, err)
		}
		if _, err := c.Batches.Delete(ctx, names[0], nil); err != nil {
			t.Fatal(err)
		}
		next, err := page.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, j := range next.Items {
			got = append(got, j.Name)
		}
		if diff := cmp.Diff(names[2:], got); diff != "" {
			t.Errorf("second page after a delete (-want +got):\n%s", diff)
		}
	})
	t.Run("webhooks", func(t *testing.T) {
		var ids []string
		for range 3 {
			ids = append(ids, *createWebhook(t, c, "https://example.com/hook", webhooks.WebhookSubscribedEventBatchSucceeded).ID)
		}
		first, err := c.Webhooks.List(ctx, operations.ListWebhooksRequest{PageSize: genai.Ptr(1)}, noRetry)
		if err != nil || len(first.WebhookListResponse.Webhooks) != 1 || first.WebhookListResponse.NextPageToken == nil {
			t.Fatalf("first page = %+v, %v", first, err)
		}
		if _, err := c.Webhooks.Delete(ctx, operations.DeleteWebhookRequest{ID: ids[0]}, noRetry); err != nil {
			t.Fatal(err)
		}
		next, err := c.Webhooks.List(ctx, operations.ListWebhooksRequest{PageSize: genai.Ptr(1), PageToken: first.WebhookListResponse.NextPageToken}, noRetry)
		if err != nil || len(next.WebhookListResponse.Webhooks) != 1 || *next.WebhookListResponse.Webhooks[0].ID != ids[1] {
			t.Fatalf("second page after a delete = %+v, %v; want %s", next.WebhookListResponse, err, ids[1])
		}
	})
	status, _, b := rawCall(t, srv, "GET", "/v1beta/batches?pageToken=b2Zmc2V0OjE", "") // "offset:1"
	if status != http.StatusBadRequest {
		t.Errorf("an offset token: %d %s, want 400", status, b)
	}
}

// TestServerEventMatchesGet checks that a delivered event describes its
// job as the job's GET does, through the genai client: the same id, the
// same output file, the same video URI, the same error.
func TestServerEventMatchesGet(t *testing.T) {
	srv, c := newServer(t)
	ctx := t.Context()
	rc := dynamicReceiver(t, srv)
	event := func(id string) *webhook.Event {
		t.Helper()
		waitIdle(t, srv)
		for _, ev := range rc.events() {
			if ev.Data.ID == id {
				return ev
			}
		}
		t.Fatalf("no event for %s (failed: %+v)", id, srv.Failed())
		return nil
	}

	t.Run("batch file output", func(t *testing.T) {
		job, err := c.Batches.Create(ctx, "gemini-2.5-flash", &genai.BatchJobSource{FileName: "files/input"},
			&genai.CreateBatchJobConfig{WebhookConfig: &genai.WebhookConfig{Uris: []string{rc.URL}}})
		if err != nil {
			t.Fatal(err)
		}
		rc.created(job.Name)
		finish(t, srv, job.Name, geminitest.Succeed)
		ev := event(job.Name)
		got, err := c.Batches.Get(ctx, job.Name, nil)
		if err != nil || got.Dest == nil {
			t.Fatalf("Get = %+v, %v", got, err)
		}
		if ev.Data.ID != got.Name || ev.Data.OutputFileURI != got.Dest.FileName {
			t.Errorf("event id %q output_file_uri %q; GET name %q dest.fileName %q", ev.Data.ID, ev.Data.OutputFileURI, got.Name, got.Dest.FileName)
		}
	})
	t.Run("batch failure", func(t *testing.T) {
		job, err := c.Batches.Create(ctx, "gemini-2.5-flash", inlined("x"),
			&genai.CreateBatchJobConfig{WebhookConfig: &genai.WebhookConfig{Uris: []string{rc.URL}}})
		if err != nil {
			t.Fatal(err)
		}
		rc.created(job.Name)
		finish(t, srv, job.Name, geminitest.Fail(3, "bad input"))
		ev := event(job.Name)
		// The SDK drops a batch's error, so compare with the wire.
		_, _, b := rawCall(t, srv, "GET", "/v1beta/"+job.Name, "")
		var op struct {
			Error struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			} `json:"error"`
		}
		json.Unmarshal(b, &op)
		if n, _ := ev.Data.ErrorCode.Int(); n != int64(op.Error.Code) || ev.Data.ErrorMessage != op.Error.Message {
			t.Errorf("event error %s %q; GET error %d %q", ev.Data.ErrorCode, ev.Data.ErrorMessage, op.Error.Code, op.Error.Message)
		}
	})
	t.Run("video", func(t *testing.T) {
		op, err := c.Models.GenerateVideosFromSource(ctx, "veo-3.0-generate-001", &genai.GenerateVideosSource{Prompt: "a cat"},
			&genai.GenerateVideosConfig{WebhookConfig: &genai.WebhookConfig{Uris: []string{rc.URL}, UserMetadata: rc.bind(nil)}})
		if err != nil {
			t.Fatal(err)
		}
		finish(t, srv, op.Name, geminitest.Succeed)
		ev := event(op.Name)
		got, err := c.Operations.GetVideosOperation(ctx, op, nil)
		if err != nil || got.Response == nil || len(got.Response.GeneratedVideos) == 0 {
			t.Fatalf("GetVideosOperation = %+v, %v", got, err)
		}
		uri := got.Response.GeneratedVideos[0].Video.URI
		if ev.Data.ID != got.Name || ev.Data.OutputFileURI != uri || !strings.Contains(uri, "/"+ev.Data.FileName+":download") {
			t.Errorf("event id %q output_file_uri %q file_name %q; GET name %q uri %q", ev.Data.ID, ev.Data.OutputFileURI, ev.Data.FileName, got.Name, uri)
		}
	})
	t.Run("interaction failure", func(t *testing.T) {
		res, err := c.Interactions.Create(ctx, modelInteraction("gemini-2.5-flash",
			&ia.WebhookConfig{Uris: []string{rc.URL}, UserMetadata: rc.bind(nil)}), noRetry)
		if err != nil {
			t.Fatal(err)
		}
		id := *res.Interaction.ID
		finish(t, srv, id, geminitest.Fail(13, "overloaded"))
		ev := event(id)
		got, err := c.Interactions.Get(ctx, operations.GetInteractionByIDRequest{ID: id}, noRetry)
		if err != nil || len(got.Interaction.Errors) != 1 {
			t.Fatalf("Get = %+v, %v", got, err)
		}
		e := got.Interaction.Errors[0]
		if ev.Data.ID != *got.Interaction.ID || string(ev.Data.ErrorCode) != *e.Code || ev.Data.ErrorMessage != *e.Message {
			t.Errorf("event %q %s %q; GET %q %s %q", ev.Data.ID, ev.Data.ErrorCode, ev.Data.ErrorMessage, *got.Interaction.ID, *e.Code, *e.Message)
		}
	})
}

// TestServerReportsFailedDeliveries points a job at a URL nothing listens
// on: the failure is in Failed, with its attempts, and in the log, once the
// compressed retries are over.
func TestServerReportsFailedDeliveries(t *testing.T) {
	srv, c := newServer(t)
	var logged []string
	srv.Logf = func(format string, args ...any) {
		logged = append(logged, format)
		t.Logf(format, args...)
	}
	dead := httptestURLNothingListensOn(t)
	job, err := c.Batches.Create(t.Context(), "gemini-2.5-flash", inlined("x"),
		&genai.CreateBatchJobConfig{WebhookConfig: &genai.WebhookConfig{Uris: []string{dead}}})
	if err != nil {
		t.Fatal(err)
	}
	finish(t, srv, job.Name, geminitest.Succeed)
	waitIdle(t, srv)
	failed := srv.Failed()
	if len(failed) != 1 || failed[0].URL != dead || failed[0].JobID != job.Name || failed[0].Type != webhook.BatchSucceeded ||
		len(failed[0].Attempts) != 6 || failed[0].Attempts[0].Err == nil {
		t.Fatalf("Failed() = %+v", failed)
	}
	if !errors.Is(failed[0].Err, webhooktest.ErrUndelivered) {
		t.Errorf("Err = %v, want ErrUndelivered", failed[0].Err)
	}
	if len(logged) != 1 {
		t.Errorf("logged %d lines, want 1", len(logged))
	}
	if ds := srv.Deliveries(); len(ds) != 1 {
		t.Errorf("Deliveries() has %d, want 1", len(ds))
	}
}

// httptestURLNothingListensOn returns a loopback URL whose server has been
// closed: connections to it are refused.
func httptestURLNothingListensOn(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/hook"
	srv.Close()
	return url
}
