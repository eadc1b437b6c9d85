package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genai"
	"google.golang.org/genai/interactions/models/apierrors"
	"google.golang.org/genai/interactions/models/interactions"
	"google.golang.org/genai/interactions/models/operations"
	"google.golang.org/genai/interactions/retry"

	"github.com/genaihook/genaihook/webhook"
)

// poller reads a job's state. Poll returns the event the job's terminal
// (or requires_action) state amounts to, nil and nil while the job is
// still running, or an error, which the Dispatcher logs and retries on its
// backoff schedule. genaiPoller is the one implementation; tests script
// others.
//
// An error is never fatal at once. A genai error with status 404 or 403
// (genai.APIError, or an error of the Interactions API in package
// google.golang.org/genai/interactions/models/apierrors), or one wrapping
// ErrJobNotFound, counts towards ending the job's waits with
// ErrJobNotFound. A 429 or 503 delays the next read to the time its
// Retry-After header names (at most an hour), where the SDK exposes the
// header: the Interactions API does; genai.APIError does not, so for
// batches and videos the RetryInfo detail of the error body (its
// retryDelay) is used instead, when Gemini sends one.
type poller interface {
	Poll(ctx context.Context, id string) (*webhook.Event, error)
}

// genaiPoller reads jobs through a genai client, choosing the call from
// the form of the id (as genai returned it):
//
//   - "batches/{id}": Batches.Get; terminal by State (the SDK drops done and
//     error for batches): JOB_STATE_SUCCEEDED → batch.succeeded (also the
//     Vertex-only PARTIALLY_SUCCEEDED), FAILED → batch.failed, EXPIRED →
//     batch.expired, CANCELLED → batch.cancelled.
//   - "models/{m}/operations/{op}": Operations.GetVideosOperation; terminal
//     when Done: video.generated with the first video's URI in
//     data.video_uri, or, when the operation has an error or holds no
//     video, video.generated with data.error_code and data.error_message
//     set (Gemini documents no failure event for videos). An operation
//     holds no video when safety checks filtered every one (the message is
//     "all videos were filtered by safety checks: " and the reasons Gemini
//     gave) or when it is done with neither a response nor an error, which
//     the API has been seen to answer (python-genai issue 1560).
//   - a bare id: Interactions.Get, with the SDK's own retries off (the
//     Dispatcher retries): completed, failed, cancelled and requires_action
//     map to their events; incomplete and budget_exceeded, which have no
//     event, become interaction.failed with error_code set to the status.
//
// It is also the batchLister of the sweeps (Batches.List, see
// batchSweepInterval), whose batches map to events as Batches.Get's do.
//
// The event has Polled set, Job the job read, data.id the id read, its
// timestamp the job's end or update time (zero when the job gives none),
// error fields from the job, and Raw a JSON envelope of the same shape as a
// delivery's; a requires_action has as WebhookID the fingerprint of its
// pause (see Supersedes).
type genaiPoller struct {
	client *genai.Client
}

func (p *genaiPoller) Poll(ctx context.Context, id string) (*webhook.Event, error) {
	switch familyOf(id) {
	case webhook.FamilyBatch:
		return p.pollBatch(ctx, id)
	case webhook.FamilyVideo:
		return p.pollVideo(ctx, id)
	case webhook.FamilyInteraction:
		return p.pollInteraction(ctx, id)
	}
	return nil, fmt.Errorf("dispatch: cannot tell the job family of id %q", id)
}

// listBatches lists the project's batches through Batches.List (see
// batchLister).
func (p *genaiPoller) listBatches(ctx context.Context, pageSize int32, token string) ([]*genai.BatchJob, string, error) {
	page, err := p.client.Batches.List(ctx, &genai.ListBatchJobsConfig{PageSize: pageSize, PageToken: token})
	if err != nil {
		return nil, "", fmt.Errorf("dispatch: list batches: %w", err)
	}
	return page.Items, page.NextPageToken, nil
}

func (p *genaiPoller) pollBatch(ctx context.Context, id string) (*webhook.Event, error) {
	job, err := p.client.Batches.Get(ctx, batchName(id), nil)
	if err != nil {
		return nil, fmt.Errorf("dispatch: poll batch %s: %w", id, err)
	}
	return batchEvent(id, job), nil
}

// batchEvent maps a batch job's state to its event, nil when not terminal.
func batchEvent(id string, job *genai.BatchJob) *webhook.Event {
	var t webhook.EventType
	switch job.State {
	case genai.JobStateSucceeded, genai.JobStatePartiallySucceeded:
		t = webhook.BatchSucceeded
	case genai.JobStateFailed:
		t = webhook.BatchFailed
	case genai.JobStateExpired:
		t = webhook.BatchExpired
	case genai.JobStateCancelled:
		t = webhook.BatchCancelled
	default:
		return nil
	}
	data := webhook.Data{ID: id}
	if job.Error != nil {
		if job.Error.Code != nil {
			data.ErrorCode = webhook.ErrorCode(fmt.Sprint(*job.Error.Code))
		}
		data.ErrorMessage = job.Error.Message
	} else if t == webhook.BatchFailed {
		data.ErrorMessage = "batch job state " + string(job.State)
	}
	if job.Dest != nil {
		data.OutputFileURI = job.Dest.FileName
	}
	return polledEvent(t, firstTime(job.EndTime, job.UpdateTime), data, job)
}

func (p *genaiPoller) pollVideo(ctx context.Context, id string) (*webhook.Event, error) {
	op, err := p.client.Operations.GetVideosOperation(ctx, &genai.GenerateVideosOperation{Name: id}, nil)
	if err != nil {
		return nil, fmt.Errorf("dispatch: poll video operation %s: %w", id, err)
	}
	return videoEvent(id, op), nil
}

// videoEvent maps a video operation to its event, nil when not done. A done
// operation without a video is a failure: the event has error_message set.
func videoEvent(id string, op *genai.GenerateVideosOperation) *webhook.Event {
	if !op.Done {
		return nil
	}
	data := webhook.Data{ID: id}
	if op.Error != nil {
		if code := op.Error["code"]; code != nil {
			data.ErrorCode = webhook.ErrorCode(fmt.Sprint(code))
		}
		msg, _ := op.Error["message"].(string)
		if msg == "" {
			msg = "video generation failed"
		}
		data.ErrorMessage = msg
	} else if uri, ok := firstVideo(op.Response); ok {
		data.VideoURI = uri
	} else {
		data.ErrorMessage = noVideoMessage(op.Response)
	}
	return polledEvent(webhook.VideoGenerated, time.Time{}, data, op)
}

// firstVideo returns the URI of r's first video (empty for one returned
// inline, as on Vertex), and whether r holds a video at all.
func firstVideo(r *genai.GenerateVideosResponse) (string, bool) {
	if r == nil {
		return "", false
	}
	found := false
	for _, v := range r.GeneratedVideos {
		if v == nil || v.Video == nil {
			continue
		}
		if v.Video.URI != "" {
			return v.Video.URI, true
		}
		found = found || len(v.Video.VideoBytes) > 0
	}
	return "", found
}

// noVideoMessage says why a done operation whose response is r holds no
// video.
func noVideoMessage(r *genai.GenerateVideosResponse) string {
	switch {
	case r == nil:
		return "video operation is done with neither a response nor an error"
	case len(r.RAIMediaFilteredReasons) > 0:
		return "all videos were filtered by safety checks: " + strings.Join(r.RAIMediaFilteredReasons, "; ")
	case r.RAIMediaFilteredCount > 0:
		return "all videos were filtered by safety checks"
	}
	return "video operation is done with no video and no error"
}

func (p *genaiPoller) pollInteraction(ctx context.Context, id string) (*webhook.Event, error) {
	res, err := p.client.Interactions.Get(ctx, operations.GetInteractionByIDRequest{ID: id},
		operations.WithRetries(retry.Config{Strategy: "none"}))
	if err != nil {
		return nil, fmt.Errorf("dispatch: poll interaction %s: %w", id, err)
	}
	if res == nil || res.Interaction == nil {
		return nil, fmt.Errorf("dispatch: poll interaction %s: response has no interaction", id)
	}
	return interactionEvent(id, res.Interaction), nil
}

func interactionEvent(id string, in *interactions.Interaction) *webhook.Event {
	data := webhook.Data{ID: id}
	var t webhook.EventType
	switch in.Status {
	case interactions.InteractionStatusCompleted:
		t = webhook.InteractionCompleted
	case interactions.InteractionStatusRequiresAction:
		t = webhook.InteractionRequiresAction
	case interactions.InteractionStatusCancelled:
		t = webhook.InteractionCancelled
	case interactions.InteractionStatusFailed:
		t = webhook.InteractionFailed
		if len(in.Errors) > 0 {
			e := in.Errors[0]
			if e.Code != nil {
				data.ErrorCode = webhook.ErrorCode(*e.Code)
			}
			if e.Message != nil {
				data.ErrorMessage = *e.Message
			}
		}
	case interactions.InteractionStatusIncomplete, interactions.InteractionStatusBudgetExceeded:
		t = webhook.InteractionFailed
		data.ErrorCode = webhook.ErrorCode(in.Status)
		data.ErrorMessage = "interaction ended with status " + string(in.Status)
	default:
		return nil
	}
	var ts time.Time
	if in.Updated != nil {
		ts, _ = time.Parse(time.RFC3339Nano, *in.Updated)
	}
	ev := polledEvent(t, ts, data, in)
	if t == webhook.InteractionRequiresAction {
		ev.WebhookID = pauseFingerprint(in)
	}
	return ev
}

// pauseFingerprint names the pause an interaction is in by what the app
// must answer: its step count and the ids of its function calls, so that
// two pauses read in the same second are told apart and one pause read
// twice is not (see Supersedes).
func pauseFingerprint(in *interactions.Interaction) string {
	var b strings.Builder
	b.WriteString(readPausePrefix)
	b.WriteString(strconv.Itoa(len(in.Steps)))
	for _, st := range in.Steps {
		if st.FunctionCallStep != nil {
			b.WriteByte(':')
			b.WriteString(st.FunctionCallStep.ID)
		}
	}
	return b.String()
}

func firstTime(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

// polledEvent builds the Event a delivery of t would have been. A zero ts is
// left for the Dispatcher to fill from its clock.
func polledEvent(t webhook.EventType, ts time.Time, data webhook.Data, job any) *webhook.Event {
	ev := &webhook.Event{Type: t, Version: "v1", Timestamp: ts, Data: data, Polled: true, Job: job}
	ev.Raw = envelopeJSON(ev)
	return ev
}

func envelopeJSON(ev *webhook.Event) json.RawMessage {
	env := struct {
		Type      webhook.EventType `json:"type"`
		Version   string            `json:"version"`
		Timestamp string            `json:"timestamp,omitempty"`
		Data      webhook.Data      `json:"data"`
	}{Type: ev.Type, Version: ev.Version, Data: ev.Data}
	if !ev.Timestamp.IsZero() {
		env.Timestamp = ev.Timestamp.UTC().Format(time.RFC3339Nano)
	}
	b, err := json.Marshal(env)
	if err != nil {
		return nil
	}
	return b
}

// pollStatus is what the schedule needs to know of a failed poll.
type pollStatus struct {
	// notFound: the API says the job does not exist or is not ours (404,
	// 403), or a custom Poller said so with ErrJobNotFound.
	notFound bool
	// retryAfter is the least wait before the next poll that a 429 or 503
	// asked for; 0 when none.
	retryAfter time.Duration
}

// maxRetryAfter bounds the wait a Retry-After can impose, so that a bogus
// one cannot stop a job's polls for days.
const maxRetryAfter = time.Hour

// classifyPollError reads err's chain for the HTTP status and retry hint
// of the genai error behind it. now dates a Retry-After given as an HTTP
// date.
func classifyPollError(err error, now time.Time) pollStatus {
	if errors.Is(err, ErrJobNotFound) {
		return pollStatus{notFound: true}
	}
	code, header, details := apiErrorOf(err)
	var st pollStatus
	switch code {
	case http.StatusNotFound, http.StatusForbidden:
		st.notFound = true
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		d, ok := retryAfterHeader(header, now)
		if !ok {
			d = retryInfoDelay(details)
		}
		st.retryAfter = min(max(d, 0), maxRetryAfter)
	}
	return st
}

// apiErrorOf returns the HTTP status of the genai error in err's chain (0
// when there is none), with the response headers where the SDK keeps them
// and the error details where the body had them.
func apiErrorOf(err error) (int, http.Header, []map[string]any) {
	var core genai.APIError
	if errors.As(err, &core) {
		// The core SDK keeps no headers (newAPIError reads only the body).
		return core.Code, nil, core.Details
	}
	var (
		ie   *apierrors.APIError
		ice  *apierrors.GetInteractionByIDClientError
		ise  *apierrors.GetInteractionByIDServerError
		irve *apierrors.ResponseValidationError
	)
	switch {
	case errors.As(err, &ie):
		return ie.StatusCode, headerOf(ie.RawResponse), nil
	case errors.As(err, &ice):
		return statusOf(ice.HTTPMeta.Response), headerOf(ice.HTTPMeta.Response), nil
	case errors.As(err, &ise):
		return statusOf(ise.HTTPMeta.Response), headerOf(ise.HTTPMeta.Response), nil
	case errors.As(err, &irve):
		return irve.StatusCode, headerOf(irve.RawResponse), nil
	}
	return 0, nil, nil
}

func statusOf(r *http.Response) int {
	if r == nil {
		return 0
	}
	return r.StatusCode
}

func headerOf(r *http.Response) http.Header {
	if r == nil {
		return nil
	}
	return r.Header
}

// retryAfterHeader parses a Retry-After header, in seconds or as an HTTP
// date (RFC 9110, section 10.2.3).
func retryAfterHeader(h http.Header, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(min(n, int64(maxRetryAfter/time.Second))) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return t.Sub(now), true
	}
	return 0, false
}

// retryInfoDelay returns the retryDelay of a google.rpc.RetryInfo among an
// error's details ("30s" in JSON), 0 when there is none.
func retryInfoDelay(details []map[string]any) time.Duration {
	for _, d := range details {
		if t, _ := d["@type"].(string); t != "type.googleapis.com/google.rpc.RetryInfo" {
			continue
		}
		s, _ := d["retryDelay"].(string)
		if v, err := time.ParseDuration(s); err == nil {
			return v
		}
	}
	return 0
}
