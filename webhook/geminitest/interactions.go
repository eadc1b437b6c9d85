package geminitest

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	ia "google.golang.org/genai/interactions/models/interactions"

	"github.com/genaihook/genaihook/webhook"
	"github.com/genaihook/genaihook/webhook/webhooktest"
)

// fakeOutputText is the text of every completed interaction that did not
// ask for a video.
const fakeOutputText = "This is a fake response."

// createInteractionShape is the body of interactions.create: the members
// of CreateModelInteraction and CreateAgentInteraction in
// google.golang.org/genai v1.77.0 (the request is one or the other, sent
// flat). Only webhook_config is checked further.
var createInteractionShape = shape{
	"model": nil, "agent": nil, "agent_config": nil, "background": nil,
	"cached_content": nil, "continuation_token": nil, "environment": nil,
	"generation_config": nil, "input": nil, "labels": nil,
	"previous_interaction_id": nil, "response_format": nil,
	"response_mime_type": nil, "response_modalities": nil,
	"safety_settings": nil, "service_tier": nil, "store": nil, "stream": nil,
	"system_instruction": nil, "tools": nil,
	"webhook_config": {"uris": nil, "user_metadata": nil},
}

// createInteractionRequest is what the fake reads of interactions.create.
type createInteractionRequest struct {
	Model              string          `json:"model"`
	Agent              string          `json:"agent"`
	Background         bool            `json:"background"`
	Stream             bool            `json:"stream"`
	Input              json.RawMessage `json:"input"`
	ResponseModalities []string        `json:"response_modalities"`
	ResponseFormat     json.RawMessage `json:"response_format"`
	ServiceTier        string          `json:"service_tier"`
	GenerationConfig   struct {
		VideoConfig json.RawMessage `json:"video_config"`
	} `json:"generation_config"`
	WebhookConfig *struct {
		URIs         []string       `json:"uris"`
		UserMetadata map[string]any `json:"user_metadata"`
	} `json:"webhook_config"`
}

// videoFormat is what the fake reads of a response_format entry.
type videoFormat struct {
	Type     string `json:"type"`
	Delivery string `json:"delivery"`
}

// video reports whether the request asks for a video output, and whether
// inline (the bytes in the output) rather than by URI: by a
// response_format of type "video" (an object or one in an array), by
// generation_config.video_config, by the deprecated response_modalities,
// or by naming one of the Omni models, through which Gemini generates video
// in background interactions.
func (req *createInteractionRequest) video() (video, inline bool) {
	var formats []videoFormat
	if json.Unmarshal(req.ResponseFormat, &formats) != nil {
		var one videoFormat
		if json.Unmarshal(req.ResponseFormat, &one) == nil {
			formats = []videoFormat{one}
		}
	}
	for _, f := range formats {
		if f.Type == string(ia.ResponseModalityVideo) {
			return true, f.Delivery == "inline"
		}
	}
	return slices.Contains(req.ResponseModalities, string(ia.ResponseModalityVideo)) ||
		(len(req.GenerationConfig.VideoConfig) > 0 && string(req.GenerationConfig.VideoConfig) != "null") ||
		strings.HasPrefix(req.Model, "gemini-omni"), false
}

// createInteraction serves POST /v1beta/interactions, for a model or an
// agent. A background interaction starts in_progress and ends by Finish or
// AutoFinish; a foreground one (model only: agents must run in the
// background) completes at once, without an event. Streaming is not
// supported (400).
func (s *Server) createInteraction(w http.ResponseWriter, r *http.Request) {
	var req createInteractionRequest
	if err := decodeRequest(w, r, createInteractionShape, snakeNames, &req); err != nil {
		respondError(w, familyInteractions, http.StatusBadRequest, err.Error())
		return
	}
	j, err := s.newInteraction(&req)
	if err != nil {
		respondError(w, familyInteractions, http.StatusBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	s.addInteractionLocked(j, req.Background)
	body := s.interactionJSON(j)
	s.mu.Unlock()
	respondJSON(w, http.StatusOK, body)
}

// newInteraction checks a create request and returns its interaction, not
// yet added.
func (s *Server) newInteraction(req *createInteractionRequest) (*fakeJob, error) {
	switch {
	case (req.Model == "") == (req.Agent == ""):
		return nil, fmt.Errorf("exactly one of model or agent must be set")
	case len(req.Input) == 0 || string(req.Input) == "null":
		return nil, fmt.Errorf("input is required")
	case req.Stream:
		return nil, fmt.Errorf("geminitest: streaming interactions are not supported by the fake server")
	case req.Agent != "" && !req.Background:
		return nil, fmt.Errorf("agent interactions must set background to true")
	}
	var hook *fakeHookConfig
	if wc := req.WebhookConfig; wc != nil {
		if err := checkURIs("webhook_config.uris", wc.URIs); err != nil {
			return nil, err
		}
		hook = &fakeHookConfig{uris: wc.URIs, metadata: wc.UserMetadata}
	}
	now := s.now()
	j := &fakeJob{
		kind: kindInteraction, name: newInteractionID(), model: req.Model, agent: req.Agent,
		state: statusInProgress, created: now, updated: now, hook: hook,
		serviceTier: req.ServiceTier,
	}
	j.video, j.videoInline = req.video()
	j.short = j.name
	return j, nil
}

// addInteractionLocked stores j; a foreground interaction completes at
// once, without an event. s.mu must be held.
func (s *Server) addInteractionLocked(j *fakeJob, background bool) {
	j.seq = s.nextSeqLocked()
	s.interactions[j.name] = j
	if background {
		s.startTimerLocked(j)
		return
	}
	j.state, j.ended = statusCompleted, j.created
	s.completeInteractionLocked(j)
}

// Trigger starts a background interaction from template, as a scheduled
// trigger of the Interactions API does (its Trigger.Interaction is such a
// template): on the server's side, so the client never sees its creation,
// only the events of an interaction id it did not create, sent to the
// template's webhook_config uris with its user_metadata. The interaction
// then behaves as one created through the API (Finish, AutoFinish, GET).
// Background is set whatever the template says.
//
// Trigger returns the new interaction's id, or an error if the server is
// closed or the template is one the create endpoint refuses (no input, a
// webhook_config uri that is not an absolute http(s) URL, …).
func (s *Server) Trigger(template ia.CreateAgentInteraction) (string, error) {
	template.Background = new(true)
	raw, err := json.Marshal(template)
	if err != nil {
		return "", fmt.Errorf("geminitest: Trigger: %w", err)
	}
	var req createInteractionRequest
	if err := decodeBody(raw, createInteractionShape, snakeNames, &req); err != nil {
		return "", fmt.Errorf("geminitest: Trigger: %v", err)
	}
	j, err := s.newInteraction(&req)
	if err != nil {
		return "", fmt.Errorf("geminitest: Trigger: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return "", errServerClosed
	}
	s.addInteractionLocked(j, true)
	return j.name, nil
}

// interactionTime is the interactions API's time format,
// YYYY-MM-DDThh:mm:ssZ.
func interactionTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// interactionJSON renders j as an Interaction resource (snake_case). A
// completed interaction has one model_output step: a text content, or for
// a video interaction a video content {"type":"video","uri":…,
// "mime_type":"video/mp4"}, the download URI of its generated file (with
// delivery "inline", "data", the file's bytes in base64 instead), which
// the SDK surfaces as Interaction.OutputVideo. s.mu must be held.
func (s *Server) interactionJSON(j *fakeJob) map[string]any {
	m := map[string]any{
		"id":      j.name,
		"object":  "interaction",
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
	if j.serviceTier != "" {
		m["service_tier"] = j.serviceTier
	}
	if j.hook != nil {
		wc := map[string]any{}
		if j.hook.uris != nil {
			wc["uris"] = j.hook.uris
		}
		if j.hook.metadata != nil {
			wc["user_metadata"] = j.hook.metadata
		}
		m["webhook_config"] = wc
	}
	switch j.state {
	case statusCompleted:
		content := map[string]any{"type": "text", "text": fakeOutputText}
		if j.video {
			content = map[string]any{"type": "video", "uri": s.downloadURI(j.samples[0]), "mime_type": "video/mp4"}
			if j.videoInline {
				content = map[string]any{"type": "video", "data": base64.StdEncoding.EncodeToString(fakeVideo), "mime_type": "video/mp4"}
			}
		}
		m["steps"] = []any{map[string]any{"type": "model_output", "content": []any{content}}}
	case statusFailed:
		m["errors"] = []any{map[string]any{"code": strconv.Itoa(j.errCode), "message": j.errMsg}}
	}
	return m
}

// completeInteractionLocked produces the output of an interaction that has
// completed: a video interaction gets its file. s.mu must be held.
func (s *Server) completeInteractionLocked(j *fakeJob) {
	if j.video && len(j.samples) == 0 {
		j.samples = []string{s.addFileLocked("video/mp4", fakeVideo)}
	}
}

// finishInteractionLocked moves an interaction to o's status and returns
// its event, whose data.id is the bare interaction id (Google's docs show
// only placeholders, so the live form is unverified). A video interaction
// that completes sends interaction.completed, like any other: Gemini
// documents no other event for it. s.mu must be held.
func (s *Server) finishInteractionLocked(j *fakeJob, o Outcome) webhooktest.Payload {
	switch o.kind {
	case outcomeFail:
		j.state, j.errCode, j.errMsg = statusFailed, o.code, o.message
		return event(webhook.InteractionFailed, j.name, "error_code", o.code, "error_message", o.message)
	case outcomeCancel:
		j.state = statusCancelled
		return event(webhook.InteractionCancelled, j.name)
	case outcomeRequireAction:
		j.state = statusRequiresAction
		return event(webhook.InteractionRequiresAction, j.name)
	default:
		j.state = statusCompleted
		s.completeInteractionLocked(j)
		return event(webhook.InteractionCompleted, j.name)
	}
}

// getInteraction serves GET /v1beta/interactions/{id}.
func (s *Server) getInteraction(w http.ResponseWriter, id string) {
	s.mu.Lock()
	j := s.interactions[id]
	var body map[string]any
	if j != nil {
		body = s.interactionJSON(j)
	}
	s.mu.Unlock()
	if j == nil {
		respondError(w, familyInteractions, http.StatusNotFound, "interaction "+id+" not found")
		return
	}
	respondJSON(w, http.StatusOK, body)
}

// cancelInteraction serves POST /v1beta/interactions/{id}/cancel: a
// background interaction still running (or waiting in requires_action)
// becomes cancelled and interaction.cancelled is sent (an event the docs
// list although the API's subscribable events have omitted it since April
// 2026). It answers with the interaction; cancelling one that has ended is
// 400 failed_precondition.
func (s *Server) cancelInteraction(w http.ResponseWriter, r *http.Request, id string) {
	if !emptyRequest(w, r, familyInteractions) {
		return
	}
	s.mu.Lock()
	j := s.interactions[id]
	var err error
	var body map[string]any
	if j != nil {
		err = s.finishLocked(j, Cancel)
		body = s.interactionJSON(j)
	}
	s.mu.Unlock()
	switch {
	case j == nil:
		respondError(w, familyInteractions, http.StatusNotFound, "interaction "+id+" not found")
	case err != nil:
		respondStatus(w, familyInteractions, http.StatusBadRequest, statusFailedPrecondition, "interaction "+id+" has already ended")
	default:
		respondJSON(w, http.StatusOK, body)
	}
}

// deleteInteraction serves DELETE /v1beta/interactions/{id}; a running
// interaction deleted will never send an event.
func (s *Server) deleteInteraction(w http.ResponseWriter, r *http.Request, id string) {
	if !emptyRequest(w, r, familyInteractions) {
		return
	}
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
		respondError(w, familyInteractions, http.StatusNotFound, "interaction "+id+" not found")
		return
	}
	respondJSON(w, http.StatusOK, map[string]any{})
}

// newInteractionID returns an id of the form live interactions have: "v1_"
// and 32 base64url characters (letters of both cases, digits, '-', '_').
func newInteractionID() string {
	b := make([]byte, 24)
	rand.Read(b)
	return "v1_" + base64.RawURLEncoding.EncodeToString(b)
}
