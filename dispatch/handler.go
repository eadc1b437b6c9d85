package dispatch

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"google.golang.org/genai"
	"google.golang.org/genai/interactions/models/interactions"

	"github.com/genaihook/genaihook/webhook"
)

// Handler returns the http.Handler to serve at the webhook URL given to
// New: it verifies each delivery (with Google's keys, or the verifier of
// WithVerifier), binds the dynamic ones to this receiver, deduplicates,
// and passes them to Deliver. opts are the handler's own options
// (webhook.WithLogger, webhook.WithDeduplicator and the others of package
// webhook). Serve this handler rather than webhook.NewHandler(v,
// d.Deliver), which has no binding and refuses every dynamic delivery.
//
// A dynamic delivery, signed with Google's global keys, proves only that
// Google sent it to some Gemini customer, who could replay it here. It is
// accepted when:
//   - its user_metadata holds a token that this Dispatcher minted (see
//     InteractionWebhookConfig and WithBinder); or
//   - its data.id names a job a wait awaits, here or, through a shared
//     Store, on another replica; or
//   - with a genai client, reading the job named by its data.id through the
//     API succeeds: the job is this project's (remembered for an hour). A
//     job the API does not know or forbids (404, 403) is remembered as
//     foreign for ten minutes, so that replaying its delivery costs one
//     read; at most 2 such reads run at once, each within the poll timeout
//     (30 s) and the handler's own. A video event whose data.id lacks the
//     model ("operations/…") cannot be read and is refused unless awaited.
//
// A delivery refused this way is lost for this receiver, not the outcome:
// a later Wait on the job reads it through the API.
//
// Anything else is refused with 403; a binding that cannot decide (the
// store or the read failed, or took too long) makes the handler answer
// 503, so that Gemini retries; without a genai client so is a delivery
// that would be refused within two minutes after the store failed to
// record a wait (see Store.Track), since its job may be that wait's. Static deliveries, signed with this
// receiver's own secret, need no binding. Each call returns a new Handler
// (with a deduplicator of its own unless opts give one): serve one.
func (d *Dispatcher) Handler(opts ...webhook.Option) *webhook.Handler {
	return webhook.NewHandler(d.cfg.verifier, d.Deliver, append([]webhook.Option{webhook.WithBinding(d.bound)}, opts...)...)
}

// WebhookConfig returns the webhook_config for Batches.Create
// (CreateBatchJobConfig.WebhookConfig) and Models.GenerateVideos
// (GenerateVideosConfig.WebhookConfig), which sends the job's events to
// the webhook URL given to New. Each call returns a new value.
//
// It carries no user_metadata: the live Gemini API has refused
// user_metadata on batch jobs ("Unknown name \"userMetadata\" at
// 'batch.webhook_config'", go-genai issue #779). The job's events are
// matched and bound by its id instead (see Handler).
func (d *Dispatcher) WebhookConfig() *genai.WebhookConfig {
	return &genai.WebhookConfig{Uris: []string{d.url}}
}

// InteractionWebhookConfig returns the webhook_config for
// Interactions.Create (a background interaction), which sends its events
// to the webhook URL given to New, with user_metadata holding a token that
// binds them to this receiver (webhook.MetadataKey and
// webhook.MetadataToken, see webhook.Binder). Add entries of your own to
// its UserMetadata if you like. The token matters for interactions whose
// id no wait here knows: those created server-side from a template
// carrying this config, as scheduled triggers do. Each call returns a new
// value.
func (d *Dispatcher) InteractionWebhookConfig() *interactions.WebhookConfig {
	md := make(map[string]any, 2)
	maps.Copy(md, d.cfg.binder.Metadata(newKey()))
	return &interactions.WebhookConfig{Uris: []string{d.url}, UserMetadata: md}
}

// newRandomBinder returns a Binder keyed by a fresh random secret, which
// binds the jobs this process creates.
func newRandomBinder() *webhook.Binder {
	secret := make([]byte, webhook.MinBinderSecret)
	rand.Read(secret) // never fails: crypto/rand crashes the program instead
	b, err := webhook.NewBinder(secret)
	if err != nil {
		panic(err) // unreachable: the secret has the required length
	}
	return b
}

// newKey returns a random key for a token: 128 bits, so that no two jobs
// share one.
func newKey() string {
	var b [16]byte
	rand.Read(b[:]) // never fails: crypto/rand crashes the program instead
	return "gh_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// bound is the webhook.BindingCheck behind Handler. Only data.id is
// trusted here: the Verifier authenticated it (the body is signed, or a
// JWT's audience named this receiver).
func (d *Dispatcher) bound(ctx context.Context, ev *webhook.Event) error {
	terr := d.cfg.binder.Check(ctx, ev)
	if terr == nil {
		return nil
	}
	var buf [maxKeys]string
	keys := eventKeys(ev.Type, ev.Data.ID, buf[:0])
	if len(keys) == 0 {
		return fmt.Errorf("%w: dispatch: event has no data.id of a known job family", webhook.ErrNotBound)
	}
	d.mu.Lock()
	for _, k := range keys {
		if d.waiters[k] != nil {
			d.mu.Unlock()
			return nil
		}
	}
	d.mu.Unlock()
	for _, k := range keys {
		ok, err := d.store.Tracked(ctx, k)
		if err != nil {
			return fmt.Errorf("dispatch: store: %w", err)
		}
		if ok {
			return nil
		}
	}
	if id := readableID(ev); d.cfg.poller != nil && id != "" {
		return d.readOwned(ctx, keys[0], id)
	}
	if d.cfg.poller == nil && d.nowNanos()-d.trackFailed.Load() < int64(trackDoubt) {
		// The store failed to record a wait lately: the job may be one it
		// should know. Undecided, so that Gemini retries, rather than 403,
		// which would lose the event for good.
		return fmt.Errorf("dispatch: job %q is not known to be awaited, but the store failed to record a wait less than %v ago; answering 503 so that Gemini retries", truncateID(ev.Data.ID), trackDoubt)
	}
	return fmt.Errorf("%w (and data.id %q is no job awaited here)", terr, truncateID(ev.Data.ID))
}

// readableID returns the id under which the job of ev can be read, or ""
// when its data.id does not say enough: a video operation is read by its
// full name, which holds the model.
func readableID(ev *webhook.Event) string {
	fam, seg := splitID(ev.Data.ID)
	switch ev.Type.Family() {
	case webhook.FamilyBatch:
		if fam == webhook.FamilyBatch || fam == webhook.FamilyInteraction { // a bare id is a batch's short form here
			return batchName(seg)
		}
	case webhook.FamilyVideo:
		if fam == webhook.FamilyVideo && strings.HasPrefix(ev.Data.ID, "models/") {
			return ev.Data.ID
		}
	case webhook.FamilyInteraction:
		if fam == webhook.FamilyInteraction {
			return ev.Data.ID
		}
	}
	return ""
}

// ownedJobs remembers what the binding learnt by reading jobs nobody
// awaits, so that a replayed delivery costs no further read. It has a lock
// of its own, and holds at most maxOwned answers, the oldest forgotten
// first in constant time.
type ownedJobs struct {
	mu       sync.Mutex
	answers  map[string]ownedAnswer // by key
	ring     []ownedSlot            // insertion order, maxOwned long once full
	next     int                    // of ring, to overwrite once full
	gen      uint64
	inflight map[string]chan struct{}
	sem      chan struct{} // bounds the reads in flight
}

type ownedAnswer struct {
	until int64 // unix ns
	ours  bool
	gen   uint64
}

type ownedSlot struct {
	key string
	gen uint64
}

// trackDoubt is how long after a failed Store.Track the binding, without a
// client, answers 503 rather than 403 for a job it does not know.
const trackDoubt = 2 * time.Minute

// Bounds of what the binding reads and remembers.
const (
	// oursTTL is how long a job read as this project's is remembered.
	oursTTL = time.Hour
	// foreignTTL is how long a job the API says does not exist is
	// remembered as foreign, answered 403 without a read.
	foreignTTL = 10 * time.Minute
	maxOwned   = 10_000
	// maxOwnedReads bounds the binding's reads in flight, apart from the
	// poll scheduler's, so that deliveries naming foreign jobs cannot hold
	// up the reads that confirm our own.
	maxOwnedReads = 2
)

// lookup returns the answer remembered for key, if any is still valid.
func (o *ownedJobs) lookup(key string, now int64) (ownedAnswer, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	a, ok := o.answers[key]
	return a, ok && now < a.until
}

// remember records a, forgetting the oldest answer when full.
func (o *ownedJobs) remember(key string, a ownedAnswer) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.answers == nil {
		o.answers = make(map[string]ownedAnswer)
	}
	o.gen++
	a.gen = o.gen
	slot := ownedSlot{key: key, gen: a.gen}
	if len(o.ring) < maxOwned {
		o.ring = append(o.ring, slot)
	} else {
		old := o.ring[o.next]
		if cur, ok := o.answers[old.key]; ok && cur.gen == old.gen {
			delete(o.answers, old.key)
		}
		o.ring[o.next] = slot
		o.next = (o.next + 1) % maxOwned
	}
	o.answers[key] = a
}

// readOwned reports whether the job id (with key key) is this project's,
// by reading it through the API: nil when it is; an error wrapping
// webhook.ErrNotBound when the API says it does not exist or is not ours
// (404, 403); another error, which the handler answers 503 so that Gemini
// retries, when the read failed. A job of ours that the API did not know
// yet loses only this delivery: a wait on it reads the job anyway. One read
// per key at a time, at most maxOwnedReads in all, each bounded by the poll
// timeout.
func (d *Dispatcher) readOwned(ctx context.Context, key, id string) error {
	o := &d.owned
	for {
		if a, ok := o.lookup(key, d.nowNanos()); ok {
			return ownedErr(a, id)
		}
		o.mu.Lock()
		wait := o.inflight[key]
		if wait == nil {
			if o.inflight == nil {
				o.inflight = make(map[string]chan struct{})
			}
			wait = make(chan struct{})
			o.inflight[key] = wait
			o.mu.Unlock()
			return d.readOwnedOnce(ctx, key, id, wait)
		}
		o.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// readOwnedOnce makes the read of readOwned, and closes done after it.
func (d *Dispatcher) readOwnedOnce(ctx context.Context, key, id string, done chan struct{}) error {
	o := &d.owned
	defer func() {
		o.mu.Lock()
		delete(o.inflight, key)
		o.mu.Unlock()
		close(done)
	}()
	select {
	case o.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	rctx, cancel := context.WithTimeout(ctx, d.cfg.pollTimeout)
	_, err := d.cfg.poller.Poll(rctx, id)
	cancel()
	<-o.sem
	d.polls.Add(1)
	now := d.nowNanos()
	if err == nil {
		o.remember(key, ownedAnswer{until: now + int64(oursTTL), ours: true})
		return nil
	}
	d.pollErrors.Add(1)
	if !classifyPollError(err, d.cfg.now()).notFound {
		return fmt.Errorf("dispatch: reading job %q to bind its delivery: %w", truncateID(id), err)
	}
	a := ownedAnswer{until: now + int64(foreignTTL)}
	o.remember(key, a)
	return ownedErr(a, id)
}

// ownedErr is readOwned's answer for a.
func ownedErr(a ownedAnswer, id string) error {
	if a.ours {
		return nil
	}
	return fmt.Errorf("%w: dispatch: the API does not know job %q as this project's", webhook.ErrNotBound, truncateID(id))
}
