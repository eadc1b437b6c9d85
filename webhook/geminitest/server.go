package geminitest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/genai"

	"github.com/genaihook/genaihook/verify"
	"github.com/genaihook/genaihook/webhook"
	"github.com/genaihook/genaihook/webhook/webhooktest"
)

// jwksPath is where a Server publishes the public half of its Keys.
const jwksPath = "/.well-known/jwks.json"

// defaultRetry is the delivery retry schedule of a Server whose Retry is
// nil: Gemini's exponential backoff over 24 hours, compressed so that a
// test whose receiver fails sees every retry, and the failure, within a
// third of a second.
var defaultRetry = []time.Duration{
	10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond,
	80 * time.Millisecond, 160 * time.Millisecond,
}

// Server is a fake Gemini API on a local port. The unmodified genai client
// talks to it through HTTPOptions.BaseURL (see Server.Client): it serves
// batches, video generation operations, background interactions and static
// webhook management on the wire of the Gemini Developer API (v1beta), and
// when a job changes state it pushes signed webhook events, as Gemini does.
//
// The routes, under /v1beta, as google.golang.org/genai v1.77.0 calls them:
//
//	POST   models/{m}:batchGenerateContent    batches.create (file or inlined source, batch.webhookConfig)
//	GET    batches, batches/{id}               batches.list (pageSize, pageToken), batches.get
//	POST   batches/{id}:cancel                 DELETE batches/{id}
//	POST   models/{m}:predictLongRunning       Veo (top-level webhookConfig)
//	GET    models/{m}/operations/{op}          the video operation
//	GET    files/{id}:download                 a generated video or batch responses file
//	POST   interactions                        model or agent, background, webhook_config
//	GET    interactions/{id}                   POST interactions/{id}/cancel, DELETE interactions/{id}
//	POST   webhooks, GET webhooks              create (new_signing_secret), list (page_size, page_token)
//	GET, PATCH (update_mask), DELETE webhooks/{id}
//	POST   webhooks/{id}:ping, webhooks/{id}:rotateSigningSecret
//
// and the JWKS at JWKSURL. Every answer is application/json.
//
// Request bodies are read as Google's front end reads them: a member the
// API does not define (at the levels the fake models; free-form objects
// such as a batch's inlined requests are not checked), a value of the
// wrong type, or anything after the JSON value is refused with 400. Errors
// come in the shape the genai client decodes for each API family:
//
//   - batches, models, operations, files and unknown paths: Google's
//     {"error":{"code":404,"message":…,"status":"NOT_FOUND"}}, which the
//     client returns as a genai.APIError;
//   - interactions (every path under /v1beta/interactions, wrong methods
//     and unknown sub-paths included): the Interactions API's
//     {"error":{"code":"not_found","message":…}}, whose code is a string,
//     which the interactions client returns as its typed errors
//     (*apierrors.GetInteractionByIDClientError and the like);
//   - webhooks: Google's shape too; the webhooks client does not decode
//     it, and returns an *apierrors.APIError whose Body holds it.
//
// List page tokens name the last item of the previous page, not an offset,
// so deleting an item between two pages skips no live one. Any API key is
// accepted.
//
// Jobs stay pending until the test ends them with Finish, or until
// AutoFinish elapses; Trigger starts an interaction as a scheduled trigger
// does, from a template. On each state change the server first updates
// what the job's GET returns, then delivers the event, describing the job
// as the GET does (the same ids, file names and URIs):
//
//   - to the job's webhook_config uris, when it has some (a dynamic webhook),
//     signed with Keys: Standard Webhooks v1a (Ed25519) by default, an RS256
//     JWT whose aud is the delivery URI when DynamicScheme is
//     verify.SchemeJWT; the job's user_metadata is echoed in
//     data.user_metadata;
//   - otherwise to every enabled static webhook (created through the
//     Webhooks API) subscribed to the event type, HMAC-signed with each of
//     its live secrets.
//
// Deliveries run in the background and are retried on non-2xx answers
// following Retry. WaitIdle waits for them to settle, Deliveries lists
// them, and Failed lists those that never got a 2xx answer; each failure
// is also written to Logf as it happens, so that a test whose webhook URL
// is wrong says so at once instead of waiting for a poller.
//
// Choices where Gemini's behaviour is unknown (undocumented, or documented
// but not yet observed on the wire) are documented on the methods that
// make them: the form of data.id (batches "batches/{id}", videos the full
// operation name, interactions the bare id), batch.cancelled and
// interaction.cancelled being sent although the API's list of subscribable
// events omits them (static webhooks may subscribe to them here), and the
// type of the ping event.
//
// Fields must be set before Start (or, for a started server, between
// requests: they are read when a request or a timer uses them).
type Server struct {
	// URL is the base URL, http://127.0.0.1:port, with no trailing slash.
	// It goes into genai.HTTPOptions.BaseURL.
	URL string

	// Keys signs dynamic deliveries; its JWKS is served at JWKSURL.
	// NewUnstartedServer generates it.
	Keys *webhooktest.Keys

	// Now is the clock for every time the server reports or signs
	// (create_time, webhook-timestamp, a rotated secret's expire_time and
	// whether it has expired). Nil means time.Now. AutoFinish and Retry
	// delays are real time, whatever Now says.
	Now func() time.Time

	// DynamicScheme is the signature of deliveries to webhook_config uris:
	// verify.SchemeEd25519 ("v1a", what live deliveries carry; the default
	// when empty) or verify.SchemeJWT (the RS256 JWT of Google's
	// documentation).
	DynamicScheme verify.Scheme

	// Retry is the wait before each retry of a delivery whose answer is not
	// 2xx or that got no answer; its length is the number of retries. Nil
	// means five retries within 310 ms (Gemini's 24 hours of backoff,
	// compressed); an empty non-nil slice means no retry.
	Retry []time.Duration

	// Logf reports each delivery that failed for good (no 2xx answer after
	// its retries), with the event, the URL and the last answer or error,
	// as soon as it has. Nil means log.Printf. In a test, set it before the
	// first job is created, to t.Logf to see failures in the test's log or
	// to t.Errorf to fail the test on any, and Close the server before the
	// test ends.
	Logf func(format string, args ...any)

	// AutoFinish, when positive, ends every job created afterwards that
	// long (real time) after its creation, with AutoOutcome, unless the
	// test or the API has ended it first. Close stops the timers.
	AutoFinish time.Duration
	// AutoOutcome is the outcome AutoFinish applies; the zero value is
	// Succeed. An outcome that does not apply to a job's kind (Expire for a
	// video, for example) ends it with Succeed instead.
	AutoOutcome Outcome

	// BatchUserMetadataBug reproduces a bug of the live API, reported as
	// googleapis/go-genai issue #779: a batch whose webhookConfig carries
	// userMetadata is refused with 400 INVALID_ARGUMENT "Invalid JSON
	// payload received. Unknown name "userMetadata" at
	// 'batch.webhook_config': Cannot find field.".
	BatchUserMetadataBug bool

	// DisableAfterFailures, when positive, sets a static webhook's state to
	// disabled_due_to_failed_deliveries once that many of its deliveries in
	// a row have exhausted their retries, as Gemini does to a receiver that
	// keeps failing. Zero never disables.
	DisableAfterFailures int

	// HTTPClient sends the deliveries; nil means the Sender's default, a
	// client with a 10 second timeout that does not follow redirects.
	HTTPClient *http.Client

	ts *httptest.Server

	mu      sync.Mutex
	closed  bool
	closing chan struct{} // closed by Close: pending retry waits give up

	seq          uint64              // creation sequence of listed resources
	batches      map[string]*fakeJob // by short id
	videos       map[string]*fakeJob // by full operation name
	interactions map[string]*fakeJob // by id
	jobOrder     []*fakeJob          // batches in creation order, for List
	webhooks     map[string]*fakeWebhook
	hookOrder    []*fakeWebhook
	deliveries   []*Delivery
	files        map[string]fakeFile // by name, "files/{id}"

	wg      sync.WaitGroup
	pending int
	idle    chan struct{} // closed when pending drops to zero
}

// NewServer starts and returns a new Server. The caller should call Close
// when finished, to shut it down. Like httptest.NewServer it panics if it
// cannot listen on a loopback port.
func NewServer() *Server {
	s := NewUnstartedServer()
	s.Start()
	return s
}

// NewUnstartedServer returns a new Server but does not start it, so that
// its fields can be set first. After changing its configuration, the
// caller should call Start. The caller should call Close when finished.
func NewUnstartedServer() *Server {
	s := &Server{
		Keys:         webhooktest.NewKeys(),
		closing:      make(chan struct{}),
		batches:      map[string]*fakeJob{},
		videos:       map[string]*fakeJob{},
		interactions: map[string]*fakeJob{},
		webhooks:     map[string]*fakeWebhook{},
		files:        map[string]fakeFile{},
	}
	s.ts = httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	return s
}

// Start starts a server from NewUnstartedServer. It panics if the server
// is already started or cannot listen.
func (s *Server) Start() {
	if s.URL != "" {
		panic("geminitest: Server already started")
	}
	s.ts.Start()
	s.URL = s.ts.URL
}

// Close stops the server: it stops the AutoFinish timers, abandons the
// retries still waiting, waits for the delivery attempts in flight to be
// answered, then shuts the listener down and blocks until every request to
// the API has completed. Call WaitIdle first to let pending retries run.
// Close is idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.closing)
	for _, j := range s.allJobsLocked() {
		if j.timer != nil {
			j.timer.Stop()
		}
	}
	s.mu.Unlock()
	// Receivers may fetch the JWKS while verifying, so the listener stays
	// up until the deliveries have been answered.
	s.wg.Wait()
	s.ts.Close()
}

// JWKSURL returns the URL at which the server publishes the public keys of
// Keys, for verify.Config.JWKSURL (plain http is accepted there because the
// server listens on loopback).
func (s *Server) JWKSURL() string { return s.URL + jwksPath }

// Client returns a genai client for the Gemini Developer API pointed at the
// server, with API key "test". Its Interactions and Webhooks services use
// the server too. It panics if genai.NewClient fails.
func (s *Server) Client(ctx context.Context) *genai.Client {
	c, err := genai.NewClient(ctx, &genai.ClientConfig{
		Backend:     genai.BackendGeminiAPI,
		APIKey:      "test",
		HTTPOptions: genai.HTTPOptions{BaseURL: s.URL},
	})
	if err != nil {
		panic("geminitest: genai.NewClient: " + err.Error())
	}
	return c
}

// ServeHTTP answers r as the server's URL would, in process: a test whose
// genai client sends its requests here, through an http.RoundTripper of its
// own (Client's requests go over loopback instead), needs no socket. That
// is what a test inside a testing/synctest bubble needs, since a bubble's
// clock does not advance while a goroutine waits on the network: its
// reads, and Finish, then run on the bubble's clock. Deliveries still go
// out over HTTP, so such a test creates its jobs without a webhook_config
// (and no static webhook) and delivers their events itself. The server
// need not have been started.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.serveHTTP(w, r) }

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// serveHTTP routes on r.URL.Path (decoded), as Google's front end does for
// the SDK's percent-encoded path parameters. ":verb" suffixes are literal.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == jwksPath {
		s.Keys.ServeHTTP(w, r)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/v1beta/")
	if !ok {
		respondError(w, familyCore, http.StatusNotFound, "not found: "+r.URL.Path)
		return
	}
	seg := strings.Split(rest, "/")
	// The last segment may carry a custom method: "{id}:cancel".
	last, verb, _ := strings.Cut(seg[len(seg)-1], ":")
	seg[len(seg)-1] = last
	fam := familyOf(seg[0])
	var allowed []string
	try := func(method string, h func()) bool {
		allowed = append(allowed, method)
		if r.Method != method {
			return false
		}
		h()
		return true
	}
	switch {
	case seg[0] == "batches" && len(seg) == 1 && verb == "":
		_ = try(http.MethodGet, func() { s.listBatches(w, r) })
	case seg[0] == "batches" && len(seg) == 2 && verb == "":
		_ = try(http.MethodGet, func() { s.getBatch(w, seg[1]) }) ||
			try(http.MethodDelete, func() { s.deleteBatch(w, r, seg[1]) })
	case seg[0] == "batches" && len(seg) == 2 && verb == "cancel":
		_ = try(http.MethodPost, func() { s.cancelBatch(w, r, seg[1]) })
	case (seg[0] == "models" || seg[0] == "tunedModels") && len(seg) == 2 && verb == "batchGenerateContent":
		_ = try(http.MethodPost, func() { s.createBatch(w, r, seg[0]+"/"+seg[1]) })
	case seg[0] == "models" && len(seg) == 2 && verb == "predictLongRunning":
		_ = try(http.MethodPost, func() { s.createVideo(w, r, seg[1]) })
	case seg[0] == "models" && len(seg) == 4 && seg[2] == "operations" && verb == "":
		_ = try(http.MethodGet, func() { s.getVideo(w, rest) })
	case seg[0] == "files" && len(seg) == 2 && verb == "download":
		_ = try(http.MethodGet, func() { s.downloadFile(w, seg[1]) })
	case seg[0] == "interactions" && len(seg) == 1 && verb == "":
		_ = try(http.MethodPost, func() { s.createInteraction(w, r) })
	case seg[0] == "interactions" && len(seg) == 2 && verb == "":
		_ = try(http.MethodGet, func() { s.getInteraction(w, seg[1]) }) ||
			try(http.MethodDelete, func() { s.deleteInteraction(w, r, seg[1]) })
	case seg[0] == "interactions" && len(seg) == 3 && seg[2] == "cancel" && verb == "":
		_ = try(http.MethodPost, func() { s.cancelInteraction(w, r, seg[1]) })
	case seg[0] == "webhooks" && len(seg) == 1 && verb == "":
		_ = try(http.MethodGet, func() { s.listWebhooks(w, r) }) ||
			try(http.MethodPost, func() { s.createWebhook(w, r) })
	case seg[0] == "webhooks" && len(seg) == 2 && verb == "":
		_ = try(http.MethodGet, func() { s.getWebhook(w, seg[1]) }) ||
			try(http.MethodPatch, func() { s.updateWebhook(w, r, seg[1]) }) ||
			try(http.MethodDelete, func() { s.deleteWebhook(w, r, seg[1]) })
	case seg[0] == "webhooks" && len(seg) == 2 && verb == "ping":
		_ = try(http.MethodPost, func() { s.pingWebhook(w, r, seg[1]) })
	case seg[0] == "webhooks" && len(seg) == 2 && verb == "rotateSigningSecret":
		_ = try(http.MethodPost, func() { s.rotateSecret(w, r, seg[1]) })
	default:
		respondError(w, fam, http.StatusNotFound, "not found: "+r.URL.Path)
		return
	}
	if !slices.Contains(allowed, r.Method) {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		respondError(w, fam, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s", r.Method, r.URL.Path))
	}
}

// checkURIs reports why a webhook URI list is unacceptable: Gemini pushes
// to absolute http(s) URLs only.
func checkURIs(field string, uris []string) error {
	for i, u := range uris {
		if err := checkURI(u); err != nil {
			return fmt.Errorf("%s[%d]: %v", field, i, err)
		}
	}
	return nil
}

func checkURI(u string) error {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "https" && p.Scheme != "http") || p.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", u)
	}
	return nil
}

// fakeID returns n random characters from [a-z0-9], the alphabet of
// Gemini's resource ids.
func fakeID(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// wireTime formats t as Google's JSON APIs do (RFC 3339, UTC).
func wireTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// Delivery is one event the server pushed to one URL, with every attempt
// made. More fields may be added; do not compare Deliveries whole.
type Delivery struct {
	// Type is the event type.
	Type webhook.EventType
	// JobID is data.id: "batches/{id}", "models/{m}/operations/{op}", an
	// interaction id, or for a ping the webhook id.
	JobID string
	// URL is where the event went.
	URL string
	// Webhook is the id of the static webhook it went to, or "" for a
	// delivery to a job's webhook_config uri.
	Webhook string
	// Scheme is the signature scheme used.
	Scheme verify.Scheme
	// Payload is the event, its WebhookID set.
	Payload webhooktest.Payload
	// Attempts are the attempts made, in order, each with the receiver's
	// answer; filled in once Done.
	Attempts []webhooktest.Attempt
	// Err is nil when a 2xx answer was received, else the last failure
	// (wrapping webhooktest.ErrUndelivered when the retries ran out). It
	// is meaningful only once Done.
	Err error
	// Done reports whether the delivery has finished (answered 2xx, or out
	// of retries, or abandoned by Close).
	Done bool
}

// Deliveries returns a snapshot of every delivery the server has made or
// is making, oldest first. Call WaitIdle first to see them finished.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Delivery, len(s.deliveries))
	for i, d := range s.deliveries {
		out[i] = *d
		out[i].Attempts = slices.Clone(d.Attempts)
	}
	return out
}

// Failed returns the deliveries that have finished without a 2xx answer
// (Done, with a non-nil Err), oldest first: a receiver that refused them,
// or a URL that nothing answers. A test that expects every event to arrive
// checks it is empty after WaitIdle.
func (s *Server) Failed() []Delivery {
	var out []Delivery
	for _, d := range s.Deliveries() {
		if d.Done && d.Err != nil {
			out = append(out, d)
		}
	}
	return out
}

// WaitIdle blocks until no delivery is in progress (including retries
// waiting their turn), or ctx is done, in which case it returns ctx.Err().
// Tests call it after Finish, instead of sleeping.
func (s *Server) WaitIdle(ctx context.Context) error {
	s.mu.Lock()
	if s.pending == 0 {
		s.mu.Unlock()
		return nil
	}
	ch := s.idle
	s.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// deliveryTarget is one URL an event goes to, with how to sign for it.
type deliveryTarget struct {
	url     string
	webhook *fakeWebhook // nil for a dynamic delivery
	secrets []string
}

// emitLocked starts the deliveries of p. s.mu must be held. Jobs whose
// webhook_config has uris get dynamic deliveries only; the others go to
// every enabled static webhook subscribed to p.Type.
func (s *Server) emitLocked(p webhooktest.Payload, hook *fakeHookConfig) {
	if s.closed {
		return
	}
	var targets []deliveryTarget
	if hook != nil && len(hook.uris) > 0 {
		for _, u := range hook.uris {
			targets = append(targets, deliveryTarget{url: u})
		}
	} else {
		for _, wh := range s.hookOrder {
			if wh.state == hookEnabled && wh.subscribed(p.Type) {
				targets = append(targets, deliveryTarget{url: wh.uri, webhook: wh, secrets: wh.liveSecrets(s.now())})
			}
		}
	}
	for _, t := range targets {
		s.startDeliveryLocked(p, t)
	}
}

// startDeliveryLocked records and starts one delivery. s.mu must be held.
func (s *Server) startDeliveryLocked(p webhooktest.Payload, t deliveryTarget) {
	if s.closed {
		return
	}
	scheme := verify.SchemeHMAC
	if t.webhook == nil {
		scheme = s.DynamicScheme
		if scheme == "" {
			scheme = verify.SchemeEd25519
		}
	}
	p.WebhookID = newWebhookID()
	rec := &Delivery{Type: p.Type, JobID: payloadID(p), URL: t.url, Scheme: scheme, Payload: p}
	if t.webhook != nil {
		rec.Webhook = t.webhook.id
	}
	s.deliveries = append(s.deliveries, rec)
	snd := &webhooktest.Sender{
		Secrets: t.secrets,
		Scheme:  scheme,
		Client:  s.HTTPClient,
		Now:     s.now,
		Retry:   s.Retry,
		Sleep:   s.sleep,
	}
	if t.webhook == nil {
		snd.Keys = s.Keys
		snd.Audience = t.url
	}
	if snd.Retry == nil {
		snd.Retry = defaultRetry
	}
	logf := s.Logf
	if logf == nil {
		logf = log.Printf
	}
	if s.pending == 0 {
		s.idle = make(chan struct{})
	}
	s.pending++
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		// The attempts themselves are not cancelled by Close (it waits for
		// them, like httptest.Server.Close); only the waits between them are.
		d, err := snd.Send(context.Background(), t.url, p)
		if err != nil && !errors.Is(err, errServerClosed) {
			logf("geminitest: %s for %s to %s failed: %v", p.Type, rec.JobID, t.url, err)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if d != nil {
			rec.Attempts = d.Attempts
		}
		rec.Err, rec.Done = err, true
		if wh := t.webhook; wh != nil && p.Type != PingEventType {
			if err == nil {
				wh.failures = 0
			} else if wh.failures++; s.DisableAfterFailures > 0 && wh.failures >= s.DisableAfterFailures && wh.state == hookEnabled {
				wh.state = hookDisabledDueToFailures
				wh.updated = s.now()
			}
		}
		s.pending--
		if s.pending == 0 {
			close(s.idle)
		}
	}()
}

// sleep waits d between delivery attempts; Close cuts it short.
func (s *Server) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closing:
		return errServerClosed
	}
}

var errServerClosed = errors.New("geminitest: server closed")

func payloadID(p webhooktest.Payload) string {
	id, _ := p.Data["id"].(string)
	return id
}

// newWebhookID returns "msg_" and a random UUID, the form live deliveries
// carry.
func newWebhookID() string {
	var u [16]byte
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // RFC 9562 variant
	return fmt.Sprintf("msg_%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
