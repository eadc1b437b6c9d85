package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParse(t *testing.T) {
	ts := time.Date(2026, 1, 22, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		body string
		want *Event
	}{
		{
			name: "batch succeeded",
			body: `{"type":"batch.succeeded","version":"v1","timestamp":"2026-01-22T12:00:00Z","data":{"id":"batches/abc123","output_file_uri":"gs://bucket/results.jsonl"}}`,
			want: &Event{Type: BatchSucceeded, Version: "v1", Timestamp: ts,
				Data: Data{ID: "batches/abc123", OutputFileURI: "gs://bucket/results.jsonl"}},
		},
		{
			name: "batch failed, numeric error code",
			body: `{"type":"batch.failed","version":"v1","timestamp":"2026-01-22T12:00:00Z","data":{"id":"batches/x","error_code":3,"error_message":"bad input"}}`,
			want: &Event{Type: BatchFailed, Version: "v1", Timestamp: ts,
				Data: Data{ID: "batches/x", ErrorCode: "3", ErrorMessage: "bad input"}},
		},
		{
			name: "interaction failed, string error code",
			body: `{"type":"interaction.failed","version":"v1","timestamp":"2026-01-22T12:00:00Z","data":{"id":"abc","error_code":"INTERNAL"}}`,
			want: &Event{Type: InteractionFailed, Version: "v1", Timestamp: ts,
				Data: Data{ID: "abc", ErrorCode: "INTERNAL"}},
		},
		{
			name: "null error code",
			body: `{"type":"interaction.failed","version":"v1","timestamp":"2026-01-22T12:00:00Z","data":{"id":"abc","error_code":null}}`,
			want: &Event{Type: InteractionFailed, Version: "v1", Timestamp: ts, Data: Data{ID: "abc"}},
		},
		{
			name: "video with all three fields",
			body: `{"type":"video.generated","version":"v1","timestamp":"2026-01-22T12:00:00.5+02:00","data":{"id":"models/veo/operations/o1","output_file_uri":"gs://b/v.mp4","file_name":"files/v","video_uri":"https://x/v.mp4"}}`,
			want: &Event{Type: VideoGenerated, Version: "v1", Timestamp: time.Date(2026, 1, 22, 10, 0, 0, 5e8, time.UTC),
				Data: Data{ID: "models/veo/operations/o1", OutputFileURI: "gs://b/v.mp4", FileName: "files/v", VideoURI: "https://x/v.mp4"}},
		},
		{
			name: "unknown type, unknown fields, other version, no data",
			body: `{"type":"webhook.ping","version":"v2","timestamp":"2026-01-22T12:00:00Z","extra":{"a":[1,2]}}`,
			want: &Event{Type: "webhook.ping", Version: "v2", Timestamp: ts},
		},
		{
			name: "unknown type with data of another shape",
			body: `{"type":"batch.completed","timestamp":"2026-01-22T12:00:00Z","data":"whatever"}`,
			want: &Event{Type: "batch.completed", Timestamp: ts},
		},
		{
			name: "user_metadata inside data wins",
			body: `{"type":"interaction.completed","version":"v1","timestamp":"2026-01-22T12:00:00Z","user_metadata":{"k":"top"},"data":{"id":"i1","user_metadata":{"k":"data","n":2}}}`,
			want: &Event{Type: InteractionCompleted, Version: "v1", Timestamp: ts, Data: Data{ID: "i1"},
				UserMetadata: json.RawMessage(`{"k":"data","n":2}`)},
		},
		{
			name: "top-level user_metadata",
			body: `{"type":"interaction.completed","version":"v1","timestamp":"2026-01-22T12:00:00Z","user_metadata":{"k":"top"},"data":{"id":"i1"}}`,
			want: &Event{Type: InteractionCompleted, Version: "v1", Timestamp: ts, Data: Data{ID: "i1"},
				UserMetadata: json.RawMessage(`{"k":"top"}`)},
		},
		{
			name: "user_metadata not an object is ignored",
			body: `{"type":"interaction.completed","version":"v1","timestamp":"2026-01-22T12:00:00Z","user_metadata":[1],"data":{"id":"i1","user_metadata":"x"}}`,
			want: &Event{Type: InteractionCompleted, Version: "v1", Timestamp: ts, Data: Data{ID: "i1"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			got, err := Parse(body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !bytes.Equal(got.Raw, body) {
				t.Errorf("Raw = %s, want the body", got.Raw)
			}
			tt.want.Raw = body
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Parse mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseRawIsACopy(t *testing.T) {
	body := []byte(`{"type":"x","timestamp":"2026-01-22T12:00:00Z"}`)
	ev, err := Parse(body)
	if err != nil {
		t.Fatal(err)
	}
	body[2] = 'X'
	if ev.Raw[2] != 't' {
		t.Error("Raw aliases the caller's buffer")
	}
}

func TestParseErrors(t *testing.T) {
	const (
		twice  = "an object holds a member name twice"
		inCase = "two member names of one field differ only in case"
	)
	tests := []struct {
		name string
		body string
		want ParseError
	}{
		{"empty", ``, ParseError{Reason: "invalid JSON at offset 0"}},
		{"not JSON", `nope`, ParseError{Reason: "invalid JSON at offset 2"}},
		{"array", `[1]`, ParseError{Reason: "must be a JSON object"}},
		{"string", `"x"`, ParseError{Reason: "must be a JSON object"}},
		{"trailing garbage", `{"type":"x","timestamp":"2026-01-22T12:00:00Z"} x`, ParseError{Reason: "invalid JSON at offset 49"}},
		{"no type", `{"timestamp":"2026-01-22T12:00:00Z","data":{"id":"x"}}`, ParseError{Field: "type", Reason: "required"}},
		{"empty type", `{"type":"","timestamp":"2026-01-22T12:00:00Z","data":{"id":"x"}}`, ParseError{Field: "type", Reason: "required"}},
		{"numeric type", `{"type":1,"timestamp":"2026-01-22T12:00:00Z"}`, ParseError{Field: "type", Reason: "must be a JSON string"}},
		{"no timestamp", `{"type":"batch.succeeded","data":{"id":"x"}}`, ParseError{Field: "timestamp", Reason: "required"}},
		{"numeric timestamp", `{"type":"batch.succeeded","timestamp":1769083200,"data":{"id":"x"}}`, ParseError{Field: "timestamp", Reason: "must be a JSON string"}},
		{"timestamp not RFC 3339", `{"type":"batch.succeeded","timestamp":"2026-01-22 12:00:00","data":{"id":"x"}}`, ParseError{Field: "timestamp", Reason: "must be an RFC 3339 date-time"}},
		{"timestamp without zone", `{"type":"batch.succeeded","timestamp":"2026-01-22T12:00:00","data":{"id":"x"}}`, ParseError{Field: "timestamp", Reason: "must be an RFC 3339 date-time"}},
		{"known type without data", `{"type":"batch.succeeded","timestamp":"2026-01-22T12:00:00Z"}`, ParseError{Field: "data.id", Reason: "required"}},
		{"known type, null data", `{"type":"batch.succeeded","timestamp":"2026-01-22T12:00:00Z","data":null}`, ParseError{Field: "data.id", Reason: "required"}},
		{"known type without id", `{"type":"video.generated","timestamp":"2026-01-22T12:00:00Z","data":{"file_name":"f"}}`, ParseError{Field: "data.id", Reason: "required"}},
		{"known type, data not an object", `{"type":"batch.failed","timestamp":"2026-01-22T12:00:00Z","data":[1]}`, ParseError{Field: "data", Reason: "must be a JSON object"}},
		{"numeric id", `{"type":"batch.failed","timestamp":"2026-01-22T12:00:00Z","data":{"id":7}}`, ParseError{Field: "data.id", Reason: "must be a JSON string"}},
		{"boolean error code", `{"type":"batch.failed","timestamp":"2026-01-22T12:00:00Z","data":{"id":"b","error_code":true}}`, ParseError{Field: "data.error_code", Reason: "must be a number or a string"}},
		{"object version", `{"type":"x","version":{},"timestamp":"2026-01-22T12:00:00Z"}`, ParseError{Field: "version", Reason: "must be a JSON string"}},
		// A name given twice: a reader of Raw that takes the first would
		// see another event than the last one, which encoding/json takes.
		{"data twice", `{"type":"batch.succeeded","timestamp":"2026-01-22T12:00:00Z","data":{"id":"batches/theirs"},"data":{"id":"batches/ours"}}`,
			ParseError{Reason: twice}},
		{"data twice, the first not an object", `{"type":"batch.succeeded","timestamp":"2026-01-22T12:00:00Z","data":"x","data":{"id":"batches/ours"}}`,
			ParseError{Reason: twice}},
		{"type twice", `{"type":"x","type":"batch.expired","timestamp":"2026-01-22T12:00:00Z","data":{"id":"b"}}`, ParseError{Reason: twice}},
		{"type twice, escaped", `{"type":"x","t\u0079pe":"batch.expired","timestamp":"2026-01-22T12:00:00Z","data":{"id":"b"}}`, ParseError{Reason: twice}},
		{"type in two cases", `{"type":"x","Type":"batch.expired","timestamp":"2026-01-22T12:00:00Z","data":{"id":"b"}}`, ParseError{Reason: inCase}},
		{"data in two cases", `{"type":"batch.succeeded","timestamp":"2026-01-22T12:00:00Z","data":{"id":"a"},"DATA":{"id":"b"}}`, ParseError{Reason: inCase}},
		{"data.id twice", `{"type":"batch.succeeded","timestamp":"2026-01-22T12:00:00Z","data":{"id":"a","id":"b"}}`, ParseError{Field: "data", Reason: twice}},
		{"data.id in two cases", `{"type":"batch.succeeded","timestamp":"2026-01-22T12:00:00Z","Data":{"id":"a","ID":"b"}}`, ParseError{Field: "data", Reason: inCase}},
		{"user_metadata key twice", `{"type":"x","timestamp":"2026-01-22T12:00:00Z","user_metadata":{"k":1,"k":2}}`, ParseError{Field: "user_metadata", Reason: twice}},
		{"data.user_metadata key twice", `{"type":"x","timestamp":"2026-01-22T12:00:00Z","data":{"id":"a","user_metadata":{"genaihook_token":"a","genaihook_token":"b"}}}`,
			ParseError{Field: "data.user_metadata", Reason: twice}},
		{"deep in an unknown field", `{"type":"x","timestamp":"2026-01-22T12:00:00Z","extra":[1,{"a":{"b":[{"c":1,"c":2}]}}]}`, ParseError{Reason: twice}},
		{"deep in user_metadata", `{"type":"x","timestamp":"2026-01-22T12:00:00Z","user_metadata":{"a":[{"b":1,"b":2}]}}`, ParseError{Field: "user_metadata", Reason: twice}},
		{"twice, with invalid UTF-8 elsewhere", "{\"type\":\"x\xff\",\"timestamp\":\"2026-01-22T12:00:00Z\",\"data\":{},\"data\":{}}", ParseError{Reason: twice}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := Parse([]byte(tt.body))
			if err == nil {
				t.Fatalf("Parse = %+v, want an error", ev)
			}
			if !errors.Is(err, ErrMalformedEvent) {
				t.Errorf("error %v does not wrap ErrMalformedEvent", err)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError", err)
			}
			if diff := cmp.Diff(tt.want, *pe); diff != "" {
				t.Errorf("ParseError mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseErrorMessage(t *testing.T) {
	for _, tt := range []struct {
		err  ParseError
		want string
	}{
		{ParseError{Field: "data.id", Reason: "required"}, "webhook: malformed event: data.id: required"},
		{ParseError{Reason: "must be a JSON object"}, "webhook: malformed event: must be a JSON object"},
	} {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"type":"batch.succeeded","version":"v1","timestamp":"2026-01-22T12:00:00Z","data":{"id":"batches/abc123","output_file_uri":"gs://bucket/results.jsonl"}}`,
		`{"type":"batch.failed","version":"v1","timestamp":"2026-01-22T12:00:00Z","data":{"id":"batches/x","error_code":3,"error_message":"m"}}`,
		`{"type":"interaction.completed","timestamp":"2026-01-22T12:00:00.123+01:00","data":{"id":"i","user_metadata":{"genaihook_key":"k","genaihook_token":"t"}}}`,
		`{"type":"video.generated","timestamp":"2026-01-22T12:00:00Z","user_metadata":{"a":[{"b":null}]},"data":{"id":"v","error_code":"X"}}`,
		`{"type":"x","timestamp":"2026-01-22T12:00:00Z","data":"y"}`,
		`{"type":"batch.failed","timestamp":"2026-01-22T12:00:00Z","data":{"id":"b","error_code":-1e400}}`,
		`[]`, `null`, ``, `{"type":`, `{"timestamp":"0000-00-00T00:00:00Z"}`,
		`{"type":"batch.succeeded","timestamp":"2026-01-22T12:00:00Z","data":{"id":"batches/theirs"},"data":{"id":"batches/ours"}}`,
		`{"type":"batch.succeeded","timestamp":"2026-01-22T12:00:00Z","data":{"id":"a","ID":"b"}}`,
		`{"type":"x","timestamp":"2026-01-22T12:00:00Z","user_metadata":{"a":[{"b":1,"b":2}]}}`,
		`{"type":"x","t\u0079pe":"y","timestamp":"2026-01-22T12:00:00Z"}`,
		"{\"type\":\"x\",\"\xff\":1,\"\xfe\":2,\"timestamp\":\"2026-01-22T12:00:00Z\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := Parse(body)
		if err == nil {
			// No name given twice, as an independent decoder reads it.
			dec := jsontext.NewDecoder(bytes.NewReader(body), jsontext.AllowInvalidUTF8(true))
			if _, derr := dec.ReadValue(); errors.Is(derr, jsontext.ErrDuplicateName) {
				t.Fatalf("accepted a body with a duplicate name: %q: %v", body, derr)
			}
		}
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrMalformedEvent) {
				t.Fatalf("error %v (%T) is not a *ParseError wrapping ErrMalformedEvent", err, err)
			}
			if ev != nil {
				t.Fatal("Parse returned both an event and an error")
			}
			return
		}
		if !bytes.Equal(ev.Raw, body) {
			t.Fatal("Raw differs from the body")
		}
		if ev.Type == "" || !json.Valid(body) {
			t.Fatalf("accepted a body without a type, or not JSON: %q", body)
		}
		if ev.Type.Known() && ev.Data.ID == "" {
			t.Fatalf("accepted a known type without data.id: %q", body)
		}
	})
}

// TestParseMatchesEncodingJSON pins what Parse answers for bodies that a
// fast decoder may refuse or match differently from encoding/json, so that
// scanEvent cannot change it.
func TestParseMatchesEncodingJSON(t *testing.T) {
	ts := time.Date(2026, 1, 22, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		body string
		want *Event
	}{
		{
			name: "names in another case",
			body: `{"TYPE":"batch.succeeded","Version":"v1","timeStamp":"2026-01-22T12:00:00Z","DATA":{"Id":"b","USER_METADATA":{"k":"v"}}}`,
			want: &Event{Type: BatchSucceeded, Version: "v1", Timestamp: ts, Data: Data{ID: "b"},
				UserMetadata: json.RawMessage(`{"k":"v"}`)},
		},
		{
			name: "a name under Unicode case folding",
			body: `{"type":"x","ver\u017fion":"v1","timestamp":"2026-01-22T12:00:00Z"}`,
			want: &Event{Type: "x", Version: "v1", Timestamp: ts},
		},
		{
			name: "a name without its underscore is unknown",
			body: `{"type":"x","timestamp":"2026-01-22T12:00:00Z","userMetadata":{"k":"v"}}`,
			want: &Event{Type: "x", Timestamp: ts},
		},
		{
			name: "user_metadata keys that differ in case are two keys",
			body: `{"type":"x","timestamp":"2026-01-22T12:00:00Z","user_metadata":{"k":1,"K":2}}`,
			want: &Event{Type: "x", Timestamp: ts, UserMetadata: json.RawMessage(`{"k":1,"K":2}`)},
		},
		{
			name: "unknown names that differ in case are two names",
			body: `{"type":"x","timestamp":"2026-01-22T12:00:00Z","extra":1,"EXTRA":2,"data":{"more":1,"More":2}}`,
			want: &Event{Type: "x", Timestamp: ts},
		},
		{
			name: "one name in nested objects and arrays",
			body: `{"type":"x","timestamp":"2026-01-22T12:00:00Z","a":{"id":1},"b":[{"id":1},{"id":2}],"data":{"id":"d","x":{"id":"y"}}}`,
			want: &Event{Type: "x", Timestamp: ts, Data: Data{ID: "d"}},
		},
		{
			name: "a lone surrogate becomes U+FFFD",
			body: `{"type":"x\ud800","timestamp":"2026-01-22T12:00:00Z"}`,
			want: &Event{Type: "x\uFFFD", Timestamp: ts},
		},
		{
			name: "invalid UTF-8 becomes U+FFFD",
			body: "{\"type\":\"x\xff\",\"timestamp\":\"2026-01-22T12:00:00Z\"}",
			want: &Event{Type: "x\uFFFD", Timestamp: ts},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.body))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.want.Raw = []byte(tt.body)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzScanMatchesEncodingJSON checks scanEvent's contract: a body it takes,
// parseSlow (encoding/json, checkDuplicateNames and the validator) accepts
// too and parses to the same Event, so the fast path never changes what
// Parse answers; a body it defers is answered by parseSlow alone.
func FuzzScanMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{
		`{"type":"batch.succeeded","version":"v1","timestamp":"2026-01-22T12:00:00Z","data":{"id":"batches/abc123","output_file_uri":"gs://bucket/results.jsonl"}}`,
		`{"type":"batch.failed","version":"v1","timestamp":"2026-01-22T12:00:00Z","data":{"id":"batches/x","error_code":3,"error_message":"m"}}`,
		`{"type":"interaction.completed","timestamp":"2026-01-22T12:00:00Z","user_metadata":{"a":[{"b":null}],"n":-0,"e":1e308},"data":{"id":"i","user_metadata":{"k":"t","o":{}}}}`,
		`{"type":"video.generated","timestamp":"2026-01-22T12:00:00Z","data":{"id":"v","error_code":"X","video_uri":"u","file_name":"f"}}`,
		`{"TYPE":"x","Version":"v1","DATA":{"ID":"i","Error_Code":null,"USER_METADATA":{}}}`,
		`{"ver\u017fion":"v1","userMetadata":{},"user-metadata":{},"data":{"outputFileUri":"u"}}`,
		`{"type":"a","Type":"b","data":{"id":"x"},"data":{"file_name":"f"}}`,
		`{"user_metadata":{"k":1,"k":2}}`,
		`{"type":"\ud800\u00e9\ud83d\ude00\u0000"}`,
		"{\"type\":\"\xff\"}",
		`{"data":{"error_code":-1e400}}`, `{"user_metadata":{"a":1e400}}`,
		`{"data":null,"user_metadata":null}`, `{"data":"y","user_metadata":[1]}`,
		`null`, ` {} `, `[]`, ``, `{"type":"x"} x`,
		`{"type":"batch.succeeded","timestamp":"2026-01-22T12:00:00Z","data":{"id":"batches/theirs"},"data":{"id":"batches/ours"}}`,
		`{"data":{"id":"a","ID":"b"}}`, `{"data":{"user_metadata":{"k":1,"k":2}}}`, `{"x":[{"a":1,"a":2}]}`,
		`{"t\u0079pe":"a","type":"b"}`, `{"user_metadata":{"k":1,"K":2}}`,
		`{{"":"",""`,
	} {
		f.Add([]byte(s))
	}
	for _, s := range []string{
		`{"a":[1,{"b":[true,false,null,-0.5e-3,"x\u00e9\n"]}],"A":{},"":""}`, `"str"`, `-12.5E+3`, `[]`, `{ }`,
		`{"genaihook_key":"k","genaihook_token":"t"}`, "{\"caf\u00e9\":\"\u2028\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		// in as a body, and in at the places of a valid body where
		// scanEvent takes values, so that most inputs reach its success
		// path rather than stopping at a missing type or timestamp.
		for _, body := range [][]byte{
			in,
			wrap(`{"type":"x","timestamp":"2026-01-22T12:00:00Z","user_metadata":`, in, `}`),
			wrap(`{"type":"batch.failed","timestamp":"2026-01-22T12:00:00Z","data":{"id":"i","error_code":`, in, `,"user_metadata":{"k":1}}}`),
			wrap(`{"type":"video.generated","timestamp":"2026-01-22T12:00:00Z","data":{"id":"v","user_metadata":`, in, `},"user_metadata":{"top":1}}`),
			wrap(`{"type":"x","timestamp":"2026-01-22T12:00:00Z",`, in, `}`),
			wrap(`{"type":"interaction.failed","timestamp":"2026-01-22T12:00:00Z","data":{"id":"i",`, in, `}}`),
			wrap(`{"type":`, in, `,"version":"v1","timestamp":"2026-01-22T12:00:00Z","data":{"id":"i"}}`),
			wrap(`{"type":"x","timestamp":`, in, `}`),
		} {
			checkScan(t, body)
		}
	})
}

func wrap(head string, in []byte, tail string) []byte {
	return append(append([]byte(head), in...), tail...)
}

// checkScan fails t if scanEvent takes body and parseSlow answers
// otherwise.
func checkScan(t *testing.T, body []byte) {
	t.Helper()
	got, ok := scanEvent(body)
	if !ok {
		return
	}
	want, err := parseSlow(body)
	if err != nil {
		t.Fatalf("scanEvent took %q, parseSlow refuses it: %v", body, err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("scanEvent(%q) mismatch (-parseSlow +scanEvent):\n%s", body, diff)
	}
	if got.UserMetadata != nil && cap(got.UserMetadata) != len(got.UserMetadata) {
		t.Fatalf("UserMetadata of %q has room to grow into Raw", body)
	}
}

// TestScanTakesTypicalBodies makes sure the fast path is the one the
// deliveries Gemini sends take, not parseSlow.
func TestScanTakesTypicalBodies(t *testing.T) {
	for _, body := range []string{
		string(bodyTypical), string(body1KiB),
		`{"type":"batch.failed","version":"v1","timestamp":"2026-01-22T12:00:00Z","data":{"id":"batches/x","error_code":3,"error_message":"bad input"}}`,
		`{"type":"interaction.requires_action","version":"v1","timestamp":"2026-01-22T12:00:00.123456+01:00","data":{"id":"v1_abc","user_metadata":{"genaihook_key":"k","genaihook_token":"t","n":[1,-2.5e3,true,false,null,{}]}}}`,
		"{\n  \"type\": \"webhook.ping\",\n  \"timestamp\": \"2026-01-22T12:00:00Z\",\n  \"user_metadata\": {\"caf\u00e9\": \"\\u00e9\\n\"}\n}",
	} {
		if _, ok := scanEvent([]byte(body)); !ok {
			t.Errorf("scanEvent deferred %q to parseSlow", body)
		}
	}
}

// TestScanStringBytes checks that the scanner sees a special byte at every
// position of a string, within and after its eight-byte steps: a control
// character and invalid UTF-8 are deferred to parseSlow, an escape and
// valid UTF-8 are taken.
func TestScanStringBytes(t *testing.T) {
	for _, tt := range []struct {
		in   string
		take bool
	}{{"\x01", false}, {"\x1f", false}, {"\xff", false}, {"\\n", true}, {"\\u00e9", true}, {"é", true}, {"\\\"", true}} {
		for pos := range 20 {
			v := strings.Repeat("a", pos) + tt.in + strings.Repeat("b", 19-pos)
			body := []byte(`{"type":"x","timestamp":"2026-01-22T12:00:00Z","k":"` + v + `"}`)
			if _, ok := scanEvent(body); ok != tt.take {
				t.Errorf("scanEvent(%q) took it = %v, want %v", body, ok, tt.take)
			}
			checkScan(t, body)
		}
	}
}
