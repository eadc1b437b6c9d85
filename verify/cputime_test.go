package verify

import "testing"

// cpuPerOp starts measuring the CPU time of this process; the function it
// returns, called once the benchmark's loop has ended, reports it per
// iteration as cpu-ns/op. On a machine shared with other work, ns/op also
// counts the time the benchmark waited for a core, and cpu-ns/op does not:
// the ratio of a benchmark to its floor, measured in the same run, is
// steadier in it. Call it just before the loop, after the setup.
func cpuPerOp(b *testing.B) (report func()) {
	start, ok := processCPU()
	return func() {
		end, _ := processCPU()
		if ok && b.N > 0 {
			b.ReportMetric(float64((end-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	}
}
