package dispatch

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/genaihook/genaihook/webhook"
)

// TestFutureListStops stops Futures of one key in every order, head,
// middle and tail alike, checking after each stop that the key's list is
// whole (each link matched by its reverse, pending counting it, a Future
// alone on its key holding no links), then checks that the event resolves
// exactly the Futures not stopped.
func TestFutureListStops(t *testing.T) {
	const id = "batches/list"
	orders := [][]int{{0}, {1}, {2}, {0, 1}, {0, 2}, {1, 0}, {1, 2}, {2, 0}, {2, 1}, {0, 1, 2}, {2, 1, 0}, {1, 2, 0}}
	for _, order := range orders {
		d := mustNew(t)
		fs := make([]*Future, 3)
		for i := range fs {
			fs[i] = d.Watch(context.Background(), id)
		}
		checkList(t, d, idKey(id), fs)
		stopped := make([]bool, len(fs))
		for _, i := range order {
			if !d.stop(fs[i], context.Canceled) {
				t.Fatalf("order %v: stop of future %d found it unlinked", order, i)
			}
			stopped[i] = true
			var left []*Future
			for j, f := range fs {
				if !stopped[j] {
					left = append(left, f)
				}
			}
			checkList(t, d, idKey(id), left)
		}
		if err := d.Deliver(context.Background(), event(webhook.BatchSucceeded, id, t0)); err != nil {
			t.Fatal(err)
		}
		for i, f := range fs {
			ev, err := peek(f)
			switch {
			case stopped[i] && !errors.Is(err, context.Canceled):
				t.Errorf("order %v: stopped future %d = %v, %v; want context.Canceled", order, i, ev, err)
			case !stopped[i] && (err != nil || ev == nil):
				t.Errorf("order %v: future %d = %v, %v; want the event", order, i, ev, err)
			}
			if f.sib != nil {
				t.Errorf("order %v: future %d keeps its links once done", order, i)
			}
		}
		assertIdle(t, d)
		d.Close()
	}
}

// checkList fails t unless the Futures on key in d are those of want (a
// new one goes second in line, after the head), soundly linked.
func checkList(t *testing.T, d *Dispatcher, key string, want []*Future) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	var got []*Future
	var prev *Future
	for f := d.waiters[key]; f != nil; f = f.next() {
		if f.prev() != prev {
			t.Fatalf("future %d on the list: prev does not match the link to it", len(got))
		}
		if f.flags&linked == 0 {
			t.Fatalf("future %d on the list is not flagged linked", len(got))
		}
		got = append(got, f)
		prev = f
	}
	if len(got) != len(want) || d.pending != len(want) {
		t.Fatalf("%d futures on the list, %d pending; want %d", len(got), d.pending, len(want))
	}
	for i, f := range want {
		if !slices.Contains(got, f) {
			t.Fatalf("future %d expected is not on the list", i)
		}
	}
	if len(got) == 1 && got[0].sib != nil {
		t.Error("a future alone on its key holds links")
	}
}
