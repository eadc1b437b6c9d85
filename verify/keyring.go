package verify

import "strconv"

// SetKeyring replaces the static secrets of v (those of Config.Secrets and
// Config.Keyring, or of the previous SetKeyring) with keyring, as one
// atomic swap: each Verify checks a delivery against the keyring as it was
// when the Verify started, the old one or the new one, never a mix, and
// none waits for the swap. It is safe to call while v serves requests, from
// any goroutine.
//
// It is how secrets change without a restart: the caller reads them from a
// source of its own (a secret manager, an environment variable, a file it
// re-reads on a signal or a timer) and installs them here. To rotate
// without dropping a delivery, install the new secret alongside the old one
// (Gemini signs with both during the overlap), and the old one with the
// Expires that the webhook's signing_secrets[].expire_time gives it, or
// drop it once the rotation revoked it. Result.SecretIndex then refers to
// the new keyring; Result.KeyID, a fingerprint of the secret, does not
// change when a secret keeps its place or moves.
//
// SetKeyring decodes and checks every secret before it swaps anything: on
// error v keeps its keyring. It returns an *Error wrapping ErrBadConfig,
// whose reason names the secret by its index in keyring, never its value,
// if a secret is refused for a reason New gives (empty, not base64, shorter
// than MinSecretLen bytes, zero bytes only, the public Standard Webhooks
// example), or, when v has no JWKSURL, if keyring is empty or every secret
// in it has expired by v's clock, which would leave v verifying nothing.
func (v *Verifier) SetKeyring(keyring []Secret) error {
	keys, err := v.decodeKeyring(keyring, func(i int) string { return "keyring[" + strconv.Itoa(i) + "]" })
	if err != nil {
		return err
	}
	if v.keys == nil && len(keys) == 0 {
		return fail(ErrBadConfig, "keyring is empty and no JWKSURL is configured, so no delivery could verify: keep the current secret")
	}
	if err := v.checkLive(keys, "keyring"); err != nil {
		return err
	}
	v.secrets.Store(&keys)
	return nil
}

// decodeKeyring decodes the secrets of keyring; name(i) names the i-th in
// an error.
func (v *Verifier) decodeKeyring(keyring []Secret, name func(int) string) ([]*hmacKey, *Error) {
	keys := make([]*hmacKey, 0, len(keyring))
	for i, s := range keyring {
		key, err := decodeSecret(s.Value)
		if err == nil && !v.allowTestVector && isPublicTestSecret(key) {
			err = fail(ErrBadConfig, "secret is the public Standard Webhooks example secret (whsec_MfKQ9r8G...), a test vector anyone can sign with; "+
				"use the secret Gemini returned for your webhook")
		}
		if err != nil {
			return nil, fail(ErrBadConfig, name(i)+": "+reasonOf(err))
		}
		keys = append(keys, newHMACKey(key, s.Expires))
	}
	return keys, nil
}

// checkLive refuses keys, named field in the error, when v has no JWKSURL
// and keys has secrets but none is live by v's clock.
func (v *Verifier) checkLive(keys []*hmacKey, field string) *Error {
	if v.keys != nil || len(keys) == 0 {
		return nil
	}
	now := v.now()
	for _, k := range keys {
		if k.live(now) {
			return nil
		}
	}
	return fail(ErrBadConfig, "every secret in "+field+" has expired, so no delivery could verify: add the current secret")
}
