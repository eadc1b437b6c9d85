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
			ev, err := GenAIPoller(client).Poll(ctx, testVideoOp)
			if err != nil || ev == nil || ev.Type != webhook.VideoGenerated {
				t.Fatalf("Poll = %+v, %v", ev, err)
			}
			check(t, "polled event", EventError(ev), tt.wantErr, tt.wantMsg)
			if ev.Data.VideoURI != tt.wantURI {
				t.Errorf("video_uri = %q, want %q", ev.Data.VideoURI, tt.wantURI)
			}

			// A webhook said video.generated; the operation read back says
			// otherwise.
			d := mustNew(t, WithLogger(nil))
			defer d.Close()
			if err := d.Deliver(ctx, event(webhook.VideoGenerated, testVideoOp, t0)); err != nil {
				t.Fatal(err)
			}
			op, err := WaitVideo(ctx, d, client, &genai.GenerateVideosOperation{Name: testVideoOp})
			check(t, "WaitVideo after a webhook", err, tt.wantErr, tt.wantMsg)
			if op == nil || !op.Done {
				t.Errorf("WaitVideo op = %+v, want the done operation", op)
			}
			var je *JobError
			if errors.As(err, &je) && je.Polled {
				t.Errorf("JobError.Polled = true after a webhook")
			}

			// The poller finds it for WaitVideo.
			clk := newFakeClock()
			dp := mustNew(t, WithLogger(nil), WithPoller(GenAIPoller(client)), WithClock(clk.Now), WithAfterFunc(clk.AfterFunc))
			defer dp.Close()
			done := make(chan struct{})
			go func() {
				defer close(done)
				_, err = WaitVideo(ctx, dp, client, &genai.GenerateVideosOperation{Name: testVideoOp})
			}()
			drive(t, clk, done)
			check(t, "WaitVideo after a poll", err, tt.wantErr, tt.wantMsg)
			if s := dp.Stats(); s.ResolvedByPoll != 1 {
				t.Errorf("Stats = %+v", s)
			}
		})
	}
}
