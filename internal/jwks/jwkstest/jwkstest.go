// Package jwkstest provides an in-memory JWK Set server for the tests of
// the packages that fetch keys (internal/jwks, verify, webhook). It is
// imported by tests only.
//
// A Transport answers without a network, so it works inside a
// testing/synctest bubble: a request it holds blocks on a channel, which is
// durable blocking, and the bubble's clock moves on meanwhile, which a real
// connection would not allow.
//
//	tr := jwkstest.NewTransport(doc)
//	tr.Hold() // the key server stops answering
//	cfg := verify.Config{JWKSURL: "https://keys.example/jwks.json", HTTPClient: tr.Client()}
//	...
//	tr.Release() // it answers at last
package jwkstest

import (
	"bytes"
	"io"
	"net/http"
	"sync"
)

// Transport is an http.RoundTripper that serves one JWK Set document from
// memory with status 200 and no Cache-Control header, whatever the request
// URL. It is safe for concurrent use.
type Transport struct {
	// IgnoreContext makes a held request wait for Release even after its
	// context has ended, as a broken transport would. Set it before the
	// first request.
	IgnoreContext bool

	mu       sync.Mutex
	doc      []byte
	release  chan struct{} // non-nil while holding
	requests int
}

// NewTransport returns a Transport serving doc, answering at once.
func NewTransport(doc []byte) *Transport {
	return &Transport{doc: doc}
}

// Client returns an http.Client whose requests t answers.
func (t *Transport) Client() *http.Client {
	return &http.Client{Transport: t}
}

// RoundTrip counts the request and answers it with the document. While t
// holds, it first waits for Release, or for the request's context to end
// (then it returns the context's error) unless IgnoreContext is set.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.mu.Lock()
	t.requests++
	doc, release := t.doc, t.release
	t.mu.Unlock()
	if release != nil {
		if t.IgnoreContext {
			<-release
		} else {
			select {
			case <-release:
			case <-req.Context().Done():
				return nil, req.Context().Err()
			}
		}
	}
	return &http.Response{
		StatusCode: http.StatusOK,
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       io.NopCloser(bytes.NewReader(doc)),
		Request:    req,
	}, nil
}

// Hold makes the requests that arrive from now on wait for Release.
func (t *Transport) Hold() {
	t.mu.Lock()
	if t.release == nil {
		t.release = make(chan struct{})
	}
	t.mu.Unlock()
}

// Release answers the held requests, and every later one at once until the
// next Hold. A test that holds requests must release them before it ends:
// a goroutine still blocked in RoundTrip fails a synctest bubble.
func (t *Transport) Release() {
	t.mu.Lock()
	if t.release != nil {
		close(t.release)
		t.release = nil
	}
	t.mu.Unlock()
}

// Requests returns the number of requests t has received.
func (t *Transport) Requests() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.requests
}
