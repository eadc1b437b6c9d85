package verify

import (
	"crypto/ed25519"
	"testing"
)

// BenchmarkEd25519Floor64KiB is bare ed25519.Verify over the signed content
// of a 64 KiB body (the body cap): the floor of
// BenchmarkVerifyEd25519/signer=key*/body=64KiB, as BenchmarkEd25519Floor
// is of the 1 KiB case. A forged delivery's floor is MaxEd25519Checks times
// this.
func BenchmarkEd25519Floor64KiB(b *testing.B) {
	k := newEdKey(b, "k1")
	body := benchBody(64 << 10)
	msg := append([]byte(vecID+"."+vecTimestamp+"."), body...)
	sig := ed25519.Sign(k.priv, msg)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	report := cpuPerOp(b)
	for b.Loop() {
		if !ed25519.Verify(k.pub, msg, sig) {
			b.Fatal("mismatch")
		}
	}
	report()
}
