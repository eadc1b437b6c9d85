package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
	"time"
)

// Sign returns the Standard Webhooks v1 signature header entry ("v1,<base64>")
// that a static Gemini webhook with this secret sends for a delivery with
// this id, timestamp and body. It is the sending half of Verify, for tests
// and fake senders.
//
// Sign returns an *Error wrapping ErrBadConfig if the secret is empty, is
// not base64 (after an optional "whsec_" prefix), decodes to fewer than
// MinSecretLen bytes or to zero bytes only: the secrets New refuses. Unlike
// New, it accepts the public Standard Webhooks example secret, so that
// tests can reproduce the published test vector.
func Sign(secret, webhookID string, ts time.Time, body []byte) (string, error) {
	key, err := decodeSecret(secret)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, key)
	var buf [20]byte
	mac.Write([]byte(webhookID))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(buf[:0], ts.Unix(), 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}
