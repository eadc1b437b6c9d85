package verify

import (
	"context"
	"crypto/ed25519"
	"sync"

	"github.com/genaihook/genaihook/internal/jwks"
)

// maxPooledContent bounds the signed-content buffers kept for reuse, so
// that one large delivery does not pin its memory.
const maxPooledContent = 64 << 10

// contentBuffers holds *[]byte buffers for the signed content of v1a
// deliveries: Ed25519 needs the message in one piece.
var contentBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// verifyEd25519 checks the v1a entries of a delivery against the Ed25519
// keys of the JWKS (PROTOCOL.md §5) and returns the kid of the key that
// verified one. When no cached key verifies, it asks the cache for a
// refetch (which the cache rate-limits) and, if that produced a new set,
// tries again: Google may have rotated its keys.
//
// It fails with ErrJWKSUnavailable when there are no keys to try, and with
// ErrMalformedHeader or ErrNoMatchingSignature when no entry verifies.
func (v *Verifier) verifyEd25519(ctx context.Context, id, ts string, body []byte, e *entries) (string, *Error) {
	var sigs [MaxEd25519Entries][ed25519.SignatureSize]byte
	n := 0
	for _, s := range e.v1a[:e.nv1a] {
		if decodeSignature(sigs[n][:], s) {
			n++
		}
	}
	if n == 0 {
		return "", fail(ErrMalformedHeader, "no v1a entry holds a base64 Ed25519 signature")
	}

	set, err := v.keys.Keys(ctx)
	if set == nil {
		return "", fail(ErrJWKSUnavailable, reasonOf(err))
	}

	bp := contentBuffers.Get().(*[]byte)
	msg := append(append(append(append(append((*bp)[:0], id...), '.'), ts...), '.'), body...)
	defer func() {
		if cap(msg) <= maxPooledContent {
			*bp = msg[:0]
			contentBuffers.Put(bp)
		}
	}()

	if kid, ok := matchEd25519(set, msg, sigs[:n]); ok {
		return kid, nil
	}
	if fresh, _ := v.keys.Refresh(ctx); fresh != nil && fresh != set {
		if kid, ok := matchEd25519(fresh, msg, sigs[:n]); ok {
			return kid, nil
		}
		set = fresh
	}
	if len(set.Ed25519) == 0 {
		return "", fail(ErrNoMatchingSignature, "the JWKS holds no Ed25519 key")
	}
	if n < e.nv1a {
		return "", fail(ErrMalformedHeader, "some v1a entries are not base64 Ed25519 signatures, and no other entry verifies")
	}
	return "", fail(ErrNoMatchingSignature, "no v1a entry verifies under any Ed25519 key of the JWKS")
}

// matchEd25519 tries every signature against every Ed25519 key of set and
// returns the kid of the first key that verifies one. RSA keys are never
// tried.
func matchEd25519(set *jwks.Set, msg []byte, sigs [][ed25519.SignatureSize]byte) (string, bool) {
	for _, k := range set.Ed25519 {
		if len(k.Ed25519) != ed25519.PublicKeySize {
			continue // ed25519.Verify panics on a bad key length
		}
		for i := range sigs {
			if ed25519.Verify(k.Ed25519, msg, sigs[i][:]) {
				return k.ID, true
			}
		}
	}
	return "", false
}
