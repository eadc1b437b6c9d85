package webhook

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/genaihook/genaihook/verify"
)

// closed reports whether ch is closed, without waiting.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// consistent fails t unless ctx keeps the context.Context contract once
// Done has been called: Err is non-nil exactly when Done is closed.
func consistent(t *testing.T, ctx context.Context) {
	t.Helper()
	if err, c := ctx.Err(), closed(ctx.Done()); (err != nil) != c {
		t.Fatalf("Err = %v but Done closed = %v", err, c)
	}
}

type budgetKey struct{}

// TestBudget checks the lazily armed budget on the clock of a synctest
// bubble: the deadline passing before and after the first Done, the
// parent ending before and after it, the answer ending it, and contexts
// derived from it.
func TestBudget(t *testing.T) {
	const d = 2 * time.Second
	t.Run("deadline before Done", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newBudget(context.Background(), d)
			if dl, ok := b.Deadline(); !ok || !dl.Equal(time.Now().Add(d)) {
				t.Errorf("Deadline = %v, %v; want now+%v", dl, ok, d)
			}
			if err := b.Err(); err != nil {
				t.Fatalf("Err before the deadline = %v", err)
			}
			time.Sleep(d)
			if err := b.Err(); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Err at the deadline = %v, want DeadlineExceeded", err)
			}
			if !closed(b.Done()) {
				t.Fatal("Done after the deadline is open")
			}
			consistent(t, b)
		})
	})
	t.Run("deadline after Done", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newBudget(context.Background(), d)
			done := b.Done()
			consistent(t, b)
			time.Sleep(d - time.Nanosecond)
			synctest.Wait()
			if closed(done) {
				t.Fatal("Done closed before the deadline")
			}
			consistent(t, b)
			time.Sleep(time.Nanosecond)
			synctest.Wait()
			if !closed(done) || !errors.Is(b.Err(), context.DeadlineExceeded) {
				t.Fatalf("at the deadline: Done closed = %v, Err = %v", closed(done), b.Err())
			}
			if b.Done() != done {
				t.Error("Done returned another channel")
			}
		})
	})
	t.Run("parent ends before Done", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			parent, cancel := context.WithCancel(context.Background())
			b := newBudget(parent, d)
			cancel()
			if err := b.Err(); !errors.Is(err, context.Canceled) {
				t.Fatalf("Err = %v, want Canceled", err)
			}
			if !closed(b.Done()) {
				t.Fatal("Done open after the parent ended")
			}
		})
	})
	t.Run("parent ends after Done", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			parent, cancel := context.WithCancel(context.Background())
			b := newBudget(parent, d)
			done := b.Done()
			cancel()
			synctest.Wait()
			if !closed(done) || !errors.Is(b.Err(), context.Canceled) {
				t.Fatalf("Done closed = %v, Err = %v; want closed, Canceled", closed(done), b.Err())
			}
			// The timer is stopped: nothing changes at the deadline.
			time.Sleep(2 * d)
			if !errors.Is(b.Err(), context.Canceled) {
				t.Errorf("Err after the deadline = %v, want Canceled still", b.Err())
			}
		})
	})
	t.Run("parent deadline sooner", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			parent, cancel := context.WithTimeout(context.Background(), d/2)
			defer cancel()
			b := newBudget(parent, d)
			if dl, _ := b.Deadline(); !dl.Equal(time.Now().Add(d / 2)) {
				t.Errorf("Deadline = %v, want the parent's", dl)
			}
			done := b.Done()
			time.Sleep(d / 2)
			synctest.Wait()
			if !closed(done) || !errors.Is(b.Err(), context.DeadlineExceeded) {
				t.Fatalf("Done closed = %v, Err = %v", closed(done), b.Err())
			}
		})
	})
	t.Run("answered", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			b := newBudget(context.Background(), d)
			done := b.Done()
			b.end(context.Canceled)
			if !closed(done) || !errors.Is(b.Err(), context.Canceled) {
				t.Fatalf("Done closed = %v, Err = %v; want closed, Canceled", closed(done), b.Err())
			}
			b.end(context.DeadlineExceeded) // ignored: it ended once
			time.Sleep(2 * d)
			if !errors.Is(b.Err(), context.Canceled) {
				t.Errorf("Err = %v, want Canceled still", b.Err())
			}
			// Ended before Done was ever called: a closed channel.
			b2 := newBudget(context.Background(), d)
			b2.end(context.Canceled)
			if !closed(b2.Done()) {
				t.Error("Done of an ended budget is open")
			}
		})
	})
	t.Run("derived", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			parent := context.WithValue(context.Background(), budgetKey{}, "v")
			b := newBudget(parent, d)
			child, cancel := context.WithCancel(b)
			defer cancel()
			longer, cancel2 := context.WithTimeout(b, 2*d)
			defer cancel2()
			if child.Value(budgetKey{}) != "v" || b.Value(budgetKey{}) != "v" {
				t.Error("Value does not reach the parent")
			}
			if dl, _ := longer.Deadline(); !dl.Equal(time.Now().Add(d)) {
				t.Errorf("a longer timeout under the budget has deadline %v, want the budget's", dl)
			}
			time.Sleep(d)
			synctest.Wait()
			for _, c := range []context.Context{child, longer} {
				if !closed(c.Done()) || !errors.Is(c.Err(), context.DeadlineExceeded) {
					t.Errorf("derived context: Done closed = %v, Err = %v", closed(c.Done()), c.Err())
				}
				if cause := context.Cause(c); !errors.Is(cause, context.DeadlineExceeded) {
					t.Errorf("Cause = %v, want DeadlineExceeded", cause)
				}
			}
		})
	})
	t.Run("derived, parent cancelled", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			parent, cancel := context.WithCancel(context.Background())
			b := newBudget(parent, d)
			child, cancelChild := context.WithCancel(b)
			defer cancelChild()
			cancel()
			synctest.Wait()
			if !closed(child.Done()) || !errors.Is(child.Err(), context.Canceled) {
				t.Fatalf("Done closed = %v, Err = %v", closed(child.Done()), child.Err())
			}
			consistent(t, b)
		})
	})
}

// TestHandlerBudgetEndsWithAnswer checks that the HandlerFunc's ctx carries
// the budget's deadline, runs while it is called, and is cancelled once the

// TestBudgetDerivedContexts: contexts derived from a budget are tied to it
// through its AfterFunc method, not a goroutine each, and end with it;
// one whose stop was called does not run.
func TestBudgetDerivedContexts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBudget(context.Background(), time.Minute)
		base := runtime.NumGoroutine()
		children := make([]context.Context, 100)
		for i := range children {
			var cancel context.CancelFunc
			children[i], cancel = context.WithCancel(b)
			defer cancel()
		}
		if n := runtime.NumGoroutine() - base; n != 0 {
			t.Errorf("100 derived contexts started %d goroutines, want 0", n)
		}
		ran := make(chan struct{}, 1)
		stop := context.AfterFunc(b, func() { ran <- struct{}{} })
		if !stop() {
			t.Error("stop of a pending AfterFunc = false, want true")
		}
		if stop() {
			t.Error("second stop = true, want false")
		}
		b.end(context.Canceled)
		for i, c := range children {
			<-c.Done()
			if !errors.Is(c.Err(), context.Canceled) {
				t.Fatalf("child %d: Err = %v, want Canceled", i, c.Err())
			}
		}
		synctest.Wait()
		select {
		case <-ran:
			t.Error("a stopped AfterFunc ran")
		default:
		}
		// Registered after the end: runs at once.
		context.AfterFunc(b, func() { ran <- struct{}{} })
		<-ran
	})
}

// delivery is answered, as with context.WithTimeout and its cancel.
func TestHandlerBudgetEndsWithAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got context.Context
		v := verifierFunc(func(context.Context, http.Header, []byte) (verify.Result, error) {
			return verify.Result{Scheme: verify.SchemeHMAC, WebhookID: "msg_1"}, nil
		})
		h := NewHandler(v, func(ctx context.Context, _ *Event) error {
			got = ctx
			if dl, ok := ctx.Deadline(); !ok || !dl.Equal(time.Now().Add(DefaultTimeout)) {
				t.Errorf("Deadline = %v, %v; want now+DefaultTimeout", dl, ok)
			}
			if err := ctx.Err(); err != nil {
				t.Errorf("Err during the HandlerFunc = %v", err)
			}
			return nil
		}, WithLogger(slog.New(slog.DiscardHandler)))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(bodyTypical))))
		if w.Code != http.StatusOK {
			t.Fatalf("status %d", w.Code)
		}
		if !errors.Is(got.Err(), context.Canceled) || !closed(got.Done()) {
			t.Errorf("after the answer: Err = %v, Done closed = %v", got.Err(), closed(got.Done()))
		}
	})
}
