package dispatch_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/genaihook/genaihook/dispatch"
	"github.com/genaihook/genaihook/webhook"
)

// FuzzDeliverIDs feeds a wait's id (as a caller passes it) and an event's
// type and data.id (as a signed delivery carries them, so the signer's
// choice) to a Dispatcher without a genai client, where an event resolves
// the waits it matches at once. Watch and Deliver must never panic, and a
// wait must resolve only from an event about the same job: the same opaque
// id (the last path segment), of the wait's family as the event's type
// names it (a video event may also end an interaction's wait, since video
// generation moves to interactions). An event of a known type matching
// the wait must resolve it.
func FuzzDeliverIDs(f *testing.F) {
	for _, s := range [][3]string{
		{"batches/abc", "batch.succeeded", "batches/abc"},
		{"batches/abc", "batch.succeeded", "abc"},
		{"batches/abc", "interaction.completed", "abc"},
		{"models/veo/operations/op1", "video.generated", "operations/op1"},
		{"v1_ChdOdXRo", "video.generated", "models/m/operations/v1_ChdOdXRo"},
		{"v1_ChdOdXRo", "interaction.requires_action", "v1_ChdOdXRo"},
		{"batches/..", "batch.failed", "batches/.."},
		{"batches/a b", "batch.failed", "a b"},
		{"batches/abc", "batch.succeeded", "batches/abc/"},
		{"operations/x", "video.generated", "x\x00"},
		{"", "", ""},
		{"batches/abc", "batch.completed", "batches/abc"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	ts := time.Now()
	f.Fuzz(func(t *testing.T, waitID, typ, dataID string) {
		d, err := dispatch.New(nil, "https://receiver.example/gemini/webhook", dispatch.WithLogger(nil))
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		ctx := context.Background()
		fut := d.Watch(ctx, waitID)
		invalid := false
		select {
		case <-fut.Done():
			_, err := fut.Result()
			if !errors.Is(err, dispatch.ErrInvalidID) {
				t.Fatalf("Watch(%q) resolved before any event: %v", waitID, err)
			}
			invalid = true
		default:
		}
		et := webhook.EventType(typ)
		derr := d.Deliver(ctx, &webhook.Event{WebhookID: "msg_1", Type: et, Version: "v1", Timestamp: ts, Data: webhook.Data{ID: dataID}})
		if invalid {
			return
		}
		match := sameJob(waitID, et, dataID)
		select {
		case <-fut.Done():
			if !match {
				ev, err := fut.Result()
				t.Fatalf("wait on %q resolved by a %q event about %q: %v, %v", waitID, typ, dataID, ev, err)
			}
		default:
			if match && et.Known() && derr == nil {
				t.Fatalf("wait on %q not resolved by a %q event about %q", waitID, typ, dataID)
			}
		}
	})
}

// sameJob is the oracle of FuzzDeliverIDs, written apart from the code
// under test: whether an event of type t with data.id id is about the job a
// wait on waitID awaits.
func sameJob(waitID string, t webhook.EventType, id string) bool {
	seg := id[strings.LastIndex(id, "/")+1:]
	parts := strings.Split(waitID, "/")
	if seg == "" || seg != parts[len(parts)-1] {
		return false
	}
	var waitFam webhook.Family
	switch {
	case len(parts) == 1:
		waitFam = webhook.FamilyInteraction
	case len(parts) == 2 && parts[0] == "batches":
		waitFam = webhook.FamilyBatch
	case len(parts) == 2 && parts[0] == "operations", len(parts) == 4 && parts[0] == "models" && parts[2] == "operations":
		waitFam = webhook.FamilyVideo
	}
	switch f := t.Family(); f {
	case webhook.FamilyVideo:
		return waitFam == webhook.FamilyVideo || waitFam == webhook.FamilyInteraction
	case webhook.FamilyBatch, webhook.FamilyInteraction:
		return waitFam == f
	}
	return false
}
