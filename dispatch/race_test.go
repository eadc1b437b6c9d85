//go:build race

package dispatch

// raceEnabled reports whether the race detector is on: slow tests then run
// smaller.
const raceEnabled = true
