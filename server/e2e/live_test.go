package e2e_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"smartlabs/server"
	"smartlabs/server/e2e"
	"smartlabs/server/servertest"
)

// holdWindows is a transport that, until opened, holds every request of a
// sliced search's windows (those that name _lastUpdated): the first page
// of the search arrives, the rest waits.
type holdWindows struct {
	open chan struct{}
	once sync.Once
}

func (hw *holdWindows) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasSuffix(r.URL.Path, "/Observation") && r.URL.Query().Has("_lastUpdated") {
		select {
		case <-hw.open:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (hw *holdWindows) release() { hw.once.Do(func() { close(hw.open) }) }

// streamCutter stands in front of the app as a proxy that can drop the
// update streams it carries (the connection ends without a proper end) and
// refuse new ones (503), as a proxy restarting, or a network gone, would.
type streamCutter struct {
	refuse atomic.Bool
	mu     sync.Mutex
	open   map[*http.Request]context.CancelFunc
	opened chan struct{} // gets a value when a stream opens
}

func newStreamCutter() *streamCutter {
	return &streamCutter{open: map[*http.Request]context.CancelFunc{}, opened: make(chan struct{}, 16)}
}

func (sc *streamCutter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/live") {
			next.ServeHTTP(w, r)
			return
		}
		if sc.refuse.Load() {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		sc.mu.Lock()
		sc.open[r] = cancel
		sc.mu.Unlock()
		sc.opened <- struct{}{}
		next.ServeHTTP(w, r.WithContext(ctx))
		sc.mu.Lock()
		delete(sc.open, r)
		sc.mu.Unlock()
		if ctx.Err() != nil && r.Context().Err() == nil {
			// Cut: the connection ends mid-stream, without the chunked end.
			panic(http.ErrAbortHandler)
		}
	})
}

// cut drops every stream open now and refuses new ones.
func (sc *streamCutter) cut() {
	sc.refuse.Store(true)
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for _, cancel := range sc.open {
		cancel()
	}
}

// TestInterruptedUpdatesOfferRetry: the update stream of a list still
// loading breaks midway and cannot resume (every reconnect is refused). The
// view keeps what arrived, says the list is incomplete and offers Retry;
// once the server can be reached again, Retry shows the whole list.
func TestInterruptedUpdatesOfferRetry(t *testing.T) {
	hold := &holdWindows{open: make(chan struct{})}
	t.Cleanup(hold.release)
	cutter := newStreamCutter()
	env := servertest.New(t, servertest.Options{
		Deps:    func(d *server.Deps) { d.HTTPClient.Transport = hold },
		WrapApp: cutter.wrap,
	})
	p := env.Patient("Large")
	want := p.ResultCount - p.EnteredInError
	b := e2e.NewBrowser(t)
	tab := b.NewTab(t)
	if err := tab.Navigate(env.SimURL + "/"); err != nil {
		t.Fatal(err)
	}
	if err := tab.Click("", `[data-testid="launch-`+p.ID+`"]`); err != nil {
		t.Fatal(err)
	}
	// The first page is shown and the view follows its updates; the rest is held.
	if err := tab.WaitText(frame, `[data-testid="progress"]`, "Loaded", uiWait); err != nil {
		t.Fatal(err)
	}
	select {
	case <-cutter.opened:
	case <-time.After(uiWait):
		t.Fatal("the view never opened its update stream")
	}
	shown, err := tab.Count(frame, `[data-testid="summary-line"]`)
	if err != nil || shown == 0 {
		t.Fatalf("lines shown before the cut: %d, %v", shown, err)
	}
	var hidden bool
	mustEval(t, tab, `document.querySelector("[data-testid=live-broken]").hidden`, &hidden)
	if !hidden {
		t.Fatal("the broken-stream alert shows while the stream is open")
	}

	cutter.cut()
	// The alert's text is in the page from the start, hidden: wait for it shown.
	if err := tab.WaitText(frame, `[data-testid="live-broken"]:not([hidden])`, "This list is incomplete.", uiWait); err != nil {
		t.Fatalf("the view does not say the list is incomplete: %v", err)
	}
	var visible bool
	mustEval(t, tab, `(() => { const a = document.querySelector("[data-testid=live-broken]"); return !a.hidden && a.getBoundingClientRect().height > 0 && a.getAttribute("role") === "alert"; })()`, &visible)
	if !visible {
		t.Error("the incomplete alert is not visible, or not an alert")
	}
	if n, _ := tab.Count(frame, `[data-testid="summary-line"]`); n < shown {
		t.Errorf("lines after the cut: %d, before %d: what arrived must stay", n, shown)
	}
	if n, _ := tab.Count(frame, `[data-testid="retry"]`); n == 0 {
		t.Fatal("no Retry offered")
	}

	// The server is back and the results have all arrived: Retry shows them.
	hold.release()
	cutter.refuse.Store(false)
	mustClick(t, tab, `#labs-live [data-testid="retry"]`)
	if err := tab.WaitText(frame, `[data-testid="result-count"]`, thousands(want)+" results", uiWait); err != nil {
		t.Fatalf("after Retry: %v", err)
	}
	if err := tab.WaitText(frame, `[data-testid="banner-name"]`, p.Name, uiWait); err != nil {
		t.Fatal(err)
	}
	if n, _ := tab.Count(frame, `[data-testid="live-broken"]:not([hidden]), [data-testid="progress"]`); n != 0 {
		t.Error("the complete view still says it is loading or incomplete")
	}
}

// TestTwoTabsLoadAtOnceInFrame: one browser launches two patients in two
// tabs, one right after the other, and both lists load at the same time,
// each following its own update stream in the EHR's cross-site frame. Each
// tab ends with its own patient's banner and every one of its results, and
// no update of one ever reaches the other.
func TestTwoTabsLoadAtOnceInFrame(t *testing.T) {
	hold := &holdWindows{open: make(chan struct{})}
	t.Cleanup(hold.release)
	cutter := newStreamCutter()
	env := servertest.New(t, servertest.Options{
		Deps:    func(d *server.Deps) { d.HTTPClient.Transport = hold },
		WrapApp: cutter.wrap,
	})
	b := e2e.NewBrowser(t)
	names := []string{"Large", "Lin"}
	tabs := []*e2e.Tab{b.NewTab(t), b.NewTab(t)}
	for i, name := range names {
		p := env.Patient(name)
		if err := tabs[i].Navigate(env.SimURL + "/"); err != nil {
			t.Fatal(err)
		}
		if err := tabs[i].Click("", `[data-testid="launch-`+p.ID+`"]`); err != nil {
			t.Fatal(err)
		}
		if err := tabs[i].WaitText(frame, `[data-testid="progress"]`, "Loaded", uiWait); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	// Both views are loading and following their streams; now the rest of
	// both records arrives at once.
	for range names {
		select {
		case <-cutter.opened:
		case <-time.After(uiWait):
			t.Fatal("a view never opened its update stream")
		}
	}
	hold.release()
	for i, name := range names {
		p := env.Patient(name)
		tab := tabs[i]
		if err := tab.WaitText(frame, `[data-testid="result-count"]`, thousands(p.ResultCount-p.EnteredInError)+" results", uiWait); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := tab.WaitText(frame, `[data-testid="banner-name"]`, p.Name, uiWait); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var banners int
		mustEval(t, tab, `document.querySelectorAll("[data-testid=patient-banner]").length`, &banners)
		if banners != 1 {
			t.Errorf("%s's tab shows %d banners", name, banners)
		}
	}
	// What the updates built is exactly what a fresh load of the complete
	// list shows: the same lines, in the same tables and order, with the
	// same content; and nothing of the other patient.
	const linesJS = `[...document.querySelectorAll("[data-testid=summary-group]")].map(g =>
		g.id + ":" + [...g.querySelectorAll("[data-testid=summary-line]")].map(l => l.id + "=" + l.innerText).join("|"))`
	for i, name := range names {
		var built, fresh []string
		mustEval(t, tabs[i], linesJS, &built)
		mustLoadNew(t, tabs[i], `location.reload()`)
		mustEval(t, tabs[i], linesJS, &fresh)
		if len(built) == 0 || !slices.Equal(built, fresh) {
			t.Errorf("%s: the summary built by updates differs from a fresh load (%d and %d tables)", name, len(built), len(fresh))
		}
		other := env.Patient(names[1-i]).Name
		if html, _ := tabs[i].HTML(frame); strings.Contains(html, other) {
			t.Errorf("%s's tab shows %s", name, other)
		}
	}
}
