package static_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"

	"google.golang.org/genai/interactions/models/webhooks"

	"github.com/genaihook/genaihook/webhook"
	"github.com/genaihook/genaihook/webhook/geminitest"
	"github.com/genaihook/genaihook/webhook/static"
)

// memoryStore is a SecretStore for the example. A real one writes to a
// secret manager (or a file only the service can read), so that the secret
// outlives the process and reaches every replica.
type memoryStore struct {
	mu      sync.Mutex
	secrets []string
}

func (m *memoryStore) Load(context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.secrets...), nil
}

func (m *memoryStore) Save(_ context.Context, secret string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.secrets = append(m.secrets, secret)
	return nil
}

// The whole life of a static webhook, against the fake Gemini: register at
// startup, prove the endpoint works, rotate the secret, restart.
func ExampleRegister() {
	fake := geminitest.NewServer()
	defer fake.Close()
	ctx := context.Background()
	client := fake.Client(ctx) // in production: genai.NewClient with your API key

	mux := http.NewServeMux()
	app := httptest.NewServer(mux) // in production: your public https server
	defer app.Close()
	store := &memoryStore{}
	cfg := static.Config{
		URI:     app.URL + "/gemini/webhook",
		Events:  []webhook.EventType{webhook.BatchSucceeded, webhook.BatchFailed},
		Secrets: store,
		Logger:  slog.New(slog.DiscardHandler),
	}

	hook, err := static.Register(ctx, client, cfg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("created:", hook.Created)
	mux.Handle("POST /gemini/webhook", hook.Handler(func(ctx context.Context, ev *webhook.Event) error {
		return nil // hand the event off, e.g. to dispatch.Dispatcher.Deliver
	}))

	first, err := hook.SelfTest(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("self-test:", first.State)

	if err := hook.Rotate(ctx, webhooks.RevocationBehaviorRevokePreviousSecretsAfterH24); err != nil {
		log.Fatal(err)
	}
	second, err := hook.SelfTest(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("after rotation: secrets stored", len(store.secrets), "verified by the new one:", second.KeyID != first.KeyID)

	restarted, err := static.Register(ctx, client, cfg)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("restart: created:", restarted.Created, "same webhook:", restarted.ID == hook.ID)
	// Output:
	// created: true
	// self-test: enabled
	// after rotation: secrets stored 2 verified by the new one: true
	// restart: created: false same webhook: true
}
