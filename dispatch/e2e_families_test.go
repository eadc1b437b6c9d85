package dispatch_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/genai"
	"google.golang.org/genai/interactions/models/interactions"
	"google.golang.org/genai/interactions/models/operations"

	"github.com/genaihook/genaihook/dispatch"
	"github.com/genaihook/genaihook/webhook"
	"github.com/genaihook/genaihook/webhook/geminitest"
)

// TestEndToEndEveryOutcome takes a job of each family to each of its
// outcomes through the real genai client, the fake Gemini, the README's
// handler and Wait, and checks the event, the error kind with Gemini's
// code and message, and the job read back in genai's own type.
//
// Jobs whose outcome Gemini pushes are awaited by a Dispatcher with the
// default poll schedule, whose first read comes a minute after the wait
// began: they resolve through the delivery, confirmed by one read. A
// failed video, for which Gemini sends no event, is awaited by one with a
// short schedule: it resolves by polling.
func TestEndToEndEveryOutcome(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	g := newFakeGemini(t, nil)
	push, _ := newReceiver(t, g.JWKSURL(), g.client)
	poll, _ := newReceiver(t, g.JWKSURL(), g.client,
		dispatch.WithPollSchedule(20*time.Millisecond, 20*time.Millisecond, 100*time.Millisecond))

	batch := func(d *dispatch.Dispatcher) (string, error) {
		job, err := createBatch(ctx, g.client, d.WebhookConfig())
		if err != nil {
			return "", err
		}
		return job.Name, nil
	}
	video := func(d *dispatch.Dispatcher) (string, error) {
		op, err := createVideo(ctx, g.client, d.WebhookConfig())
		if err != nil {
			return "", err
		}
		return op.Name, nil
	}
	research := func(d *dispatch.Dispatcher) (string, error) {
		return createResearch(ctx, g.client, d.InteractionWebhookConfig())
	}
	finish := func(o geminitest.Outcome) func(*testing.T, string) {
		return func(t *testing.T, id string) { g.finish(t, id, o) }
	}
	// Videos done without a video: the fake generates one (and sends
	// video.generated), and its answer to the operation's read is changed
	// into Gemini's: edit changes the response, or a nil edit drops it.
	withoutVideo := func(edit func(response map[string]any)) func(*testing.T, string) {
		return func(t *testing.T, id string) {
			g.api.answer(id, func(op map[string]any) {
				r, ok := op["response"].(map[string]any)
				switch {
				case !ok:
				case edit == nil:
					delete(op, "response")
				default:
					edit(r)
				}
			})
			g.finish(t, id, geminitest.Succeed)
		}
	}
	batchState := func(want genai.JobState) func(*testing.T, any) {
		return func(t *testing.T, job any) {
			if b, ok := job.(*genai.BatchJob); !ok || b.State != want {
				t.Errorf("Job = %#v, want a *genai.BatchJob in state %s", job, want)
			}
		}
	}
	videos := func(n int) func(*testing.T, any) {
		return func(t *testing.T, job any) {
			op, ok := job.(*genai.GenerateVideosOperation)
			if !ok || !op.Done {
				t.Fatalf("Job = %#v, want a done *genai.GenerateVideosOperation", job)
			}
			got := 0
			if op.Response != nil {
				got = len(op.Response.GeneratedVideos)
			}
			if got != n {
				t.Errorf("%d generated videos, want %d", got, n)
			}
		}
	}
	status := func(want interactions.InteractionStatus) func(*testing.T, any) {
		return func(t *testing.T, job any) {
			if it, ok := job.(*interactions.Interaction); !ok || it.Status != want {
				t.Errorf("Job = %#v, want an *interactions.Interaction with status %s", job, want)
			}
		}
	}

	tests := []struct {
		name    string
		d       *dispatch.Dispatcher
		start   func(*dispatch.Dispatcher) (string, error)
		end     func(*testing.T, string)
		want    webhook.EventType
		kind    error // nil for success
		code    string
		message string
		job     func(*testing.T, any)
	}{
		{"batch succeeded", push, batch, finish(geminitest.Succeed), webhook.BatchSucceeded, nil, "", "", batchState(genai.JobStateSucceeded)},
		{"batch failed", push, batch, finish(geminitest.Fail(13, "internal")), webhook.BatchFailed, dispatch.ErrJobFailed, "13", "internal", batchState(genai.JobStateFailed)},
		{"batch expired", push, batch, finish(geminitest.Expire), webhook.BatchExpired, dispatch.ErrJobExpired, "", "", batchState(genai.JobStateExpired)},
		{"batch cancelled through the API", push, batch, func(t *testing.T, id string) {
			if err := g.client.Batches.Cancel(ctx, id, nil); err != nil {
				t.Fatal(err)
			}
		}, webhook.BatchCancelled, dispatch.ErrJobCancelled, "", "", batchState(genai.JobStateCancelled)},
		{"video generated", push, video, finish(geminitest.Succeed), webhook.VideoGenerated, nil, "", "", videos(1)},
		{"video failed, no event", poll, video, finish(geminitest.Fail(3, "prompt blocked")), webhook.VideoGenerated, dispatch.ErrJobFailed, "3", "prompt blocked", videos(0)},
		{"video all filtered", push, video, withoutVideo(func(r map[string]any) {
			r["generateVideoResponse"] = map[string]any{"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": []any{"unsafe content"}}
		}), webhook.VideoGenerated, dispatch.ErrJobFailed, "", "all videos were filtered by safety checks: unsafe content", videos(0)},
		{"video done without a result", push, video, withoutVideo(nil),
			webhook.VideoGenerated, dispatch.ErrJobFailed, "", "video operation is done with neither a response nor an error", videos(0)},
		{"interaction completed", push, research, finish(geminitest.Succeed), webhook.InteractionCompleted, nil, "", "", status(interactions.InteractionStatusCompleted)},
		{"interaction requires action", push, research, finish(geminitest.RequireAction), webhook.InteractionRequiresAction, nil, "", "", status(interactions.InteractionStatusRequiresAction)},
		{"interaction failed", push, research, finish(geminitest.Fail(13, "agent crashed")), webhook.InteractionFailed, dispatch.ErrJobFailed, "13", "agent crashed", status(interactions.InteractionStatusFailed)},
		{"interaction cancelled through the API", push, research, func(t *testing.T, id string) {
			if _, err := g.client.Interactions.Cancel(ctx, operations.CancelInteractionByIDRequest{ID: id}, interactionsNoRetry); err != nil {
				t.Fatal(err)
			}
		}, webhook.InteractionCancelled, dispatch.ErrJobCancelled, "", "", status(interactions.InteractionStatusCancelled)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := tt.start(tt.d)
			if err != nil {
				t.Fatal(err)
			}
			f := tt.d.Watch(ctx, id)
			tt.end(t, id)
			ev, err := f.Result()
			if ev == nil {
				t.Fatalf("Wait = %v without an event", err)
			}
			if ev.Type != tt.want || ev.Data.ID != id || !ev.Polled {
				t.Errorf("event = %s %q (polled %v), want %s %q from a read", ev.Type, ev.Data.ID, ev.Polled, tt.want, id)
			}
			if tt.kind == nil {
				if err != nil {
					t.Errorf("Wait error = %v, want nil", err)
				}
			} else {
				var je *dispatch.JobError
				if !errors.Is(err, tt.kind) || !errors.As(err, &je) {
					t.Fatalf("Wait error = %#v, want a *JobError that is %v", err, tt.kind)
				}
				if je.ID != id || je.Type != tt.want {
					t.Errorf("JobError = %+v, want id %q, type %s", je, id, tt.want)
				}
				if je.Code != tt.code || je.Message != tt.message {
					t.Errorf("JobError code %q, message %q; want %q, %q", je.Code, je.Message, tt.code, tt.message)
				}
			}
			tt.job(t, ev.Job)
		})
	}
	g.idle(t, "")
	if f := g.Failed(); len(f) != 0 {
		t.Errorf("failed deliveries: %+v", f)
	}
}

// TestEndToEndPauseThenOutcome takes interactions through requires_action
// and then to completion or cancellation: each Wait returns the job's next
// state, never the pause it already returned.
func TestEndToEndPauseThenOutcome(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	g := newFakeGemini(t, nil)
	d, _ := newReceiver(t, g.JWKSURL(), g.client)

	for _, tc := range []struct {
		name   string
		resume func(t *testing.T, id string)
		want   webhook.EventType
		status interactions.InteractionStatus
		kind   error
	}{
		{"completed", func(t *testing.T, id string) { g.finish(t, id, geminitest.Succeed) },
			webhook.InteractionCompleted, interactions.InteractionStatusCompleted, nil},
		{"cancelled", func(t *testing.T, id string) {
			if _, err := g.client.Interactions.Cancel(ctx, operations.CancelInteractionByIDRequest{ID: id}, interactionsNoRetry); err != nil {
				t.Fatal(err)
			}
		}, webhook.InteractionCancelled, interactions.InteractionStatusCancelled, dispatch.ErrJobCancelled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := createResearch(ctx, g.client, d.InteractionWebhookConfig())
			if err != nil {
				t.Fatal(err)
			}
			for i, step := range []struct {
				act    func(t *testing.T, id string)
				want   webhook.EventType
				status interactions.InteractionStatus
				kind   error
			}{
				{func(t *testing.T, id string) { g.finish(t, id, geminitest.RequireAction) },
					webhook.InteractionRequiresAction, interactions.InteractionStatusRequiresAction, nil},
				{tc.resume, tc.want, tc.status, tc.kind},
			} {
				f := d.Watch(ctx, id)
				step.act(t, id)
				ev, err := f.Result()
				if ev == nil || ev.Type != step.want || !errors.Is(err, step.kind) || (step.kind == nil) != (err == nil) {
					t.Fatalf("wait %d = %+v, %v; want %s, error %v", i+1, ev, err, step.want, step.kind)
				}
				if it, ok := ev.Job.(*interactions.Interaction); !ok || it.Status != step.status {
					t.Fatalf("wait %d: Job = %#v, want status %s", i+1, ev.Job, step.status)
				}
			}
		})
	}
	g.idle(t, "")
	if f := g.Failed(); len(f) != 0 {
		t.Errorf("failed deliveries: %+v", f)
	}
}
