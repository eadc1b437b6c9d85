package redisstore_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/genaihook/genaihook/dispatch"
	"github.com/genaihook/genaihook/dispatch/redisstore"
	"github.com/genaihook/genaihook/dispatch/redisstore/internal/redistest"
	"github.com/genaihook/genaihook/webhook"
)

// TestOrderingMatchesSupersedes checks that the store's scripts, which
// order events on the server, agree with dispatch.Supersedes for every
// pair of events over the values ordering distinguishes: kinds (an end,
// a pause, an unknown type, a failed video), timestamps (equal, a
// nanosecond apart, a second apart, the zero time) and webhook-ids (equal,
// different, empty). Each pair is checked against the event held and
// against the event consumed.
func TestOrderingMatchesSupersedes(t *testing.T) {
	srv := redistest.Start(t)
	s := newStore(t, srv.Client(t), redisstore.Config{Prefix: redistest.Prefix(t)})
	base := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	var evs []*webhook.Event
	for _, typ := range []webhook.EventType{webhook.BatchSucceeded, webhook.InteractionRequiresAction,
		"future.type", webhook.VideoGenerated} {
		for _, at := range []time.Time{{}, base, base.Add(time.Nanosecond), base.Add(time.Second)} {
			for _, id := range []string{"", "msg_a", "msg_b"} {
				ev := &webhook.Event{Type: typ, Timestamp: at, WebhookID: id}
				if typ == webhook.VideoGenerated {
					ev.Data.ErrorCode = "3"
				}
				evs = append(evs, ev)
			}
		}
	}
	ctx := t.Context()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i, b := range evs {
		for j, a := range evs {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				want := dispatch.Supersedes(a, b)
				key := fmt.Sprintf("k/%d/%d", i, j)
				if ok, err := s.Save(ctx, key+"/held", b); !ok || err != nil {
					t.Errorf("Save on an empty key = %v, %v", ok, err)
					return
				}
				if got, err := s.Save(ctx, key+"/held", a); err != nil || got != want {
					t.Errorf("Save(%+v) over held %+v = %v, %v; dispatch.Supersedes says %v", a, b, got, err, want)
				}
				if ok, err := s.Consume(ctx, key+"/consumed", b); !ok || err != nil {
					t.Errorf("Consume on an empty key = %v, %v", ok, err)
					return
				}
				if got, err := s.Consume(ctx, key+"/consumed", a); err != nil || got != want {
					t.Errorf("Consume(%+v) after consumed %+v = %v, %v; dispatch.Supersedes says %v", a, b, got, err, want)
				}
			})
		}
	}
	wg.Wait()
}
