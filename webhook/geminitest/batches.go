package geminitest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/genaihook/genaihook/webhook"
	"github.com/genaihook/genaihook/webhook/webhooktest"
)

const (
	batchMetadataType = "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch"
	batchOutputType   = "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatchOutput"
)

// batchUserMetadataMessage is the live API's answer to a batch
// webhookConfig with userMetadata (googleapis/go-genai issue #779).
const batchUserMetadataMessage = `Invalid JSON payload received. Unknown name "userMetadata" at 'batch.webhook_config': Cannot find field.`

// wireWebhookConfig is the camelCase webhookConfig of batches and videos.
type wireWebhookConfig struct {
	URIs         []string       `json:"uris"`
	UserMetadata map[string]any `json:"userMetadata"`
}

func (c *wireWebhookConfig) toHook() *fakeHookConfig {
	if c == nil {
		return nil
	}
	return &fakeHookConfig{uris: c.URIs, metadata: c.UserMetadata}
}

// webhookConfigShape is the camelCase webhookConfig of batches and videos.
var webhookConfigShape = shape{"uris": nil, "userMetadata": nil}

// createBatchShape is the body of batches.create, as the SDK's
// createBatchJobParametersToMldev builds it. The inlined requests are
// GenerateContentRequests, not checked.
var createBatchShape = shape{"batch": {
	"displayName": nil,
	"inputConfig": {
		"fileName": nil,
		"requests": {"requests": {"request": nil, "metadata": nil}},
	},
	"webhookConfig": webhookConfigShape,
}}

// createBatch serves POST /v1beta/{model}:batchGenerateContent, the
// Developer API's batches.create: the body nests everything under "batch".
func (s *Server) createBatch(w http.ResponseWriter, r *http.Request, model string) {
	var req struct {
		Batch *struct {
			DisplayName string `json:"displayName"`
			InputConfig *struct {
				FileName string `json:"fileName"`
				Requests *struct {
					Requests []inlinedRequest `json:"requests"`
				} `json:"requests"`
			} `json:"inputConfig"`
			WebhookConfig *wireWebhookConfig `json:"webhookConfig"`
		} `json:"batch"`
	}
	if err := decodeRequest(w, r, createBatchShape, protoNames, &req); err != nil && err != errEmptyBody {
		respondError(w, familyCore, http.StatusBadRequest, err.Error())
		return
	}
	b := req.Batch
	if s.BatchUserMetadataBug && b != nil && b.WebhookConfig != nil && b.WebhookConfig.UserMetadata != nil {
		respondJSON(w, http.StatusBadRequest, map[string]any{"error": apiError{
			Code: http.StatusBadRequest, Message: batchUserMetadataMessage, Status: "INVALID_ARGUMENT",
			Details: []map[string]any{{
				"@type": "type.googleapis.com/google.rpc.BadRequest",
				"fieldViolations": []map[string]any{{
					"field":       "batch.webhook_config",
					"description": batchUserMetadataMessage,
				}},
			}},
		}})
		return
	}
	if b == nil || b.InputConfig == nil {
		respondError(w, familyCore, http.StatusBadRequest, "batch.input_config is required")
		return
	}
	in := b.InputConfig
	var reqs []inlinedRequest
	if in.Requests != nil {
		reqs = in.Requests.Requests
	}
	hasFile, hasInline := in.FileName != "", len(reqs) > 0
	if hasFile == hasInline {
		respondError(w, familyCore, http.StatusBadRequest, "batch.input_config: exactly one of file_name or requests must be set")
		return
	}
	for i, rq := range reqs {
		if len(rq.Request) == 0 || string(rq.Request) == "null" {
			respondError(w, familyCore, http.StatusBadRequest, fmt.Sprintf("batch.input_config.requests.requests[%d].request is required", i))
			return
		}
	}
	if b.WebhookConfig != nil {
		if err := checkURIs("batch.webhook_config.uris", b.WebhookConfig.URIs); err != nil {
			respondError(w, familyCore, http.StatusBadRequest, err.Error())
			return
		}
	}
	now := s.now()
	id := fakeID(12)
	j := &fakeJob{
		kind: kindBatch, name: "batches/" + id, short: id, model: model,
		displayName: b.DisplayName, state: batchPending, created: now, updated: now,
		hook: b.WebhookConfig.toHook(), inputFile: in.FileName,
	}
	for _, rq := range reqs {
		j.requests = append(j.requests, rq.Metadata)
	}
	s.mu.Lock()
	j.seq = s.nextSeqLocked()
	s.batches[id] = j
	s.jobOrder = append(s.jobOrder, j)
	s.startTimerLocked(j)
	op := s.batchOperation(j)
	s.mu.Unlock()
	respondJSON(w, http.StatusOK, op)
}

// inlinedRequest is one entry of batch.inputConfig.requests.requests.
type inlinedRequest struct {
	Request  json.RawMessage `json:"request"`
	Metadata map[string]any  `json:"metadata"`
}

// batchOperation renders j as the google.longrunning.Operation that
// batches.create, get and list return. s.mu must be held.
func (s *Server) batchOperation(j *fakeJob) map[string]any {
	md := map[string]any{
		"@type":      batchMetadataType,
		"name":       j.name,
		"model":      j.model,
		"createTime": wireTime(j.created),
		"updateTime": wireTime(j.updated),
		"state":      j.state,
	}
	if j.displayName != "" {
		md["displayName"] = j.displayName
	}
	n := max(len(j.requests), 1)
	stats := map[string]any{"requestCount": strconv.Itoa(n)}
	switch j.state {
	case batchPending:
		stats["pendingRequestCount"] = strconv.Itoa(n)
	case batchSucceeded:
		stats["successfulRequestCount"] = strconv.Itoa(n)
	case batchFailed:
		stats["failedRequestCount"] = strconv.Itoa(n)
	}
	md["batchStats"] = stats
	op := map[string]any{"name": j.name, "metadata": md}
	if !j.terminal() {
		return op
	}
	md["endTime"] = wireTime(j.ended)
	op["done"] = true
	switch j.state {
	case batchSucceeded:
		output := map[string]any{}
		if j.inputFile != "" {
			output["responsesFile"] = j.output
		} else {
			var resps []map[string]any
			for _, m := range j.requests {
				r := map[string]any{"response": fakeGenerateContentResponse()}
				if m != nil {
					r["metadata"] = m
				}
				resps = append(resps, r)
			}
			output["inlinedResponses"] = map[string]any{"inlinedResponses": resps}
		}
		md["output"] = output
		resp := map[string]any{"@type": batchOutputType}
		for k, v := range output {
			resp[k] = v
		}
		op["response"] = resp
	case batchFailed:
		op["error"] = map[string]any{"code": j.errCode, "message": j.errMsg}
	}
	return op
}

// fakeGenerateContentResponse is the model's answer to every request.
func fakeGenerateContentResponse() map[string]any {
	return map[string]any{
		"candidates": []map[string]any{{
			"content":      map[string]any{"role": "model", "parts": []map[string]any{{"text": "This is a fake response."}}},
			"finishReason": "STOP",
		}},
		"modelVersion": "fake",
	}
}

// finishBatchLocked moves a pending batch to o's state and returns its
// event, whose data.id is the SDK's "batches/{id}" (Google's docs show only
// placeholders, so the live form is unverified). The data.output_file_uri
// of a file batch is its responses file as batches.get names it
// (metadata.output.responsesFile, the SDK's BatchJob.Dest.FileName):
// "files/{id}", which Files.Download takes. s.mu must be held.
func (s *Server) finishBatchLocked(j *fakeJob, o Outcome) webhooktest.Payload {
	switch o.kind {
	case outcomeFail:
		j.state, j.errCode, j.errMsg = batchFailed, o.code, o.message
		return event(webhook.BatchFailed, j.name, "error_code", o.code, "error_message", o.message)
	case outcomeExpire:
		j.state = batchExpired
		return event(webhook.BatchExpired, j.name)
	case outcomeCancel:
		j.state = batchCancelled
		return event(webhook.BatchCancelled, j.name)
	default:
		j.state = batchSucceeded
		if j.inputFile == "" {
			return event(webhook.BatchSucceeded, j.name)
		}
		j.output = s.addFileLocked("application/jsonl", fakeBatchOutputFile())
		return event(webhook.BatchSucceeded, j.name, "output_file_uri", j.output)
	}
}

func fakeBatchOutputFile() []byte {
	line, _ := json.Marshal(map[string]any{"key": "request-1", "response": fakeGenerateContentResponse()})
	return append(line, '\n')
}

// getBatch serves GET /v1beta/batches/{id}.
func (s *Server) getBatch(w http.ResponseWriter, id string) {
	s.mu.Lock()
	j := s.batches[id]
	var op map[string]any
	if j != nil {
		op = s.batchOperation(j)
	}
	s.mu.Unlock()
	if j == nil {
		respondError(w, familyCore, http.StatusNotFound, "batch batches/"+id+" not found")
		return
	}
	respondJSON(w, http.StatusOK, op)
}

// listBatches serves GET /v1beta/batches?pageSize=&pageToken=, oldest
// first.
func (s *Server) listBatches(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	page, next, err := paginate(s.jobOrder, (*fakeJob).order, q.Get("pageSize"), q.Get("pageToken"))
	var ops []map[string]any
	for _, j := range page {
		ops = append(ops, s.batchOperation(j))
	}
	s.mu.Unlock()
	if err != nil {
		respondError(w, familyCore, http.StatusBadRequest, err.Error())
		return
	}
	resp := map[string]any{}
	if len(ops) > 0 {
		resp["operations"] = ops
	}
	if next != "" {
		resp["nextPageToken"] = next
	}
	respondJSON(w, http.StatusOK, resp)
}

// cancelBatch serves POST /v1beta/batches/{id}:cancel: the batch becomes
// BATCH_STATE_CANCELLED and batch.cancelled is sent (an event the docs list
// although the API's subscribable events have omitted it since April 2026).
func (s *Server) cancelBatch(w http.ResponseWriter, r *http.Request, id string) {
	if !emptyRequest(w, r, familyCore) {
		return
	}
	s.mu.Lock()
	j := s.batches[id]
	var err error
	if j != nil && !j.terminal() {
		err = s.finishLocked(j, Cancel)
	}
	terminal := j != nil && err == nil && j.state != batchCancelled
	s.mu.Unlock()
	switch {
	case j == nil:
		respondError(w, familyCore, http.StatusNotFound, "batch batches/"+id+" not found")
	case err != nil:
		respondError(w, familyCore, http.StatusInternalServerError, err.Error())
	case terminal:
		respondStatus(w, familyCore, http.StatusBadRequest, statusFailedPrecondition, "batch batches/"+id+" has already ended")
	default:
		respondJSON(w, http.StatusOK, map[string]any{})
	}
}

// deleteBatch serves DELETE /v1beta/batches/{id}. A batch still pending is
// deleted too, and will never send an event.
func (s *Server) deleteBatch(w http.ResponseWriter, r *http.Request, id string) {
	if !emptyRequest(w, r, familyCore) {
		return
	}
	s.mu.Lock()
	j := s.batches[id]
	if j != nil {
		delete(s.batches, id)
		s.jobOrder = slices.DeleteFunc(s.jobOrder, func(x *fakeJob) bool { return x == j })
		if j.timer != nil {
			j.timer.Stop()
		}
	}
	s.mu.Unlock()
	if j == nil {
		respondError(w, familyCore, http.StatusNotFound, "batch batches/"+id+" not found")
		return
	}
	respondJSON(w, http.StatusOK, map[string]any{})
}
