package jwks

import (
	"strings"
	"testing"
)

// The https-or-loopback and port rules themselves are tested in package
// httpsurl; here, that ValidateURL applies them and says which URL it was
// about.
func TestValidateURL(t *testing.T) {
	tests := []struct {
		url     string
		wantErr string // "" means accepted
	}{
		{"https://generativelanguage.googleapis.com/.well-known/jwks.json", ""},
		{"https://keys.example:443/jwks.json", ""},
		{"http://127.0.0.1:1/jwks.json", ""},
		{"http://[::1]:65535/jwks.json", ""},
		{"https://keys.example:/jwks.json", ""}, // empty port: the scheme's
		{"", "empty"},
		{"http://example.com/jwks.json", "loopback"},
		{"ftp://127.0.0.1/", "scheme"},
		{"https://keys.example:0/jwks.json", "port must be 1 to 65535"},
		{"http://127.0.0.1:0/jwks.json", "port must be 1 to 65535"},
		{"https://keys.example:65536/jwks.json", "port must be 1 to 65535"},
		{"https://keys.example:99999999999999999999/jwks.json", "port must be 1 to 65535"},
		{"https://user:hunter2@keys.example:0/jwks.json", "port must be 1 to 65535"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			err := ValidateURL(tt.url)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("ValidateURL(%q) = %v, want nil", tt.url, err)
			case tt.wantErr == "":
				return
			case err == nil:
				t.Fatalf("ValidateURL(%q) = nil, want an error saying %q", tt.url, tt.wantErr)
			case !strings.HasPrefix(err.Error(), "jwks: ") || !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("ValidateURL(%q) = %q, want \"jwks: ...%s...\"", tt.url, err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q quotes the password", err)
			}
		})
	}
}
