package static

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/genai"
	"google.golang.org/genai/interactions/models/apierrors"
	"google.golang.org/genai/interactions/models/operations"
	"google.golang.org/genai/interactions/models/webhooks"
	"google.golang.org/genai/interactions/retry"

	"github.com/genaihook/genaihook/verify"
	"github.com/genaihook/genaihook/webhook"
)

// Config says which static webhook Register maintains. URI and Secrets are
// required.
type Config struct {
	// URI is where Gemini posts the events: this program's public https
	// URL, path included. Register maintains the one webhook of the
	// project with exactly this URI.
	URI string
	// Events are the event types the webhook subscribes to. Nil means the
	// seven that Gemini's API lets a webhook subscribe to (every type of
	// package webhook except the two cancelled ones).
	Events []webhook.EventType
	// Name is the display name given to a webhook Register creates; an
	// existing webhook keeps its own.
	Name string
	// Secrets is where the webhook's signing secrets are kept, outside the
	// process; Register, Rotate and Reload read and add to it.
	Secrets SecretStore
	// Verify configures the Verifier behind Handler. Its Secrets and
	// Keyring, if set (say from an environment variable), are held like
	// those of the SecretStore: kept while Gemini lists them for the
	// webhook. Set its JWKSURL to also accept dynamic deliveries at the
	// same endpoint, Now to inject a clock (it is also the clock that
	// expiries are computed with).
	Verify verify.Config
	// Logger receives what Register, Rotate, Reload and SelfTest do: at
	// Info, at Warn what deserves a look (a secret recovered by rotation,
	// a webhook disabled by hand re-enabled), at Error what needs an
	// operator (a webhook that Gemini disabled: events were lost); never a
	// secret. Nil means slog.Default().
	Logger *slog.Logger
}

// SecretStore keeps the signing secrets of a webhook where the process can
// find them again after a restart, and where every replica can read them:
// a secret manager, a file only this service can read, a database row.
// Gemini shows a secret once, when it creates it; a secret lost is a
// rotation. Implementations must be safe for concurrent use, and must
// never log the values.
type SecretStore interface {
	// Load returns every secret saved so far, in any order; none before
	// the first Save. Secrets that Gemini no longer lists for the webhook
	// (revoked, expired, or of a webhook deleted since) are ignored, so
	// the store may keep them or prune them as it likes.
	Load(ctx context.Context) ([]string, error)
	// Save adds secret, a "whsec_" value, to those Load returns. It must
	// return only once the secret is durable: until it does, a crash loses
	// the secret for good.
	Save(ctx context.Context, secret string) error
}

// Webhook is a static webhook kept by Register: its identity, what Register
// did to it, and a Verifier whose keyring follows the webhook's secrets.
// Its methods are safe for concurrent use.
type Webhook struct {
	// ID is the webhook's id, as the Webhooks API takes it ("wh_…").
	ID string
	// Created reports whether Register created the webhook.
	Created bool
	// Reenabled is the state Register found the webhook in when it had to
	// enable it ("disabled" or "disabled_due_to_failed_deliveries"), or ""
	// when it was enabled.
	Reenabled string
	// EventsUpdated reports whether Register changed the webhook's
	// subscribed events to Config.Events.
	EventsUpdated bool

	client *genai.Client
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	v      *verify.Verifier
	watch  watchers

	ops     sync.Mutex      // serialises Rotate and Reload, which read, then replace, the keyring
	mu      sync.Mutex      // guards keyring
	keyring []verify.Secret // what v holds
}

// subscribable are the event types Gemini's API lets a webhook subscribe
// to, the default of Config.Events.
var subscribable = []webhook.EventType{
	webhook.BatchSucceeded, webhook.BatchFailed, webhook.BatchExpired,
	webhook.InteractionRequiresAction, webhook.InteractionCompleted, webhook.InteractionFailed,
	webhook.VideoGenerated,
}

// Register makes sure the project has exactly one enabled webhook for
// cfg.URI, subscribed to cfg.Events, and that this process holds a secret
// it signs with; it is meant to run at every start of the program, on
// every replica. Through client.Webhooks it:
//
//   - lists the project's webhooks and keeps those whose uri is cfg.URI;
//   - creates one when there is none, and hands its secret, shown this
//     once, to cfg.Secrets.Save (if Save fails it deletes the webhook, so
//     that no webhook is left whose secret nobody has);
//   - when several exist, keeps the oldest and deletes the others (see
//     below);
//   - replaces its subscribed events when they differ from cfg.Events;
//   - enables it when it is disabled, logging at Error level when Gemini
//     disabled it after failed deliveries: the events of that time were
//     not delivered, so jobs that ended meanwhile must be read back;
//   - builds the Verifier's keyring from the secrets cfg.Secrets holds that
//     Gemini still lists for the webhook, each with its expire_time. If
//     there are none (the secret was lost, or another replica created the
//     webhook and has not saved its secret yet) it rotates the secret,
//     keeping the previous ones valid for 24 hours, and saves the new one.
//
// Concurrent starts. The Webhooks API has no conditional create, so two
// replicas that start together may both find no webhook and both create
// one. Each creator lists the webhooks again after it has created its own
// and saved its secret, and every replica keeps the same one: the oldest
// by create_time, ties going to the one listed first. (Gemini does not
// document its list order, so the rule is weakest for two creations
// within the precision of create_time; the fake lists oldest first.) A replica that finds its own webhook is not that one
// deletes it, and every Register deletes the other duplicates it sees.
// A replica that kept the survivor before its creator saved the secret
// rotates, as above, so that for 24 hours both secrets verify; every
// replica then picks up the others' secrets with Reload, which should run
// regularly (hourly, say) or when the SecretStore changes. Between the
// two creations and the deletion, Gemini may deliver an event to both
// webhooks: the same event arrives twice, under two webhook-ids.
//
// Register returns an error if client is nil, if cfg lacks URI or Secrets,
// if a call to the Webhooks API fails (the error wraps the SDK's), if
// cfg.Secrets fails (wrapped), if the Verifier cannot be built from
// cfg.Verify (a *verify.Error), or, wrapping ErrNoSecret, if Gemini returns
// no secret.
func Register(ctx context.Context, client *genai.Client, cfg Config) (*Webhook, error) {
	switch {
	case client == nil || client.Webhooks == nil:
		return nil, errors.New("static: Register needs a genai client for the Gemini Developer API")
	case cfg.URI == "":
		return nil, errors.New("static: Config.URI is empty: set the public URL Gemini posts events to")
	case cfg.Secrets == nil:
		return nil, errors.New("static: Config.Secrets is nil: signing secrets must be kept outside the process, Gemini shows each one once")
	}
	if cfg.Events == nil {
		cfg.Events = subscribable
	}
	w := &Webhook{client: client, cfg: cfg, log: cmp.Or(cfg.Logger, slog.Default()), now: cfg.Verify.Now}
	if w.now == nil {
		w.now = time.Now
	}

	hooks, err := w.list(ctx)
	if err != nil {
		return nil, err
	}
	var hook *webhooks.Webhook
	if len(hooks) == 0 {
		if hook, err = w.create(ctx); err != nil {
			return nil, err
		}
		w.Created = true
		// Another replica may have created one meanwhile: keep the oldest.
		if hooks, err = w.list(ctx); err != nil {
			return nil, err
		}
		if keep := oldest(hooks); keep != nil && id(keep) != id(hook) {
			w.log.InfoContext(ctx, "static: another replica created the webhook first; deleting ours",
				slog.String("webhook", id(hook)), slog.String("kept", id(keep)))
			if err := w.delete(ctx, id(hook)); err != nil {
				return nil, err
			}
			hook, w.Created = keep, false
		}
	} else {
		hook = oldest(hooks)
	}
	for _, h := range hooks {
		if id(h) != id(hook) {
			w.log.InfoContext(ctx, "static: deleting a duplicate webhook for the same URI",
				slog.String("webhook", id(h)), slog.String("kept", id(hook)))
			if err := w.delete(ctx, id(h)); err != nil {
				return nil, err
			}
		}
	}
	w.ID = id(hook)
	if hook, err = w.reconcile(ctx, hook); err != nil {
		return nil, err
	}

	held := slices.Clone(cfg.Verify.Secrets)
	for _, s := range cfg.Verify.Keyring {
		held = append(held, s.Value)
	}
	keyring, err := w.keyringFor(ctx, hook, held)
	if err != nil {
		return nil, err
	}
	if len(keyring) == 0 {
		w.log.WarnContext(ctx, "static: the secret store holds no secret of the webhook; rotating to obtain one (the previous secrets stay valid 24 hours)",
			slog.String("webhook", w.ID))
		secret, err := w.rotate(ctx, webhooks.RevocationBehaviorRevokePreviousSecretsAfterH24)
		if err != nil {
			return nil, err
		}
		if err := cfg.Secrets.Save(ctx, secret); err != nil {
			return nil, fmt.Errorf("static: saving the secret of webhook %s: %w", w.ID, err)
		}
		keyring = []verify.Secret{{Value: secret}}
	}
	vc := cfg.Verify
	vc.Secrets, vc.Keyring = nil, keyring
	if w.v, err = verify.New(vc); err != nil {
		return nil, err
	}
	w.keyring = keyring
	return w, nil
}

// noRetry turns off the interactions client's own retries, for calls that
// must not be repeated blindly (a create, a rotation: each mints a
// secret).
var noRetry = operations.WithRetries(retry.Config{Strategy: "none"})

// list returns the project's webhooks whose uri is the configured one, in
// the order the API lists them.
func (w *Webhook) list(ctx context.Context) ([]*webhooks.Webhook, error) {
	var out []*webhooks.Webhook
	var token *string
	for {
		res, err := w.client.Webhooks.List(ctx, operations.ListWebhooksRequest{PageSize: genai.Ptr(100), PageToken: token})
		if err != nil {
			return nil, fmt.Errorf("static: listing webhooks: %w", err)
		}
		page := res.WebhookListResponse
		if page == nil {
			return out, nil
		}
		for i := range page.Webhooks {
			if page.Webhooks[i].URI == w.cfg.URI {
				out = append(out, &page.Webhooks[i])
			}
		}
		if page.NextPageToken == nil || *page.NextPageToken == "" {
			return out, nil
		}
		token = page.NextPageToken
	}
}

// create creates the webhook and saves its secret, deleting the webhook if
// the secret cannot be saved.
func (w *Webhook) create(ctx context.Context) (*webhooks.Webhook, error) {
	events := make([]webhooks.WebhookSubscribedEvent, len(w.cfg.Events))
	for i, e := range w.cfg.Events {
		events[i] = webhooks.WebhookSubscribedEvent(e)
	}
	in := webhooks.WebhookInput{URI: w.cfg.URI, SubscribedEvents: events}
	if w.cfg.Name != "" {
		in.Name = &w.cfg.Name
	}
	res, err := w.client.Webhooks.Create(ctx, operations.CreateWebhookRequest{Body: in}, noRetry)
	if err != nil {
		return nil, fmt.Errorf("static: creating the webhook: %w", err)
	}
	hook := res.Webhook
	if hook == nil || hook.ID == nil {
		return nil, errors.New("static: creating the webhook: the answer holds no webhook")
	}
	secret := hook.NewSigningSecret
	hook.NewSigningSecret = nil
	if secret == nil || *secret == "" {
		w.deleteQuietly(ctx, id(hook))
		return nil, fmt.Errorf("%w: Gemini created webhook %s without new_signing_secret; deleted it", ErrNoSecret, id(hook))
	}
	if err := w.cfg.Secrets.Save(ctx, *secret); err != nil {
		w.deleteQuietly(ctx, id(hook))
		return nil, fmt.Errorf("static: saving the secret of the new webhook %s (deleted it again, since nobody would hold its secret): %w", id(hook), err)
	}
	w.log.InfoContext(ctx, "static: created the webhook", slog.String("webhook", id(hook)), slog.String("uri", w.cfg.URI))
	return hook, nil
}

// delete deletes a webhook; one already gone is no error.
func (w *Webhook) delete(ctx context.Context, whID string) error {
	_, err := w.client.Webhooks.Delete(ctx, operations.DeleteWebhookRequest{ID: whID})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("static: deleting webhook %s: %w", whID, err)
	}
	return nil
}

func (w *Webhook) deleteQuietly(ctx context.Context, whID string) {
	if err := w.delete(context.WithoutCancel(ctx), whID); err != nil {
		w.log.ErrorContext(ctx, "static: could not delete a webhook whose secret is lost; delete it by hand", slog.String("webhook", whID), slog.Any("error", err))
	}
}

func isNotFound(err error) bool {
	var e *apierrors.APIError
	return errors.As(err, &e) && e.StatusCode == http.StatusNotFound
}

// reconcile sets the webhook's events and state as configured.
func (w *Webhook) reconcile(ctx context.Context, hook *webhooks.Webhook) (*webhooks.Webhook, error) {
	var mask []string
	var up webhooks.WebhookUpdate
	if !sameEvents(hook.SubscribedEvents, w.cfg.Events) {
		mask = append(mask, "subscribed_events")
		for _, e := range w.cfg.Events {
			up.SubscribedEvents = append(up.SubscribedEvents, webhooks.WebhookUpdateSubscribedEvent(e))
		}
	}
	state := stateOf(hook)
	if state != string(webhooks.WebhookStateEnabled) {
		mask = append(mask, "state")
		up.State = webhooks.WebhookUpdateStateEnabled.ToPointer()
	}
	if len(mask) == 0 {
		return hook, nil
	}
	res, err := w.client.Webhooks.Update(ctx, operations.UpdateWebhookRequest{ID: w.ID, UpdateMask: genai.Ptr(strings.Join(mask, ",")), Body: up})
	if err != nil {
		return nil, fmt.Errorf("static: updating webhook %s (%s): %w", w.ID, strings.Join(mask, ", "), err)
	}
	if res.Webhook == nil {
		return nil, fmt.Errorf("static: updating webhook %s: the answer holds no webhook", w.ID)
	}
	if up.SubscribedEvents != nil {
		w.EventsUpdated = true
		w.log.InfoContext(ctx, "static: updated the webhook's subscribed events", slog.String("webhook", w.ID))
	}
	if up.State != nil {
		w.Reenabled = state
		if state == string(webhooks.WebhookStateDisabledDueToFailedDeliveries) {
			w.log.ErrorContext(ctx, "static: Gemini had disabled the webhook after failed deliveries; re-enabled it. "+
				"Events of jobs that ended while it was disabled were not delivered: read those jobs back through the API",
				slog.String("webhook", w.ID))
		} else {
			w.log.WarnContext(ctx, "static: the webhook was disabled; re-enabled it", slog.String("webhook", w.ID), slog.String("state", state))
		}
	}
	return res.Webhook, nil
}

func sameEvents(have []webhooks.WebhookSubscribedEvent, want []webhook.EventType) bool {
	a := make([]string, len(have))
	for i, e := range have {
		a[i] = string(e)
	}
	b := make([]string, len(want))
	for i, e := range want {
		b[i] = string(e)
	}
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// oldest returns the webhook every replica keeps: the earliest create_time,
// ties (and webhooks without one) going to the first listed.
func oldest(hooks []*webhooks.Webhook) *webhooks.Webhook {
	var keep *webhooks.Webhook
	for _, h := range hooks {
		if keep == nil || (h.CreateTime != nil && keep.CreateTime != nil && h.CreateTime.Before(*keep.CreateTime)) {
			keep = h
		}
	}
	return keep
}

func id(h *webhooks.Webhook) string {
	if h == nil || h.ID == nil {
		return ""
	}
	return *h.ID
}

func stateOf(h *webhooks.Webhook) string {
	if h.State == nil {
		return ""
	}
	return string(*h.State)
}
