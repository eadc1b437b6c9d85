package dispatch

import (
	"context"
	"fmt"
	"time"

	"google.golang.org/genai"
	"google.golang.org/genai/interactions/models/interactions"
	"google.golang.org/genai/interactions/models/operations"

	"github.com/genaihook/genaihook/webhook"
)

// Webhook payloads are thin (an id and pointers); these waits fetch the
// job through client once its event arrives and return genai's own type.
// The job read right after its event can still show the state before it
// (the API's reads may lag the event), so a read that does not yet show an
// outcome is repeated after 1, 2 and 4 s: confirmReads reads at most.

// confirmDelays are the waits before each repeated read.
var confirmDelays = [...]time.Duration{time.Second, 2 * time.Second, 4 * time.Second}

// confirmReads is how many reads a typed wait makes at most.
const confirmReads = len(confirmDelays) + 1

// WaitBatch waits for the batch name ("batches/…", as Batches.Create
// returned it) and returns it as Batches.Get reports it. When the batch
// failed, expired or was cancelled it returns the job and a *JobError
// carrying Gemini's error_code and error_message; when the job's state
// contradicts its event, the state wins.
//
// It returns Wait's errors, or Batches.Get's; or the job as last read and
// an error saying the API does not confirm the event when the job is
// still not in a terminal state after 4 reads over 7 s; or the job as last
// read and ctx's error if ctx ends between these reads.
func WaitBatch(ctx context.Context, d *Dispatcher, client *genai.Client, name string) (*genai.BatchJob, error) {
	if fam := familyOf(name); fam != webhook.FamilyBatch && fam != webhook.FamilyInteraction {
		return nil, ErrInvalidID // a bare id is a batch's short form here
	}
	name = batchName(name) // the form Batches.Get takes, for the wait and its poller too
	ev, err := d.Wait(ctx, name)
	if err != nil {
		return nil, err
	}
	job, got, err := confirm(ctx, d, func(ctx context.Context) (*genai.BatchJob, *webhook.Event, error) {
		job, err := client.Batches.Get(ctx, batchName(name), nil)
		if err != nil {
			return nil, nil, fmt.Errorf("dispatch: get batch %s: %w", name, err)
		}
		return job, batchEvent(name, job), nil
	})
	if err != nil {
		return job, err
	}
	if got == nil {
		return job, unconfirmed(ev, name, "state "+string(job.State))
	}
	return job, outcomeError(ev, got)
}

// WaitVideo waits for the video generation operation op (as
// Models.GenerateVideos returned it) and returns it as
// Operations.GetVideosOperation reports it, with its videos. When
// generation failed it returns the operation and a *JobError (errors.Is
// ErrJobFailed), also when the operation is done but holds no video: every
// one was filtered by safety checks (the error's message gives Gemini's
// reasons) or it has neither a response nor an error.
//
// It returns ErrInvalidID for a nil op, Wait's errors, or
// GetVideosOperation's; or the operation as last read and an error saying
// the API does not confirm the event when it is still not done after 4
// reads over 7 s; or the operation as last read and ctx's error if ctx ends
// between these reads.
func WaitVideo(ctx context.Context, d *Dispatcher, client *genai.Client, op *genai.GenerateVideosOperation) (*genai.GenerateVideosOperation, error) {
	if op == nil {
		return nil, ErrInvalidID
	}
	ev, err := d.Wait(ctx, op.Name)
	if err != nil {
		return nil, err
	}
	got, gev, err := confirm(ctx, d, func(ctx context.Context) (*genai.GenerateVideosOperation, *webhook.Event, error) {
		got, err := client.Operations.GetVideosOperation(ctx, op, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("dispatch: get video operation %s: %w", op.Name, err)
		}
		return got, videoEvent(op.Name, got), nil
	})
	if err != nil {
		return got, err
	}
	if gev == nil {
		return got, unconfirmed(ev, op.Name, "operation not done")
	}
	return got, outcomeError(ev, gev)
}

// WaitInteraction waits for the background interaction id and returns it
// as Interactions.Get reports it. An interaction that requires action is
// returned without error (check its Status); wait again after acting to get
// the next event. When the interaction failed or was cancelled it returns
// the interaction and a *JobError; when its status contradicts its event,
// the status wins. opts are passed to Interactions.Get.
//
// It returns Wait's errors, or Interactions.Get's; or the interaction as
// last read and an error saying the API does not confirm the event when
// its status is still neither terminal nor requires_action after 4 reads
// over 7 s; or the interaction as last read and ctx's error if ctx ends
// between these reads.
func WaitInteraction(ctx context.Context, d *Dispatcher, client *genai.Client, id string, opts ...operations.Option) (*interactions.Interaction, error) {
	ev, err := d.Wait(ctx, id)
	if err != nil {
		return nil, err
	}
	in, got, err := confirm(ctx, d, func(ctx context.Context) (*interactions.Interaction, *webhook.Event, error) {
		res, err := client.Interactions.Get(ctx, operations.GetInteractionByIDRequest{ID: id}, opts...)
		if err != nil {
			return nil, nil, fmt.Errorf("dispatch: get interaction %s: %w", id, err)
		}
		if res == nil || res.Interaction == nil {
			return nil, nil, fmt.Errorf("dispatch: get interaction %s: response has no interaction", id)
		}
		return res.Interaction, interactionEvent(id, res.Interaction), nil
	})
	if err != nil {
		return in, err
	}
	if got == nil {
		return in, unconfirmed(ev, id, "status "+string(in.Status))
	}
	return in, outcomeError(ev, got)
}

// confirm reads a job until the event its state amounts to is not nil,
// confirmReads times at most, and returns the last read with that event
// (nil if the job never showed an outcome). It returns the last read and
// ctx's error if ctx ends while it waits to read again.
func confirm[T any](ctx context.Context, d *Dispatcher, read func(context.Context) (T, *webhook.Event, error)) (T, *webhook.Event, error) {
	job, ev, err := read(ctx)
	for _, wait := range confirmDelays {
		if err != nil || ev != nil {
			break
		}
		if err = d.sleep(ctx, wait); err != nil {
			break
		}
		job, ev, err = read(ctx)
	}
	return job, ev, err
}

// sleep waits for dur on the Dispatcher's clock, or until ctx ends.
func (d *Dispatcher) sleep(ctx context.Context, dur time.Duration) error {
	done := make(chan struct{})
	stop := d.cfg.afterFunc(dur, func() { close(done) })
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		stop()
		return ctx.Err()
	}
}

// unconfirmed is the error of a typed wait whose event the job read back
// does not confirm: what it shows is the state of a running job.
func unconfirmed(ev *webhook.Event, id, state string) error {
	return fmt.Errorf("dispatch: %s: the API does not confirm event %s: %s after %d reads over %v",
		id, ev.Type, state, confirmReads, confirmSpan())
}

func confirmSpan() time.Duration {
	var s time.Duration
	for _, w := range confirmDelays {
		s += w
	}
	return s
}

// outcomeError returns the error of a typed wait whose event was ev and
// whose job, read back, amounts to got: ev's, with the details Gemini put
// in it, when both tell the same outcome, and got's otherwise (the API is
// the truth), marked Polled as ev was.
func outcomeError(ev, got *webhook.Event) error {
	if outcomeOf(ev) == outcomeOf(got) {
		return EventError(ev)
	}
	err := EventError(got)
	if je, ok := err.(*JobError); ok {
		je.Polled = ev.Polled
	}
	return err
}

// needsAction reports whether ev only paused its job.
func needsAction(ev *webhook.Event) bool { return outcomeOf(ev) == webhook.OutcomeNeedsAction }
