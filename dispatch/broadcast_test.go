package dispatch

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/genaihook/genaihook/webhook"
)

// sharedStore is one memoryStore seen by several Dispatchers, broadcasting
// each accepted Save to the other subscribers, as a Redis store would with
// publish/subscribe.
type sharedStore struct {
	*memoryStore
	mu   sync.Mutex
	subs map[int]func(string, *webhook.Event)
}

type replicaStore struct {
	*sharedStore
	id int
}

func (s *replicaStore) Save(ctx context.Context, key string, ev *webhook.Event) (bool, error) {
	ok, err := s.memoryStore.Save(ctx, key, ev)
	if ok {
		s.mu.Lock()
		var wakes []func(string, *webhook.Event)
		for id, w := range s.subs {
			if id != s.id {
				wakes = append(wakes, w)
			}
		}
		s.mu.Unlock()
		for _, w := range wakes {
			w(key, ev)
		}
	}
	return ok, err
}

func (s *replicaStore) Subscribe(wake func(string, *webhook.Event)) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs[s.id] = wake
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.subs, s.id)
	}
}

func TestReplicasShareAStore(t *testing.T) {
	shared := &sharedStore{memoryStore: newMemoryStore(time.Now, time.Hour, 100), subs: map[int]func(string, *webhook.Event){}}
	a := mustNew(t, WithStore(&replicaStore{shared, 1}))
	b := mustNew(t, WithStore(&replicaStore{shared, 2}))
	defer a.Close()
	ctx := context.Background()

	pending := a.Watch(context.Background(), "batches/x") // waiting on replica a
	b.Deliver(ctx, event(webhook.BatchSucceeded, "x", t0))
	if ev, err := pending.Result(); err != nil || ev.Data.ID != "x" {
		t.Fatalf("pending wait on a: %v, %v", ev, err)
	}
	if ev, err := a.Wait(ctx, "batches/x"); err != nil || ev.Data.ID != "x" {
		t.Fatalf("later wait on a: %v, %v", ev, err)
	}
	b.Close()
	if len(shared.subs) != 1 {
		t.Errorf("Close did not unsubscribe: %d subscribers", len(shared.subs))
	}
	assertIdle(t, a)
}
