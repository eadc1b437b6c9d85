// Command replicas runs one webhook receiver as two replicas and a
// separate waiting process, all sharing one Redis through
// dispatch/redisstore, and shows what that sharing buys:
//
//   - a delivery that lands on replica A resolves a Wait in another
//     process, which never receives a webhook itself;
//   - Gemini's retry of that delivery, sent by the load balancer to
//     replica B, is recognised as a duplicate: the callback runs once;
//   - a process started after the event (a waiter that restarted) finds
//     it at once.
//
// Each part has its own Redis client, Store and Dispatcher, as separate
// processes would; here they share one program so that one command shows
// all three. The deliveries are signed like a static Gemini webhook's
// (HMAC, a whsec_ secret), which needs no binding. Run it with
//
//	go run ./examples/replicas
//
// which starts a redis-server from PATH on a free loopback port for the
// run (apt-get install redis-server), or against a Redis of your own:
//
//	REDIS_URL=redis://localhost:6379/0 go run ./examples/replicas
//
// Its keys go under a prefix of their own and expire within a day.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/genaihook/genaihook/dispatch"
	"github.com/genaihook/genaihook/dispatch/redisstore"
	"github.com/genaihook/genaihook/verify"
	"github.com/genaihook/genaihook/webhook"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "replicas:", err)
		os.Exit(1)
	}
}

// node is one process's share of Redis: its own client, Store and
// Dispatcher.
type node struct {
	rdb   *redis.Client
	store *redisstore.Store
	d     *dispatch.Dispatcher
}

func newNode(opts *redis.Options, prefix, webhookURL string, v *verify.Verifier) (*node, error) {
	rdb := redis.NewClient(opts)
	store, err := redisstore.New(rdb, redisstore.Config{Prefix: prefix})
	if err != nil {
		return nil, err
	}
	// No genai client: events resolve waits as they arrive. With one, each
	// event is confirmed by reading the job back first.
	d, err := dispatch.New(nil, webhookURL, dispatch.WithStore(store), dispatch.WithVerifier(v))
	if err != nil {
		return nil, err
	}
	return &node{rdb: rdb, store: store, d: d}, nil
}

func (n *node) close() {
	_ = n.d.Close()
	_ = n.rdb.Close()
}

// receiver is a replica serving the webhook endpoint.
type receiver struct {
	*node
	url string
	srv *http.Server
}

func startReceiver(opts *redis.Options, prefix string, v *verify.Verifier) (*receiver, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	url := "http://" + l.Addr().String() + "/gemini/webhook"
	n, err := newNode(opts, prefix, url, v)
	if err != nil {
		l.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	// The Store is the handler's Deduplicator too, so that a retry landing
	// on another replica is recognised.
	mux.Handle("POST /gemini/webhook", n.d.Handler(webhook.WithDeduplicator(n.store)))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return &receiver{node: n, url: url, srv: srv}, nil
}

func (r *receiver) close() {
	_ = r.srv.Close()
	r.node.close()
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()

	opts, stopRedis, err := redisOptions(ctx)
	if err != nil {
		return err
	}
	defer stopRedis()

	// The static webhook's signing secret (client.Webhooks.Create returns
	// it as new_signing_secret); a random one for this run.
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
	v, err := verify.New(verify.Config{Secrets: []string{secret}})
	if err != nil {
		return err
	}
	prefix := "genaihook-example:" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":"

	a, err := startReceiver(opts, prefix, v)
	if err != nil {
		return err
	}
	defer a.close()
	b, err := startReceiver(opts, prefix, v)
	if err != nil {
		return err
	}
	defer b.close()
	waiter, err := newNode(opts, prefix, a.url, v)
	if err != nil {
		return err
	}
	defer waiter.close()

	// The waiting process watches a job (job.Name, as Batches.Create
	// returned it).
	const job = "batches/example-1"
	f := waiter.d.Watch(ctx, job)

	// Gemini delivers the job's completion; the load balancer picks A.
	body := fmt.Appendf(nil, `{"type":"batch.succeeded","version":"v1","timestamp":%q,"data":{"id":%q}}`,
		time.Now().UTC().Format(time.RFC3339), job)
	start := time.Now()
	status, text, err := deliver(ctx, a.url, secret, "msg_example_1", body)
	if err != nil {
		return err
	}
	fmt.Printf("replica A answered the delivery: %d %s\n", status, text)

	ev, err := f.Result()
	if err != nil {
		return fmt.Errorf("waiting process: %w", err)
	}
	fmt.Printf("the waiting process got %s for %s, %v after the delivery\n",
		ev.Type, ev.Data.ID, time.Since(start).Round(10*time.Microsecond))

	// Gemini retries the same delivery (same webhook-id); it lands on B.
	status, text, err = deliver(ctx, b.url, secret, "msg_example_1", body)
	if err != nil {
		return err
	}
	fmt.Printf("replica B answered the retry: %d %s\n", status, text)

	// A process that starts now, e.g. the waiter after a restart.
	late, err := newNode(opts, prefix, a.url, v)
	if err != nil {
		return err
	}
	defer late.close()
	start = time.Now()
	ev, err = late.d.Wait(ctx, job)
	if err != nil {
		return fmt.Errorf("late process: %w", err)
	}
	fmt.Printf("a process started afterwards got %s for %s at once (%v)\n",
		ev.Type, ev.Data.ID, time.Since(start).Round(10*time.Microsecond))
	return nil
}

// deliver POSTs body to url as a static Gemini webhook would, signed with
// secret, and returns the answer.
func deliver(ctx context.Context, url, secret, webhookID string, body []byte) (int, string, error) {
	now := time.Now()
	sig, err := verify.Sign(secret, webhookID, now, body)
	if err != nil {
		return 0, "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", webhookID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	text, err := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if err != nil {
		return 0, "", err
	}
	if resp.StatusCode/100 != 2 {
		return 0, "", errors.New("delivery refused: " + resp.Status)
	}
	return resp.StatusCode, string(bytes.TrimSpace(text)), nil
}
