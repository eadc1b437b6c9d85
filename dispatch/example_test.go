package dispatch_test

import (
	"context"
	"fmt"
	"time"

	"github.com/genaihook/genaihook/dispatch"
	"github.com/genaihook/genaihook/webhook"
)

// A Wait resolves when the job's event is delivered. Here the event is
// delivered by hand; in an app, webhook.NewHandler(v, d.Deliver, d.Binding())
// does it.
func ExampleDispatcher_Wait() {
	d, err := dispatch.New()
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer d.Close()
	ctx := context.Background()

	go d.Deliver(ctx, &webhook.Event{
		Type: webhook.BatchSucceeded,
		Data: webhook.Data{ID: "abc123"}, // short form: still matches "batches/abc123"
	})

	ev, err := d.Wait(ctx, "batches/abc123") // as client.Batches.Create returned it
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println(ev.Type, ev.Data.ID, ev.Polled)
	// Output: batch.succeeded abc123 false
}

// Watch returns a Future without blocking; one loop can select on many.
func ExampleDispatcher_Watch() {
	d, err := dispatch.New()
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer d.Close()
	ctx := context.Background()

	video := d.Watch("models/veo-3.0-generate-001/operations/op1")
	research := d.Watch("v1_int123")

	d.Deliver(ctx, &webhook.Event{Type: webhook.InteractionCompleted, Data: webhook.Data{ID: "v1_int123"}})
	d.Deliver(ctx, &webhook.Event{Type: webhook.VideoGenerated, Data: webhook.Data{ID: "operations/op1", VideoURI: "https://example.com/v.mp4"}})

	for _, f := range []*dispatch.Future{research, video} {
		select {
		case <-f.Done():
			ev, _ := f.Result()
			fmt.Println(ev.Type, ev.Data.ID)
		case <-time.After(time.Second):
			fmt.Println("timeout")
		}
	}
	// Output:
	// interaction.completed v1_int123
	// video.generated operations/op1
}

// EventError turns an event reporting a failure into a *JobError.
func ExampleEventError() {
	ev := &webhook.Event{Type: webhook.BatchFailed, Data: webhook.Data{ID: "batches/b1", ErrorCode: "3", ErrorMessage: "invalid input file"}}
	err := dispatch.EventError(ev)
	fmt.Println(err)
	// Output: dispatch: job batches/b1 failed: invalid input file (code 3)
}
