package jwks

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/genaihook/genaihook/internal/jwks/jwkstest"
	"github.com/google/go-cmp/cmp"
)

// fakeClock is the injected clock: tests move time, they never sleep.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// keyServer serves a JWK Set whose response can be changed between
// requests, counts requests, and can hold requests until released.
type keyServer struct {
	*httptest.Server
	requests atomic.Int64

	mu      sync.Mutex
	status  int
	body    []byte
	header  http.Header
	arrived chan struct{} // when non-nil, each request sends here...
	release chan struct{} // ...then waits for this to be closed
}

func newKeyServer(t *testing.T, body []byte) *keyServer {
	t.Helper()
	s := &keyServer{status: http.StatusOK, body: body, header: http.Header{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		s.mu.Lock()
		status, body, header, arrived, release := s.status, s.body, s.header.Clone(), s.arrived, s.release
		s.mu.Unlock()
		if arrived != nil {
			arrived <- struct{}{}
			<-release
		}
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *keyServer) respond(status int, body []byte, header http.Header) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
	if header == nil {
		header = http.Header{}
	}
	s.header = header
}

// gate makes requests block until the returned release function is called;
// each request signals on the returned channel when it arrives.
func (s *keyServer) gate(t *testing.T) (arrived <-chan struct{}, release func()) {
	a, r := make(chan struct{}, 1), make(chan struct{})
	s.mu.Lock()
	s.arrived, s.release = a, r
	s.mu.Unlock()
	var once sync.Once
	release = func() { once.Do(func() { close(r) }) }
	t.Cleanup(release) // before the server's Close, which waits for handlers
	return a, release
}

func newTestCache(t *testing.T, url string, clock *fakeClock, mod func(*Config)) *Cache {
	t.Helper()
	cfg := Config{URL: url, Now: clock.Now}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// edIDs lists the IDs of a set's Ed25519 keys, to tell sets apart.
func edIDs(s *Set) []string {
	if s == nil {
		return nil
	}
	var ids []string
	for _, k := range s.Ed25519 {
		ids = append(ids, k.ID)
	}
	return ids
}

var (
	docA = jwksDoc(okpJWK("a1", edPub(1)), okpJWK("a2", edPub(2)), okpJWK("a3", edPub(3)))
	docB = jwksDoc(okpJWK("b1", edPub(4)), okpJWK("b2", edPub(5)), okpJWK("b3", edPub(6)))
	idsA = []string{"a1", "a2", "a3"}
	idsB = []string{"b1", "b2", "b3"}
)

func mustKeys(t *testing.T, c *Cache, want []string) *Set {
	t.Helper()
	s, err := c.Keys(context.Background())
	if err != nil {
		t.Fatalf("Keys: %v", err)
	}
	if diff := cmp.Diff(want, edIDs(s)); diff != "" {
		t.Fatalf("Keys returned the wrong set (-want +got):\n%s", diff)
	}
	return s
}

func mustRefresh(t *testing.T, c *Cache, want []string) *Set {
	t.Helper()
	s, err := c.Refresh(context.Background())
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if diff := cmp.Diff(want, edIDs(s)); diff != "" {
		t.Fatalf("Refresh returned the wrong set (-want +got):\n%s", diff)
	}
	return s
}

// waitFetch waits for the fetch in flight, if any, to end: Keys starts a
// refetch of an expired set in the background.
func waitFetch(c *Cache) {
	c.mu.Lock()
	call := c.inflight
	c.mu.Unlock()
	if call != nil {
		<-call.done
	}
}

func wantRequests(t *testing.T, s *keyServer, want int64) {
	t.Helper()
	if got := s.requests.Load(); got != want {
		t.Fatalf("server saw %d requests, want %d", got, want)
	}
}

func TestNew(t *testing.T) {
	c, err := New(Config{URL: "https://example.com/jwks.json"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if c.minTTL != 5*time.Minute || c.maxTTL != 24*time.Hour || c.refetchInterval != 30*time.Second || c.maxBytes != 1<<20 {
		t.Errorf("defaults = %v %v %v %v", c.minTTL, c.maxTTL, c.refetchInterval, c.maxBytes)
	}
	if c.client == nil || c.client == http.DefaultClient || c.client.CheckRedirect == nil {
		t.Errorf("default client = %+v, want a fresh client with a redirect policy", c.client)
	}
	if c.now == nil {
		t.Error("default clock not set")
	}

	bad := []struct {
		name string
		cfg  Config
	}{
		{"empty URL", Config{}},
		{"http to a remote host", Config{URL: "http://example.com/jwks.json"}},
		{"negative MinTTL", Config{URL: "https://example.com", MinTTL: -1}},
		{"negative MaxTTL", Config{URL: "https://example.com", MaxTTL: -1}},
		{"negative RefetchInterval", Config{URL: "https://example.com", RefetchInterval: -1}},
		{"negative MaxBytes", Config{URL: "https://example.com", MaxBytes: -1}},
		{"MinTTL above MaxTTL", Config{URL: "https://example.com", MinTTL: 2 * time.Hour, MaxTTL: time.Hour}},
		{"MinTTL above default MaxTTL", Config{URL: "https://example.com", MinTTL: 48 * time.Hour}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.cfg); err == nil || !strings.HasPrefix(err.Error(), "jwks: ") {
				t.Errorf("New = %v, want a jwks: error", err)
			}
		})
	}
}

func TestTTLFromCacheControl(t *testing.T) {
	const minTTL, maxTTL = 5 * time.Minute, 24 * time.Hour
	tests := []struct {
		name   string
		header http.Header
		want   time.Duration
	}{
		{"absent: floor, to pick up rotations soon", nil, minTTL},
		{"within bounds", http.Header{"Cache-Control": {"public, max-age=3600, must-revalidate"}}, time.Hour},
		{"below the floor", http.Header{"Cache-Control": {"max-age=60"}}, minTTL},
		{"zero", http.Header{"Cache-Control": {"max-age=0"}}, minTTL},
		{"above the ceiling", http.Header{"Cache-Control": {"max-age=604800"}}, maxTTL},
		{"beyond int64", http.Header{"Cache-Control": {"max-age=99999999999999999999999"}}, maxTTL},
		{"no-store", http.Header{"Cache-Control": {"no-store, max-age=3600"}}, minTTL},
		{"no-cache in a second header line", http.Header{"Cache-Control": {"max-age=3600", "No-Cache"}}, minTTL},
		{"quoted value", http.Header{"Cache-Control": {`max-age="7200"`}}, 2 * time.Hour},
		{"upper case directive", http.Header{"Cache-Control": {"MAX-AGE=7200"}}, 2 * time.Hour},
		{"malformed", http.Header{"Cache-Control": {"max-age=soon"}}, minTTL},
		{"negative", http.Header{"Cache-Control": {"max-age=-5"}}, minTTL},
		{"duplicate: smallest wins", http.Header{"Cache-Control": {"max-age=7200, max-age=3600"}}, time.Hour},
		{"Age subtracted", http.Header{"Cache-Control": {"max-age=3600"}, "Age": {"600"}}, 50 * time.Minute},
		{"Age beyond max-age", http.Header{"Cache-Control": {"max-age=3600"}, "Age": {"7200"}}, minTTL},
		{"malformed Age ignored", http.Header{"Cache-Control": {"max-age=3600"}, "Age": {"x"}}, time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newKeyServer(t, docA)
			srv.respond(http.StatusOK, docA, tt.header)
			c := newTestCache(t, srv.URL, newClock(), nil)
			s := mustKeys(t, c, idsA)
			if got := s.Expires.Sub(s.Fetched); got != tt.want {
				t.Errorf("TTL = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestKeysRefetchesAfterExpiry(t *testing.T) {
	srv := newKeyServer(t, docA)
	srv.respond(http.StatusOK, docA, http.Header{"Cache-Control": {"max-age=600"}})
	clock := newClock()
	c := newTestCache(t, srv.URL, clock, nil)

	first := mustKeys(t, c, idsA)
	if again := mustKeys(t, c, idsA); again != first {
		t.Error("a fresh set was not served from the cache")
	}
	wantRequests(t, srv, 1)

	srv.respond(http.StatusOK, docB, http.Header{"Cache-Control": {"max-age=600"}}) // rotation
	clock.Advance(10*time.Minute - time.Nanosecond)
	mustKeys(t, c, idsA)
	wantRequests(t, srv, 1)

	// Expired: the old set is served at once while the refetch runs.
	clock.Advance(time.Nanosecond)
	mustKeys(t, c, idsA)
	waitFetch(c)
	wantRequests(t, srv, 2)
	mustKeys(t, c, idsB)
	wantRequests(t, srv, 2)
}

func TestRefreshPicksUpRotation(t *testing.T) {
	srv := newKeyServer(t, docA)
	clock := newClock()
	c := newTestCache(t, srv.URL, clock, nil)

	mustKeys(t, c, idsA)
	srv.respond(http.StatusOK, docB, nil)

	// Within the interval of the first fetch: no fetch, old keys.
	clock.Advance(30*time.Second - time.Nanosecond)
	mustRefresh(t, c, idsA)
	wantRequests(t, srv, 1)

	clock.Advance(time.Nanosecond)
	mustRefresh(t, c, idsB)
	wantRequests(t, srv, 2)
	mustKeys(t, c, idsB) // the refreshed set is what Keys serves
	wantRequests(t, srv, 2)
}

func TestRefreshRateLimit(t *testing.T) {
	tests := []struct {
		name    string
		prime   bool // fetch once with Keys before the flood
		failing bool // the endpoint answers 500
	}{
		{name: "after a first fetch", prime: true},
		{name: "on an empty cache"},
		{name: "endpoint failing", failing: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newKeyServer(t, docA)
			if tt.failing {
				srv.respond(http.StatusInternalServerError, nil, nil)
			}
			clock := newClock()
			c := newTestCache(t, srv.URL, clock, nil)
			var base int64
			if tt.prime {
				mustKeys(t, c, idsA)
				clock.Advance(30 * time.Second)
				base = 1
			}
			for round := int64(1); round <= 2; round++ {
				for range 1000 {
					s, err := c.Refresh(context.Background())
					if tt.failing {
						if s != nil || !errors.Is(err, ErrUnavailable) {
							t.Fatalf("Refresh = %v, %v; want ErrUnavailable", s, err)
						}
					} else if err != nil || s == nil {
						t.Fatalf("Refresh = %v, %v", s, err)
					}
					clock.Advance(time.Millisecond) // 1000 calls span 1 s, inside the interval
				}
				wantRequests(t, srv, base+round)
				clock.Advance(30 * time.Second)
			}
		})
	}
}

func TestConcurrentKeysShareOneFetch(t *testing.T) {
	const callers = 100
	srv := newKeyServer(t, docA)
	arrived, release := srv.gate(t)
	c := newTestCache(t, srv.URL, newClock(), nil)
	waiting := make(chan struct{}, callers)
	c.onWait = func() { waiting <- struct{}{} }

	sets := make([]*Set, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { sets[i], errs[i] = c.Keys(context.Background()) })
	}
	<-arrived // one fetch has reached the server...
	for range callers {
		<-waiting // ...and every caller, the one that started it too, waits for it
	}
	release()
	wg.Wait()

	wantRequests(t, srv, 1)
	for i := range callers {
		if errs[i] != nil || sets[i] != sets[0] {
			t.Fatalf("caller %d got %p, %v; want the shared set %p", i, sets[i], errs[i], sets[0])
		}
	}
	if diff := cmp.Diff(idsA, edIDs(sets[0])); diff != "" {
		t.Errorf("shared set (-want +got):\n%s", diff)
	}
}

func TestCancellation(t *testing.T) {
	srv := newKeyServer(t, docA)
	arrived, release := srv.gate(t)
	c := newTestCache(t, srv.URL, newClock(), nil)
	waiting := make(chan struct{}, 3)
	c.onWait = func() { waiting <- struct{}{} }

	type result struct {
		s   *Set
		err error
	}
	call := func(f func(context.Context) (*Set, error), ctx context.Context) chan result {
		ch := make(chan result, 1)
		go func() { s, err := f(ctx); ch <- result{s, err} }()
		return ch
	}
	starterCtx, cancelStarter := context.WithCancel(context.Background())
	starter := call(c.Keys, starterCtx)
	<-arrived
	<-waiting
	impatientCtx, cancelImpatient := context.WithCancel(context.Background())
	impatient := call(c.Keys, impatientCtx)
	patient := call(c.Refresh, context.Background())
	<-waiting
	<-waiting

	// Callers whose context ends return at once, while the fetch is still
	// held by the server: the one that started it as well as one that
	// joined it.
	for _, c := range []struct {
		name   string
		cancel context.CancelFunc
		result chan result
	}{{"starter", cancelStarter, starter}, {"joiner", cancelImpatient, impatient}} {
		c.cancel()
		if r := <-c.result; r.s != nil || !errors.Is(r.err, context.Canceled) || !errors.Is(r.err, ErrUnavailable) {
			t.Fatalf("cancelled %s got %v, %v; want context.Canceled and ErrUnavailable", c.name, r.s, r.err)
		}
	}

	// The fetch goes on for the others, and its result serves later calls.
	release()
	if r := <-patient; r.err != nil || !cmp.Equal(idsA, edIDs(r.s)) {
		t.Errorf("waiter got %v, %v; want set A", edIDs(r.s), r.err)
	}
	mustKeys(t, c, idsA)
	wantRequests(t, srv, 1)
}

func TestCancelledContextSpendsNoFetch(t *testing.T) {
	srv := newKeyServer(t, docA)
	c := newTestCache(t, srv.URL, newClock(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if s, err := c.Keys(ctx); s != nil || !errors.Is(err, context.Canceled) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Keys(cancelled) = %v, %v", s, err)
	}
	wantRequests(t, srv, 0)
	mustKeys(t, c, idsA) // the rate limit slot was not spent
	wantRequests(t, srv, 1)
}

func TestServesCachedKeysWhenEndpointDown(t *testing.T) {
	tests := []struct {
		name string
		down func(*keyServer)
	}{
		{"HTTP 503", func(s *keyServer) { s.respond(http.StatusServiceUnavailable, []byte("down"), nil) }},
		{"garbage body", func(s *keyServer) { s.respond(http.StatusOK, []byte("<html>"), nil) }},
		{"connection refused", func(s *keyServer) { s.Close() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newKeyServer(t, docA)
			clock := newClock()
			c := newTestCache(t, srv.URL, clock, nil)
			first := mustKeys(t, c, idsA)

			tt.down(srv)
			clock.Advance(5 * time.Minute) // expired
			if s := mustKeys(t, c, idsA); s != first {
				t.Error("Keys did not serve the cached set")
			}
			waitFetch(c) // the refetch fails
			if s := mustKeys(t, c, idsA); s != first {
				t.Error("Keys did not serve the cached set after the failed refetch")
			}
			// Refresh serves the old set too, but says it could not be
			// brought up to date.
			if s, err := c.Refresh(context.Background()); s != first || !errors.Is(err, ErrUnavailable) {
				t.Errorf("Refresh = %v, %v; want the cached set and ErrUnavailable", edIDs(s), err)
			}
			n := srv.requests.Load()
			// The failure is remembered: no retry until the interval passes.
			clock.Advance(30*time.Second - time.Nanosecond)
			mustKeys(t, c, idsA)
			c.Refresh(context.Background())
			wantRequests(t, srv, n)

			clock.Advance(time.Nanosecond)
			if s, err := c.Refresh(context.Background()); s != first || !errors.Is(err, ErrUnavailable) { // one retry, fails, old set
				t.Errorf("Refresh = %v, %v; want the cached set and ErrUnavailable", edIDs(s), err)
			}
			if tt.name != "connection refused" {
				wantRequests(t, srv, n+1)
			}
		})
	}
}

func TestRecoversAfterOutage(t *testing.T) {
	srv := newKeyServer(t, docA)
	clock := newClock()
	c := newTestCache(t, srv.URL, clock, nil)
	mustKeys(t, c, idsA)

	srv.respond(http.StatusInternalServerError, nil, nil)
	clock.Advance(5 * time.Minute)
	mustKeys(t, c, idsA)
	waitFetch(c)
	wantRequests(t, srv, 2)

	srv.respond(http.StatusOK, docB, nil) // back, with rotated keys
	clock.Advance(30 * time.Second)
	mustKeys(t, c, idsA) // served while the refetch runs
	waitFetch(c)
	mustKeys(t, c, idsB)
	mustRefresh(t, c, idsB) // the last attempt succeeded: no error
	wantRequests(t, srv, 3)
}

func TestNoSetFailureIsRateLimited(t *testing.T) {
	srv := newKeyServer(t, docA)
	srv.respond(http.StatusBadGateway, nil, nil)
	clock := newClock()
	c := newTestCache(t, srv.URL, clock, nil)

	for range 10 {
		if s, err := c.Keys(context.Background()); s != nil || !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Keys = %v, %v; want ErrUnavailable", s, err)
		}
	}
	wantRequests(t, srv, 1)

	srv.respond(http.StatusOK, docA, nil)
	clock.Advance(30 * time.Second)
	mustKeys(t, c, idsA)
	wantRequests(t, srv, 2)
}

func TestFetchErrors(t *testing.T) {
	const secret = "SECRET-BODY-MARKER"
	const maxBytes = 4096
	padded := func(n int) []byte { // a valid document of exactly n bytes
		return append(bytes.Repeat([]byte(" "), n-len(docA)), docA...)
	}
	tests := []struct {
		name    string
		status  int
		body    []byte
		header  http.Header
		closed  bool
		wantErr bool
	}{
		{name: "exactly MaxBytes is fine", status: 200, body: padded(maxBytes)},
		{name: "HTTP 404", status: 404, body: []byte(secret), wantErr: true},
		{name: "HTTP 500", status: 500, body: []byte(secret), wantErr: true},
		{name: "HTTP 204", status: 204, wantErr: true},
		{name: "redirect to plain http on a remote host", status: 302,
			header: http.Header{"Location": {"http://example.invalid/jwks.json"}}, wantErr: true},
		{name: "oversized body", status: 200, body: padded(maxBytes + 1), wantErr: true},
		{name: "malformed JSON", status: 200, body: []byte(`{"keys":[` + secret), wantErr: true},
		{name: "wrong JSON shape", status: 200, body: []byte(`{"keys":"` + secret + `"}`), wantErr: true},
		{name: "empty body", status: 200, wantErr: true},
		{name: "zero usable keys", status: 200,
			body: jwksDoc(map[string]any{"kty": "oct", "kid": secret, "k": secret}), wantErr: true},
		{name: "connection refused", closed: true, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newKeyServer(t, nil)
			srv.respond(tt.status, tt.body, tt.header)
			if tt.closed {
				srv.Close()
			}
			c := newTestCache(t, srv.URL, newClock(), func(cfg *Config) { cfg.MaxBytes = maxBytes })
			s, err := c.Keys(context.Background())
			if !tt.wantErr {
				if err != nil || s == nil {
					t.Fatalf("Keys = %v, %v; want a set", s, err)
				}
				return
			}
			if s != nil || !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Keys = %v, %v; want an error wrapping ErrUnavailable", s, err)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "jwks: ") || strings.Contains(msg, secret) {
				t.Errorf("error %q must start with \"jwks: \" and not quote the body", msg)
			}
		})
	}
}

// TestExpiredSetServedDuringFetch checks that Keys serves an expired set at
// once and refetches it in the background from a slow key server, and that
// Refresh waits for the new set.
func TestExpiredSetServedDuringFetch(t *testing.T) {
	srv := newKeyServer(t, docA)
	clock := newClock()
	c := newTestCache(t, srv.URL, clock, nil)
	mustKeys(t, c, idsA)

	srv.respond(http.StatusOK, docB, nil)
	clock.Advance(defaultMinTTL)
	arrived, release := srv.gate(t)
	c.onWait = func() {
		t.Error("Keys waited for the fetch although it had a set to serve")
		release() // fail rather than hang
	}
	mustKeys(t, c, idsA) // starts the refetch
	<-arrived            // which the server holds
	mustKeys(t, c, idsA)

	waiting := make(chan struct{}, 1)
	c.onWait = func() { waiting <- struct{}{} }
	refreshed := make(chan *Set, 1)
	go func() { s, _ := c.Refresh(context.Background()); refreshed <- s }()
	<-waiting
	release()
	if diff := cmp.Diff(idsB, edIDs(<-refreshed)); diff != "" {
		t.Errorf("Refresh during the fetch (-want +got):\n%s", diff)
	}
	mustKeys(t, c, idsB)
	wantRequests(t, srv, 2)
}

// TestFetchRespectsCallerContext checks, on the bubble's clock, that no
// caller is held beyond its own context by a key server that hangs, that
// the fetch it started goes on and serves later callers, and that a fetch
// nobody waits for still ends within the fetch timeout.
func TestFetchRespectsCallerContext(t *testing.T) {
	tests := []struct {
		name string
		// call is made while the server hangs; it must return after want
		// (on the bubble's clock) with an error wrapping ErrUnavailable.
		call func(c *Cache) (*Set, error)
		want time.Duration
	}{
		{"Keys with a 100 ms deadline, cold start", func(c *Cache) (*Set, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			return c.Keys(ctx)
		}, 100 * time.Millisecond},
		{"Refresh with a 100 ms deadline, cold start", func(c *Cache) (*Set, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			return c.Refresh(ctx)
		}, 100 * time.Millisecond},
		{"Keys without deadline: the fetch timeout ends it", func(c *Cache) (*Set, error) {
			return c.Keys(context.Background())
		}, fetchTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tr := jwkstest.NewTransport(docA)
				tr.Hold()
				c := newTestCache(t, "https://keys.example/jwks.json", newClock(), func(cfg *Config) {
					cfg.HTTPClient = tr.Client()
				})
				start := time.Now()
				s, err := tt.call(c)
				if got := time.Since(start); got != tt.want {
					t.Errorf("returned after %v, want %v", got, tt.want)
				}
				if s != nil || !errors.Is(err, ErrUnavailable) {
					t.Fatalf("got %v, %v; want ErrUnavailable", edIDs(s), err)
				}
				if tt.want == fetchTimeout {
					tr.Release()
					return
				}
				// The fetch is still running; once the server answers, its
				// result serves the next caller without another request.
				tr.Release()
				synctest.Wait()
				mustKeys(t, c, idsA)
				if n := tr.Requests(); n != 1 {
					t.Errorf("server saw %d requests, want 1", n)
				}
			})
		})
	}
}

// TestStaleSetWhileRefreshHangs checks, on the bubble's clock, that an
// expired set is served at once while its refetch hangs, and that Refresh
// then returns the old set with an error when its context ends.
func TestStaleSetWhileRefreshHangs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr := jwkstest.NewTransport(docA)
		clock := newClock()
		c := newTestCache(t, "https://keys.example/jwks.json", clock, func(cfg *Config) {
			cfg.HTTPClient = tr.Client()
		})
		first := mustKeys(t, c, idsA)

		tr.Hold()
		clock.Advance(defaultMinTTL) // expired
		start := time.Now()
		for range 3 {
			if s := mustKeys(t, c, idsA); s != first {
				t.Fatal("Keys did not serve the expired set")
			}
		}
		if got := time.Since(start); got != 0 {
			t.Errorf("Keys took %v with an expired set, want no wait", got)
		}

		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		s, err := c.Refresh(ctx)
		if got := time.Since(start); got != 100*time.Millisecond {
			t.Errorf("Refresh returned after %v, want 100ms", got)
		}
		if s != first || !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Refresh = %v, %v; want the expired set and ErrUnavailable", edIDs(s), err)
		}
		if n := tr.Requests(); n != 2 {
			t.Errorf("server saw %d requests, want 2 (one refetch shared by every call)", n)
		}
		tr.Release()
	})
}

// TestFetchTimeoutWithTransportIgnoringContext checks, on the bubble's
// clock, that a fetch whose transport ignores the request's context still
// ends for the cache at the fetch timeout, and that once RefetchInterval
// has passed the next caller fetches again rather than wait for the stuck
// request forever.
func TestFetchTimeoutWithTransportIgnoringContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stuck := jwkstest.NewTransport(docA)
		stuck.IgnoreContext = true
		stuck.Hold()
		working := jwkstest.NewTransport(docB)
		var calls atomic.Int32
		clock := newClock()
		c := newTestCache(t, "https://keys.example/jwks.json", clock, func(cfg *Config) {
			cfg.HTTPClient = &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				if calls.Add(1) == 1 {
					return stuck.RoundTrip(r)
				}
				return working.RoundTrip(r)
			})}
		})
		defer stuck.Release() // let the stuck request's goroutine end with the bubble

		for _, call := range []struct {
			name string
			f    func(context.Context) (*Set, error)
		}{{"Keys", c.Keys}, {"Refresh", c.Refresh}} {
			ctx, cancel := context.WithTimeout(context.Background(), 2*fetchTimeout)
			start := time.Now()
			s, err := call.f(ctx)
			cancel()
			if got := time.Since(start); call.name == "Keys" && got != fetchTimeout {
				t.Errorf("cold Keys returned after %v, want the fetch timeout %v", got, fetchTimeout)
			}
			if s != nil || !errors.Is(err, ErrUnavailable) {
				t.Fatalf("%s while the transport is stuck = %v, %v; want ErrUnavailable", call.name, edIDs(s), err)
			}
		}

		clock.Advance(defaultRefetchInterval)
		ctx, cancel := context.WithTimeout(context.Background(), 2*fetchTimeout)
		defer cancel()
		s, err := c.Keys(ctx)
		if err != nil || !cmp.Equal(edIDs(s), idsB) {
			t.Fatalf("Keys after the refetch interval = %v, %v; want %v from a new fetch", edIDs(s), err, idsB)
		}
		if n := calls.Load(); n != 2 {
			t.Errorf("transport saw %d requests, want 2", n)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
