package webhook

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/genaihook/genaihook/verify"
)

// body1KiB is a 1 KiB delivery: a batch event whose user_metadata is padded.
var body1KiB = func() []byte {
	head := `{"type":"batch.succeeded","version":"v1","timestamp":"2026-01-22T12:00:00Z","data":{"id":"batches/abc123","output_file_uri":"gs://bucket/results.jsonl","user_metadata":{"genaihook_key":"job-1","note":"`
	tail := `"}}}`
	return []byte(head + strings.Repeat("x", 1024-len(head)-len(tail)) + tail)
}()

// freshIDs verifies with a real Verifier and then gives each delivery a new
// webhook-id, so that one signed delivery, sent b.N times, goes the whole
// way to the HandlerFunc instead of being answered as a duplicate.
type freshIDs struct {
	v *verify.Verifier
	n atomic.Int64
}

func (f *freshIDs) Verify(ctx context.Context, h http.Header, body []byte) (verify.Result, error) {
	res, err := f.v.Verify(ctx, h, body)
	// One allocation, the id string itself: a real Verifier takes the id
	// from the request's header and allocates none for it.
	var buf [24]byte
	res.WebhookID = string(strconv.AppendInt(append(buf[:0], "msg_"...), f.n.Add(1), 10))
	return res, err
}

func signedHeader(b testing.TB, body []byte) http.Header {
	sig, err := verify.Sign(testSecret, "msg_1", testNow, body)
	if err != nil {
		b.Fatal(err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Webhook-Id", "msg_1")
	h.Set("Webhook-Timestamp", strconv.FormatInt(testNow.Unix(), 10))
	h.Set("Webhook-Signature", sig)
	return h
}

func newBenchHandler(b *testing.B) *Handler {
	if len(body1KiB) != 1024 {
		b.Fatalf("body is %d bytes", len(body1KiB))
	}
	return NewHandler(&freshIDs{v: newRealVerifier(b)}, func(context.Context, *Event) error { return nil },
		WithLogger(slog.New(slog.DiscardHandler)))
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// benchBodies are the deliveries the in-process benchmarks run on: one of
// the size Gemini sends, and the 1 KiB one with user_metadata.
var benchBodies = []struct {
	name string
	b    []byte
}{{"153B", bodyTypical}, {"1KiB", body1KiB}}

// BenchmarkServeHTTP is the whole in-process path for one new delivery;
// the handler's own cost is this minus BenchmarkVerifyOnly.
func BenchmarkServeHTTP(b *testing.B) {
	for _, body := range benchBodies {
		b.Run(body.name, func(b *testing.B) { benchServe(b, newBenchHandler(b), body.b) })
	}
}

// benchServe serves h one signed delivery of body per iteration, reusing
// the request, its body and the ResponseWriter.
func benchServe(b *testing.B, h http.Handler, body []byte) {
	hdr := signedHeader(b, body)
	rd := bytes.NewReader(body)
	r := &http.Request{Method: http.MethodPost, Header: hdr, Body: io.NopCloser(rd), ContentLength: int64(len(body))}
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	cpu0 := processCPU()
	for b.Loop() {
		rd.Reset(body)
		clear(w.h)
		h.ServeHTTP(w, r)
	}
	reportCPU(b, cpu0)
}

// reportCPU reports the CPU time the process used per iteration since
// cpu0, garbage collection included, as cpu-ns/op: on a machine shared
// with other work it is steadier than ns/op, which counts the time other
// processes held the CPU too.
func reportCPU(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// BenchmarkVerifyOnly is the real Verifier alone on the deliveries of
// BenchmarkServeHTTP.
func BenchmarkVerifyOnly(b *testing.B) {
	for _, body := range benchBodies {
		b.Run(body.name, func(b *testing.B) {
			v := newRealVerifier(b)
			hdr := signedHeader(b, body.b)
			ctx := context.Background()
			b.ReportAllocs()
			b.SetBytes(int64(len(body.b)))
			for b.Loop() {
				if _, err := v.Verify(ctx, hdr, body.b); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParse is Parse alone on the same deliveries.
func BenchmarkParse(b *testing.B) {
	for _, body := range benchBodies {
		b.Run(body.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body.b)))
			cpu0 := processCPU()
			for b.Loop() {
				if _, err := Parse(body.b); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu0)
		})
	}
}

// processCPU returns the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// bodyTypical is a delivery of the size Gemini sends: 153 bytes.
var bodyTypical = []byte(`{"type":"batch.succeeded","version":"v1","timestamp":"2026-01-22T12:00:00Z","data":{"id":"batches/abc123","output_file_uri":"gs://bucket/results.jsonl"}}`)
