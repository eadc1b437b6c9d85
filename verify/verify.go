package verify

import (
	"context"
	"net/http"
)

// Verifier checks that webhook deliveries come from Gemini. It is safe for
// concurrent use.
type Verifier struct {
	// TODO(helper): implementation.
}

// New returns a Verifier for cfg.
func New(cfg Config) (*Verifier, error) { panic("unimplemented") }

// Verify authenticates one delivery from its headers and raw body.
func (v *Verifier) Verify(ctx context.Context, h http.Header, body []byte) (Result, error) {
	panic("unimplemented")
}

func decodeSecret(s string) ([]byte, error) { panic("unimplemented") }
