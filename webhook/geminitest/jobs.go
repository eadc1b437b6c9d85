package geminitest

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/genaihook/genaihook/webhook"
	"github.com/genaihook/genaihook/webhook/webhooktest"
)

// Outcome is how a test ends a job on a Server: Succeed, Fail(code, msg),
// Expire, Cancel, or for an interaction RequireAction. The zero value is
// Succeed.
type Outcome struct {
	kind    outcomeKind
	code    int
	message string
}

type outcomeKind uint8

const (
	outcomeSucceed outcomeKind = iota
	outcomeFail
	outcomeExpire
	outcomeCancel
	outcomeRequireAction
)

// The outcomes without parameters; see Fail for the other one.
var (
	// Succeed completes a job: a batch becomes BATCH_STATE_SUCCEEDED
	// (batch.succeeded), a video operation done with one generated video
	// per requested sample (video.generated), an interaction completed
	// (interaction.completed) with a text output, or for a video
	// interaction a video output (see Server.Trigger and the interactions
	// section of the package documentation).
	Succeed = Outcome{kind: outcomeSucceed}
	// Expire expires a batch (BATCH_STATE_EXPIRED, batch.expired). It does
	// not apply to videos or interactions.
	Expire = Outcome{kind: outcomeExpire}
	// Cancel cancels a batch (BATCH_STATE_CANCELLED, batch.cancelled) or an
	// interaction (cancelled, interaction.cancelled), as the cancel
	// endpoints do. It does not apply to videos, which have no cancel call
	// on the Gemini Developer API.
	Cancel = Outcome{kind: outcomeCancel}
	// RequireAction pauses an interaction (requires_action,
	// interaction.requires_action); it is not terminal, so the interaction
	// can be finished again afterwards. It applies to interactions only.
	RequireAction = Outcome{kind: outcomeRequireAction}
)

// Fail returns the outcome that fails a job with a google.rpc.Status code
// and message: a batch becomes BATCH_STATE_FAILED with error {code,
// message} (batch.failed with data.error_code and data.error_message), an
// interaction failed (interaction.failed, likewise), a video operation
// done with error {code, message}. Gemini documents no event for a failed
// video, so none is sent: only polling sees it.
func Fail(code int, message string) Outcome {
	return Outcome{kind: outcomeFail, code: code, message: message}
}

// String returns the outcome's name, with code and message for Fail.
func (o Outcome) String() string {
	switch o.kind {
	case outcomeFail:
		return fmt.Sprintf("Fail(%d, %q)", o.code, o.message)
	case outcomeExpire:
		return "Expire"
	case outcomeCancel:
		return "Cancel"
	case outcomeRequireAction:
		return "RequireAction"
	default:
		return "Succeed"
	}
}

type jobKind uint8

const (
	kindBatch jobKind = iota
	kindVideo
	kindInteraction
)

func (k jobKind) String() string {
	switch k {
	case kindBatch:
		return "batch"
	case kindVideo:
		return "video operation"
	default:
		return "interaction"
	}
}

// applies reports whether o can end a job of kind k.
func (o Outcome) applies(k jobKind) bool {
	switch o.kind {
	case outcomeSucceed, outcomeFail:
		return true
	case outcomeExpire:
		return k == kindBatch
	case outcomeCancel:
		return k != kindVideo
	default:
		return k == kindInteraction
	}
}

// fakeHookConfig is a job's webhook_config.
type fakeHookConfig struct {
	uris     []string
	metadata map[string]any
}

// fakeJob is a batch, a video operation or an interaction.
type fakeJob struct {
	kind  jobKind
	seq   uint64 // creation order, for page tokens
	name  string // batches/{id}, models/{m}/operations/{op}, or the interaction id
	short string // {id}, {op}, or the interaction id
	model string // batches and videos: "models/…"; interactions: as sent
	agent string // interactions only

	displayName string
	state       string // batches: BATCH_STATE_*; interactions: status; videos: "" or "done"
	created     time.Time
	updated     time.Time
	ended       time.Time
	hook        *fakeHookConfig

	errCode int
	errMsg  string

	// batches
	inputFile string
	requests  []map[string]any // metadata of each inlined request
	output    string           // responses file name, file batches

	// videos
	samples []string // generated file names

	// interactions
	video       bool   // asked for a video output; samples then holds its file
	videoInline bool   // asked for it inline, not by URI
	serviceTier string // as sent, echoed

	timer *time.Timer
}

const (
	batchPending   = "BATCH_STATE_PENDING"
	batchSucceeded = "BATCH_STATE_SUCCEEDED"
	batchFailed    = "BATCH_STATE_FAILED"
	batchCancelled = "BATCH_STATE_CANCELLED"
	batchExpired   = "BATCH_STATE_EXPIRED"

	statusInProgress     = "in_progress"
	statusRequiresAction = "requires_action"
	statusCompleted      = "completed"
	statusFailed         = "failed"
	statusCancelled      = "cancelled"

	videoDone = "done"
)

// terminal reports whether the job can change state no more.
func (j *fakeJob) terminal() bool {
	switch j.kind {
	case kindBatch:
		return j.state != batchPending
	case kindVideo:
		return j.state == videoDone
	default:
		return j.state != statusInProgress && j.state != statusRequiresAction
	}
}

func (j *fakeJob) metadata() map[string]any {
	if j.hook == nil {
		return nil
	}
	return j.hook.metadata
}

// Finish ends the job named id with outcome o, as Gemini would when the
// work is done, and sends its event (see Server). id is any form the SDK or
// an event uses: "batches/{id}" or "{id}" for a batch, the full
// "models/{m}/operations/{op}" name, "operations/{op}" or "{op}" for a
// video, the interaction id. Finish updates what GET returns before it
// returns; the deliveries run in the background (see WaitIdle).
//
// Finish returns an error if no job has that id, if the job has already
// ended (an interaction in requires_action has not), if o does not apply
// to the job's kind (see the Outcome values), or if the server is closed.
func (s *Server) Finish(id string, o Outcome) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errServerClosed
	}
	j := s.lookupLocked(id)
	if j == nil {
		return fmt.Errorf("geminitest: Finish: no job %q", id)
	}
	return s.finishLocked(j, o)
}

// lookupLocked finds a job by any of its id forms. s.mu must be held.
func (s *Server) lookupLocked(id string) *fakeJob {
	if rest, ok := strings.CutPrefix(id, "batches/"); ok {
		return s.batches[rest]
	}
	if j := s.videos[id]; j != nil {
		return j
	}
	if j := s.interactions[strings.TrimPrefix(id, "interactions/")]; j != nil {
		return j
	}
	if j := s.batches[id]; j != nil {
		return j
	}
	op := strings.TrimPrefix(id, "operations/")
	for _, j := range s.videos {
		if j.short == op {
			return j
		}
	}
	return nil
}

var errJobEnded = errors.New("job has already ended")

// finishLocked applies o to j, then emits the event. s.mu must be held.
func (s *Server) finishLocked(j *fakeJob, o Outcome) error {
	if j.terminal() {
		return fmt.Errorf("geminitest: Finish %s %s: %w (%s)", j.kind, j.name, errJobEnded, j.state)
	}
	if !o.applies(j.kind) {
		return fmt.Errorf("geminitest: Finish %s %s: outcome %v does not apply to a %s", j.kind, j.name, o, j.kind)
	}
	now := s.now()
	j.updated = now
	var p webhooktest.Payload
	emit := true
	switch j.kind {
	case kindBatch:
		p = s.finishBatchLocked(j, o)
	case kindVideo:
		p, emit = s.finishVideoLocked(j, o)
	default:
		p = s.finishInteractionLocked(j, o)
	}
	if j.terminal() {
		j.ended = now
		if j.timer != nil {
			j.timer.Stop()
		}
	}
	if emit {
		p.Timestamp = now.UTC().Truncate(time.Second)
		p.UserMetadata = j.metadata()
		s.emitLocked(p, j.hook)
	}
	return nil
}

// startTimerLocked arms AutoFinish for a new job. s.mu must be held.
func (s *Server) startTimerLocked(j *fakeJob) {
	if s.AutoFinish <= 0 || s.closed {
		return
	}
	j.timer = time.AfterFunc(s.AutoFinish, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed || j.terminal() || s.lookupLocked(j.name) != j {
			return
		}
		o := s.AutoOutcome
		if !o.applies(j.kind) {
			o = Succeed
		}
		_ = s.finishLocked(j, o) // cannot fail: checked above
	})
}

func (s *Server) allJobsLocked() []*fakeJob {
	var all []*fakeJob
	for _, m := range []map[string]*fakeJob{s.batches, s.videos, s.interactions} {
		for _, j := range m {
			all = append(all, j)
		}
	}
	return all
}

// event returns the payload of an event of type t about the job id, with
// the further data fields kv, given as name, value pairs.
func event(t webhook.EventType, id string, kv ...any) webhooktest.Payload {
	p := webhooktest.NewPayload(t, id)
	for i := 0; i+1 < len(kv); i += 2 {
		p.Data[kv[i].(string)] = kv[i+1]
	}
	return p
}

// nextSeqLocked returns the creation sequence number of a new resource.
// s.mu must be held.
func (s *Server) nextSeqLocked() uint64 {
	s.seq++
	return s.seq
}

func (j *fakeJob) order() uint64 { return j.seq }
