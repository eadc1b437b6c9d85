package verify

import (
	"strings"
	"testing"
)

// TestCutVersion checks that cutVersion cuts as strings.Cut(entry, ",")
// does, with the comma before, at and after its byte-loop window.
func TestCutVersion(t *testing.T) {
	for _, entry := range []string{
		"", ",", "v1", "v1,", ",sig", "v1,sig", "v1a,sig,more", "1234567,x", "12345678,x", "123456789,x",
		strings.Repeat("a", 100), strings.Repeat("a", 100) + ",b", "v1,a,b,c",
	} {
		gv, gs, gok := cutVersion(entry)
		wv, ws, wok := strings.Cut(entry, ",")
		if gv != wv || gs != ws || gok != wok {
			t.Errorf("cutVersion(%q) = %q, %q, %v; strings.Cut gives %q, %q, %v", entry, gv, gs, gok, wv, ws, wok)
		}
	}
}
