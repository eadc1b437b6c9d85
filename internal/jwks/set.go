package jwks

import (
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// RSA modulus bounds. Below 2048 bits a key is too weak to trust (NIST SP
// 800-131A); above 8192 bits verification gets expensive and no real JWKS
// publishes such keys, so a huge modulus is treated as a bad key.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

// Caps on the keys kept from one document. Every Ed25519 key may cost a
// verification of a forged delivery, and the document comes from the
// network: a set of thousands of keys must not multiply that cost. Google
// publishes three Ed25519 keys and a few RSA keys. Beyond the caps, later
// keys are dropped: the first usable keys in document order are kept.
const (
	// MaxEd25519Keys is the most Ed25519 keys a Set holds.
	MaxEd25519Keys = 16
	// MaxRSAKeys is the most RSA keys a Set holds.
	MaxRSAKeys = 16
)

// Key is one public key from the set. Exactly one of Ed25519 and RSA is set,
// so a key can only be used for the scheme it was published for.
type Key struct {
	// ID is the JWK "kid"; it may be empty.
	ID string
	// Ed25519 is set for kty "OKP", crv "Ed25519" keys.
	Ed25519 ed25519.PublicKey
	// RSA is set for kty "RSA" keys, with a 2048 to 8192 bit modulus
	// and an odd exponent in [3, 2^31-1].
	RSA *rsa.PublicKey
}

// Set is an immutable snapshot of the keys from one successful fetch. It is
// shared between goroutines, so callers must not modify it or its slices.
// The one exception is a hint, safe for concurrent use, naming the Ed25519
// key to try first (Ed25519Hint, SetEd25519Hint).
type Set struct {
	// Ed25519 holds at most MaxEd25519Keys Ed25519 keys, in document order.
	Ed25519 []Key
	// RSA holds at most MaxRSAKeys RSA keys, in document order.
	RSA []Key
	// Fetched is when the set was received, by the cache's clock.
	Fetched time.Time
	// Expires is when Keys stops serving the set without trying a refetch.
	Expires time.Time

	ed25519Hint atomic.Uint32 // an index into Ed25519
}

// Ed25519Hint returns the index in s.Ed25519 of the key to try first:
// the last one given to SetEd25519Hint, 0 if none or out of range.
func (s *Set) Ed25519Hint() int {
	if i := int(s.ed25519Hint.Load()); i < len(s.Ed25519) {
		return i
	}
	return 0
}

// SetEd25519Hint records i, an index in s.Ed25519, as the key to try first
// (typically the key that verified the last signature). It writes only
// when the hint changes, so that concurrent verifications agreeing on the
// key do not contend for the cache line.
func (s *Set) SetEd25519Hint(i int) {
	if i < 0 || i >= len(s.Ed25519) {
		return
	}
	if s.ed25519Hint.Load() != uint32(i) {
		s.ed25519Hint.Store(uint32(i))
	}
}

// RSAKey returns the RSA key whose ID is kid, the first one if several
// share it. An empty kid never matches: a JWT that names no key cannot
// select one.
func (s *Set) RSAKey(kid string) (*rsa.PublicKey, bool) {
	if s == nil || kid == "" {
		return nil, false
	}
	for _, k := range s.RSA {
		if k.ID == kid {
			return k.RSA, true
		}
	}
	return nil, false
}

// jwk is the subset of RFC 7517 / RFC 8037 members the cache looks at.
type jwk struct {
	Kty    string   `json:"kty"`
	Kid    string   `json:"kid"`
	Alg    string   `json:"alg"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	Crv    string   `json:"crv"`
	X      string   `json:"x"`
	N      string   `json:"n"`
	E      string   `json:"e"`
}

// parse decodes a JWK Set document. A key that is malformed, of an unknown
// type, or not meant for signature verification is skipped rather than
// failing the set, so one odd entry published next to good ones (a new key
// type, say) does not take verification down. Only the first MaxEd25519Keys
// usable Ed25519 keys and MaxRSAKeys usable RSA keys are kept; later ones
// are not even decoded. A document with no usable key at all is an error.
// Errors wrap ErrUnavailable and never quote the input.
func parse(data []byte) (ed, rs []Key, err error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return nil, nil, fmt.Errorf("%w: response is not valid JSON (syntax error at offset %d)", ErrUnavailable, syn.Offset)
		}
		return nil, nil, fmt.Errorf("%w: response is not a JWK Set object with a \"keys\" array", ErrUnavailable)
	}
	for _, raw := range doc.Keys {
		if len(ed) == MaxEd25519Keys && len(rs) == MaxRSAKeys {
			break
		}
		var k jwk
		if json.Unmarshal(raw, &k) != nil || !forVerification(k) {
			continue
		}
		switch k.Kty {
		case "OKP":
			if len(ed) == MaxEd25519Keys {
				continue
			}
			if key, ok := ed25519Key(k); ok {
				ed = append(ed, key)
			}
		case "RSA":
			if len(rs) == MaxRSAKeys {
				continue
			}
			if key, ok := rsaKey(k); ok {
				rs = append(rs, key)
			}
		}
	}
	if len(ed)+len(rs) == 0 {
		return nil, nil, fmt.Errorf("%w: none of the %d keys in the set is a usable Ed25519 or RS256 verification key", ErrUnavailable, len(doc.Keys))
	}
	return ed, rs, nil
}

// forVerification reports whether k may verify signatures: "use" is "sig"
// or absent, and "key_ops", when present, includes "verify".
func forVerification(k jwk) bool {
	if k.Use != "" && k.Use != "sig" {
		return false
	}
	return k.KeyOps == nil || slices.Contains(k.KeyOps, "verify")
}

// ed25519Key converts an OKP key (RFC 8037 §2). alg may be absent, "EdDSA"
// (RFC 8037) or "Ed25519" (RFC 9864).
func ed25519Key(k jwk) (Key, bool) {
	if k.Crv != "Ed25519" {
		return Key{}, false
	}
	switch k.Alg {
	case "", "EdDSA", "Ed25519":
	default:
		return Key{}, false
	}
	x, err := decodeBase64URL(k.X)
	if err != nil || len(x) != ed25519.PublicKeySize {
		return Key{}, false
	}
	return Key{ID: k.Kid, Ed25519: ed25519.PublicKey(x)}, true
}

// rsaKey converts an RSA key (RFC 7518 §6.3.1). alg, when present, must be
// RS256: the only RSA algorithm verify accepts, so a key published for
// another one must not be used for it.
func rsaKey(k jwk) (Key, bool) {
	if k.Alg != "" && k.Alg != "RS256" {
		return Key{}, false
	}
	nb, err := decodeBase64URL(k.N)
	if err != nil {
		return Key{}, false
	}
	n := new(big.Int).SetBytes(nb)
	// An even modulus cannot be a product of two odd primes.
	if bits := n.BitLen(); bits < minRSABits || bits > maxRSABits || n.Bit(0) == 0 {
		return Key{}, false
	}
	e, ok := rsaExponent(k.E)
	if !ok {
		return Key{}, false
	}
	return Key{ID: k.Kid, RSA: &rsa.PublicKey{N: n, E: e}}, true
}

// rsaExponent decodes a public exponent, accepting only odd values in
// [3, 2^31-1]: crypto/rsa rejects anything larger, and an even exponent
// is never valid.
func rsaExponent(s string) (int, bool) {
	b, err := decodeBase64URL(s)
	if err != nil {
		return 0, false
	}
	var e uint64
	for _, c := range b {
		if e > 1<<31 {
			return 0, false
		}
		e = e<<8 | uint64(c)
	}
	if e < 3 || e > 1<<31-1 || e%2 == 0 {
		return 0, false
	}
	return int(e), true
}

// decodeBase64URL decodes base64url as JWKs use it (RFC 7515 §2: no
// padding), tolerating padding that some publishers add anyway.
func decodeBase64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
