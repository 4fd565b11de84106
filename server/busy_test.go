package server_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"smartlabs/server"
)

// gate is a transport that holds every next-page request of an Observation
// search until it is opened, and counts the searches started per patient
// (the windows of a sliced search are part of the search they slice).
type gate struct {
	open     chan struct{}
	mu       sync.Mutex
	searches map[string]int
}

func newGate() *gate { return &gate{open: make(chan struct{}), searches: map[string]int{}} }

func (g *gate) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/Observation") {
		q := r.URL.Query()
		if p := q.Get("patient"); p != "" {
			if !q.Has("_lastUpdated") && !q.Has("date") && !q.Has("date:missing") {
				g.mu.Lock()
				g.searches[p]++
				g.mu.Unlock()
			}
		} else {
			select {
			case <-g.open:
			case <-r.Context().Done():
				return nil, r.Context().Err()
			}
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (g *gate) count(patient string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.searches[patient]
}

// TestBusyCache: with a byte budget smaller than one launch's results, a
// launch still fetching stays cached, so its views join its one fetch
// instead of starting another each; while that fetch fills the budget, a
// new launch gets a plain 503 "busy" page with Retry-After and starts no
// fetch; once the fetch has ended, the new launch is served.
func TestBusyCache(t *testing.T) {
	g := newGate()
	h := newHarness(t, harnessOptions{Deps: func(d *server.Deps) {
		d.HTTPClient.Transport = g
		d.LabsCacheBytes = 1
	}})
	lin, okafor := h.Patient("Lin"), h.Patient("Okafor")
	a := newBrowser(t)
	resp, doc, _ := a.get(h.LaunchURL(lin.ID))
	if resp.StatusCode != http.StatusOK || doc.Find("#labs-live").Length() == 0 {
		t.Fatalf("first launch: status %d, still loading %v; want 200 and loading", resp.StatusCode, doc.Find("#labs-live").Length() > 0)
	}
	labsURL, first := resp.Request.URL.String(), doc
	for _, u := range []string{labsURL, labsURL + "?view=all", labsURL + "?abnormal=1"} {
		if r, _, _ := a.get(u); r.StatusCode != http.StatusOK {
			t.Fatalf("a view while loading: status %d", r.StatusCode)
		}
	}
	if n := g.count(lin.ID); n != 1 {
		t.Errorf("Observation searches for one launch while it loads = %d, want 1", n)
	}

	b := newBrowser(t)
	resp, doc, _ = b.get(h.LaunchURL(okafor.ID))
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("a new launch while the budget is full: status %d, want 503", resp.StatusCode)
	}
	if got := resp.Header.Get("Retry-After"); got == "" {
		t.Error("the busy page has no Retry-After")
	}
	if got := text(doc, "error-title"); got != "smartlabs is busy" {
		t.Errorf("busy page title %q", got)
	}
	if !strings.Contains(text(doc, "error-message"), "Try again") {
		t.Errorf("busy page message %q", text(doc, "error-message"))
	}
	if n := g.count(okafor.ID); n != 0 {
		t.Errorf("the refused launch searched %d times, want 0", n)
	}

	close(g.open)
	mustFollowPolls(t, a, h.AppURL, first)
	resp, doc, _ = b.get(resp.Request.URL.String())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the new launch after the fetch ended: status %d, want 200", resp.StatusCode)
	}
	mustFollowPolls(t, b, h.AppURL, doc)
}
