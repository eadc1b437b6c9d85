package geminitest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fuzzRoutes are the endpoints that read a request body.
var fuzzRoutes = []struct{ method, path string }{
	{"POST", "/v1beta/models/gemini-2.5-flash:batchGenerateContent"},
	{"POST", "/v1beta/models/veo-3.0-generate-001:predictLongRunning"},
	{"POST", "/v1beta/interactions"},
	{"POST", "/v1beta/webhooks"},
	{"PATCH", "/v1beta/webhooks/wh_fuzz"},
	{"POST", "/v1beta/webhooks/wh_fuzz:rotateSigningSecret"},
	{"POST", "/v1beta/webhooks/wh_fuzz:ping"},
	{"POST", "/v1beta/batches/fuzz:cancel"},
	{"POST", "/v1beta/interactions/v1_fuzz/cancel"},
}

// FuzzServerRequestBody sends arbitrary bytes to every endpoint that reads
// a body: the fake must never panic or answer 5xx, and every answer must be
// JSON, an error in the shape of the endpoint's family when it is not 2xx.
func FuzzServerRequestBody(f *testing.F) {
	for _, seed := range []string{
		`{"batch":{"inputConfig":{"fileName":"files/in"},"webhookConfig":{"uris":["https://example.com/h"],"userMetadata":{"a":1}}}}`,
		`{"batch":{"input_config":{"requests":{"requests":[{"request":{"contents":[]},"metadata":{"key":"k"}}]}}}}`,
		`{"instances":[{"prompt":"a cat"}],"parameters":{"sampleCount":2},"webhookConfig":{"uris":[]}}`,
		`{"model":"gemini-omni-flash-preview","input":"hi","background":true,"response_modalities":["video"],"webhook_config":{"uris":["http://127.0.0.1:1/h"]}}`,
		`{"uri":"https://example.com/h","subscribed_events":["batch.succeeded"],"name":"n"}`,
		`{"state":"disabled"}`, `{"revocation_behavior":"revoke_previous_secrets_immediately"}`,
		`{}`, ``, `{} {}`, `{"a":1}`, `[1]`, `null`, `{"batch":{"displayName":1}}`, "{\"batch\":\xff}",
		`{"batch":{"inputConfig":{"fileName":"files/in"},"input_config":{}}}`,
	} {
		for i := range fuzzRoutes {
			f.Add(i, seed)
		}
	}
	s := NewUnstartedServer()
	s.URL = "http://127.0.0.1:1" // never started: deliveries to its own URL would fail, none are made
	s.Retry = []time.Duration{}
	s.Logf = func(string, ...any) {}
	s.webhooks["wh_fuzz"] = &fakeWebhook{id: "wh_fuzz", uri: "http://127.0.0.1:1/h", events: []string{"batch.succeeded"},
		state: hookDisabled, secrets: []fakeSecret{{value: newSigningSecret()}}}
	f.Cleanup(func() { s.Close() })
	f.Fuzz(func(t *testing.T, route int, body string) {
		if route < 0 || route >= len(fuzzRoutes) {
			return
		}
		rt := fuzzRoutes[route]
		rec := httptest.NewRecorder()
		s.serveHTTP(rec, httptest.NewRequest(rt.method, rt.path, strings.NewReader(body)))
		res := rec.Result()
		if res.StatusCode >= 500 {
			t.Fatalf("%s %s %q: %d %s", rt.method, rt.path, body, res.StatusCode, rec.Body)
		}
		if res.Header.Get("Content-Type") != "application/json" || !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %s %q: answer %q is not JSON", rt.method, rt.path, body, rec.Body)
		}
		if res.StatusCode < 300 {
			return
		}
		dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
		dec.DisallowUnknownFields()
		if strings.HasPrefix(rt.path, "/v1beta/interactions") {
			var e struct{ Error interactionsError }
			if err := dec.Decode(&e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("%s %s %q: %s is not the Interactions API's error shape", rt.method, rt.path, body, rec.Body)
			}
			return
		}
		var e struct{ Error apiError }
		if err := dec.Decode(&e); err != nil || e.Error.Code != res.StatusCode || e.Error.Status == "" || e.Error.Message == "" {
			t.Fatalf("%s %s %q: %s is not Google's error shape", rt.method, rt.path, body, rec.Body)
		}
	})
}

// FuzzDecodeBody checks the strict reader on arbitrary bytes: it never
// panics, and whatever it accepts is one JSON object with only the
// members the shape defines.
func FuzzDecodeBody(f *testing.F) {
	for _, seed := range []string{`{"batch":{"displayName":"x"}}`, `{"batch":{"display_name":"x"}}`, `{"batch":{}} x`, `{"x":1}`, ``, `[]`} {
		f.Add(seed)
	}
	sh := shape{"batch": {"displayName": nil, "inputConfig": {"fileName": nil}}}
	f.Fuzz(func(t *testing.T, body string) {
		var v map[string]any
		err := decodeBody([]byte(body), sh, protoNames, &v)
		if err != nil {
			return
		}
		if !json.Valid([]byte(body)) {
			t.Fatalf("accepted %q, which is not JSON", body)
		}
		for k := range v {
			if k != "batch" {
				t.Fatalf("accepted %q with member %q", body, k)
			}
		}
	})
}

// TestFuzzRoutesReadBodies keeps fuzzRoutes in step with the server: each
// route must reach a handler that reads the body (an unknown member is
// refused), not the router's 404 or 405.
func TestFuzzRoutesReadBodies(t *testing.T) {
	s := NewUnstartedServer()
	s.webhooks["wh_fuzz"] = &fakeWebhook{id: "wh_fuzz", state: hookDisabled}
	for _, rt := range fuzzRoutes {
		rec := httptest.NewRecorder()
		s.serveHTTP(rec, httptest.NewRequest(rt.method, rt.path, strings.NewReader(`{"fuzzUnknown":1}`)))
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "fuzzUnknown") {
			t.Errorf("%s %s: %d %s, want 400 naming the unknown member", rt.method, rt.path, rec.Code, rec.Body)
		}
	}
}
