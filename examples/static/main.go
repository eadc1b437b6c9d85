// Command static runs the whole life of a Gemini static webhook: it
// registers the webhook at startup (creating it the first time, storing its
// secret), serves it, proves with a ping that deliveries reach this program
// and verify, receives a batch's event, rotates the signing secret without
// refusing a delivery, and proves it again.
//
// Offline (the default) it needs no account and finishes in a second:
//
//	go run ./examples/static
//
// It starts the fake Gemini of package geminitest and talks to it through
// the real genai client; the secrets go to a file in a temporary directory,
// removed at exit.
//
// Against the real Gemini API, set:
//
//	GEMINI_API_KEY        an API key of the Gemini Developer API
//	GENAIHOOK_PUBLIC_URL  the https URL at which Gemini reaches this program,
//	                      path included (a tunnel forwarding to
//	                      GENAIHOOK_LISTEN_ADDR will do)
//	GENAIHOOK_LISTEN_ADDR where it listens (default ":8080")
//	GENAIHOOK_SECRET_FILE where the signing secrets are kept, one per line
//	                      (default .gemini-webhook-secrets, created 0600)
//
// then run the same command. It registers (or finds) the project's webhook
// for that URL, self-tests, rotates with a 24-hour overlap and self-tests
// again; it starts no job. It never prints a secret, only fingerprints.
package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/genai"
	"google.golang.org/genai/interactions/models/webhooks"

	"github.com/genaihook/genaihook/webhook"
	"github.com/genaihook/genaihook/webhook/geminitest"
	"github.com/genaihook/genaihook/webhook/static"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "static:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	live := os.Getenv("GEMINI_API_KEY") != ""

	// The genai client, where to listen and where Gemini posts, where the
	// secrets are kept: the fake Gemini's and a temporary file, or the
	// real ones.
	var (
		client     *genai.Client
		fake       *geminitest.Server
		publicURL  = os.Getenv("GENAIHOOK_PUBLIC_URL")
		listenAddr = cmp.Or(os.Getenv("GENAIHOOK_LISTEN_ADDR"), ":8080")
		secretFile = cmp.Or(os.Getenv("GENAIHOOK_SECRET_FILE"), ".gemini-webhook-secrets")
		err        error
	)
	if live {
		if publicURL == "" {
			return errors.New("GENAIHOOK_PUBLIC_URL is not set: Gemini needs the https URL at which it reaches this program")
		}
		client, err = genai.NewClient(ctx, &genai.ClientConfig{Backend: genai.BackendGeminiAPI, APIKey: os.Getenv("GEMINI_API_KEY")})
		if err != nil {
			return err
		}
	} else {
		fake = geminitest.NewServer()
		defer fake.Close()
		client = fake.Client(ctx)
		listenAddr = "127.0.0.1:0"
		dir, err := os.MkdirTemp("", "genaihook-static-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		secretFile = filepath.Join(dir, "secrets")
	}
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		return err
	}
	if !live {
		publicURL = "http://" + ln.Addr().String() + "/gemini/webhook"
	}
	u, err := url.Parse(publicURL)
	if err != nil {
		return fmt.Errorf("GENAIHOOK_PUBLIC_URL: %w", err)
	}

	// 1. Register at startup: find or create the webhook, store a new
	// secret, re-enable it if Gemini disabled it.
	hook, err := static.Register(ctx, client, static.Config{
		URI:     publicURL,
		Events:  []webhook.EventType{webhook.BatchSucceeded, webhook.BatchFailed, webhook.BatchExpired},
		Secrets: fileStore(secretFile),
		Logger:  slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	fmt.Printf("registered webhook %s (created: %v, re-enabled from: %q)\n", hook.ID, hook.Created, hook.Reenabled)

	// 2. Serve it: the Handler verifies with the webhook's live secrets.
	events := make(chan *webhook.Event, 16)
	mux := http.NewServeMux()
	mux.Handle("POST "+u.EscapedPath(), hook.Handler(func(ctx context.Context, ev *webhook.Event) error {
		if ev.Type.Known() {
			events <- ev // hand off; in an app, dispatch.Dispatcher.Deliver
		}
		return nil
	}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	// 3. Prove it works: a ping must reach this handler and verify.
	rep, err := hook.SelfTest(ctx)
	if err != nil {
		return err
	}
	fmt.Printf("self-test passed: webhook %s, verified by secret %s\n", rep.State, rep.KeyID)

	if !live {
		// A batch created without webhook_config reports to the static webhook.
		job, err := client.Batches.Create(ctx, "gemini-2.5-flash",
			&genai.BatchJobSource{InlinedRequests: []*genai.InlinedRequest{{Contents: genai.Text("Say hello in French.")}}}, nil)
		if err != nil {
			return err
		}
		if err := fake.Finish(job.Name, geminitest.Succeed); err != nil {
			return err
		}
		select {
		case ev := <-events:
			fmt.Printf("received %s for %s, verified by secret %s\n", ev.Type, ev.Data.ID, ev.Auth.KeyID)
		case <-ctx.Done():
			return ctx.Err()
		}
	}

	// 4. Rotate: the new secret verifies at once, the old one until its
	// expiry 24 hours on, and the new one is stored.
	if err := hook.Rotate(ctx, webhooks.RevocationBehaviorRevokePreviousSecretsAfterH24); err != nil {
		return err
	}
	if rep, err = hook.SelfTest(ctx); err != nil {
		return err
	}
	fmt.Printf("rotated; self-test passed, verified by secret %s\n", rep.KeyID)
	return nil
}

// fileStore is a SecretStore in a file, one secret a line, readable by
// this user only. Every replica needs the same file (or, better, a secret
// manager); Save syncs before it returns.
type fileStore string

var fileMu sync.Mutex

func (f fileStore) Load(context.Context) ([]string, error) {
	fileMu.Lock()
	defer fileMu.Unlock()
	file, err := os.Open(string(f))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer file.Close()
	var secrets []string
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			secrets = append(secrets, s)
		}
	}
	return secrets, sc.Err()
}

func (f fileStore) Save(_ context.Context, secret string) error {
	fileMu.Lock()
	defer fileMu.Unlock()
	file, err := os.OpenFile(string(f), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := file.WriteString(secret + "\n"); err != nil {
		file.Close()
		return err
	}
	if err := file.Sync(); err != nil {
		file.Close()
		return err
	}
	return file.Close()
}
