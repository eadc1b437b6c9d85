package dispatch

import (
	"context"
	"errors"
	"strings"
	"testing"

	"google.golang.org/genai"

	"github.com/genaihook/genaihook/webhook"
)

// TestVideoWithoutResult checks that a Veo operation that is done but
// holds no video (all filtered by safety checks, or neither a response nor
// an error) is a failure carrying the reasons, whether the poller finds it
// or a webhook said video.generated, and that a done operation with a video
// is not.
func TestVideoWithoutResult(t *testing.T) {
	const respType = `"@type":"type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"`
	const reason = "Unable to generate videos because one or more of the prompts were filtered by safety checks. You will not be charged."
	tests := []struct {
		name    string
		body    string // GET /v1beta/models/veo/operations/x
		wantErr error
		wantMsg string // in the JobError's message
		wantURI string
	}{
		{"all filtered, with reasons",
			`{"name":"models/veo/operations/x","done":true,"response":{` + respType + `,"generateVideoResponse":{"raiMediaFilteredCount":1,"raiMediaFilteredReasons":["` + reason + `"]}}}`,
			ErrJobFailed, "all videos were filtered by safety checks: " + reason, ""},
		{"all filtered, two reasons",
			`{"name":"models/veo/operations/x","done":true,"response":{"generateVideoResponse":{"raiMediaFilteredCount":2,"raiMediaFilteredReasons":["a","b"]}}}`,
			ErrJobFailed, "all videos were filtered by safety checks: a; b", ""},
		{"all filtered, count only",
			`{"name":"models/veo/operations/x","done":true,"response":{"generateVideoResponse":{"raiMediaFilteredCount":1}}}`,
			ErrJobFailed, "all videos were filtered by safety checks", ""},
		{"done with neither response nor error",
			`{"name":"models/veo/operations/x","done":true}`,
			ErrJobFailed, "neither a response nor an error", ""},
		{"done with a response of no generateVideoResponse",
			`{"name":"models/veo/operations/x","done":true,"response":{` + respType + `}}`,
			ErrJobFailed, "neither a response nor an error", ""},
		{"done with an empty generateVideoResponse",
			`{"name":"models/veo/operations/x","done":true,"response":{"generateVideoResponse":{"generatedSamples":[]}}}`,
			ErrJobFailed, "no video and no error", ""},
		{"failed",
			`{"name":"models/veo/operations/x","done":true,"error":{"code":3,"message":"prompt blocked"}}`,
			ErrJobFailed, "prompt blocked", ""},
		{"generated",
			videoGenerated,
			nil, "", "https://example.com/v.mp4"},
		{"one generated, one filtered",
			`{"name":"models/veo/operations/x","done":true,"response":{"generateVideoResponse":{"generatedSamples":[{"video":{"uri":"https://example.com/v.mp4"}}],"raiMediaFilteredCount":1,"raiMediaFilteredReasons":["r"]}}}`,
			nil, "", "https://example.com/v.mp4"},
	}
	check := func(t *testing.T, what string, err error, wantErr error, wantMsg string) {
		t.Helper()
		if wantErr == nil {
			if err != nil {
				t.Errorf("%s: error = %v, want none", what, err)
			}
			return
		}
		var je *JobError
		if !errors.Is(err, wantErr) || !errors.As(err, &je) {
			t.Errorf("%s: error = %v, want a *JobError that is %v", what, err, wantErr)
			return
		}
		if !strings.Contains(je.Message, wantMsg) || je.ID != testVideoOp {
			t.Errorf("%s: JobError = %+v, want message %q", what, je, wantMsg)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newScriptedAPI(t)
			api.script("/v1beta/"+testVideoOp, ok(tt.body))
			client := api.client(t)
			ctx := context.Background()

			// The poller maps the operation to its event.
			ev, err := genAIPoller(client).Poll(ctx, testVideoOp)
			if err != nil || ev == nil || ev.Type != webhook.VideoGenerated {
				t.Fatalf("Poll = %+v, %v", ev, err)
			}
			check(t, "polled event", eventError(ev), tt.wantErr, tt.wantMsg)
			if ev.Data.VideoURI != tt.wantURI {
				t.Errorf("video_uri = %q, want %q", ev.Data.VideoURI, tt.wantURI)
			}

			// A webhook said video.generated; the operation read back
			// decides.
			clk := newFakeClock()
			d, err := New(client, testURL, WithLogger(nil), withClock(clk.Now), withAfterFunc(clk.AfterFunc))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			f := d.Watch(ctx, testVideoOp)
			if err := d.Deliver(ctx, event(webhook.VideoGenerated, testVideoOp, t0)); err != nil {
				t.Fatal(err)
			}
			drive(t, clk, f.Done())
			ev, err = f.Result()
			check(t, "Wait after a webhook", err, tt.wantErr, tt.wantMsg)
			if op, _ := ev.Job.(*genai.GenerateVideosOperation); op == nil || !op.Done {
				t.Errorf("Event.Job = %+v, want the done operation", ev.Job)
			}

			// No webhook: the poll finds it.
			clk = newFakeClock()
			dp, err := New(client, testURL, WithLogger(nil), withClock(clk.Now), withAfterFunc(clk.AfterFunc))
			if err != nil {
				t.Fatal(err)
			}
			defer dp.Close()
			f = dp.Watch(ctx, testVideoOp)
			drive(t, clk, f.Done())
			_, err = f.Result()
			check(t, "Wait after a poll", err, tt.wantErr, tt.wantMsg)
			if s := dp.stats(); s.resolvedByPoll != 1 {
				t.Errorf("Stats = %+v", s)
			}
		})
	}
}
