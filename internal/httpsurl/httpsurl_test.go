package httpsurl

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	tests := []struct {
		url    string
		wantOK bool
	}{
		{"https://generativelanguage.googleapis.com/.well-known/jwks.json", true},
		{"https://www.googleapis.com/oauth2/v3/certs", true},
		{"http://127.0.0.1/jwks.json", true},
		{"http://127.0.0.1:8080/jwks.json", true},
		{"http://127.1.2.3:8080/", true},
		{"http://localhost/jwks.json", true},
		{"http://LOCALHOST:9000/jwks.json", true},
		{"http://[::1]/jwks.json", true},
		{"http://[::1]:8080/jwks.json", true},
		{"http://[::ffff:127.0.0.1]/", true},
		{"HTTPS://example.com/jwks.json", true},
		{"http://example.com/jwks.json", false},
		{"http://10.0.0.1/jwks.json", false},
		{"http://localhost.example.com/", false},
		{"http://127.0.0.1.nip.io/", false},
		{"http://[::2]/", false},
		{"ftp://127.0.0.1/jwks.json", false},
		{"file:///etc/passwd", false},
		{"", false},
		{"https://", false},
		{"https:///path", false},
		{"https://:443/", false},
		{"example.com/jwks.json", false},
		{"://bad", false},
		{"https://example.com/%zz", false},
		{"http://user:secret@example.com/", false},
		{"https://keys.example:443/jwks.json", true},
		{"http://[::1]:65535/", true},
		{"https://keys.example:/jwks.json", true}, // empty port: the scheme's
		{"https://keys.example:0/jwks.json", false},
		{"http://127.0.0.1:0/", false},
		{"https://keys.example:65536/", false},
		{"https://keys.example:99999999999999999999/", false},
		{"https://user:secret@keys.example:0/", false},
		{"https://user:secret@exa mple.com/", false},
		{"https://user:secret@example.com/%zz", false},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			err := Check(tt.url)
			if (err == nil) != tt.wantOK {
				t.Fatalf("Check(%q) = %v, want ok=%v", tt.url, err, tt.wantOK)
			}
			if err != nil && strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q quotes a password", err)
			}
		})
	}
}
