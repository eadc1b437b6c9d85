package dispatch

import "time"

// NewMemoryStoreForTest returns the in-memory default store, for the
// external test that runs the conformance suite on it.
func NewMemoryStoreForTest(now func() time.Time, retention time.Duration, maxEvents int) Store {
	return newMemoryStore(now, retention, maxEvents)
}
