// Package bench compares genaihook's static webhook verifier with the Go
// Standard Webhooks reference library on the same delivery. It is a separate
// module so that the reference library never becomes a requirement of
// github.com/genaihook/genaihook. Run it with:
//
//	cd bench && go test -run '^$' -bench . -benchmem -count 10
package bench
