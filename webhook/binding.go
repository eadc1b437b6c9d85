package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// The user_metadata fields that bind a job to its receiver (see Binder).
const (
	// MetadataKey is the user_metadata field holding the correlation key
	// the job was created with.
	MetadataKey = "genaihook_key"
	// MetadataToken is the user_metadata field holding the receiver-bound
	// token for that key.
	MetadataToken = "genaihook_token"
)

// ErrNotBound is wrapped by the error of a BindingCheck that finds a
// delivery was not meant for this receiver. Handler answers it with 403.
var ErrNotBound = errors.New("webhook: delivery not bound to this receiver")

// BindingCheck decides whether a verified dynamic delivery was meant for
// this receiver (see WithBinding). It returns nil to accept the delivery, an
// error wrapping ErrNotBound to reject it (403), or any other error when it
// could not decide, e.g. its store is down (503, so Gemini retries). ctx
// carries the Handler's time budget; any error returned once it has ended
// is answered 503, ErrNotBound included.
//
// The event's body is authenticated for the dynamic schemes that sign it
// (Ed25519 "v1a", what Gemini sends), but not for the JWT form, whose
// signature covers only its claims: a check that trusts the body relies on
// the Verifier's audience check for those (see Verifier).
type BindingCheck func(ctx context.Context, ev *Event) error

// AnyOf returns a BindingCheck that accepts a delivery when any of checks
// accepts it, trying them in order until one does; nil checks are skipped.
// When none accepts, it returns the first error that does not wrap
// ErrNotBound, if any (a check could not decide, so the delivery may be
// genuine: let Gemini retry), and otherwise all the rejections joined.
// With no checks it rejects everything.
//
// Use it to combine the token check with one for jobs that cannot carry
// user_metadata: the live API has refused user_metadata on batch jobs
// (Unknown name "userMetadata" at 'batch.webhook_config'), so a batch
// is bound by being a job this receiver created:
//
//	webhook.WithBinding(webhook.AnyOf(binder.Check, jobs.CreatedByMe))
func AnyOf(checks ...BindingCheck) BindingCheck {
	return func(ctx context.Context, ev *Event) error {
		var rejections []error
		var undecided error
		for _, check := range checks {
			if check == nil {
				continue
			}
			switch err := check(ctx, ev); {
			case err == nil:
				return nil
			case !errors.Is(err, ErrNotBound):
				if undecided == nil {
					undecided = err
				}
			default:
				rejections = append(rejections, err)
			}
		}
		if undecided != nil {
			return undecided
		}
		if len(rejections) == 0 {
			return fmt.Errorf("%w: no binding check configured", ErrNotBound)
		}
		return errors.Join(rejections...)
	}
}

// MinBinderSecret is the least length of a Binder secret, in bytes.
const MinBinderSecret = 32

const (
	bindDomain   = "genaihook-bind-v1\x00"
	bindNonceLen = 16
	bindMACLen   = 16
)

// Binder mints and checks receiver-bound tokens for dynamic webhooks.
//
// A dynamic delivery is signed with Google's global keys, so a valid
// signature proves Google sent it to someone, not to this receiver: any
// Gemini customer can replay here the deliveries Google made to them,
// within the verifier's timestamp tolerance (5 minutes by default). Binder
// closes that hole. When creating a job, put Metadata(key) in its
// webhook_config.user_metadata; Gemini echoes it on every event of the job,
// and Check accepts only events whose token was minted under this Binder's
// secret for the key they carry. Checking needs no per-job storage.
//
// The token is base64url(nonce || HMAC-SHA256(secret, domain || nonce ||
// key)[:16]) with a fresh 16-byte random nonce, so two jobs with the same
// key still get different tokens. A 128-bit MAC cannot be forged offline in
// any useful time. Keep the secret as you would a webhook signing secret;
// all replicas of a receiver need the same one.
type Binder struct {
	secret []byte
}

// NewBinder returns a Binder keyed by secret, which it copies. It returns
// an error if secret is shorter than MinBinderSecret bytes, or is zero
// bytes only (an unfilled buffer, not a key): generate one with
// crypto/rand and store it like any other secret.
func NewBinder(secret []byte) (*Binder, error) {
	if len(secret) < MinBinderSecret {
		return nil, fmt.Errorf("webhook: binder secret is %d bytes, need at least %d", len(secret), MinBinderSecret)
	}
	if !slices.ContainsFunc(secret, func(b byte) bool { return b != 0 }) {
		return nil, fmt.Errorf("webhook: binder secret is %d zero bytes, an unfilled buffer rather than a key: fill it with crypto/rand.Read", len(secret))
	}
	return &Binder{secret: append([]byte(nil), secret...)}, nil
}

// Metadata returns the user_metadata entries binding a job to this
// receiver: {MetadataKey: key, MetadataToken: Token(key)}. Merge them into
// the job's webhook_config.user_metadata; key is also what a dispatcher can
// correlate the job's events by.
func (b *Binder) Metadata(key string) map[string]any {
	return map[string]any{MetadataKey: key, MetadataToken: b.Token(key)}
}

// Token returns a fresh token binding key to this receiver. Every call
// returns a different token; all of them pass Check.
func (b *Binder) Token(key string) string {
	var buf [bindNonceLen + bindMACLen]byte
	rand.Read(buf[:bindNonceLen]) // crypto/rand.Read never fails (it crashes the program instead)
	mac := b.mac(buf[:bindNonceLen], key)
	copy(buf[bindNonceLen:], mac[:])
	return base64.RawURLEncoding.EncodeToString(buf[:])
}

func (b *Binder) mac(nonce []byte, key string) [bindMACLen]byte {
	h := hmac.New(sha256.New, b.secret)
	h.Write([]byte(bindDomain))
	h.Write(nonce)
	h.Write([]byte(key))
	var sum [sha256.Size]byte
	return [bindMACLen]byte(h.Sum(sum[:0])[:bindMACLen])
}

// Check is a BindingCheck: it accepts ev when its UserMetadata holds a
// string MetadataKey and a MetadataToken that this Binder minted for that
// key, compared in constant time. It returns an error wrapping ErrNotBound
// if either field is missing or not a string, if UserMetadata also holds a
// name that differs from either only in case ("GENAIHOOK_KEY", which a
// struct decoding would read in its place), or if the token is malformed
// or does not match. It never returns another kind of error.
func (b *Binder) Check(_ context.Context, ev *Event) error {
	key, token, err := bindingFields(ev.UserMetadata)
	if err != nil {
		return err
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) != bindNonceLen+bindMACLen {
		return fmt.Errorf("%w: malformed %s", ErrNotBound, MetadataToken)
	}
	want := b.mac(raw[:bindNonceLen], key)
	if !hmac.Equal(raw[bindNonceLen:], want[:]) {
		return fmt.Errorf("%w: %s does not match", ErrNotBound, MetadataToken)
	}
	return nil
}

// bindingFields returns the string members MetadataKey and MetadataToken
// of md, a JSON object, read as encoding/json reads a map[string]any:
// names match exactly, the last of a name given twice wins (Parse refuses
// such bodies anyway), and invalid UTF-8 becomes U+FFFD. It returns an
// error wrapping ErrNotBound when either is missing or not a string, and
// when md also holds a name equal to either under strings.EqualFold
// ("GENAIHOOK_KEY"): encoding/json, decoding md into a struct, matches
// names that way and keeps the last, so a HandlerFunc reading the key
// from a struct would see another key than the one the token binds.
func bindingFields(md json.RawMessage) (key, token string, err error) {
	var hasKey, hasToken bool
	if len(md) > 0 {
		dec := jsontext.NewDecoder(bytes.NewReader(md), jsontext.AllowInvalidUTF8(true), jsontext.AllowDuplicateNames(true))
		if tok, err := dec.ReadToken(); err == nil && tok.Kind() == '{' {
			for dec.PeekKind() == '"' {
				name, err := dec.ReadToken()
				if err != nil {
					break
				}
				var dst *string
				var has *bool
				switch n := name.String(); n {
				case MetadataKey:
					dst, has = &key, &hasKey
				case MetadataToken:
					dst, has = &token, &hasToken
				default:
					if strings.EqualFold(n, MetadataKey) || strings.EqualFold(n, MetadataToken) {
						return "", "", fmt.Errorf("%w: user_metadata holds a name that differs from %s or %s only in case", ErrNotBound, MetadataKey, MetadataToken)
					}
				}
				if dst == nil || dec.PeekKind() != '"' {
					if has != nil {
						*has = false
					}
					if dec.SkipValue() != nil {
						break
					}
					continue
				}
				v, err := dec.ReadToken()
				if err != nil {
					break
				}
				*dst, *has = v.String(), true
			}
		}
	}
	switch {
	case !hasKey:
		return "", "", fmt.Errorf("%w: user_metadata has no string %s", ErrNotBound, MetadataKey)
	case !hasToken:
		return "", "", fmt.Errorf("%w: user_metadata has no string %s", ErrNotBound, MetadataToken)
	}
	return key, token, nil
}
