package dispatch

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"

	"google.golang.org/genai"
	"google.golang.org/genai/interactions/models/interactions"

	"github.com/genaihook/genaihook/webhook"
)

// BatchWebhookConfig returns the webhook_config for Batches.Create that
// sends the batch's events to the URL of WithWebhookURL.
//
// It carries no user_metadata: the live Gemini API has refused
// user_metadata on batch jobs ("Unknown name \"userMetadata\" at
// 'batch.webhook_config'", go-genai issue #779). The batch's events are
// therefore matched by job id, and bound to this receiver by Binding as a
// job this receiver awaits or Tracked: call Track right after Create.
//
// It panics if New was not given WithWebhookURL: a programming error,
// like registering a nil handler with http.Handle.
func (d *Dispatcher) BatchWebhookConfig() *genai.WebhookConfig {
	return &genai.WebhookConfig{Uris: []string{d.webhookURL("BatchWebhookConfig")}}
}

// VideoWebhookConfig returns the webhook_config for Models.GenerateVideos
// that sends the operation's events to the URL of WithWebhookURL, with
// user_metadata made of a copy of userMetadata (which may be nil) plus a
// fresh correlation key (webhook.MetadataKey, read back with KeyOf) and the
// token binding it to this receiver (webhook.MetadataToken), which Binding
// requires of dynamic deliveries. It panics if New was not given
// WithWebhookURL.
func (d *Dispatcher) VideoWebhookConfig(userMetadata map[string]any) *genai.WebhookConfig {
	return &genai.WebhookConfig{Uris: []string{d.webhookURL("VideoWebhookConfig")}, UserMetadata: d.metadata(userMetadata)}
}

// InteractionWebhookConfig is VideoWebhookConfig for Interactions.Create
// (a background interaction), whose config is a type of its own.
func (d *Dispatcher) InteractionWebhookConfig(userMetadata map[string]any) *interactions.WebhookConfig {
	return &interactions.WebhookConfig{Uris: []string{d.webhookURL("InteractionWebhookConfig")}, UserMetadata: d.metadata(userMetadata)}
}

func (d *Dispatcher) webhookURL(builder string) string {
	if d.cfg.webhookURL == "" {
		panic("dispatch: " + builder + ": no webhook URL; pass dispatch.WithWebhookURL(\"https://…\") to New")
	}
	return d.cfg.webhookURL
}

func (d *Dispatcher) metadata(user map[string]any) map[string]any {
	md := make(map[string]any, len(user)+2)
	maps.Copy(md, user)
	maps.Copy(md, d.cfg.binder.Metadata(newKey()))
	return md
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

// newKey returns a random correlation key: 128 bits, so that no two jobs
// share one.
func newKey() string {
	var b [16]byte
	rand.Read(b[:]) // never fails: crypto/rand crashes the program instead
	return "gh_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// Track records that this receiver created the job id, and, when key is
// not empty, that events carrying the correlation key key (see KeyOf) are
// that job's whatever their data.id says. Call it right after the create
// call returns: Binding then accepts the job's events even if they arrive
// before anyone waits, and Wait(ctx, id) matches them by key too. Tracks
// are kept for TrackRetention. An event carrying key that arrived before
// Track is the job's too: it resolves the job's waits now. It returns
// ErrInvalidID for an id of no form genai returns, or the store's error.
func (d *Dispatcher) Track(ctx context.Context, id, key string) error {
	idk := idKey(id)
	if idk == "" {
		return ErrInvalidID
	}
	if err := d.store.Track(ctx, idk, ""); err != nil {
		return fmt.Errorf("dispatch: store: %w", err)
	}
	if key == "" {
		return nil
	}
	ck := corrKey(key)
	if err := d.store.Track(ctx, ck, idk); err != nil {
		return fmt.Errorf("dispatch: store: %w", err)
	}
	// An event carrying the key may have arrived before this call, under a
	// data.id of another form: it is the job's event too.
	ev, err := d.store.Load(ctx, ck)
	if err != nil {
		return fmt.Errorf("dispatch: store: %w", err)
	}
	if ev == nil {
		return nil
	}
	return d.record(ctx, []string{idk}, ev)
}

// Binding returns the webhook.Option that binds dynamic deliveries to this
// receiver, for the handler that feeds d:
//
//	http.Handle("POST /gemini/webhook", webhook.NewHandler(v, d.Deliver, d.Binding()))
//
// A dynamic delivery (signed with Google's global keys, so it proves that
// Google sent it to someone, not to this receiver) is accepted when its
// user_metadata holds a token minted by d's Binder (the webhook_config
// builders put one there), or when its data.id names a job this receiver
// created: one a Wait or Future awaits right now, or recorded with Track.
// The second rule is for batches, whose jobs cannot carry user_metadata
// today. Job ids are assigned by Gemini, so another customer's delivery
// cannot name one of ours. Anything else is refused with 403; a store that
// cannot answer makes the handler answer 503, so Gemini retries.
func (d *Dispatcher) Binding() webhook.Option {
	return webhook.WithBinding(d.bound)
}

// bound is the webhook.BindingCheck behind Binding.
func (d *Dispatcher) bound(ctx context.Context, ev *webhook.Event) error {
	terr := d.cfg.binder.Check(ctx, ev)
	if terr == nil {
		return nil
	}
	if err := d.knownJob(ctx, ev); err == nil || !errors.Is(err, webhook.ErrNotBound) {
		return err
	}
	return fmt.Errorf("%w (and data.id %q is no job this receiver awaits or tracked)", terr, truncateID(ev.Data.ID))
}

// knownJob accepts an event whose data.id names a job this receiver awaits
// or tracked. Only data.id is trusted here: the Verifier authenticated it
// (the body is signed, or a JWT's audience named this receiver).
func (d *Dispatcher) knownJob(ctx context.Context, ev *webhook.Event) error {
	var buf [2]string
	keys := eventKeys(ev.Type, ev.Data.ID, buf[:0])
	if len(keys) == 0 {
		return fmt.Errorf("%w: dispatch: event has no data.id of a known job family", webhook.ErrNotBound)
	}
	d.mu.Lock()
	waiting := false
	for _, k := range keys {
		waiting = waiting || d.waiters[k] != nil
	}
	d.mu.Unlock()
	if waiting {
		return nil
	}
	for _, k := range keys {
		_, ok, err := d.store.Tracked(ctx, k)
		if err != nil {
			return fmt.Errorf("dispatch: store: %w", err)
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("%w: dispatch: job %q was not created by this receiver", webhook.ErrNotBound, truncateID(ev.Data.ID))
}

// truncateID bounds an id from a delivery before it goes into an error.
func truncateID(id string) string {
	const n = 128
	if len(id) > n {
		return id[:n] + "…"
	}
	return id
}
