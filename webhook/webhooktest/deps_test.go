package webhooktest_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoGenaiDependency keeps the package light: a handler test that
// imports it must not compile the genai SDK and its dependencies.
func TestNoGenaiDependency(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	gocmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	out, err := exec.CommandContext(t.Context(), gocmd, "list", "-deps", "-test", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "google.golang.org/genai") {
			t.Fatalf("webhooktest depends on %s", pkg)
		}
	}
}
