package verify

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"math/bits"
	"strconv"
	"sync"
	"time"

	"github.com/genaihook/genaihook/internal/jwks"
)

// maxPooledContent bounds the signed-content buffers kept for reuse, so
// that a rare huge delivery does not pin its memory: 64 KiB of body, far
// above the few hundred bytes of a Gemini event, plus the longest
// webhook-id and webhook-timestamp. Larger contents are verified all the
// same, in a buffer left to the garbage collector.
const maxPooledContent = 64<<10 + MaxWebhookIDLen + maxTimestampDigits + 2

// contentBuffers holds *[]byte buffers for the signed content of v1a
// deliveries: Ed25519 needs the message in one piece.
var contentBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// verifyEd25519 checks the v1a entries of a delivery against the Ed25519
// keys of the JWKS and returns the kid of the key that verified one. It
// makes at most MaxEd25519Checks verifications (see matchEd25519 for the
// order). When none verifies, it asks the cache for a refetch (which the
// cache rate-limits) and, if that produced a new set, tries the keys that
// set adds, within another MaxEd25519Checks: Google may have rotated its
// keys.
//
// It fails with ErrJWKSUnavailable when there are no keys to try, when no
// key verifies and the keys could not be brought up to date: the refetch
// failed, or the rate limit refused it and the set was fetched before
// signed, the earlier of the delivery's timestamp and its arrival (so a
// genuine delivery signed with a key the cache has not seen is retried
// rather than refused), or when the budget ran out with (entry, key) pairs
// of the newest set untried (so a genuine delivery is retried, and the
// retry goes on with the keys left untried); otherwise with
// ErrMalformedHeader or ErrNoMatchingSignature when no entry verifies.
func (v *Verifier) verifyEd25519(ctx context.Context, id, ts string, body []byte, e *entries, signed time.Time) (string, *Error) {
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
	msg := (*bp)[:0]
	if need := len(id) + len(ts) + len(body) + 2; cap(msg) < need {
		msg = make([]byte, 0, need) // exactly: append would round up past maxPooledContent
	}
	msg = append(append(append(append(append(msg, id...), '.'), ts...), '.'), body...)
	defer func() {
		if cap(msg) <= maxPooledContent {
			*bp = msg[:0]
			contentBuffers.Put(bp)
		}
	}()

	kid, ok, untried := v.matchEd25519(set, nil, msg, sigs[:n])
	if ok {
		return kid, nil
	}
	left := bits.OnesCount32(untried)
	fresh, err := v.keys.Refresh(ctx)
	if fresh != nil && fresh != set {
		kid, ok, added := v.matchEd25519(fresh, set, msg, sigs[:n])
		if ok {
			return kid, nil
		}
		left = bits.OnesCount32(added) + countHeld(fresh, set, untried)
		set = fresh
	}
	switch {
	case err != nil:
		return "", fail(ErrJWKSUnavailable, "no cached Ed25519 key verifies, and the key set could not be refreshed: "+reasonOf(err))
	case left > 0:
		return "", fail(ErrJWKSUnavailable, "the budget of "+strconv.Itoa(MaxEd25519Checks)+" Ed25519 verifications ran out with "+
			strconv.Itoa(left)+" of "+strconv.Itoa(len(set.Ed25519))+" keys untried; a retry goes on with them")
	case set.Fetched.Before(signed):
		// The rate limit refused the refetch, and the set predates the
		// delivery: Google may have signed it with a key published since.
		// Undecided rather than forged; the retry, after
		// JWKSRefetchInterval, is checked against a set fetched for it.
		return "", fail(ErrJWKSUnavailable, "no cached Ed25519 key verifies, and the keys could not be refreshed yet: "+
			"the key set predates the delivery, and it is refetched at most once per JWKSRefetchInterval; a retry is checked against fresh keys")
	case len(set.Ed25519) == 0:
		return "", fail(ErrNoMatchingSignature, "the JWKS holds no Ed25519 key")
	case n < e.nv1a:
		return "", fail(ErrMalformedHeader, "some v1a entries are not base64 Ed25519 signatures, and no other entry verifies")
	}
	return "", fail(ErrNoMatchingSignature, "no v1a entry verifies under the Ed25519 keys of the JWKS")
}

// matchEd25519 tries the signatures against the Ed25519 keys of set,
// skipping those also in prev (already tried), and returns the kid of the
// first key that verifies one. Each key is tried against every signature,
// for at most MaxEd25519Checks verifications in all: first the set's hint,
// the key that verified last, then the others in turn from v's cursor.
// Only a key that verified moves the hint, so no forgery can steer genuine
// deliveries away from the key that signs them. When the budget runs out,
// matchEd25519 returns the keys not tried against every signature as a
// bitmask of their indices in set.Ed25519, and moves the cursor to the
// first of them, so that the next delivery (typically Gemini's retry of
// this one) goes on from there. Forgeries can move the cursor, but that
// only reorders the keys after the hint. RSA keys are never tried.
func (v *Verifier) matchEd25519(set, prev *jwks.Set, msg []byte, sigs [][ed25519.SignatureSize]byte) (kid string, ok bool, untried uint32) {
	keys := set.Ed25519
	if len(keys) == 0 {
		return "", false, 0
	}
	hint, next := set.Ed25519Hint(), int(v.ed25519Next.Load())%len(keys)
	checks := 0
	for j := -1; j < len(keys); j++ {
		i := hint
		if j >= 0 {
			if i = (next + j) % len(keys); i == hint {
				continue
			}
		}
		k := keys[i].Ed25519
		if len(k) != ed25519.PublicKeySize || prev != nil && hasEd25519(prev, k) {
			continue // ed25519.Verify panics on a bad key length
		}
		for s := range sigs {
			if checks == MaxEd25519Checks {
				if untried == 0 && v.ed25519Next.Load() != uint32(i) {
					v.ed25519Next.Store(uint32(i))
				}
				untried |= 1 << i
				break
			}
			checks++
			if v.onEd25519Verify != nil {
				v.onEd25519Verify()
			}
			if ed25519.Verify(k, msg, sigs[s][:]) {
				set.SetEd25519Hint(i)
				return keys[i].ID, true, 0
			}
		}
	}
	return "", false, untried
}

// matchEd25519's bitmask holds a bit per key of a set.
var _ [32 - jwks.MaxEd25519Keys]struct{}

// countHeld returns how many of the keys of prev that the bitmask untried
// names set also holds.
func countHeld(set, prev *jwks.Set, untried uint32) int {
	n := 0
	for i, k := range prev.Ed25519 {
		if untried&(1<<i) != 0 && hasEd25519(set, k.Ed25519) {
			n++
		}
	}
	return n
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
