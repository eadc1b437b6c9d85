package webhook

import (
	"io"
	"net/http"
	"testing"
)

// BenchmarkServeHTTPFloor is the in-process floor of BenchmarkServeHTTP: a
// bare net/http handler that reads the whole body and answers 204, given
// the same request, body and ResponseWriter.
func BenchmarkServeHTTPFloor(b *testing.B) {
	for _, body := range benchBodies {
		b.Run(body.name, func(b *testing.B) {
			bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if n, err := io.Copy(io.Discard, r.Body); err != nil || n != int64(len(body.b)) {
					b.Fatalf("read %d bytes (%v), want %d", n, err, len(body.b))
				}
				w.WriteHeader(http.StatusNoContent)
			})
			benchServe(b, bare, body.b)
		})
	}
}
