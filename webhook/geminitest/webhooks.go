package geminitest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/genaihook/genaihook/webhook"
	"github.com/genaihook/genaihook/webhook/webhooktest"
)

// PingEventType is the type of the event that Webhooks.Ping sends. Gemini
// does not document it; receivers must treat it as an unknown type (one
// webhook.EventType.Known reports false for), and this name is the fake's
// choice.
const PingEventType webhook.EventType = "webhook.ping"

// SecretOverlap is how long a signing secret keeps signing after a
// rotation with revoke_previous_secrets_after_h24.
const SecretOverlap = 24 * time.Hour

const (
	hookEnabled               = "enabled"
	hookDisabled              = "disabled"
	hookDisabledDueToFailures = "disabled_due_to_failed_deliveries"

	revokeAfterH24     = "revoke_previous_secrets_after_h24"
	revokeImmediately  = "revoke_previous_secrets_immediately"
	signingSecretBytes = 32
)

// fakeWebhook is a static webhook, created through the Webhooks API.
type fakeWebhook struct {
	id       string
	name     string
	uri      string
	events   []string
	state    string
	secrets  []fakeSecret // newest last
	created  time.Time
	updated  time.Time
	failures int    // deliveries in a row that ran out of retries
	seq      uint64 // creation order, for page tokens
}

type fakeSecret struct {
	value   string
	expires time.Time // zero: does not expire
}

// live reports whether sc still signs at now.
func (sc fakeSecret) live(now time.Time) bool {
	return sc.expires.IsZero() || now.Before(sc.expires)
}

func (wh *fakeWebhook) order() uint64 { return wh.seq }

func (wh *fakeWebhook) subscribed(t webhook.EventType) bool {
	return slices.Contains(wh.events, string(t))
}

// liveSecrets returns the secrets that still sign at now, newest first.
func (wh *fakeWebhook) liveSecrets(now time.Time) []string {
	var out []string
	for i := len(wh.secrets) - 1; i >= 0; i-- {
		if sc := wh.secrets[i]; sc.live(now) {
			out = append(out, sc.value)
		}
	}
	return out
}

// newSigningSecret returns "whsec_" and the standard base64 of 32 random
// bytes, the form of Standard Webhooks secrets.
func newSigningSecret() string {
	b := make([]byte, signingSecretBytes)
	rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// truncateSecret is the secret as signing_secrets lists it: enough to
// recognise, too little to use.
func truncateSecret(s string) string {
	const keep = len("whsec_") + 4
	if len(s) <= keep {
		return s
	}
	return s[:keep] + "..."
}

// webhookJSON renders wh (snake_case). Expired secrets are left out; the
// current secret has no expire_time. s.mu must be held.
func (s *Server) webhookJSON(wh *fakeWebhook) map[string]any {
	now := s.now()
	var secrets []map[string]any
	for i := len(wh.secrets) - 1; i >= 0; i-- {
		sc := wh.secrets[i]
		if !sc.live(now) {
			continue
		}
		e := map[string]any{"truncated_secret": truncateSecret(sc.value)}
		if !sc.expires.IsZero() {
			e["expire_time"] = wireTime(sc.expires)
		}
		secrets = append(secrets, e)
	}
	m := map[string]any{
		"id":                wh.id,
		"uri":               wh.uri,
		"subscribed_events": wh.events,
		"state":             wh.state,
		"create_time":       wireTime(wh.created),
		"update_time":       wireTime(wh.updated),
	}
	if wh.name != "" {
		m["name"] = wh.name
	}
	if len(secrets) > 0 {
		m["signing_secrets"] = secrets
	}
	return m
}

// checkEvents reports whether every event is one of the nine types Google
// documents (webhook.EventType.Known). The fake accepts batch.cancelled and
// interaction.cancelled, which the API's enum dropped, so that tests can
// subscribe to the events it sends on cancellation.
func checkEvents(w http.ResponseWriter, events []string) bool {
	if len(events) == 0 {
		respondError(w, familyWebhooks, http.StatusBadRequest, "subscribed_events is required")
		return false
	}
	for _, e := range events {
		if !webhook.EventType(e).Known() {
			respondError(w, familyWebhooks, http.StatusBadRequest, "subscribed_events: unknown event type "+jsonQuote(e))
			return false
		}
	}
	return true
}

func jsonQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// createWebhook serves POST /v1beta/webhooks. The answer carries the
// signing secret in new_signing_secret, the only time it is shown.
func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name             string   `json:"name"`
		URI              string   `json:"uri"`
		SubscribedEvents []string `json:"subscribed_events"`
	}
	if err := decodeRequest(w, r, shape{"name": nil, "uri": nil, "subscribed_events": nil}, snakeNames, &req); err != nil {
		respondError(w, familyWebhooks, http.StatusBadRequest, err.Error())
		return
	}
	if err := checkURI(req.URI); err != nil {
		respondError(w, familyWebhooks, http.StatusBadRequest, "uri: "+err.Error())
		return
	}
	if !checkEvents(w, req.SubscribedEvents) {
		return
	}
	now := s.now()
	secret := newSigningSecret()
	wh := &fakeWebhook{
		id: "wh_" + fakeID(16), name: req.Name, uri: req.URI, events: req.SubscribedEvents,
		state: hookEnabled, created: now, updated: now,
		secrets: []fakeSecret{{value: secret}},
	}
	s.mu.Lock()
	wh.seq = s.nextSeqLocked()
	s.webhooks[wh.id] = wh
	s.hookOrder = append(s.hookOrder, wh)
	body := s.webhookJSON(wh)
	s.mu.Unlock()
	// wh is shared from here on: a concurrent rotation may rewrite its
	// secrets, so the answer carries the value made above.
	body["new_signing_secret"] = secret
	respondJSON(w, http.StatusOK, body)
}

// listWebhooks serves GET /v1beta/webhooks?page_size=&page_token=, oldest
// first.
func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	page, next, err := paginate(s.hookOrder, (*fakeWebhook).order, q.Get("page_size"), q.Get("page_token"))
	var hooks []map[string]any
	for _, wh := range page {
		hooks = append(hooks, s.webhookJSON(wh))
	}
	s.mu.Unlock()
	if err != nil {
		respondError(w, familyWebhooks, http.StatusBadRequest, err.Error())
		return
	}
	resp := map[string]any{}
	if len(hooks) > 0 {
		resp["webhooks"] = hooks
	}
	if next != "" {
		resp["next_page_token"] = next
	}
	respondJSON(w, http.StatusOK, resp)
}

// getWebhook serves GET /v1beta/webhooks/{id}.
func (s *Server) getWebhook(w http.ResponseWriter, id string) {
	s.mu.Lock()
	wh := s.webhooks[id]
	var body map[string]any
	if wh != nil {
		body = s.webhookJSON(wh)
	}
	s.mu.Unlock()
	if wh == nil {
		respondWebhookNotFound(w, id)
		return
	}
	respondJSON(w, http.StatusOK, body)
}

func respondWebhookNotFound(w http.ResponseWriter, id string) {
	respondError(w, familyWebhooks, http.StatusNotFound, "webhook "+id+" not found")
}

// updateWebhook serves PATCH /v1beta/webhooks/{id}?update_mask=…: the
// fields named in the comma-separated mask (name, uri, subscribed_events,
// state) are replaced; without a mask, the fields present in the body.
// state can be set to enabled or disabled; enabling clears the count of
// failed deliveries.
func (s *Server) updateWebhook(w http.ResponseWriter, r *http.Request, id string) {
	var req struct {
		Name             *string   `json:"name"`
		URI              *string   `json:"uri"`
		SubscribedEvents *[]string `json:"subscribed_events"`
		State            *string   `json:"state"`
	}
	if err := decodeRequest(w, r, shape{"name": nil, "uri": nil, "subscribed_events": nil, "state": nil}, snakeNames, &req); err != nil && err != errEmptyBody {
		respondError(w, familyWebhooks, http.StatusBadRequest, err.Error())
		return
	}
	present := map[string]bool{
		"name": req.Name != nil, "uri": req.URI != nil,
		"subscribed_events": req.SubscribedEvents != nil, "state": req.State != nil,
	}
	mask := map[string]bool{}
	if m := r.URL.Query().Get("update_mask"); m != "" {
		for _, f := range strings.Split(m, ",") {
			f = strings.TrimSpace(f)
			if _, ok := present[f]; !ok {
				respondError(w, familyWebhooks, http.StatusBadRequest, "update_mask: unknown field "+jsonQuote(f))
				return
			}
			mask[f] = true
		}
	} else {
		mask = present
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	if mask["uri"] {
		if err := checkURI(str(req.URI)); err != nil {
			respondError(w, familyWebhooks, http.StatusBadRequest, "uri: "+err.Error())
			return
		}
	}
	var events []string
	if mask["subscribed_events"] {
		if req.SubscribedEvents != nil {
			events = *req.SubscribedEvents
		}
		if !checkEvents(w, events) {
			return
		}
	}
	if mask["state"] {
		if st := str(req.State); st != hookEnabled && st != hookDisabled {
			respondError(w, familyWebhooks, http.StatusBadRequest, "state: must be enabled or disabled, not "+jsonQuote(st))
			return
		}
	}
	s.mu.Lock()
	wh := s.webhooks[id]
	var body map[string]any
	if wh != nil {
		if mask["name"] {
			wh.name = str(req.Name)
		}
		if mask["uri"] {
			wh.uri = str(req.URI)
		}
		if mask["subscribed_events"] {
			wh.events = events
		}
		if mask["state"] {
			wh.state = str(req.State)
			if wh.state == hookEnabled {
				wh.failures = 0
			}
		}
		wh.updated = s.now()
		body = s.webhookJSON(wh)
	}
	s.mu.Unlock()
	if wh == nil {
		respondWebhookNotFound(w, id)
		return
	}
	respondJSON(w, http.StatusOK, body)
}

// deleteWebhook serves DELETE /v1beta/webhooks/{id}. Deliveries already
// started go on.
func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request, id string) {
	if !emptyRequest(w, r, familyWebhooks) {
		return
	}
	s.mu.Lock()
	wh := s.webhooks[id]
	if wh != nil {
		delete(s.webhooks, id)
		s.hookOrder = slices.DeleteFunc(s.hookOrder, func(x *fakeWebhook) bool { return x == wh })
	}
	s.mu.Unlock()
	if wh == nil {
		respondWebhookNotFound(w, id)
		return
	}
	respondJSON(w, http.StatusOK, map[string]any{})
}

// pingWebhook serves POST /v1beta/webhooks/{id}:ping: it sends the webhook
// an event of type PingEventType with data.id the webhook id, signed with
// its live secrets, whatever its state and subscriptions.
func (s *Server) pingWebhook(w http.ResponseWriter, r *http.Request, id string) {
	if !emptyRequest(w, r, familyWebhooks) {
		return
	}
	s.mu.Lock()
	wh := s.webhooks[id]
	if wh != nil {
		now := s.now()
		p := webhooktest.Payload{Type: PingEventType, Timestamp: now.UTC().Truncate(time.Second), Data: map[string]any{"id": wh.id}}
		s.startDeliveryLocked(p, deliveryTarget{url: wh.uri, webhook: wh, secrets: wh.liveSecrets(now)})
	}
	s.mu.Unlock()
	if wh == nil {
		respondWebhookNotFound(w, id)
		return
	}
	respondJSON(w, http.StatusOK, map[string]any{})
}

// rotateSecret serves POST /v1beta/webhooks/{id}:rotateSigningSecret. It
// answers {"secret": new secret}. With revocation_behavior
// revoke_previous_secrets_after_h24 (the default when absent) the previous
// secrets keep signing, each delivery then carrying one v1 entry per live
// secret, until SecretOverlap after the rotation by the server's clock;
// with revoke_previous_secrets_immediately only the new secret signs.
func (s *Server) rotateSecret(w http.ResponseWriter, r *http.Request, id string) {
	var req struct {
		RevocationBehavior string `json:"revocation_behavior"`
	}
	if err := decodeRequest(w, r, shape{"revocation_behavior": nil}, snakeNames, &req); err != nil && err != errEmptyBody {
		respondError(w, familyWebhooks, http.StatusBadRequest, err.Error())
		return
	}
	switch req.RevocationBehavior {
	case "", revokeAfterH24, revokeImmediately:
	default:
		respondError(w, familyWebhooks, http.StatusBadRequest, "revocation_behavior: unknown value "+jsonQuote(req.RevocationBehavior))
		return
	}
	secret := newSigningSecret()
	s.mu.Lock()
	wh := s.webhooks[id]
	if wh != nil {
		now := s.now()
		if req.RevocationBehavior == revokeImmediately {
			wh.secrets = nil
		} else {
			expires := now.Add(SecretOverlap)
			live := wh.secrets[:0]
			for _, sc := range wh.secrets {
				if !sc.live(now) {
					continue
				}
				if sc.expires.IsZero() || sc.expires.After(expires) {
					sc.expires = expires
				}
				live = append(live, sc)
			}
			wh.secrets = live
		}
		wh.secrets = append(wh.secrets, fakeSecret{value: secret})
		wh.updated = now
	}
	s.mu.Unlock()
	if wh == nil {
		respondWebhookNotFound(w, id)
		return
	}
	respondJSON(w, http.StatusOK, map[string]any{"secret": secret})
}
