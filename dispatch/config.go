package dispatch

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"

	"google.golang.org/genai"
	"google.golang.org/genai/interactions/models/interactions"

	"github.com/genaihook/genaihook/webhook"
)

// BatchWebhookConfig returns the webhook_config for Batches.Create that
// sends the batch's events to uri.
//
// With userMetadata nil it carries no user_metadata at all: the live API
// has refused user_metadata on batch jobs (PROTOCOL.md §7), so this is the
// form to use today. The batch's event is then matched by its job id (Wait
// on job.Name) and, on a handler with binding on, accepted by KnownJob
// (call Track right after Create). With userMetadata non-nil (even empty)
// the config is built as VideoWebhookConfig's.
func (d *Dispatcher) BatchWebhookConfig(uri string, userMetadata map[string]any) *genai.WebhookConfig {
	if userMetadata == nil {
		return &genai.WebhookConfig{Uris: []string{uri}}
	}
	return &genai.WebhookConfig{Uris: []string{uri}, UserMetadata: d.metadata(userMetadata)}
}

// VideoWebhookConfig returns the webhook_config for Models.GenerateVideos
// that sends the operation's events to uri, with user_metadata made of a
// copy of userMetadata (which may be nil) plus a fresh correlation key
// (webhook.MetadataKey, read back with KeyOf) and, under WithBinder, the
// receiver-bound token for it (webhook.MetadataToken), which
// webhook.Binder.Check requires on dynamic deliveries.
func (d *Dispatcher) VideoWebhookConfig(uri string, userMetadata map[string]any) *genai.WebhookConfig {
	return &genai.WebhookConfig{Uris: []string{uri}, UserMetadata: d.metadata(userMetadata)}
}

// InteractionWebhookConfig is VideoWebhookConfig for Interactions.Create
// (a background interaction), whose config is a type of its own.
func (d *Dispatcher) InteractionWebhookConfig(uri string, userMetadata map[string]any) *interactions.WebhookConfig {
	return &interactions.WebhookConfig{Uris: []string{uri}, UserMetadata: d.metadata(userMetadata)}
}

func (d *Dispatcher) metadata(user map[string]any) map[string]any {
	md := make(map[string]any, len(user)+2)
	maps.Copy(md, user)
	key := newKey()
	if d.cfg.binder != nil {
		maps.Copy(md, d.cfg.binder.Metadata(key))
	} else {
		md[webhook.MetadataKey] = key
	}
	return md
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
// call returns: KnownJob then accepts the job's events even if they arrive
// before anyone waits, and Wait(ctx, id) matches them by key too. Tracks
// are kept for TrackRetention. It returns ErrInvalidID for an empty id, or
// the store's error.
func (d *Dispatcher) Track(ctx context.Context, id, key string) error {
	idk := idKey(id)
	if idk == "" {
		return ErrInvalidID
	}
	if err := d.store.Track(ctx, idk, ""); err != nil {
		return fmt.Errorf("dispatch: store: %w", err)
	}
	if key != "" {
		if err := d.store.Track(ctx, corrKey(key), idk); err != nil {
			return fmt.Errorf("dispatch: store: %w", err)
		}
	}
	return nil
}

// KnownJob is a webhook.BindingCheck that accepts a delivery whose data.id
// names a job this receiver created: one awaited by a Wait or Future right
// now, or recorded with Track. It is the binding for batches, whose jobs
// cannot carry the token (PROTOCOL.md §7); combine it with the token check:
//
//	webhook.WithBinding(webhook.AnyOf(binder.Check, d.KnownJob))
//
// Only data.id is trusted here, never user_metadata: job ids are assigned
// by Gemini, so a replayed delivery of someone else's job cannot name one
// of ours. It returns an error wrapping webhook.ErrNotBound for any other
// job, and the store's error when it cannot tell.
func (d *Dispatcher) KnownJob(ctx context.Context, ev *webhook.Event) error {
	idk := idKey(ev.Data.ID)
	if idk == "" {
		return fmt.Errorf("%w: dispatch: event has no data.id", webhook.ErrNotBound)
	}
	d.mu.Lock()
	waiting := d.waiters[idk] != nil
	d.mu.Unlock()
	if waiting {
		return nil
	}
	_, ok, err := d.store.Tracked(ctx, idk)
	if err != nil {
		return fmt.Errorf("dispatch: store: %w", err)
	}
	if !ok {
		return fmt.Errorf("%w: dispatch: job %q was not created by this receiver", webhook.ErrNotBound, ev.Data.ID)
	}
	return nil
}
