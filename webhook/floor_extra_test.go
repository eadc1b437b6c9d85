package webhook

import (
	"bytes"
	"io"
	"net/http"
	"testing"
)

// BenchmarkServeHTTPFloor is the in-process floor of BenchmarkServeHTTP: a
// bare net/http handler that reads the whole body and answers 204, given
// the same request, body and ResponseWriter.
func BenchmarkServeHTTPFloor(b *testing.B) {
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n, err := io.Copy(io.Discard, r.Body); err != nil || n != int64(len(body1KiB)) {
			b.Fatalf("read %d bytes (%v), want %d", n, err, len(body1KiB))
		}
		w.WriteHeader(http.StatusNoContent)
	})
	hdr := signedHeader(b, body1KiB)
	rd := bytes.NewReader(body1KiB)
	r := &http.Request{Method: http.MethodPost, Header: hdr, Body: io.NopCloser(rd), ContentLength: int64(len(body1KiB))}
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	b.SetBytes(int64(len(body1KiB)))
	for b.Loop() {
		rd.Reset(body1KiB)
		clear(w.h)
		bare.ServeHTTP(w, r)
	}
}
