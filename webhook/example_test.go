package webhook_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"

	"github.com/genaihook/genaihook/verify"
	"github.com/genaihook/genaihook/webhook"
	"github.com/genaihook/genaihook/webhook/webhooktest"
)

func ExampleParse() {
	body := []byte(`{"type":"batch.failed","version":"v1","timestamp":"2026-01-22T12:00:00Z",
		"data":{"id":"batches/abc123","error_code":3,"error_message":"invalid input file"}}`)
	ev, err := webhook.Parse(body)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(ev.Type, ev.Type.Family(), ev.Type.Outcome(), ev.Type.Outcome().Terminal())
	fmt.Println(ev.Data.ID, ev.Data.ErrorCode, ev.Data.ErrorMessage)

	_, err = webhook.Parse([]byte(`{"type":"batch.failed","timestamp":"yesterday","data":{"id":"batches/abc123"}}`))
	fmt.Println(err)
	// Output:
	// batch.failed batch failed true
	// batches/abc123 3 invalid input file
	// webhook: malformed event: timestamp: must be an RFC 3339 date-time
}

func ExampleNewHandler() {
	const secret = "whsec_9R2wyjJke2knBl9fkzSrO0K5BB7igcdwfIDpXUdbh7g=" // os.Getenv("GEMINI_WEBHOOK_SECRET")
	v, err := verify.New(verify.Config{Secrets: []string{secret}})
	if err != nil {
		fmt.Println(err)
		return
	}

	// Hand events off and return quickly; a worker does the slow part.
	events := make(chan *webhook.Event, 100)
	h := webhook.NewHandler(v, func(ctx context.Context, ev *webhook.Event) error {
		select {
		case events <- ev:
			return nil
		case <-ctx.Done():
			return ctx.Err() // answered 503: Gemini retries
		}
	}, webhook.WithLogger(slog.New(slog.DiscardHandler)))

	mux := http.NewServeMux()
	mux.Handle("/gemini/webhook", h)
	srv := httptest.NewUnstartedServer(mux)
	srv.Config = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      webhook.DefaultTimeout + 5*time.Second, // longer than the handler's budget
		IdleTimeout:       2 * time.Minute,
	}
	srv.Start() // in production: srv.ListenAndServeTLS, or TLS at the load balancer
	defer srv.Close()

	// What Gemini sends.
	post := func(id, body, sig string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/gemini/webhook", strings.NewReader(body))
		now := time.Now()
		if sig == "" {
			sig, _ = verify.Sign(secret, id, now, []byte(body))
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("webhook-id", id)
		req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
		req.Header.Set("webhook-signature", sig)
		resp, err := srv.Client().Do(req)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer resp.Body.Close()
		answer, _ := io.ReadAll(resp.Body)
		fmt.Printf("%s -> %d %s", id, resp.StatusCode, answer)
	}
	body := `{"type":"video.generated","version":"v1","timestamp":"2026-01-22T12:00:00Z","data":{"id":"models/veo-3.0/operations/op1","video_uri":"https://example.com/v.mp4"}}`
	post("msg_1", body, "")
	post("msg_1", body, "") // Gemini's retry of the same event
	post("msg_2", body, "v1,Zm9yZ2Vk")

	ev := <-events
	fmt.Println(ev.WebhookID, ev.Type, ev.Data.ID)
	// Output:
	// msg_1 -> 200 ok
	// msg_1 -> 200 duplicate
	// msg_2 -> 401 invalid signature
	// msg_1 video.generated models/veo-3.0/operations/op1
}

func ExampleBinder() {
	// A secret of 32 random bytes, kept like any other (one per receiver,
	// the same on every replica). Here a fresh one.
	secret := make([]byte, 32)
	rand.Read(secret)
	binder, err := webhook.NewBinder(secret)
	if err != nil {
		fmt.Println(err)
		return
	}

	// When creating a job with a dynamic webhook, put the binding in its
	// user_metadata, e.g. genai.WebhookConfig{Uris: ..., UserMetadata: md}.
	md := binder.Metadata("report-2026-01")
	fmt.Println(md[webhook.MetadataKey])

	// On the receiving side: webhook.WithBinding(binder.Check). Gemini
	// echoes user_metadata, so the job's own events pass...
	sent, _ := json.Marshal(md) // Event.UserMetadata is the object as Gemini sent it
	own := &webhook.Event{UserMetadata: sent}
	fmt.Println(binder.Check(context.Background(), own))

	// ...and another customer's validly signed event, replayed here, does not.
	foreign := &webhook.Event{UserMetadata: json.RawMessage(`{"genaihook_key":"report-2026-01","genaihook_token":"forged"}`)}
	fmt.Println(binder.Check(context.Background(), foreign))
	// Output:
	// report-2026-01
	// <nil>
	// webhook: delivery not bound to this receiver: malformed genaihook_token
}

// Receive dynamic webhooks, which Google signs with keys shared by every
// Gemini customer: each job carries a Binder's token in its user_metadata,
// and the Handler passes on only the deliveries that hold one. Here a
// webhooktest.Sender plays Gemini, with its own keys.
func ExampleWithBinding() {
	secret := make([]byte, 32) // in production: loaded, the same on every replica
	rand.Read(secret)
	binder, err := webhook.NewBinder(secret)
	if err != nil {
		fmt.Println(err)
		return
	}

	keys := webhooktest.NewKeys()
	jwks := httptest.NewServer(keys)
	defer jwks.Close()
	v, err := verify.New(verify.Config{JWKSURL: jwks.URL}) // in production: verify.GeminiJWKSURL
	if err != nil {
		fmt.Println(err)
		return
	}
	h := webhook.NewHandler(v, func(ctx context.Context, ev *webhook.Event) error {
		var md struct {
			Key string `json:"genaihook_key"`
		}
		if err := json.Unmarshal(ev.UserMetadata, &md); err != nil {
			return err
		}
		fmt.Println("handled", ev.Data.ID, "of", md.Key)
		return nil
	}, webhook.WithBinding(binder.Check), webhook.WithLogger(slog.New(slog.DiscardHandler)))

	// The job was created with genai.WebhookConfig{Uris: ..., UserMetadata:
	// binder.Metadata("report-7")}; Gemini echoes it on each of its events.
	gemini := &webhooktest.Sender{Keys: keys, Retry: []time.Duration{}}
	own := webhooktest.NewPayload(webhook.InteractionCompleted, "v1_ChdOdXRoYXJH")
	own.UserMetadata = binder.Metadata("report-7")
	d, _ := gemini.Serve(context.Background(), h, own)
	fmt.Println(d.Attempts[0].Status)

	// Another customer's job, validly signed by Google, replayed here.
	foreign := webhooktest.NewPayload(webhook.InteractionCompleted, "v1_Q2hkT2RYUm")
	foreign.UserMetadata = map[string]any{"customer": "acme"}
	d, _ = gemini.Serve(context.Background(), h, foreign)
	fmt.Println(d.Attempts[0].Status)
	// Output:
	// handled v1_ChdOdXRoYXJH of report-7
	// 200
	// 403
}
