package verify

import (
	"context"
	"errors"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// signAll returns the webhook-signature of a delivery signed with every
// secret, as Gemini signs during a rotation's overlap.
func signAll(t testing.TB, secrets []string, id string, ts time.Time, body []byte) string {
	t.Helper()
	var entries []string
	for _, s := range secrets {
		e, err := Sign(s, id, ts, body)
		if err != nil {
			t.Error(err)
			return ""
		}
		entries = append(entries, e)
	}
	return strings.Join(entries, " ")
}

func TestSetKeyring(t *testing.T) {
	old, next := newSecret(t), newSecret(t)
	clk := newClock(time.Unix(1_800_000_000, 0))
	v := mustNew(t, Config{Secrets: []string{old}, Now: clk.Now})
	body := []byte(`{"type":"batch.succeeded"}`)
	check := func(secret string, wantKeyID string, wantErr error) {
		t.Helper()
		ts := clk.Now()
		h := headers("msg_1", strconv.FormatInt(ts.Unix(), 10), signAll(t, []string{secret}, "msg_1", ts, body))
		res, err := v.Verify(context.Background(), h, body)
		if !errors.Is(err, wantErr) || (err == nil) != (wantErr == nil) {
			t.Fatalf("Verify: %v, want %v", err, wantErr)
		}
		if err == nil && res.KeyID != wantKeyID {
			t.Fatalf("KeyID %s, want %s", res.KeyID, wantKeyID)
		}
	}
	check(old, fingerprint(t, old), nil)
	check(next, "", ErrNoMatchingSignature)

	expires := clk.Now().Add(24 * time.Hour)
	if err := v.SetKeyring([]Secret{{Value: next}, {Value: old, Expires: expires}}); err != nil {
		t.Fatal(err)
	}
	check(old, fingerprint(t, old), nil)
	check(next, fingerprint(t, next), nil)

	clk.Advance(24 * time.Hour) // the old secret's expire_time
	check(old, "", ErrNoMatchingSignature)
	check(next, fingerprint(t, next), nil)

	// Refused keyrings leave the current one in place.
	for _, tt := range []struct {
		name    string
		keyring []Secret
		reason  string
	}{
		{"empty", nil, "keyring is empty"},
		{"bad secret", []Secret{{Value: next}, {Value: "whsec_!!"}}, "keyring[1]"},
		{"all expired", []Secret{{Value: next, Expires: clk.Now()}}, "expired"},
		{"short", []Secret{{Value: "whsec_c2hvcnQ="}}, "keyring[0]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := v.SetKeyring(tt.keyring)
			if !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("SetKeyring: %v, want ErrBadConfig naming %q", err, tt.reason)
			}
			if strings.Contains(err.Error(), next[6:]) {
				t.Fatal("the error quotes a secret")
			}
			check(next, fingerprint(t, next), nil)
		})
	}
}

func TestSetKeyringPublicVector(t *testing.T) {
	v, err := New(Config{Secrets: []string{newSecret(t)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.SetKeyring([]Secret{{Value: vecSecret}}); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("SetKeyring(public test vector): %v, want ErrBadConfig", err)
	}
}

func TestSetKeyringEmptyWithJWKS(t *testing.T) {
	v := mustNew(t, Config{Secrets: []string{newSecret(t)}, JWKSURL: "http://127.0.0.1:1/jwks.json"})
	if err := v.SetKeyring(nil); err != nil {
		t.Fatalf("SetKeyring(nil) with a JWKSURL: %v, want nil (dynamic deliveries still verify)", err)
	}
	ts := time.Now()
	s := newSecret(t)
	h := headers("msg_1", strconv.FormatInt(ts.Unix(), 10), signAll(t, []string{s}, "msg_1", ts, nil))
	if _, err := v.Verify(context.Background(), h, nil); !errors.Is(err, ErrSchemeNotConfigured) {
		t.Fatalf("Verify of a v1 delivery with no secret: %v, want ErrSchemeNotConfigured", err)
	}
}

// TestSetKeyringRotationUnderLoad rotates a live verifier's keyring while
// workers verify a continuous stream of deliveries, each signed as Gemini
// signs at that moment of the rotation: with the old secret before, with
// both during the overlap, with the new one after. Not one may fail. Run it
// with -race: the swaps race with every Verify.
func TestSetKeyringRotationUnderLoad(t *testing.T) {
	const workers = 8
	old, next := newSecret(t), newSecret(t)
	clk := newClock(time.Unix(1_800_000_000, 0))
	v := mustNew(t, Config{Secrets: []string{old}, Now: clk.Now})

	// phase is what Gemini signs with: 0 old, 1 both (rotated with
	// revoke_previous_secrets_after_h24), 2 new (the old one expired).
	signers := [][]string{{old}, {next, old}, {next}}
	var phase atomic.Int32
	var done [workers]atomic.Int32 // phase of each worker's last finished delivery
	var verified, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			body := []byte(`{"type":"batch.succeeded","data":{"id":"batches/b` + strconv.Itoa(w) + `"}}`)
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				p := phase.Load()
				id := "msg_" + strconv.Itoa(w) + "_" + strconv.Itoa(n)
				ts := clk.Now()
				h := headers(id, strconv.FormatInt(ts.Unix(), 10), signAll(t, signers[p], id, ts, body))
				if _, err := v.Verify(context.Background(), h, body); err != nil {
					failed.Add(1)
					t.Errorf("phase %d, delivery %s: %v", p, id, err)
				} else {
					verified.Add(1)
				}
				done[w].Store(p)
			}
		})
	}
	// settle waits until every worker has finished a delivery of phase p
	// or later: no delivery of an earlier phase is still in flight.
	settle := func(p int32) {
		for w := range workers {
			for done[w].Load() < p {
				runtime.Gosched()
			}
		}
	}
	settle(0)
	// Rotate: Gemini signs with both at once; the verifier learns the new
	// secret a moment later, while deliveries of every phase are in flight.
	phase.Store(1)
	expires := clk.Now().Add(time.Second) // Gemini's 24 hours, compressed: the clock jumps no further than the tolerance
	for range 100 {                       // swap again and again, to race with Verify
		if err := v.SetKeyring([]Secret{{Value: next}, {Value: old, Expires: expires}}); err != nil {
			t.Fatal(err)
		}
	}
	settle(1)
	// At the expiry Gemini stops signing with the old secret, which
	// expires in the keyring by the clock; then it is dropped.
	phase.Store(2)
	settle(2)
	clk.Advance(time.Second)
	if err := v.SetKeyring([]Secret{{Value: next}}); err != nil {
		t.Fatal(err)
	}
	before := verified.Load() + failed.Load()
	for verified.Load()+failed.Load() < before+workers { // deliveries checked after the drop
		runtime.Gosched()
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 || verified.Load() == 0 {
		t.Fatalf("%d deliveries verified, %d failed; want none failed", verified.Load(), failed.Load())
	}
	t.Logf("%d deliveries verified across the rotation", verified.Load())
}
