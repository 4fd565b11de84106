package server_test

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"smartlabs/server"
	"smartlabs/server/config"
	"smartlabs/server/ehrsim"
)

// tab is another tab of browser b: the same cookies, its own headers and
// test, so that two tabs can load at once.
func (b *browser) tab(t *testing.T) *browser {
	tb := &browser{t: t, headers: http.Header{}}
	tb.c = &http.Client{Jar: b.c.Jar, Transport: recorder{tb}, Timeout: b.c.Timeout}
	return tb
}

// rowIDs lists the data-id of every result row of the document.
func rowIDs(t *testing.T, b *browser, u string) []string {
	t.Helper()
	_, doc, _ := b.getList(u)
	var ids []string
	doc.Find(`[data-testid="result-row"]`).Each(func(_ int, s *goquery.Selection) {
		ids = append(ids, s.AttrOr("data-id", ""))
	})
	return ids
}

// holdSearches is a transport that, once armed, holds the first page of
// every Observation search until it is opened, and says when each patient's
// search has reached it; everything else passes.
type holdSearches struct {
	armed atomic.Bool
	open  chan struct{}
	mu    sync.Mutex
	held  map[string]chan struct{}
}

func newHoldSearches() *holdSearches {
	return &holdSearches{open: make(chan struct{}), held: map[string]chan struct{}{}}
}

// reached is closed when the search of patient is held.
func (hs *holdSearches) reached(patient string) chan struct{} {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.held[patient] == nil {
		hs.held[patient] = make(chan struct{})
	}
	return hs.held[patient]
}

func (hs *holdSearches) RoundTrip(r *http.Request) (*http.Response, error) {
	q := r.URL.Query()
	if hs.armed.Load() && strings.HasSuffix(r.URL.Path, "/Observation") && q.Has("patient") && !q.Has("_lastUpdated") {
		close(hs.reached(q.Get("patient")))
		select {
		case <-hs.open:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestTwoTabsLoadTwoPatientsAtOnce: one browser has launched two patients in
// two tabs, and both load at the same moment (their searches are held until
// both have begun); both are sliced and run side by side under the issuer's
// bound; each tab ends with all of its own patient's results, once each, and
// nothing of the other's.
func TestTwoTabsLoadTwoPatientsAtOnce(t *testing.T) {
	hold := newHoldSearches()
	h := newHarness(t, harnessOptions{
		Switches: ehrsim.Switches{Latency: 5 * time.Millisecond},
		Mutate: func(c *config.Config) {
			c.Issuers[0].MaxParallel = 4
			c.Issuers[0].MaxInFlight = 3
		},
		Deps: func(d *server.Deps) { d.HTTPClient.Transport = hold },
	})
	b := newBrowser(t)
	hold.armed.Store(true)
	patients := []ehrsim.PatientInfo{h.Patient("Lin"), h.Patient("Okafor")}
	tabs := []*browser{b.tab(t), b.tab(t)}
	// Each tab signs in and asks for its labs page; the page waits for the
	// first page of the search, which is held. The second tab signs in only
	// once the first one's search is held, so the sign-ins do not overlap.
	landed := make([]chan *http.Response, len(patients))
	for i, p := range patients {
		landed[i] = make(chan *http.Response, 1)
		go func() {
			resp, err := tabs[i].c.Get(h.LaunchURL(p.ID))
			if err != nil {
				t.Errorf("%s: %v", p.Family, err)
			} else {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			landed[i] <- resp
		}()
		select {
		case <-hold.reached(p.ID):
		case <-time.After(20 * time.Second):
			t.Fatalf("%s's search never began", p.Family)
		}
	}
	close(hold.open)
	pages := make([]*http.Response, len(patients))
	for i, p := range patients {
		if pages[i] = <-landed[i]; pages[i] == nil || pages[i].StatusCode != http.StatusOK {
			t.Fatalf("%s's labs page did not load", p.Family)
		}
	}

	seen := make([][]string, len(patients))
	t.Run("tabs", func(t *testing.T) {
		for i, p := range patients {
			t.Run(p.Family, func(t *testing.T) {
				t.Parallel()
				tab := b.tab(t)
				u := pages[i].Request.URL.String()
				_, doc, _ := tab.get(u)
				mustFollowPolls(t, tab, h.AppURL, doc)
				_, doc, _ = tab.getList(u + "?view=all")
				if got := text(doc, "banner-name"); got != p.Name {
					t.Errorf("banner %q, want %q", got, p.Name)
				}
				seen[i] = rowIDs(t, tab, u+"?view=all")
				// Okafor's record, and only his, has a lab named with a script tag.
				if shown := strings.Contains(doc.Text(), "<script>alert(1)</script>"); shown != (p.Family == "Okafor") {
					t.Errorf("%s's tab shows Okafor's script-tag lab: %v", p.Family, shown)
				}
			})
		}
	})
	all := map[string]string{}
	for i, p := range patients {
		if got, want := len(seen[i]), p.ResultCount-p.EnteredInError; got != want {
			t.Errorf("%s's tab shows %d results, want %d", p.Family, got, want)
		}
		for _, id := range seen[i] {
			if other, dup := all[id]; dup {
				t.Errorf("result %s is shown in %s's tab and in %s's", id, p.Family, other)
			}
			all[id] = p.Family
		}
	}
	windows, most := 0, 0
	for _, r := range h.Sim.Requests() {
		if strings.Contains(r.Query, "_lastUpdated") {
			windows++
		}
		most = max(most, r.InFlight)
	}
	if windows == 0 {
		t.Error("no search was sliced")
	}
	if most > 3 {
		t.Errorf("%d requests in flight at the EHR at once, want at most max_in_flight (3)", most)
	}
}

// TestUndatedResultsShown: the orders without a collection date are shown,
// whether the search is sliced on _lastUpdated, on date (with its
// date:missing window) or fetched page after page.
func TestUndatedResultsShown(t *testing.T) {
	for _, tt := range []struct {
		name     string
		params   ehrsim.SearchParams
		parallel int
	}{
		{"_lastUpdated", ehrsim.ParamsApplied, 4},
		{"date", ehrsim.ParamsDateOnly, 4},
		{"page after page", ehrsim.ParamsApplied, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, harnessOptions{Switches: ehrsim.Switches{SearchParams: tt.params},
				Mutate: func(c *config.Config) { c.Issuers[0].MaxParallel = tt.parallel }})
			p := h.Patient("Pending")
			b := newBrowser(t)
			resp, _ := mustLaunch(t, h, b, p)
			ids := rowIDs(t, b, resp.Request.URL.String()+"?view=all")
			if got, want := len(ids), p.ResultCount-p.EnteredInError; got != want {
				t.Errorf("%d results shown, want %d", got, want)
			}
			// The simulator registers only undated orders: three of its six.
			_, doc, _ := b.getList(resp.Request.URL.String() + "?view=all")
			registered := doc.Find(`[data-testid="result-row"] [data-testid="status-note"]`).FilterFunction(func(_ int, s *goquery.Selection) bool {
				return strings.TrimSpace(s.Text()) == "Registered"
			}).Length()
			if registered != 3 {
				t.Errorf("%d registered orders shown, want 3", registered)
			}
		})
	}
}
