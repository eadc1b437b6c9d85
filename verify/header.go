package verify

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
)

// Limits on the attacker-controlled parts of a delivery's headers. Every
// request to a webhook endpoint reaches Verify before anything is trusted, so
// the work one request can cause is bounded here.
const (
	// MaxSignatureHeaderLen caps the total length of the webhook-signature
	// header(s), in bytes. Genuine headers are one or two entries of under
	// 100 bytes, or a JWT of about 1 KiB.
	MaxSignatureHeaderLen = 8 << 10
	// MaxSignatureEntries caps the number of "version,signature" entries.
	MaxSignatureEntries = 16
	// MaxEd25519Entries caps the number of v1a entries. Gemini sends one;
	// the cap leaves room for a second during a key rotation. A header
	// with more is malformed.
	MaxEd25519Entries = 2
	// MaxEd25519Checks caps the Ed25519 verifications one delivery may
	// cost, counting every (v1a entry, key) pair tried, whatever the
	// number of entries and of keys in the JWKS. Each one is a SHA-512
	// pass over the whole body and a scalar multiplication, and a forger
	// can make every entry look plausible, so this bounds what a forged
	// delivery costs: three verifications at most, where a genuine one
	// costs one because the key that verified last is tried first. With
	// Google's three keys and one entry every pair is tried. With more
	// pairs (more keys, or two entries), a delivery may run out of checks
	// before a decision: Verify then answers ErrJWKSUnavailable, so that a
	// genuine delivery is retried, and the next delivery tries the key that
	// verified last and then goes on with the keys left untried. A refetch
	// after a key rotation (rate-limited by Config.JWKSRefetchInterval)
	// tries the keys it adds within an allowance of the same size.
	MaxEd25519Checks = 3
	// MaxWebhookIDLen caps the length of the webhook-id header, in bytes.
	MaxWebhookIDLen = 256
)

// Canonical header names. They are looked up in the http.Header map
// directly, which costs no allocation; headerValues falls back to a
// case-insensitive scan for maps built by hand with other spellings.
const (
	headerID        = "Webhook-Id"
	headerTimestamp = "Webhook-Timestamp"
	headerSignature = "Webhook-Signature"
)

// Strict encodings reject non-zero padding bits, so each signature has
// exactly one textual form.
var (
	stdStrict = base64.StdEncoding.Strict()
	rawStrict = base64.RawStdEncoding.Strict()
)

// headerValues returns the values of the header named canonical (which must
// be in canonical form), matching the name case-insensitively as HTTP
// requires.
func headerValues(h http.Header, canonical string) []string {
	if vs, ok := h[canonical]; ok {
		return vs
	}
	for k, vs := range h {
		if len(k) == len(canonical) && strings.EqualFold(k, canonical) {
			return vs
		}
	}
	return nil
}

// headerValue returns the first value of the header named canonical, or "".
func headerValue(h http.Header, canonical string) string {
	if vs := headerValues(h, canonical); len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// plainV1 reports whether the webhook-signature value s is a single v1
// entry, "v1,<signature>" without a space, within MaxSignatureHeaderLen:
// the header of every static delivery. For such a value, the general path
// of Verify (the blank and JWT checks, parseSignatureHeader) finds exactly
// one v1 entry, s without its "v1,", and nothing else; Verify takes that
// entry directly, which saves a noticeable share of its fixed cost.
func plainV1(s string) bool {
	return len(s) > len("v1,") && len(s) <= MaxSignatureHeaderLen && s[:len("v1,")] == "v1," && strings.IndexByte(s, ' ') < 0
}

// entries holds the v1 and v1a entries of a webhook-signature header, their
// signatures still in base64. It is kept on the caller's stack: parsing
// allocates nothing.
type entries struct {
	v1   [MaxSignatureEntries]string
	nv1  int
	v1a  [MaxEd25519Entries]string
	nv1a int
}

// parseSignatureHeader parses the webhook-signature header values into e.
// Each value is a list of entries. When there are several values and they
// do not parse so, they are read as the pieces of one value split at its
// commas, as some proxies split header values (AWS Lambda behind API
// Gateway turns "v1,<sig>" into the two values "v1" and "<sig>"): if
// joining them with "," yields a list of entries that each hold exactly one
// comma, that list is the header. Only that fallback allocates.
func parseSignatureHeader(values []string, e *entries) *Error {
	err := parseEntries(values, e, false)
	if err == nil || len(values) < 2 || err.Err != ErrMalformedHeader {
		return err
	}
	var b strings.Builder
	for i, v := range values {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strings.TrimSpace(v))
	}
	var joined entries
	if parseEntries([]string{b.String()}, &joined, true) != nil {
		return err
	}
	*e = joined
	return nil
}

// parseEntries splits the webhook-signature header values into
// space-separated "version,signature" entries. Entries of unknown versions
// are skipped, as Standard Webhooks requires. It fails with
// ErrMalformedHeader if an entry has no comma, an empty version, or, when
// strict, more than one comma, or if there are more than
// MaxSignatureEntries entries or more than MaxEd25519Entries v1a entries.
func parseEntries(values []string, e *entries, strict bool) *Error {
	n := 0
	for _, value := range values {
		for rest := value; rest != ""; {
			var entry string
			entry, rest, _ = strings.Cut(rest, " ")
			if entry == "" {
				continue // several spaces in a row
			}
			n++
			if n > MaxSignatureEntries {
				return fail(ErrMalformedHeader, "webhook-signature has more than "+strconv.Itoa(MaxSignatureEntries)+" entries")
			}
			version, sig, ok := cutVersion(entry)
			if !ok || version == "" || strict && strings.IndexByte(sig, ',') >= 0 {
				return fail(ErrMalformedHeader, "webhook-signature entry "+strconv.Itoa(n)+" is not of the form version,signature")
			}
			switch version {
			case string(SchemeHMAC):
				e.v1[e.nv1] = sig
				e.nv1++
			case string(SchemeEd25519):
				if e.nv1a == MaxEd25519Entries {
					return fail(ErrMalformedHeader, "webhook-signature has more than "+strconv.Itoa(MaxEd25519Entries)+" v1a entries")
				}
				e.v1a[e.nv1a] = sig
				e.nv1a++
			}
		}
	}
	if n == 0 {
		return fail(ErrMissingHeader, "webhook-signature header is empty")
	}
	return nil
}

// cutVersion slices entry around its first comma, as strings.Cut(entry,
// ","). A version is a few bytes ("v1", "v1a"), and for so short a search
// a byte loop is cheaper than starting a vectorised one; an entry whose
// first bytes hold no comma falls back to the vectorised search, so a long
// entry costs what it did.
func cutVersion(entry string) (version, sig string, ok bool) {
	for i := 0; i < len(entry) && i < 8; i++ {
		if entry[i] == ',' {
			return entry[:i], entry[i+1:], true
		}
	}
	return strings.Cut(entry, ",")
}

// decodeSignature decodes s, standard base64 with or without padding, into
// dst and reports whether it held exactly len(dst) bytes. len(dst) must be
// at most ed25519.SignatureSize. It allocates nothing.
func decodeSignature(dst []byte, s string) bool {
	var enc *base64.Encoding
	switch len(s) {
	case base64.StdEncoding.EncodedLen(len(dst)):
		enc = stdStrict
	case base64.RawStdEncoding.EncodedLen(len(dst)):
		enc = rawStrict
	default:
		return false
	}
	var src [88]byte // base64 of ed25519.SignatureSize bytes
	for i := 0; i < len(s); i++ {
		// The decoders skip CR and LF; a signature containing them is not
		// one this package would produce, so it is rejected, not repaired.
		if s[i] == '\r' || s[i] == '\n' {
			return false
		}
		src[i] = s[i]
	}
	var out [66]byte // what decoding 88 characters may write
	n, err := enc.Decode(out[:], src[:len(s)])
	if err != nil || n != len(dst) {
		return false
	}
	copy(dst, out[:n])
	return true
}
