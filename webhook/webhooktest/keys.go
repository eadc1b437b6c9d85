package webhooktest

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"sync"
)

// numEd25519Keys is how many Ed25519 keys Google's JWKS published when
// live dynamic deliveries were observed to carry v1a signatures.
const numEd25519Keys = 3

// Keys is a signing key set for dynamic webhooks, shaped like Google's: three
// Ed25519 keys for the "v1a" signatures that live deliveries carry, and one
// RSA-2048 key for the RS256 JWT form that Google's documentation describes.
// Its public half is a JWKS document, served by ServeHTTP, so a
// verify.Verifier can fetch it from an httptest.Server.
//
// Keys is safe for concurrent use.
type Keys struct {
	mu  sync.RWMutex
	ed  []edKey // oldest first; the last one signs
	rsa rsaKey
}

type edKey struct {
	id  string
	key ed25519.PrivateKey
}

type rsaKey struct {
	id  string
	key *rsa.PrivateKey
}

// NewKeys generates a key set from crypto/rand. Like the httptest helpers it
// is meant for tests: it panics if key generation fails.
func NewKeys() *Keys {
	k := &Keys{}
	for range numEd25519Keys {
		k.ed = append(k.ed, newEdKey())
	}
	k.rsa = newRSAKey()
	return k
}

// Rotate replaces the oldest Ed25519 key and the RSA key with new ones under
// new key ids, as a publisher rotating its keys does. Signing then uses the
// new keys; the two older Ed25519 keys stay published. A verifier that cached
// the previous JWKS sees unknown signatures until it refetches.
func (k *Keys) Rotate() {
	ed, rs := newEdKey(), newRSAKey()
	k.mu.Lock()
	defer k.mu.Unlock()
	k.ed = append(k.ed[1:len(k.ed):len(k.ed)], ed)
	k.rsa = rs
}

// Ed25519Key returns the key id and private key that currently sign v1a
// deliveries (the newest Ed25519 key).
func (k *Keys) Ed25519Key() (kid string, key ed25519.PrivateKey) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	e := k.ed[len(k.ed)-1]
	return e.id, e.key
}

// RSAKey returns the key id and private key that currently sign JWT
// deliveries.
func (k *Keys) RSAKey() (kid string, key *rsa.PrivateKey) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.rsa.id, k.rsa.key
}

// jwk is one entry of the published set; field order is the JSON order.
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	Kid string `json:"kid"`
	X   string `json:"x,omitempty"`
	N   string `json:"n,omitempty"`
	E   string `json:"e,omitempty"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// JWKS returns the public keys as a JWK Set (RFC 7517): the Ed25519 keys,
// oldest first, as {"kty":"OKP","crv":"Ed25519","kid",…,"x",…,"alg":"EdDSA",
// "use":"sig"} (RFC 8037), then the RSA key with alg RS256.
func (k *Keys) JWKS() []byte {
	k.mu.RLock()
	set := struct {
		Keys []jwk `json:"keys"`
	}{}
	for _, e := range k.ed {
		set.Keys = append(set.Keys, jwk{
			Kty: "OKP", Crv: "Ed25519", Kid: e.id,
			X:   base64.RawURLEncoding.EncodeToString(e.key.Public().(ed25519.PublicKey)),
			Alg: "EdDSA", Use: "sig",
		})
	}
	pub := k.rsa.key.PublicKey
	set.Keys = append(set.Keys, jwk{
		Kty: "RSA", Kid: k.rsa.id,
		N:   base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		E:   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		Alg: "RS256", Use: "sig",
	})
	k.mu.RUnlock()
	b, err := json.Marshal(set)
	if err != nil {
		panic("webhooktest: encoding JWKS: " + err.Error())
	}
	return b
}

// ServeHTTP serves JWKS to GET and HEAD requests with Content-Type
// application/json and "Cache-Control: public, max-age=300", like a public
// key endpoint; other methods get 405. Mount it at /.well-known/jwks.json of an
// httptest.Server and give that URL to verify.Config.JWKSURL.
func (k *Keys) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	b := k.JWKS()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	if r.Method == http.MethodGet {
		w.Write(b)
	}
}

func newEdKey() edKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic("webhooktest: generating Ed25519 key: " + err.Error())
	}
	return edKey{id: newKeyID(), key: priv}
}

func newRSAKey() rsaKey {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic("webhooktest: generating RSA key: " + err.Error())
	}
	return rsaKey{id: newKeyID(), key: priv}
}

// newKeyID returns 40 hex digits, the shape of the kids Google publishes.
func newKeyID() string {
	var b [20]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
