package server_test

import (
	"runtime"
	"strings"
	"testing"

	"smartlabs/server"
)

// TestCachedResultsHeapMatchesEstimate: the bytes the labs cache counts for
// a launch are the bytes it holds. Launches of the 5,000-result patient are
// loaded and viewed (their results and rendered views cached); the heap that
// dropping them frees must be within a small factor of the cache's estimate,
// which is what bounds the cache's memory (a result counted at a third of
// its size, or a view's spare buffer left uncounted, lets the cache grow
// well past its budget).
func TestCachedResultsHeapMatchesEstimate(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	srv := appServer(t, h)
	p := h.Patient("Large")
	var ids []string
	for range 3 {
		resp, _ := mustLaunch(t, h, newBrowser(t), p)
		ids = append(ids, strings.TrimPrefix(resp.Request.URL.Path, "/l/"))
	}
	n, estimate := server.CacheStats(srv)
	if n != len(ids) {
		t.Fatalf("the cache holds %d launches, want %d", n, len(ids))
	}
	before := liveHeap()
	for _, id := range ids {
		server.ForgetCached(srv, id)
	}
	freed := before - liveHeap()
	ratio := float64(freed) / float64(estimate)
	t.Logf("%d launches of %d results: estimate %.1f MB, freed %.1f MB (%.2f×; %d bytes a result)",
		n, p.ResultCount, float64(estimate)/(1<<20), float64(freed)/(1<<20), ratio, freed/int64(n*p.ResultCount))
	// Generous both ways: only a result or a view counted at a fraction
	// (or a multiple) of what it holds should fail this.
	if ratio > 1.2 || ratio < 1/1.5 {
		t.Errorf("dropping the cached launches freed %.2f× their estimated bytes, want 0.67–1.2×", ratio)
	}
}

// liveHeap is the heap in use after garbage collection.
func liveHeap() int64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
