// Package bench compares genaihook's static webhook verifier with the
// established Go verifiers, the Standard Webhooks reference library and
// svix, on the same delivery. It is a separate module so that neither ever
// becomes a requirement of github.com/genaihook/genaihook. Run it, from the
// repository's root, with:
//
//	cd internal/bench && go test -run '^$' -bench . -benchmem -count 10
package bench
