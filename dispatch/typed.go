package dispatch

import (
	"context"
	"fmt"

	"google.golang.org/genai"
	"google.golang.org/genai/interactions/models/interactions"
	"google.golang.org/genai/interactions/models/operations"

	"github.com/genaihook/genaihook/webhook"
)

// Webhook payloads are thin (an id and pointers); these waits fetch the
// job through client once its event arrives and return genai's own type.

// WaitBatch waits for the batch name ("batches/…", as Batches.Create
// returned it) and returns it as Batches.Get reports it. When the batch
// failed, expired or was cancelled it returns the job and a *JobError
// carrying Gemini's error_code and error_message. It returns Wait's
// errors, or Batches.Get's.
func WaitBatch(ctx context.Context, d *Dispatcher, client *genai.Client, name string) (*genai.BatchJob, error) {
	ev, err := d.Wait(ctx, name)
	if err != nil {
		return nil, err
	}
	job, err := client.Batches.Get(ctx, batchName(name), nil)
	if err != nil {
		return nil, fmt.Errorf("dispatch: get batch %s: %w", name, err)
	}
	return job, EventError(ev)
}

// WaitVideo waits for the video generation operation op (as
// Models.GenerateVideos returned it) and returns it as
// Operations.GetVideosOperation reports it, with its videos. When
// generation failed it returns the operation and a *JobError. It returns
// Wait's errors, or GetVideosOperation's.
func WaitVideo(ctx context.Context, d *Dispatcher, client *genai.Client, op *genai.GenerateVideosOperation) (*genai.GenerateVideosOperation, error) {
	if op == nil {
		return nil, ErrInvalidID
	}
	ev, err := d.Wait(ctx, op.Name)
	if err != nil {
		return nil, err
	}
	got, err := client.Operations.GetVideosOperation(ctx, op, nil)
	if err != nil {
		return nil, fmt.Errorf("dispatch: get video operation %s: %w", op.Name, err)
	}
	if jerr := EventError(ev); jerr != nil {
		return got, jerr
	}
	if got.Error != nil {
		// The event said generated, the operation says otherwise: trust
		// the operation.
		return got, EventError(videoEvent(op.Name, got))
	}
	return got, nil
}

// WaitInteraction waits for the background interaction id and returns it
// as Interactions.Get reports it. An interaction that requires action is
// returned without error (check its Status); wait again after acting to get
// the next event. When the interaction failed or was cancelled it returns
// the interaction and a *JobError. opts are passed to Interactions.Get. It
// returns Wait's errors, or Interactions.Get's.
func WaitInteraction(ctx context.Context, d *Dispatcher, client *genai.Client, id string, opts ...operations.Option) (*interactions.Interaction, error) {
	ev, err := d.Wait(ctx, id)
	if err != nil {
		return nil, err
	}
	res, err := client.Interactions.Get(ctx, operations.GetInteractionByIDRequest{ID: id}, opts...)
	if err != nil {
		return nil, fmt.Errorf("dispatch: get interaction %s: %w", id, err)
	}
	if res == nil || res.Interaction == nil {
		return nil, fmt.Errorf("dispatch: get interaction %s: response has no interaction", id)
	}
	return res.Interaction, EventError(ev)
}

// needsAction reports whether ev only paused its job.
func needsAction(ev *webhook.Event) bool { return outcomeOf(ev) == webhook.OutcomeNeedsAction }
