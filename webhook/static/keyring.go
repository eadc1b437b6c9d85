package static

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"google.golang.org/genai/interactions/models/operations"
	"google.golang.org/genai/interactions/models/webhooks"

	"github.com/genaihook/genaihook/verify"
)

// overlap is how long Gemini keeps signing with the previous secrets after
// a rotation with revoke_previous_secrets_after_h24, used until the
// webhook's own expire_time is read back.
const overlap = 24 * time.Hour

// Reload re-reads the secrets from Config.Secrets and the webhook's
// signing_secrets from the API, and installs in the Verifier every secret
// the store or this process holds that Gemini still lists, with its
// expire_time. It is how a replica picks up a secret another replica
// saved (after a rotation, or a concurrent start): call it regularly
// (hourly is plenty: a rotation keeps the previous secret 24 hours) or
// when the store tells of a change. Deliveries in flight are not
// disturbed (see verify.Verifier.SetKeyring).
//
// Reload returns an error, and keeps the current keyring, if the store or
// the API fails (the error wraps theirs), or, wrapping ErrNoSecret, if no
// secret the store or the process holds is still listed.
func (w *Webhook) Reload(ctx context.Context) error {
	w.ops.Lock()
	defer w.ops.Unlock()
	hook, err := w.get(ctx)
	if err != nil {
		return err
	}
	w.mu.Lock()
	held := values(w.keyring)
	w.mu.Unlock()
	keyring, err := w.keyringFor(ctx, hook, held)
	if err != nil {
		return err
	}
	if len(keyring) == 0 {
		return fmt.Errorf("%w: neither the secret store nor this process holds a secret that Gemini lists for webhook %s; "+
			"Rotate to obtain a new one", ErrNoSecret, w.ID)
	}
	return w.install(keyring)
}

// Rotate has Gemini mint a new signing secret for the webhook, installs it
// in the Verifier at once, and hands it to Config.Secrets.Save. behavior is
// the SDK's: webhooks.RevocationBehaviorRevokePreviousSecretsAfterH24 (or
// "", the API's default) keeps the previous secrets, which Gemini goes on
// signing with for 24 hours, until their expire_time; with
// webhooks.RevocationBehaviorRevokePreviousSecretsImmediately they are
// dropped at once, and a delivery Gemini signed with them before the
// rotation, or that reaches the Handler before Rotate has installed the new
// secret, is refused (401) and retried by Gemini.
//
// Other replicas learn the new secret through Reload. With the 24-hour
// overlap they have a day to do so; with immediate revocation they refuse
// deliveries until they do.
//
// Rotate returns an error if the rotation fails (the error wraps the
// SDK's; nothing changed), wrapping ErrNoSecret if Gemini answers without a
// secret, or if Save fails: the new secret then verifies in this process
// only, and is lost when it exits, so save it some other way or rotate
// again.
func (w *Webhook) Rotate(ctx context.Context, behavior webhooks.RevocationBehavior) error {
	w.ops.Lock()
	defer w.ops.Unlock()
	secret, err := w.rotate(ctx, behavior)
	if err != nil {
		return err
	}
	now := w.now()
	w.mu.Lock()
	keyring := []verify.Secret{{Value: secret}}
	if behavior != webhooks.RevocationBehaviorRevokePreviousSecretsImmediately {
		for _, s := range w.keyring {
			if s.Expires.IsZero() || s.Expires.After(now.Add(overlap)) {
				s.Expires = now.Add(overlap)
			}
			keyring = append(keyring, s)
		}
	}
	w.mu.Unlock()
	if err := w.install(keyring); err != nil {
		return err
	}
	saveErr := w.cfg.Secrets.Save(ctx, secret)
	// Gemini's expire_time replaces the estimate above, unless the
	// listing does not show the new secret yet.
	if hook, err := w.get(ctx); err == nil {
		if k, err := w.keyringFor(ctx, hook, values(keyring)); err == nil && slices.ContainsFunc(k, func(s verify.Secret) bool { return s.Value == secret }) {
			w.install(k) // cannot fail: k holds the secret just installed
		}
	}
	if saveErr != nil {
		return fmt.Errorf("static: rotated the secret of webhook %s and installed it in this process, but could not save it "+
			"(it is lost when this process exits: rotate again): %w", w.ID, saveErr)
	}
	w.log.InfoContext(ctx, "static: rotated the webhook's signing secret", slog.String("webhook", w.ID), slog.String("revocation", string(behavior)))
	return nil
}

// rotate calls RotateSigningSecret and returns the new secret.
func (w *Webhook) rotate(ctx context.Context, behavior webhooks.RevocationBehavior) (string, error) {
	var body webhooks.RotateSigningSecretRequest
	if behavior != "" {
		body.RevocationBehavior = &behavior
	}
	res, err := w.client.Webhooks.RotateSigningSecret(ctx, operations.RotateSigningSecretRequest{ID: w.ID, Body: body}, noRetry)
	if err != nil {
		return "", fmt.Errorf("static: rotating the secret of webhook %s: %w", w.ID, err)
	}
	r := res.WebhookRotateSigningSecretResponse
	if r == nil || r.Secret == nil || *r.Secret == "" {
		return "", fmt.Errorf("%w: Gemini rotated the secret of webhook %s but returned none", ErrNoSecret, w.ID)
	}
	return *r.Secret, nil
}

func (w *Webhook) get(ctx context.Context) (*webhooks.Webhook, error) {
	res, err := w.client.Webhooks.Get(ctx, operations.GetWebhookRequest{ID: w.ID})
	if err != nil {
		return nil, fmt.Errorf("static: reading webhook %s: %w", w.ID, err)
	}
	if res.Webhook == nil {
		return nil, fmt.Errorf("static: reading webhook %s: the answer holds no webhook", w.ID)
	}
	return res.Webhook, nil
}

// install swaps keyring into the Verifier.
func (w *Webhook) install(keyring []verify.Secret) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.v.SetKeyring(keyring); err != nil {
		return fmt.Errorf("static: installing the secrets of webhook %s: %w", w.ID, err)
	}
	w.keyring = keyring
	return nil
}

// keyringFor returns the secrets of the store and of held that hook lists
// in signing_secrets, each with its expire_time.
func (w *Webhook) keyringFor(ctx context.Context, hook *webhooks.Webhook, held []string) ([]verify.Secret, error) {
	stored, err := w.cfg.Secrets.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("static: loading the secrets of webhook %s: %w", id(hook), err)
	}
	keyring, understood := match(slices.Concat(stored, held), hook.SigningSecrets)
	if !understood && len(keyring) > 0 {
		w.log.WarnContext(ctx, "static: the webhook's signing_secrets cannot be matched to the secrets held; keeping them all, without expiry",
			slog.String("webhook", id(hook)))
	}
	return keyring, nil
}

// match pairs secrets with the entries of listed, Gemini's signing_secrets
// of a webhook, which show each secret truncated ("whsec_AbCd...") and with
// its expire_time. A secret whose entry is found gets its expiry; one whose
// entry is not is dropped, since Gemini no longer signs with it. Secrets
// without expiry come first, then the latest to expire. The
// truncated form is undocumented: when listed is empty, or an entry does
// not look like "whsec_" and a few characters, the listing cannot be relied
// on, and every secret is kept, without expiry, with understood false.
func match(secrets []string, listed []webhooks.SigningSecret) (keyring []verify.Secret, understood bool) {
	prefixes := make([]string, len(listed))
	understood = len(listed) > 0
	for i, e := range listed {
		if e.TruncatedSecret != nil {
			prefixes[i] = strings.TrimRight(*e.TruncatedSecret, ".…*")
		}
		if len(prefixes[i]) <= len("whsec_") || !strings.HasPrefix(prefixes[i], "whsec_") {
			understood = false
		}
	}
	seen := map[string]bool{}
	for _, s := range secrets {
		s = strings.TrimSpace(s)
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		if !understood {
			keyring = append(keyring, verify.Secret{Value: s})
			continue
		}
		found, current := false, false
		var expires time.Time
		for i, e := range listed {
			if !strings.HasPrefix(s, prefixes[i]) {
				continue
			}
			found = true
			if e.ExpireTime == nil {
				current = true
			} else if e.ExpireTime.After(expires) {
				expires = *e.ExpireTime
			}
		}
		if current {
			expires = time.Time{} // a current secret wins over an expiring one of the same prefix
		}
		if found {
			keyring = append(keyring, verify.Secret{Value: s, Expires: expires})
		}
	}
	// The current secret first, so that it is the one a delivery signed
	// with several is reported as verified by.
	slices.SortStableFunc(keyring, func(x, y verify.Secret) int {
		switch {
		case x.Expires.IsZero() != y.Expires.IsZero():
			if x.Expires.IsZero() {
				return -1
			}
			return 1
		}
		return y.Expires.Compare(x.Expires)
	})
	return keyring, understood
}

func values(keyring []verify.Secret) []string {
	out := make([]string, len(keyring))
	for i, s := range keyring {
		out[i] = s.Value
	}
	return out
}
