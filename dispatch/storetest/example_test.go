package storetest_test

import (
	"testing"

	"github.com/genaihook/genaihook/dispatch"
	"github.com/genaihook/genaihook/dispatch/storetest"
)

// myStore stands for a Store of your own; newMyStore for its constructor,
// which must take the clock and the retention the suite chooses.
type myStore struct{ dispatch.Store }

func newMyStore(opts storetest.Options) *myStore { return &myStore{} }

// A test of a store used by one process. A store that replicas share runs
// RunShared, with a factory that opens n handles on one new backend.
func ExampleRun() {
	// In a _test.go file of your store's package:
	testStore := func(t *testing.T) {
		storetest.Run(t, func(t *testing.T, opts storetest.Options) dispatch.Store {
			return newMyStore(opts)
		})
	}
	_ = testStore
}
