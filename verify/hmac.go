package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"strconv"
	"strings"
	"sync"
	"time"
)

// secretPrefix is the prefix of Standard Webhooks secrets; it is optional.
const secretPrefix = "whsec_"

// MinSecretLen is the fewest bytes a static secret may decode to. Standard
// Webhooks secrets are 24 to 64 random bytes (Gemini's are 32); a shorter
// one is a truncated or mistyped value, and a key that short could be
// guessed.
const MinSecretLen = 16

// hmacSigLen is the length of a v1 signature in padded base64; unpadded, it
// is one character shorter.
const hmacSigLen = (sha256.Size + 2) / 3 * 4

// hashChunk is the alignment of the body in the MAC input: two SHA-256
// blocks, because the amd64 AVX2 code schedules blocks in pairs (a lone
// block takes a slower path), so splitting the input at an odd block costs
// about one block more (measured: ~100 ns at 256 bytes).
const hashChunk = 2 * sha256.BlockSize

// hmacKey is one static secret, decoded once by New.
type hmacKey struct {
	key     []byte
	expires time.Time // zero: never
	keyID   string    // "sha256:" + 16 hex digits of SHA-256(key)
	// states holds *hmacState for this key, so that a Verify reuses an
	// HMAC whose inner and outer pads are already absorbed and allocates
	// nothing.
	states sync.Pool
}

// hmacState is one reusable HMAC-SHA256 computation.
type hmacState struct {
	mac hash.Hash
	sum [sha256.Size]byte
	enc [hmacSigLen]byte // base64 of sum
	// head holds "webhook-id.webhook-timestamp." and the start of the body
	// up to a hashChunk boundary. Written to the MAC in one call, it needs
	// no string-to-bytes conversion (which would allocate), and it leaves
	// the rest of the body aligned, hashed in place by one more call.
	head [MaxWebhookIDLen + 1 + maxTimestampDigits + 1 + hashChunk]byte
}

func newHMACKey(key []byte, expires time.Time) *hmacKey {
	fp := sha256.Sum256(key)
	k := &hmacKey{
		key:     key,
		expires: expires,
		keyID:   "sha256:" + hex.EncodeToString(fp[:8]),
	}
	k.states.New = func() any { return &hmacState{mac: hmac.New(sha256.New, k.key)} }
	return k
}

// live reports whether the key may verify at now: a keyring entry stops
// verifying at the instant it expires.
func (k *hmacKey) live(now time.Time) bool {
	return k.expires.IsZero() || now.Before(k.expires)
}

// matches reports whether any of sigs is the base64 HMAC of the signed
// content id + "." + ts + "." + body under k, padded or not. The MAC is
// compared in its base64 form, so that a signature has exactly one
// accepted spelling of each kind and the success path decodes nothing.
// Every entry is compared, in constant time, whatever the outcome of the
// others.
func (k *hmacKey) matches(id, ts string, body []byte, sigs []string) bool {
	st := k.states.Get().(*hmacState)
	st.mac.Reset()
	n := copy(st.head[:], id)
	st.head[n] = '.'
	n++
	n += copy(st.head[n:], ts)
	st.head[n] = '.'
	n++
	// Reset leaves the MAC at a block boundary (after the inner pad).
	fill := min(len(body), (hashChunk-n%hashChunk)%hashChunk)
	n += copy(st.head[n:], body[:fill])
	st.mac.Write(st.head[:n])
	st.mac.Write(body[fill:])
	base64.StdEncoding.Encode(st.enc[:], st.mac.Sum(st.sum[:0]))
	ok := 0
	var sig [hmacSigLen]byte
	for _, s := range sigs {
		// The unpadded form is the padded one without its final "=".
		if len(s) == len(sig) || len(s) == len(sig)-1 {
			n := copy(sig[:], s)
			if hmac.Equal(st.enc[:n], sig[:n]) {
				ok = 1
			}
		}
	}
	k.states.Put(st)
	return ok == 1
}

// decodeSecret turns a static webhook secret into the HMAC key: an optional
// "whsec_" prefix, then standard base64, padded or not. Surrounding white
// space, as left by a secret read from a file, is ignored. It fails with an
// *Error wrapping ErrBadConfig, whose reason never quotes the secret, if the
// secret is empty, is not base64, decodes to fewer than MinSecretLen
// bytes, or decodes to zero bytes only.
func decodeSecret(s string) ([]byte, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), secretPrefix)
	if s == "" {
		return nil, fail(ErrBadConfig, "secret is empty")
	}
	key, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		key, err = base64.RawStdEncoding.DecodeString(s)
	}
	if err != nil {
		return nil, fail(ErrBadConfig, "secret is not base64 (after the optional whsec_ prefix)")
	}
	if len(key) < MinSecretLen {
		return nil, fail(ErrBadConfig, "secret decodes to a key of length "+strconv.Itoa(len(key))+
			"; Standard Webhooks secrets are 24 to 64 bytes, and fewer than "+strconv.Itoa(MinSecretLen)+" are refused: is the value complete?")
	}
	if allZero(key) {
		return nil, fail(ErrBadConfig, "secret decodes to zero bytes only, a placeholder rather than a key: use the secret Gemini returned for your webhook")
	}
	return key, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// isPublicTestSecret reports whether key is the key of publicTestSecret.
func isPublicTestSecret(key []byte) bool {
	return string(key) == string(publicTestKey)
}

var publicTestKey, _ = base64.StdEncoding.DecodeString(strings.TrimPrefix(publicTestSecret, secretPrefix))
