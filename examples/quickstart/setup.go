package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"google.golang.org/genai"
	"google.golang.org/genai/interactions/models/interactions"

	"github.com/genaihook/genaihook/verify"
	"github.com/genaihook/genaihook/webhook"
	"github.com/genaihook/genaihook/webhook/geminitest"
)

// env is where the jobs run, the fake Gemini or the real one, and the
// receiver Gemini pushes to.
type env struct {
	client *genai.Client
	verify verify.Config
	url    string // the receiver's public URL
	path   string // its path, served by mux
	mux    *http.ServeMux
	log    *slog.Logger
	reads  *readCounter
	start  time.Time
	live   bool
	close  func()
}

// setup makes the client and starts the receiver: against the real API
// when GEMINI_API_KEY and GENAIHOOK_PUBLIC_URL are set, else against a
// fake Gemini on loopback.
func setup(ctx context.Context) (*env, error) {
	e := &env{
		mux:   http.NewServeMux(),
		log:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		reads: &readCounter{next: http.DefaultTransport, n: map[string]int{}},
		start: time.Now(),
	}
	cc := &genai.ClientConfig{Backend: genai.BackendGeminiAPI, HTTPClient: &http.Client{Transport: e.reads}}
	listen := "127.0.0.1:0"
	var fake *geminitest.Server
	if key, public := os.Getenv("GEMINI_API_KEY"), os.Getenv("GENAIHOOK_PUBLIC_URL"); key != "" && public != "" {
		u, err := url.Parse(public)
		if err != nil {
			return nil, fmt.Errorf("GENAIHOOK_PUBLIC_URL: %w", err)
		}
		e.live, e.url, e.path, cc.APIKey = true, public, u.Path, key
		// Dynamic deliveries are Ed25519 "v1a"; the RS256 JWT form of
		// Google's docs is accepted too, for this endpoint only.
		e.verify = verify.Config{JWKSURL: verify.GeminiJWKSURL, Audience: public}
		if s := os.Getenv("GEMINI_WEBHOOK_SECRET"); s != "" {
			e.verify.Secrets = []string{s}
		}
		listen = os.Getenv("GENAIHOOK_LISTEN_ADDR")
		if listen == "" {
			listen = ":8080"
		}
	} else {
		fake = geminitest.NewUnstartedServer()
		fake.BatchUserMetadataBug = true // as the live API does (go-genai issue #779)
		fake.AutoFinish = time.Second    // every job ends a second after it starts
		fake.Start()
		cc.APIKey, cc.HTTPOptions.BaseURL = "test", fake.URL
		e.verify = verify.Config{JWKSURL: fake.JWKSURL()}
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	if !e.live {
		e.path = "/gemini/webhook"
		e.url = "http://" + ln.Addr().String() + e.path
	}
	if e.path == "" {
		e.path = "/"
	}
	hs := &http.Server{Handler: e.mux, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	e.close = func() {
		hs.Shutdown(context.Background())
		if fake != nil {
			fake.Close()
		}
	}
	if e.client, err = genai.NewClient(ctx, cc); err != nil {
		e.close()
		return nil, err
	}
	if e.live {
		fmt.Printf("Live run: listening on %s, Gemini pushes to %s\n\n", ln.Addr(), e.url)
	} else {
		fmt.Printf("Offline run: fake Gemini at %s, receiver at %s\n\n", fake.URL, e.url)
	}
	return e, nil
}

// row is one job's line in the report.
type row struct {
	job, id  string
	ev       *webhook.Event
	err      error
	detected time.Time // when Wait returned
}

// report prints what each wait cost against a 10-second polling loop, and
// returns the first wait's error.
func (e *env) report(rows []*row) error {
	fmt.Println()
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "JOB\tOUTCOME\tRAN\tENDED→DETECTED\tAPI READS\tA 10 s LOOP: READS, DETECTED")
	var errs []error
	for _, r := range rows {
		outcome := ""
		if r.ev != nil {
			outcome = string(r.ev.Type)
		}
		if r.err != nil {
			outcome += " (" + r.err.Error() + ")"
			errs = append(errs, r.err)
		}
		created, ended := times(r.ev)
		if created.IsZero() {
			created = e.start
		}
		ran, late := "?", "?"
		if !ended.IsZero() {
			ran = fmt.Sprintf("%.1f s", ended.Sub(created).Seconds())
			late = fmt.Sprintf("%.0f ms", float64(r.detected.Sub(ended).Microseconds())/1000)
		} else {
			ended = r.detected
		}
		// A loop that sleeps 10 s then reads sees the job at the first
		// multiple of 10 s after its end.
		loops := max(1, int(math.Ceil(ended.Sub(created).Seconds()/10)))
		loopLate := time.Duration(loops)*10*time.Second - ended.Sub(created)
		fmt.Fprintf(tw, "%s %s\t%s\t%s\t%s\t%d\t%d, %.1f s after the end\n",
			r.job, r.id, outcome, ran, late, e.reads.count(r.id), loops, loopLate.Seconds())
	}
	tw.Flush()
	fmt.Println("\nEach completion cost one read of the job: the event says when, the API says what.")
	fmt.Println("A job whose webhook is lost is still read on a backoff schedule (see package dispatch).")
	return errors.Join(errs...)
}

// times returns when the job read back was created and ended, where the
// API says so.
func times(ev *webhook.Event) (created, ended time.Time) {
	if ev == nil {
		return
	}
	switch j := ev.Job.(type) {
	case *genai.BatchJob:
		return j.CreateTime, j.EndTime
	case *interactions.Interaction:
		parse := func(s *string) time.Time {
			if s == nil {
				return time.Time{}
			}
			t, _ := time.Parse(time.RFC3339Nano, *s)
			return t
		}
		return parse(j.Created), parse(j.Updated)
	}
	return
}

// readCounter counts the GETs of the API per job, by the last segment of
// the path.
type readCounter struct {
	next http.RoundTripper
	mu   sync.Mutex
	n    map[string]int
}

func (c *readCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodGet {
		c.mu.Lock()
		c.n[r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]]++
		c.mu.Unlock()
	}
	return c.next.RoundTrip(r)
}

func (c *readCounter) count(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[id[strings.LastIndexByte(id, '/')+1:]]
}
