// Command quickstart replaces three polling loops with webhooks: it starts
// a Gemini batch, a Veo video generation and a Deep Research interaction,
// each asking Gemini to push its completion to a local receiver, waits for
// all three at once with dispatch, and prints how soon each completion was
// detected and what a 10-second polling loop would have cost.
//
// Offline (the default) it needs no account and finishes in seconds:
//
//	go run ./examples/quickstart
//
// It starts webhooktest's fake Gemini, which ends every job after a second
// or two and signs its deliveries like Gemini's dynamic webhooks (Standard
// Webhooks "v1a", Ed25519 keys published as a JWKS), and talks to it through
// the real genai client. The fake also reproduces the live API's refusal of
// user_metadata on batch jobs, so the batch is created without any and
// matched by its job id.
//
// Against the real Gemini API, set:
//
//	GEMINI_API_KEY        an API key of the Gemini Developer API (webhooks
//	                      are not available on Vertex AI)
//	GENAIHOOK_PUBLIC_URL  the https URL at which Gemini can reach this
//	                      program's receiver, path included, e.g. the
//	                      address of a tunnel (ngrok, cloudflared) forwarding
//	                      to GENAIHOOK_LISTEN_ADDR:
//	                      https://abcd.ngrok.app/gemini/webhook
//	GENAIHOOK_LISTEN_ADDR where the receiver listens (default ":8080"); it
//	                      serves the path of GENAIHOOK_PUBLIC_URL
//	GEMINI_WEBHOOK_SECRET optional: the whsec_ signing secret of a static
//	                      webhook (client.Webhooks.Create returns it once,
//	                      as new_signing_secret; RotateSigningSecret as
//	                      secret) pointing at the same URL, to accept its
//	                      HMAC-signed deliveries too. The jobs here ask for
//	                      dynamic webhooks, which Gemini signs with its
//	                      public keys, so no secret is needed for them.
//	GENAIHOOK_BINDER_SECRET optional: 32 bytes or more keying the receiver-
//	                      bound tokens put in user_metadata; a random one
//	                      per run by default, which is enough for jobs this
//	                      run creates and waits for
//
// then run the same command. The jobs are real and billed: one small batch
// request, one Veo video, one Deep Research task; a live run takes minutes.
// Keep the secret out of shell history and logs (an env file, a secret
// manager); this program never prints it.
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sync"
	"text/tabwriter"
	"time"

	"google.golang.org/genai"
	"google.golang.org/genai/interactions/models/interactions"
	"google.golang.org/genai/interactions/models/operations"
	"google.golang.org/genai/interactions/retry"

	"github.com/genaihook/genaihook/dispatch"
	"github.com/genaihook/genaihook/verify"
	"github.com/genaihook/genaihook/webhook"
	"github.com/genaihook/genaihook/webhook/webhooktest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

// env is where the jobs run: the fake Gemini or the real one.
type env struct {
	client  *genai.Client
	verify  verify.Config
	listen  string
	hookURL string // filled in once listening, offline
	live    bool
	fake    *webhooktest.Server // offline only
}

func setup(ctx context.Context) (*env, func(), error) {
	key, public := os.Getenv("GEMINI_API_KEY"), os.Getenv("GENAIHOOK_PUBLIC_URL")
	if key != "" && public != "" {
		client, err := genai.NewClient(ctx, &genai.ClientConfig{Backend: genai.BackendGeminiAPI, APIKey: key})
		if err != nil {
			return nil, nil, err
		}
		cfg := verify.Config{JWKSURL: verify.GeminiJWKSURL, Audience: public}
		if s := os.Getenv("GEMINI_WEBHOOK_SECRET"); s != "" {
			cfg.Secrets = []string{s}
		}
		listen := os.Getenv("GENAIHOOK_LISTEN_ADDR")
		if listen == "" {
			listen = ":8080"
		}
		return &env{client: client, verify: cfg, listen: listen, hookURL: public, live: true}, func() {}, nil
	}
	fake := webhooktest.NewUnstartedServer()
	fake.BatchUserMetadataBug = true // as the live API does (go-genai issue #779)
	fake.Start()
	return &env{
		client: fake.Client(ctx),
		verify: verify.Config{JWKSURL: fake.JWKSURL()},
		listen: "127.0.0.1:0",
		fake:   fake,
	}, fake.Close, nil
}

// row is one job's line in the report.
type row struct {
	job      string
	id       string
	outcome  string
	created  time.Time
	done     time.Time // when the job ended
	detected time.Time // when Wait returned
	polls    int64
	err      error
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	e, cleanup, err := setup(ctx)
	if err != nil {
		return err
	}
	defer cleanup()
	timeout := 30 * time.Second
	if e.live {
		timeout = 2 * time.Hour // Deep Research takes minutes, sometimes an hour
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	binder, err := newBinder()
	if err != nil {
		return err
	}
	v, err := verify.New(e.verify)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", e.listen)
	if err != nil {
		return err
	}
	path := "/gemini/webhook"
	if e.live {
		u, err := url.Parse(e.hookURL)
		if err != nil {
			return fmt.Errorf("GENAIHOOK_PUBLIC_URL: %w", err)
		}
		path = u.Path
		if path == "" {
			path = "/"
		}
	} else {
		e.hookURL = "http://" + ln.Addr().String() + path
	}
	polls := &countingPoller{next: dispatch.GenAIPoller(e.client), n: map[string]int64{}}
	d, err := dispatch.New(
		dispatch.WithPoller(polls),
		dispatch.WithWebhookURL(e.hookURL),
		dispatch.WithBinder(binder),
		dispatch.WithLogger(logger),
	)
	if err != nil {
		return err
	}
	defer d.Close()

	// The receiver: verify, parse, bind (a token of d's binder, or for a
	// batch a job this program created), deduplicate, then d.Deliver.
	mux := http.NewServeMux()
	mux.Handle("POST "+path, webhook.NewHandler(v, d.Deliver, d.Binding(), webhook.WithLogger(logger)))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	defer hs.Shutdown(context.Background())

	if e.live {
		fmt.Printf("Live run: receiver on %s, Gemini pushes to %s\n\n", ln.Addr(), e.hookURL)
	} else {
		fmt.Printf("Offline run: fake Gemini at %s, receiver at %s\n\n", e.fake.URL, e.hookURL)
	}

	// Start the three jobs, each with a webhook_config from the builders.
	rows := make([]*row, 3)
	var wg sync.WaitGroup

	if e.fake != nil {
		e.fake.AutoFinish = 600 * time.Millisecond
	}
	created := time.Now()
	batch, err := e.client.Batches.Create(ctx, "gemini-2.5-flash",
		&genai.BatchJobSource{InlinedRequests: []*genai.InlinedRequest{{
			Contents: []*genai.Content{genai.NewContentFromText("Say hello in French.", genai.RoleUser)},
		}}},
		// No user_metadata: the live API refuses it on batches.
		&genai.CreateBatchJobConfig{DisplayName: "quickstart", WebhookConfig: d.BatchWebhookConfig()})
	if err != nil {
		return fmt.Errorf("create batch: %w", err)
	}
	if err := d.Track(ctx, batch.Name, ""); err != nil { // d.Binding() accepts its events
		return err
	}
	rows[0] = &row{job: "batch " + batch.Name, id: batch.Name, created: created}
	wg.Go(func() {
		job, err := dispatch.WaitBatch(ctx, d, e.client, batch.Name)
		r := rows[0]
		r.detected = time.Now()
		r.err = err
		if job != nil {
			r.outcome = string(job.State)
			r.done = job.EndTime
		}
	})

	if e.fake != nil {
		e.fake.AutoFinish = 1200 * time.Millisecond
	}
	created = time.Now()
	vcfg := d.VideoWebhookConfig(map[string]any{"app": "quickstart"})
	op, err := e.client.Models.GenerateVideosFromSource(ctx, "veo-3.0-generate-001",
		&genai.GenerateVideosSource{Prompt: "A paper boat on a rainy street, close-up."},
		&genai.GenerateVideosConfig{WebhookConfig: vcfg})
	if err != nil {
		return fmt.Errorf("generate video: %w", err)
	}
	if err := d.Track(ctx, op.Name, dispatch.KeyOf(vcfg.UserMetadata)); err != nil {
		return err
	}
	rows[1] = &row{job: "video " + op.Name, id: op.Name, created: created}
	wg.Go(func() {
		got, err := dispatch.WaitVideo(ctx, d, e.client, op)
		r := rows[1]
		r.detected = time.Now()
		r.err = err
		if got != nil && got.Done {
			r.outcome = "done"
			if got.Response != nil && len(got.Response.GeneratedVideos) > 0 {
				r.outcome = fmt.Sprintf("done, %d video", len(got.Response.GeneratedVideos))
			}
		}
	})

	if e.fake != nil {
		e.fake.AutoFinish = 1800 * time.Millisecond
	}
	created = time.Now()
	icfg := d.InteractionWebhookConfig(map[string]any{"app": "quickstart"})
	input := interactions.NewInteractionsInput("Summarise this week's news about webhooks in Go, in three bullet points.")
	res, err := e.client.Interactions.Create(ctx, operations.CreateInteractionRequest{
		Body: operations.NewCreateInteractionRequestBody(interactions.CreateAgentInteraction{
			Agent:         interactions.AgentOptionDeepResearchPreview042026,
			Input:         &input,
			Background:    genai.Ptr(true),
			WebhookConfig: icfg,
		}),
	}, operations.WithRetries(retry.Config{Strategy: "none"}))
	if err != nil {
		return fmt.Errorf("create interaction: %w", err)
	}
	id := res.Interaction.GetID()
	if id == nil {
		return errors.New("create interaction: no id in the response")
	}
	if err := d.Track(ctx, *id, dispatch.KeyOf(icfg.UserMetadata)); err != nil {
		return err
	}
	rows[2] = &row{job: "interaction " + *id, id: *id, created: created}
	wg.Go(func() {
		it, err := dispatch.WaitInteraction(ctx, d, e.client, *id)
		r := rows[2]
		r.detected = time.Now()
		r.err = err
		if it != nil {
			r.outcome = string(it.Status)
			if it.Updated != nil {
				r.done, _ = time.Parse(time.RFC3339Nano, *it.Updated)
			}
		}
	})

	fmt.Println("Waiting for three jobs (no polling loop)...")
	wg.Wait()

	// Offline, each job ends AutoFinish after its creation; live, use the
	// job's own end time when genai reports one.
	autoFinish := []time.Duration{600 * time.Millisecond, 1200 * time.Millisecond, 1800 * time.Millisecond}
	for i, r := range rows {
		if !e.live {
			r.done = r.created.Add(autoFinish[i])
		}
		r.polls = polls.count(r.id)
	}
	report(rows, d.Stats())
	for _, r := range rows {
		if r.err != nil {
			return r.err
		}
	}
	return nil
}

func report(rows []*row, s dispatch.Stats) {
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tOUTCOME\tRAN\tDONE→DETECTED\tPOLLS\tA 10 s LOOP WOULD HAVE")
	for _, r := range rows {
		outcome := r.outcome
		if r.err != nil {
			outcome += " (" + r.err.Error() + ")"
		}
		ran := r.done.Sub(r.created)
		detect := "?"
		if !r.done.IsZero() {
			detect = fmt.Sprintf("%.0f ms", float64(r.detected.Sub(r.done).Microseconds())/1000)
		}
		// A loop that sleeps 10 s then calls Get sees the job at the first
		// multiple of 10 s after its end.
		calls := max(1, int(math.Ceil(ran.Seconds()/10)))
		late := time.Duration(calls)*10*time.Second - ran
		fmt.Fprintf(tw, "%s\t%s\t%.1f s\t%s\t%d\t%d call(s), detected %.1f s late\n",
			r.job, outcome, ran.Seconds(), detect, r.polls, calls, late.Seconds())
	}
	tw.Flush()
	fmt.Printf("\nDispatcher: %d deliveries, %d resolved (%d by polling), %d polls.\n",
		s.Deliveries, s.Resolved, s.ResolvedByPoll, s.Polls)
	fmt.Printf("A batch or an interaction is polled only after a %s quiet period, then backs off\n",
		dispatch.DefaultQuietPeriod)
	fmt.Printf("from %s to %s (a video, for which no failure event exists, every 20s for five minutes),\n",
		dispatch.DefaultPollInterval, dispatch.DefaultMaxPollInterval)
	fmt.Println("so jobs whose webhook arrives soon are never polled, and a lost webhook is still caught.")
}

// countingPoller counts the polls of each job.
type countingPoller struct {
	next dispatch.Poller
	mu   sync.Mutex
	n    map[string]int64
}

func (p *countingPoller) Poll(ctx context.Context, id string) (*webhook.Event, error) {
	p.mu.Lock()
	p.n[id]++
	p.mu.Unlock()
	return p.next.Poll(ctx, id)
}

func (p *countingPoller) count(id string) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n[id]
}

func newBinder() (*webhook.Binder, error) {
	if s := os.Getenv("GENAIHOOK_BINDER_SECRET"); s != "" {
		return webhook.NewBinder([]byte(s))
	}
	secret := make([]byte, 32)
	rand.Read(secret)
	return webhook.NewBinder(secret)
}
