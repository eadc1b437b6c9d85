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
// refetched set adds. It also checks the outcome: a delivery is refused
// only once every (entry, key) pair has been tried; when the budget runs
// out first, the answer is retryable (ErrJWKSUnavailable), the retry goes
// on with the keys left untried, and only a delivery that verified moves
// the key tried first.
func TestEd25519Cost(t *testing.T) {
	body := []byte(vecBody)
	keys := []edKey{newEdKey(t, "ed-1"), newEdKey(t, "ed-2"), newEdKey(t, "ed-3")}
	stranger, newcomer := newEdKey(t, "stranger"), newEdKey(t, "ed-new")
	sixteen := append([]edKey(nil), keys...)
	for i := len(sixteen); i < 16; i++ {
		sixteen = append(sixteen, newEdKey(t, "ed-"+itoa(int64(i+1))))
	}
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
	// untried is the retryable outcome when the budget ran out.
	untried := func(signers ...edKey) delivery {
		return delivery{signers: signers, wantErr: ErrJWKSUnavailable, want: MaxEd25519Checks}
	}
	forged := func(signers ...edKey) delivery {
		return delivery{signers: signers, wantErr: ErrNoMatchingSignature, want: int64(len(signers) * len(keys))}
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
				{signers: []edKey{keys[0]}, want: 2}, // the hint, then the others from the first
				{signers: []edKey{keys[0]}, want: 1},
			},
		},
		{
			// Google's three keys and one entry: every pair is tried.
			name:       "forged, one entry",
			published:  jwksOf(keys...),
			deliveries: []delivery{forged(stranger)},
		},
		{
			// Six pairs, three checks: a forgery cannot be told from a
			// genuine delivery signed under an untried pair.
			name:       "forged, MaxEd25519Entries entries",
			published:  jwksOf(keys...),
			deliveries: []delivery{untried(stranger, stranger)},
		},
		{
			name:      "forged deliveries do not steer the key tried first",
			published: jwksOf(keys...),
			deliveries: []delivery{
				{signers: []edKey{keys[2]}, want: 3},
				untried(stranger, stranger),
				{signers: []edKey{keys[2]}, want: 1},
				forged(stranger),
				{signers: []edKey{keys[2]}, want: 1},
			},
		},
		{
			name:      "forged deliveries do not steer the key tried first, four keys",
			published: jwksOf(append(keys[:3:3], newcomer)...),
			deliveries: []delivery{
				{signers: []edKey{keys[0]}, want: 1},
				untried(stranger),
				{signers: []edKey{keys[0]}, want: 1},
				untried(stranger, stranger),
				{signers: []edKey{keys[0]}, want: 1},
			},
		},
		{
			name:       "forged, against 11,000 keys",
			published:  many,
			deliveries: []delivery{untried(stranger, stranger), untried(stranger)},
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
			// The budget runs out before the fourth key: retryable. The
			// next delivery, Gemini's retry, tries the key that verified
			// last, then goes on where this one stopped.
			name:      "genuine, signed by the fourth of four keys",
			published: jwksOf(append(keys[:3:3], newcomer)...),
			deliveries: []delivery{
				untried(newcomer),
				{signers: []edKey{newcomer}, want: 2},
				{signers: []edKey{newcomer}, want: 1},
			},
		},
		{
			// Each retry tries the first key and two more.
			name:      "genuine, signed by the last of sixteen keys",
			published: jwksOf(sixteen...),
			deliveries: []delivery{
				untried(sixteen[15]), untried(sixteen[15]), untried(sixteen[15]), untried(sixteen[15]),
				untried(sixteen[15]), untried(sixteen[15]), untried(sixteen[15]),
				{signers: []edKey{sixteen[15]}, want: 2},
				{signers: []edKey{sixteen[15]}, want: 1},
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
			// The refetch adds a key, which does not verify; the key the
			// budget left untried is still published, so the answer is
			// retryable, and the retry finds it.
			name:      "rotation: a key left untried before the refetch",
			published: jwksOf(append(keys[:3:3], newcomer)...),
			rotateTo:  jwksOf(append(keys[:3:3], newcomer, newEdKey(t, "ed-added"))...),
			deliveries: []delivery{
				{signers: []edKey{keys[0]}, want: 1},
				{signers: []edKey{newcomer}, wantErr: ErrJWKSUnavailable, want: 3 + 1},
				{signers: []edKey{newcomer}, want: 2},
				{signers: []edKey{newcomer}, want: 1},
			},
		},
		{
			name:      "rotation: a forged delivery costs two allowances at most",
			published: jwksOf(keys...),
			rotateTo:  jwksOf(newEdKey(t, "n1"), newEdKey(t, "n2"), newEdKey(t, "n3"), newEdKey(t, "n4")),
			deliveries: []delivery{
				{signers: []edKey{keys[0]}, want: 1},
				{signers: []edKey{stranger, stranger}, wantErr: ErrJWKSUnavailable, want: 2 * MaxEd25519Checks},
				// Within the refetch interval: no refetch, one allowance.
				untried(stranger, stranger),
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
				if d.wantErr == ErrJWKSUnavailable && !strings.Contains(err.Error(), "untried") {
					t.Errorf("delivery %d: error %q does not say that keys went untried", i, err)
				}
				if got := n.Load(); got != d.want {
					t.Errorf("delivery %d cost %d Ed25519 verifications, want %d", i, got, d.want)
				}
			}
		})
	}
}
