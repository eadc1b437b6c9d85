package dispatch_test

import (
	"testing"

	"github.com/genaihook/genaihook/dispatch"
	"github.com/genaihook/genaihook/dispatch/storetest"
)

// TestMemoryStoreConformance holds the in-memory default store to the
// Store contract, with the suite of dispatch/storetest.
func TestMemoryStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, opts storetest.Options) dispatch.Store {
		return dispatch.NewMemoryStoreForTest(opts.Now, opts.Retention, opts.MaxEvents)
	})
}
