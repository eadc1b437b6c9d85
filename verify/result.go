package verify

import "time"

// Scheme names the signature scheme that authenticated a delivery.
type Scheme string

// The schemes a Verifier accepts. SchemeHMAC is a static webhook; the other
// two are dynamic webhooks signed with Google's keys.
const (
	SchemeHMAC    Scheme = "v1"  // Standard Webhooks HMAC-SHA256 with a shared whsec_ secret
	SchemeEd25519 Scheme = "v1a" // Standard Webhooks Ed25519, keys from the JWKS (what live deliveries carry)
	SchemeJWT     Scheme = "jwt" // RS256 compact JWS, keys from the JWKS (what Google's docs describe)
)

// Dynamic reports whether s is one of the schemes signed with Google's global
// keys, which prove the sender but not the intended receiver.
func (s Scheme) Dynamic() bool { return s == SchemeEd25519 || s == SchemeJWT }

// Result describes an authenticated delivery.
type Result struct {
	// Scheme is the scheme that matched.
	Scheme Scheme
	// WebhookID identifies the delivery, from signed input only: for v1
	// and v1a the webhook-id header, which the signature covers; for
	// SchemeJWT, whose token signs its claims but not the headers, the
	// token's jti claim when it is a non-empty string of at most
	// MaxWebhookIDLen bytes, else "jwt:" followed by the unpadded base64url
	// SHA-256 of the compact token. A JWT without jti is so deduplicated by
	// its token: if Gemini mints a new token for each retry, the retries of
	// one event get different ids and are not deduplicated. A JWT
	// delivery's webhook-id header is checked for length but never copied
	// here.
	WebhookID string
	// Timestamp is when the delivery was signed, from signed input only:
	// for v1 and v1a the webhook-timestamp header; for SchemeJWT the
	// token's iat claim, zero if absent. A JWT delivery's
	// webhook-timestamp header is checked against the tolerance but never
	// copied here.
	Timestamp time.Time
	// SecretIndex is, for SchemeHMAC, the index of the matching secret in the
	// verifier's keyring (Config.Secrets first, then Config.Keyring); -1
	// otherwise.
	SecretIndex int
	// KeyID identifies the matching key without revealing it: for SchemeHMAC
	// a fingerprint of the secret ("sha256:" and 16 hex digits), for the
	// dynamic schemes the JWK "kid".
	KeyID string
	// Claims holds the JWT's claims for SchemeJWT, nil otherwise.
	Claims *Claims
}

// Claims are the claims of a verified JWT delivery.
type Claims struct {
	Issuer    string
	Subject   string
	Audience  []string
	ExpiresAt time.Time
	IssuedAt  time.Time
	// Raw holds every claim as decoded JSON, including ones Google has not
	// documented.
	Raw map[string]any
}
