package webhooktest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// fakeOutputText is the text of every completed interaction.
const fakeOutputText = "This is a fake response."

// wireInteractionWebhookConfig is the snake_case webhook_config of the
// Interactions API.
type wireInteractionWebhookConfig struct {
	URIs         []string       `json:"uris"`
	UserMetadata map[string]any `json:"user_metadata"`
}

// createInteraction serves POST /v1beta/interactions, for a model or an
// agent. A background interaction starts in_progress and ends by Finish or
// AutoFinish; a foreground one (model only: agents must run in the
// background) completes at once, without an event. Streaming is not
// supported (400).
func (s *Server) createInteraction(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model         string          `json:"model"`
		Agent         string          `json:"agent"`
		Background    bool            `json:"background"`
		Stream        bool            `json:"stream"`
		Input         json.RawMessage `json:"input"`
		WebhookConfig json.RawMessage `json:"webhook_config"`
	}
	if err := readJSON(w, r, &req); err != nil {
		respondInteractionError(w, http.StatusBadRequest, codeInvalidRequest, invalidJSON(err))
		return
	}
	switch {
	case (req.Model == "") == (req.Agent == ""):
		respondInteractionError(w, http.StatusBadRequest, codeInvalidRequest, "exactly one of model or agent must be set")
		return
	case len(req.Input) == 0 || string(req.Input) == "null":
		respondInteractionError(w, http.StatusBadRequest, codeInvalidRequest, "input is required")
		return
	case req.Stream:
		respondInteractionError(w, http.StatusBadRequest, codeInvalidRequest, "webhooktest: streaming interactions are not supported by the fake server")
		return
	case req.Agent != "" && !req.Background:
		respondInteractionError(w, http.StatusBadRequest, codeInvalidRequest, "agent interactions must set background to true")
		return
	}
	var hook *fakeHookConfig
	var hookRaw any
	if len(req.WebhookConfig) > 0 && string(req.WebhookConfig) != "null" {
		var wc wireInteractionWebhookConfig
		err := decodeJSON(req.WebhookConfig, &wc)
		if err == nil {
			err = decodeJSON(req.WebhookConfig, &hookRaw)
		}
		if err != nil {
			respondInteractionError(w, http.StatusBadRequest, codeInvalidRequest, invalidJSON(err))
			return
		}
		if err := checkURIs("webhook_config.uris", wc.URIs); err != nil {
			respondInteractionError(w, http.StatusBadRequest, codeInvalidRequest, err.Error())
			return
		}
		hook = &fakeHookConfig{uris: wc.URIs, metadata: wc.UserMetadata}
	}
	now := s.now()
	j := &fakeJob{
		kind: kindInteraction, name: "v1_" + fakeID(16), model: req.Model, agent: req.Agent,
		state: statusInProgress, created: now, updated: now, hook: hook, hookRaw: hookRaw,
	}
	j.short = j.name
	if !req.Background {
		j.state, j.ended = statusCompleted, now
	}
	s.mu.Lock()
	s.interactions[j.name] = j
	if req.Background {
		s.startTimerLocked(j)
	}
	body := interactionJSON(j)
	s.mu.Unlock()
	respondJSON(w, http.StatusOK, body)
}

// decodeJSON decodes raw into v, numbers kept exact.
func decodeJSON(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(v)
}

// respondInteractionError answers in the error format of the Interactions
// API, {"error":{"code":"not_found","message":…}}, whose code is a string
// (ai.google.dev/gemini-api/docs/api-errors): the interactions client
// decodes it into its typed errors (*apierrors.GetInteractionByIDClientError
// and the like), where Google's numeric code would fail its validation.
func respondInteractionError(w http.ResponseWriter, status int, code, msg string) {
	respondJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

// The error codes of the Interactions API that the fake uses.
const (
	codeInvalidRequest     = "invalid_request"
	codeNotFound           = "not_found"
	codeFailedPrecondition = "failed_precondition"
)

// interactionTime is the interactions API's time format,
// YYYY-MM-DDThh:mm:ssZ.
func interactionTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// interactionJSON renders j as an Interaction resource (snake_case). s.mu
// must be held.
func interactionJSON(j *fakeJob) map[string]any {
	m := map[string]any{
		"id":      j.name,
		"status":  j.state,
		"created": interactionTime(j.created),
		"updated": interactionTime(j.updated),
	}
	if j.model != "" {
		m["model"] = j.model
	}
	if j.agent != "" {
		m["agent"] = j.agent
	}
	if j.hookRaw != nil {
		m["webhook_config"] = j.hookRaw
	}
	switch j.state {
	case statusCompleted:
		m["steps"] = []any{map[string]any{
			"type":    "model_output",
			"content": []any{map[string]any{"type": "text", "text": fakeOutputText}},
		}}
	case statusFailed:
		m["errors"] = []any{map[string]any{"code": strconv.Itoa(j.errCode), "message": j.errMsg}}
	}
	return m
}

// finishInteraction moves an interaction to o's status and returns its
// event, whose data.id is the bare interaction id (Google's docs show only
// placeholders, so the live form is unverified).
func finishInteraction(j *fakeJob, o Outcome) Payload {
	switch o.kind {
	case outcomeFail:
		j.state, j.errCode, j.errMsg = statusFailed, o.code, o.message
		return InteractionFailed(j.name, o.code, o.message)
	case outcomeCancel:
		j.state = statusCancelled
		return InteractionCancelled(j.name)
	case outcomeRequireAction:
		j.state = statusRequiresAction
		return InteractionRequiresAction(j.name)
	default:
		j.state = statusCompleted
		return InteractionCompleted(j.name)
	}
}

// getInteraction serves GET /v1beta/interactions/{id}.
func (s *Server) getInteraction(w http.ResponseWriter, id string) {
	s.mu.Lock()
	j := s.interactions[id]
	var body map[string]any
	if j != nil {
		body = interactionJSON(j)
	}
	s.mu.Unlock()
	if j == nil {
		respondInteractionError(w, http.StatusNotFound, codeNotFound, "interaction "+id+" not found")
		return
	}
	respondJSON(w, http.StatusOK, body)
}

// cancelInteraction serves POST /v1beta/interactions/{id}/cancel: a
// background interaction still running (or waiting in requires_action)
// becomes cancelled and interaction.cancelled is sent (an event the docs
// list although the API's subscribable events have omitted it since April
// 2026).
// It answers with the interaction; cancelling one that has ended is 400
// FAILED_PRECONDITION.
func (s *Server) cancelInteraction(w http.ResponseWriter, id string) {
	s.mu.Lock()
	j := s.interactions[id]
	var err error
	var body map[string]any
	if j != nil {
		err = s.finishLocked(j, Cancel)
		body = interactionJSON(j)
	}
	s.mu.Unlock()
	switch {
	case j == nil:
		respondInteractionError(w, http.StatusNotFound, codeNotFound, "interaction "+id+" not found")
	case err != nil:
		respondInteractionError(w, http.StatusBadRequest, codeFailedPrecondition, "interaction "+id+" has already ended")
	default:
		respondJSON(w, http.StatusOK, body)
	}
}

// deleteInteraction serves DELETE /v1beta/interactions/{id}; a running
// interaction deleted will never send an event.
func (s *Server) deleteInteraction(w http.ResponseWriter, id string) {
	s.mu.Lock()
	j := s.interactions[id]
	if j != nil {
		delete(s.interactions, id)
		if j.timer != nil {
			j.timer.Stop()
		}
	}
	s.mu.Unlock()
	if j == nil {
		respondInteractionError(w, http.StatusNotFound, codeNotFound, "interaction "+id+" not found")
		return
	}
	respondJSON(w, http.StatusOK, map[string]any{})
}
