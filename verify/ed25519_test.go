package verify

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestEd25519Cost checks the number of Ed25519 verifications a delivery
// costs: one for a genuine delivery once the signing key is known, at most
// MaxEd25519Checks for a forged one whatever its entries and however many
// keys the JWKS publishes, and, after a key rotation, only the keys the
// refetched set adds.
func TestEd25519Cost(t *testing.T) {
	body := []byte(vecBody)
	keys := []edKey{newEdKey(t, "ed-1"), newEdKey(t, "ed-2"), newEdKey(t, "ed-3")}
	stranger, newcomer := newEdKey(t, "stranger"), newEdKey(t, "ed-new")
	jwksOf := func(ks ...edKey) []map[string]any {
		var out []map[string]any
		for _, k := range ks {
			out = append(out, k.jwk())
		}
		return out
	}
	// 11,000 keys: Google's three, then keys nobody holds. The document
	// stays under the 1 MiB response cap.
	many := jwksOf(keys...)
	for i := range 11000 - len(keys) {
		var pub [ed25519.PublicKeySize]byte
		pub[0], pub[1], pub[31] = byte(i), byte(i>>8), 1
		many = append(many, map[string]any{"kty": "OKP", "crv": "Ed25519", "x": base64.RawURLEncoding.EncodeToString(pub[:])})
	}
	type delivery struct {
		signers []edKey // one v1a entry each
		wantErr error
		want    int64 // Ed25519 verifications
	}
	tests := []struct {
		name       string
		published  []map[string]any
		rotateTo   []map[string]any // published after the first delivery, if set
		deliveries []delivery
	}{
		{
			name:      "genuine, signed by the third key",
			published: jwksOf(keys...),
			deliveries: []delivery{
				{signers: []edKey{keys[2]}, want: 3},
				{signers: []edKey{keys[2]}, want: 1},
				{signers: []edKey{keys[2]}, want: 1},
			},
		},
		{
			name:      "genuine, the signing key changes",
			published: jwksOf(keys...),
			deliveries: []delivery{
				{signers: []edKey{keys[1]}, want: 2},
				{signers: []edKey{keys[1]}, want: 1},
				{signers: []edKey{keys[0]}, want: 3},
				{signers: []edKey{keys[0]}, want: 1},
			},
		},
		{
			name:      "forged, one entry",
			published: jwksOf(keys...),
			deliveries: []delivery{
				{signers: []edKey{stranger}, wantErr: ErrNoMatchingSignature, want: MaxEd25519Checks},
			},
		},
		{
			name:      "forged, MaxEd25519Entries entries",
			published: jwksOf(keys...),
			deliveries: []delivery{
				{signers: []edKey{stranger, stranger}, wantErr: ErrNoMatchingSignature, want: MaxEd25519Checks},
			},
		},
		{
			name:      "forged deliveries do not steer the key tried first",
			published: jwksOf(keys...),
			deliveries: []delivery{
				{signers: []edKey{keys[2]}, want: 3},
				{signers: []edKey{stranger, stranger}, wantErr: ErrNoMatchingSignature, want: MaxEd25519Checks},
				{signers: []edKey{keys[2]}, want: 1},
				{signers: []edKey{stranger}, wantErr: ErrNoMatchingSignature, want: MaxEd25519Checks},
				{signers: []edKey{keys[2]}, want: 1},
			},
		},
		{
			name:      "forged, against 11,000 keys",
			published: many,
			deliveries: []delivery{
				{signers: []edKey{stranger, stranger}, wantErr: ErrNoMatchingSignature, want: MaxEd25519Checks},
			},
		},
		{
			name:      "genuine, against 11,000 keys",
			published: many,
			deliveries: []delivery{
				{signers: []edKey{keys[2]}, want: 3},
				{signers: []edKey{keys[2]}, want: 1},
			},
		},
		{
			name:      "genuine, two entries, the second under a known key",
			published: jwksOf(keys...),
			deliveries: []delivery{
				{signers: []edKey{stranger, keys[0]}, want: 2},
				{signers: []edKey{stranger, keys[0]}, want: 2},
			},
		},
		{
			// The budget runs out before the fourth key; the next
			// delivery, Gemini's retry, goes on from there.
			name:      "genuine, signed by the fourth of four keys",
			published: jwksOf(append(keys[:3:3], newcomer)...),
			deliveries: []delivery{
				{signers: []edKey{newcomer}, wantErr: ErrNoMatchingSignature, want: MaxEd25519Checks},
				{signers: []edKey{newcomer}, want: 1},
				{signers: []edKey{newcomer}, want: 1},
			},
		},
		{
			name:      "rotation: only the added key is tried after the refetch",
			published: jwksOf(keys...),
			rotateTo:  jwksOf(keys[1], keys[2], newcomer),
			deliveries: []delivery{
				{signers: []edKey{keys[0]}, want: 1},
				{signers: []edKey{newcomer}, want: 3 + 1},
				{signers: []edKey{newcomer}, want: 1},
			},
		},
		{
			name:      "rotation: a forged delivery costs two allowances at most",
			published: jwksOf(keys...),
			rotateTo:  jwksOf(newEdKey(t, "n1"), newEdKey(t, "n2"), newEdKey(t, "n3"), newEdKey(t, "n4")),
			deliveries: []delivery{
				{signers: []edKey{keys[0]}, want: 1},
				{signers: []edKey{stranger, stranger}, wantErr: ErrNoMatchingSignature, want: 2 * MaxEd25519Checks},
				// Within the refetch interval: no refetch, one allowance.
				{signers: []edKey{stranger, stranger}, wantErr: ErrNoMatchingSignature, want: MaxEd25519Checks},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newJWKSServer(t, tt.published...)
			clock := newClock(vecTime)
			v := mustNew(t, Config{JWKSURL: srv.url(), HTTPClient: srv.Client(), Now: clock.Now})
			n := countVerifies(v)
			for i, d := range tt.deliveries {
				if i == 1 && tt.rotateTo != nil {
					srv.setKeys(tt.rotateTo...)
					clock.Advance(time.Minute) // past the refetch interval
				}
				ts := itoa(clock.Now().Unix())
				var sigs []string
				for _, k := range d.signers {
					sigs = append(sigs, v1aEntry(k.priv, vecID, ts, body))
				}
				n.Store(0)
				_, err := v.Verify(context.Background(), headers(vecID, ts, strings.Join(sigs, " ")), body)
				if !errors.Is(err, d.wantErr) {
					t.Fatalf("delivery %d: Verify error = %v, want %v", i, err, d.wantErr)
				}
				if got := n.Load(); got != d.want {
					t.Errorf("delivery %d cost %d Ed25519 verifications, want %d", i, got, d.want)
				}
			}
		})
	}
}
