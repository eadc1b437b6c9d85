package jwks

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sync"
	"time"
)

// Defaults for the zero values of Config.
const (
	defaultMinTTL          = 5 * time.Minute
	defaultMaxTTL          = 24 * time.Hour
	defaultRefetchInterval = 30 * time.Second
	defaultMaxBytes        = 1 << 20
)

// fetchTimeout bounds one fetch, whatever the HTTP client. The fetch runs
// in its own goroutine, on a context detached from the callers'
// cancellation (see Cache), so this is what ends it when a key server never
// answers; the default client needs no timeout of its own.
const fetchTimeout = 10 * time.Second

// maxRedirects bounds redirects followed by the default HTTP client.
const maxRedirects = 5

// ErrUnavailable is wrapped by every fetch failure (network, non-200 status,
// response too large, undecodable, no usable key), so callers can tell "the
// keys could not be obtained" from "the signature is wrong" with errors.Is.
var ErrUnavailable = errors.New("jwks: key set unavailable")

// Config configures a Cache. Only URL is required; zero values pick the
// documented defaults.
type Config struct {
	// URL is the JWK Set location: https, or http only when the host is a
	// loopback address (see ValidateURL).
	URL string
	// HTTPClient performs the fetches. nil means a client that refuses
	// redirects to URLs ValidateURL rejects and https to http downgrades,
	// which http.DefaultClient does not. A client supplied here is used as
	// is. Either way a fetch ends for the cache within 10 s (see Cache).
	HTTPClient *http.Client
	// Now is the clock for TTLs and the refetch interval; nil means time.Now.
	Now func() time.Time
	// MinTTL is the floor for the Cache-Control max-age, and the TTL of a
	// response without a usable max-age (see Cache). 0 means 5 minutes.
	MinTTL time.Duration
	// MaxTTL is the ceiling for the Cache-Control max-age, so a rotated
	// key is picked up eventually whatever the server says. 0 means 24 hours.
	MaxTTL time.Duration
	// RefetchInterval is the minimum time between two fetch attempts,
	// whatever caused them (expiry, Refresh, a retry after a failure); an
	// expired set is served meanwhile. 0 means 30 seconds.
	RefetchInterval time.Duration
	// MaxBytes caps the response body; a larger response is an error.
	// 0 means 1 MiB.
	MaxBytes int64
}

// Cache holds the key set fetched from one URL. It is safe for concurrent
// use.
//
// Fetching: at most one fetch runs at a time, in a goroutine of its own
// started by the Keys or Refresh call that found it needed (never by New),
// on a context that keeps the starting caller's values but not its
// cancellation, bounded by a 10 s timeout. The fetch always ends for the
// cache within that time: its outcome is recorded then, a failure if the
// HTTP client has not returned, so a client that ignores the request's
// context (net/http's honours it) cannot keep the cache from fetching
// again; it only keeps its own goroutine blocked. Every caller, the
// starting one included, waits for the fetch's result or for its own
// context, whichever comes first, and a caller that leaves early does not
// stop the fetch: its result serves the next callers. Keys never waits when it holds a set, even an expired one:
// it returns that set at once and the refetch runs meanwhile.
//
// TTL: a set is fresh for the response's Cache-Control max-age (minus Age)
// clamped to [MinTTL, MaxTTL]. Without a usable max-age (absent, malformed,
// no-cache, no-store) the TTL is MinTTL rather than MaxTTL: not knowing how
// soon keys rotate, the short TTL picks a rotation up sooner, and the floor
// still bounds the fetch rate.
//
// Rate limit: a fetch attempt is never started within RefetchInterval of
// the previous attempt (successful or not), so forged deliveries cannot
// make the cache hammer the key server. This applies to expiry, to Refresh
// and to retries after a failed fetch, including when no set was ever
// obtained: then the remembered failure is returned until the interval has
// passed. A set that expires within the interval is served until it ends.
type Cache struct {
	url             string
	client          *http.Client
	now             func() time.Time
	minTTL          time.Duration
	maxTTL          time.Duration
	refetchInterval time.Duration
	maxBytes        int64

	mu          sync.Mutex
	set         *Set       // last good set, nil until the first success
	attempted   bool       // whether lastAttempt is meaningful
	lastAttempt time.Time  // start of the last fetch attempt
	lastErr     error      // failure of the last attempt, nil after a success
	inflight    *fetchCall // the running fetch, nil when none

	// onWait, when set (by tests), is called when a caller starts waiting
	// for a fetch.
	onWait func()
}

// fetchCall is one in-flight fetch. set and err are written before done
// is closed and only read after: set is the cache's newest set once the
// fetch ended (the old one if it failed), err its failure.
type fetchCall struct {
	done chan struct{}
	set  *Set
	err  error
}

// New returns a Cache for cfg, with zero fields set to their defaults. It
// returns an error if the URL fails ValidateURL, if a duration or MaxBytes
// is negative, or if MinTTL exceeds MaxTTL. It fetches nothing and starts
// no goroutine: the first Keys call starts the first fetch.
func New(cfg Config) (*Cache, error) {
	if err := ValidateURL(cfg.URL); err != nil {
		return nil, err
	}
	if cfg.MinTTL < 0 || cfg.MaxTTL < 0 || cfg.RefetchInterval < 0 || cfg.MaxBytes < 0 {
		return nil, errors.New("jwks: MinTTL, MaxTTL, RefetchInterval and MaxBytes must not be negative")
	}
	c := &Cache{
		url:             cfg.URL,
		client:          cfg.HTTPClient,
		now:             cfg.Now,
		minTTL:          cmp.Or(cfg.MinTTL, defaultMinTTL),
		maxTTL:          cmp.Or(cfg.MaxTTL, defaultMaxTTL),
		refetchInterval: cmp.Or(cfg.RefetchInterval, defaultRefetchInterval),
		maxBytes:        cmp.Or(cfg.MaxBytes, defaultMaxBytes),
	}
	if c.minTTL > c.maxTTL {
		return nil, fmt.Errorf("jwks: MinTTL %v exceeds MaxTTL %v", c.minTTL, c.maxTTL)
	}
	if c.client == nil {
		c.client = defaultClient()
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// defaultClient follows only redirects that stay acceptable: a redirect
// must not take the fetch to plain http on a non-loopback host, nor from
// https to http at all. It has no Timeout: fetchTimeout bounds every fetch.
func defaultClient() *http.Client {
	return &http.Client{
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("jwks: stopped after %d redirects", maxRedirects)
			}
			if via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
				return errors.New("jwks: refusing redirect from https to " + req.URL.Scheme)
			}
			return ValidateURL(req.URL.String())
		},
	}
}

// Keys returns the cached set. When the set has expired, Keys returns it at
// once, with a nil error, and starts a refetch in the background (unless one
// is running or RefetchInterval has not passed since the last attempt); the
// next callers get the new set once it has arrived. When a refetch fails,
// the old set keeps being served; the failure is remembered, and the next
// attempt waits for RefetchInterval, so a key server outage costs one
// request per interval, not one per call. Only when the cache holds no set
// at all does Keys wait for a fetch (starting one if none runs).
//
// Keys returns an error wrapping ErrUnavailable when there is no set to
// return: the fetch failed, an earlier failure is still within
// RefetchInterval, or ctx ended before the fetch did (the error then also
// wraps ctx's cause; the fetch goes on).
func (c *Cache) Keys(ctx context.Context) (*Set, error) {
	c.mu.Lock()
	s := c.set
	if s == nil {
		s, err := c.fetchLocked(ctx)
		if s == nil {
			return nil, err
		}
		return s, nil
	}
	if !c.now().Before(s.Expires) {
		_, _ = c.startLocked(ctx) // a fetch that cannot start now changes nothing
	}
	c.mu.Unlock()
	return s, nil
}

// Refresh forces a refetch because no cached key verified a signature (or
// an unknown kid arrived), but at most once per RefetchInterval counted
// from the last fetch attempt: within the interval it returns the current
// set without fetching. A Refresh that finds a fetch already running waits
// for that fetch instead of starting another.
//
// Refresh returns the newest set the cache holds (nil if none) and a nil
// error when that set is as current as the rate limit allows: the fetch it
// waited for succeeded, or the last attempt did. Otherwise it returns that
// set, possibly nil, with an error wrapping ErrUnavailable: the fetch
// failed, the last attempt failed and RefetchInterval has not passed, or
// ctx ended before the fetch did (the error then also wraps ctx's cause;
// the fetch goes on). A caller for which no key in the set verifies can so
// tell "wrong signature" from "the keys could not be brought up to date".
func (c *Cache) Refresh(ctx context.Context) (*Set, error) {
	c.mu.Lock()
	return c.fetchLocked(ctx)
}

// fetchLocked joins the running fetch, or starts one if the rate limit
// allows, and waits for it or for ctx; else it returns what the cache holds
// with the last attempt's failure. c.mu must be held; it is released before
// any waiting.
func (c *Cache) fetchLocked(ctx context.Context) (*Set, error) {
	call, err := c.startLocked(ctx)
	set, lastErr := c.set, c.lastErr
	c.mu.Unlock()
	switch {
	case call != nil:
		return c.wait(ctx, call)
	case err != nil:
		return set, err
	case set == nil:
		return nil, cmp.Or(lastErr, ErrUnavailable)
	}
	return set, lastErr
}

// startLocked returns the running fetch, or starts one and returns it. It
// returns nil and a nil error when RefetchInterval has not passed since the
// last attempt, and nil and an error wrapping ErrUnavailable and ctx's cause
// when ctx has ended: with nobody to wait for the result, the rate-limit
// slot is not spent. c.mu must be held.
func (c *Cache) startLocked(ctx context.Context) (*fetchCall, error) {
	if c.inflight != nil {
		return c.inflight, nil
	}
	now := c.now()
	if c.attempted && now.Sub(c.lastAttempt) < c.refetchInterval {
		return nil, nil
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, context.Cause(ctx))
	}
	call := &fetchCall{done: make(chan struct{})}
	c.inflight = call
	c.attempted = true
	c.lastAttempt = now
	go c.run(context.WithoutCancel(ctx), call)
	return call, nil
}

// run performs call's fetch, records the outcome and wakes the waiters.
// The fetch itself runs in a goroutine of its own, so that the outcome is
// recorded at fetchTimeout even when the HTTP client does not honour the
// request's context: the next caller after RefetchInterval can then fetch
// again. Such a client's goroutine stays blocked until its transport
// returns, and its late result is dropped; that leak is the transport's
// fault, and it costs one goroutine per RefetchInterval at most. A panic in
// the fetch becomes its error (nobody else could recover it in that
// goroutine), so waiters are never stranded.
func (c *Cache) run(ctx context.Context, call *fetchCall) {
	fctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	type outcome struct {
		set *Set
		err error
	}
	done := make(chan outcome, 1) // buffered: a late fetch must not block
	go func() {
		o := outcome{err: fmt.Errorf("%w: fetch did not complete", ErrUnavailable)}
		defer func() {
			if r := recover(); r != nil {
				o = outcome{err: fmt.Errorf("%w: fetch panicked: %v", ErrUnavailable, r)}
			}
			done <- o
		}()
		o.set, o.err = c.fetch(fctx)
	}()

	var o outcome
	select {
	case o = <-done:
	case <-fctx.Done():
		select {
		case o = <-done: // the fetch ended at the deadline too: keep its result
		default:
			o.err = fmt.Errorf("%w: no answer from the key server within %v: %w", ErrUnavailable, fetchTimeout, context.Cause(fctx))
		}
	}

	c.mu.Lock()
	if o.err == nil {
		c.set, c.lastErr = o.set, nil
	} else {
		c.lastErr = o.err
	}
	call.set, call.err = c.set, o.err
	c.inflight = nil
	c.mu.Unlock()
	close(call.done)
}

// wait blocks until call finishes or ctx ends. When ctx ends first it
// returns the set the cache holds then, with an error.
func (c *Cache) wait(ctx context.Context, call *fetchCall) (*Set, error) {
	if c.onWait != nil {
		c.onWait()
	}
	select {
	case <-call.done:
		return call.set, call.err
	case <-ctx.Done():
		c.mu.Lock()
		set := c.set
		c.mu.Unlock()
		return set, fmt.Errorf("%w: gave up waiting for the key fetch: %w", ErrUnavailable, context.Cause(ctx))
	}
}

// fetch GETs and parses the set. Errors wrap ErrUnavailable and describe the
// failure without quoting the response body, which is untrusted and may be
// large.
func (c *Cache) fetch(ctx context.Context) (*Set, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Drain a little so the connection can be reused for the next try.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, fmt.Errorf("%w: GET %s: HTTP status %d", ErrUnavailable, req.URL.Redacted(), resp.StatusCode)
	}
	limit := c.maxBytes
	if limit < math.MaxInt64 {
		limit++ // one byte more than allowed tells "exactly MaxBytes" from "too large"
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return nil, fmt.Errorf("%w: GET %s: reading response: %w", ErrUnavailable, req.URL.Redacted(), err)
	}
	if int64(len(body)) > c.maxBytes {
		return nil, fmt.Errorf("%w: GET %s: response larger than %d bytes", ErrUnavailable, req.URL.Redacted(), c.maxBytes)
	}
	ed, rs, err := parse(body)
	if err != nil {
		return nil, err
	}
	now := c.now()
	return &Set{
		Ed25519: ed,
		RSA:     rs,
		Fetched: now,
		Expires: now.Add(ttl(resp.Header, c.minTTL, c.maxTTL)),
	}, nil
}
