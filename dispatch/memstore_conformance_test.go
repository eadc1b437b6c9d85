package dispatch_test

import (
	"testing"

	"github.com/genaihook/genaihook/dispatch"
	"github.com/genaihook/genaihook/dispatch/storetest"
)

// TestMemoryStoreConformance holds the in-memory default store to the
// Store contract, with the suite of dispatch/storetest.
//
// The suite's small bound makes a store of one shard; a bound of the
// default's size spreads the same checks over every shard.
func TestMemoryStoreConformance(t *testing.T) {
	for _, tt := range []struct {
		name      string
		maxEvents func(storetest.Options) int
	}{
		{"suite's bound", func(o storetest.Options) int { return o.MaxEvents }},
		{"sharded", func(storetest.Options) int { return 10_000 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T, opts storetest.Options) dispatch.Store {
				return dispatch.NewMemoryStoreForTest(opts.Now, opts.Retention, tt.maxEvents(opts))
			})
		})
	}
}
