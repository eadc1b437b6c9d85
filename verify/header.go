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
	// MaxEd25519Entries caps the number of v1a entries. Each one costs an
	// Ed25519 verification, a SHA-512 pass over the whole body and a scalar
	// multiplication, per Ed25519 key in the JWKS, and a forger can make
	// every entry look plausible: with 16 entries and Google's three keys a
	// forged 1 MiB delivery would cost some 50 passes over its body. Gemini
	// sends one v1a entry; the cap leaves room for a key rotation.
	MaxEd25519Entries = 4
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

// entries holds the v1 and v1a entries of a webhook-signature header, their
// signatures still in base64. It is kept on the caller's stack: parsing
// allocates nothing.
type entries struct {
	v1   [MaxSignatureEntries]string
	nv1  int
	v1a  [MaxEd25519Entries]string
	nv1a int
}

// parseEntries splits the webhook-signature header values into
// space-separated "version,signature" entries (PROTOCOL.md §4). Entries of
// unknown versions are skipped, as Standard Webhooks requires.
// It fails with ErrMalformedHeader if an entry has no comma or an empty
// version, or if there are more than MaxSignatureEntries entries or more
// than MaxEd25519Entries v1a entries.
func parseEntries(values []string, e *entries) *Error {
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
			version, sig, ok := strings.Cut(entry, ",")
			if !ok || version == "" {
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
