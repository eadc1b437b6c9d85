package verify

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"sync"

	"github.com/genaihook/genaihook/internal/jwks"
)

// maxPooledContent bounds the signed-content buffers kept for reuse, so
// that a rare huge delivery does not pin its memory: room for a 1 MiB body
// (the webhook package's default cap) and the longest webhook-id and
// webhook-timestamp.
const maxPooledContent = 1<<20 + MaxWebhookIDLen + maxTimestampDigits + 2

// contentBuffers holds *[]byte buffers for the signed content of v1a
// deliveries: Ed25519 needs the message in one piece.
var contentBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// verifyEd25519 checks the v1a entries of a delivery against the Ed25519
// keys of the JWKS and returns the kid of the key that verified one. It
// makes at most MaxEd25519Checks verifications, starting with the key that
// verified last. When none verifies, it asks the cache for a refetch (which
// the cache rate-limits) and, if that produced a new set, tries the keys
// that set adds, within another MaxEd25519Checks: Google may have rotated
// its keys.
//
// It fails with ErrJWKSUnavailable when there are no keys to try, or when
// no key verifies and the keys could not be brought up to date (so a
// genuine delivery signed with a key the cache has not seen is retried
// rather than refused); otherwise with ErrMalformedHeader or
// ErrNoMatchingSignature when no entry verifies.
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

	if kid, ok := v.matchEd25519(set, nil, msg, sigs[:n]); ok {
		return kid, nil
	}
	fresh, err := v.keys.Refresh(ctx)
	if fresh != nil && fresh != set {
		if kid, ok := v.matchEd25519(fresh, set, msg, sigs[:n]); ok {
			return kid, nil
		}
		set = fresh
	}
	switch {
	case err != nil:
		return "", fail(ErrJWKSUnavailable, "no cached Ed25519 key verifies, and the key set could not be refreshed: "+reasonOf(err))
	case len(set.Ed25519) == 0:
		return "", fail(ErrNoMatchingSignature, "the JWKS holds no Ed25519 key")
	case n < e.nv1a:
		return "", fail(ErrMalformedHeader, "some v1a entries are not base64 Ed25519 signatures, and no other entry verifies")
	}
	return "", fail(ErrNoMatchingSignature, "no v1a entry verifies under the Ed25519 keys of the JWKS")
}

// matchEd25519 tries the signatures against the Ed25519 keys of set,
// skipping those also in prev (already tried), and returns the kid of the
// first key that verifies one. Keys are taken in turn from set's hint, each
// against every signature, for at most MaxEd25519Checks verifications.
// The hint then names the key that verified. When the budget runs out on a
// single signature (the set holds more keys than the budget), it names the
// first key left untried, so that the next delivery, typically Gemini's
// retry of this one, goes on from there; a delivery of several entries
// never moves it that way, so that with Google's three keys no forgery can
// steer genuine deliveries away from the key that signs them. RSA keys are
// never tried.
func (v *Verifier) matchEd25519(set, prev *jwks.Set, msg []byte, sigs [][ed25519.SignatureSize]byte) (string, bool) {
	keys := set.Ed25519
	start, checks := set.Ed25519Hint(), 0
	for j := range keys {
		i := (start + j) % len(keys)
		k := keys[i].Ed25519
		if len(k) != ed25519.PublicKeySize || prev != nil && hasEd25519(prev, k) {
			continue // ed25519.Verify panics on a bad key length
		}
		for s := range sigs {
			if checks == MaxEd25519Checks {
				if len(sigs) == 1 {
					set.SetEd25519Hint(i)
				}
				return "", false
			}
			checks++
			if v.onEd25519Verify != nil {
				v.onEd25519Verify()
			}
			if ed25519.Verify(k, msg, sigs[s][:]) {
				set.SetEd25519Hint(i)
				return keys[i].ID, true
			}
		}
	}
	return "", false
}

// hasEd25519 reports whether set holds the Ed25519 public key k.
func hasEd25519(set *jwks.Set, k ed25519.PublicKey) bool {
	for _, key := range set.Ed25519 {
		if bytes.Equal(key.Ed25519, k) {
			return true
		}
	}
	return false
}
