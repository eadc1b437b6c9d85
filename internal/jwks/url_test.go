package jwks

import (
	"strings"
	"testing"
)

// The rules themselves are tested in package httpsurl; here, that ValidateURL
// applies them and says which URL it was about.
func TestValidateURL(t *testing.T) {
	if err := ValidateURL("https://generativelanguage.googleapis.com/.well-known/jwks.json"); err != nil {
		t.Errorf("https URL refused: %v", err)
	}
	for _, u := range []string{"", "http://example.com/jwks.json", "ftp://127.0.0.1/"} {
		err := ValidateURL(u)
		if err == nil || !strings.HasPrefix(err.Error(), "jwks: ") {
			t.Errorf("ValidateURL(%q) = %v, want an error starting with \"jwks: \"", u, err)
		}
	}
}
