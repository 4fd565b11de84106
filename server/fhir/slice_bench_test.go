package fhir_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"smartlabs/server/ehrsim"
)

// BenchmarkSimLargeRecord measures the time to fetch every result of the
// simulator's "Large, Test" patient (5,000 results, 100 a page) page after
// page and sliced (4 windows at once), with the simulator's latency per
// request, and in the "loaded" cases also a cost per result and a slowdown
// per other request in flight. It reports the requests sent and the windows.
//
//	go test -run '^$' -bench SimLargeRecord -benchtime 3x ./server/fhir/
func BenchmarkSimLargeRecord(b *testing.B) {
	for _, load := range []struct {
		name string
		sw   ehrsim.Switches
	}{
		{"15ms", ehrsim.Switches{Latency: 15 * time.Millisecond}},
		{"150ms", ehrsim.Switches{Latency: 150 * time.Millisecond}},
		{"15ms+0.2ms/result+5ms/inflight", ehrsim.Switches{Latency: 15 * time.Millisecond,
			LatencyPerResult: 200 * time.Microsecond, LatencyPerInFlight: 5 * time.Millisecond}},
	} {
		for _, parallel := range []int{1, 4} {
			name := "sequential"
			if parallel > 1 {
				name = fmt.Sprintf("sliced-%d", parallel)
			}
			b.Run(load.name+"/"+name, func(b *testing.B) {
				e := newSim(b, ehrsim.Switches{})
				tok, pid := e.launch(b, "Large")
				e.sim.SetSwitches(load.sw)
				e.sim.ResetRequests()
				var windows int
				b.ResetTimer()
				for range b.N {
					res := e.client(tok, 100, parallel).Labs(context.Background(), pid)
					if res.Err != nil || len(res.Observations) < 4900 {
						b.Fatalf("Err %v, %d results", res.Err, len(res.Observations))
					}
					windows = res.Windows
				}
				b.StopTimer()
				b.ReportMetric(float64(len(e.searches()))/float64(b.N), "requests/op")
				b.ReportMetric(float64(windows), "windows")
				b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/op")
			})
		}
	}
}
